//! The money side of a payment: [`Amounts`] and its invariants (see the [module docs](super)
//! for the meaning of each field).

use serde::{Deserialize, Serialize};

use super::Amount;

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
