//! `x402-escrow wallet` against the demo's stack (anvil, the contracts, the operator as a child
//! process) and the demo merchant behind the x402 layer. The client is a workflow node's: plain
//! JSON over HTTP with a bearer token, the way curl would call `POST /v1/fetch`.
//!
//! - the escrow flow, `exact`, and the preference for `auth-capture` when both are offered;
//! - refusals naming their rule with no signature made (caps, allowlists, kill switch,
//!   revocation, expiry), a void returning budget, an approval round trip, `/v1/sign`;
//! - 50 concurrent fetches against a cap that fits exactly 10;
//! - a crash between signing and sending (in process, and the real binary SIGKILLed while its
//!   paying request is in flight): the retry resends the same bytes, nothing is paid
//!   twice, and an abandoned signature is released once the chain passes its validity;
//! - hostile input: SSRF-style URLs, header injection, oversized bodies.

mod cli_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use axum::Router;
use axum::routing::{get, post};
use cli_support::BIN;
use serde_json::{Value, json};
use x402_escrow_demo::{Stack, merchant_app, serve_app};
use x402_escrow_sdk::merchant::X402Layer;
use x402_escrow_wallet::buyers::Buyers;
use x402_escrow_wallet::store::{PaymentRow, State, Store};
use x402_escrow_wallet::{CrashPoint, Wallet, WalletConfig, api, reconcile};

const OWNER: &str = "owner-token-for-the-tests-0123456789";
const WEATHER: u64 = 10_000;

