//! Issue 4's commands: the paying client (`pay`) and the end-to-end `demo` (operator + merchant
//! behind the x402 layer + buyer with a spend policy). The paying reverse proxy (`gateway`) is
//! the `x402-escrow-gateway` crate.
//!
//! Only `x402_escrow_operator::…` paths and `super::…` are used here, so the integration tests
//! can include this directory with `#[path]` (the CLI lives in the binary crate).

pub mod demo;
pub mod pay;

use alloy::primitives::U256;

/// `1234567` with 6 decimals → `"1.234567"`; trailing zeros kept to two places.
pub fn format_units(amount: U256, decimals: u8) -> String {
    let scale = U256::from(10u64).pow(U256::from(decimals));
    let whole = amount / scale;
    let frac = amount % scale;
    if decimals == 0 {
        return whole.to_string();
    }
    let mut frac = format!("{:0>width$}", frac.to_string(), width = decimals as usize);
    while frac.len() > 2 && frac.ends_with('0') {
        frac.pop();
    }
    format!("{whole}.{frac}")
}
