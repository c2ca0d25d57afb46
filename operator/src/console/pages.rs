//! The console's pages: sign-in and sign-out, the payments list with its search and chart, a
//! payment with its timeline, and the merchant's webhook endpoint and key.

use alloy::primitives::Address;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use uuid::Uuid;

use super::chart::{self, Span};
use super::format;
use super::session::{self, CSRF_INVALID, LOGIN_COOKIE, SESSION_COOKIE, SignedIn};
use super::timeline;
use super::views::{
    Chrome, DeliveryLogRow, ErrorPage, LoginPage, PaymentDetail, PaymentPage, PaymentRow,
    PaymentsPage, Refusal, ReserveRow, SettingsPage, StatementRow, render,
};
use crate::api::ApiState;
use crate::api::auth::authenticate;
use crate::service::{ErrorCode, PaymentService, PaymentView, ServiceError, payment_view};
use crate::store::{Merchant, PaymentFilter, StoreError};
use x402_escrow_types::PaymentQuery as ListQuery;
use x402_escrow_types::lifecycle::ALL_STATUSES;
use x402_escrow_types::query::MAX_PAGE_LIMIT;

/// Default number of payments listed.
pub const DEFAULT_LIMIT: u32 = 50;
/// Most payments listed on one page.
pub const MAX_LIMIT: u32 = 200;
/// Longest search text (request ids are at most 255 characters in the REST API).
pub const MAX_QUERY_LEN: usize = 255;
/// Longest API key accepted at sign-in (as the REST API's bearer check).
const MAX_KEY_LEN: usize = 512;
/// How long the sign-in form's token lives (seconds).
const LOGIN_TOKEN_SECS: u64 = 600;

/// A page's answer to an internal failure (logged; the page says only "internal error").
pub fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "console request failed");
    error_page(
        Chrome::signed_out("Error"),
        Refusal::new(ErrorCode::Internal.as_str(), "internal error"),
        500,
    )
}

/// A refusal on its own page, with the HTTP status of its code.
pub fn error_page(chrome: Chrome, refusal: Refusal, status: u16) -> Response {
    render(status, &ErrorPage { chrome, refusal })
}

/// A refusal of the service as the console shows it (its code's HTTP status).
pub fn refused(chrome: Chrome, e: &ServiceError) -> Response {
    if e.code == ErrorCode::Internal {
        return internal(&e.message);
    }
    error_page(
        chrome,
        Refusal::new(e.code.as_str(), e.message.clone()),
        e.code.http_status(),
    )
}

/// `GET /console`: the payments, or the sign-in page.
pub async fn home(signed: Result<SignedIn, session::NotSignedIn>) -> Response {
    match signed {
        Ok(_) => Redirect::to("/console/payments").into_response(),
        Err(_) => Redirect::to("/console/login").into_response(),
    }
}

fn login_page(state_secure: bool, refusal: Option<Refusal>, status: u16) -> Response {
    let token = session::random_token();
    let mut response = render(
        status,
        &LoginPage {
            chrome: Chrome::signed_out("Sign in"),
            login_token: token.clone(),
            refusal,
        },
    );
    response.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(
            LOGIN_COOKIE,
            &token,
            "/console/login",
            LOGIN_TOKEN_SECS,
            state_secure,
        ),
    );
    response
}

/// `GET /console/login`: the sign-in form (or the payments, when already signed in).
pub async fn login_form<S: PaymentService>(
    State(state): State<ApiState<S>>,
    signed: Result<SignedIn, session::NotSignedIn>,
) -> Response {
    if signed.is_ok() {
        return Redirect::to("/console/payments").into_response();
    }
    login_page(state.console.secure_cookie, None, 200)
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    /// The merchant's API key.
    #[serde(default)]
    pub api_key: String,
    /// The double-submit token (must equal the sign-in cookie).
    #[serde(default)]
    pub login_token: String,
}

