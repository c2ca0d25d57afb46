//! The demo merchant behind the x402 layer, and a small server helper.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use x402_escrow_sdk::merchant::{PaymentRoute, X402Layer};

/// The demo merchant: `/weather` ($0.01), `/flaky` ($0.01, fails with 500), `/report` ($2.00),
/// `/health` (free).
///
/// `POST /webhooks` counts the operator's webhook deliveries into `webhooks`.
pub fn merchant_app(payments: &X402Layer, webhooks: Arc<AtomicUsize>) -> Router {
    Router::new()
        .route(
            "/webhooks",
            axum::routing::post(move || {
                let webhooks = webhooks.clone();
                async move {
                    webhooks.fetch_add(1, Ordering::SeqCst);
                    StatusCode::NO_CONTENT
                }
            }),
        )
        .route(
            "/weather",
            get(|| async {
                axum::Json(
                    serde_json::json!({"city": "Lisbon", "forecast": "sunny", "celsius": 24}),
                )
            })
            .layer(payments.paid(PaymentRoute::new("$0.01").description("Today's weather"))),
        )
        .route(
            "/flaky",
            get(|| async {
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the upstream model crashed\n",
                )
            })
            .layer(payments.paid(PaymentRoute::new("$0.01").description("A resource that fails"))),
        )
        .route(
            "/report",
            get(|| async { "Quarterly market report: demand up 12%, refunds are easy.\n" })
                .layer(payments.paid(PaymentRoute::new("$2.00").description("A premium report"))),
        )
        .route("/health", get(|| async { "ok" }))
}

/// Serves `app` on `listener` until the returned sender fires (or is dropped).
pub fn serve_app(
    listener: tokio::net::TcpListener,
    app: Router,
) -> tokio::sync::oneshot::Sender<()> {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    tx
}
