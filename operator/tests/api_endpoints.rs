//! The HTTP API over a fake payment service and a real (SQLite) store: every endpoint, auth,
//! merchant isolation, hostile requests, /healthz, /readyz, /metrics.

mod api_support;

use api_support::*;
use axum::http::StatusCode;
use serde_json::json;
use x402_escrow_operator::api::Readiness;
use x402_escrow_operator::service::ErrorCode;

async fn app() -> (App, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = sqlite_store(&dir).await;
    (app_with(store, FakeService::default(), |_| {}).await, dir)
}

#[tokio::test]
async fn authorize_capture_refund_void_get_list() {
    let (app, _dir) = app().await;
    // authorize → 201 with the payment shape, amounts as decimal strings
    let reply = Call::post("/v1/payments/authorize")
        .key(KEY_A)
        .idem("a1")
        .json(&authorize_body("1000000000000000000000", "req-1"))
        .send(&app.router)
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let p = reply.json();
    for field in [
        "id",
        "merchantId",
        "requestId",
        "paymentHash",
        "status",
        "flow",
        "chainId",
        "escrow",
        "paymentInfo",
        "amounts",
        "transactions",
        "createdAt",
        "updatedAt",
    ] {
        assert!(p.get(field).is_some(), "missing {field} in {p}");
    }
    assert_eq!(p["status"], "authorized");
    assert_eq!(p["merchantId"], app.merchant_a.id.to_string());
    assert_eq!(p["amounts"]["authorized"], "1000000000000000000000");
    assert_eq!(p["amounts"]["captured"], "0");
    let id = p["id"].as_str().expect("id").to_owned();

    // partial capture
    let reply = act(
        &app,
        KEY_A,
        &id,
        "capture",
        "c1",
        Some(json!({"amount": "400000000000000000000"})),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.json());
    let p = reply.json();
    assert_eq!(p["status"], "partially_captured");
    assert_eq!(p["amounts"]["captured"], "400000000000000000000");
    assert_eq!(p["amounts"]["capturable"], "600000000000000000000");

    // capture the rest with an empty body
    let reply = act(&app, KEY_A, &id, "capture", "c2", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.json());
    assert_eq!(reply.json()["status"], "captured");

    // over-capture → service error code and status
    let reply = act(
        &app,
        KEY_A,
        &id,
        "capture",
        "c3",
        Some(json!({"amount": "1"})),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.code(), "exceeds_capturable");

    // refund
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
    assert_eq!(reply.json()["status"], "partially_refunded");
    assert_eq!(reply.json()["amounts"]["refunded"], "100");

    // refund without amount → 400 invalid_request
    let reply = act(&app, KEY_A, &id, "refund", "r2", Some(json!({}))).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.code(), "invalid_request");

    // void of a captured payment → 409 invalid_state
    let reply = act(&app, KEY_A, &id, "void", "v1", Some(json!({}))).await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert_eq!(reply.code(), "invalid_state");

    // void of a fresh one → 200 voided
    let other = authorize(&app, KEY_A, "a2", "5", "req-2").await;
    let reply = act(&app, KEY_A, &other, "void", "v2", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["status"], "voided");

    // get
    let reply = Call::get(format!("/v1/payments/{id}"))
        .key(KEY_A)
        .send(&app.router)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["id"], id);
    assert_eq!(
        reply.json()["amounts"]["refundable"],
        "999999999999999999900"
    );

    // list by request id
    let reply = Call::get("/v1/payments?request_id=req-1")
        .key(KEY_A)
        .send(&app.router)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let list = reply.json();
    assert_eq!(list["payments"].as_array().map(Vec::len), Some(1));
    assert_eq!(list["payments"][0]["id"], id);
    let reply = Call::get("/v1/payments?request_id=nope")
        .key(KEY_A)
        .send(&app.router)
        .await;
    assert_eq!(reply.json(), json!({"payments": [], "next_cursor": null}));
    // Without filters: the whole list (one page here).
    let reply = Call::get("/v1/payments").key(KEY_A).send(&app.router).await;
    assert_eq!(reply.status, StatusCode::OK);
    let listed = reply.json();
    assert!(
        listed["payments"]
            .as_array()
            .is_some_and(|all| all.iter().any(|p| p["id"] == id)),
        "{listed}"
    );
    assert_eq!(listed["next_cursor"], serde_json::Value::Null);
    let reply = Call::get("/v1/payments?request_id=")
        .key(KEY_A)
        .send(&app.router)
        .await;
    assert_eq!(reply.code(), "invalid_request_id_filter");
}

