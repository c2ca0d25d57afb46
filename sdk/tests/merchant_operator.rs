//! OperatorClient against a scripted server: idempotency keys, retries of transient failures
//! only, typed errors, request bodies.

mod support;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use x402_escrow_sdk::Amount;
use x402_escrow_sdk::merchant::operator::idempotency_key;
use x402_escrow_sdk::merchant::{OperatorClient, OperatorError, OperatorRetry, PaymentStatus};

/// (method, path and query, idempotency key, authorization, body).
type Seen = (String, String, Option<String>, Option<String>, String);

#[derive(Default)]
struct Script {
    /// Answers, in order; when empty, 200 with a payment.
    answers: Mutex<VecDeque<(u16, String)>>,
    /// (method, path and query, idempotency key, authorization, body).
    seen: Mutex<Vec<Seen>>,
}

/// The id of the scripted operator's payment (the operator's ids are UUIDs).
const PAYMENT_ID: &str = "0190c2a4-5b6e-7f00-8a1b-2c3d4e5f6a7b";

fn payment(id: &str, status: &str) -> Value {
    json!({
        "id": id,
        "paymentHash": format!("0x{}", "ab".repeat(32)),
        "status": status,
        "amounts": {"authorized": "10000", "captured": "0", "refunded": "0",
                    "capturable": "10000", "refundable": "0"},
        "transactions": [{"kind": "authorize", "hash": format!("0x{}", "cd".repeat(32)),
                          "status": "final", "blockNumber": 12}],
        "requestId": "req-1",
        "lastError": null,
        "someFutureField": true
    })
}

async fn answer(
    State(script): State<Arc<Script>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    script.seen.lock().expect("lock").push((
        method.to_string(),
        uri.to_string(),
        header("idempotency-key"),
        header("authorization"),
        String::from_utf8_lossy(&body).into_owned(),
    ));
    let next = script.answers.lock().expect("lock").pop_front();
    let (status, body) =
        next.unwrap_or_else(|| (200, payment(PAYMENT_ID, "authorized").to_string()));
    (
        StatusCode::from_u16(status).expect("status"),
        [("content-type", "application/json")],
        body,
    )
        .into_response()
}

async fn server(answers: Vec<(u16, Value)>) -> (Arc<Script>, OperatorClient) {
    let script = Arc::new(Script::default());
    *script.answers.lock().expect("lock") = answers
        .into_iter()
        .map(|(s, v)| (s, v.to_string()))
        .collect();
    let app = Router::new().fallback(answer).with_state(script.clone());
    let base = support::serve(app).await;
    let client = OperatorClient::new(format!("{base}/"), "secret").with_retry(fast());
    (script, client)
}

fn fast() -> OperatorRetry {
    OperatorRetry {
        attempts: 4,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
    }
}

fn err(code: &str) -> Value {
    json!({"error": {"code": code, "message": format!("{code} happened")}})
}

#[tokio::test]
async fn capture_retries_5xx_with_the_same_key_and_decodes_the_payment() {
    let (script, client) = server(vec![
        (503, err("chain_unavailable")),
        (500, err("internal")),
    ])
    .await;
    let payment = client.capture("p-1", None).await.expect("captured");
    assert_eq!(payment.id.to_string(), PAYMENT_ID);
    assert_eq!(payment.status, PaymentStatus::Authorized);
    assert_eq!(payment.amounts.authorized, 10_000u128);
    assert_eq!(payment.transactions[0].block_number, Some(12));
    assert!(payment.tx_hash("authorize").is_some());
    let seen = script.seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 3);
    for (method, path, key, auth, body) in &seen {
        assert_eq!(method, "POST");
        assert_eq!(path, "/v1/payments/p-1/capture");
        assert_eq!(
            key.as_deref(),
            Some(idempotency_key("capture", "p-1").as_str())
        );
        assert_eq!(auth.as_deref(), Some("Bearer secret"));
        assert_eq!(body, "{}");
    }
}

