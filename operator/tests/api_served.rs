//! `operator/openapi.yaml` against what the API actually serves: every endpoint is called
//! through the real router (over a real SQLite store; the payment service is the in-memory
//! fake of `api_support`, the facilitator a fake answering with the real response types), and
//! each JSON body — successes and error envelopes — is validated with a JSON Schema 2020-12
//! validator against the schema the document gives for that path, method and status. A status
//! the document does not list for the operation fails too.

mod api_support;

use alloy::primitives::{Address, B256, U256};
use api_support::*;
use axum::http::StatusCode;
use serde_json::{Value, json};
use x402_escrow_operator::lifecycle::Flow;
use x402_escrow_operator::store::{Merchant, NewPayment, Payment, PaymentInfoRecord, Store};
use x402_escrow_operator::webhooks::new_webhook_event;
use x402_escrow_sdk::Network;
use x402_escrow_sdk::facilitator::{SettleResponse, VerifyResponse};
use x402_escrow_sdk::webhooks::{PaymentAmounts, PaymentEventData, WebhookEventType};

/// The OpenAPI document, as JSON.
struct Spec {
    doc: Value,
}

impl Spec {
    fn load() -> Spec {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml"))
            .expect("openapi.yaml");
        Spec {
            doc: serde_norway::from_str(&text).expect("openapi.yaml is YAML"),
        }
    }

    /// Follows a local `$ref` (`#/components/responses/NotFound`).
    fn deref<'a>(&'a self, value: &'a Value) -> &'a Value {
        match value["$ref"].as_str() {
            Some(reference) => self
                .doc
                .pointer(reference.trim_start_matches('#'))
                .unwrap_or_else(|| panic!("dangling $ref {reference}")),
            None => value,
        }
    }

    /// The JSON schema of the answer of `method path` with `status`.
    fn response_schema(&self, method: &str, path: &str, status: StatusCode) -> Value {
        let operation = &self.doc["paths"][path][method];
        assert!(
            operation.is_object(),
            "openapi.yaml does not document {method} {path}"
        );
        let response = &operation["responses"][status.as_str()];
        assert!(
            response.is_object(),
            "openapi.yaml lists no {status} answer for {method} {path}"
        );
        let schema = &self.deref(response)["content"]["application/json"]["schema"];
        assert!(
            schema.is_object(),
            "openapi.yaml gives no JSON schema for {status} of {method} {path}"
        );
        schema.clone()
    }

    /// A validator of `schema`, whose `$ref`s resolve in this document's components.
    fn validator(&self, schema: &Value) -> jsonschema::Validator {
        let mut root = schema.clone();
        root["components"] = self.doc["components"].clone();
        jsonschema::draft202012::new(&root).expect("the schema compiles")
    }

