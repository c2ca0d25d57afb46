//! The payment lifecycle: [`PaymentStatus`], the [`PaymentEvent`]s that move it, and the amount
//! bookkeeping ([`Amounts`]) that keeps `refunded ≤ captured ≤ authorized`.
//!
//! [`PaymentStatus::apply`] is the only place where a payment's status and amounts change; the
//! store writes a new status only through it. It is an explicit table: every `(status, event)`
//! pair that is not listed is an [`IllegalTransition`].
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
//! # Transition table
//!
//! | from | event | to |
//! |---|---|---|
//! | Authorizing | AuthorizeConfirmed(a > 0) | Authorized (`authorized = a`) |
//! | Authorizing | AuthorizeFailed | Failed |
//! | Charging | ChargeConfirmed(a > 0) | Captured (`authorized = captured = a`) |
//! | Charging | ChargeFailed | Failed |
//! | Authorized, PartiallyCaptured | CaptureRequested(0 < a ≤ capturable) | Capturing |
//! | Authorized, PartiallyCaptured, Expired | VoidRequested | Voiding |
//! | PartiallyCaptured, Captured, PartiallyRefunded | RefundRequested(0 < a ≤ captured − refunded) | Refunding |
//! | Authorized | Expired | Expired (`released = authorized`) |
//! | PartiallyCaptured | Expired | *settled* (`released = authorized − captured`) |
//! | Refunding (capturable > 0) | Expired | Refunding (`released = authorized − captured`) |
//! | Authorized, Expired | ReclaimObserved(0 < a ≤ held) | Reclaimed |
//! | PartiallyCaptured, Capturing, Voiding | ReclaimObserved(0 < a ≤ held) | Reclaimed if nothing captured, else *settled* |
//! | Captured, PartiallyRefunded, Refunded, Refunding | ReclaimObserved(0 < a ≤ held) | unchanged (the remainder left after expiry) |
//! | Capturing | CaptureConfirmed(0 < a ≤ capturable) | *settled* (`captured += a`) |
//! | Capturing | CaptureFailed | *settled* (Authorized / PartiallyCaptured) |
//! | Voiding | VoidConfirmed(0 < a ≤ held) | Voided if nothing captured, else *settled* |
//! | Voiding | VoidFailed | *settled*, or Expired when the void started from Expired |
//! | Refunding | RefundConfirmed(0 < a ≤ captured − refunded) | *settled* (`refunded += a`) |
//! | Refunding | RefundFailed | *settled* |
//!
//! `held = authorized − captured` (what the escrow may still hold: the capturable part plus an
//! expired remainder). *Settled* is the resting status the amounts describe:
//! capturable > 0 → Authorized (nothing captured) or PartiallyCaptured; otherwise, with something
//! captured → Captured (nothing refunded), PartiallyRefunded or Refunded.
//!
//! Terminal ([`PaymentStatus::is_terminal`]): Voided, Reclaimed, Failed and Refunded (Refunded only
//! records a late reclaim of an expired remainder, without changing status).
//!
//! The table lives here, with the wire enum, rather than in the operator: Rust lets only the
//! crate that defines `PaymentStatus` give it inherent methods (`initial`, `apply`,
//! `is_terminal`, …), and the operator's engine and store call them as such. The table is pure
//! (no I/O, no operator state), so a merchant client may use it too (`is_terminal`).

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

impl fmt::Display for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Flow {
    type Err = ParseEnumError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "authorize" => Ok(Flow::Authorize),
            "charge" => Ok(Flow::Charge),
            other => Err(ParseEnumError {
                kind: "flow",
                value: other.to_owned(),
            }),
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

/// The money side of a payment (see the module docs for the meaning of each field).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amounts {
    /// What the authorize or charge put in escrow.
    pub authorized: Amount,
    /// The sum of confirmed captures.
    pub captured: Amount,
    /// The sum of confirmed refunds.
    pub refunded: Amount,
    /// The part of the hold that can no longer be captured (voided, reclaimed or expired).
    pub released: Amount,
}

impl Amounts {
    /// What the merchant may still capture (0 when the invariants are broken).
    pub fn capturable(&self) -> Amount {
        self.authorized
            .saturating_sub(self.captured)
            .saturating_sub(self.released)
    }

    /// What the merchant may still refund.
    pub fn refundable(&self) -> Amount {
        self.captured.saturating_sub(self.refunded)
    }

    /// What the escrow may still hold for this payment: the capturable part plus an expired
    /// remainder the payer has not reclaimed yet.
    pub fn held(&self) -> Amount {
        self.authorized.saturating_sub(self.captured)
    }

    /// Checks `captured + released ≤ authorized` and `refunded ≤ captured`.
    pub fn check(&self) -> Result<(), AmountError> {
        let used = self
            .captured
            .checked_add(self.released)
            .ok_or(AmountError::Overflow)?;
        if used > self.authorized {
            return Err(AmountError::Inconsistent(*self));
        }
        if self.refunded > self.captured {
            return Err(AmountError::Inconsistent(*self));
        }
        Ok(())
    }
}