/// `POST /console/login`: checks the double-submit token, then the key; a good key starts a
/// session (cookie) and goes to the payments. A bad one is `401 unauthorized`, a missing or wrong
/// token `403 csrf_token_invalid`; neither creates a session.
pub async fn login<S: PaymentService>(
    State(state): State<ApiState<S>>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let secure = state.console.secure_cookie;
    let Ok(Form(form)) = form else {
        return login_page(
            secure,
            Some(Refusal::new(
                ErrorCode::InvalidRequest.as_str(),
                "the sign-in form could not be read",
            )),
            400,
        );
    };
    let token_ok = session::cookie(&headers, LOGIN_COOKIE)
        .is_some_and(|c| session::is_token(c) && session::tokens_match(c, &form.login_token));
    if !token_ok {
        return login_page(
            secure,
            Some(Refusal::new(
                CSRF_INVALID,
                "the sign-in form expired or did not come from this console; try again",
            )),
            403,
        );
    }
    let key = form.api_key.trim();
    let merchant = if key.is_empty() || key.len() > MAX_KEY_LEN {
        None
    } else {
        match authenticate(&state.store, key).await {
            Ok(m) => m,
            Err(e) => return internal(format!("{e:?}")),
        }
    };
    let Some(merchant) = merchant else {
        tracing::info!("console sign-in refused: unknown API key");
        return login_page(
            secure,
            Some(Refusal::new(
                ErrorCode::Unauthorized.as_str(),
                "unknown API key",
            )),
            401,
        );
    };
    let ttl = state.console.session_ttl;
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let (id, _) = match session::create(&state.store, merchant.id, ttl_ms).await {
        Ok(created) => created,
        Err(e) => return internal(e),
    };
    tracing::info!(merchant_id = %merchant.id, "console sign-in");
    let mut response = Redirect::to("/console/payments").into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        session::set_cookie(SESSION_COOKIE, &id, "/console", ttl.as_secs(), secure),
    );
    headers.append(
        header::SET_COOKIE,
        session::set_cookie(LOGIN_COOKIE, "", "/console/login", 0, secure),
    );
    response
}

/// A form that carries only the CSRF token.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    /// The session's CSRF token.
    #[serde(default)]
    pub csrf: String,
}

/// `403 csrf_token_invalid`.
pub fn csrf_refused(signed: &SignedIn) -> Response {
    error_page(
        signed.chrome("Refused"),
        Refusal::new(
            CSRF_INVALID,
            "the form's CSRF token is missing or wrong; nothing was changed",
        ),
        403,
    )
}

/// `POST /console/logout`: ends the session (CSRF-checked) and clears the cookie.
pub async fn logout<S: PaymentService>(
    State(state): State<ApiState<S>>,
    signed: SignedIn,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let presented = form.map(|Form(f)| f.csrf).unwrap_or_default();
    if !session::tokens_match(&signed.session.csrf_token, &presented) {
        return csrf_refused(&signed);
    }
    if let Err(e) = session::delete(&state.store, &signed.session_id).await {
        return internal(e);
    }
    let mut response = Redirect::to("/console/login").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(
            SESSION_COOKIE,
            "",
            "/console",
            0,
            state.console.secure_cookie,
        ),
    );
    response
}

/// Query of `GET /console/payments`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentsQuery {
    /// A request id or a payment id.
    pub q: Option<String>,
    /// How many payments to list (1–[`MAX_LIMIT`]).
    pub limit: Option<String>,
    /// `hour` (default) or `day`.
    pub chart: Option<String>,
    /// Filters, as `GET /v1/payments` takes them (validated by the same parser).
    pub status: Option<String>,
    /// RFC 3339.
    pub created_after: Option<String>,
    /// RFC 3339.
    pub created_before: Option<String>,
    /// An address.
    pub payer: Option<String>,
    /// Token units.
    pub min_amount: Option<String>,
    /// Token units.
    pub max_amount: Option<String>,
    /// The next page's position (`next_cursor` of the REST list).
    pub cursor: Option<String>,
}

impl PaymentsQuery {
    /// The non-empty filters as `(name, value)` pairs of `GET /v1/payments`.
    fn filters(&self) -> Vec<(&'static str, String)> {
        [
            ("status", &self.status),
            ("created_after", &self.created_after),
            ("created_before", &self.created_before),
            ("payer", &self.payer),
            ("min_amount", &self.min_amount),
            ("max_amount", &self.max_amount),
        ]
        .into_iter()
        .filter_map(|(name, value)| {
            let value = value.as_deref().map(str::trim).filter(|v| !v.is_empty())?;
            Some((name, value.to_owned()))
        })
        .collect()
    }
}

