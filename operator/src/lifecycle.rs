//! The payment lifecycle: [`PaymentStatus`], the [`PaymentEvent`]s that move it, and the amount
//! bookkeeping ([`Amounts`]) that keeps `refunded ≤ captured ≤ authorized`.
//!
//! Defined once in `x402-escrow-types` (the status is part of the REST API the merchant client
//! reads, and the transition table has to live with the enum it extends); this module keeps the
//! operator's paths. [`PaymentStatus::apply`] is the only place where a payment's status and
//! amounts change; the store writes a new status only through it. The table, its model and its
//! tests: `crates/types/src/lifecycle/` and `crates/types/tests/lifecycle.rs`.

pub use x402_escrow_types::lifecycle::{
    ALL_STATUSES, Amount, AmountError, Amounts, Flow, IllegalReason, IllegalTransition,
    ParseEnumError, PaymentEvent, PaymentStatus, consistent,
};