/// Broken amount bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// An addition overflowed `u128`.
    #[error("amount overflow")]
    Overflow,
    /// `captured + released > authorized` or `refunded > captured`.
    #[error("inconsistent amounts {0:?}")]
    Inconsistent(Amounts),
}

/// Why a transition was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IllegalReason {
    /// The event is not accepted in this status at all.
    #[error("not allowed in this status")]
    NotAllowed,
    /// The event needs a positive amount.
    #[error("amount must be positive")]
    ZeroAmount,
    /// A capture of more than is capturable.
    #[error("amount {requested} exceeds capturable {available}")]
    ExceedsCapturable {
        /// What the event asked for.
        requested: Amount,
        /// What is capturable.
        available: Amount,
    },
    /// A refund of more than is refundable.
    #[error("amount {requested} exceeds refundable {available}")]
    ExceedsRefundable {
        /// What the event asked for.
        requested: Amount,
        /// What is refundable.
        available: Amount,
    },
    /// A void or reclaim of more than the escrow can hold.
    #[error("amount {requested} exceeds held {available}")]
    ExceedsHeld {
        /// What the event reported.
        requested: Amount,
        /// What the escrow may hold.
        available: Amount,
    },
    /// The stored amounts are already inconsistent (or an addition overflowed).
    #[error(transparent)]
    Amounts(#[from] AmountError),
}

/// A refused transition: the status and amounts stay as they were.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("illegal transition: {event} in status {from}: {reason}")]
pub struct IllegalTransition {
    /// The status the payment was in.
    pub from: PaymentStatus,
    /// [`PaymentEvent::name`] of the refused event.
    pub event: &'static str,
    /// Why.
    pub reason: IllegalReason,
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

    /// Applies `event`, updating `amounts` in place only when the transition is legal.
    ///
    /// This is the explicit transition table of the module docs; any pair not listed there is
    /// an [`IllegalTransition`] and leaves `amounts` untouched.
    pub fn apply(
        self,
        event: &PaymentEvent,
        amounts: &mut Amounts,
    ) -> Result<PaymentStatus, IllegalTransition> {
        let illegal = |reason: IllegalReason| IllegalTransition {
            from: self,
            event: event.name(),
            reason,
        };
        amounts.check().map_err(|e| illegal(e.into()))?;
        let mut next = *amounts;
        let status = self.table(event, &mut next).map_err(illegal)?;
        next.check().map_err(|e| illegal(e.into()))?;
        *amounts = next;
        Ok(status)
    }

    /// The table itself; `a` is a scratch copy of the amounts.
    fn table(self, event: &PaymentEvent, a: &mut Amounts) -> Result<PaymentStatus, IllegalReason> {
        use PaymentEvent as E;
        use PaymentStatus as S;
        match (self, event) {
            // --- the first action --------------------------------------------------------
            (S::Authorizing, E::AuthorizeConfirmed { amount }) => {
                positive(*amount)?;
                *a = Amounts {
                    authorized: *amount,
                    ..Amounts::default()
                };
                Ok(S::Authorized)
            }
            (S::Authorizing, E::AuthorizeFailed { .. }) => Ok(S::Failed),
            (S::Charging, E::ChargeConfirmed { amount }) => {
                positive(*amount)?;
                *a = Amounts {
                    authorized: *amount,
                    captured: *amount,
                    ..Amounts::default()
                };
                Ok(S::Captured)
            }
            (S::Charging, E::ChargeFailed { .. }) => Ok(S::Failed),

            // --- requests --------------------------------------------------------------------
            (S::Authorized | S::PartiallyCaptured, E::CaptureRequested { amount }) => {
                within_capturable(a, *amount)?;
                Ok(S::Capturing)
            }
            (S::Authorized | S::PartiallyCaptured | S::Expired, E::VoidRequested) => {
                if a.held() == 0 {
                    return Err(IllegalReason::NotAllowed);
                }
                Ok(S::Voiding)
            }
            (
                S::PartiallyCaptured | S::Captured | S::PartiallyRefunded,
                E::RefundRequested { amount },
            ) => {
                within_refundable(a, *amount)?;
                Ok(S::Refunding)
            }

            // --- outcomes of the action in flight ----------------------------------------------
            (S::Capturing, E::CaptureConfirmed { amount }) => {
                within_capturable(a, *amount)?;
                a.captured = add(a.captured, *amount)?;
                Ok(settled(a))
            }
            (S::Capturing, E::CaptureFailed { .. }) => Ok(settled(a)),
            (S::Voiding, E::VoidConfirmed { amount }) => {
                within_held(a, *amount)?;
                a.released = a.held();
                Ok(if a.captured == 0 {
                    S::Voided
                } else {
                    settled(a)
                })
            }
            (S::Voiding, E::VoidFailed { .. }) => {
                // A void started from Expired has nothing capturable and nothing captured.
                if a.capturable() == 0 && a.captured == 0 {
                    Ok(S::Expired)
                } else {
                    Ok(settled(a))
                }
            }
            (S::Refunding, E::RefundConfirmed { amount }) => {
                within_refundable(a, *amount)?;
                a.refunded = add(a.refunded, *amount)?;
                Ok(settled(a))
            }
            (S::Refunding, E::RefundFailed { .. }) => Ok(settled(a)),

            // --- expiry ------------------------------------------------------------------------
            (S::Authorized, E::Expired) => {
                a.released = a.held();
                Ok(S::Expired)
            }
            (S::PartiallyCaptured, E::Expired) => {
                a.released = a.held();
                Ok(settled(a))
            }
            (S::Refunding, E::Expired) if a.capturable() > 0 => {
                a.released = a.held();
                Ok(S::Refunding)
            }

            // --- the payer's reclaim (observed on chain; may race our own action) --------------
            (S::Authorized | S::Expired, E::ReclaimObserved { amount }) => {
                within_held(a, *amount)?;
                a.released = a.held();
                Ok(S::Reclaimed)
            }
            (S::PartiallyCaptured | S::Capturing | S::Voiding, E::ReclaimObserved { amount }) => {
                within_held(a, *amount)?;
                a.released = a.held();
                Ok(if a.captured == 0 {
                    S::Reclaimed
                } else {
                    settled(a)
                })
            }
            (
                S::Captured | S::PartiallyRefunded | S::Refunded | S::Refunding,
                E::ReclaimObserved { amount },
            ) => {
                // Only an expired remainder can still be reclaimed here; the status (and the
                // refund in flight, if any) is unaffected.
                within_held(a, *amount)?;
                a.released = a.held();
                Ok(self)
            }

            _ => Err(IllegalReason::NotAllowed),
        }
    }
}

