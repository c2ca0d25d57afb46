//! The router on a real socket through `api::serve`: graceful shutdown lets an in-flight request
//! finish.

mod api_support;

use std::sync::Arc;
use std::time::Duration;

use api_support::*;
use x402_escrow_operator::api::{ApiState, router, serve};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = sqlite_store(&dir).await;
    store
        .create_merchant_with_key(&new_merchant("a"), KEY_A)
        .await
        .expect("merchant");
    let (service, gate) = FakeService::gated();
    let service = Arc::new(service);
    let app = router(ApiState::new(service.clone(), store));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, app, async move {
        let _ = stop_rx.await;
    }));

    let client = reqwest::Client::new();
    let health = client
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
    assert!(health.headers().get("x-request-id").is_some());

    let in_flight = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .post(format!("http://{addr}/v1/payments/authorize"))
                .bearer_auth(KEY_A)
                .header("idempotency-key", "\"graceful\"")
                .json(&authorize_body("1000", "r1"))
                .send()
                .await
                .expect("authorize")
        }
    });
    service.entered.acquire().await.expect("entered").forget();
    stop_tx.send(()).expect("stop");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !server.is_finished(),
        "the server waits for the in-flight request"
    );
    gate.add_permits(1);
    let reply = in_flight.await.expect("task");
    assert_eq!(reply.status(), 201);
    let body: serde_json::Value = reply.json().await.expect("json");
    assert_eq!(body["status"], "authorized");
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("server stopped")
        .expect("join")
        .expect("serve");
}
