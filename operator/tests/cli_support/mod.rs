//! Shared by the `cli_*` suites that pay through the binary: the demo's stack (anvil, the
//! contracts, the operator as a child process) with its merchant app served behind the x402
//! layer.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use x402_escrow_demo::{Stack, merchant_app, serve_app};
use x402_escrow_sdk::merchant::X402Layer;

/// The `x402-escrow` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_x402-escrow");

/// The demo's stack on [`BIN`] and its merchant app served on a free port: the stack, the
/// merchant's base URL, and the sender that stops the app (it runs while the sender lives).
pub async fn stack_with_merchant() -> (Stack, String, tokio::sync::oneshot::Sender<()>) {
    let stack = Stack::start(BIN.as_ref(), None, None).await.expect("stack");
    let payments = X402Layer::new(stack.operator_client(), stack.payments_config());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let merchant = format!("http://{}", listener.local_addr().unwrap());
    let stop = serve_app(
        listener,
        merchant_app(&payments, Arc::new(AtomicUsize::new(0))),
    );
    (stack, merchant, stop)
}
