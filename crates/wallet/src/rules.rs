//! A payment key's rules, checked before anything is signed. Every refusal is a [`Refusal`]
//! naming its rule (`max_per_payment`, `daily_cap`, `total_budget`, `payees`, `hosts`,
//! `assets`, `networks`, `schemes`, `revoked`, `disabled`, `expiry`, `private_address`) with
//! its own error code.
//!
//! Order: the key itself (revoked, disabled, expired), the request's URL (`hosts`, then the
//! SSRF guard in [`guard`](crate::guard)), each offer's static rules (`schemes`, `networks`,
//! `assets`, `payees`, `max_per_payment`), then, inside the reservation's transaction, the
//! sums (`daily_cap` over a rolling 24 hours, `total_budget` over the key's life).

use reqwest::Url;
use x402_escrow_sdk::buyer::{HostPattern, PaymentOption};
use x402_escrow_sdk::types::wallet::KeyRules;
use x402_escrow_sdk::{Amount, Network};

use crate::store::{KeyRow, PaymentRow};

/// The rolling window of `daily_cap`, in milliseconds.
pub const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// A rule said no.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    /// The rule's name.
    pub rule: &'static str,
    /// The error code.
    pub code: &'static str,
    /// The numbers, in words.
    pub message: String,
}

impl Refusal {
    fn new(rule: &'static str, code: &'static str, message: String) -> Self {
        Self {
            rule,
            code,
            message,
        }
    }
}

/// Checks rules before they are stored: no empty allowlist (ambiguous), amount limits only with
/// an `assets` allowlist (sums of different tokens mean nothing), valid host entries.
pub fn validate(rules: &KeyRules) -> Result<(), String> {
    let empty = |name: &str, len: Option<usize>| match len {
        Some(0) => Err(format!(
            "`{name}` is an empty list: omit it to allow everything, or list what is allowed"
        )),
        _ => Ok(()),
    };
    empty("payees", rules.payees.as_ref().map(Vec::len))?;
    empty("hosts", rules.hosts.as_ref().map(Vec::len))?;
    empty("assets", rules.assets.as_ref().map(Vec::len))?;
    empty("networks", rules.networks.as_ref().map(Vec::len))?;
    empty("schemes", rules.schemes.as_ref().map(Vec::len))?;
    let limited = rules.max_per_payment.is_some()
        || rules.daily_cap.is_some()
        || rules.total_budget.is_some()
        || rules.approval_threshold.is_some();
    if limited && rules.assets.is_none() {
        return Err(
            "amount limits count atomic units of one token: list the key's `assets`".to_owned(),
        );
    }
    for entry in rules.hosts.iter().flatten() {
        if is_url_prefix(entry) {
            Url::parse(entry).map_err(|e| format!("hosts entry {entry:?}: {e}"))?;
        } else if entry.trim().is_empty()
            || entry.contains('/')
            || entry.contains(char::is_whitespace)
        {
            return Err(format!(
                "hosts entry {entry:?} is neither a host pattern nor an http(s) URL prefix"
            ));
        }
    }
    Ok(())
}

fn is_url_prefix(entry: &str) -> bool {
    entry.starts_with("http://") || entry.starts_with("https://")
}

/// The key is usable now (`now_secs`: unix seconds).
pub fn check_key(key: &KeyRow, now_secs: i64) -> Result<(), Refusal> {
    if key.revoked_at.is_some() {
        return Err(Refusal::new(
            "revoked",
            "key_revoked",
            format!("payment key {} was revoked", key.id),
        ));
    }
    if key.disabled {
        return Err(Refusal::new(
            "disabled",
            "key_disabled",
            format!("payment key {} is disabled (kill switch)", key.id),
        ));
    }
    if let Some(expires_at) = key.expires_at
        && now_secs >= expires_at
    {
        return Err(Refusal::new(
            "expiry",
            "key_expired",
            format!("payment key {} expired at {expires_at}", key.id),
        ));
    }
    Ok(())
}

/// The `hosts` rule for a request URL.
pub fn check_url(rules: &KeyRules, url: &Url) -> Result<(), Refusal> {
    let Some(hosts) = &rules.hosts else {
        return Ok(());
    };
    let host = url.host_str().unwrap_or_default();
    if hosts.iter().any(|entry| entry_matches(entry, url, host)) {
        return Ok(());
    }
    Err(Refusal::new(
        "hosts",
        "host_not_allowed",
        format!("{url} is not in the key's hosts allowlist"),
    ))
}

fn entry_matches(entry: &str, url: &Url, host: &str) -> bool {
    if is_url_prefix(entry) {
        return Url::parse(entry).is_ok_and(|prefix| url.as_str().starts_with(prefix.as_str()));
    }
    HostPattern::new(entry).matches(host)
}

/// Whether an entry of `hosts` names `url`'s host exactly (no wildcard): what lets the wallet
/// request a private or loopback address.
pub fn names_host_exactly(rules: &KeyRules, url: &Url) -> bool {
    let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']);
    rules.hosts.iter().flatten().any(|entry| {
        let named = if is_url_prefix(entry) {
            Url::parse(entry)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
                .filter(|_| entry_matches(entry, url, host))
        } else {
            Some(entry.clone())
        };
        named.is_some_and(|n| {
            !n.starts_with("*.")
                && n.trim_end_matches('.')
                    .trim_matches(['[', ']'])
                    .eq_ignore_ascii_case(host.trim_end_matches('.'))
        })
    })
}

