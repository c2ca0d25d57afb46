//! `x402-escrow demo` (issue 4): the whole refundable-x402 stack on one machine.
//!
//! Starts the pinned anvil, deploys the contracts, starts the operator (the `x402-escrow` binary
//! given, as a child process) on SQLite with a merchant in its store, a small demo merchant (axum)
//! behind the SDK's [`X402Layer`](x402_escrow_sdk::merchant::X402Layer), and a buyer
//! ([`BuyerClient`](x402_escrow_sdk::BuyerClient)) with a spend policy that:
//!
//! 1. pays $0.01 for `GET /weather` → the handler succeeds → captured;
//! 2. pays $0.01 for `GET /flaky` → the handler answers 500 → voided, the payer's balance is back;
//! 3. pays $2.00 for `GET /report` (a policy allowing it) → captured, then the merchant refunds
//!    half through the operator's REST API → the payer gets $1.00 back;
//! 4. asks for `GET /report` under a policy capped at $1 per payment → refused before signing.
//!
//! [`run`] returns a [`DemoReport`]; an unexpected outcome is an error naming it.
#![warn(missing_docs)]

mod merchant;
mod scenarios;
mod stack;

use std::path::PathBuf;

use alloy::primitives::U256;
use clap::Args;

pub use merchant::{merchant_app, serve_app};
pub use scenarios::{DemoReport, Outcome, ScenarioReport, run, scenarios};
pub use stack::{Balances, Stack};

/// One USDC (6 decimals).
pub const USDC: u64 = 1_000_000;
/// The operator's fee, basis points.
pub const FEE_BPS: u16 = 100;

/// How far anvil's clock runs ahead of the wall clock (see [`Stack::start`]).
pub const CHAIN_CLOCK_LEAD_SECS: u64 = 30;

/// Options of `x402-escrow demo`.
#[derive(Debug, Clone, Default, Args)]
pub struct DemoArgs {
    /// Use this anvil binary instead of the pinned toolchain's.
    #[arg(long, env = "X402_ANVIL")]
    pub anvil: Option<PathBuf>,
}

/// Why the demo could not run, or did not go as expected.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Setting up the chain or the operator process failed.
    #[error(transparent)]
    Testkit(#[from] x402_escrow_testkit::Error),
    /// A file or socket operation failed.
    #[error("{what}")]
    Io {
        /// What was being done.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A step failed.
    #[error("{what}")]
    Step {
        /// What was being done.
        what: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Something did not go as the demo expects.
    #[error("{0}")]
    Unexpected(String),
}

impl DemoError {
    fn step(
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> DemoError {
        DemoError::Step {
            what: what.into(),
            source: Box::new(source),
        }
    }
}

/// `Result` with [`DemoError`].
pub type Result<T, E = DemoError> = std::result::Result<T, E>;

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