#[tokio::test]
async fn authorize_pending_is_202_and_service_errors_keep_their_status() {
    let (app, _dir) = app().await;
    let reply = Call::post("/v1/payments/authorize")
        .key(KEY_A)
        .idem("p")
        .json(&authorize_body("10", "pending"))
        .send(&app.router)
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    assert_eq!(reply.json()["status"], "authorizing");

    let reply = Call::post("/v1/payments/authorize")
        .key(KEY_A)
        .idem("f")
        .json(&authorize_body("10", "fail"))
        .send(&app.router)
        .await;
    assert_eq!(reply.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(reply.code(), "insufficient_funds");
    assert_eq!(reply.json()["error"]["message"], "payer balance 5 < 1000");

    let reply = Call::post("/v1/payments/authorize?wait=51")
        .key(KEY_A)
        .idem("w")
        .json(&authorize_body("10", "x"))
        .send(&app.router)
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.code(), "invalid_request");
}

#[tokio::test]
async fn authorize_wait_and_idempotency_key_reach_the_service() {
    use std::time::Duration;
    let (app, _dir) = app().await;
    let last = || {
        app.service
            .last_authorize
            .lock()
            .expect("lock")
            .clone()
            .expect("called")
    };
    let mut body = authorize_body("10", "r");
    let _ = Call::post("/v1/payments/authorize")
        .key(KEY_A)
        .idem("w0")
        .json(&body)
        .send(&app.router)
        .await;
    assert_eq!(last(), (None, Some("w0".to_owned())));
    let _ = Call::post("/v1/payments/authorize?wait=5")
        .key(KEY_A)
        .idem("w1")
        .json(&body)
        .send(&app.router)
        .await;
    assert_eq!(last().0, Some(Duration::from_secs(5)));
    body["wait"] = json!(7);
    let _ = Call::post("/v1/payments/authorize")
        .key(KEY_A)
        .idem("w2")
        .json(&body)
        .send(&app.router)
        .await;
    assert_eq!(last().0, Some(Duration::from_secs(7)));
    let _ = Call::post("/v1/payments/authorize?wait=3")
        .key(KEY_A)
        .idem("w3")
        .json(&body)
        .send(&app.router)
        .await;
    assert_eq!(last().0, Some(Duration::from_secs(3)), "the query wins");
    let reply = Call::post("/v1/payments/authorize?wait=soon")
        .key(KEY_A)
        .idem("w4")
        .json(&body)
        .send(&app.router)
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.code(), "invalid_request");
}

#[tokio::test]
async fn get_wait_reaches_the_service_and_is_bounded() {
    use std::time::Duration;
    let (app, _dir) = app().await;
    let id = authorize(&app, KEY_A, "g", "10", "r").await;
    let last = || app.service.last_get_wait.lock().expect("lock").clone();
    let get = |query: &str| Call::get(&format!("/v1/payments/{id}{query}")).key(KEY_A);

    let reply = get("").send(&app.router).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(last(), Some(None), "no wait: the payment as it is");
    let reply = get("?wait=7").send(&app.router).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["id"], id.as_str());
    assert_eq!(last(), Some(Some(Duration::from_secs(7))));
    let reply = get("?wait=50").send(&app.router).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(last(), Some(Some(Duration::from_secs(50))));

    for bad in ["?wait=51", "?wait=soon", "?wait=-1", "?linger=3"] {
        let reply = get(bad).send(&app.router).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(reply.code(), "invalid_request", "{bad}");
        assert_eq!(
            last(),
            Some(Some(Duration::from_secs(50))),
            "{bad} reached the service"
        );
    }
}

#[tokio::test]
async fn auth_missing_wrong_and_right_key() {
    let (app, _dir) = app().await;
    let id = authorize(&app, KEY_A, "k", "10", "r").await;
    let path = format!("/v1/payments/{id}");

    let reply = Call::get(&path).send(&app.router).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.code(), "unauthorized");
    assert_eq!(reply.header("www-authenticate"), Some("Bearer"));

    let reply = Call::get(&path)
        .key("x402_sk_wrong")
        .send(&app.router)
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.code(), "unauthorized");

    let reply = Call::get(&path)
        .header("authorization", KEY_A)
        .send(&app.router)
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "no scheme");

    let reply = Call::get(&path)
        .header("authorization", &format!("Basic {KEY_A}"))
        .send(&app.router)
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "wrong scheme");

    let reply = Call::get(&path)
        .header("authorization", &format!("bearer {KEY_A}"))
        .send(&app.router)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "scheme is case-insensitive");

    // POST without auth: 401 before the idempotency check, and nothing runs
    let calls = app.service.calls();
    let reply = Call::post("/v1/payments/authorize")
        .idem("k2")
        .json(&authorize_body("10", "r"))
        .send(&app.router)
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.service.calls(), calls);
}

