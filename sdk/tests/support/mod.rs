//! Fixtures shared by the SDK's test suites: the Base Sepolia requirements the codec, fuzz and
//! scheme tests build on, and a local HTTP server for the fake merchants and operators.
#![allow(dead_code)]

use serde_json::{Value, json};

/// USDC on Base Sepolia.
pub const ASSET: &str = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
/// The merchant's receiver (anvil's dev address 1).
pub const PAY_TO: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

/// Requirements of `scheme` for `amount` of USDC on Base Sepolia to [`PAY_TO`], with `extra`.
pub fn base_sepolia_requirements(scheme: &str, amount: &str, extra: Value) -> Value {
    json!({
        "scheme": scheme,
        "network": "eip155:84532",
        "amount": amount,
        "asset": ASSET,
        "payTo": PAY_TO,
        "maxTimeoutSeconds": 60,
        "extra": extra
    })
}

/// Serves `app` on a free local port; its `http://` base URL (no trailing slash).
pub async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    format!("http://{addr}")
}
