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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flow {
    /// `authorize` now, `capture` / `void` later.
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

#[cfg(test)]
mod tests {
    use super::*;
    use PaymentEvent as E;
    use PaymentStatus as S;

    fn am(authorized: u128, captured: u128, refunded: u128, released: u128) -> Amounts {
        Amounts {
            authorized,
            captured,
            refunded,
            released,
        }
    }

    fn ok(from: S, event: E, before: Amounts) -> (S, Amounts) {
        let mut a = before;
        let to = from
            .apply(&event, &mut a)
            .unwrap_or_else(|e| panic!("{from} {event:?}: {e}"));
        assert!(consistent(to, &a), "{from} --{event:?}--> {to} with {a:?}");
        (to, a)
    }

    fn err(from: S, event: E, before: Amounts) -> IllegalReason {
        let mut a = before;
        let e = from.apply(&event, &mut a).expect_err("must be illegal");
        assert_eq!(
            a, before,
            "amounts must not change on an illegal transition"
        );
        assert_eq!(e.from, from);
        e.reason
    }

    fn code() -> String {
        "E".into()
    }

    #[test]
    fn as_str_round_trips() {
        for s in ALL_STATUSES {
            assert_eq!(s.as_str().parse::<S>().unwrap(), s);
            assert_eq!(s.to_string(), s.as_str());
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        assert!("nope".parse::<S>().is_err());
        for f in [Flow::Authorize, Flow::Charge] {
            assert_eq!(f.as_str().parse::<Flow>().unwrap(), f);
        }
    }

    #[test]
    fn initial_and_flags() {
        assert_eq!(S::initial(Flow::Authorize), S::Authorizing);
        assert_eq!(S::initial(Flow::Charge), S::Charging);
        let terminal: Vec<_> = ALL_STATUSES
            .into_iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(
            terminal,
            vec![S::Refunded, S::Voided, S::Reclaimed, S::Failed]
        );
        let in_flight: Vec<_> = ALL_STATUSES
            .into_iter()
            .filter(|s| s.is_in_flight())
            .collect();
        assert_eq!(
            in_flight,
            vec![
                S::Authorizing,
                S::Capturing,
                S::Charging,
                S::Refunding,
                S::Voiding
            ]
        );
    }

    #[test]
    fn first_action() {
        let z = Amounts::default();
        assert_eq!(
            ok(S::Authorizing, E::AuthorizeConfirmed { amount: 100 }, z),
            (S::Authorized, am(100, 0, 0, 0))
        );
        assert_eq!(
            ok(S::Authorizing, E::AuthorizeFailed { code: code() }, z),
            (S::Failed, z)
        );
        assert_eq!(
            ok(S::Charging, E::ChargeConfirmed { amount: 70 }, z),
            (S::Captured, am(70, 70, 0, 0))
        );
        assert_eq!(
            ok(S::Charging, E::ChargeFailed { code: code() }, z),
            (S::Failed, z)
        );
        assert_eq!(
            err(S::Authorizing, E::AuthorizeConfirmed { amount: 0 }, z),
            IllegalReason::ZeroAmount
        );
        assert_eq!(
            err(S::Charging, E::ChargeConfirmed { amount: 0 }, z),
            IllegalReason::ZeroAmount
        );
        assert_eq!(
            err(S::Authorizing, E::ChargeConfirmed { amount: 1 }, z),
            IllegalReason::NotAllowed
        );
        assert_eq!(
            err(S::Charging, E::AuthorizeConfirmed { amount: 1 }, z),
            IllegalReason::NotAllowed
        );
        assert_eq!(
            err(S::Authorizing, E::CaptureRequested { amount: 1 }, z),
            IllegalReason::NotAllowed
        );
        assert_eq!(
            err(S::Authorizing, E::VoidRequested, z),
            IllegalReason::NotAllowed
        );
    }

    #[test]
    fn captures_partial_and_repeated() {
        let a = am(100, 0, 0, 0);
        assert_eq!(
            ok(S::Authorized, E::CaptureRequested { amount: 40 }, a),
            (S::Capturing, a)
        );
        let (s, a) = ok(S::Capturing, E::CaptureConfirmed { amount: 40 }, a);
        assert_eq!((s, a), (S::PartiallyCaptured, am(100, 40, 0, 0)));
        assert_eq!(
            ok(S::PartiallyCaptured, E::CaptureRequested { amount: 60 }, a),
            (S::Capturing, a)
        );
        let (s, a) = ok(S::Capturing, E::CaptureConfirmed { amount: 60 }, a);
        assert_eq!((s, a), (S::Captured, am(100, 100, 0, 0)));
        // Failed captures go back to where they came from.
        assert_eq!(
            ok(
                S::Capturing,
                E::CaptureFailed { code: code() },
                am(100, 0, 0, 0)
            )
            .0,
            S::Authorized
        );
        assert_eq!(
            ok(
                S::Capturing,
                E::CaptureFailed { code: code() },
                am(100, 30, 0, 0)
            )
            .0,
            S::PartiallyCaptured
        );
        // Limits.
        assert_eq!(
            err(
                S::Authorized,
                E::CaptureRequested { amount: 101 },
                am(100, 0, 0, 0)
            ),
            IllegalReason::ExceedsCapturable {
                requested: 101,
                available: 100
            }
        );
        assert_eq!(
            err(
                S::Authorized,
                E::CaptureRequested { amount: 0 },
                am(100, 0, 0, 0)
            ),
            IllegalReason::ZeroAmount
        );
        assert_eq!(
            err(
                S::Capturing,
                E::CaptureConfirmed { amount: 61 },
                am(100, 40, 0, 0)
            ),
            IllegalReason::ExceedsCapturable {
                requested: 61,
                available: 60
            }
        );
        // One action at a time.
        assert_eq!(
            err(
                S::Capturing,
                E::CaptureRequested { amount: 1 },
                am(100, 0, 0, 0)
            ),
            IllegalReason::NotAllowed
        );
        assert_eq!(
            err(S::Capturing, E::VoidRequested, am(100, 0, 0, 0)),
            IllegalReason::NotAllowed
        );
        assert_eq!(
            err(
                S::Capturing,
                E::RefundRequested { amount: 1 },
                am(100, 10, 0, 0)
            ),
            IllegalReason::NotAllowed
        );
        assert_eq!(
            err(S::Capturing, E::Expired, am(100, 0, 0, 0)),
            IllegalReason::NotAllowed
        );
        assert_eq!(
            err(
                S::Captured,
                E::CaptureRequested { amount: 1 },
                am(100, 100, 0, 0)
            ),
            IllegalReason::NotAllowed
        );
        assert_eq!(
            err(
                S::Authorized,
                E::CaptureConfirmed { amount: 1 },
                am(100, 0, 0, 0)
            ),
            IllegalReason::NotAllowed
        );
    }

    #[test]
    fn voids() {
        let a = am(100, 0, 0, 0);
        assert_eq!(ok(S::Authorized, E::VoidRequested, a), (S::Voiding, a));
        assert_eq!(
            ok(S::Voiding, E::VoidConfirmed { amount: 100 }, a),
            (S::Voided, am(100, 0, 0, 100))
        );
        assert_eq!(
            ok(S::Voiding, E::VoidFailed { code: code() }, a),
            (S::Authorized, a)
        );
        // Void of the leftover after a partial capture: the payment is then simply Captured.
        let p = am(100, 30, 0, 0);
        assert_eq!(
            ok(S::PartiallyCaptured, E::VoidRequested, p),
            (S::Voiding, p)
        );
        assert_eq!(
            ok(S::Voiding, E::VoidConfirmed { amount: 70 }, p),
            (S::Captured, am(100, 30, 0, 70))
        );
        assert_eq!(
            ok(
                S::Voiding,
                E::VoidConfirmed { amount: 70 },
                am(100, 30, 10, 0)
            )
            .0,
            S::PartiallyRefunded
        );
        assert_eq!(
            ok(
                S::Voiding,
                E::VoidConfirmed { amount: 70 },
                am(100, 30, 30, 0)
            )
            .0,
            S::Refunded
        );
        assert_eq!(
            ok(S::Voiding, E::VoidFailed { code: code() }, p),
            (S::PartiallyCaptured, p)
        );
        // Void after expiry (the operator returns the funds without the payer's gas).
        let x = am(100, 0, 0, 100);
        assert_eq!(ok(S::Expired, E::VoidRequested, x), (S::Voiding, x));
        assert_eq!(
            ok(S::Voiding, E::VoidConfirmed { amount: 100 }, x),
            (S::Voided, x)
        );
        assert_eq!(
            ok(S::Voiding, E::VoidFailed { code: code() }, x),
            (S::Expired, x)
        );
        // Limits.
        assert_eq!(
            err(S::Voiding, E::VoidConfirmed { amount: 71 }, p),
            IllegalReason::ExceedsHeld {
                requested: 71,
                available: 70
            }
        );
        assert_eq!(
            err(S::Voiding, E::VoidConfirmed { amount: 0 }, p),
            IllegalReason::ZeroAmount
        );
        for s in [
            S::Captured,
            S::PartiallyRefunded,
            S::Refunded,
            S::Voided,
            S::Reclaimed,
            S::Failed,
            S::Voiding,
            S::Refunding,
        ] {
            assert_eq!(
                err(s, E::VoidRequested, am(100, 100, 0, 0)),
                IllegalReason::NotAllowed,
                "{s}"
            );
        }
        assert_eq!(
            err(S::Authorized, E::VoidConfirmed { amount: 1 }, a),
            IllegalReason::NotAllowed
        );
        assert_eq!(
            err(S::Authorized, E::VoidFailed { code: code() }, a),
            IllegalReason::NotAllowed
        );
    }

    #[test]
    fn refunds() {
        let c = am(100, 100, 0, 0);
        assert_eq!(
            ok(S::Captured, E::RefundRequested { amount: 30 }, c),
            (S::Refunding, c)
        );
        let (s, a) = ok(S::Refunding, E::RefundConfirmed { amount: 30 }, c);
        assert_eq!((s, a), (S::PartiallyRefunded, am(100, 100, 30, 0)));
        assert_eq!(
            ok(S::PartiallyRefunded, E::RefundRequested { amount: 70 }, a),
            (S::Refunding, a)
        );
        let (s, a) = ok(S::Refunding, E::RefundConfirmed { amount: 70 }, a);
        assert_eq!((s, a), (S::Refunded, am(100, 100, 100, 0)));
        assert_eq!(
            ok(S::Refunding, E::RefundFailed { code: code() }, c),
            (S::Captured, c)
        );
        assert_eq!(
            ok(
                S::Refunding,
                E::RefundFailed { code: code() },
                am(100, 100, 30, 0)
            )
            .0,
            S::PartiallyRefunded
        );
        // Refund of the captured part while the rest is still capturable.
        let p = am(100, 40, 0, 0);
        assert_eq!(
            ok(S::PartiallyCaptured, E::RefundRequested { amount: 40 }, p),
            (S::Refunding, p)
        );
        assert_eq!(
            ok(S::Refunding, E::RefundConfirmed { amount: 40 }, p),
            (S::PartiallyCaptured, am(100, 40, 40, 0))
        );
        assert_eq!(
            ok(S::Refunding, E::RefundFailed { code: code() }, p),
            (S::PartiallyCaptured, p)
        );
        // Limits.
        assert_eq!(
            err(S::Captured, E::RefundRequested { amount: 101 }, c),
            IllegalReason::ExceedsRefundable {
                requested: 101,
                available: 100
            }
        );
        assert_eq!(
            err(
                S::PartiallyRefunded,
                E::RefundRequested { amount: 71 },
                am(100, 100, 30, 0)
            ),
            IllegalReason::ExceedsRefundable {
                requested: 71,
                available: 70
            }
        );
        assert_eq!(
            err(S::Refunding, E::RefundConfirmed { amount: 101 }, c),
            IllegalReason::ExceedsRefundable {
                requested: 101,
                available: 100
            }
        );
        assert_eq!(
            err(S::Captured, E::RefundRequested { amount: 0 }, c),
            IllegalReason::ZeroAmount
        );
        assert_eq!(
            err(
                S::Authorized,
                E::RefundRequested { amount: 1 },
                am(100, 0, 0, 0)
            ),
            IllegalReason::NotAllowed
        );
        assert_eq!(
            err(
                S::Refunded,
                E::RefundRequested { amount: 1 },
                am(100, 100, 100, 0)
            ),
            IllegalReason::NotAllowed
        );
        assert_eq!(
            err(S::Refunding, E::RefundRequested { amount: 1 }, c),
            IllegalReason::NotAllowed
        );
        assert_eq!(
            err(S::Captured, E::RefundConfirmed { amount: 1 }, c),
            IllegalReason::NotAllowed
        );
    }

    #[test]
    fn expiry() {
        assert_eq!(
            ok(S::Authorized, E::Expired, am(100, 0, 0, 0)),
            (S::Expired, am(100, 0, 0, 100))
        );
        assert_eq!(
            ok(S::PartiallyCaptured, E::Expired, am(100, 40, 0, 0)),
            (S::Captured, am(100, 40, 0, 60))
        );
        assert_eq!(
            ok(S::PartiallyCaptured, E::Expired, am(100, 40, 10, 0)).0,
            S::PartiallyRefunded
        );
        assert_eq!(
            ok(S::PartiallyCaptured, E::Expired, am(100, 40, 40, 0)).0,
            S::Refunded
        );
        // A refund in flight from PartiallyCaptured: the window closes underneath it.
        let (s, a) = ok(S::Refunding, E::Expired, am(100, 40, 0, 0));
        assert_eq!((s, a), (S::Refunding, am(100, 40, 0, 60)));
        assert_eq!(
            ok(S::Refunding, E::RefundConfirmed { amount: 40 }, a),
            (S::Refunded, am(100, 40, 40, 60))
        );
        assert_eq!(
            err(S::Refunding, E::Expired, am(100, 100, 0, 0)),
            IllegalReason::NotAllowed
        );
        for s in [
            S::Authorizing,
            S::Charging,
            S::Capturing,
            S::Voiding,
            S::Captured,
            S::Expired,
            S::Voided,
            S::Failed,
        ] {
            assert_eq!(
                err(s, E::Expired, am(100, 0, 0, 0)),
                IllegalReason::NotAllowed,
                "{s}"
            );
        }
        // Nothing capturable after expiry.
        assert_eq!(
            err(
                S::Expired,
                E::CaptureRequested { amount: 1 },
                am(100, 0, 0, 100)
            ),
            IllegalReason::NotAllowed
        );
    }

    #[test]
    fn reclaims() {
        assert_eq!(
            ok(
                S::Authorized,
                E::ReclaimObserved { amount: 100 },
                am(100, 0, 0, 0)
            ),
            (S::Reclaimed, am(100, 0, 0, 100))
        );
        assert_eq!(
            ok(
                S::Expired,
                E::ReclaimObserved { amount: 100 },
                am(100, 0, 0, 100)
            ),
            (S::Reclaimed, am(100, 0, 0, 100))
        );
        assert_eq!(
            ok(
                S::PartiallyCaptured,
                E::ReclaimObserved { amount: 60 },
                am(100, 40, 0, 0)
            ),
            (S::Captured, am(100, 40, 0, 60))
        );
        // Racing our own action: the reclaim wins, our transaction will revert.
        assert_eq!(
            ok(
                S::Capturing,
                E::ReclaimObserved { amount: 100 },
                am(100, 0, 0, 0)
            )
            .0,
            S::Reclaimed
        );
        assert_eq!(
            ok(
                S::Capturing,
                E::ReclaimObserved { amount: 60 },
                am(100, 40, 0, 0)
            )
            .0,
            S::Captured
        );
        assert_eq!(
            ok(
                S::Voiding,
                E::ReclaimObserved { amount: 100 },
                am(100, 0, 0, 0)
            )
            .0,
            S::Reclaimed
        );
        assert_eq!(
            ok(
                S::Voiding,
                E::ReclaimObserved { amount: 100 },
                am(100, 0, 0, 100)
            )
            .0,
            S::Reclaimed
        );
        assert_eq!(
            ok(
                S::Voiding,
                E::ReclaimObserved { amount: 60 },
                am(100, 40, 5, 0)
            )
            .0,
            S::PartiallyRefunded
        );
        // The expired remainder of a partly captured payment; status unchanged.
        for s in [S::Captured, S::PartiallyRefunded, S::Refunded] {
            let r = if s == S::Captured {
                0
            } else if s == S::Refunded {
                40
            } else {
                10
            };
            let a = am(100, 40, r, 60);
            assert_eq!(ok(s, E::ReclaimObserved { amount: 60 }, a), (s, a));
        }
        assert_eq!(
            ok(
                S::Refunding,
                E::ReclaimObserved { amount: 60 },
                am(100, 40, 0, 0)
            ),
            (S::Refunding, am(100, 40, 0, 60))
        );
        // Limits.
        assert_eq!(
            err(
                S::Captured,
                E::ReclaimObserved { amount: 1 },
                am(100, 100, 0, 0)
            ),
            IllegalReason::ExceedsHeld {
                requested: 1,
                available: 0
            }
        );
        assert_eq!(
            err(
                S::Authorized,
                E::ReclaimObserved { amount: 0 },
                am(100, 0, 0, 0)
            ),
            IllegalReason::ZeroAmount
        );
        for s in [
            S::Authorizing,
            S::Charging,
            S::Voided,
            S::Reclaimed,
            S::Failed,
        ] {
            assert_eq!(
                err(s, E::ReclaimObserved { amount: 1 }, am(100, 0, 0, 100)),
                IllegalReason::NotAllowed,
                "{s}"
            );
        }
    }

    #[test]
    fn terminal_states_refuse_everything_that_changes_them() {
        let events = sample_events(5);
        for s in [S::Voided, S::Reclaimed, S::Failed] {
            for e in &events {
                let a = if s == S::Failed {
                    Amounts::default()
                } else {
                    am(100, 0, 0, 100)
                };
                assert!(s.apply(e, &mut a.clone()).is_err(), "{s} accepted {e:?}");
            }
        }
        for e in &events {
            let mut a = am(100, 40, 40, 60);
            if let Ok(to) = S::Refunded.apply(e, &mut a) {
                assert_eq!(to, S::Refunded);
                assert!(matches!(e, E::ReclaimObserved { .. }));
            }
        }
    }

    #[test]
    fn inconsistent_stored_amounts_are_refused() {
        let bad = am(10, 20, 0, 0);
        assert!(matches!(
            err(S::Authorized, E::VoidRequested, bad),
            IllegalReason::Amounts(AmountError::Inconsistent(_))
        ));
        assert!(matches!(
            err(
                S::Capturing,
                E::CaptureConfirmed { amount: 1 },
                am(u128::MAX, u128::MAX, 0, 0)
            ),
            IllegalReason::Amounts(_) | IllegalReason::ExceedsCapturable { .. }
        ));
    }

    fn sample_events(amount: u128) -> Vec<E> {
        vec![
            E::AuthorizeConfirmed { amount },
            E::AuthorizeFailed { code: code() },
            E::ChargeConfirmed { amount },
            E::ChargeFailed { code: code() },
            E::CaptureRequested { amount },
            E::CaptureConfirmed { amount },
            E::CaptureFailed { code: code() },
            E::VoidRequested,
            E::VoidConfirmed { amount },
            E::VoidFailed { code: code() },
            E::RefundRequested { amount },
            E::RefundConfirmed { amount },
            E::RefundFailed { code: code() },
            E::ReclaimObserved { amount },
            E::Expired,
        ]
    }

    /// The full (status × event kind) matrix of which pairs may ever be legal, checked against
    /// the table with amounts that make each legal pair's amount checks pass.
    #[test]
    fn matrix_of_allowed_pairs() {
        let allowed: &[(S, &str)] = &[
            (S::Authorizing, "authorize_confirmed"),
            (S::Authorizing, "authorize_failed"),
            (S::Charging, "charge_confirmed"),
            (S::Charging, "charge_failed"),
            (S::Authorized, "capture_requested"),
            (S::Authorized, "void_requested"),
            (S::Authorized, "expired"),
            (S::Authorized, "reclaim_observed"),
            (S::PartiallyCaptured, "capture_requested"),
            (S::PartiallyCaptured, "void_requested"),
            (S::PartiallyCaptured, "refund_requested"),
            (S::PartiallyCaptured, "expired"),
            (S::PartiallyCaptured, "reclaim_observed"),
            (S::Capturing, "capture_confirmed"),
            (S::Capturing, "capture_failed"),
            (S::Capturing, "reclaim_observed"),
            (S::Captured, "refund_requested"),
            (S::Captured, "reclaim_observed"),
            (S::PartiallyRefunded, "refund_requested"),
            (S::PartiallyRefunded, "reclaim_observed"),
            (S::Refunded, "reclaim_observed"),
            (S::Refunding, "refund_confirmed"),
            (S::Refunding, "refund_failed"),
            (S::Refunding, "expired"),
            (S::Refunding, "reclaim_observed"),
            (S::Voiding, "void_confirmed"),
            (S::Voiding, "void_failed"),
            (S::Voiding, "reclaim_observed"),
            (S::Expired, "void_requested"),
            (S::Expired, "reclaim_observed"),
        ];
        // Amounts per status under which every allowed pair passes its amount checks.
        let amounts_for = |s: S| match s {
            S::Authorizing | S::Charging | S::Failed => Amounts::default(),
            S::Authorized => am(100, 0, 0, 0),
            S::PartiallyCaptured | S::Capturing | S::Refunding => am(100, 40, 0, 0),
            S::Voiding => am(100, 0, 0, 0),
            S::Captured => am(100, 40, 0, 60),
            S::PartiallyRefunded => am(100, 40, 10, 60),
            S::Refunded => am(100, 40, 40, 60),
            S::Voided | S::Reclaimed | S::Expired => am(100, 0, 0, 100),
        };
        for s in ALL_STATUSES {
            for e in sample_events(5) {
                let legal = allowed.contains(&(s, e.name()));
                let mut a = amounts_for(s);
                let result = s.apply(&e, &mut a);
                assert_eq!(result.is_ok(), legal, "{s} × {}: {result:?}", e.name());
                if let Ok(to) = result {
                    assert!(consistent(to, &a), "{s} × {} → {to} {a:?}", e.name());
                } else {
                    assert_eq!(a, amounts_for(s));
                }
            }
        }
    }

    mod property {
        use super::*;
        use proptest::prelude::*;

        fn event() -> impl Strategy<Value = E> {
            let amount = prop_oneof![0u128..=3, 1u128..=150, Just(u128::MAX)];
            (0usize..15, amount).prop_map(|(i, amount)| sample_events(amount).swap_remove(i))
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]
            /// Random event sequences (mostly illegal ones) never break the amount invariants or
            /// the status/amount consistency, and refused events never change anything.
            #[test]
            fn random_sequences_keep_invariants(
                flow in prop_oneof![Just(Flow::Authorize), Just(Flow::Charge)],
                events in proptest::collection::vec(event(), 0..60),
            ) {
                let mut status = S::initial(flow);
                let mut amounts = Amounts::default();
                for e in &events {
                    let before = amounts;
                    match status.apply(e, &mut amounts) {
                        Ok(next) => {
                            prop_assert!(amounts.check().is_ok());
                            prop_assert!(amounts.refunded <= amounts.captured);
                            prop_assert!(amounts.captured <= amounts.authorized);
                            prop_assert!(consistent(next, &amounts), "{status} {e:?} -> {next} {amounts:?}");
                            // Money only moves forward.
                            prop_assert!(amounts.captured >= before.captured);
                            prop_assert!(amounts.refunded >= before.refunded);
                            prop_assert!(amounts.released >= before.released);
                            if status.is_terminal() { prop_assert_eq!(next, status); }
                            status = next;
                        }
                        Err(_) => prop_assert_eq!(amounts, before),
                    }
                }
            }
        }
    }
}
