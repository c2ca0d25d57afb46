//! The query strings of the merchant API's lists (`GET /v1/payments`, `GET /v1/events`): their
//! parameters, limits and page cursors, parsed by the operator and written by the merchant
//! client from the same types.
//!
//! Every refusal names its parameter and carries a specific [`ErrorCode`] (answered as 400).

use alloy_primitives::Address;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::api::{ErrorCode, decimal};
use crate::lifecycle::{Amount, PaymentStatus};

/// Page size when `limit` is absent.
pub const DEFAULT_PAGE_LIMIT: u32 = 20;
/// Largest `limit` accepted.
pub const MAX_PAGE_LIMIT: u32 = 100;
/// Longest `request_id` filter accepted (the longest request id stored).
pub const MAX_REQUEST_ID_LEN: usize = 255;
/// Most statuses one `status` filter may name (there are fewer statuses than this).
pub const MAX_STATUS_FILTERS: usize = 16;
/// Most event types one `type` filter may name.
pub const MAX_EVENT_TYPE_FILTERS: usize = 16;
/// Longest event type name accepted in a `type` filter.
pub const MAX_EVENT_TYPE_LEN: usize = 64;

/// A refused query parameter: the code and a message naming the parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct QueryError {
    /// The stable code (all of them answer 400).
    pub code: ErrorCode,
    /// What is wrong, naming the parameter.
    pub message: String,
}

impl QueryError {
    fn new(code: ErrorCode, message: impl Into<String>) -> QueryError {
        QueryError {
            code,
            message: message.into(),
        }
    }
}

/// A position in a list ordered by `(created_at, id)`: the last item of a page. Written to the
/// client as an opaque string ([`PageCursor::encode`]); only the operator reads it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PageCursor {
    /// The item's creation time (unix ms).
    pub created_at: i64,
    /// The item's id.
    pub id: Uuid,
}

impl PageCursor {
    const PREFIX: &'static str = "c1";

    /// The opaque text form.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}.{}.{}", Self::PREFIX, self.created_at, self.id))
    }

    /// Reads [`PageCursor::encode`]'s text; anything else is `invalid_cursor`.
    pub fn decode(text: &str) -> Result<PageCursor, QueryError> {
        let bad = || {
            QueryError::new(
                ErrorCode::InvalidCursor,
                "cursor is not one this API issued",
            )
        };
        if text.is_empty() || text.len() > 128 {
            return Err(bad());
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?;
        let plain = String::from_utf8(bytes).map_err(|_| bad())?;
        let mut parts = plain.splitn(3, '.');
        if parts.next() != Some(Self::PREFIX) {
            return Err(bad());
        }
        let created_at = parts
            .next()
            .and_then(|t| t.parse::<i64>().ok())
            .filter(|t| *t >= 0)
            .ok_or_else(bad)?;
        let id = parts
            .next()
            .and_then(|t| Uuid::parse_str(t).ok())
            .ok_or_else(bad)?;
        Ok(PageCursor { created_at, id })
    }
}

/// The query of `GET /v1/payments`: filters, page size and the cursor of the page to read.
/// Every filter given must match (AND); `statuses` matches any of its entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentQuery {
    /// The page after this position (`cursor`: the `next_cursor` of the previous page).
    pub cursor: Option<PageCursor>,
    /// Page size (`limit`, 1..=[`MAX_PAGE_LIMIT`], default [`DEFAULT_PAGE_LIMIT`]).
    pub limit: u32,
    /// Only these statuses (`status`, comma-separated or repeated); empty: any.
    pub statuses: Vec<PaymentStatus>,
    /// Only payments created strictly after this time (`created_after`, RFC 3339; unix ms here).
    pub created_after: Option<i64>,
    /// Only payments created strictly before this time (`created_before`, RFC 3339).
    pub created_before: Option<i64>,
    /// Only payments with this request id (`request_id`).
    pub request_id: Option<String>,
    /// Only payments from this payer (`payer`).
    pub payer: Option<Address>,
    /// Only payments whose authorized amount is at least this (`min_amount`, token units).
    pub min_amount: Option<Amount>,
    /// Only payments whose authorized amount is at most this (`max_amount`).
    pub max_amount: Option<Amount>,
}

