//! The paying side of x402: a client that answers `402 Payment Required` under a spend policy.
//!
//! - [`SpendPolicy`] ([`policy`]): allowlists and per-asset limits, checked before signing;
//!   a refusal is a [`PolicyViolation`] naming its rule.
//! - [`SpendLedger`] ([`ledger`]): every payment, persisted in a JSON file shared safely
//!   between processes; reserving checks the policy atomically; voided, reclaimed, failed and
//!   refunded payments return their amount to the budget.
//! - [`BuyerClient`] ([`client`]): reqwest-based; chooses an option ([`select`]), reserves,
//!   signs, pays, retries with the same signed payment, and reads the receipt ([`receipt`]).
//! - [`challenge`]: a 402's offers and a signed answer to one, for services that pay on
//!   others' behalf (the `x402-escrow wallet`).
//! - [`reconcile()`]: corrects the ledger from the escrow's on-chain `paymentState`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use x402_escrow_sdk::buyer::{BuyerClient, SpendLedger, SpendPolicy};
//! let policy = SpendPolicy::from_toml(&std::fs::read_to_string("policy.toml")?)?;
//! let ledger = SpendLedger::open("spend-ledger.json")?;
//! let signer: alloy::signers::local::PrivateKeySigner = std::env::var("BUYER_KEY")?.parse()?;
//! let client = BuyerClient::new(reqwest::Client::new(), signer, policy, ledger);
//! let paid = client.get("https://api.example.com/report").await?;
//! if let Some(payment) = &paid.payment {
//!     println!("paid {} ({}): {:?}", payment.amount, payment.payment_id, payment.status);
//! }
//! println!("{}", paid.response.text().await?);
//! # Ok(()) }
//! ```

// `PolicyViolation` carries the amounts it compares (~130 bytes); refusals are the cold path and
// callers match on them, so they are not boxed.
#![allow(clippy::result_large_err)]

pub mod challenge;
pub mod client;
pub mod error;
pub mod ledger;
pub mod policy;
pub mod receipt;
pub mod reconcile;
pub mod select;
mod serde_util;

pub use challenge::{SignedPayment, challenge_error, challenge_from_json, offers, sign_offer};
pub use client::{BuyerClient, PaidResponse, PaymentOutcome, RetryPolicy, unix_now};
pub use error::BuyerError;
pub use ledger::{
    LedgerError, LedgerRecord, PaymentStatus, ReserveError, SignedDetails, SpendLedger, utc_day,
};
pub use policy::{
    Allowlist, AssetLimits, HostPattern, NetworkEntry, PaymentIntent, PolicyFileError,
    PolicyViolation, SpendPolicy, Usage,
};
pub use reconcile::{
    EscrowState, ReconcileChange, ReconcileError, ReconcileReport, reconcile, status_from_chain,
};
pub use select::{PaymentOption, Rejection, RejectionReason};
