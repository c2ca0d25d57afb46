//! The merchant API's lists, one page at a time: a merchant's payments (`GET /v1/payments`,
//! newest first) and its webhook events (`GET /v1/events`, oldest first, replayable).
//!
//! Both are keyset pages over `(created_at, id)` (indexes `payments_merchant_created` and
//! `webhook_events_merchant_created`, migration 0008): a page reads `limit + 1` rows to know
//! whether another follows, and its cursor is the last row's `(created_at, id)`, so pages stay
//! stable while rows are added. The merchant is always part of the `WHERE`: another merchant's
//! rows never appear, whatever the filters.

use uuid::Uuid;
use x402_escrow_types::{EventQuery, PageCursor, PaymentQuery};

use super::codec::{self, AnyQuery};
use super::{Backend, Payment, Result, Store, WebhookEvent};

/// A value bound to a placeholder.
enum Bind {
    Text(String),
    Int(i64),
}

/// `WHERE` clauses with their parameters, numbered `$1…` in order.
struct Conditions {
    clauses: Vec<String>,
    binds: Vec<Bind>,
}

impl Conditions {
    fn new() -> Conditions {
        Conditions {
            clauses: Vec::new(),
            binds: Vec::new(),
        }
    }

    /// The placeholder of a new parameter.
    fn param(&mut self, value: Bind) -> String {
        self.binds.push(value);
        format!("${}", self.binds.len())
    }

    fn push(&mut self, clause: String) {
        self.clauses.push(clause);
    }

    fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }

    fn bind_all(self, mut query: AnyQuery) -> AnyQuery {
        for value in self.binds {
            query = match value {
                Bind::Text(t) => query.bind(t),
                Bind::Int(i) => query.bind(i),
            };
        }
        query
    }
}

/// A page of rows and the cursor after its last row, if another page follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The rows.
    pub items: Vec<T>,
    /// Where the next page starts (`None`: this was the last).
    pub next: Option<PageCursor>,
}

impl Store {
    /// One page of `merchant_id`'s payments matching `query`, newest first by
    /// `(created_at, id)`. The amount filters compare the payment's `amount` (what the
    /// authorization asked for) as a number.
    pub async fn page_payments(
        &self,
        merchant_id: Uuid,
        query: &PaymentQuery,
    ) -> Result<Page<Payment>> {
        let mut w = Conditions::new();
        let merchant = w.param(Bind::Text(codec::uuid(&merchant_id)));
        w.push(format!("merchant_id = {merchant}"));
        if let Some(cursor) = &query.cursor {
            let at = w.param(Bind::Int(cursor.created_at));
            let id = w.param(Bind::Text(codec::uuid(&cursor.id)));
            w.push(format!(
                "(created_at < {at} OR (created_at = {at} AND id < {id}))"
            ));
        }
        if !query.statuses.is_empty() {
            let list: Vec<String> = query
                .statuses
                .iter()
                .map(|s| w.param(Bind::Text(s.as_str().to_owned())))
                .collect();
            w.push(format!("status IN ({})", list.join(", ")));
        }
        if let Some(t) = query.created_after {
            let p = w.param(Bind::Int(t));
            w.push(format!("created_at > {p}"));
        }
        if let Some(t) = query.created_before {
            let p = w.param(Bind::Int(t));
            w.push(format!("created_at < {p}"));
        }
        if let Some(r) = &query.request_id {
            let p = w.param(Bind::Text(r.clone()));
            w.push(format!("request_id = {p}"));
        }
        if let Some(payer) = &query.payer {
            let p = w.param(Bind::Text(codec::addr(payer)));
            w.push(format!("payer = {p}"));
        }
        // Amounts are stored as decimal text without leading zeros: a longer string is a larger
        // number, and strings of one length compare digit by digit (byte order, hence the C
        // collation on PostgreSQL).
        let collate = match self.backend() {
            Backend::Postgres => " COLLATE \"C\"",
            Backend::Sqlite => "",
        };
        for (bound, op) in [(query.min_amount, ">"), (query.max_amount, "<")] {
            if let Some(amount) = bound {
                let text = amount.to_string();
                let len = w.param(Bind::Int(i64::try_from(text.len()).unwrap_or(i64::MAX)));
                let value = w.param(Bind::Text(text));
                w.push(format!(
                    "(LENGTH(amount) {op} {len} OR (LENGTH(amount) = {len} \
                     AND amount{collate} {op}= {value}))"
                ));
            }
        }
        let limit = w.param(Bind::Int(i64::from(query.limit) + 1));
        let sql = format!(
            "{} ORDER BY created_at DESC, id DESC LIMIT {limit}",
            w.sql()
        );
        let rows: Vec<Payment> =
            codec::fetch_all(w.bind_all(codec::select::<Payment>(&sql)), &self.pool).await?;
        Ok(page(rows, query.limit, |p| PageCursor {
            created_at: p.created_at,
            id: p.id,
        }))
    }

    /// One page of `merchant_id`'s webhook events matching `query`, oldest first by
    /// `(created_at, id)`. Unlike payments, the cursor is returned whenever the page has rows,
    /// so a reader can come back later for events written since.
    pub async fn page_webhook_events(
        &self,
        merchant_id: Uuid,
        query: &EventQuery,
    ) -> Result<Page<WebhookEvent>> {
        let mut w = Conditions::new();
        let merchant = w.param(Bind::Text(codec::uuid(&merchant_id)));
        w.push(format!("merchant_id = {merchant}"));
        if let Some(cursor) = &query.after {
            let at = w.param(Bind::Int(cursor.created_at));
            let id = w.param(Bind::Text(codec::uuid(&cursor.id)));
            w.push(format!(
                "(created_at > {at} OR (created_at = {at} AND id > {id}))"
            ));
        }
        if let Some(payment) = &query.payment_id {
            let p = w.param(Bind::Text(codec::uuid(payment)));
            w.push(format!("payment_id = {p}"));
        }
        if !query.event_types.is_empty() {
            let list: Vec<String> = query
                .event_types
                .iter()
                .map(|t| w.param(Bind::Text(t.clone())))
                .collect();
            w.push(format!("event_type IN ({})", list.join(", ")));
        }
        let limit = w.param(Bind::Int(i64::from(query.limit)));
        let sql = format!("{} ORDER BY created_at, id LIMIT {limit}", w.sql());
        let rows: Vec<WebhookEvent> =
            codec::fetch_all(w.bind_all(codec::select::<WebhookEvent>(&sql)), &self.pool).await?;
        let next = rows.last().map(|e| PageCursor {
            created_at: e.created_at,
            id: e.id,
        });
        Ok(Page { items: rows, next })
    }
}

/// The first `limit` rows, and the cursor of the last of them when more rows were read.
fn page<T>(mut rows: Vec<T>, limit: u32, cursor: impl Fn(&T) -> PageCursor) -> Page<T> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if rows.len() > limit {
        rows.truncate(limit);
        let next = rows.last().map(cursor);
        Page { items: rows, next }
    } else {
        Page {
            items: rows,
            next: None,
        }
    }
}