impl Default for PaymentQuery {
    fn default() -> Self {
        PaymentQuery {
            cursor: None,
            limit: DEFAULT_PAGE_LIMIT,
            statuses: Vec::new(),
            created_after: None,
            created_before: None,
            request_id: None,
            payer: None,
            min_amount: None,
            max_amount: None,
        }
    }
}

/// The `(name, value)` pairs of a query string, percent-decoded.
fn pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn once<T>(slot: &mut Option<T>, name: &str, value: T) -> Result<(), QueryError> {
    if slot.is_some() {
        return Err(QueryError::new(
            ErrorCode::InvalidRequest,
            format!("query parameter {name} is given twice"),
        ));
    }
    *slot = Some(value);
    Ok(())
}

fn parse_limit(value: &str) -> Result<u32, QueryError> {
    value
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_PAGE_LIMIT).contains(n))
        .ok_or_else(|| {
            QueryError::new(
                ErrorCode::InvalidLimit,
                format!("limit must be an integer from 1 to {MAX_PAGE_LIMIT}"),
            )
        })
}

/// RFC 3339 time → unix ms.
fn parse_time(name: &str, value: &str) -> Result<i64, QueryError> {
    chrono::DateTime::parse_from_rfc3339(value)
        .ok()
        .map(|t| t.timestamp_millis())
        .filter(|ms| *ms >= 0)
        .ok_or_else(|| {
            QueryError::new(
                ErrorCode::InvalidTimeFilter,
                format!(
                    "{name} must be an RFC 3339 time at or after 1970 (e.g. 2026-01-31T12:00:00Z)"
                ),
            )
        })
}

/// Unix ms → RFC 3339 (UTC, milliseconds).
fn format_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn check_time_range(after: Option<i64>, before: Option<i64>) -> Result<(), QueryError> {
    if let (Some(after), Some(before)) = (after, before)
        && after >= before
    {
        return Err(QueryError::new(
            ErrorCode::InvalidTimeFilter,
            "created_after must be earlier than created_before",
        ));
    }
    Ok(())
}

