//! The payment lifecycle: [`PaymentStatus`], the [`PaymentEvent`]s that move it, and the amount
//! bookkeeping ([`Amounts`]) that keeps `refunded ≤ captured ≤ authorized`.
//!
//! [`PaymentStatus::apply`] is the only place where a payment's status and amounts change; the
//! store writes a new status only through it. It is an explicit table: every `(status, event)`
//! pair that is not listed is an [`IllegalTransition`].
//!
//! The transition table itself, with the exact amount rules of every row, is documented in
//! [`table`]; the amount bookkeeping lives in [`amounts`].
//!
//! # Model
//!
//! A capture may be partial and repeated; the leftover stays capturable until it is voided, the
//! authorization expires or the payer reclaims it. Instead of one state per combination, the
//! *amounts* carry the detail and the status names the phase:
//!
//! * `authorized`: what the authorize (or charge) put in escrow,
//! * `captured`: the sum of confirmed captures (a charge captures everything at once),
//! * `refunded`: the sum of confirmed refunds (`≤ captured`),
//! * `released`: the part of the hold the merchant can no longer capture: returned to the payer
//!   by a void or a reclaim, or past `authorizationExpiry` (still in escrow, waiting for the
//!   payer's reclaim or a void).
//!
//! `capturable = authorized − captured − released`. Invariants (checked by
//! [`Amounts::check`]): `captured + released ≤ authorized` and `refunded ≤ captured`.
//!
//! Exactly one chain action is in flight per payment: the `…ing` statuses (Authorizing,
//! Charging, Capturing, Voiding, Refunding) accept only the outcome of that action, plus the
//! chain observations that can race it (a payer `reclaim`, an expiry while refunding).
//!
//! The table lives here, with the wire enum, rather than in the operator: Rust lets only the
//! crate that defines `PaymentStatus` give it inherent methods (`initial`, `apply`,
//! `is_terminal`, …), and the operator's engine and store call them as such. The table is pure
//! (no I/O, no operator state), so a merchant client may use it too (`is_terminal`).

pub mod amounts;
pub mod table;

pub use amounts::{AmountError, Amounts};
pub use table::{IllegalReason, IllegalTransition, consistent};

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A token amount in the token's smallest unit. Escrow amounts are `uint120`, so `u128` holds
/// every one of them; the store writes them as decimal text.
pub type Amount = u128;

/// Where a payment is in its lifecycle. Stored as [`PaymentStatus::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// The authorize transaction is queued or in flight.
    Authorizing,
    /// Funds are held in escrow; nothing captured yet.
    Authorized,
    /// A capture transaction is in flight.
    Capturing,
    /// Part of the hold was captured; the rest is still capturable.
    PartiallyCaptured,
    /// Everything capturable was captured (or the remainder was released); nothing refunded.
    Captured,
    /// The charge (authorize + capture in one) transaction is queued or in flight.
    Charging,
    /// A refund transaction is in flight.
    Refunding,
    /// Part of the captured amount was refunded.
    PartiallyRefunded,
    /// Everything captured was refunded.
    Refunded,
    /// A void transaction is in flight.
    Voiding,
    /// The hold was voided before anything was captured.
    Voided,
    /// The payer reclaimed the hold after `authorizationExpiry`, nothing having been captured.
    Reclaimed,
    /// `authorizationExpiry` passed with nothing captured; the payer may reclaim (or the operator
    /// void) the hold.
    Expired,
    /// The authorize or charge never happened (reverted, refused, or abandoned).
    Failed,
}

/// Every status, in declaration order (handy for tests, metrics and CLI filters).
pub const ALL_STATUSES: [PaymentStatus; 14] = [
    PaymentStatus::Authorizing,
    PaymentStatus::Authorized,
    PaymentStatus::Capturing,
    PaymentStatus::PartiallyCaptured,
    PaymentStatus::Captured,
    PaymentStatus::Charging,
    PaymentStatus::Refunding,
    PaymentStatus::PartiallyRefunded,
    PaymentStatus::Refunded,
    PaymentStatus::Voiding,
    PaymentStatus::Voided,
    PaymentStatus::Reclaimed,
    PaymentStatus::Expired,
    PaymentStatus::Failed,
];

