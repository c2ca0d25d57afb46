//! The buyer's spend policy: what it may pay, to whom, and how much.
//!
//! A policy is plain data (serde), meant to live in a TOML or JSON file:
//!
//! ```toml
//! networks = ["base-sepolia"]          # or "*" (the default when omitted)
//! payees = "*"                         # or ["0x7099…79C8", …]
//! hosts = ["api.example.com", "*.example.org"]
//!
//! [[assets]]                           # an asset is spendable only when listed here
//! network = "eip155:84532"
//! asset = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
//! label = "USDC"
//! max_per_payment = "100000"           # atomic units; a string or an integer
//! daily_cap = 1000000                  # per UTC day
//! total_budget = "20000000"            # over the ledger's whole history
//! ```
//!
//! Rules, checked in this order (the first that refuses names itself in [`PolicyViolation`]):
//!
//! 1. `networks`, `payees`, `hosts` are [`Allowlist`]s: `"*"` allows everything, a list allows
//!    exactly its entries. An omitted allowlist is `"*"`. An **empty list is rejected when the
//!    policy is loaded** (it is ambiguous; write `"*"` to allow all, or remove the asset
//!    entries to spend nothing).
//! 2. Assets: the `assets` table is the asset allowlist, keyed by (network, asset). A payment
//!    in an asset without an entry is refused ([`PolicyViolation::AssetNotAllowed`]).
//! 3. Amounts, per (network, asset), each optional (absent = no limit of that kind):
//!    `max_per_payment` (one payment), `daily_cap` (sum of today's payments, UTC day, by the
//!    time the payment was reserved), `total_budget` (sum of all payments). Sums count what is
//!    still spent: voided, reclaimed and failed payments count 0, refunded ones count what was
//!    not refunded.

use std::fmt;

use alloy::primitives::Address;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::serde_util;
use crate::amount::Amount;
use crate::network::Network;

/// Either everything, or exactly the listed entries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Allowlist<T> {
    /// Everything is allowed (written `"*"`).
    #[default]
    Any,
    /// Only these entries (never empty when loaded from a file).
    Only(Vec<T>),
}

impl<T> Allowlist<T> {
    /// Whether some entry satisfies `matches` (always, for [`Allowlist::Any`]).
    pub fn allows(&self, matches: impl Fn(&T) -> bool) -> bool {
        match self {
            Self::Any => true,
            Self::Only(entries) => entries.iter().any(matches),
        }
    }
}

impl<T: Serialize> Serialize for Allowlist<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Any => serializer.serialize_str("*"),
            Self::Only(entries) => entries.serialize(serializer),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Allowlist<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw<T> {
            Star(String),
            List(Vec<T>),
        }
        match Raw::<T>::deserialize(deserializer).map_err(|_| {
            serde::de::Error::custom("an allowlist is \"*\" (allow all) or a list of entries")
        })? {
            Raw::Star(s) if s == "*" => Ok(Self::Any),
            Raw::Star(s) => Err(serde::de::Error::custom(format!(
                "an allowlist is \"*\" or a list, found the string {s:?}"
            ))),
            Raw::List(entries) if entries.is_empty() => Err(serde::de::Error::custom(
                "an empty allowlist is ambiguous: write \"*\" to allow all",
            )),
            Raw::List(entries) => Ok(Self::Only(entries)),
        }
    }
}

/// A network in an allowlist (either spelling in files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NetworkEntry(#[serde(with = "serde_util::network")] pub Network);

/// A host pattern: `api.example.com` (exactly that host) or `*.example.com` (any subdomain of
/// example.com, not example.com itself). Case-insensitive; ports are not part of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HostPattern(String);

impl HostPattern {
    /// A pattern (lowercased, trailing dot removed).
    pub fn new(pattern: impl AsRef<str>) -> Self {
        Self(normalize_host(pattern.as_ref()))
    }