#[tokio::test]
async fn merchant_isolation() {
    let (app, _dir) = app().await;
    let id = authorize(&app, KEY_A, "k", "10", "shared-req").await;

    let reply = Call::get(format!("/v1/payments/{id}"))
        .key(KEY_B)
        .send(&app.router)
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.code(), "not_found");

    for action in ["capture", "void"] {
        let reply = act(&app, KEY_B, &id, action, action, Some(json!({}))).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{action}");
        assert_eq!(reply.code(), "not_found");
    }
    let reply = act(
        &app,
        KEY_B,
        &id,
        "refund",
        "refund",
        Some(json!({"amount": "1"})),
    )
    .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);

    let reply = Call::get("/v1/payments?request_id=shared-req")
        .key(KEY_B)
        .send(&app.router)
        .await;
    assert_eq!(reply.json(), json!({"payments": [], "next_cursor": null}));
    // Nor in B's unfiltered list.
    let reply = Call::get("/v1/payments").key(KEY_B).send(&app.router).await;
    assert_eq!(reply.json(), json!({"payments": [], "next_cursor": null}));

    // A's payment is untouched.
    let reply = Call::get(format!("/v1/payments/{id}"))
        .key(KEY_A)
        .send(&app.router)
        .await;
    assert_eq!(reply.json()["status"], "authorized");
}

#[tokio::test]
async fn hostile_requests_get_specific_json_errors() {
    let (app, _dir) = app().await;
    let id = authorize(&app, KEY_A, "k", "10", "r").await;

    // not JSON
    let reply = Call::post("/v1/payments/authorize")
        .key(KEY_A)
        .idem("h1")
        .header("content-type", "application/json")
        .raw("{not json")
        .send(&app.router)
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.code(), "invalid_request");

    // JSON but no content type
    let reply = Call::post("/v1/payments/authorize")
        .key(KEY_A)
        .idem("h2")
        .raw(serde_json::to_vec(&authorize_body("1", "r")).expect("json"))
        .send(&app.router)
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.code(), "invalid_request");

    // missing fields
    let reply = Call::post("/v1/payments/authorize")
        .key(KEY_A)
        .idem("h3")
        .json(&json!({"requestId": "x"}))
        .send(&app.router)
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply.json()["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("paymentPayload")
    );

    // huge body
    let huge = format!("{{\"amount\":\"{}\"}}", "1".repeat(200 * 1024));
    let reply = Call::post(format!("/v1/payments/{id}/refund"))
        .key(KEY_A)
        .idem("h4")
        .header("content-type", "application/json")
        .raw(huge)
        .send(&app.router)
        .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.code(), "payload_too_large");

    // bad uuid in the path
    let reply = Call::get("/v1/payments/not-a-uuid")
        .key(KEY_A)
        .send(&app.router)
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.code(), "invalid_request");
    let reply = Call::post("/v1/payments/123/capture")
        .key(KEY_A)
        .idem("h5")
        .json(&json!({}))
        .send(&app.router)
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.code(), "invalid_request");

    // amounts: negative, fractional, exponent, number instead of string, too big, empty
    for (n, amount) in [
        json!("-1"),
        json!("1.5"),
        json!("1e3"),
        json!(100),
        json!("1".repeat(40)),
        json!(""),
        json!(" 1"),
    ]
    .into_iter()
    .enumerate()
    {
        let body = json!({"amount": amount});
        let reply = act(&app, KEY_A, &id, "capture", &format!("amt{n}"), Some(body)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "amount {amount}");
        assert_eq!(reply.code(), "invalid_request", "amount {amount}");
    }

    // unknown field on void
    let reply = act(&app, KEY_A, &id, "void", "h6", Some(json!({"force": true}))).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);

    // unknown path and wrong method: JSON too
    let reply = Call::get("/v2/nothing").send(&app.router).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.code(), "not_found");
    let reply = Call::new(axum::http::Method::DELETE, format!("/v1/payments/{id}"))
        .key(KEY_A)
        .send(&app.router)
        .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.code(), "method_not_allowed");

    // the payment was never changed by any of the above
    let reply = Call::get(format!("/v1/payments/{id}"))
        .key(KEY_A)
        .send(&app.router)
        .await;
    assert_eq!(reply.json()["status"], "authorized");
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let (app, _dir) = app().await;
    let reply = Call::get("/healthz")
        .header("x-request-id", "abc-123")
        .send(&app.router)
        .await;
    assert_eq!(reply.header("x-request-id"), Some("abc-123"));
    let reply = Call::get("/healthz").send(&app.router).await;
    let generated = reply.header("x-request-id").expect("generated id");
    assert!(uuid::Uuid::parse_str(generated).is_ok());
    let reply = Call::get("/healthz")
        .header("x-request-id", &"x".repeat(500))
        .send(&app.router)
        .await;
    assert_ne!(reply.header("x-request-id"), Some("x".repeat(500).as_str()));
}

