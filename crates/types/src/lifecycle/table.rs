//! The transition table of [`PaymentStatus::apply`]: every legal `(status, event)` pair and
//! the amount rules it enforces; everything else is an [`IllegalTransition`].
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

use super::{Amount, AmountError, Amounts, PaymentEvent, PaymentStatus};

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
                within(a, Limit::Capturable, *amount)?;
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
                within(a, Limit::Refundable, *amount)?;
                Ok(S::Refunding)
            }

            // --- outcomes of the action in flight ----------------------------------------------
            (S::Capturing, E::CaptureConfirmed { amount }) => {
                within(a, Limit::Capturable, *amount)?;
                a.captured = add(a.captured, *amount)?;
                Ok(settled(a))
            }
            (S::Capturing, E::CaptureFailed { .. }) => Ok(settled(a)),
            (S::Voiding, E::VoidConfirmed { amount }) => release(a, *amount, S::Voided),
            (S::Voiding, E::VoidFailed { .. }) => {
                // A void started from Expired has nothing capturable and nothing captured.
                if a.capturable() == 0 && a.captured == 0 {
                    Ok(S::Expired)
                } else {
                    Ok(settled(a))
                }
            }
            (S::Refunding, E::RefundConfirmed { amount }) => {
                within(a, Limit::Refundable, *amount)?;
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
                within(a, Limit::Held, *amount)?;
                a.released = a.held();
                Ok(S::Reclaimed)
            }
            (S::PartiallyCaptured | S::Capturing | S::Voiding, E::ReclaimObserved { amount }) => {
                release(a, *amount, S::Reclaimed)
            }
            (
                S::Captured | S::PartiallyRefunded | S::Refunded | S::Refunding,
                E::ReclaimObserved { amount },
            ) => {
                // Only an expired remainder can still be reclaimed here; the status (and the
                // refund in flight, if any) is unaffected.
                within(a, Limit::Held, *amount)?;
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

/// A confirmed void or reclaim of `amount`: the whole held remainder is released; the payment
/// ends in `nothing_captured` when nothing was captured, else in its settled status.
fn release(
    a: &mut Amounts,
    amount: Amount,
    nothing_captured: PaymentStatus,
) -> Result<PaymentStatus, IllegalReason> {
    within(a, Limit::Held, amount)?;
    a.released = a.held();
    Ok(if a.captured == 0 {
        nothing_captured
    } else {
        settled(a)
    })
}

fn positive(amount: Amount) -> Result<(), IllegalReason> {
    if amount == 0 {
        Err(IllegalReason::ZeroAmount)
    } else {
        Ok(())
    }
}

/// The limit an event's amount is checked against.
#[derive(Clone, Copy)]
enum Limit {
    /// [`Amounts::capturable`].
    Capturable,
    /// [`Amounts::refundable`].
    Refundable,
    /// [`Amounts::held`].
    Held,
}

/// `requested` is positive and at most what `limit` leaves in `a`.
fn within(a: &Amounts, limit: Limit, requested: Amount) -> Result<(), IllegalReason> {
    positive(requested)?;
    let available = match limit {
        Limit::Capturable => a.capturable(),
        Limit::Refundable => a.refundable(),
        Limit::Held => a.held(),
    };
    if requested <= available {
        return Ok(());
    }
    Err(match limit {
        Limit::Capturable => IllegalReason::ExceedsCapturable {
            requested,
            available,
        },
        Limit::Refundable => IllegalReason::ExceedsRefundable {
            requested,
            available,
        },
        Limit::Held => IllegalReason::ExceedsHeld {
            requested,
            available,
        },
    })
}

fn add(x: Amount, y: Amount) -> Result<Amount, IllegalReason> {
    x.checked_add(y)
        .ok_or(IllegalReason::Amounts(AmountError::Overflow))
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
