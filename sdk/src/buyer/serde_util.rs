//! Serde helpers for hand-written configuration (TOML, JSON): networks by either spelling,
//! amounts as decimal strings or plain integers.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserializer, Serializer};

use crate::amount::Amount;
use crate::network::Network;

/// A network written as CAIP-2 (`eip155:84532`) or by v1 name (`base-sepolia`).
pub(crate) mod network {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        network: &Network,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_str(network)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Network, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Network;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a network (\"eip155:<chainId>\" or a v1 name such as \"base\")")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Network, E> {
                v.parse::<Network>()
                    .map_err(|e| E::custom(format!("network {v:?}: {e}")))
            }
        }
        deserializer.deserialize_str(V)
    }
}

/// An amount in atomic units written as a decimal string (`"1000000"`) or an integer.
pub(crate) mod amount {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        amount: &Amount,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_str(amount)
    }

    pub(crate) struct AmountVisitor;

    impl Visitor<'_> for AmountVisitor {
        type Value = Amount;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an amount in atomic units (a decimal string or a non-negative integer)")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Amount, E> {
            Amount::parse(v).map_err(|e| E::custom(format!("amount {v:?}: {e}")))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Amount, E> {
            Ok(Amount::from(v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Amount, E> {
            u64::try_from(v)
                .map(Amount::from)
                .map_err(|_| E::custom("amount must not be negative"))
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Amount, D::Error> {
        deserializer.deserialize_any(AmountVisitor)
    }
}

/// `Option<Amount>` with the same spellings as [`amount`].
pub(crate) mod opt_amount {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        amount: &Option<Amount>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match amount {
            Some(a) => serializer.collect_str(a),
            None => serializer.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Amount>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Option<Amount>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an optional amount in atomic units")
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
                d.deserialize_any(amount::AmountVisitor).map(Some)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                amount::AmountVisitor.visit_str(v).map(Some)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Some(Amount::from(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                amount::AmountVisitor.visit_i64(v).map(Some)
            }
        }
        deserializer.deserialize_option(V)
    }
}
