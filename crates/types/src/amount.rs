//! Unsigned integers carried on the wire as decimal strings (`"1000000"`): token amounts and
//! ERC-3009 validity timestamps.

use std::fmt;
use std::str::FromStr;

use alloy_primitives::U256;
use serde::{Serialize, Serializer};

/// Most decimal digits a `uint256` can have (2^256 - 1 has 78).
pub const MAX_DECIMAL_DIGITS: usize = 78;

/// Largest value of a Solidity `uint120` (the escrow's `maxAmount` type): 2^120 - 1.
pub const UINT120_MAX: U256 = U256::from_limbs([u64::MAX, (1u64 << 56) - 1, 0, 0]);

/// Largest value of a Solidity `uint48` (the escrow's expiry type): 2^48 - 1.
pub const UINT48_MAX: u64 = (1u64 << 48) - 1;

/// Why a decimal string was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AmountError {
    /// Empty string.
    #[error("amount is an empty string")]
    Empty,
    /// Starts with `-` or `+`.
    #[error("amount must be an unsigned decimal integer without a sign")]
    Sign,
    /// Contains `.`, or `e`/`E` (a fraction or an exponent).
    #[error("amount must be an integer in atomic units (no fraction or exponent)")]
    Fraction,
    /// A leading zero in a number other than `0`.
    #[error("amount must not have leading zeros")]
    LeadingZero,
    /// Any other non-digit character (whitespace, hex prefix, letters).
    #[error("amount must contain only the digits 0-9")]
    NotDecimal,
    /// More than [`MAX_DECIMAL_DIGITS`] digits.
    #[error("amount has {0} digits, more than the 78 a uint256 can hold")]
    TooManyDigits(usize),
    /// Larger than the maximum of the named Solidity type.
    #[error("amount exceeds the maximum of a uint{bits}")]
    Overflow {
        /// Width of the type (256, 120, 48).
        bits: u16,
    },
    /// A price string (`"$0.01"`, `"0.01"`) is malformed or has more decimals than the token.
    #[error("price must be a decimal number with at most {decimals} fractional digits")]
    Price {
        /// The token's decimals.
        decimals: u8,
    },
}

/// An unsigned 256-bit integer that travels as a canonical decimal string: no sign, no fraction,
/// no exponent, no leading zeros, at most 78 digits and at most 2^256 - 1.
///
/// Used for token amounts (`amount`, `maxAmountRequired`, `authorization.value`) and ERC-3009
/// timestamps (`validAfter`, `validBefore`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Amount(pub U256);

impl Amount {
    /// Zero.
    pub const ZERO: Self = Self(U256::ZERO);

    /// Wraps a `U256`.
    pub const fn new(value: U256) -> Self {
        Self(value)
    }

    /// The value.
    pub const fn get(self) -> U256 {
        self.0
    }

    /// Parses the canonical decimal spelling strictly (see the type's documentation).
    pub fn parse(s: &str) -> Result<Self, AmountError> {
        let bytes = s.as_bytes();
        let Some(&first) = bytes.first() else {
            return Err(AmountError::Empty);
        };
        if first == b'-' || first == b'+' {
            return Err(AmountError::Sign);
        }
        if let Some(bad) = bytes.iter().find(|b| !b.is_ascii_digit()) {
            return Err(match bad {
                b'.' | b'e' | b'E' => AmountError::Fraction,
                _ => AmountError::NotDecimal,
            });
        }
        if bytes.len() > 1 && first == b'0' {
            return Err(AmountError::LeadingZero);
        }
        if bytes.len() > MAX_DECIMAL_DIGITS {
            return Err(AmountError::TooManyDigits(bytes.len()));
        }
        U256::from_str_radix(s, 10)
            .map(Self)
            .map_err(|_| AmountError::Overflow { bits: 256 })
    }

    /// Checks that the value fits a Solidity `uint120` (the escrow's amount type).
    pub fn check_uint120(self) -> Result<Self, AmountError> {
        if self.0 > UINT120_MAX {
            Err(AmountError::Overflow { bits: 120 })
        } else {
            Ok(self)
        }
    }

    /// The value as `u128` when it fits.
    pub fn to_u128(self) -> Option<u128> {
        u128::try_from(self.0).ok()
    }

    /// The value as `u64` when it fits.
    pub fn to_u64(self) -> Option<u64> {
        u64::try_from(self.0).ok()
    }

