//! The owner's pages' data and their askama templates (`src/owner/templates/`; every value is
//! HTML-escaped), and how keys, rules and payments read on them.

use std::time::{Duration, UNIX_EPOCH};

use askama::Template;
use axum::http::StatusCode;
use axum::response::Response;
use x402_escrow_sdk::types::wallet::{KeyRules, KeyUsage};

use crate::store::{KeyRow, OwnerSession, PaymentRow};

/// What every page shows around its content.
#[derive(Debug, Clone)]
pub(super) struct Chrome {
    /// The page title.
    pub(super) title: String,
    /// Whether the owner is signed in (the navigation and sign-out form).
    pub(super) signed_in: bool,
    /// The session's CSRF token.
    pub(super) csrf: String,
    /// What the last action did.
    pub(super) notice: Option<String>,
}

impl Chrome {
    pub(super) fn signed_in(
        title: impl Into<String>,
        session: &OwnerSession,
        notice: Option<&str>,
    ) -> Self {
        Chrome {
            title: title.into(),
            signed_in: true,
            csrf: session.csrf_token.clone(),
            notice: notice.and_then(notice_text).map(str::to_owned),
        }
    }

    pub(super) fn signed_out(title: impl Into<String>) -> Self {
        Chrome {
            title: title.into(),
            signed_in: false,
            csrf: String::new(),
            notice: None,
        }
    }
}

/// The fixed sentences a redirect's `?notice=` may ask for (anything else shows nothing).
pub(super) fn notice_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "approved" => {
            "Approved: the caller's retry with the same Idempotency-Key signs and pays it."
        }
        "rejected" => "Rejected: nothing was signed and its amount is back in the budget.",
        "disabled" => "Kill switch on: this key pays nothing until it is turned off.",
        "enabled" => "Kill switch off: this key pays again within its rules.",
        "revoked" => "Revoked: the key's token no longer works.",
        _ => return None,
    })
}

/// A refusal shown on the sign-in page.
#[derive(Debug, Clone)]
pub(super) struct Refusal {
    /// The stable code.
    pub(super) code: String,
    /// What went wrong.
    pub(super) message: String,
}

#[derive(Template)]
#[template(path = "login.html")]
pub(super) struct LoginPage {
    pub(super) chrome: Chrome,
    pub(super) login_token: String,
    pub(super) refusal: Option<Refusal>,
}

#[derive(Template)]
#[template(path = "error.html")]
pub(super) struct ErrorPage {
    pub(super) chrome: Chrome,
    pub(super) code: String,
    pub(super) message: String,
}

/// A key as the pages list it.
#[derive(Debug, Clone)]
pub(super) struct KeyLine {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) buyer: String,
    pub(super) status: &'static str,
    pub(super) revoked: bool,
    pub(super) disabled: bool,
    pub(super) rules_summary: String,
    pub(super) spent_24h: String,
    pub(super) spent_total: String,
    pub(super) in_flight: String,
}

#[derive(Debug, Clone)]
pub(super) struct PendingLine {
    pub(super) id: String,
    pub(super) key_id: String,
    pub(super) key_name: String,
    pub(super) method: String,
    pub(super) url: String,
    pub(super) amount: String,
    pub(super) payee: String,
    pub(super) created: String,
}

#[derive(Debug, Clone)]
pub(super) struct PaymentLine {
    pub(super) id: String,
    pub(super) created: String,
    pub(super) state: &'static str,
    pub(super) method: String,
    pub(super) url: String,
    pub(super) scheme: String,
    pub(super) amount: String,
    pub(super) returned: String,
    pub(super) rule: String,
}

#[derive(Template)]
#[template(path = "home.html")]
pub(super) struct HomePage {
    pub(super) chrome: Chrome,
    pub(super) pending: Vec<PendingLine>,
    pub(super) keys: Vec<KeyLine>,
}

#[derive(Template)]
#[template(path = "key.html")]
pub(super) struct KeyPage {
    pub(super) chrome: Chrome,
    pub(super) key: KeyLine,
    pub(super) created: String,
    pub(super) expires: String,
    pub(super) revoked: Option<String>,
    pub(super) rules: Vec<(&'static str, String)>,
    pub(super) returned: String,
    pub(super) counts: Vec<(String, u64)>,
    pub(super) payments: Vec<PaymentLine>,
}

#[derive(Template)]
#[template(path = "confirm.html")]
pub(super) struct ConfirmPage {
    pub(super) chrome: Chrome,
    pub(super) id: String,
    pub(super) name: String,
}

/// Renders `page` with `status` (500 if the template fails).
pub(super) fn render<T: Template>(status: StatusCode, page: &T) -> Response {
    x402_escrow_pages::html_page(status, page.render(), "owner")
}
/// UTC date and time of unix milliseconds (`Sun, 06 Dec 2026 17:14:02 GMT`).
pub(super) fn time(ms: i64) -> String {
    let ms = u64::try_from(ms).unwrap_or(0);
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_millis(ms))
}