impl PaymentQuery {
    /// Parses the query string of `GET /v1/payments` (without the `?`). Unknown or repeated
    /// parameters are `invalid_request`; each bad value has its own code.
    pub fn parse(query: &str) -> Result<PaymentQuery, QueryError> {
        let mut cursor = None;
        let mut limit = None;
        let mut statuses: Vec<PaymentStatus> = Vec::new();
        let (mut after, mut before, mut request_id, mut payer) = (None, None, None, None);
        let (mut min_amount, mut max_amount) = (None, None);
        for (name, value) in pairs(query) {
            match name.as_str() {
                "cursor" => once(&mut cursor, "cursor", PageCursor::decode(&value)?)?,
                "limit" => once(&mut limit, "limit", parse_limit(&value)?)?,
                "status" => {
                    for part in value.split(',') {
                        let status = part.parse::<PaymentStatus>().map_err(|_| {
                            QueryError::new(
                                ErrorCode::InvalidStatusFilter,
                                format!("status {part:?} is not a payment status"),
                            )
                        })?;
                        if !statuses.contains(&status) {
                            statuses.push(status);
                        }
                    }
                    if statuses.len() > MAX_STATUS_FILTERS {
                        return Err(QueryError::new(
                            ErrorCode::InvalidStatusFilter,
                            "too many statuses",
                        ));
                    }
                }
                "created_after" => once(&mut after, &name, parse_time(&name, &value)?)?,
                "created_before" => once(&mut before, &name, parse_time(&name, &value)?)?,
                "request_id" => {
                    if value.is_empty() || value.len() > MAX_REQUEST_ID_LEN {
                        return Err(QueryError::new(
                            ErrorCode::InvalidRequestIdFilter,
                            format!("request_id must be 1 to {MAX_REQUEST_ID_LEN} bytes"),
                        ));
                    }
                    once(&mut request_id, "request_id", value)?;
                }
                "payer" => {
                    let address = parse_address(&value).ok_or_else(|| {
                        QueryError::new(
                            ErrorCode::InvalidPayerFilter,
                            "payer must be an address: 0x and 40 hex digits",
                        )
                    })?;
                    once(&mut payer, "payer", address)?;
                }
                "min_amount" | "max_amount" => {
                    let amount = decimal::parse(&value).map_err(|e| {
                        QueryError::new(ErrorCode::InvalidAmountFilter, format!("{name}: {e}"))
                    })?;
                    let slot = if name == "min_amount" {
                        &mut min_amount
                    } else {
                        &mut max_amount
                    };
                    once(slot, &name, amount)?;
                }
                other => {
                    return Err(QueryError::new(
                        ErrorCode::InvalidRequest,
                        format!("unknown query parameter {:?}", truncate(other)),
                    ));
                }
            }
        }
        check_time_range(after, before)?;
        if let (Some(min), Some(max)) = (min_amount, max_amount)
            && min > max
        {
            return Err(QueryError::new(
                ErrorCode::InvalidAmountFilter,
                "min_amount is above max_amount",
            ));
        }
        Ok(PaymentQuery {
            cursor,
            limit: limit.unwrap_or(DEFAULT_PAGE_LIMIT),
            statuses,
            created_after: after,
            created_before: before,
            request_id,
            payer,
            min_amount,
            max_amount,
        })
    }

    /// The query string (without `?`) that [`PaymentQuery::parse`] reads back as `self`.
    pub fn to_query_string(&self) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        if let Some(cursor) = &self.cursor {
            out.append_pair("cursor", &cursor.encode());
        }
        if self.limit != DEFAULT_PAGE_LIMIT {
            out.append_pair("limit", &self.limit.to_string());
        }
        if !self.statuses.is_empty() {
            let list: Vec<&str> = self.statuses.iter().map(|s| s.as_str()).collect();
            out.append_pair("status", &list.join(","));
        }
        if let Some(t) = self.created_after {
            out.append_pair("created_after", &format_time(t));
        }
        if let Some(t) = self.created_before {
            out.append_pair("created_before", &format_time(t));
        }
        if let Some(r) = &self.request_id {
            out.append_pair("request_id", r);
        }
        if let Some(p) = &self.payer {
            out.append_pair("payer", &p.to_string());
        }
        if let Some(a) = self.min_amount {
            out.append_pair("min_amount", &a.to_string());
        }
        if let Some(a) = self.max_amount {
            out.append_pair("max_amount", &a.to_string());
        }
        out.finish()
    }
}

fn parse_address(text: &str) -> Option<Address> {
    let hex = text.strip_prefix("0x")?;
    if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    text.parse::<Address>().ok()
}

fn truncate(text: &str) -> String {
    text.chars().take(64).collect()
}

/// The query of `GET /v1/events`: the merchant's webhook events, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventQuery {
    /// Only events after this position (`after`: a `next_cursor`); absent: from the first.
    pub after: Option<PageCursor>,
    /// Page size (`limit`, 1..=[`MAX_PAGE_LIMIT`], default [`DEFAULT_PAGE_LIMIT`]).
    pub limit: u32,
    /// Only events of this payment (`payment_id`).
    pub payment_id: Option<Uuid>,
    /// Only events of these types (`type`, comma-separated or repeated; `payment.captured`, …);
    /// empty: any.
    pub event_types: Vec<String>,
}