    /// Converts a human price into atomic units: `"$0.01"` or `"0.01"` with `decimals = 6`
    /// gives `10000`. A leading `$` is allowed; more fractional digits than `decimals` is an
    /// error (no silent rounding).
    pub fn from_price(price: &str, decimals: u8) -> Result<Self, AmountError> {
        let bad = AmountError::Price { decimals };
        let s = price.trim();
        let s = s.strip_prefix('$').unwrap_or(s);
        let (whole, frac) = match s.split_once('.') {
            Some((w, f)) => (w, f),
            None => (s, ""),
        };
        let digits_only = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() && frac.is_empty() || !digits_only(whole) || !digits_only(frac) {
            return Err(bad);
        }
        if s.contains('.') && frac.is_empty() || frac.len() > usize::from(decimals) {
            return Err(bad);
        }
        let mut digits = String::with_capacity(whole.len() + usize::from(decimals));
        digits.push_str(whole);
        digits.push_str(frac);
        for _ in frac.len()..usize::from(decimals) {
            digits.push('0');
        }
        let trimmed = digits.trim_start_matches('0');
        if trimmed.is_empty() {
            return Ok(Self::ZERO);
        }
        Self::parse(trimmed).map_err(|_| bad)
    }
}

impl From<U256> for Amount {
    fn from(value: U256) -> Self {
        Self(value)
    }
}

impl From<u64> for Amount {
    fn from(value: u64) -> Self {
        Self(U256::from(value))
    }
}

impl From<u128> for Amount {
    fn from(value: u128) -> Self {
        Self(U256::from(value))
    }
}

impl From<Amount> for U256 {
    fn from(value: Amount) -> Self {
        value.0
    }
}

impl FromStr for Amount {
    type Err = AmountError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

crate::json::deserialize_via_from_json!(Amount);

impl crate::json::FromJson for Amount {
    fn from_json(value: &serde_json::Value, path: &str) -> Result<Self, crate::DecodeError> {
        crate::json::amount(value, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_parse() {
        assert_eq!(Amount::parse("0"), Ok(Amount::ZERO));
        assert_eq!(Amount::parse("1000000"), Ok(Amount::from(1_000_000u64)));
        assert_eq!(Amount::parse(""), Err(AmountError::Empty));
        assert_eq!(Amount::parse("-1"), Err(AmountError::Sign));
        assert_eq!(Amount::parse("+1"), Err(AmountError::Sign));
        assert_eq!(Amount::parse("1.5"), Err(AmountError::Fraction));
        assert_eq!(Amount::parse("1e6"), Err(AmountError::Fraction));
        assert_eq!(Amount::parse("01"), Err(AmountError::LeadingZero));
        assert_eq!(Amount::parse(" 1"), Err(AmountError::NotDecimal));
        assert_eq!(Amount::parse("0x10"), Err(AmountError::NotDecimal));
        assert_eq!(Amount::parse("١"), Err(AmountError::NotDecimal));
        let max = U256::MAX.to_string();
        assert_eq!(max.len(), 78);
        assert_eq!(Amount::parse(&max), Ok(Amount(U256::MAX)));
        let over = "115792089237316195423570985008687907853269984665640564039457584007913129639936";
        assert_eq!(
            Amount::parse(over),
            Err(AmountError::Overflow { bits: 256 })
        );
        assert_eq!(
            Amount::parse(&"9".repeat(79)),
            Err(AmountError::TooManyDigits(79))
        );
    }

    #[test]
    fn uint120() {
        let max = (U256::from(1u8) << 120) - U256::from(1u8);
        assert_eq!(UINT120_MAX, max);
        assert!(Amount(max).check_uint120().is_ok());
        assert_eq!(
            Amount(max + U256::from(1u8)).check_uint120(),
            Err(AmountError::Overflow { bits: 120 })
        );
    }

    #[test]
    fn prices() {
        assert_eq!(Amount::from_price("$0.01", 6), Ok(Amount::from(10_000u64)));
        assert_eq!(Amount::from_price("1", 6), Ok(Amount::from(1_000_000u64)));
        assert_eq!(Amount::from_price("2.5", 6), Ok(Amount::from(2_500_000u64)));
        assert_eq!(Amount::from_price("0", 6), Ok(Amount::ZERO));
        assert!(Amount::from_price("0.0000001", 6).is_err());
        assert!(Amount::from_price("$", 6).is_err());
        assert!(Amount::from_price("1.", 6).is_err());
        assert!(Amount::from_price("-1", 6).is_err());
        assert!(Amount::from_price("1,5", 6).is_err());
    }
}
