//! EVM networks: CAIP-2 identifiers (`eip155:<chainId>`, x402 v2) and the v1 network names
//! (`base`, `base-sepolia`, …).

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::DecodeError;
use crate::json::{self, FromJson};

/// An EVM network, identified by its chain id.
///
/// Serialises as CAIP-2 (`"eip155:8453"`); v1 types serialise it by name through
/// [`Network::v1_name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Network {
    chain_id: u64,
}

/// The v1 network names we know, with their chain ids. The first name of a chain id is the one
/// we write; `localhost` is accepted as an alias of `anvil`.
const V1_NAMES: &[(&str, u64)] = &[
    ("ethereum", 1),
    ("sepolia", 11_155_111),
    ("base", 8453),
    ("base-sepolia", 84_532),
    ("optimism", 10),
    ("optimism-sepolia", 11_155_420),
    ("arbitrum", 42_161),
    ("arbitrum-sepolia", 421_614),
    ("polygon", 137),
    ("polygon-amoy", 80_002),
    ("avalanche", 43_114),
    ("avalanche-fuji", 43_113),
    // Local development chains (our extension; not an x402 registry name).
    ("anvil", 31_337),
    ("localhost", 31_337),
];

/// The CAIP-2 namespace of EVM chains.
pub const EIP155: &str = "eip155";

/// Why a network identifier was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NetworkError {
    /// Not of the form `namespace:reference`.
    #[error("not a CAIP-2 identifier (namespace:reference)")]
    NotCaip2,
    /// A valid CAIP-2 identifier outside the `eip155` namespace.
    #[error("only eip155 (EVM) networks are supported")]
    UnsupportedNamespace,
    /// The `eip155` reference is not a canonical decimal chain id in 1..=2^64-1.
    #[error("the eip155 chain id must be a decimal integer without leading zeros, at least 1")]
    InvalidChainId,
    /// Not a v1 network name we know.
    #[error("unknown v1 network name")]
    UnknownName,
}

impl NetworkError {
    fn reason(self) -> &'static str {
        match self {
            Self::NotCaip2 => "not a CAIP-2 identifier",
            Self::UnsupportedNamespace => "only eip155 networks are supported",
            Self::InvalidChainId => "invalid eip155 chain id",
            Self::UnknownName => "unknown v1 network name",
        }
    }
}

impl Network {
    /// Ethereum mainnet (1).
    pub const ETHEREUM: Self = Self::eip155(1);
    /// Sepolia (11155111).
    pub const SEPOLIA: Self = Self::eip155(11_155_111);
    /// Base (8453).
    pub const BASE: Self = Self::eip155(8453);
    /// Base Sepolia (84532).
    pub const BASE_SEPOLIA: Self = Self::eip155(84_532);
    /// OP Mainnet (10).
    pub const OPTIMISM: Self = Self::eip155(10);
    /// Arbitrum One (42161).
    pub const ARBITRUM: Self = Self::eip155(42_161);
    /// Polygon PoS (137).
    pub const POLYGON: Self = Self::eip155(137);
    /// Avalanche C-Chain (43114).
    pub const AVALANCHE: Self = Self::eip155(43_114);
    /// A local anvil / hardhat chain (31337).
    pub const ANVIL: Self = Self::eip155(31_337);

    /// The network of an EVM chain id.
    pub const fn eip155(chain_id: u64) -> Self {
        Self { chain_id }
    }

    /// The chain id.
    pub const fn chain_id(self) -> u64 {
        self.chain_id
    }

    /// The CAIP-2 identifier, `eip155:<chainId>`.
    pub fn caip2(self) -> String {
        format!("{EIP155}:{}", self.chain_id)
    }

    /// Parses a CAIP-2 identifier; only `eip155:<chainId>` is accepted.
    pub fn parse_caip2(s: &str) -> Result<Self, NetworkError> {
        let (namespace, reference) = s.split_once(':').ok_or(NetworkError::NotCaip2)?;
        // CAIP-2: namespace [-a-z0-9]{3,8}, reference [-_a-zA-Z0-9]{1,32}.
        let namespace_ok = (3..=8).contains(&namespace.len())
            && namespace
                .bytes()
                .all(|b| b == b'-' || b.is_ascii_lowercase() || b.is_ascii_digit());
        let reference_ok = (1..=32).contains(&reference.len())
            && reference
                .bytes()
                .all(|b| b == b'-' || b == b'_' || b.is_ascii_alphanumeric());
        if !namespace_ok || !reference_ok {
            return Err(NetworkError::NotCaip2);
        }
        if namespace != EIP155 {
            return Err(NetworkError::UnsupportedNamespace);
        }
        if !reference.bytes().all(|b| b.is_ascii_digit()) || reference.starts_with('0') {
            return Err(NetworkError::InvalidChainId);
        }
        reference
            .parse::<u64>()
            .map(Self::eip155)
            .map_err(|_| NetworkError::InvalidChainId)
    }