pub(super) fn key_status(key: &KeyRow, now_secs: i64) -> &'static str {
    if key.revoked_at.is_some() {
        "revoked"
    } else if key.expires_at.is_some_and(|at| at <= now_secs) {
        "expired"
    } else if key.disabled {
        "disabled"
    } else {
        "active"
    }
}

pub(super) fn with_limit(
    spent: impl std::fmt::Display,
    limit: Option<impl std::fmt::Display>,
) -> String {
    match limit {
        Some(limit) => format!("{spent} of {limit}"),
        None => spent.to_string(),
    }
}

pub(super) fn list<T: std::fmt::Display>(items: &Option<Vec<T>>) -> String {
    match items {
        None => "any".to_owned(),
        Some(items) if items.is_empty() => "none".to_owned(),
        Some(items) => items
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    }
}

pub(super) fn limit(amount: Option<impl std::fmt::Display>) -> String {
    amount.map_or_else(|| "no limit".to_owned(), |a| a.to_string())
}

/// Every rule of a key, in words.
pub(super) fn rule_lines(rules: &KeyRules) -> Vec<(&'static str, String)> {
    vec![
        ("Max per payment", limit(rules.max_per_payment)),
        ("24 h cap", limit(rules.daily_cap)),
        ("Total budget", limit(rules.total_budget)),
        (
            "Approval above",
            rules
                .approval_threshold
                .map_or_else(|| "never asked".to_owned(), |a| a.to_string()),
        ),
        ("Payees", list(&rules.payees)),
        ("Hosts", list(&rules.hosts)),
        ("Assets", list(&rules.assets)),
        ("Networks", list(&rules.networks)),
        ("Schemes", list(&rules.schemes)),
    ]
}

/// The limits of a key in one line (the list's "Rules" column).
pub(super) fn rules_summary(rules: &KeyRules) -> String {
    let mut parts = Vec::new();
    if let Some(a) = rules.max_per_payment {
        parts.push(format!("≤ {a} each"));
    }
    if let Some(a) = rules.daily_cap {
        parts.push(format!("{a} per 24 h"));
    }
    if let Some(a) = rules.total_budget {
        parts.push(format!("budget {a}"));
    }
    if let Some(a) = rules.approval_threshold {
        parts.push(format!("approval above {a}"));
    }
    if let Some(hosts) = &rules.hosts {
        parts.push(format!("hosts: {}", list(&Some(hosts.clone()))));
    }
    if parts.is_empty() {
        "no limit".to_owned()
    } else {
        parts.join("; ")
    }
}

pub(super) fn key_line(key: &KeyRow, usage: &KeyUsage, now_secs: i64) -> KeyLine {
    KeyLine {
        id: key.id.clone(),
        name: key.name.clone(),
        buyer: key.buyer.clone(),
        status: key_status(key, now_secs),
        revoked: key.revoked_at.is_some(),
        disabled: key.disabled,
        rules_summary: rules_summary(&key.rules),
        spent_24h: with_limit(usage.spent_24h, key.rules.daily_cap),
        spent_total: with_limit(usage.spent_total, key.rules.total_budget),
        in_flight: usage.in_flight.to_string(),
    }
}

pub(super) fn payment_line(p: &PaymentRow) -> PaymentLine {
    PaymentLine {
        id: p.id.clone(),
        created: time(p.created_at),
        state: p.state.as_str(),
        method: p.method.clone(),
        url: p.url.clone(),
        scheme: p.scheme.clone().unwrap_or_default(),
        amount: p.amount.to_string(),
        returned: p.returned.to_string(),
        rule: p.rule.clone().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_are_fixed_sentences() {
        assert!(notice_text("approved").is_some());
        assert_eq!(notice_text("<script>"), None);
    }

    #[test]
    fn rules_read_as_words() {
        let rules = KeyRules {
            daily_cap: Some(x402_escrow_sdk::Amount::from(100_000u64)),
            hosts: Some(vec!["api.example.com".to_owned()]),
            ..KeyRules::default()
        };
        assert_eq!(
            rules_summary(&rules),
            "100000 per 24 h; hosts: api.example.com"
        );
        let lines = rule_lines(&rules);
        assert_eq!(lines[0], ("Max per payment", "no limit".to_owned()));
        assert_eq!(lines[1], ("24 h cap", "100000".to_owned()));
        assert_eq!(lines[5], ("Hosts", "api.example.com".to_owned()));
        assert_eq!(lines[6], ("Assets", "any".to_owned()));
        assert_eq!(rules_summary(&KeyRules::default()), "no limit");
    }

    #[test]
    fn times_are_utc() {
        assert_eq!(time(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(time(1_796_577_242_000), "Sun, 06 Dec 2026 17:14:02 GMT");
    }
}
