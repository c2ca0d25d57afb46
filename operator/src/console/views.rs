//! The pages' data and their askama templates (`src/console/templates/`). Every value is
//! HTML-escaped by the templates; the only unescaped markup is the chart's SVG, which
//! [`super::chart`] builds from numbers and fixed labels.

use askama::Template;
use axum::http::StatusCode;
use axum::response::Response;

/// What every page shows around its content.
#[derive(Debug, Clone)]
pub struct Chrome {
    /// The page title.
    pub title: String,
    /// The signed-in merchant's name (none on the sign-in page).
    pub merchant: Option<String>,
    /// The session's CSRF token (for the sign-out form).
    pub csrf: String,
}

impl Chrome {
    /// A page of a signed-in merchant.
    pub fn signed_in(title: impl Into<String>, merchant: &str, csrf: &str) -> Chrome {
        Chrome {
            title: title.into(),
            merchant: Some(merchant.to_owned()),
            csrf: csrf.to_owned(),
        }
    }

    /// A page without a session.
    pub fn signed_out(title: impl Into<String>) -> Chrome {
        Chrome {
            title: title.into(),
            merchant: None,
            csrf: String::new(),
        }
    }
}

/// A refusal as a page shows it: its stable code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The stable code (`exceeds_refundable`, `csrf_token_invalid`, …).
    pub code: String,
    /// What went wrong.
    pub message: String,
}

impl Refusal {
    /// A refusal.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Refusal {
        Refusal {
            code: code.into(),
            message: message.into(),
        }
    }
}

/// Renders `page` with HTTP `status` (500 if the template fails).
pub fn render<T: Template>(status: u16, page: &T) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    x402_escrow_pages::html_page(status, page.render(), "console")
}

/// `GET /console/login`.
#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    /// Around the page.
    pub chrome: Chrome,
    /// The double-submit token (also in the sign-in cookie).
    pub login_token: String,
    /// Why the last sign-in failed.
    pub refusal: Option<Refusal>,
}

/// Any refusal on its own page.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    /// Around the page.
    pub chrome: Chrome,
    /// What was refused.
    pub refusal: Refusal,
}

/// One payment in a list.
#[derive(Debug, Clone)]
pub struct PaymentRow {
    /// Its id.
    pub id: String,
    /// The merchant's request id (buyer-influenced text).
    pub request_id: String,
    /// Its status.
    pub status: String,
    /// Authorized amount.
    pub authorized: String,
    /// Captured amount.
    pub captured: String,
    /// Refunded amount.
    pub refunded: String,
    /// Creation time.
    pub created: String,
}