    /// Whether `host` (as in a URL, without port) matches.
    pub fn matches(&self, host: &str) -> bool {
        let host = normalize_host(host);
        let pattern = normalize_host(&self.0);
        match pattern.strip_prefix("*.") {
            Some(suffix) => host.len() > suffix.len() + 1 && host.ends_with(&format!(".{suffix}")),
            None => host == pattern,
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Lowercase, without a trailing dot.
pub(crate) fn normalize_host(host: &str) -> String {
    host.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// The limits of one asset on one network; listing an asset is what allows spending it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetLimits {
    /// The network.
    #[serde(with = "serde_util::network")]
    pub network: Network,
    /// The token address.
    pub asset: Address,
    /// A label for messages (`"USDC"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Largest single payment.
    #[serde(
        default,
        with = "serde_util::opt_amount",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_per_payment: Option<Amount>,
    /// Largest sum per UTC day.
    #[serde(
        default,
        with = "serde_util::opt_amount",
        skip_serializing_if = "Option::is_none"
    )]
    pub daily_cap: Option<Amount>,
    /// Largest sum over the ledger's history.
    #[serde(
        default,
        with = "serde_util::opt_amount",
        skip_serializing_if = "Option::is_none"
    )]
    pub total_budget: Option<Amount>,
}

impl AssetLimits {
    /// An entry with no amount limit (set the fields to limit).
    pub fn new(network: Network, asset: Address) -> Self {
        Self {
            network,
            asset,
            label: None,
            max_per_payment: None,
            daily_cap: None,
            total_budget: None,
        }
    }
}

/// The spend policy (see the module documentation for the file format and rule order).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpendPolicy {
    /// Networks that may be paid on.
    #[serde(default)]
    pub networks: Allowlist<NetworkEntry>,
    /// Recipients (`payTo`) that may be paid.
    #[serde(default)]
    pub payees: Allowlist<Address>,
    /// Hosts (of the request URL) that may be paid.
    #[serde(default)]
    pub hosts: Allowlist<HostPattern>,
    /// Spendable assets and their limits.
    #[serde(default)]
    pub assets: Vec<AssetLimits>,
}

/// What the buyer is about to pay: the subject of a policy check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentIntent {
    /// The scheme (`auth-capture`, `exact`).
    pub scheme: String,
    /// The network.
    pub network: Network,
    /// The token.
    pub asset: Address,
    /// The recipient (`payTo`).
    pub payee: Address,
    /// The host of the request URL.
    pub host: String,
    /// The amount, atomic units.
    pub amount: Amount,
    /// The resource URL, for the record.
    pub resource: Option<String>,
}

/// What has been spent in the intent's asset, as the ledger counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Spent during the current UTC day.
    pub spent_today: Amount,
    /// Spent over the whole history.
    pub spent_total: Amount,
}

/// The rule that refused a payment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyViolation {
    /// The network is not in `networks`.
    #[error("spend policy: network {network} is not allowed")]
    NetworkNotAllowed {
        /// The network.
        network: Network,
    },
    /// The asset has no entry in `assets` for this network.
    #[error("spend policy: asset {asset} on {network} is not allowed")]
    AssetNotAllowed {
        /// The network.
        network: Network,
        /// The token.
        asset: Address,
    },
    /// The recipient is not in `payees`.
    #[error("spend policy: payee {payee} is not allowed")]
    PayeeNotAllowed {
        /// The recipient.
        payee: Address,
    },
    /// The host is not in `hosts`.
    #[error("spend policy: host {host:?} is not allowed")]
    HostNotAllowed {
        /// The host.
        host: String,
    },
    /// The payment is larger than `max_per_payment`.
    #[error(
        "spend policy: payment of {requested} exceeds max_per_payment {limit} ({asset} on {network})"
    )]
    MaxPerPaymentExceeded {
        /// The network.
        network: Network,
        /// The token.
        asset: Address,
        /// The limit.
        limit: Amount,
        /// The payment.
        requested: Amount,
    },
    /// Today's spending plus the payment exceeds `daily_cap`.
    #[error(
        "spend policy: payment of {requested} exceeds daily_cap {cap} ({spent_today} spent today; {asset} on {network})"
    )]
    DailyCapExceeded {
        /// The network.
        network: Network,
        /// The token.
        asset: Address,
        /// The cap.
        cap: Amount,
        /// Spent so far today (UTC).
        spent_today: Amount,
        /// The payment.
        requested: Amount,
    },
    /// All spending plus the payment exceeds `total_budget`.
    #[error(
        "spend policy: payment of {requested} exceeds total_budget {budget} ({spent} spent; {asset} on {network})"
    )]
    BudgetExhausted {
        /// The network.
        network: Network,
        /// The token.
        asset: Address,
        /// The budget.
        budget: Amount,
        /// Spent so far.
        spent: Amount,
        /// The payment.
        requested: Amount,
    },
}