/// The resting status the amounts describe (see the module docs).
fn settled(a: &Amounts) -> PaymentStatus {
    if a.capturable() > 0 {
        if a.captured == 0 {
            PaymentStatus::Authorized
        } else {
            PaymentStatus::PartiallyCaptured
        }
    } else if a.refunded == 0 {
        PaymentStatus::Captured
    } else if a.refunded < a.captured {
        PaymentStatus::PartiallyRefunded
    } else {
        PaymentStatus::Refunded
    }
}

fn positive(amount: Amount) -> Result<(), IllegalReason> {
    if amount == 0 {
        Err(IllegalReason::ZeroAmount)
    } else {
        Ok(())
    }
}

fn within_capturable(a: &Amounts, amount: Amount) -> Result<(), IllegalReason> {
    positive(amount)?;
    let available = a.capturable();
    if amount > available {
        return Err(IllegalReason::ExceedsCapturable {
            requested: amount,
            available,
        });
    }
    Ok(())
}

fn within_refundable(a: &Amounts, amount: Amount) -> Result<(), IllegalReason> {
    positive(amount)?;
    let available = a.refundable();
    if amount > available {
        return Err(IllegalReason::ExceedsRefundable {
            requested: amount,
            available,
        });
    }
    Ok(())
}

fn within_held(a: &Amounts, amount: Amount) -> Result<(), IllegalReason> {
    positive(amount)?;
    let available = a.held();
    if amount > available {
        return Err(IllegalReason::ExceedsHeld {
            requested: amount,
            available,
        });
    }
    Ok(())
}

fn add(x: Amount, y: Amount) -> Result<Amount, IllegalReason> {
    x.checked_add(y)
        .ok_or(IllegalReason::Amounts(AmountError::Overflow))
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PaymentStatus {
    type Err = ParseEnumError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ALL_STATUSES
            .iter()
            .copied()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| ParseEnumError {
                kind: "payment status",
                value: s.to_owned(),
            })
    }
}

/// Whether `status` is consistent with `amounts` (what the table guarantees after every legal
/// transition from a fresh payment). Used by tests and by `reconcile` as a sanity check.
pub fn consistent(status: PaymentStatus, a: &Amounts) -> bool {
    use PaymentStatus as S;
    if a.check().is_err() {
        return false;
    }
    let zero = *a == Amounts::default();
    match status {
        S::Authorizing | S::Charging | S::Failed => zero,
        S::Authorized => a.captured == 0 && a.capturable() > 0,
        S::Capturing => a.capturable() > 0,
        S::PartiallyCaptured => a.captured > 0 && a.capturable() > 0,
        S::Captured => a.captured > 0 && a.capturable() == 0 && a.refunded == 0,
        S::PartiallyRefunded => a.capturable() == 0 && a.refunded > 0 && a.refunded < a.captured,
        S::Refunded => a.capturable() == 0 && a.captured > 0 && a.refunded == a.captured,
        S::Refunding => a.refundable() > 0,
        S::Voiding => a.held() > 0,
        S::Voided | S::Reclaimed | S::Expired => {
            a.authorized > 0 && a.captured == 0 && a.capturable() == 0
        }
    }
}
