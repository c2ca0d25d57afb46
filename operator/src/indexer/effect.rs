//! [`event_effect`]: what each escrow event means for a payment, and who caused it ([`Origin`]).

use alloy::primitives::B256;

use super::event::{EscrowEvent, EventDecodeError};
use crate::lifecycle::PaymentEvent;
use crate::store::ChainEvent;

/// Who caused an event, which decides how the engine applies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Only the payment's operator can send this (authorize, charge, capture, void, refund):
    /// normally the confirmation of the engine's own outbox row (match `tx_hash` against the
    /// payment's `pending_tx_id` attempts); if the engine has no such action in flight, it was
    /// sent outside this operator (another instance, a script with the same key) and the
    /// engine reconciles the payment from `paymentState` instead of guessing.
    Operator,
    /// The payer did this on their own (`reclaim` after `authorizationExpiry`): the operator
    /// never sends it, so the engine applies it directly.
    Payer,
}

/// What an escrow event means for a payment, in [`crate::lifecycle`] terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventEffect {
    /// Apply `event` to the payment with hash `payment_hash` (when the operator tracks it).
    Payment {
        /// The payment concerned.
        payment_hash: B256,
        /// The lifecycle event to apply.
        event: PaymentEvent,
        /// Who caused it.
        origin: Origin,
    },
    /// Nothing to do for any payment (`TokenStoreCreated`).
    None,
}

/// Maps an escrow event to its effect on a payment. Pure: the engine decides whether the
/// payment is ours, whether the effect is already applied (the event's `processed_at`, the
/// payment's pending transaction) and applies it through `transition_payment`.
///
/// | event | lifecycle event | origin |
/// |---|---|---|
/// | `PaymentAuthorized{amount}` | `AuthorizeConfirmed{amount}` | operator |
/// | `PaymentCharged{amount}` | `ChargeConfirmed{amount}` | operator |
/// | `PaymentCaptured{amount}` | `CaptureConfirmed{amount}` | operator |
/// | `PaymentVoided{amount}` | `VoidConfirmed{amount}` | operator |
/// | `PaymentRefunded{amount}` | `RefundConfirmed{amount}` | operator |
/// | `PaymentReclaimed{amount}` | `ReclaimObserved{amount}` | payer |
/// | `TokenStoreCreated` | none | — |
pub fn event_effect(event: &EscrowEvent) -> EventEffect {
    let (payment_hash, event, origin) = match *event {
        EscrowEvent::Authorized {
            payment_hash,
            amount,
            ..
        } => (
            payment_hash,
            PaymentEvent::AuthorizeConfirmed { amount },
            Origin::Operator,
        ),
        EscrowEvent::Charged {
            payment_hash,
            amount,
            ..
        } => (
            payment_hash,
            PaymentEvent::ChargeConfirmed { amount },
            Origin::Operator,
        ),
        EscrowEvent::Captured {
            payment_hash,
            amount,
            ..
        } => (
            payment_hash,
            PaymentEvent::CaptureConfirmed { amount },
            Origin::Operator,
        ),
        EscrowEvent::Voided {
            payment_hash,
            amount,
        } => (
            payment_hash,
            PaymentEvent::VoidConfirmed { amount },
            Origin::Operator,
        ),
        EscrowEvent::Refunded {
            payment_hash,
            amount,
            ..
        } => (
            payment_hash,
            PaymentEvent::RefundConfirmed { amount },
            Origin::Operator,
        ),
        EscrowEvent::Reclaimed {
            payment_hash,
            amount,
        } => (
            payment_hash,
            PaymentEvent::ReclaimObserved { amount },
            Origin::Payer,
        ),
        EscrowEvent::TokenStoreCreated { .. } => return EventEffect::None,
    };
    EventEffect::Payment {
        payment_hash,
        event,
        origin,
    }
}

/// [`event_effect`] of a stored row (what the engine reads from `Store::unprocessed_events`).
pub fn stored_event_effect(event: &ChainEvent) -> Result<EventEffect, EventDecodeError> {
    Ok(event_effect(&EscrowEvent::from_stored(event)?))
}