    /// The ways `value` breaks `schema` (empty when it conforms).
    fn violations(&self, schema: &Value, value: &Value) -> Vec<String> {
        self.validator(schema)
            .iter_errors(value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect()
    }

    /// The schema of a component (`Payment`).
    fn component(&self, name: &str) -> Value {
        json!({ "$ref": format!("#/components/schemas/{name}") })
    }

    /// Asserts that `reply`, the answer of `method path`, is documented and its JSON conforms;
    /// returns the JSON.
    fn check(&self, method: &str, path: &str, reply: &Reply) -> Value {
        let schema = self.response_schema(method, path, reply.status);
        let body = reply.json();
        let violations = self.violations(&schema, &body);
        assert!(
            violations.is_empty(),
            "{method} {path} answered {} with JSON that openapi.yaml does not describe:\n  {}\n{body:#}",
            reply.status,
            violations.join("\n  ")
        );
        body
    }

    /// Asserts that `value` conforms to component `name`.
    fn check_component(&self, name: &str, value: &Value) {
        let violations = self.violations(&self.component(name), value);
        assert!(
            violations.is_empty(),
            "{name} does not match openapi.yaml:\n  {}\n{value:#}",
            violations.join("\n  ")
        );
    }
}

/// Inserts one payment row for `merchant` through the store (the fake service keeps its
/// payments in memory; events need a stored payment).
async fn stored_payment(store: &Store, merchant: &Merchant, salt: u8) -> Payment {
    let new = NewPayment {
        merchant_id: merchant.id,
        payment_hash: B256::repeat_byte(salt),
        chain_id: 31337,
        escrow: Address::repeat_byte(0xE5),
        info: PaymentInfoRecord {
            operator: Address::repeat_byte(0x0B),
            payer: Address::repeat_byte(1),
            receiver: Address::repeat_byte(0xAA),
            token: Address::repeat_byte(0x70),
            max_amount: 1000,
            pre_approval_expiry: 1,
            authorization_expiry: 2,
            refund_expiry: 3,
            min_fee_bps: 0,
            max_fee_bps: 0,
            fee_receiver: Address::ZERO,
            salt: U256::from(salt),
        },
        amount: 1000,
        flow: Flow::Authorize,
        request_id: Some(format!("req-{salt}")),
        idempotency_key: None,
        capture_deadline_at: None,
    };
    store
        .insert_payment(&new, None)
        .await
        .expect("insert payment")
        .0
}

/// Writes `event_type` for `payment` the way the engine does.
async fn stored_event(store: &Store, payment: &Payment, event_type: WebhookEventType) {
    let data = PaymentEventData {
        payment_id: payment.id.to_string(),
        request_id: payment.request_id.clone().unwrap_or_default(),
        payment_hash: payment.payment_hash,
        status: "captured".into(),
        amount: Some(1000u64.into()),
        amounts: PaymentAmounts {
            authorized: 1000u64.into(),
            captured: 1000u64.into(),
            refunded: 0u64.into(),
            capturable: 0u64.into(),
            refundable: 1000u64.into(),
        },
        error_code: None,
        transaction_hash: Some(B256::repeat_byte(3)),
        idempotency_key: Some("k-1".into()),
    };
    let event = new_webhook_event(event_type, store.now_ms(), data).expect("event");
    store
        .enqueue_webhook(payment.merchant_id, Some(payment.id), &event)
        .await
        .expect("enqueue");
}

#[tokio::test]
async fn every_endpoint_serves_what_openapi_documents() {
    let spec = Spec::load();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = sqlite_store(&dir).await;
    let app = app_with(store, FakeService::default(), |_| {}).await;
    // The router the operator serves: the REST API and the facilitator endpoints.
    let full = app.router.clone();
    let authorize_path = "/v1/payments/authorize";

    // Authorize: 201, 202 and the refusals.
    let reply = Call::post(authorize_path)
        .key(KEY_A)
        .idem("a1")
        .json(&authorize_body("1000", "req-1"))
        .send(&full)
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let payment = spec.check("post", authorize_path, &reply);
    let id = payment["id"].as_str().expect("id").to_owned();
    let reply = Call::post(authorize_path)
        .key(KEY_A)
        .idem("a2")
        .json(&authorize_body("500", "pending"))
        .send(&full)
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    spec.check("post", authorize_path, &reply);
    let refusals = [
        (
            Call::post(authorize_path)
                .key(KEY_A)
                .idem("a3")
                .json(&authorize_body("1", "fail")),
            StatusCode::PAYMENT_REQUIRED,
        ),
        (
            Call::post(authorize_path)
                .key(KEY_A)
                .idem("a4")
                .json(&authorize_body("1", "boom")),
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        (
            Call::post(authorize_path)
                .key(KEY_A)
                .idem("a5")
                .header("content-type", "application/json")
                .raw("{not json"),
            StatusCode::BAD_REQUEST,
        ),
        (
            Call::post(authorize_path).json(&authorize_body("1", "x")),
            StatusCode::UNAUTHORIZED,
        ),
        (
            Call::post(authorize_path)
                .key(KEY_A)
                .json(&authorize_body("1", "x")),
            StatusCode::BAD_REQUEST,
        ),
        (
            Call::post(authorize_path)
                .key(KEY_A)
                .idem("a1")
                .json(&authorize_body("2", "other")),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Call::post(authorize_path)
                .key(KEY_A)
                .idem("a6")
                .header("content-type", "application/json")
                .raw(vec![b' '; 70 * 1024]),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ];
    for (call, status) in refusals {
        let reply = call.send(&full).await;
        assert_eq!(reply.status, status, "{:?}", reply.body);
        spec.check("post", authorize_path, &reply);
    }

    // Actions on one payment.
    let capture = "/v1/payments/{id}/capture";
    let reply = act(
        &app,
        KEY_A,
        &id,
        "capture",
        "c1",
        Some(json!({"amount": "400"})),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    spec.check("post", capture, &reply);
    let reply = act(
        &app,
        KEY_A,
        &id,
        "capture",
        "c2",
        Some(json!({"amount": "9999"})),
    )
    .await;
    assert_eq!(reply.code(), "exceeds_capturable");
    spec.check("post", capture, &reply);
    let reply = act(&app, KEY_B, &id, "capture", "c3", None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    spec.check("post", capture, &reply);
    let reply = act(&app, KEY_A, &id, "void", "v1", None).await;
    assert_eq!(reply.code(), "invalid_state");
    spec.check("post", "/v1/payments/{id}/void", &reply);
    let reply = act(
        &app,
        KEY_A,
        &id,
        "refund",
        "r1",
        Some(json!({"amount": "100"})),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    spec.check("post", "/v1/payments/{id}/refund", &reply);
    let reply = act(
        &app,
        KEY_A,
        &id,
        "refund",
        "r2",
        Some(json!({"amount": "1.5"})),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    spec.check("post", "/v1/payments/{id}/refund", &reply);

    // One payment.
    let get = "/v1/payments/{id}";
    for (uri, status) in [
        (format!("/v1/payments/{id}"), StatusCode::OK),
        (format!("/v1/payments/{id}?wait=1"), StatusCode::OK),
        (
            format!("/v1/payments/{id}?wait=99"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/v1/payments/not-a-uuid".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/v1/payments/{}", uuid::Uuid::now_v7()),
            StatusCode::NOT_FOUND,
        ),
    ] {
        let reply = Call::get(&uri).key(KEY_A).send(&full).await;
        assert_eq!(reply.status, status, "{uri}");
        spec.check("get", get, &reply);
    }

    // The list: pages, the old request-id lookup, and each refusal.
    let list = "/v1/payments";
    let reply = Call::get("/v1/payments?limit=1")
        .key(KEY_A)
        .send(&full)
        .await;
    let page = spec.check("get", list, &reply);
    let cursor = page["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_owned();
    let reply = Call::get(format!("/v1/payments?limit=1&cursor={cursor}"))
        .key(KEY_A)
        .send(&full)
        .await;
    let last = spec.check("get", list, &reply);
    assert_eq!(last["next_cursor"], Value::Null);
    let reply = Call::get("/v1/payments?request_id=req-1")
        .key(KEY_A)
        .send(&full)
        .await;
    assert_eq!(spec.check("get", list, &reply)["payments"][0]["id"], id);
    for (query, code) in [
        ("limit=0", "invalid_limit"),
        ("cursor=nope", "invalid_cursor"),
        ("status=paid", "invalid_status_filter"),
        ("created_before=soon", "invalid_time_filter"),
        ("request_id=", "invalid_request_id_filter"),
        ("payer=0x1", "invalid_payer_filter"),
        ("max_amount=1e9", "invalid_amount_filter"),
        ("colour=red", "invalid_request"),
    ] {
        let reply = Call::get(format!("/v1/payments?{query}"))
            .key(KEY_A)
            .send(&full)
            .await;
        assert_eq!(reply.code(), code, "{query}");
        spec.check("get", list, &reply);
    }
    let reply = Call::get(list).send(&full).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    spec.check("get", list, &reply);

    // Events, as the engine writes them.
    let events = "/v1/events";
    let stored = stored_payment(&app.store, &app.merchant_a, 0x21).await;
    stored_event(&app.store, &stored, WebhookEventType::PaymentAuthorized).await;
    stored_event(&app.store, &stored, WebhookEventType::PaymentCaptured).await;
    let reply = Call::get(events).key(KEY_A).send(&full).await;
    let page = spec.check("get", events, &reply);
    assert_eq!(page["events"].as_array().map(Vec::len), Some(2), "{page}");
    assert_eq!(page["events"][1]["sequence"], 2);
    for (query, code) in [
        ("after=zz", "invalid_cursor"),
        ("limit=101", "invalid_limit"),
        ("payment_id=7", "invalid_payment_id_filter"),
        ("type=CAPTURED", "invalid_event_type_filter"),
    ] {
        let reply = Call::get(format!("/v1/events?{query}"))
            .key(KEY_A)
            .send(&full)
            .await;
        assert_eq!(reply.code(), code, "{query}");
        spec.check("get", events, &reply);
    }

    // The merchant's terms and the operational endpoints.
    let reply = Call::get("/v1/merchant").key(KEY_A).send(&full).await;
    spec.check("get", "/v1/merchant", &reply);
    let reply = Call::get("/v1/merchant").send(&full).await;
    spec.check("get", "/v1/merchant", &reply);
    let reply = Call::get("/healthz").send(&full).await;
    spec.check("get", "/healthz", &reply);
    let reply = Call::get("/readyz").send(&full).await;
    assert_eq!(reply.status, StatusCode::OK);
    spec.check("get", "/readyz", &reply);

    // The facilitator.
    let reply = Call::get("/supported").key(KEY_A).send(&full).await;
    spec.check("get", "/supported", &reply);
    for path in ["/verify", "/settle"] {
        let reply = Call::post(path)
            .key(KEY_A)
            .json(&json!({"x402Version": 2}))
            .send(&full)
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}");
        spec.check("post", path, &reply);
    }
    spec.check_component(
        "VerifyResponse",
        &serde_json::to_value(VerifyResponse::valid(Address::repeat_byte(1))).expect("json"),
    );
    spec.check_component(
        "VerifyResponse",
        &serde_json::to_value(VerifyResponse::invalid(
            "invalid_exact_evm_payload_signature",
            "bad signature",
            Some(Address::repeat_byte(1)),
        ))
        .expect("json"),
    );
    spec.check_component(
        "SettleResponse",
        &serde_json::to_value(SettleResponse::pending(
            B256::repeat_byte(9),
            Network::eip155(31337),
            Address::repeat_byte(1),
        ))
        .expect("json"),
    );

    // What the HTTP layer answers by itself is an Error too.
    let reply = Call::new(axum::http::Method::DELETE, "/v1/merchant")
        .key(KEY_A)
        .send(&full)
        .await;
    assert_eq!(reply.code(), "method_not_allowed");
    spec.check_component("Error", &reply.json());
    let reply = Call::get("/v2/nothing").send(&full).await;
    assert_eq!(reply.code(), "not_found");
    spec.check_component("Error", &reply.json());
}

/// The check is not vacuous: a served body with a field renamed, a field missing, an extra
/// field, a value of the wrong type or an error code outside the enum is refused.
#[tokio::test]
async fn a_renamed_or_changed_field_fails_the_check() {
    let spec = Spec::load();
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app_with(sqlite_store(&dir).await, FakeService::default(), |_| {}).await;
    let id = authorize(&app, KEY_A, "k1", "1000", "req-1").await;
    let payment = Call::get(format!("/v1/payments/{id}"))
        .key(KEY_A)
        .send(&app.router)
        .await
        .json();
    let payment_schema = spec.component("Payment");
    assert!(spec.violations(&payment_schema, &payment).is_empty());
    let rename = |value: &Value, from: &str, to: &str| {
        let mut out = value.clone();
        let object = out.as_object_mut().expect("object");
        let moved = object.remove(from).expect("field present");
        object.insert(to.to_owned(), moved);
        out
    };
    for (from, to) in [
        ("paymentHash", "payment_hash"),
        ("requestId", "request_id"),
        ("amounts", "amount"),
    ] {
        assert!(
            !spec
                .violations(&payment_schema, &rename(&payment, from, to))
                .is_empty(),
            "renaming {from} to {to} went unnoticed"
        );
    }
    let mut wrong_type = payment.clone();
    wrong_type["chainId"] = json!("31337");
    assert!(!spec.violations(&payment_schema, &wrong_type).is_empty());
    let mut bad_amount = payment.clone();
    bad_amount["amounts"]["captured"] = json!(5);
    assert!(!spec.violations(&payment_schema, &bad_amount).is_empty());

    let list = Call::get("/v1/payments")
        .key(KEY_A)
        .send(&app.router)
        .await
        .json();
    let list_schema = spec.component("PaymentList");
    assert!(spec.violations(&list_schema, &list).is_empty());
    assert!(
        !spec
            .violations(&list_schema, &rename(&list, "next_cursor", "nextCursor"))
            .is_empty()
    );

    let error = Call::get("/v1/payments?limit=0")
        .key(KEY_A)
        .send(&app.router)
        .await
        .json();
    let error_schema = spec.component("Error");
    assert!(spec.violations(&error_schema, &error).is_empty());
    let mut unknown_code = error.clone();
    unknown_code["error"]["code"] = json!("limit_bad");
    assert!(!spec.violations(&error_schema, &unknown_code).is_empty());
    let mut renamed = error.clone();
    renamed["error"] = rename(&error["error"], "message", "detail");
    assert!(!spec.violations(&error_schema, &renamed).is_empty());
}

/// The merchant's own settings: the webhook endpoint, secret and key rotation, the delivery log
/// and redelivery — each answer checked against the document, each refusal with its code and
/// no change, another merchant's deliveries out of reach.
#[tokio::test]
async fn merchant_settings_endpoints_serve_what_openapi_documents() {
    let spec = Spec::load();
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app_with(sqlite_store(&dir).await, FakeService::default(), |_| {}).await;
    let r = &app.router;
    let patch = |body: Value| {
        Call::new(axum::http::Method::PATCH, "/v1/webhook")
            .key(KEY_A)
            .json(&body)
    };

    // The endpoint: read, change, stop and resume; bad URLs change nothing.
    let reply = Call::get("/v1/webhook").key(KEY_A).send(r).await;
    let endpoint = spec.check("get", "/v1/webhook", &reply);
    assert_eq!(endpoint["url"], Value::Null);
    assert_eq!(endpoint["enabled"], true);
    let reply = patch(json!({"url": "https://shop.example/hooks"}))
        .send(r)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        spec.check("patch", "/v1/webhook", &reply)["url"],
        "https://shop.example/hooks"
    );
    for (body, code) in [
        (
            json!({"url": "ftp://shop.example/hooks"}),
            "invalid_webhook_url",
        ),
        (json!({"url": "/relative"}), "invalid_webhook_url"),
        (
            json!({"url": format!("https://a.example/{}", "x".repeat(2048))}),
            "invalid_webhook_url",
        ),
        (json!({}), "invalid_request"),
        (json!({"enabled": "yes"}), "invalid_request"),
        (
            json!({"url": "https://a.example", "colour": "red"}),
            "invalid_request",
        ),
    ] {
        let reply = patch(body.clone()).send(r).await;
        assert_eq!(reply.code(), code, "{body}");
        spec.check("patch", "/v1/webhook", &reply);
    }
    let reply = patch(json!({"enabled": false})).send(r).await;
    let endpoint = spec.check("patch", "/v1/webhook", &reply);
    assert_eq!(endpoint["enabled"], false);
    assert_eq!(endpoint["url"], "https://shop.example/hooks", "unchanged");
    assert!(endpoint["disabledAt"].is_i64());
    let reply = patch(json!({"enabled": true})).send(r).await;
    assert_eq!(spec.check("patch", "/v1/webhook", &reply)["enabled"], true);
    let b = Call::get("/v1/webhook").key(KEY_B).send(r).await.json();
    assert_eq!(b["url"], Value::Null, "merchant B is untouched");

    // Secret rotation: a new secret each time, the previous one signing for the grace period.
    let rotate = "/v1/webhook/secret/rotate";
    let reply = Call::post(rotate).key(KEY_A).send(r).await;
    let first = spec.check("post", rotate, &reply);
    assert!(first["secret"].as_str().unwrap().starts_with("whsec_"));
    let reply = Call::post(rotate)
        .key(KEY_A)
        .json(&json!({"graceSeconds": 60}))
        .send(r)
        .await;
    let second = spec.check("post", rotate, &reply);
    assert_ne!(first["secret"], second["secret"]);
    let until = second["previousSecretExpiresAt"]
        .as_i64()
        .expect("a grace period");
    let merchant = app.store.get_merchant(app.merchant_a.id).await.unwrap();
    assert_eq!(
        merchant
            .webhook_secret
            .as_ref()
            .map(|s| s.expose().to_owned()),
        second["secret"].as_str().map(str::to_owned)
    );
    assert_eq!(
        merchant
            .webhook_previous_secret
            .as_ref()
            .map(|s| s.expose().to_owned()),
        first["secret"].as_str().map(str::to_owned)
    );
    assert_eq!(merchant.signing_secrets(until - 1).len(), 2);
    assert_eq!(merchant.signing_secrets(until).len(), 1);
    let reply = Call::get("/v1/webhook").key(KEY_A).send(r).await;
    assert_eq!(
        spec.check("get", "/v1/webhook", &reply)["previousSecretExpiresAt"],
        until
    );
    for body in [
        json!({"graceSeconds": 604_801}),
        json!({"graceSeconds": -1}),
        json!({"grace": 1}),
    ] {
        let reply = Call::post(rotate).key(KEY_A).json(&body).send(r).await;
        assert_eq!(reply.code(), "invalid_request", "{body}");
        spec.check("post", rotate, &reply);
    }
    let unchanged = app.store.get_merchant(app.merchant_a.id).await.unwrap();
    assert_eq!(
        unchanged.webhook_secret, merchant.webhook_secret,
        "refusals change nothing"
    );

    // The delivery log, newest first, and redelivery.
    let deliveries = "/v1/webhook/deliveries";
    let stored = stored_payment(&app.store, &app.merchant_a, 0x31).await;
    stored_event(&app.store, &stored, WebhookEventType::PaymentAuthorized).await;
    stored_event(&app.store, &stored, WebhookEventType::PaymentCaptured).await;
    let reply = Call::get(deliveries).key(KEY_A).send(r).await;
    let log = spec.check("get", deliveries, &reply);
    assert_eq!(log["deliveries"].as_array().map(Vec::len), Some(2), "{log}");
    assert_eq!(log["deliveries"][0]["eventType"], "payment.captured");
    assert_eq!(log["deliveries"][0]["sequence"], 2);
    assert_eq!(log["deliveries"][0]["status"], "pending");
    let reply = Call::get(format!("{deliveries}?limit=1"))
        .key(KEY_A)
        .send(r)
        .await;
    let page = spec.check("get", deliveries, &reply);
    let cursor = page["next_cursor"]
        .as_str()
        .expect("another page")
        .to_owned();
    let reply = Call::get(format!("{deliveries}?limit=1&cursor={cursor}"))
        .key(KEY_A)
        .send(r)
        .await;
    let last = spec.check("get", deliveries, &reply);
    assert_eq!(last["deliveries"][0]["eventType"], "payment.authorized");
    assert_eq!(last["next_cursor"], Value::Null);
    let reply = Call::get(format!("{deliveries}?status=delivered"))
        .key(KEY_A)
        .send(r)
        .await;
    assert_eq!(
        spec.check("get", deliveries, &reply)["deliveries"],
        json!([])
    );
    for (query, code) in [
        ("status=sent", "invalid_status_filter"),
        ("limit=0", "invalid_limit"),
        ("limit=101", "invalid_limit"),
        ("cursor=nope", "invalid_cursor"),
        ("colour=red", "invalid_request"),
    ] {
        let reply = Call::get(format!("{deliveries}?{query}"))
            .key(KEY_A)
            .send(r)
            .await;
        assert_eq!(reply.code(), code, "{query}");
        spec.check("get", deliveries, &reply);
    }
    let b_log = Call::get(deliveries).key(KEY_B).send(r).await.json();
    assert_eq!(
        b_log["deliveries"],
        json!([]),
        "merchant B sees none of A's"
    );
    let id = log["deliveries"][1]["id"].as_str().unwrap().to_owned();
    let redeliver = "/v1/webhook/deliveries/{id}/redeliver";
    let reply = Call::post(format!("/v1/webhook/deliveries/{id}/redeliver"))
        .key(KEY_A)
        .send(r)
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    let queued = spec.check("post", redeliver, &reply);
    assert_eq!(
        (queued["status"].as_str(), queued["attempts"].as_i64()),
        (Some("pending"), Some(0))
    );
    for (key, path, code) in [
        (
            KEY_B,
            format!("/v1/webhook/deliveries/{id}/redeliver"),
            "not_found",
        ),
        (
            KEY_A,
            format!("/v1/webhook/deliveries/{}/redeliver", uuid::Uuid::now_v7()),
            "not_found",
        ),
        (
            KEY_A,
            "/v1/webhook/deliveries/7/redeliver".to_owned(),
            "invalid_request",
        ),
    ] {
        let reply = Call::post(path.clone()).key(key).send(r).await;
        assert_eq!(reply.code(), code, "{path}");
        spec.check("post", redeliver, &reply);
    }

    // API key rotation: both keys work during the grace period; none but the newest after a
    // rotation without one.
    let rotate_key = "/v1/merchant/api-key/rotate";
    let reply = Call::post(rotate_key).key(KEY_A).send(r).await;
    let rotated = spec.check("post", rotate_key, &reply);
    let second_key = rotated["apiKey"].as_str().unwrap().to_owned();
    assert!(second_key.starts_with("x402_sk_"));
    assert!(rotated["previousKeyExpiresAt"].is_i64());
    for key in [KEY_A, second_key.as_str()] {
        let reply = Call::get("/v1/merchant").key(key).send(r).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{key} works during the grace period"
        );
    }
    let reply = Call::post(rotate_key)
        .key(&second_key)
        .json(&json!({"graceSeconds": 0}))
        .send(r)
        .await;
    let rotated = spec.check("post", rotate_key, &reply);
    assert_eq!(rotated["previousKeyExpiresAt"], Value::Null);
    let third_key = rotated["apiKey"].as_str().unwrap().to_owned();
    for (key, status) in [
        (KEY_A, StatusCode::UNAUTHORIZED),
        (second_key.as_str(), StatusCode::UNAUTHORIZED),
        (third_key.as_str(), StatusCode::OK),
        (KEY_B, StatusCode::OK),
    ] {
        let reply = Call::get("/v1/merchant").key(key).send(r).await;
        assert_eq!(reply.status, status, "{key}");
    }
    let reply = Call::post(rotate_key)
        .key(&third_key)
        .json(&json!({"graceSeconds": "long"}))
        .send(r)
        .await;
    assert_eq!(reply.code(), "invalid_request");
    spec.check("post", rotate_key, &reply);
    let reply = Call::post(rotate_key).key(KEY_A).send(r).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    spec.check("post", rotate_key, &reply);
    let reply = Call::get("/v1/merchant").key(&third_key).send(r).await;
    assert_eq!(reply.status, StatusCode::OK, "refusals rotate nothing");
}
