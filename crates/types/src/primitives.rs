//! Strict parsers for the hex-encoded primitives of the wire format: addresses, 32-byte words
//! (nonces, salts, transaction hashes) and byte strings (signatures).

use alloy_primitives::{Address, B256, Bytes};

/// Largest byte string accepted for a signature field (an EIP-6492 envelope carries a factory
/// call, so it can be much longer than 65 bytes; the header size limit bounds it anyway).
pub const MAX_SIGNATURE_BYTES: usize = 4096;

/// Why an address string was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// The string does not start with `0x`.
    #[error("address must start with 0x")]
    MissingPrefix,
    /// The hex part is not 40 characters long.
    #[error("address must have 40 hex digits after 0x, found {0}")]
    Length(usize),
    /// The hex part holds a non-hex character.
    #[error("address contains a non-hex character")]
    NotHex,
    /// Mixed-case hex whose EIP-55 checksum does not match.
    #[error("address has mixed case but fails its EIP-55 checksum")]
    Checksum,
}

/// Why a hex string (32-byte word or byte string) was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HexError {
    /// The string does not start with `0x`.
    #[error("hex value must start with 0x")]
    MissingPrefix,
    /// Wrong number of hex digits.
    #[error("expected {expected} hex digits after 0x, found {found}")]
    Length {
        /// Digits expected.
        expected: usize,
        /// Digits found.
        found: usize,
    },
    /// Odd number of hex digits in a byte string.
    #[error("hex byte string has an odd number of digits")]
    OddLength,
    /// Empty byte string where one is required.
    #[error("hex byte string is empty")]
    Empty,
    /// Byte string longer than allowed.
    #[error("hex byte string is {found} bytes long, more than {max}")]
    TooLong {
        /// Bytes found.
        found: usize,
        /// Bytes allowed.
        max: usize,
    },
    /// A non-hex character.
    #[error("hex value contains a non-hex character")]
    NotHex,
}

fn strip_0x(s: &str) -> Option<&str> {
    s.strip_prefix("0x")
}

fn decode_hex_digits(hex: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let bytes = hex.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Some((nibble(pair[0])? << 4) | nibble(pair[1])?))
        .collect()
}

/// Parses an address: `0x` + 40 hex digits. All-lowercase or all-uppercase digits are accepted
/// as is; mixed case must carry a valid EIP-55 checksum.
pub fn parse_address(s: &str) -> Result<Address, AddressError> {
    let hex = strip_0x(s).ok_or(AddressError::MissingPrefix)?;
    if hex.len() != 40 {
        return Err(AddressError::Length(hex.chars().count()));
    }
    let raw = decode_hex_digits(hex).ok_or(AddressError::NotHex)?;
    let address = Address::from_slice(&raw);
    let has_lower = hex.bytes().any(|c| c.is_ascii_lowercase());
    let has_upper = hex.bytes().any(|c| c.is_ascii_uppercase());
    if has_lower && has_upper && address.to_checksum(None) != s {
        return Err(AddressError::Checksum);
    }
    Ok(address)
}

/// Parses a 32-byte word: `0x` + exactly 64 hex digits (either case), as the wire spells
/// nonces, salts and transaction hashes.
pub fn parse_b256(s: &str) -> Result<B256, HexError> {
    let hex = strip_0x(s).ok_or(HexError::MissingPrefix)?;
    if hex.len() != 64 {
        return Err(HexError::Length {
            expected: 64,
            found: hex.chars().count(),
        });
    }
    let raw = decode_hex_digits(hex).ok_or(HexError::NotHex)?;
    Ok(B256::from_slice(&raw))
}

/// Parses a non-empty byte string `0x…` (even number of hex digits) of at most `max` bytes.
pub fn parse_bytes(s: &str, max: usize) -> Result<Bytes, HexError> {
    let hex = strip_0x(s).ok_or(HexError::MissingPrefix)?;
    if hex.is_empty() {
        return Err(HexError::Empty);
    }
    if !hex.len().is_multiple_of(2) {
        return Err(HexError::OddLength);
    }
    if hex.len() / 2 > max {
        return Err(HexError::TooLong {
            found: hex.len() / 2,
            max,
        });
    }
    decode_hex_digits(hex)
        .map(Bytes::from)
        .ok_or(HexError::NotHex)
}

/// Serialisers writing addresses with their EIP-55 checksum, as the x402 clients do (for
/// `#[serde(serialize_with = …)]`; alloy's own `Serialize` writes lowercase).
pub mod serde_checksum {
    use std::collections::BTreeMap;

    use alloy_primitives::Address;
    use serde::Serializer;
    use serde::ser::{SerializeMap, SerializeSeq};

    /// One address.
    pub fn address<S: Serializer>(address: &Address, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&address.to_checksum(None))
    }

    /// An optional address (pair with `skip_serializing_if = "Option::is_none"`).
    pub fn option<S: Serializer>(
        address: &Option<Address>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match address {
            Some(address) => serializer.serialize_str(&address.to_checksum(None)),
            None => serializer.serialize_none(),
        }
    }

    /// A list of addresses.
    pub fn vec<S: Serializer>(addresses: &[Address], serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(addresses.len()))?;
        for address in addresses {
            seq.serialize_element(&address.to_checksum(None))?;
        }
        seq.end()
    }

    /// A map of address lists (`/supported` signers).
    pub fn map<S: Serializer>(
        map: &BTreeMap<String, Vec<Address>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_map(Some(map.len()))?;
        for (key, addresses) in map {
            let list: Vec<String> = addresses.iter().map(|a| a.to_checksum(None)).collect();
            out.serialize_entry(key, &list)?;
        }
        out.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let good = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
        assert_eq!(
            parse_address(good).map(|a| a.to_checksum(None)),
            Ok(good.to_string())
        );
        assert!(parse_address(&good.to_lowercase()).is_ok());
        assert!(parse_address(&format!("0x{}", good[2..].to_uppercase())).is_ok());
        // One character's case flipped: checksum failure.
        let bad = "0x70997970c51812dc3A010C7d01b50e0d17dc79C8";
        assert_eq!(parse_address(bad), Err(AddressError::Checksum));
        assert_eq!(
            parse_address("70997970C51812dc3A010C7d01b50e0d17dc79C8"),
            Err(AddressError::MissingPrefix)
        );
        assert_eq!(parse_address("0x1234"), Err(AddressError::Length(4)));
        assert_eq!(
            parse_address("0xZZ997970C51812dc3A010C7d01b50e0d17dc79C8"),
            Err(AddressError::NotHex)
        );
        // Multi-byte UTF-8 of the right byte length must not panic.
        assert!(parse_address("0xéééééééééééééééééééé").is_err());
    }

    #[test]
    fn words_and_bytes() {
        assert!(parse_b256(&format!("0x{}", "ab".repeat(32))).is_ok());
        assert_eq!(
            parse_b256("0x12"),
            Err(HexError::Length {
                expected: 64,
                found: 2
            })
        );
        assert_eq!(parse_bytes("0x", 10), Err(HexError::Empty));
        assert_eq!(parse_bytes("0x123", 10), Err(HexError::OddLength));
        assert_eq!(
            parse_bytes("0x1234", 1),
            Err(HexError::TooLong { found: 2, max: 1 })
        );
        assert_eq!(parse_bytes("0x12g4", 10), Err(HexError::NotHex));
    }
}