/// `pairs` as a query string, percent-encoded.
fn query_string(pairs: &[(&str, String)]) -> String {
    let mut url = reqwest::Url::parse("http://console.invalid/").expect("a fixed valid URL");
    url.query_pairs_mut()
        .extend_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())));
    url.query().unwrap_or_default().to_owned()
}

/// The decimals of `token` among the operator's accepted assets.
pub fn decimals<S: PaymentService>(
    state: &ApiState<S>,
    merchant: &Merchant,
    token: Address,
) -> Option<u8> {
    state
        .service
        .terms(merchant)
        .assets
        .iter()
        .find(|a| a.address == token)
        .map(|a| a.decimals)
}

fn row(view: &PaymentView, decimals: Option<u8>) -> PaymentRow {
    PaymentRow {
        id: view.id.to_string(),
        request_id: view.request_id.clone().unwrap_or_default(),
        status: view.status.as_str().to_owned(),
        authorized: format::amount(view.amounts.authorized, decimals),
        captured: format::amount(view.amounts.captured, decimals),
        refunded: format::amount(view.amounts.refunded, decimals),
        created: format::time(view.created_at),
    }
}

/// `GET /console/payments[?q=…][&limit=…][&chart=hour|day]`: the chart, a search box, and the
/// merchant's latest payments (or those of the request id searched for; a payment id of this
/// merchant goes straight to its page). Bad parameters are `400 invalid_request` and list nothing.
pub async fn payments<S: PaymentService>(
    State(state): State<ApiState<S>>,
    signed: SignedIn,
    query: Result<Query<PaymentsQuery>, QueryRejection>,
) -> Response {
    let merchant = &signed.merchant;
    let query = query.map(|Query(q)| q);
    let mut page = PaymentsPage {
        chrome: signed.chrome("Payments"),
        q: String::new(),
        limit: DEFAULT_LIMIT,
        max_limit: MAX_LIMIT,
        heading: "Recent payments".to_owned(),
        rows: Vec::new(),
        refusal: None,
        chart: String::new(),
        span: Span::Hour.as_str().to_owned(),
        filters: Vec::new(),
        statuses: ALL_STATUSES.iter().map(|s| s.as_str()).collect(),
        next: None,
    };
    let refuse = |mut page: PaymentsPage, message: String| {
        page.refusal = Some(Refusal::new(ErrorCode::InvalidRequest.as_str(), message));
        page.heading = "Nothing listed".to_owned();
        render(400, &page)
    };
    let query = match query {
        Ok(q) => q,
        Err(e) => return refuse(page, format!("bad query: {}", e.body_text())),
    };
    let span = match query.chart.as_deref() {
        None | Some("hour") => Span::Hour,
        Some("day") => Span::Day,
        Some(_) => return refuse(page, "chart must be `hour` or `day`".to_owned()),
    };
    page.span = span.as_str().to_owned();
    if let Some(limit) = query.limit.as_deref().filter(|l| !l.is_empty()) {
        match limit.parse::<u32>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => page.limit = n,
            _ => {
                return refuse(
                    page,
                    format!("limit must be a whole number from 1 to {MAX_LIMIT}"),
                );
            }
        }
    }
    let q = query.q.as_deref().unwrap_or_default().trim().to_owned();
    if q.len() > MAX_QUERY_LEN {
        return refuse(
            page,
            format!("the search text is longer than {MAX_QUERY_LEN} characters"),
        );
    }
    page.q = q.clone();
    page.filters = query.filters();
    let now = state.store.now_ms();
    match chart::recent_outcomes(&state.store, merchant.id, chart::window_start(span, now)).await {
        Ok(points) => page.chart = chart::svg(span, now, &points),
        Err(e) => return internal(e),
    }
    let token_decimals = |token: Address| decimals(&state, merchant, token);
    let view_row = |v: &PaymentView| {
        let token = v
            .payment_info
            .get("token")
            .and_then(|t| t.as_str())
            .and_then(|t| t.parse::<Address>().ok());
        row(v, token.and_then(token_decimals))
    };
    if q.is_empty() && (!page.filters.is_empty() || query.cursor.is_some()) {
        // The REST list's filters, parsed and checked by its own parser.
        let mut pairs = page.filters.clone();
        if let Some(cursor) = query.cursor.as_deref().filter(|c| !c.is_empty()) {
            pairs.push(("cursor", cursor.to_owned()));
        }
        let mut list_query = match ListQuery::parse(&query_string(&pairs)) {
            Ok(parsed) => parsed,
            Err(e) => {
                page.refusal = Some(Refusal::new(e.code.as_str(), e.message));
                page.heading = "Nothing listed".to_owned();
                return render(e.code.http_status(), &page);
            }
        };
        list_query.limit = page.limit.min(MAX_PAGE_LIMIT);
        return match state.service.list_payments(merchant, &list_query).await {
            Ok(list) => {
                page.heading = "Payments matching the filters".to_owned();
                page.rows = list.payments.iter().map(view_row).collect();
                page.next = list.next_cursor.map(|cursor| {
                    let mut pairs = page.filters.clone();
                    pairs.push(("limit", page.limit.to_string()));
                    pairs.push(("cursor", cursor));
                    format!("/console/payments?{}", query_string(&pairs))
                });
                render(200, &page)
            }
            Err(e) => refused(signed.chrome("Payments"), &e),
        };
    }
    if q.is_empty() {
        let listed = state
            .store
            .list_payments(&PaymentFilter {
                merchant_id: Some(merchant.id),
                limit: Some(page.limit),
                ..PaymentFilter::default()
            })
            .await;
        match listed {
            Ok(list) => {
                page.rows = list
                    .iter()
                    .map(|p| row(&payment_view(p, Vec::new()), token_decimals(p.info.token)))
                    .collect();
            }
            Err(e) => return internal(e),
        }
        return render(200, &page);
    }
    // A UUID may be a payment id or a request id (the merchant layer makes UUID request ids):
    // a payment of this merchant with that id goes to its page, else the request id is searched.
    if let Ok(id) = Uuid::parse_str(&q) {
        match state.service.get(merchant, id, None).await {
            Ok(_) => return Redirect::to(&format!("/console/payments/{id}")).into_response(),
            Err(e) if e.code == ErrorCode::NotFound => {}
            Err(e) => return refused(signed.chrome("Payments"), &e),
        }
    }
    match state.service.by_request_id(merchant, &q).await {
        Ok(views) => {
            page.heading = format!("Payments with request id {q}");
            page.rows = views
                .iter()
                .take(page.limit as usize)
                .map(view_row)
                .collect();
            render(200, &page)
        }
        Err(e) => refused(signed.chrome("Payments"), &e),
    }
}