impl Default for EventQuery {
    fn default() -> Self {
        EventQuery {
            after: None,
            limit: DEFAULT_PAGE_LIMIT,
            payment_id: None,
            event_types: Vec::new(),
        }
    }
}

/// Whether `name` is spelled like an event type (`payment.captured`): lowercase words of
/// letters and `_` joined by dots.
fn is_event_type(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_EVENT_TYPE_LEN
        && name.contains('.')
        && name
            .split('.')
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
}

impl EventQuery {
    /// Parses the query string of `GET /v1/events` (without the `?`).
    pub fn parse(query: &str) -> Result<EventQuery, QueryError> {
        let (mut after, mut limit, mut payment_id) = (None, None, None);
        let mut event_types: Vec<String> = Vec::new();
        for (name, value) in pairs(query) {
            match name.as_str() {
                "after" => once(&mut after, "after", PageCursor::decode(&value)?)?,
                "limit" => once(&mut limit, "limit", parse_limit(&value)?)?,
                "payment_id" => {
                    let id = Uuid::parse_str(&value).map_err(|_| {
                        QueryError::new(
                            ErrorCode::InvalidPaymentIdFilter,
                            "payment_id must be a payment id (a UUID)",
                        )
                    })?;
                    once(&mut payment_id, "payment_id", id)?;
                }
                "type" => {
                    for part in value.split(',') {
                        if !is_event_type(part) {
                            return Err(QueryError::new(
                                ErrorCode::InvalidEventTypeFilter,
                                format!(
                                    "type {:?} is not an event type (e.g. payment.captured)",
                                    truncate(part)
                                ),
                            ));
                        }
                        if !event_types.iter().any(|t| t == part) {
                            event_types.push(part.to_owned());
                        }
                    }
                    if event_types.len() > MAX_EVENT_TYPE_FILTERS {
                        return Err(QueryError::new(
                            ErrorCode::InvalidEventTypeFilter,
                            "too many event types",
                        ));
                    }
                }
                other => {
                    return Err(QueryError::new(
                        ErrorCode::InvalidRequest,
                        format!("unknown query parameter {:?}", truncate(other)),
                    ));
                }
            }
        }
        Ok(EventQuery {
            after,
            limit: limit.unwrap_or(DEFAULT_PAGE_LIMIT),
            payment_id,
            event_types,
        })
    }

    /// The query string (without `?`) that [`EventQuery::parse`] reads back as `self`.
    pub fn to_query_string(&self) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        if let Some(after) = &self.after {
            out.append_pair("after", &after.encode());
        }
        if self.limit != DEFAULT_PAGE_LIMIT {
            out.append_pair("limit", &self.limit.to_string());
        }
        if let Some(id) = &self.payment_id {
            out.append_pair("payment_id", &id.to_string());
        }
        if !self.event_types.is_empty() {
            out.append_pair("type", &self.event_types.join(","));
        }
        out.finish()
    }
}