#[tokio::test]
async fn healthz_and_readyz() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = sqlite_store(&dir).await;
    let app = app_with(store.clone(), FakeService::default(), |state| {
        state.readiness = Readiness::new()
            .with_database(store.clone())
            .with_check("rpc", || async { Ok(()) })
            .with_check("signer_lease", || async { Ok(()) });
    })
    .await;
    let reply = Call::get("/healthz").send(&app.router).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["status"], "ok");
    let reply = Call::get("/readyz").send(&app.router).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["status"], "ready");
    assert_eq!(reply.json()["checks"]["database"], "ok");

    let dir2 = tempfile::tempdir().expect("tempdir");
    let store2 = sqlite_store(&dir2).await;
    let failing = app_with(store2.clone(), FakeService::default(), |state| {
        state.readiness = Readiness::new()
            .with_timeout(std::time::Duration::from_millis(200))
            .with_database(store2.clone())
            .with_check("rpc", || async { Err("connection refused".to_owned()) })
            .with_check("signer_lease", || async {
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                Ok(())
            });
    })
    .await;
    let reply = Call::get("/readyz").send(&failing.router).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    let v = reply.json();
    assert_eq!(v["status"], "not_ready");
    assert_eq!(v["checks"]["database"], "ok");
    assert_eq!(v["checks"]["rpc"], "error: connection refused");
    assert!(
        v["checks"]["signer_lease"]
            .as_str()
            .unwrap_or("")
            .contains("timed out")
    );

    // the database going away fails readiness too
    store2.close().await;
    let reply = Call::get("/readyz").send(&failing.router).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_ne!(reply.json()["checks"]["database"], "ok");
}

#[tokio::test]
async fn readyz_signer_lease_check() {
    use alloy::primitives::Address;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = sqlite_store(&dir).await;
    let signer = Address::repeat_byte(0x5E);
    let app = app_with(store.clone(), FakeService::default(), |state| {
        state.readiness = Readiness::new().with_signer_lease(store.clone(), 31337, signer);
    })
    .await;
    let reply = Call::get("/readyz").send(&app.router).await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "unknown signer"
    );
    store.upsert_signer(31337, signer, 0).await.expect("signer");
    let reply = Call::get("/readyz").send(&app.router).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "no lease");
    assert!(
        reply.json()["checks"]["signer_lease"]
            .as_str()
            .unwrap_or("")
            .contains("no instance")
    );
    store
        .acquire_lease(31337, signer, "other-instance", 30_000)
        .await
        .expect("lease")
        .expect("acquired");
    let reply = Call::get("/readyz").send(&app.router).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.json());
}

/// Checks the exposition line by line: comments, `name{labels} value`, `# EOF` last.
fn parse_exposition(text: &str) -> Vec<(String, String, f64)> {
    let mut samples = vec![];
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.last(),
        Some(&"# EOF"),
        "exposition must end with # EOF"
    );
    for line in &lines {
        if line.starts_with('#') {
            let mut parts = line.splitn(4, ' ');
            let _hash = parts.next();
            let kind = parts.next().unwrap_or("");
            assert!(
                ["HELP", "TYPE", "UNIT", "EOF"].contains(&kind),
                "bad comment line {line}"
            );
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad sample {line}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => {
                assert!(rest.ends_with('}'), "bad labels in {line}");
                (n.to_owned(), rest.trim_end_matches('}').to_owned())
            }
            None => (series.to_owned(), String::new()),
        };
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name {name}"
        );
        samples.push((name, labels, value));
    }
    samples
}