/// Query of `GET /console/payments/{id}`.
#[derive(Debug, Default, Deserialize)]
pub struct PaymentQuery {
    /// What was just done (`capture`, `void`, `refund`, `replayed`): a fixed message is shown.
    pub notice: Option<String>,
}

/// The notice shown for `?notice=…` (unknown values show nothing).
fn notice_text(notice: Option<&str>) -> Option<String> {
    let text = match notice? {
        "capture" => "Capture sent. The timeline shows its transaction.",
        "void" => "Void sent. The timeline shows its transaction.",
        "refund" => "Refund sent. The timeline shows its transaction.",
        "replayed" => "This form was already submitted: nothing was sent again.",
        _ => return None,
    };
    Some(text.to_owned())
}

/// `GET /console/payments/{id}`: the payment, its actions, timeline and webhook deliveries.
/// Another merchant's payment (or a malformed id) is `404 not_found`.
pub async fn payment<S: PaymentService>(
    State(state): State<ApiState<S>>,
    signed: SignedIn,
    Path(id): Path<String>,
    Query(query): Query<PaymentQuery>,
) -> Response {
    let notice = notice_text(query.notice.as_deref());
    payment_page(&state, &signed, &id, notice, None, 200).await
}

/// Renders the payment page of `id` for `signed` (with a notice or a refusal, under `status`).
pub async fn payment_page<S: PaymentService>(
    state: &ApiState<S>,
    signed: &SignedIn,
    id: &str,
    notice: Option<String>,
    refusal: Option<Refusal>,
    status: u16,
) -> Response {
    let Ok(id) = Uuid::parse_str(id) else {
        return not_found(signed, id);
    };
    let merchant = &signed.merchant;
    // Ownership is the service's: another merchant's payment is `not_found`.
    let view = match state.service.get(merchant, id, None).await {
        Ok(v) => v,
        Err(e) if e.code == ErrorCode::NotFound => return not_found(signed, &id.to_string()),
        Err(e) => return refused(signed.chrome("Payment"), &e),
    };
    let payment = match state.store.get_payment(id).await {
        Ok(p) if p.merchant_id == merchant.id => p,
        Ok(_) | Err(StoreError::NotFound { .. }) => return not_found(signed, &id.to_string()),
        Err(e) => return internal(e),
    };
    let dec = decimals(state, merchant, payment.info.token);
    let (timeline, deliveries) = match timeline::read(&state.store, &payment, dec).await {
        Ok(t) => t,
        Err(e) => return internal(e),
    };
    let a = &view.amounts;
    let page = PaymentPage {
        chrome: signed.chrome(format!("Payment {id}")),
        p: PaymentDetail {
            id: id.to_string(),
            request_id: view.request_id.clone().unwrap_or_default(),
            status: view.status.as_str().to_owned(),
            flow: view.flow.as_str().to_owned(),
            payment_hash: format!("{:#x}", view.payment_hash),
            payer: payment.info.payer.to_string(),
            receiver: payment.info.receiver.to_string(),
            token: payment.info.token.to_string(),
            authorized: format::amount(a.authorized, dec),
            captured: format::amount(a.captured, dec),
            refunded: format::amount(a.refunded, dec),
            capturable: format::amount(a.capturable, dec),
            refundable: format::amount(a.refundable, dec),
            capture_deadline: view
                .capture_deadline
                .map(format::time)
                .unwrap_or_else(|| "none".to_owned()),
            created: format::time(view.created_at),
            updated: format::time(view.updated_at),
            last_error: view
                .last_error
                .as_ref()
                .map(|e| format!("{}: {}", e.code, e.message)),
        },
        timeline,
        deliveries,
        notice,
        refusal,
        can_capture: a.capturable > 0 && !view.status.is_in_flight(),
        can_void: a.capturable > 0 && !view.status.is_in_flight(),
        can_refund: a.refundable > 0 && !view.status.is_in_flight(),
        capturable_units: a.capturable.to_string(),
        refundable_units: a.refundable.to_string(),
    };
    render(status, &page)
}