/// `GET /v1/events` → `{events: [...], next_cursor}`: each event exactly as its webhook body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventList {
    /// Oldest first; each is the JSON body the webhook delivers (`id`, `type`, `createdAt`,
    /// `sequence`, `data`).
    pub events: Vec<serde_json::Value>,
    /// The position after the last event of this page: pass it as `after` to read on (also
    /// to follow new events later). `null` only when the page is empty (keep the `after` you
    /// sent).
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_refuses_anything_else() {
        let c = PageCursor {
            created_at: 1_700_000_000_123,
            id: Uuid::now_v7(),
        };
        assert_eq!(PageCursor::decode(&c.encode()), Ok(c));
        let bad_inputs = [
            String::new(),
            "x".into(),
            "YzE".into(),
            "!!!".into(),
            "a".repeat(200),
            URL_SAFE_NO_PAD.encode("c1.-5.x"),
            URL_SAFE_NO_PAD.encode(format!("c2.5.{}", Uuid::nil())),
        ];
        for bad in &bad_inputs {
            assert_eq!(
                PageCursor::decode(bad).map_err(|e| e.code),
                Err(ErrorCode::InvalidCursor),
                "{bad}"
            );
        }
    }

    #[test]
    fn payment_query_round_trips() {
        let q = PaymentQuery {
            cursor: Some(PageCursor {
                created_at: 5,
                id: Uuid::nil(),
            }),
            limit: 7,
            statuses: vec![PaymentStatus::Authorized, PaymentStatus::Captured],
            created_after: Some(1_700_000_000_000),
            created_before: Some(1_800_000_000_000),
            request_id: Some("req 1&x=y".into()),
            payer: Some(Address::repeat_byte(0xAB)),
            min_amount: Some(10),
            max_amount: Some(20),
        };
        assert_eq!(PaymentQuery::parse(&q.to_query_string()), Ok(q));
        assert_eq!(PaymentQuery::parse(""), Ok(PaymentQuery::default()));
        let repeated = PaymentQuery::parse("status=voided&status=captured,voided").expect("ok");
        assert_eq!(
            repeated.statuses,
            vec![PaymentStatus::Voided, PaymentStatus::Captured]
        );
    }

    #[test]
    fn each_bad_value_has_its_code() {
        let cases = [
            ("limit=0", ErrorCode::InvalidLimit),
            ("limit=101", ErrorCode::InvalidLimit),
            ("limit=ten", ErrorCode::InvalidLimit),
            ("cursor=zzz", ErrorCode::InvalidCursor),
            ("status=paid", ErrorCode::InvalidStatusFilter),
            ("status=", ErrorCode::InvalidStatusFilter),
            ("created_after=yesterday", ErrorCode::InvalidTimeFilter),
            (
                "created_after=2026-02-01T00:00:00Z&created_before=2026-01-01T00:00:00Z",
                ErrorCode::InvalidTimeFilter,
            ),
            ("request_id=", ErrorCode::InvalidRequestIdFilter),
            ("payer=0x12", ErrorCode::InvalidPayerFilter),
            ("min_amount=-1", ErrorCode::InvalidAmountFilter),
            ("min_amount=1.5", ErrorCode::InvalidAmountFilter),
            ("min_amount=9&max_amount=3", ErrorCode::InvalidAmountFilter),
            ("limit=1&limit=2", ErrorCode::InvalidRequest),
            ("colour=red", ErrorCode::InvalidRequest),
        ];
        for (query, code) in cases {
            assert_eq!(
                PaymentQuery::parse(query).map_err(|e| e.code),
                Err(code),
                "{query}"
            );
        }
        let long = format!("request_id={}", "r".repeat(256));
        assert_eq!(
            PaymentQuery::parse(&long).map_err(|e| e.code),
            Err(ErrorCode::InvalidRequestIdFilter)
        );
    }

    #[test]
    fn event_query_parses_and_refuses() {
        let q = EventQuery {
            after: Some(PageCursor {
                created_at: 9,
                id: Uuid::now_v7(),
            }),
            limit: 3,
            payment_id: Some(Uuid::now_v7()),
            event_types: vec!["payment.captured".into(), "payment.authorized".into()],
        };
        assert_eq!(EventQuery::parse(&q.to_query_string()), Ok(q));
        for (query, code) in [
            ("payment_id=12", ErrorCode::InvalidPaymentIdFilter),
            ("type=Payment.Captured", ErrorCode::InvalidEventTypeFilter),
            ("type=captured", ErrorCode::InvalidEventTypeFilter),
            ("after=%%%", ErrorCode::InvalidCursor),
            ("limit=1000", ErrorCode::InvalidLimit),
            ("cursor=x", ErrorCode::InvalidRequest),
        ] {
            assert_eq!(
                EventQuery::parse(query).map_err(|e| e.code),
                Err(code),
                "{query}"
            );
        }
    }
}
