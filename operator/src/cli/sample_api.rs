//! `x402-escrow sample-api`: a tiny HTTP API to put behind the paying gateway when trying
//! things out (`x402-escrow gateway --upstream http://127.0.0.1:9000 --route 'GET /report=$0.50'`).
//!
//! | request | answer |
//! |---|---|
//! | `GET /report` | `200`, a small made-up report (JSON) with the current unix time |
//! | `GET /health` | `200`, `{"status":"ok"}` |
//! | anything else | `404`, `{"error":"not_found"}` |
//!
//! Every request is logged as one line on stdout: method, path, status, duration.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use clap::Args;
use eyre::{Context, Result};
use serde_json::{Value, json};
use x402_escrow_sdk::buyer::unix_now;

/// Options of `x402-escrow sample-api`.
#[derive(Debug, Clone, Args)]
pub struct SampleApiArgs {
    /// Where to listen (`host:port`; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:9000")]
    pub listen: SocketAddr,
}

/// `GET /report`: a small made-up report.
async fn report() -> Json<Value> {
    Json(json!({
        "report": "regional widget sales",
        "generated_at": unix_now(),
        "currency": "USD",
        "regions": [
            {"region": "north", "units": 1204, "revenue": "30100.00"},
            {"region": "south", "units": 877, "revenue": "21925.00"},
            {"region": "east", "units": 1530, "revenue": "38250.00"},
            {"region": "west", "units": 642, "revenue": "16050.00"}
        ],
        "note": "sample data from x402-escrow sample-api"
    }))
}

/// `GET /health`.
async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Every other request.
async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"error": "not_found"}))).into_response()
}

/// Logs one line per request on stdout.
async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    println!(
        "{} {method} {path} {} {:.1}ms",
        unix_now(),
        response.status().as_u16(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    response
}

/// The sample API's router.
pub fn router() -> Router {
    Router::new()
        .route("/report", get(report).fallback(not_found))
        .route("/health", get(health).fallback(not_found))
        .fallback(not_found)
        .layer(middleware::from_fn(log_request))
}

/// Runs `x402-escrow sample-api` until Ctrl-C or SIGTERM.
pub async fn run(args: SampleApiArgs) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .wrap_err_with(|| format!("listening on {}", args.listen))?;
    let address = listener.local_addr()?;
    println!("sample API listening on http://{address} (GET /report, GET /health)");
    axum::serve(listener, router())
        .with_graceful_shutdown(x402_escrow_operator::api::shutdown_signal())
        .await
        .wrap_err("serving the sample API")?;
    Ok(())
}