/// `404 not_found` for a payment id this merchant does not have.
pub fn not_found(signed: &SignedIn, id: &str) -> Response {
    error_page(
        signed.chrome("Not found"),
        Refusal::new(ErrorCode::NotFound.as_str(), format!("no payment {id}")),
        404,
    )
}

/// `GET /console/settings`: the merchant's webhook endpoint, its API key (as a hash prefix: the
/// key itself is never stored) and the operator's terms, as the REST API exposes them today.
pub async fn settings<S: PaymentService>(
    State(state): State<ApiState<S>>,
    signed: SignedIn,
) -> Response {
    let m = &signed.merchant;
    let webhook = match (&m.webhook_url, m.webhook_disabled_at) {
        (None, _) => "none (events are recorded, not delivered)".to_owned(),
        (Some(url), None) => format!("{url} (enabled)"),
        (Some(url), Some(at)) => format!(
            "{url} (deliveries off since {}: turned off, or the endpoint answered 410 Gone)",
            format::time(at)
        ),
    };
    let merchant = vec![
        ("Name".to_owned(), m.name.clone()),
        ("Merchant id".to_owned(), m.id.to_string()),
        ("Created".to_owned(), format::time(m.created_at)),
        ("Webhook endpoint".to_owned(), webhook),
        (
            "Webhook signing secret".to_owned(),
            if m.webhook_secret.is_some() {
                "set (Standard Webhooks; not shown)".to_owned()
            } else {
                "not set".to_owned()
            },
        ),
        (
            "API key".to_owned(),
            format!(
                "stored only as its SHA-256, which starts with {}…",
                m.api_key_hash.get(..12).unwrap_or("")
            ),
        ),
        (
            "Capture deadline".to_owned(),
            format!("{} s after authorization", m.capture_deadline_secs),
        ),
    ];
    let t = state.service.terms(m);
    let list = |items: Vec<String>| items.join(", ");
    let terms = vec![
        ("Network".to_owned(), t.network.to_string()),
        (
            "Receivers".to_owned(),
            list(t.receivers.iter().map(ToString::to_string).collect()),
        ),
        (
            "Capture authorizer (operator signer)".to_owned(),
            t.capture_authorizer.to_string(),
        ),
        (
            "Fee".to_owned(),
            format!("{} bps to {}", t.fee_bps, t.fee_recipient),
        ),
        (
            "Capture deadline".to_owned(),
            format!("{} s", t.capture_deadline_seconds),
        ),
        (
            "Expiry margin".to_owned(),
            format!("{} s", t.expiry_margin_seconds),
        ),
        (
            "Escrows".to_owned(),
            list(
                t.escrows
                    .iter()
                    .map(|e| format!("{} ({})", e.escrow, e.label))
                    .collect(),
            ),
        ),
        (
            "Tokens".to_owned(),
            list(
                t.assets
                    .iter()
                    .map(|a| format!("{} {} ({} decimals)", a.name, a.address, a.decimals))
                    .collect(),
            ),
        ),
    ];
    let store = &state.store;
    let read = async {
        let deliveries = store
            .page_deliveries(m.id, None, None, SETTINGS_LIST_LIMIT)
            .await?;
        let balances = store.reserve_balances(m.id).await?;
        let statement = store
            .reserve_statement(m.id, None, None, SETTINGS_LIST_LIMIT)
            .await?;
        Ok::<_, crate::store::StoreError>((deliveries, balances, statement))
    };
    let (deliveries, balances, statement) = match read.await {
        Ok(read) => read,
        Err(e) => return internal(e),
    };
    let units = |asset, value| format::amount(value, decimals(&state, m, asset));
    render(
        200,
        &SettingsPage {
            chrome: signed.chrome("Settings"),
            merchant,
            terms,
            webhook_url: m.webhook_url.clone().unwrap_or_default(),
            webhook_enabled: m.webhook_disabled_at.is_none(),
            deliveries: deliveries
                .iter()
                .map(|e| DeliveryLogRow {
                    id: e.delivery.id.to_string(),
                    created: format::time(e.delivery.created_at),
                    event_type: e.event_type.clone(),
                    payment_id: e.payment_id.map(|p| p.to_string()).unwrap_or_default(),
                    status: e.delivery.status.as_str().to_owned(),
                    attempts: e.delivery.attempts,
                    last: match (&e.delivery.response_status, &e.delivery.last_error) {
                        (Some(code), _) => format!("HTTP {code}"),
                        (None, Some(error)) => error.clone(),
                        (None, None) => String::new(),
                    },
                })
                .collect(),
            reserve: balances
                .iter()
                .map(|b| ReserveRow {
                    asset: b.asset.to_string(),
                    balance: units(b.asset, b.balance),
                    credited: units(b.asset, b.credited),
                    debited: units(b.asset, b.debited),
                    released: units(b.asset, b.released),
                })
                .collect(),
            statement: statement
                .iter()
                .map(|e| StatementRow {
                    created: format::time(e.created_at),
                    kind: e.kind.as_str().to_owned(),
                    reason: e.reason.as_str().to_owned(),
                    amount: units(e.asset, e.amount),
                    balance_after: units(e.asset, e.balance_after),
                    payment_id: e.payment_id.map(|p| p.to_string()).unwrap_or_default(),
                })
                .collect(),
        },
    )
}

/// How many deliveries and statement entries the settings page shows.
const SETTINGS_LIST_LIMIT: u32 = 20;