/// The rules of one offer that do not depend on past spending.
pub fn check_offer(rules: &KeyRules, option: &PaymentOption) -> Result<(), Refusal> {
    let r = &option.requirements;
    if let Some(schemes) = &rules.schemes
        && !schemes.contains(&r.scheme)
    {
        return Err(Refusal::new(
            "schemes",
            "scheme_not_allowed",
            format!("scheme {} is not in the key's schemes allowlist", r.scheme),
        ));
    }
    if let Some(networks) = &rules.networks
        && !networks.contains(&r.network)
    {
        return Err(Refusal::new(
            "networks",
            "network_not_allowed",
            format!(
                "network {} is not in the key's networks allowlist",
                r.network
            ),
        ));
    }
    if let Some(assets) = &rules.assets
        && !assets.contains(&r.asset)
    {
        return Err(Refusal::new(
            "assets",
            "asset_not_allowed",
            format!("asset {} is not in the key's assets allowlist", r.asset),
        ));
    }
    if let Some(payees) = &rules.payees
        && !payees.contains(&r.pay_to)
    {
        return Err(Refusal::new(
            "payees",
            "payee_not_allowed",
            format!("payee {} is not in the key's payees allowlist", r.pay_to),
        ));
    }
    if let Some(limit) = rules.max_per_payment
        && r.amount > limit
    {
        return Err(Refusal::new(
            "max_per_payment",
            "max_per_payment_exceeded",
            format!("payment of {} exceeds max_per_payment {limit}", r.amount),
        ));
    }
    Ok(())
}

/// What the key has spent: over the rolling 24 hours before `now_ms`, and in total.
pub fn spent(counting: &[PaymentRow], now_ms: i64) -> (Amount, Amount) {
    let mut day = Amount::ZERO;
    let mut total = Amount::ZERO;
    for payment in counting {
        let counted = payment.counted().get();
        total = Amount::new(total.get().saturating_add(counted));
        if payment.created_at > now_ms - DAY_MS {
            day = Amount::new(day.get().saturating_add(counted));
        }
    }
    (day, total)
}

/// The sums: `daily_cap` and `total_budget`, given the payments that still count.
pub fn check_amounts(
    rules: &KeyRules,
    amount: Amount,
    counting: &[PaymentRow],
    now_ms: i64,
) -> Result<(), Refusal> {
    let (day, total) = spent(counting, now_ms);
    if let Some(cap) = rules.daily_cap
        && day.get().saturating_add(amount.get()) > cap.get()
    {
        return Err(Refusal::new(
            "daily_cap",
            "daily_cap_exceeded",
            format!(
                "payment of {amount} exceeds daily_cap {cap} ({day} counted in the last 24 hours)"
            ),
        ));
    }
    if let Some(budget) = rules.total_budget
        && total.get().saturating_add(amount.get()) > budget.get()
    {
        return Err(Refusal::new(
            "total_budget",
            "total_budget_exceeded",
            format!("payment of {amount} exceeds total_budget {budget} ({total} counted)"),
        ));
    }
    Ok(())
}

/// Whether a payment of `amount` must wait for the owner.
pub fn needs_approval(rules: &KeyRules, amount: Amount) -> bool {
    rules.approval_threshold.is_some_and(|t| amount > t)
}

/// The network of an offer as `Option` (for rows).
pub fn network_of(option: &PaymentOption) -> Network {
    option.requirements.network
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(json: &str) -> KeyRules {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn validation_refuses_ambiguous_rules() {
        assert!(validate(&rules(r#"{"payees": []}"#)).is_err());
        assert!(validate(&rules(r#"{"maxPerPayment": "10"}"#)).is_err());
        assert!(
            validate(&rules(
                r#"{"maxPerPayment": "10", "assets": ["0x0000000000000000000000000000000000000001"]}"#
            ))
            .is_ok()
        );
        assert!(validate(&rules(r#"{"hosts": ["a b"]}"#)).is_err());
        assert!(
            validate(&rules(
                r#"{"hosts": ["https://x.example/v1/", "*.example.com"]}"#
            ))
            .is_ok()
        );
        assert!(serde_json::from_str::<KeyRules>(r#"{"maxPerPaymnet": "1"}"#).is_err());
    }

    #[test]
    fn hosts_rule_and_exact_naming() {
        let r = rules(r#"{"hosts": ["*.example.com", "https://api.other.org/v1/", "127.0.0.1"]}"#);
        let ok = |u: &str| check_url(&r, &Url::parse(u).unwrap()).is_ok();
        assert!(ok("https://a.example.com/x"));
        assert!(!ok("https://example.com/x"));
        assert!(ok("https://api.other.org/v1/report"));
        assert!(!ok("https://api.other.org/v2/report"));
        assert!(!ok("https://api.other.org.evil.com/v1/"));
        assert!(ok("http://127.0.0.1:8080/weather"));
        assert!(!ok("http://localhost:8080/weather"));
        let refusal = check_url(&r, &Url::parse("http://169.254.169.254/").unwrap()).unwrap_err();
        assert_eq!((refusal.rule, refusal.code), ("hosts", "host_not_allowed"));
        assert!(names_host_exactly(
            &r,
            &Url::parse("http://127.0.0.1:1/").unwrap()
        ));
        assert!(!names_host_exactly(
            &r,
            &Url::parse("https://a.example.com/").unwrap()
        ));
    }
}