#[tokio::test]
async fn metrics_exposition() {
    let (app, _dir) = app().await;
    // a payment in the store, so the gauge has something to count
    let merchant = app.merchant_a.id;
    let stored_status = sqlx_insert_payment(&app.store, merchant).await;
    let _ = authorize(&app, KEY_A, "m1", "10", "r").await;
    let _ = Call::get("/v1/payments/not-a-uuid")
        .key(KEY_A)
        .send(&app.router)
        .await;
    // The facilitator endpoints are served beside the REST API, under the same metrics layer.
    let supported = Call::get("/supported").key(KEY_A).send(&app.router).await;
    assert_eq!(supported.status, StatusCode::OK);

    let reply = Call::get("/metrics").send(&app.router).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply
            .header("content-type")
            .unwrap_or("")
            .starts_with("application/openmetrics-text")
    );
    let text = String::from_utf8(reply.body.to_vec()).expect("utf8");
    let samples = parse_exposition(&text);
    for name in [
        "x402_tx_latency_seconds",
        "x402_tx_confirmations",
        "x402_gas_used_total",
        "x402_payments",
        "x402_webhook_queue_depth",
        "x402_tx_queue_depth",
        "x402_http_requests_total",
        "x402_http_request_duration_seconds",
        "x402_store_write_transactions_total",
        "x402_store_writer_busy_seconds_total",
    ] {
        assert!(
            text.contains(&format!("# TYPE {}", name.trim_end_matches("_total"))),
            "no TYPE for {name}:\n{text}"
        );
    }
    let find = |name: &str, labels: &str| {
        samples
            .iter()
            .find(|(n, l, _)| n == name && l.contains(labels))
            .map(|(_, _, v)| *v)
    };
    assert_eq!(
        find("x402_payments", &format!("status=\"{stored_status}\"")),
        Some(1.0),
        "{text}"
    );
    assert_eq!(find("x402_payments", "status=\"voided\""), Some(0.0));
    let total: f64 = samples
        .iter()
        .filter(|(n, _, _)| n == "x402_payments")
        .map(|(_, _, v)| v)
        .sum();
    assert_eq!(total, 1.0);
    assert_eq!(find("x402_webhook_queue_depth", ""), Some(0.0));
    // The authorize's idempotency record: begun and completed, at least two commits.
    let writes = find("x402_store_write_transactions_total", "").expect("writes counter");
    assert!(
        writes >= 2.0 && writes <= app.store.write_count() as f64,
        "{writes} vs {}",
        app.store.write_count()
    );
    // SQLite: the payment's insert held the write turn for a while, and the scrape read the
    // store's own total.
    let busy = find("x402_store_writer_busy_seconds_total", "").expect("writer busy counter");
    let held = app
        .store
        .writer_busy_secs()
        .expect("a SQLite store times its write turn");
    assert!(busy > 0.0 && busy <= held, "{busy} vs {held}");
    assert_eq!(
        find(
            "x402_http_requests_total",
            "route=\"/v1/payments/authorize\",status=\"201\""
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        find(
            "x402_http_requests_total",
            "route=\"/v1/payments/{id}\",status=\"400\""
        ),
        Some(1.0)
    );
    assert!(
        find(
            "x402_http_request_duration_seconds_count",
            "route=\"/v1/payments/authorize\""
        )
        .is_some()
    );
    assert_eq!(
        find(
            "x402_http_requests_total",
            "method=\"GET\",route=\"/supported\",status=\"200\""
        ),
        Some(1.0),
        "{text}"
    );

    // the handle others use
    let metrics = x402_escrow_operator::api::Metrics::new();
    metrics.observe_tx_latency("capture", std::time::Duration::from_secs(3));
    metrics.observe_tx_confirmations("capture", 2);
    metrics.add_gas_used("capture", 51_000);
    metrics.add_gas_used("capture", 1_000);
    let text = metrics.render();
    let samples = parse_exposition(&text);
    let find = |name: &str| {
        samples
            .iter()
            .find(|(n, l, _)| n == name && l.contains("kind=\"capture\""))
            .map(|(_, _, v)| *v)
    };
    assert_eq!(find("x402_gas_used_total"), Some(52_000.0), "{text}");
    assert_eq!(find("x402_tx_latency_seconds_count"), Some(1.0));
    assert_eq!(find("x402_tx_confirmations_sum"), Some(2.0));
}

/// Inserts one `authorized` payment row for `merchant` straight through the store.
async fn sqlx_insert_payment(
    store: &x402_escrow_operator::store::Store,
    merchant: uuid::Uuid,
) -> &'static str {
    insert_payment_row(store, merchant).await.status.as_str()
}