/// How a payment starts: a hold to capture later, or a charge (captured at once).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flow {
    /// `authorize` now, `capture` / `void` later (the default: what an operator that predates
    /// `flow` in its answers did).
    #[default]
    Authorize,
    /// `charge`: authorize and capture in one transaction.
    Charge,
}

impl Flow {
    /// The database / wire spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Flow::Authorize => "authorize",
            Flow::Charge => "charge",
        }
    }
}

/// A string that names no variant of an enum stored as text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?}")]
pub struct ParseEnumError {
    /// Which enum was being parsed.
    pub kind: &'static str,
    /// The text that did not match.
    pub value: String,
}

/// Something that happened to a payment: a request the operator accepted, the outcome of its
/// transaction, or an observation of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PaymentEvent {
    /// The authorize transaction succeeded; `amount` is now held.
    AuthorizeConfirmed {
        /// The amount held (from the `PaymentAuthorized` event).
        amount: Amount,
    },
    /// The authorize did not happen.
    AuthorizeFailed {
        /// A machine-readable reason (e.g. a decoded custom error name).
        code: String,
    },
    /// The charge transaction succeeded; `amount` was captured at once.
    ChargeConfirmed {
        /// The amount charged.
        amount: Amount,
    },
    /// The charge did not happen.
    ChargeFailed {
        /// A machine-readable reason.
        code: String,
    },
    /// The merchant asked to capture `amount`; a capture transaction is queued.
    CaptureRequested {
        /// The amount to capture.
        amount: Amount,
    },
    /// A capture of `amount` succeeded.
    CaptureConfirmed {
        /// The amount captured.
        amount: Amount,
    },
    /// The capture did not happen; the hold is unchanged.
    CaptureFailed {
        /// A machine-readable reason.
        code: String,
    },
    /// A void (by the merchant, or the auto-void at the capture deadline) is queued.
    VoidRequested,
    /// The void succeeded; `amount` went back to the payer.
    VoidConfirmed {
        /// The amount released (from the `PaymentVoided` event).
        amount: Amount,
    },
    /// The void did not happen.
    VoidFailed {
        /// A machine-readable reason.
        code: String,
    },
    /// The merchant asked to refund `amount`; a refund transaction is queued.
    RefundRequested {
        /// The amount to refund.
        amount: Amount,
    },
    /// A refund of `amount` succeeded.
    RefundConfirmed {
        /// The amount refunded.
        amount: Amount,
    },
    /// The refund did not happen.
    RefundFailed {
        /// A machine-readable reason.
        code: String,
    },
    /// The payer reclaimed `amount` after `authorizationExpiry` (seen on chain).
    ReclaimObserved {
        /// The amount reclaimed (from the `PaymentReclaimed` event).
        amount: Amount,
    },
    /// `authorizationExpiry` passed: the remaining hold can no longer be captured.
    Expired,
}

