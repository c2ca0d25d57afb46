//! The buyer client's error.

use super::ledger::LedgerError;
use super::policy::PolicyViolation;
use super::select::Rejection;
use crate::DecodeError;

/// Why [`BuyerClient::send`](super::BuyerClient::send) did not return a response.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuyerError {
    /// The spend policy refused the payment (nothing was signed or sent).
    #[error(transparent)]
    Policy(PolicyViolation),
    /// No option of the challenge can be paid by this client (nothing was signed or sent).
    #[error("no acceptable payment option: {}", join(reasons))]
    NoAcceptableRequirement {
        /// Why each option was skipped.
        reasons: Vec<Rejection>,
    },
    /// The 402 challenge could not be decoded.
    #[error("cannot read the payment challenge: {0}")]
    Decode(#[from] DecodeError),
    /// The HTTP exchange failed (after the retries, when a payment was attached: the payment
    /// then stays reserved in the ledger until reconciled).
    #[error("HTTP request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// Signing the payment failed (the reservation was released).
    #[error("cannot sign the payment: {0}")]
    Signing(String),
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The request's body is a stream and cannot be sent twice (a paid request is always sent
    /// at least twice: unpaid, then with the payment).
    #[error("the request body cannot be replayed; use a buffered body")]
    BodyNotReplayable,
    /// The server refused the payment (nothing was taken; the reservation was released).
    #[error("the server refused the payment (HTTP {status}){}", reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
    PaymentRejected {
        /// The HTTP status.
        status: u16,
        /// The server's reason, when it gave one.
        reason: Option<String>,
    },
    /// The server refused a Permit2 payment because the payer has not approved Permit2 (the
    /// canonical `0x000000000022D473030F116dDEE9F6B43aC78BA3`) to spend enough of `token`
    /// (nothing was taken; the reservation was released). Approve Permit2 for the token once
    /// (`approve(permit2, amount)` from the paying address), then pay again.
    #[error(
        "the payer has not approved Permit2 (0x000000000022D473030F116dDEE9F6B43aC78BA3) to spend token {token}: send approve(permit2, amount) from the paying address once, then retry{}",
        reason.as_deref().map(|r| format!(" (server: {r})")).unwrap_or_default()
    )]
    Permit2ApprovalMissing {
        /// The token to approve Permit2 for.
        token: alloy::primitives::Address,
        /// The server's reason.
        reason: Option<String>,
    },
    /// An internal failure (a blocking task panicked, a header could not be built).
    #[error("internal error: {0}")]
    Internal(String),
}

fn join(reasons: &[Rejection]) -> String {
    if reasons.is_empty() {
        return "the challenge lists no option".to_owned();
    }
    reasons
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