/// Inserts one payment row for `merchant` straight through the store and returns it.
async fn insert_payment_row(
    store: &x402_escrow_operator::store::Store,
    merchant: uuid::Uuid,
) -> x402_escrow_operator::store::Payment {
    use alloy::primitives::{Address, B256, U256};
    use x402_escrow_operator::store::{NewPayment, PaymentInfoRecord};
    let new = NewPayment {
        merchant_id: merchant,
        payment_hash: B256::repeat_byte(7),
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
            salt: U256::from(1),
        },
        amount: 1000,
        flow: x402_escrow_operator::lifecycle::Flow::Authorize,
        request_id: None,
        idempotency_key: None,
        capture_deadline_at: None,
    };
    let (payment, _) = store
        .insert_payment(&new, None)
        .await
        .expect("insert payment");
    payment
}

#[test]
fn openapi_parses_and_documents_every_route() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml"))
        .expect("openapi.yaml");
    let doc: serde_json::Value = serde_norway::from_str(&text).expect("openapi.yaml is YAML");
    assert!(
        doc["openapi"].as_str().unwrap_or("").starts_with("3.1"),
        "OpenAPI 3.1"
    );
    for (method, path) in x402_escrow_operator::api::routes::ROUTES {
        assert!(
            doc["paths"][*path][*method].is_object(),
            "openapi.yaml does not document {method} {path}"
        );
    }
    // every stable error code is listed
    let codes = serde_json::to_string(&doc["components"]["schemas"]["ErrorCode"]).expect("json");
    let published = ErrorCode::ALL.iter().map(|c| c.as_str());
    for code in published.chain(["payload_too_large", "method_not_allowed"]) {
        assert!(
            codes.contains(&format!("\"{code}\"")),
            "ErrorCode schema lacks {code}"
        );
    }
}

/// The JSON a value serializes to.
fn to_json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).expect("serializable")
}

/// Resolves a local `$ref` (`#/components/schemas/Payment`).
fn resolve<'a>(doc: &'a serde_json::Value, schema: &'a serde_json::Value) -> &'a serde_json::Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let pointer = reference.trim_start_matches('#');
            resolve(
                doc,
                doc.pointer(pointer).unwrap_or(&serde_json::Value::Null),
            )
        }
        None => schema,
    }
}