impl PaymentEvent {
    /// A short stable name (used in errors and logs).
    pub const fn name(&self) -> &'static str {
        match self {
            PaymentEvent::AuthorizeConfirmed { .. } => "authorize_confirmed",
            PaymentEvent::AuthorizeFailed { .. } => "authorize_failed",
            PaymentEvent::ChargeConfirmed { .. } => "charge_confirmed",
            PaymentEvent::ChargeFailed { .. } => "charge_failed",
            PaymentEvent::CaptureRequested { .. } => "capture_requested",
            PaymentEvent::CaptureConfirmed { .. } => "capture_confirmed",
            PaymentEvent::CaptureFailed { .. } => "capture_failed",
            PaymentEvent::VoidRequested => "void_requested",
            PaymentEvent::VoidConfirmed { .. } => "void_confirmed",
            PaymentEvent::VoidFailed { .. } => "void_failed",
            PaymentEvent::RefundRequested { .. } => "refund_requested",
            PaymentEvent::RefundConfirmed { .. } => "refund_confirmed",
            PaymentEvent::RefundFailed { .. } => "refund_failed",
            PaymentEvent::ReclaimObserved { .. } => "reclaim_observed",
            PaymentEvent::Expired => "expired",
        }
    }

    /// The failure code an event carries, if any (the store writes it to `last_error_code`).
    pub fn error_code(&self) -> Option<&str> {
        match self {
            PaymentEvent::AuthorizeFailed { code }
            | PaymentEvent::ChargeFailed { code }
            | PaymentEvent::CaptureFailed { code }
            | PaymentEvent::VoidFailed { code }
            | PaymentEvent::RefundFailed { code } => Some(code),
            _ => None,
        }
    }

    /// The merchant webhook type this event announces, if any (`payment.authorized`, …).
    pub const fn webhook_type(&self) -> Option<&'static str> {
        match self {
            PaymentEvent::AuthorizeConfirmed { .. } => Some("payment.authorized"),
            PaymentEvent::ChargeConfirmed { .. } | PaymentEvent::CaptureConfirmed { .. } => {
                Some("payment.captured")
            }
            PaymentEvent::VoidConfirmed { .. } => Some("payment.voided"),
            PaymentEvent::RefundConfirmed { .. } => Some("payment.refunded"),
            PaymentEvent::ReclaimObserved { .. } => Some("payment.reclaimed"),
            PaymentEvent::AuthorizeFailed { .. } | PaymentEvent::ChargeFailed { .. } => {
                Some("payment.failed")
            }
            _ => None,
        }
    }
}

impl PaymentStatus {
    /// The status a new payment starts in.
    pub const fn initial(flow: Flow) -> PaymentStatus {
        match flow {
            Flow::Authorize => PaymentStatus::Authorizing,
            Flow::Charge => PaymentStatus::Charging,
        }
    }

    /// The database / wire spelling (`snake_case`).
    pub const fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Authorizing => "authorizing",
            PaymentStatus::Authorized => "authorized",
            PaymentStatus::Capturing => "capturing",
            PaymentStatus::PartiallyCaptured => "partially_captured",
            PaymentStatus::Captured => "captured",
            PaymentStatus::Charging => "charging",
            PaymentStatus::Refunding => "refunding",
            PaymentStatus::PartiallyRefunded => "partially_refunded",
            PaymentStatus::Refunded => "refunded",
            PaymentStatus::Voiding => "voiding",
            PaymentStatus::Voided => "voided",
            PaymentStatus::Reclaimed => "reclaimed",
            PaymentStatus::Expired => "expired",
            PaymentStatus::Failed => "failed",
        }
    }

    /// No event can change the status any more.
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            PaymentStatus::Voided
                | PaymentStatus::Reclaimed
                | PaymentStatus::Failed
                | PaymentStatus::Refunded
        )
    }

    /// A chain action for this payment is queued or in flight.
    pub const fn is_in_flight(self) -> bool {
        matches!(
            self,
            PaymentStatus::Authorizing
                | PaymentStatus::Charging
                | PaymentStatus::Capturing
                | PaymentStatus::Voiding
                | PaymentStatus::Refunding
        )
    }
}

/// Implements `Display` (the [`as_str`](PaymentStatus::as_str) spelling) and `FromStr` (the
/// variant of `$all` so spelled, else a [`ParseEnumError`] of `$kind`) for an enum stored as text.
macro_rules! display_and_parse {
    ($ty:ty, $kind:literal, $all:expr) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = ParseEnumError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $all.into_iter()
                    .find(|variant| variant.as_str() == s)
                    .ok_or_else(|| ParseEnumError {
                        kind: $kind,
                        value: s.to_owned(),
                    })
            }
        }
    };
}

display_and_parse!(Flow, "flow", [Flow::Authorize, Flow::Charge]);
display_and_parse!(PaymentStatus, "payment status", ALL_STATUSES);