/// `GET /console/payments`.
#[derive(Template)]
#[template(path = "payments.html")]
pub struct PaymentsPage {
    /// Around the page.
    pub chrome: Chrome,
    /// The search text.
    pub q: String,
    /// The page size.
    pub limit: u32,
    /// Largest page size.
    pub max_limit: u32,
    /// What the list shows ("Recent payments", "Payments with request id …").
    pub heading: String,
    /// The payments.
    pub rows: Vec<PaymentRow>,
    /// Why the request was refused.
    pub refusal: Option<Refusal>,
    /// The chart (SVG markup built by `chart`).
    pub chart: String,
    /// `hour` or `day`.
    pub span: String,
    /// The filters given, `(name, value)` (for the form and the next page's link).
    pub filters: Vec<(&'static str, String)>,
    /// Every payment status (the status filter's options).
    pub statuses: Vec<&'static str>,
    /// The next (older) page of a filtered list.
    pub next: Option<String>,
}

impl PaymentsPage {
    /// The value given for filter `name` (empty: none).
    pub fn filter(&self, name: &str) -> &str {
        self.filters
            .iter()
            .find(|(k, _)| *k == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// One line of a payment's timeline.
#[derive(Debug, Clone)]
pub struct TimelineEntry {
    /// When (unix ms; for ordering).
    pub at_ms: i64,
    /// When, written.
    pub at: String,
    /// What happened.
    pub what: String,
    /// Details.
    pub detail: String,
    /// The transaction hash, if any.
    pub tx_hash: Option<String>,
    /// The block number, if mined.
    pub block: Option<String>,
}

/// One webhook event and its delivery.
#[derive(Debug, Clone)]
pub struct DeliveryRow {
    /// The event type (`payment.refunded`).
    pub event_type: String,
    /// The event id (`webhook-id`).
    pub event_id: String,
    /// When the event was recorded.
    pub created: String,
    /// `pending`, `delivered`, `failed`, `disabled` (or `none` without a delivery row).
    pub status: String,
    /// Attempts so far.
    pub attempts: String,
    /// The endpoint's last HTTP status.
    pub response_status: String,
    /// The last attempt's error.
    pub last_error: String,
    /// When it was delivered.
    pub delivered: String,
}

/// What the payment page shows of the payment itself.
#[derive(Debug, Clone)]
pub struct PaymentDetail {
    /// Its id.
    pub id: String,
    /// The merchant's request id.
    pub request_id: String,
    /// Status.
    pub status: String,
    /// `authorize` or `charge`.
    pub flow: String,
    /// The escrow's payment hash.
    pub payment_hash: String,
    /// The payer.
    pub payer: String,
    /// The receiver.
    pub receiver: String,
    /// The token.
    pub token: String,
    /// Amounts, written.
    pub authorized: String,
    /// Captured.
    pub captured: String,
    /// Refunded.
    pub refunded: String,
    /// Capturable now.
    pub capturable: String,
    /// Refundable now.
    pub refundable: String,
    /// Capture deadline.
    pub capture_deadline: String,
    /// Created.
    pub created: String,
    /// Last change.
    pub updated: String,
    /// The last error (`code: message`), if any.
    pub last_error: Option<String>,
}

/// `GET /console/payments/{id}`.
#[derive(Template)]
#[template(path = "payment.html")]
pub struct PaymentPage {
    /// Around the page.
    pub chrome: Chrome,
    /// The payment.
    pub p: PaymentDetail,
    /// Its timeline, oldest first.
    pub timeline: Vec<TimelineEntry>,
    /// Its webhook events and deliveries.
    pub deliveries: Vec<DeliveryRow>,
    /// A message after an action.
    pub notice: Option<String>,
    /// Why the last action was refused.
    pub refusal: Option<Refusal>,
    /// Whether capture / void / refund may be asked for now.
    pub can_capture: bool,
    /// Void.
    pub can_void: bool,
    /// Refund.
    pub can_refund: bool,
    /// Capturable, in base units (the form's default).
    pub capturable_units: String,
    /// Refundable, in base units.
    pub refundable_units: String,
}

/// `GET /console/payments/{id}/confirm`.
#[derive(Template)]
#[template(path = "confirm.html")]
pub struct ConfirmPage {
    /// Around the page.
    pub chrome: Chrome,
    /// The payment id.
    pub id: String,
    /// Its request id.
    pub request_id: String,
    /// `capture`, `void` or `refund`.
    pub action: String,
    /// The amount in base units (empty: everything capturable).
    pub amount: String,
    /// The sentence to confirm.
    pub summary: String,
    /// The form's idempotency key.
    pub idem: String,
}

/// `GET /console/settings`.
#[derive(Template)]
#[template(path = "settings.html")]
pub struct SettingsPage {
    /// Around the page.
    pub chrome: Chrome,
    /// `(label, value)` rows about the merchant, its webhook endpoint and its key.
    pub merchant: Vec<(String, String)>,
    /// `(label, value)` rows of the operator's terms (`GET /v1/merchant`).
    pub terms: Vec<(String, String)>,
    /// The webhook URL, for the endpoint form (empty: none).
    pub webhook_url: String,
    /// Whether deliveries are on.
    pub webhook_enabled: bool,
    /// The latest webhook deliveries, newest first.
    pub deliveries: Vec<DeliveryLogRow>,
    /// The refund reserve's balances, one row per token.
    pub reserve: Vec<ReserveRow>,
    /// The reserve's latest statement entries, newest first.
    pub statement: Vec<StatementRow>,
}

/// One webhook delivery on the settings page.
#[derive(Debug, Clone)]
pub struct DeliveryLogRow {
    /// The delivery id (for redelivery).
    pub id: String,
    /// When the event was written.
    pub created: String,
    /// Its type.
    pub event_type: String,
    /// The payment it is about (empty: none).
    pub payment_id: String,
    /// `pending`, `delivered`, `failed`, `disabled`.
    pub status: String,
    /// Attempts made.
    pub attempts: i64,
    /// The last answer: HTTP status or error (empty: none yet).
    pub last: String,
}

/// One token's reserve balance.
#[derive(Debug, Clone)]
pub struct ReserveRow {
    /// The token.
    pub asset: String,
    /// What refunds can draw on now.
    pub balance: String,
    /// Credited, debited, released so far.
    pub credited: String,
    /// Debited so far.
    pub debited: String,
    /// Released so far.
    pub released: String,
}

/// One reserve statement entry.
#[derive(Debug, Clone)]
pub struct StatementRow {
    /// When.
    pub created: String,
    /// `credit`, `debit`, `release`.
    pub kind: String,
    /// Why (`deposit`, `refund`, …).
    pub reason: String,
    /// The amount.
    pub amount: String,
    /// The balance after it.
    pub balance_after: String,
    /// The payment (empty: none).
    pub payment_id: String,
}

/// `GET /console/rotate/{what}`: confirm a rotation.
#[derive(Template)]
#[template(path = "rotate_confirm.html")]
pub struct RotateConfirmPage {
    /// Around the page.
    pub chrome: Chrome,
    /// `api-key` or `webhook-secret`.
    pub what: String,
    /// What is rotated, in words.
    pub noun: String,
}

/// `POST /console/rotate/{what}`: the new secret, shown this once.
#[derive(Template)]
#[template(path = "rotated.html")]
pub struct RotatedPage {
    /// Around the page.
    pub chrome: Chrome,
    /// What was rotated, in words.
    pub noun: String,
    /// The new key or secret.
    pub secret: String,
    /// Until when the previous one stays valid (empty: it no longer is).
    pub previous_until: String,
}
