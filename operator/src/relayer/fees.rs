//! Fee suggestion, capping and replacement bumps (EIP-1559).

use alloy::providers::Provider;
use alloy::transports::TransportError;

/// EIP-1559 fees of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fees {
    /// Max fee per gas (wei).
    pub max_fee_per_gas: u128,
    /// Max priority fee per gas (wei).
    pub max_priority_fee_per_gas: u128,
}

impl Fees {
    /// Applies the configured cap to the max fee, keeping tip ≤ max fee.
    pub fn capped(self, cap: Option<u128>) -> Fees {
        let max_fee_per_gas = cap.map_or(self.max_fee_per_gas, |c| self.max_fee_per_gas.min(c));
        Fees {
            max_fee_per_gas,
            max_priority_fee_per_gas: self.max_priority_fee_per_gas.min(max_fee_per_gas),
        }
    }
}

/// The node's suggestion (`estimate_eip1559_fees`), capped.
pub async fn suggest<P: Provider>(provider: &P, cap: Option<u128>) -> Result<Fees, TransportError> {
    let est = provider.estimate_eip1559_fees().await?;
    Ok(Fees {
        max_fee_per_gas: est.max_fee_per_gas,
        max_priority_fee_per_gas: est.max_priority_fee_per_gas,
    }
    .capped(cap))
}

/// `value` raised by `percent` (rounded up, and by at least 1 wei).
pub fn raise(value: u128, percent: u64) -> u128 {
    let inc = value
        .saturating_mul(u128::from(percent))
        .div_ceil(100)
        .max(1);
    value.saturating_add(inc)
}

/// Fees for a replacement of an attempt that paid `previous`: both the max fee and the tip rise
/// by at least `percent` (nodes require ≥ 10% on both), or to the current suggestion when that
/// is higher. `None` when the cap does not allow a valid replacement.
pub fn bump(previous: Fees, percent: u64, suggested: Fees, cap: Option<u128>) -> Option<Fees> {
    let tip =
        raise(previous.max_priority_fee_per_gas, percent).max(suggested.max_priority_fee_per_gas);
    let max_fee = raise(previous.max_fee_per_gas, percent)
        .max(suggested.max_fee_per_gas)
        .max(tip);
    let min_tip = raise(previous.max_priority_fee_per_gas, percent);
    let min_fee = raise(previous.max_fee_per_gas, percent);
    let fees = Fees {
        max_fee_per_gas: max_fee,
        max_priority_fee_per_gas: tip,
    }
    .capped(cap);
    (fees.max_fee_per_gas >= min_fee && fees.max_priority_fee_per_gas >= min_tip).then_some(fees)
}

/// `gas` plus `percent` headroom.
pub fn with_margin(gas: u64, percent: u64) -> u64 {
    gas.saturating_add(gas.saturating_mul(percent) / 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bump_raises_both_by_at_least_the_percentage() {
        let prev = Fees {
            max_fee_per_gas: 100,
            max_priority_fee_per_gas: 10,
        };
        let low = Fees {
            max_fee_per_gas: 1,
            max_priority_fee_per_gas: 1,
        };
        let b = bump(prev, 10, low, None).expect("bump");
        assert_eq!(
            b,
            Fees {
                max_fee_per_gas: 110,
                max_priority_fee_per_gas: 11
            }
        );
        let high = Fees {
            max_fee_per_gas: 500,
            max_priority_fee_per_gas: 50,
        };
        assert_eq!(bump(prev, 10, high, None), Some(high));
        assert_eq!(bump(prev, 10, low, Some(105)), None);
        assert_eq!(raise(0, 12), 1);
        assert_eq!(with_margin(100_000, 20), 120_000);
    }

    #[test]
    fn cap_keeps_tip_below_max_fee() {
        let f = Fees {
            max_fee_per_gas: 100,
            max_priority_fee_per_gas: 90,
        }
        .capped(Some(50));
        assert_eq!(
            f,
            Fees {
                max_fee_per_gas: 50,
                max_priority_fee_per_gas: 50
            }
        );
    }
}