/// Whether `value` has JSON type `name` (`integer` also accepts nothing fractional).
fn has_type(value: &serde_json::Value, name: &str) -> bool {
    match name {
        "null" => value.is_null(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => false,
    }
}

/// The ways `value` (emitted by the code at `path`) breaks `schema`: a missing required field,
/// a property the schema does not declare, a wrong type, a value outside an enum. Empty when
/// it conforms.
fn schema_violations(
    doc: &serde_json::Value,
    schema: &serde_json::Value,
    value: &serde_json::Value,
    path: &str,
) -> Vec<String> {
    let schema = resolve(doc, schema);
    if let Some(options) = schema["oneOf"].as_array() {
        let fits = options
            .iter()
            .any(|option| schema_violations(doc, option, value, path).is_empty());
        return if fits {
            Vec::new()
        } else {
            vec![format!("{path}: {value} matches no oneOf alternative")]
        };
    }
    let mut out = Vec::new();
    match &schema["type"] {
        serde_json::Value::String(name) if !has_type(value, name) => {
            out.push(format!("{path}: {value} is not of type {name}"));
            return out;
        }
        serde_json::Value::Array(names)
            if !names
                .iter()
                .any(|n| n.as_str().is_some_and(|n| has_type(value, n))) =>
        {
            out.push(format!("{path}: {value} is not of the types {names:?}"));
            return out;
        }
        _ => {}
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        out.push(format!("{path}: {value} is not in the enum"));
    }
    if let (Some(properties), Some(object)) = (schema["properties"].as_object(), value.as_object())
    {
        for required in schema["required"].as_array().into_iter().flatten() {
            let name = required.as_str().unwrap_or_default();
            if !object.contains_key(name) {
                out.push(format!("{path}: required field {name} is missing"));
            }
        }
        for (name, field) in object {
            match properties.get(name) {
                Some(field_schema) => out.extend(schema_violations(
                    doc,
                    field_schema,
                    field,
                    &format!("{path}.{name}"),
                )),
                None if schema
                    .get("additionalProperties")
                    .is_some_and(|extra| extra != &serde_json::Value::Bool(false)) => {}
                None => out.push(format!("{path}: {name} is not in the schema")),
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, item) in array.iter().enumerate() {
            out.extend(schema_violations(doc, items, item, &format!("{path}[{i}]")));
        }
    }
    out
}

/// Checks `value` against the component schema `name`, with every violation in the message.
fn assert_conforms(doc: &serde_json::Value, name: &str, value: &serde_json::Value) {
    let schema = &doc["components"]["schemas"][name];
    assert!(schema.is_object(), "openapi.yaml has no schema {name}");
    let violations = schema_violations(doc, schema, value, name);
    assert!(
        violations.is_empty(),
        "{name} as the code writes it does not match openapi.yaml:\n  {}\n{value:#}",
        violations.join("\n  ")
    );
}

/// The document's enum of schema `name`, as strings.
fn schema_enum(doc: &serde_json::Value, name: &str) -> Vec<String> {
    doc["components"]["schemas"][name]["enum"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// openapi.yaml against the code: the JSON the real types write (a payment built by the
/// operator's own `payment_view` from a stored row, with and without its optional parts; the
/// payment list; the merchant terms; every error envelope; the request bodies) has every field
/// the schema requires and no property the schema lacks, and the status, flow and error-code
/// enums list exactly what the code can write.
#[tokio::test]
async fn openapi_schemas_match_what_the_code_writes() {
    use alloy::primitives::{Address, B256};
    use x402_escrow_operator::api::errors::ApiError;
    use x402_escrow_operator::lifecycle::{ALL_STATUSES, Flow};
    use x402_escrow_operator::service::{
        CaptureRequest, RefundRequest, TransactionView, payment_view,
    };
    use x402_escrow_sdk::Network;
    use x402_escrow_sdk::merchant::{MerchantTerms, TermsAsset, TermsEscrow};
    use x402_escrow_types::{ErrorEnvelope, PaymentList};

    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml"))
        .expect("openapi.yaml");
    let doc: serde_json::Value = serde_norway::from_str(&text).expect("openapi.yaml is YAML");

    // A payment as the operator builds it: fresh (nulls everywhere optional) and full.
    let (app, _dir) = app().await;
    let stored = insert_payment_row(&app.store, app.merchant_a.id).await;
    let fresh = payment_view(&stored, Vec::new());
    assert_conforms(&doc, "Payment", &to_json(&fresh));
    let mut full_row = stored.clone();
    full_row.request_id = Some("req-1".into());
    full_row.capture_deadline_at = Some(1_700_000_000_000);
    full_row.last_error_code = Some("capture_failed".into());
    full_row.last_error_message = Some("reverted".into());
    full_row.flow = Flow::Charge;
    let full = payment_view(
        &full_row,
        vec![
            TransactionView {
                kind: "authorize".into(),
                hash: Some(B256::repeat_byte(1)),
                status: "final".into(),
                block_number: Some(7),
                call: None,
            },
            TransactionView {
                kind: "capture".into(),
                hash: None,
                status: "queued".into(),
                block_number: None,
                call: None,
            },
            TransactionView {
                kind: "execute".into(),
                hash: None,
                status: "signed".into(),
                block_number: None,
                call: Some("capture".into()),
            },
        ],
    );
    let full_json = to_json(&full);
    assert_conforms(&doc, "Payment", &full_json);
    let payment_schema = &doc["components"]["schemas"]["Payment"];
    // The checker itself is not vacuous: a missing required field, an undeclared property, a
    // status outside the enum and a wrong type are each caught.
    let mut broken = full_json.clone();
    if let Some(object) = broken.as_object_mut() {
        object.remove("paymentHash");
        object.insert("surprise".into(), serde_json::json!(1));
        object.insert("status".into(), serde_json::json!("paid"));
        object.insert("chainId".into(), serde_json::json!("84532"));
    }
    assert_eq!(
        schema_violations(&doc, payment_schema, &broken, "Payment").len(),
        4,
        "{broken}"
    );
    let documented: Vec<&String> = payment_schema["properties"]
        .as_object()
        .map(|p| p.keys().collect())
        .unwrap_or_default();
    for name in documented {
        assert!(
            full_json.get(name).is_some(),
            "openapi.yaml documents Payment.{name}, which the code never writes"
        );
    }

    // GET /v1/payments: its inline schema.
    let list = to_json(&PaymentList {
        payments: vec![fresh, full],
        next_cursor: Some("c".into()),
    });
    let list_schema = &doc["paths"]["/v1/payments"]["get"]["responses"]["200"]["content"]["application/json"]
        ["schema"];
    let violations = schema_violations(&doc, list_schema, &list, "PaymentList");
    assert!(violations.is_empty(), "{violations:?}");

    // Statuses and flows: the enums are exactly the code's.
    let mut statuses: Vec<String> = ALL_STATUSES.iter().map(|s| s.as_str().to_owned()).collect();
    let mut listed = schema_enum(&doc, "PaymentStatus");
    statuses.sort();
    listed.sort();
    assert_eq!(listed, statuses, "PaymentStatus enum");
    let flows = payment_schema["properties"]["flow"]["enum"].clone();
    assert_eq!(
        flows,
        serde_json::json!([Flow::Authorize.as_str(), Flow::Charge.as_str()])
    );

    // Error envelopes: every code, with and without an x402 reason; the enum is exactly
    // ErrorCode::ALL.
    for code in ErrorCode::ALL {
        let body: serde_json::Value =
            serde_json::from_slice(&ApiError::new(code, "detail").body()).expect("error json");
        assert_conforms(&doc, "Error", &body);
        assert_conforms(&doc, "Error", &to_json(&ErrorEnvelope::new(code, "detail")));
    }
    let with_reason = ApiError {
        reason: Some("invalid_auth_capture_evm_capture_deadline_expired"),
        ..ApiError::new(ErrorCode::Expired, "too late")
    };
    let body: serde_json::Value = serde_json::from_slice(&with_reason.body()).expect("json");
    assert_conforms(&doc, "Error", &body);
    let mut codes: Vec<String> = ErrorCode::ALL
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect();
    let mut listed = schema_enum(&doc, "ErrorCode");
    codes.sort();
    listed.sort();
    assert_eq!(listed, codes, "ErrorCode enum");

    // GET /v1/merchant.
    let terms = MerchantTerms {
        merchant_id: uuid::Uuid::nil().to_string(),
        name: "shop".into(),
        network: Network::eip155(84532),
        receivers: vec![Address::repeat_byte(0xAA)],
        capture_authorizer: Address::repeat_byte(0x0B),
        capture_authorizers: Vec::new(),
        fee_recipient: Address::repeat_byte(0xFE),
        fee_bps: 100,
        capture_deadline_seconds: 3600,
        expiry_margin_seconds: 60,
        clock_skew_seconds: 5,
        escrows: vec![TermsEscrow {
            label: "local".into(),
            escrow: Address::repeat_byte(0xE5),
            erc3009_collector: Address::repeat_byte(0xC0),
            refund_collector: Some(Address::repeat_byte(0xC1)),
            permit2_collector: None,
        }],
        assets: vec![TermsAsset {
            address: Address::repeat_byte(0x70),
            name: "USDC".into(),
            version: "2".into(),
            decimals: 6,
        }],
    };
    assert_conforms(&doc, "MerchantTerms", &to_json(&terms));

    // The refund reserve, as `GET /v1/reserve` and its statement write it.
    let entry = x402_escrow_types::ReserveEntryView {
        id: uuid::Uuid::nil().to_string(),
        asset: Address::repeat_byte(0x70),
        kind: "debit".into(),
        amount: 5,
        balance_after: 7,
        reason: "refund".into(),
        payment_id: Some(uuid::Uuid::nil().to_string()),
        transaction_hash: Some(B256::repeat_byte(2)),
        log_index: Some(3),
        note: Some("n".into()),
        created_at: 1_700_000_000_000,
    };
    for topup_bps in [None, Some(250)] {
        let reserve = x402_escrow_types::ReserveView {
            merchant_id: uuid::Uuid::nil().to_string(),
            refund_account: Address::repeat_byte(0x0B),
            deposit_addresses: vec![Address::repeat_byte(0x44)],
            topup_bps,
            balances: vec![x402_escrow_types::ReserveBalanceView {
                asset: Address::repeat_byte(0x70),
                balance: 7,
                credited: 12,
                debited: 5,
                released: 0,
            }],
        };
        assert_conforms(&doc, "Reserve", &to_json(&reserve));
    }
    for next_cursor in [None, Some("c".to_owned())] {
        let statement = x402_escrow_types::ReserveStatement {
            entries: vec![entry.clone()],
            next_cursor,
        };
        assert_conforms(&doc, "ReserveStatement", &to_json(&statement));
    }

    // Request bodies as the merchant client writes them.
    for body in [
        to_json(&CaptureRequest::default()),
        to_json(&CaptureRequest {
            amount: Some(2_500),
        }),
    ] {
        assert_conforms(&doc, "CaptureRequest", &body);
    }
    assert_conforms(
        &doc,
        "RefundRequest",
        &to_json(&RefundRequest { amount: 1_000 }),
    );
    let authorize = x402_escrow_types::AuthorizeRequest {
        payment_payload: serde_json::json!({
            "x402Version": 2,
            "accepted": requirements("10"),
            "payload": {"signature": "0x01"}
        }),
        payment_requirements: requirements("10"),
        request_id: Some("req-1".into()),
        wait: None,
    };
    assert_conforms(&doc, "AuthorizeRequest", &to_json(&authorize));
}