/// A running wallet over a SQLite file in the stack's directory.
struct WalletServer {
    wallet: Wallet,
    url: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start_wallet(stack: &Stack, db: &str, webhook: Option<String>) -> WalletServer {
    let path = stack.dir().join(db);
    let store = Store::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let mut buyers = Buyers::default();
    buyers.insert("main", stack.payer.clone()).unwrap();
    let mut config = WalletConfig::new(OWNER.to_owned());
    config.owner_webhook = webhook.map(|u| u.parse().unwrap());
    config.max_response_body = 64 * 1024;
    config.max_request_body = 256 * 1024;
    let wallet = Wallet::new(store, buyers, stack.registry(), config)
        .unwrap()
        .with_chain(stack.chain.plain.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stop = serve_app(listener, api::router(wallet.clone()));
    WalletServer {
        wallet,
        url,
        _stop: stop,
    }
}

/// The demo merchant twice: auth-capture only, and auth-capture + exact; plus a free `/big`.
async fn merchants(stack: &Stack) -> (String, String, Vec<tokio::sync::oneshot::Sender<()>>) {
    let mut stops = Vec::new();
    let mut urls = Vec::new();
    for offer_exact in [false, true] {
        let mut config = stack.payments_config();
        config.offer_exact = offer_exact;
        let layer = X402Layer::new(stack.operator_client(), config);
        let app = merchant_app(&layer, Arc::new(AtomicUsize::new(0)))
            .route("/big", get(|| async { "x".repeat(100 * 1024) }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        urls.push(format!("http://{}", listener.local_addr().unwrap()));
        stops.push(serve_app(listener, app));
    }
    (urls[0].clone(), urls[1].clone(), stops)
}

/// A curl-shaped client: JSON in, status and JSON out.
#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    fn new(base: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: base.to_owned(),
        }
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
        idempotency: Option<&str>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(key) = idempotency {
            request = request.header("Idempotency-Key", key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn fetch(&self, token: &str, url: &str, idempotency: Option<&str>) -> (u16, Value) {
        self.call(
            "POST",
            "/v1/fetch",
            token,
            Some(json!({"url": url, "method": "GET", "headers": {"Accept": "application/json"}})),
            idempotency,
        )
        .await
    }

    /// Creates a key with `rules`; returns (id, token).
    async fn key(&self, name: &str, rules: Value) -> (String, String) {
        let (status, body) = self
            .call(
                "POST",
                "/v1/keys",
                OWNER,
                Some(json!({"name": name, "buyer": "main", "rules": rules})),
                None,
            )
            .await;
        assert_eq!(status, 201, "{body}");
        (
            body["key"]["id"].as_str().unwrap().to_owned(),
            body["token"].as_str().unwrap().to_owned(),
        )
    }

    async fn usage(&self, id: &str) -> Value {
        let (status, body) = self
            .call("GET", &format!("/v1/keys/{id}/usage"), OWNER, None, None)
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }
}

fn rules(stack: &Stack, extra: Value) -> Value {
    let mut rules = json!({
        "assets": [stack.token.address],
        "networks": [format!("eip155:{}", stack.deployment.chain_id)],
        "hosts": ["127.0.0.1"],
    });
    for (k, v) in extra.as_object().unwrap() {
        rules[k] = v.clone();
    }
    rules
}

async fn payer_balance(stack: &Stack) -> U256 {
    stack.balances().await.unwrap().payer
}

/// Asserts a refusal naming `rule` with `code`, whose ledger row carries no signature.
async fn assert_refused(server: &WalletServer, answer: &(u16, Value), code: &str, rule: &str) {
    let (status, body) = answer;
    assert_eq!(*status, 403, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert_eq!(body["error"]["rule"], rule, "{body}");
    if let Some(id) = body["error"]["paymentId"].as_str() {
        let row = server.wallet.store().payment(id).await.unwrap().unwrap();
        let expected = if code == "approval_rejected" {
            State::Rejected
        } else {
            State::Refused
        };
        assert_eq!(row.state, expected);
        assert_eq!(row.rule.as_deref(), Some(rule));
        assert!(
            row.header_value.is_none(),
            "a refused payment has no signature"
        );
    }
}

/// Polls `check` until it holds (the deadline only bounds a failure).
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wallet_pays_refuses_by_rule_settles_and_resists_hostile_input() {
    let stack = Stack::start(BIN.as_ref(), None, None).await.expect("stack");
    let (plain, both, _merchants) = merchants(&stack).await;

    // The owner's webhook receiver.
    let notified = Arc::new(AtomicUsize::new(0));
    let hook = {
        let notified = notified.clone();
        Router::new().route(
            "/hook",
            post(move |body: axum::Json<Value>| {
                let notified = notified.clone();
                async move {
                    assert_eq!(body.0["type"], "payment.pending_approval");
                    notified.fetch_add(1, Ordering::SeqCst);
                    "ok"
                }
            }),
        )
    };
    let hook_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", hook_listener.local_addr().unwrap());
    let _hook = serve_app(hook_listener, hook);

    let server = start_wallet(&stack, "wallet.db", Some(hook_url)).await;
    let client = Client::new(&server.url);
    let (key_a, token_a) = client
        .key(
            "agent",
            rules(
                &stack,
                json!({"maxPerPayment": "1000000", "totalBudget": "5000000"}),
            ),
        )
        .await;

    // A free resource: no payment.
    let (status, body) = client
        .fetch(&token_a, &format!("{plain}/health"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], 200);
    assert_eq!(body["body"], "ok");
    assert!(body.get("paymentId").is_none());

    // The escrow flow: paid, held then captured.
    let before = payer_balance(&stack).await;
    let (status, body) = client
        .fetch(&token_a, &format!("{plain}/weather"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], 200);
    assert!(
        body["body"].as_str().unwrap().contains("forecast"),
        "{body}"
    );
    assert_eq!(body["payment"]["scheme"], "auth-capture");
    assert_eq!(body["payment"]["amount"], WEATHER.to_string());
    assert!(body["receipt"]["success"].as_bool().unwrap(), "{body}");
    let state = body["payment"]["state"].as_str().unwrap();
    assert!(state == "authorized" || state == "captured", "{body}");
    assert_eq!(payer_balance(&stack).await, before - U256::from(WEATHER));
    let operator_id = body["receipt"]["extensions"]["x402-escrow"]["paymentId"]
        .as_str()
        .unwrap()
        .to_owned();
    stack.wait_for(&operator_id, "captured").await.unwrap();
    reconcile::reconcile_once(&server.wallet).await.unwrap();
    let weather_id = body["paymentId"].as_str().unwrap().to_owned();
    let row = stored(&server, &weather_id).await;
    assert_eq!(row.state, State::Captured);

    // The merchant refunds a quarter on chain, long after the receipt: the wallet reads
    // `paymentState`, records the payment `refunded` with what came back, and returns that
    // part to the key's budget.
    let spent = as_u64(&client.usage(&key_a).await["spentTotal"]);
    let payer_before_refund = payer_balance(&stack).await;
    let refund = WEATHER / 4;
    stack
        .operator_client()
        .refund(&operator_id, x402_escrow_sdk::Amount::from(refund))
        .await
        .expect("refund");
    stack
        .wait_for(&operator_id, "partially_refunded")
        .await
        .unwrap();
    assert_eq!(
        payer_balance(&stack).await,
        payer_before_refund + U256::from(refund)
    );
    reconcile::reconcile_once(&server.wallet).await.unwrap();
    let row = stored(&server, &weather_id).await;
    assert_eq!(row.state, State::Refunded);
    assert_eq!(row.returned, x402_escrow_sdk::Amount::from(refund));
    let usage = client.usage(&key_a).await;
    assert_eq!(as_u64(&usage["spentTotal"]), spent - refund, "{usage}");
    assert_eq!(as_u64(&usage["returned"]), refund, "{usage}");
    // Reconciling again changes nothing.
    reconcile::reconcile_once(&server.wallet).await.unwrap();
    assert_eq!(as_u64(&client.usage(&key_a).await["returned"]), refund);

    // Both schemes offered: auth-capture is preferred.
    let (status, body) = client
        .fetch(&token_a, &format!("{both}/weather"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["payment"]["scheme"], "auth-capture");

    // exact, for a key that allows only exact.
    let (_, token_exact) = client
        .key("exact only", rules(&stack, json!({"schemes": ["exact"]})))
        .await;
    let before = payer_balance(&stack).await;
    let (status, body) = client
        .fetch(&token_exact, &format!("{both}/weather"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["payment"]["scheme"], "exact");
    assert_eq!(body["payment"]["state"], "captured");
    assert_eq!(payer_balance(&stack).await, before - U256::from(WEATHER));
    // ... and that key facing an auth-capture-only merchant: refused by `schemes`.
    let answer = client
        .fetch(&token_exact, &format!("{plain}/weather"), None)
        .await;
    assert_refused(&server, &answer, "scheme_not_allowed", "schemes").await;

    // Refusals: nothing signed, nothing moved.
    let before = payer_balance(&stack).await;
    let answer = client
        .fetch(&token_a, &format!("{plain}/report"), None)
        .await;
    assert_refused(
        &server,
        &answer,
        "max_per_payment_exceeded",
        "max_per_payment",
    )
    .await;
    let other = Address::repeat_byte(0x42);
    for (name, extra, code, rule) in [
        (
            "payees",
            json!({"payees": [other]}),
            "payee_not_allowed",
            "payees",
        ),
        (
            "assets",
            json!({"assets": [other]}),
            "asset_not_allowed",
            "assets",
        ),
        (
            "networks",
            json!({"networks": ["eip155:1"]}),
            "network_not_allowed",
            "networks",
        ),
        (
            "hosts",
            json!({"hosts": ["api.example.com"]}),
            "host_not_allowed",
            "hosts",
        ),
        (
            "budget",
            json!({"totalBudget": "5000"}),
            "total_budget_exceeded",
            "total_budget",
        ),
        (
            "daily",
            json!({"dailyCap": "5000"}),
            "daily_cap_exceeded",
            "daily_cap",
        ),
    ] {
        let (_, token) = client.key(name, rules(&stack, extra)).await;
        let answer = client
            .fetch(&token, &format!("{plain}/weather"), None)
            .await;
        assert_refused(&server, &answer, code, rule).await;
    }
    let (_, token_expired) = {
        let (status, body) = client
            .call(
                "POST",
                "/v1/keys",
                OWNER,
                Some(json!({"name": "old", "buyer": "main", "rules": rules(&stack, json!({})), "expiresAt": 1})),
                None,
            )
            .await;
        assert_eq!(status, 201, "{body}");
        ((), body["token"].as_str().unwrap().to_owned())
    };
    let answer = client
        .fetch(&token_expired, &format!("{plain}/weather"), None)
        .await;
    assert_refused(&server, &answer, "key_expired", "expiry").await;
    assert_eq!(payer_balance(&stack).await, before);

    // The kill switch, rotation, revocation.
    let (status, _) = client
        .call(
            "PATCH",
            &format!("/v1/keys/{key_a}"),
            OWNER,
            Some(json!({"disabled": true})),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let answer = client
        .fetch(&token_a, &format!("{plain}/weather"), None)
        .await;
    assert_refused(&server, &answer, "key_disabled", "disabled").await;
    client
        .call(
            "PATCH",
            &format!("/v1/keys/{key_a}"),
            OWNER,
            Some(json!({"disabled": false})),
            None,
        )
        .await;
    let (status, rotated) = client
        .call(
            "POST",
            &format!("/v1/keys/{key_a}/rotate"),
            OWNER,
            None,
            None,
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let old_token = token_a;
    let token_a = rotated["token"].as_str().unwrap().to_owned();
    let (status, body) = client
        .fetch(&old_token, &format!("{plain}/health"), None)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );

    // A void returns the budget: /flaky fails after the hold.
    let spent_before = client.usage(&key_a).await["spentTotal"].clone();
    let returned_before = as_u64(&client.usage(&key_a).await["returned"]);
    let (status, body) = client
        .fetch(&token_a, &format!("{plain}/flaky"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], 500);
    let flaky_id = body["paymentId"].as_str().unwrap().to_owned();
    let wallet = server.wallet.clone();
    eventually("the flaky payment is voided", async || {
        reconcile::reconcile_once(&wallet).await.unwrap();
        wallet
            .store()
            .payment(&flaky_id)
            .await
            .unwrap()
            .unwrap()
            .state
            == State::Voided
    })
    .await;
    let usage = client.usage(&key_a).await;
    assert_eq!(usage["spentTotal"], spent_before, "{usage}");
    assert_eq!(
        as_u64(&usage["returned"]),
        returned_before + WEATHER,
        "{usage}"
    );

    // The approval round trip.
    let (key_ap, token_ap) = client
        .key(
            "approval",
            rules(&stack, json!({"approvalThreshold": "5000"})),
        )
        .await;
    let weather = format!("{plain}/weather");
    let (status, body) = client.fetch(&token_ap, &weather, Some("job-approve")).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["error"]["code"], "approval_pending");
    let pending_id = body["error"]["paymentId"].as_str().unwrap().to_owned();
    let notified_ref = notified.clone();
    eventually("the owner is notified", async || {
        notified_ref.load(Ordering::SeqCst) == 1
    })
    .await;
    let (status, _) = client.fetch(&token_ap, &weather, Some("job-approve")).await;
    assert_eq!(status, 202, "still waiting before the owner decides");
    let (status, body) = client
        .call(
            "POST",
            &format!("/v1/payments/{pending_id}/approve"),
            &token_ap,
            None,
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let (status, body) = client
        .call(
            "POST",
            &format!("/v1/payments/{pending_id}/approve"),
            OWNER,
            None,
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "reserved");
    let before = payer_balance(&stack).await;
    let (status, body) = client.fetch(&token_ap, &weather, Some("job-approve")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["paymentId"], pending_id.as_str());
    assert_eq!(payer_balance(&stack).await, before - U256::from(WEATHER));
    // Rejected: nothing signed, the budget back.
    let (status, body) = client.fetch(&token_ap, &weather, Some("job-reject")).await;
    assert_eq!(status, 202, "{body}");
    let rejected_id = body["error"]["paymentId"].as_str().unwrap().to_owned();
    let (status, _) = client
        .call(
            "POST",
            &format!("/v1/payments/{rejected_id}/reject"),
            OWNER,
            None,
            None,
        )
        .await;
    assert_eq!(status, 200);
    let answer = client.fetch(&token_ap, &weather, Some("job-reject")).await;
    assert_refused(&server, &answer, "approval_rejected", "approval_threshold").await;
    let usage = client.usage(&key_ap).await;
    assert_eq!(usage["spentTotal"], WEATHER.to_string(), "{usage}");

    // /v1/sign: the caller does its own HTTP.
    let challenge = reqwest::get(&weather).await.unwrap();
    assert_eq!(challenge.status(), 402);
    let header = challenge.headers()["payment-required"]
        .to_str()
        .unwrap()
        .to_owned();
    let (status, signed) = client
        .call(
            "POST",
            "/v1/sign",
            &token_a,
            Some(json!({"paymentRequired": header, "url": weather})),
            Some("sign-1"),
        )
        .await;
    assert_eq!(status, 200, "{signed}");
    let (status, again) = client
        .call(
            "POST",
            "/v1/sign",
            &token_a,
            Some(json!({"paymentRequired": header, "url": weather})),
            Some("sign-1"),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        again["headerValue"], signed["headerValue"],
        "the same signed bytes"
    );
    let paid = reqwest::Client::new()
        .get(&weather)
        .header(
            signed["headerName"].as_str().unwrap(),
            signed["headerValue"].as_str().unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), 200);

    // Hostile input.
    let (_, token_any) = client
        .key(
            "any host",
            json!({"assets": [stack.token.address], "maxPerPayment": "10000"}),
        )
        .await;
    let port = plain.rsplit(':').next().unwrap().to_owned();
    for url in [
        format!("http://127.0.0.1:{port}/weather"),
        format!("http://[::1]:{port}/weather"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        format!("http://localhost:{port}/weather"),
    ] {
        let answer = client.fetch(&token_any, &url, None).await;
        assert_refused(&server, &answer, "private_address", "hosts").await;
    }
    let answer = client
        .fetch(&token_a, &format!("http://localhost:{port}/weather"), None)
        .await;
    assert_refused(&server, &answer, "host_not_allowed", "hosts").await;
    for (url, code) in [
        ("file:///etc/passwd".to_owned(), "invalid_url"),
        ("gopher://127.0.0.1/".to_owned(), "invalid_url"),
        (
            format!("http://user:pw@127.0.0.1:{port}/weather"),
            "invalid_url",
        ),
    ] {
        let (status, body) = client.fetch(&token_a, &url, None).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some(code)),
            "{url}: {body}"
        );
    }
    for (name, value, code) in [
        ("X-Note", "a\r\nX-PAYMENT: forged", "invalid_header"),
        ("Host", "evil.example", "header_not_allowed"),
        ("X-PAYMENT", "forged", "header_not_allowed"),
        ("PAYMENT-SIGNATURE", "forged", "header_not_allowed"),
        ("Transfer-Encoding", "chunked", "header_not_allowed"),
        ("Connection", "close", "header_not_allowed"),
    ] {
        let (status, body) = client
            .call(
                "POST",
                "/v1/fetch",
                &token_a,
                Some(json!({"url": weather, "headers": {name: value}})),
                None,
            )
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some(code)),
            "{name}: {body}"
        );
    }
    let huge = "y".repeat(300 * 1024);
    let (status, body) = client
        .call(
            "POST",
            "/v1/fetch",
            &token_a,
            Some(json!({"url": weather, "body": huge})),
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (413, Some("body_too_large")),
        "{body}"
    );
    let (status, body) = client.fetch(&token_a, &format!("{plain}/big"), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (502, Some("upstream_body_too_large"))
    );
    let (status, body) = client
        .call(
            "POST",
            "/v1/fetch",
            &token_a,
            Some(json!({"url": weather, "unknown": 1})),
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_body"))
    );
    let (status, _) = client.call("GET", "/v1/keys", &token_a, None, None).await;
    assert_eq!(status, 403, "a payment key is not the owner");

    // The ledger, page by page; the audit log names the rules; metrics.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/payments?limit=3&cursor={c}"),
            None => "/v1/payments?limit=3".to_owned(),
        };
        let (status, page) = client.call("GET", &path, OWNER, None, None).await;
        assert_eq!(status, 200, "{page}");
        for p in page["payments"].as_array().unwrap() {
            seen.push(p.clone());
        }
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let all = server
        .wallet
        .store()
        .payments_page(None, None, None, 1000)
        .await
        .unwrap();
    assert_eq!(seen.len(), all.len());
    let ids: std::collections::BTreeSet<_> =
        seen.iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), all.len(), "no payment twice across pages");
    for rule in [
        "max_per_payment",
        "payees",
        "daily_cap",
        "total_budget",
        "hosts",
    ] {
        assert!(
            seen.iter()
                .any(|p| p["state"] == "refused" && p["rule"] == rule),
            "a refused payment naming {rule}"
        );
    }
    let (status, mine) = client
        .call("GET", "/v1/payments", &token_ap, None, None)
        .await;
    assert_eq!(status, 200);
    assert!(
        mine["payments"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["keyId"] == key_ap.as_str())
    );
    let (status, audit) = client
        .call("GET", "/v1/audit?limit=500", OWNER, None, None)
        .await;
    assert_eq!(status, 200);
    let entries = audit["entries"].as_array().unwrap();
    for decision in [
        "refused",
        "pending_approval",
        "approved",
        "rejected",
        "signed",
        "settled",
        "key_rotated",
    ] {
        assert!(
            entries.iter().any(|e| e["decision"] == decision),
            "audit has {decision}"
        );
    }
    let metrics = reqwest::get(format!("{}/metrics", server.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .contains("x402_wallet_decisions_total{decision=\"refused\",rule=\"max_per_payment\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("x402_wallet_payments{state=\"voided\"} 1"),
        "{metrics}"
    );

    // Revocation is final.
    let (status, _) = client
        .call(
            "POST",
            &format!("/v1/keys/{key_a}/revoke"),
            OWNER,
            None,
            None,
        )
        .await;
    assert_eq!(status, 200);
    let answer = client.fetch(&token_a, &weather, None).await;
    assert_refused(&server, &answer, "key_revoked", "revoked").await;

    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wallet_fifty_concurrent_fetches_against_a_cap_of_ten_pay_exactly_ten() {
    let stack = Stack::start(BIN.as_ref(), None, None).await.expect("stack");
    let (plain, _, _merchants) = merchants(&stack).await;
    let server = start_wallet(&stack, "wallet.db", None).await;
    let client = Client::new(&server.url);
    let (key, token) = client
        .key(
            "capped",
            rules(&stack, json!({"dailyCap": (10 * WEATHER).to_string()})),
        )
        .await;
    let before = payer_balance(&stack).await;
    let url = format!("{plain}/weather");
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (client, token, url) = (client.clone(), token.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            client.fetch(&token, &url, None).await
        }));
    }
    let (mut paid, mut refused) = (0, 0);
    for task in tasks {
        let (status, body) = task.await.unwrap();
        match status {
            200 => {
                assert_eq!(body["status"], 200, "{body}");
                paid += 1;
            }
            403 => {
                assert_eq!(body["error"]["rule"], "daily_cap", "{body}");
                refused += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!((paid, refused), (10, 40));
    assert_eq!(
        payer_balance(&stack).await,
        before - U256::from(10 * WEATHER)
    );
    let usage = client.usage(&key).await;
    assert_eq!(usage["spent24h"], (10 * WEATHER).to_string(), "{usage}");
    assert_eq!(usage["remaining24h"], "0");
    let signed = server
        .wallet
        .store()
        .key_payments(&key)
        .await
        .unwrap()
        .into_iter()
        .filter(|p| p.header_value.is_some())
        .count();
    assert_eq!(signed, 10, "exactly ten signatures made");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wallet_crash_between_signing_and_sending_pays_once() {
    let stack = Stack::start(BIN.as_ref(), None, None).await.expect("stack");
    let (plain, _, _merchants) = merchants(&stack).await;
    let url = format!("{plain}/weather");
    let before = payer_balance(&stack).await;

    // First life: dies right after persisting the signed payment.
    let first = start_wallet(&stack, "wallet.db", None).await;
    let client = Client::new(&first.url);
    let (key, token) = client
        .key(
            "job runner",
            rules(&stack, json!({"totalBudget": "1000000"})),
        )
        .await;
    first.wallet.set_crash_point(Some(CrashPoint::AfterSign));
    let (status, body) = client.fetch(&token, &url, Some("job-1")).await;
    assert_eq!(status, 500, "{body}");
    let store = first.wallet.store().clone();
    let crashed = store
        .payment_by_idempotency(&key, "job-1")
        .await
        .unwrap()
        .expect("the reservation survives");
    assert_eq!(crashed.state, State::Signed);
    let persisted = crashed
        .header_value
        .clone()
        .expect("persisted before sending");
    assert_eq!(payer_balance(&stack).await, before, "nothing was sent");
    let (status, body) = client.fetch(&token, &url, Some("job-2")).await;
    assert_eq!(status, 500, "{body}");
    drop(first);

    // Second life on the same database: the caller retries job-1 with its idempotency key.
    let second = start_wallet(&stack, "wallet.db", None).await;
    let client = Client::new(&second.url);
    let usage = client.usage(&key).await;
    assert_eq!(
        usage["spentTotal"],
        (2 * WEATHER).to_string(),
        "both reservations kept: {usage}"
    );
    let (status, body) = client.fetch(&token, &url, Some("job-1")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["paymentId"], crashed.id.as_str());
    let resent = second
        .wallet
        .store()
        .payment(&crashed.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        resent.header_value.as_deref(),
        Some(persisted.as_str()),
        "the same signed bytes"
    );
    assert!(matches!(resent.state, State::Authorized | State::Captured));
    let operator_id = body["receipt"]["extensions"]["x402-escrow"]["paymentId"]
        .as_str()
        .unwrap()
        .to_owned();
    stack.wait_for(&operator_id, "captured").await.unwrap();
    assert_eq!(payer_balance(&stack).await, before - U256::from(WEATHER));
    // Once more: completed, nothing paid again.
    let (status, body) = client.fetch(&token, &url, Some("job-1")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("payment_completed"))
    );
    assert_eq!(payer_balance(&stack).await, before - U256::from(WEATHER));
    assert_eq!(
        second
            .wallet
            .store()
            .key_payments(&key)
            .await
            .unwrap()
            .len(),
        2,
        "one ledger row per request"
    );

    // job-2 is never retried: once the chain is past its validity, reconcile releases it.
    let abandoned = second
        .wallet
        .store()
        .payment_by_idempotency(&key, "job-2")
        .await
        .unwrap()
        .unwrap();
    let valid_before = u64::try_from(abandoned.valid_before.unwrap()).unwrap();
    let report = reconcile::reconcile_once(&second.wallet).await.unwrap();
    assert!(
        !report.changes.iter().any(|(id, _, _)| *id == abandoned.id),
        "still valid: kept"
    );
    let now = stack.chain.now().await.unwrap();
    stack
        .chain
        .advance_clock(valid_before.saturating_sub(now) + 5)
        .await
        .unwrap();
    stack.chain.mine(1).await.unwrap();
    reconcile::reconcile_once(&second.wallet).await.unwrap();
    let released = second
        .wallet
        .store()
        .payment(&abandoned.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(released.state, State::Expired);
    let usage = client.usage(&key).await;
    assert_eq!(
        usage["spentTotal"],
        WEATHER.to_string(),
        "budget exact: {usage}"
    );
    assert_eq!(payer_balance(&stack).await, before - U256::from(WEATHER));
    stack.shutdown().await;
}

#[tokio::test]
async fn wallet_cli_manages_keys_without_printing_secrets_twice() {
    let dir =
        std::env::temp_dir().join(format!("x402-wallet-cli-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!(
        "sqlite://{}/wallet.db?mode=rwc",
        dir.join("").display().to_string().trim_end_matches('/')
    );
    let run = |args: Vec<String>| {
        let db = db.clone();
        async move {
            let out = tokio::process::Command::new(BIN)
                .arg("wallet")
                .arg("--database")
                .arg(&db)
                .args(args)
                .env_remove("X402_CONFIG")
                .env_remove("X402_WALLET_OWNER_TOKEN")
                .output()
                .await
                .unwrap();
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        }
    };
    let (ok, stdout, stderr) = run(vec![
        "key".into(),
        "create".into(),
        "--name".into(),
        "nightly job".into(),
        "--buyer".into(),
        "main".into(),
        "--rules".into(),
        r#"{"assets":["0x1111111111111111111111111111111111111111"],"maxPerPayment":"10000"}"#
            .into(),
    ])
    .await;
    assert!(ok, "{stdout}{stderr}");
    let id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("key   "))
        .unwrap()
        .to_owned();
    let token = stdout
        .lines()
        .find_map(|l| l.strip_prefix("token "))
        .unwrap()
        .to_owned();
    assert!(token.starts_with("x402_wk_"));
    let (ok, listed, _) = run(vec!["key".into(), "list".into()]).await;
    assert!(ok);
    assert!(
        listed.contains(&id) && listed.contains("active") && !listed.contains(&token),
        "{listed}"
    );
    // Rules that would be ambiguous are refused with their reason.
    let (ok, _, stderr) = run(vec![
        "key".into(),
        "create".into(),
        "--name".into(),
        "x".into(),
        "--buyer".into(),
        "main".into(),
        "--rules".into(),
        r#"{"maxPerPayment":"10"}"#.into(),
    ])
    .await;
    assert!(!ok);
    assert!(stderr.contains("assets"), "{stderr}");
    let (ok, _, _) = run(vec!["key".into(), "disable".into(), id.clone()]).await;
    assert!(ok);
    let (ok, _, _) = run(vec!["key".into(), "revoke".into(), id.clone()]).await;
    assert!(ok);
    let (_, listed, _) = run(vec!["key".into(), "list".into()]).await;
    assert!(listed.contains("revoked"), "{listed}");
    // serve needs the owner token.
    let (ok, _, stderr) = run(vec![
        "serve".into(),
        "--buyer".into(),
        "main=env:X402_WALLET_TEST_NO_SUCH_VAR".into(),
    ])
    .await;
    assert!(!ok);
    assert!(stderr.contains("X402_WALLET_OWNER_TOKEN"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The payment header a paying request carries (x402 v2, or v1).
/// The wallet's stored payment `id`.
async fn stored(server: &WalletServer, id: &str) -> PaymentRow {
    server.wallet.store().payment(id).await.unwrap().unwrap()
}

/// A decimal-string amount of the wallet's API.
fn as_u64(v: &Value) -> u64 {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a decimal amount: {v}"))
}

fn payment_header(headers: &axum::http::HeaderMap) -> Option<String> {
    ["payment-signature", "x-payment"]
        .iter()
        .find_map(|name| headers.get(*name))
        .map(|v| v.to_str().unwrap().to_owned())
}

/// A reverse proxy in front of the merchant that records every payment header it sees. While
/// `hold` is set, a paying request is reported on `seen` and never forwarded (the connection
/// stays open until its client dies): the wallet has signed and is sending when it is killed.
#[derive(Clone)]
struct HoldingProxy {
    upstream: String,
    hold: Arc<std::sync::atomic::AtomicBool>,
    seen: Arc<std::sync::Mutex<Vec<String>>>,
    held: tokio::sync::mpsc::UnboundedSender<String>,
}

async fn proxy_request(
    axum::extract::State(proxy): axum::extract::State<HoldingProxy>,
    request: axum::extract::Request,
) -> axum::response::Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    if let Some(header) = payment_header(&parts.headers) {
        proxy.seen.lock().unwrap().push(header.clone());
        if proxy.hold.load(Ordering::SeqCst) {
            let _ = proxy.held.send(header);
            std::future::pending::<()>().await;
        }
    }
    let url = format!(
        "{}{}",
        proxy.upstream,
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut forward = reqwest::Client::new()
        .request(parts.method.clone(), url)
        .body(body);
    for (name, value) in &parts.headers {
        if name != axum::http::header::HOST {
            forward = forward.header(name, value);
        }
    }
    let answer = forward.send().await.unwrap();
    let mut response = axum::response::Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        use axum::http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
        if ![CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING].contains(name) {
            response = response.header(name, value);
        }
    }
    response
        .body(axum::body::Body::from(answer.bytes().await.unwrap()))
        .unwrap()
}

/// `x402-escrow wallet serve` as a child process, SIGKILLed on drop.
struct WalletProcess {
    child: std::process::Child,
    url: String,
}

impl Drop for WalletProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the real binary over the SQLite file `db` and waits until it answers.
async fn spawn_wallet(stack: &Stack, db: &std::path::Path) -> WalletProcess {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let deployment = stack
        .dir()
        .join(format!("{}.json", stack.deployment.chain_id));
    let child = std::process::Command::new(BIN)
        .env("X402_WALLET_OWNER_TOKEN", OWNER)
        .env(
            "X402_TEST_BUYER_KEY",
            alloy::hex::encode(stack.payer.to_bytes()),
        )
        .env("RUST_LOG", "warn")
        .args(["wallet", "--database"])
        .arg(format!("sqlite://{}?mode=rwc", db.display()))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--buyer", "main=env:X402_TEST_BUYER_KEY", "--deployment"])
        .arg(&deployment)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let process = WalletProcess {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let health = reqwest::get(format!("{}/healthz", process.url)).await;
        if health.is_ok_and(|r| r.status().is_success()) {
            return process;
        }
        assert!(Instant::now() < deadline, "the wallet never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wallet_process_sigkilled_while_sending_pays_once_with_the_same_bytes() {
    let stack = Stack::start(BIN.as_ref(), None, None).await.expect("stack");
    let (plain, _, _merchants) = merchants(&stack).await;
    let (held_tx, mut held_rx) = tokio::sync::mpsc::unbounded_channel();
    let proxy = HoldingProxy {
        upstream: plain,
        hold: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        seen: Arc::default(),
        held: held_tx,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/weather", listener.local_addr().unwrap());
    let _proxy = serve_app(
        listener,
        Router::new()
            .fallback(proxy_request)
            .with_state(proxy.clone()),
    );
    let db = stack.dir().join("killed-wallet.db");
    let before = payer_balance(&stack).await;

    // First life: the wallet signs, persists, sends — and is SIGKILLed while the request is in
    // flight (the merchant never receives it).
    let mut first = spawn_wallet(&stack, &db).await;
    let client = Client::new(&first.url);
    let (key, token) = client
        .key("cron job", rules(&stack, json!({"totalBudget": "1000000"})))
        .await;
    let in_flight = {
        let client = client.clone();
        let (token, url) = (token.clone(), url.clone());
        tokio::spawn(async move {
            client
                .http
                .post(format!("{}/v1/fetch", client.base))
                .bearer_auth(token)
                .header("Idempotency-Key", "nightly-report")
                // The body `Client::fetch` sends: the retry below is the same request.
                .json(&json!({"url": url, "method": "GET", "headers": {"Accept": "application/json"}}))
                .send()
                .await
        })
    };
    let sent = tokio::time::timeout(Duration::from_secs(60), held_rx.recv())
        .await
        .expect("the wallet sent a paying request")
        .unwrap();
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    assert!(
        in_flight.await.unwrap().is_err(),
        "the caller lost its answer"
    );
    drop(first);

    // What the dead process left on disk: the reservation with the signed bytes it sent.
    let store = Store::connect(&format!("sqlite://{}?mode=rwc", db.display()))
        .await
        .unwrap();
    let left = store
        .payment_by_idempotency(&key, "nightly-report")
        .await
        .unwrap()
        .expect("the reservation survives a SIGKILL");
    assert_eq!(left.state, State::Signed);
    assert_eq!(left.header_value.as_deref(), Some(sent.as_str()));
    assert_eq!(payer_balance(&stack).await, before, "nothing was paid");

    // Second life on the same file; the network is back. The caller retries with its key.
    proxy.hold.store(false, Ordering::SeqCst);
    let second = spawn_wallet(&stack, &db).await;
    let client = Client::new(&second.url);
    assert_eq!(
        client.usage(&key).await["spentTotal"],
        WEATHER.to_string(),
        "the reservation still counts, once"
    );
    let (status, body) = client.fetch(&token, &url, Some("nightly-report")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["paymentId"], left.id.as_str());
    assert_eq!(
        *proxy.seen.lock().unwrap(),
        vec![sent.clone(), sent],
        "the retry sent the same signed bytes, and nothing else was signed"
    );
    let operator_id = body["receipt"]["extensions"]["x402-escrow"]["paymentId"]
        .as_str()
        .unwrap()
        .to_owned();
    stack.wait_for(&operator_id, "captured").await.unwrap();
    assert_eq!(payer_balance(&stack).await, before - U256::from(WEATHER));
    assert_eq!(
        client.usage(&key).await["spentTotal"],
        WEATHER.to_string(),
        "the budget counts the payment exactly once"
    );
    let (status, body) = client.fetch(&token, &url, Some("nightly-report")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("payment_completed")),
        "{body}"
    );
    assert_eq!(payer_balance(&stack).await, before - U256::from(WEATHER));
    stack.shutdown().await;
}