#[tokio::test]
async fn in_flight_409_is_retried_but_other_4xx_are_not() {
    let (script, client) = server(vec![(409, err("idempotency_key_in_flight"))]).await;
    client.void("p-2").await.expect("void after in-flight");
    assert_eq!(script.seen.lock().expect("lock").len(), 2);

    let (script, client) = server(vec![(409, err("invalid_state"))]).await;
    let error = client.void("p-2").await.expect_err("refused");
    assert!(matches!(
        &error,
        OperatorError::Rejected { status: 409, code, .. } if code == "invalid_state"
    ));
    assert!(!error.is_transient());
    assert_eq!(script.seen.lock().expect("lock").len(), 1);

    let (script, client) = server(vec![(400, err("invalid_signature"))]).await;
    let error = client.capture("p-3", None).await.expect_err("refused");
    assert_eq!(error.code(), Some("invalid_signature"));
    assert_eq!(script.seen.lock().expect("lock").len(), 1);
}

#[tokio::test]
async fn retries_are_bounded_and_non_json_errors_are_typed() {
    let bad = (502, json!("bad gateway"));
    let (script, client) = server(vec![bad.clone(), bad.clone(), bad.clone(), bad]).await;
    let error = client.get("p-4").await.expect_err("gives up");
    assert!(matches!(
        &error,
        OperatorError::Rejected { status: 502, .. }
    ));
    assert_eq!(script.seen.lock().expect("lock").len(), 4, "attempts bound");
    let (method, path, key, _, _) = script.seen.lock().expect("lock")[0].clone();
    assert_eq!(
        (method.as_str(), path.as_str(), key),
        ("GET", "/v1/payments/p-4", None)
    );
}

#[tokio::test]
async fn unreachable_operator_is_a_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let client = OperatorClient::new(format!("http://{addr}"), "k").with_retry(fast());
    let error = client.void("p").await.expect_err("unreachable");
    assert!(matches!(error, OperatorError::Transport(_)), "{error}");
}

#[tokio::test]
async fn undecodable_success_is_a_decode_error() {
    let (_, client) = server(vec![(200, json!({"id": "x"}))]).await;
    let error = client.get("x").await.expect_err("decode");
    assert!(matches!(error, OperatorError::Decode(_)), "{error}");
}

#[tokio::test]
async fn refund_and_partial_capture_send_decimal_amounts() {
    let (script, client) = server(vec![]).await;
    client
        .capture("p-5", Some(Amount::from(2_500u128)))
        .await
        .expect("capture");
    client
        .refund("p-5", Amount::from(1_000u128))
        .await
        .expect("refund");
    let seen = script.seen.lock().expect("lock").clone();
    let body = |i: usize| serde_json::from_str::<Value>(&seen[i].4).expect("json");
    assert_eq!(body(0), json!({"amount": "2500"}));
    assert_eq!(seen[1].1, "/v1/payments/p-5/refund");
    assert_eq!(body(1), json!({"amount": "1000"}));
    assert_ne!(seen[0].2, seen[1].2, "one key per action");
}

#[test]
fn idempotency_keys_are_deterministic_quoted_and_distinct() {
    let a = idempotency_key("authorize", "payment-identifier:pay_1234567890abcdef");
    assert_eq!(
        a,
        idempotency_key("authorize", "payment-identifier:pay_1234567890abcdef")
    );
    assert_ne!(
        a,
        idempotency_key("capture", "payment-identifier:pay_1234567890abcdef")
    );
    assert_ne!(a, idempotency_key("authorize", "request-id:other"));
    assert!(a.starts_with("\"x402m-authorize-") && a.ends_with('"'));
    assert!(a.len() <= 255 && a.bytes().all(|b| b.is_ascii_graphic()));
    // Any scope text (quotes, spaces, unicode) still yields a valid key.
    let odd = idempotency_key("void", "a \"quoted\" id ✓");
    assert!(
        odd[1..odd.len() - 1]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    );
}