    /// The network of a v1 name (`base`, `base-sepolia`, …, `anvil`/`localhost`).
    pub fn from_v1_name(name: &str) -> Option<Self> {
        V1_NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, id)| Self::eip155(*id))
    }

    /// The v1 name of this network, when it has one.
    pub fn v1_name(self) -> Option<&'static str> {
        V1_NAMES
            .iter()
            .find(|(_, id)| *id == self.chain_id)
            .map(|(n, _)| *n)
    }

    /// The v1 spelling: the name when known, otherwise the CAIP-2 identifier.
    pub fn v1_string(self) -> String {
        self.v1_name().map_or_else(|| self.caip2(), str::to_owned)
    }

    /// Parses either spelling: a CAIP-2 identifier or a v1 name.
    pub fn parse_any(s: &str) -> Result<Self, NetworkError> {
        match Self::from_v1_name(s) {
            Some(network) => Ok(network),
            None if s.contains(':') => Self::parse_caip2(s),
            None => Err(NetworkError::UnknownName),
        }
    }

    /// Decodes a v2 `network` field (CAIP-2).
    pub fn from_json_v2(value: &Value, path: &str) -> Result<Self, DecodeError> {
        let s = json::string(value, path)?;
        Self::parse_caip2(s).map_err(|e| invalid(path, s, e))
    }

    /// Decodes a v1 `network` field: a known v1 name, or (our leniency for chains without a
    /// name) a CAIP-2 `eip155` identifier.
    pub fn from_json_v1(value: &Value, path: &str) -> Result<Self, DecodeError> {
        let s = json::string(value, path)?;
        Self::parse_any(s).map_err(|e| invalid(path, s, e))
    }

    /// Whether a raw `network` value names a network outside what we can pay on (a valid CAIP-2
    /// id of another namespace, or an unknown v1 name); such `accepts` entries are skipped.
    pub fn is_foreign(value: &Value, v1: bool) -> bool {
        match value.as_str() {
            Some(s) if v1 => matches!(
                Self::parse_any(s),
                Err(NetworkError::UnknownName | NetworkError::UnsupportedNamespace)
            ),
            Some(s) => matches!(
                Self::parse_caip2(s),
                Err(NetworkError::UnsupportedNamespace)
            ),
            None => false,
        }
    }
}

fn invalid(path: &str, value: &str, error: NetworkError) -> DecodeError {
    DecodeError::InvalidNetwork {
        field: path.to_owned(),
        value: json::truncate(value),
        reason: error.reason(),
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{EIP155}:{}", self.chain_id)
    }
}

impl FromStr for Network {
    type Err = NetworkError;

    /// Accepts both spellings (CAIP-2 and v1 names).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_any(s)
    }
}

impl Serialize for Network {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl FromJson for Network {
    /// Strict v2 decoding (CAIP-2 only).
    fn from_json(value: &Value, path: &str) -> Result<Self, DecodeError> {
        Self::from_json_v2(value, path)
    }
}

json::deserialize_via_from_json!(Network);

/// Serialises a [`Network`] with its v1 spelling (for `#[serde(serialize_with)]`).
pub fn serialize_v1<S: Serializer>(network: &Network, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&network.v1_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caip2() {
        assert_eq!(Network::parse_caip2("eip155:8453"), Ok(Network::BASE));
        assert_eq!(Network::BASE.to_string(), "eip155:8453");
        let refused = [
            ("eip155:084532", NetworkError::InvalidChainId),
            ("eip155:0", NetworkError::InvalidChainId),
            ("eip155:-1", NetworkError::InvalidChainId),
            ("eip155:99999999999999999999", NetworkError::InvalidChainId),
            (
                "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp",
                NetworkError::UnsupportedNamespace,
            ),
            ("base", NetworkError::NotCaip2),
            ("EIP155:1", NetworkError::NotCaip2),
            ("eip155:", NetworkError::NotCaip2),
        ];
        for (text, error) in refused {
            assert_eq!(Network::parse_caip2(text), Err(error), "{text}");
        }
    }

    #[test]
    fn v1_names() {
        assert_eq!(Network::from_v1_name("base"), Some(Network::BASE));
        assert_eq!(
            Network::from_v1_name("base-sepolia"),
            Some(Network::BASE_SEPOLIA)
        );
        assert_eq!(Network::from_v1_name("localhost"), Some(Network::ANVIL));
        assert_eq!(Network::ANVIL.v1_name(), Some("anvil"));
        assert_eq!(Network::eip155(999_999).v1_string(), "eip155:999999");
        assert_eq!("base-sepolia".parse::<Network>(), Ok(Network::BASE_SEPOLIA));
        assert_eq!(
            "solana-devnet".parse::<Network>(),
            Err(NetworkError::UnknownName)
        );
        for (name, id) in V1_NAMES {
            assert_eq!(
                Network::from_v1_name(name).map(Network::chain_id),
                Some(*id)
            );
        }
    }
}