impl PolicyViolation {
    /// The rule's stable name (`max_per_payment`, `daily_cap`, …).
    pub fn rule(&self) -> &'static str {
        match self {
            Self::NetworkNotAllowed { .. } => "networks",
            Self::AssetNotAllowed { .. } => "assets",
            Self::PayeeNotAllowed { .. } => "payees",
            Self::HostNotAllowed { .. } => "hosts",
            Self::MaxPerPaymentExceeded { .. } => "max_per_payment",
            Self::DailyCapExceeded { .. } => "daily_cap",
            Self::BudgetExhausted { .. } => "total_budget",
        }
    }
}

impl SpendPolicy {
    /// A policy allowing every network, payee and host, with these assets.
    pub fn new(assets: Vec<AssetLimits>) -> Self {
        Self {
            assets,
            ..Self::default()
        }
    }

    /// Parses a TOML policy.
    pub fn from_toml(text: &str) -> Result<Self, PolicyFileError> {
        let policy: Self = toml::from_str(text).map_err(|e| PolicyFileError(e.to_string()))?;
        policy.validate()?;
        Ok(policy)
    }

    /// Parses a JSON policy.
    pub fn from_json(text: &str) -> Result<Self, PolicyFileError> {
        let policy: Self =
            serde_json::from_str(text).map_err(|e| PolicyFileError(e.to_string()))?;
        policy.validate()?;
        Ok(policy)
    }

    /// Checks that no (network, asset) is listed twice.
    pub fn validate(&self) -> Result<(), PolicyFileError> {
        for (i, a) in self.assets.iter().enumerate() {
            if self.assets[..i]
                .iter()
                .any(|b| b.network == a.network && b.asset == a.asset)
            {
                return Err(PolicyFileError(format!(
                    "asset {} on {} is listed twice",
                    a.asset, a.network
                )));
            }
        }
        Ok(())
    }

    /// The limits entry of (network, asset).
    pub fn limits(&self, network: Network, asset: Address) -> Option<&AssetLimits> {
        self.assets
            .iter()
            .find(|a| a.network == network && a.asset == asset)
    }

    /// The rules that do not depend on past spending: networks, assets, payees, hosts,
    /// max_per_payment. Returns the asset's limits.
    pub fn check_static(&self, intent: &PaymentIntent) -> Result<&AssetLimits, PolicyViolation> {
        if !self.networks.allows(|n| n.0 == intent.network) {
            return Err(PolicyViolation::NetworkNotAllowed {
                network: intent.network,
            });
        }
        let limits =
            self.limits(intent.network, intent.asset)
                .ok_or(PolicyViolation::AssetNotAllowed {
                    network: intent.network,
                    asset: intent.asset,
                })?;
        if !self.payees.allows(|p| *p == intent.payee) {
            return Err(PolicyViolation::PayeeNotAllowed {
                payee: intent.payee,
            });
        }
        if !self.hosts.allows(|h| h.matches(&intent.host)) {
            return Err(PolicyViolation::HostNotAllowed {
                host: normalize_host(&intent.host),
            });
        }
        if let Some(limit) = limits.max_per_payment
            && intent.amount > limit
        {
            return Err(PolicyViolation::MaxPerPaymentExceeded {
                network: intent.network,
                asset: intent.asset,
                limit,
                requested: intent.amount,
            });
        }
        Ok(limits)
    }

    /// Every rule, given what has been spent in the intent's asset.
    pub fn check(&self, intent: &PaymentIntent, usage: Usage) -> Result<(), PolicyViolation> {
        let limits = self.check_static(intent)?;
        let requested = intent.amount;
        if let Some(cap) = limits.daily_cap
            && add(usage.spent_today, requested) > cap
        {
            return Err(PolicyViolation::DailyCapExceeded {
                network: intent.network,
                asset: intent.asset,
                cap,
                spent_today: usage.spent_today,
                requested,
            });
        }
        if let Some(budget) = limits.total_budget
            && add(usage.spent_total, requested) > budget
        {
            return Err(PolicyViolation::BudgetExhausted {
                network: intent.network,
                asset: intent.asset,
                budget,
                spent: usage.spent_total,
                requested,
            });
        }
        Ok(())
    }
}

/// Saturating sum of two amounts.
pub(crate) fn add(a: Amount, b: Amount) -> Amount {
    Amount::new(a.get().saturating_add(b.get()))
}

/// A policy file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid spend policy: {0}")]
pub struct PolicyFileError(pub String);
