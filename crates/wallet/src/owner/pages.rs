//! The owner's pages: their data, their askama templates (`src/owner/templates/`) and their
//! handlers. Reads come from the [`Store`](crate::store::Store) and [`Wallet::usage`]; every
//! change goes through the functions the REST API calls ([`Wallet::approve`],
//! [`Wallet::reject`], [`keys::update`], [`keys::revoke`]).

use std::time::{Duration, UNIX_EPOCH};

use askama::Template;
use axum::Form;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use x402_escrow_sdk::types::wallet::{KeyRules, KeyUsage, UpdateKeyRequest};

use super::OwnerState;
use super::session::{self, CSRF_INVALID, LOGIN_COOKIE, SESSION_COOKIE};
use crate::error::WalletError;
use crate::keys;
use crate::service::now_secs;
use crate::store::{KeyRow, OwnerSession, PaymentRow, State as PaymentState};

/// At most this many pending payments and latest payments of a key are listed.
const LIST_LIMIT: u32 = 200;

/// What every page shows around its content.
#[derive(Debug, Clone)]
pub struct Chrome {
    /// The page title.
    pub title: String,
    /// Whether the owner is signed in (the navigation and sign-out form).
    pub signed_in: bool,
    /// The session's CSRF token.
    pub csrf: String,
    /// What the last action did.
    pub notice: Option<String>,
}

impl Chrome {
    fn signed_in(title: impl Into<String>, session: &OwnerSession, notice: Option<&str>) -> Self {
        Chrome {
            title: title.into(),
            signed_in: true,
            csrf: session.csrf_token.clone(),
            notice: notice.and_then(notice_text).map(str::to_owned),
        }
    }

    fn signed_out(title: impl Into<String>) -> Self {
        Chrome {
            title: title.into(),
            signed_in: false,
            csrf: String::new(),
            notice: None,
        }
    }
}

/// The fixed sentences a redirect's `?notice=` may ask for (anything else shows nothing).
fn notice_text(code: &str) -> Option<&'static str> {
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
pub struct Refusal {
    /// The stable code.
    pub code: String,
    /// What went wrong.
    pub message: String,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
    login_token: String,
    refusal: Option<Refusal>,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    chrome: Chrome,
    code: String,
    message: String,
}

/// A key as the pages list it.
#[derive(Debug, Clone)]
struct KeyLine {
    id: String,
    name: String,
    buyer: String,
    status: &'static str,
    revoked: bool,
    disabled: bool,
    rules_summary: String,
    spent_24h: String,
    spent_total: String,
    in_flight: String,
}

#[derive(Debug, Clone)]
struct PendingLine {
    id: String,
    key_id: String,
    key_name: String,
    method: String,
    url: String,
    amount: String,
    payee: String,
    created: String,
}

#[derive(Debug, Clone)]
struct PaymentLine {
    id: String,
    created: String,
    state: &'static str,
    method: String,
    url: String,
    scheme: String,
    amount: String,
    returned: String,
    rule: String,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    chrome: Chrome,
    pending: Vec<PendingLine>,
    keys: Vec<KeyLine>,
}

#[derive(Template)]
#[template(path = "key.html")]
struct KeyPage {
    chrome: Chrome,
    key: KeyLine,
    created: String,
    expires: String,
    revoked: Option<String>,
    rules: Vec<(&'static str, String)>,
    returned: String,
    counts: Vec<(String, u64)>,
    payments: Vec<PaymentLine>,
}

#[derive(Template)]
#[template(path = "confirm.html")]
struct ConfirmPage {
    chrome: Chrome,
    id: String,
    name: String,
}

/// Renders `page` with `status` (500 if the template fails).
fn render<T: Template>(status: StatusCode, page: &T) -> Response {
    match page.render() {
        Ok(html) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "owner page template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// A refusal as a page, with the REST API's code and status.
fn error_page(error: &WalletError, signed_in: Option<&OwnerSession>) -> Response {
    if matches!(
        error,
        WalletError::Store(_) | WalletError::Internal(_) | WalletError::InjectedCrash(_)
    ) {
        tracing::error!(%error, "owner page failed");
    }
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let chrome = match signed_in {
        Some(session) => Chrome::signed_in("Refused", session, None),
        None => Chrome::signed_out("Refused"),
    };
    let envelope = error.envelope();
    render(
        status,
        &ErrorPage {
            chrome,
            code: envelope.error.code,
            message: envelope.error.message,
        },
    )
}

fn csrf_refused(session: &OwnerSession) -> Response {
    render(
        StatusCode::FORBIDDEN,
        &ErrorPage {
            chrome: Chrome::signed_in("Refused", session, None),
            code: CSRF_INVALID.to_owned(),
            message: "the form's CSRF token is missing or wrong; nothing was changed".to_owned(),
        },
    )
}

fn to_login() -> Response {
    Redirect::to("/owner/login").into_response()
}

/// The session of a page request; without one, the sign-in page.
async fn signed_in(
    state: &OwnerState,
    headers: &HeaderMap,
) -> Result<(String, OwnerSession), Response> {
    match session::current(state.wallet.store(), headers).await {
        Ok(Some(found)) => Ok(found),
        Ok(None) => Err(to_login()),
        Err(e) => Err(error_page(&e, None)),
    }
}

/// The session of a form post whose CSRF token matches it; nothing else gets through.
async fn authorized(
    state: &OwnerState,
    headers: &HeaderMap,
    csrf: Option<&str>,
) -> Result<OwnerSession, Response> {
    let (_, session) = signed_in(state, headers).await?;
    match csrf {
        Some(token) if session::tokens_match(&session.csrf_token, token) => Ok(session),
        _ => Err(csrf_refused(&session)),
    }
}

/// UTC date and time of unix milliseconds (`Sun, 06 Dec 2026 17:14:02 GMT`).
fn time(ms: i64) -> String {
    let ms = u64::try_from(ms).unwrap_or(0);
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_millis(ms))
}

fn key_status(key: &KeyRow, now_secs: i64) -> &'static str {
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

fn with_limit(spent: impl std::fmt::Display, limit: Option<impl std::fmt::Display>) -> String {
    match limit {
        Some(limit) => format!("{spent} of {limit}"),
        None => spent.to_string(),
    }
}

fn list<T: std::fmt::Display>(items: &Option<Vec<T>>) -> String {
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

fn limit(amount: Option<impl std::fmt::Display>) -> String {
    amount.map_or_else(|| "no limit".to_owned(), |a| a.to_string())
}

/// Every rule of a key, in words.
fn rule_lines(rules: &KeyRules) -> Vec<(&'static str, String)> {
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
fn rules_summary(rules: &KeyRules) -> String {
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

fn key_line(key: &KeyRow, usage: &KeyUsage, now_secs: i64) -> KeyLine {
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

fn payment_line(p: &PaymentRow) -> PaymentLine {
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

/// `?notice=` after an action.
#[derive(Debug, Default, Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
}

/// `GET /owner`: pending approvals and every key with its rules and usage.
pub async fn home(
    State(state): State<OwnerState>,
    headers: HeaderMap,
    query: Result<Query<NoticeQuery>, QueryRejection>,
) -> Response {
    let (_, session) = match signed_in(&state, &headers).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let notice = query.ok().and_then(|Query(q)| q.notice);
    match home_page(&state, &session, notice.as_deref()).await {
        Ok(page) => render(StatusCode::OK, &page),
        Err(e) => error_page(&e, Some(&session)),
    }
}

async fn home_page(
    state: &OwnerState,
    session: &OwnerSession,
    notice: Option<&str>,
) -> Result<HomePage, WalletError> {
    let store = state.wallet.store();
    let now = now_secs();
    let keys = store.keys().await?;
    let mut lines = Vec::with_capacity(keys.len());
    for key in &keys {
        let usage = state.wallet.usage(key).await?;
        lines.push(key_line(key, &usage, now));
    }
    let pending = store
        .payments_page(
            None,
            Some(PaymentState::PendingApproval.as_str()),
            None,
            LIST_LIMIT,
        )
        .await?
        .into_iter()
        .map(|p| PendingLine {
            key_name: keys
                .iter()
                .find(|k| k.id == p.key_id)
                .map_or_else(|| p.key_id.clone(), |k| k.name.clone()),
            id: p.id,
            key_id: p.key_id,
            method: p.method,
            url: p.url,
            amount: p.amount.to_string(),
            payee: p.payee.map(|a| a.to_checksum(None)).unwrap_or_default(),
            created: time(p.created_at),
        })
        .collect();
    Ok(HomePage {
        chrome: Chrome::signed_in("Keys and approvals", session, notice),
        pending,
        keys: lines,
    })
}

/// `GET /owner/keys/{id}`: one key's rules, usage, controls and latest payments.
pub async fn key(
    State(state): State<OwnerState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Result<Query<NoticeQuery>, QueryRejection>,
) -> Response {
    let (_, session) = match signed_in(&state, &headers).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let notice = query.ok().and_then(|Query(q)| q.notice);
    match key_page(&state, &session, &id, notice.as_deref()).await {
        Ok(page) => render(StatusCode::OK, &page),
        Err(e) => error_page(&e, Some(&session)),
    }
}

async fn load_key(state: &OwnerState, id: &str) -> Result<KeyRow, WalletError> {
    state
        .wallet
        .store()
        .key(id)
        .await?
        .ok_or_else(|| WalletError::NotFound(format!("key {id}")))
}

async fn key_page(
    state: &OwnerState,
    session: &OwnerSession,
    id: &str,
    notice: Option<&str>,
) -> Result<KeyPage, WalletError> {
    let key = load_key(state, id).await?;
    let usage = state.wallet.usage(&key).await?;
    let payments = state
        .wallet
        .store()
        .payments_page(Some(&key.id), None, None, LIST_LIMIT)
        .await?;
    Ok(KeyPage {
        chrome: Chrome::signed_in(format!("Key {}", key.name), session, notice),
        created: time(key.created_at),
        expires: key.expires_at.map_or_else(
            || "never".to_owned(),
            |secs| time(secs.saturating_mul(1000)),
        ),
        revoked: key.revoked_at.map(time),
        rules: rule_lines(&key.rules),
        returned: usage.returned.to_string(),
        counts: usage.payments.clone().into_iter().collect(),
        payments: payments.iter().map(payment_line).collect(),
        key: key_line(&key, &usage, now_secs()),
    })
}

/// `GET /owner/login`: the form, with a fresh double-submit token in a cookie.
pub async fn login_form(State(state): State<OwnerState>) -> Response {
    login_page(&state, StatusCode::OK, None)
}

fn login_page(state: &OwnerState, status: StatusCode, refusal: Option<Refusal>) -> Response {
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
        session::set_cookie(LOGIN_COOKIE, &token, 600, state.settings.secure_cookie),
    );
    response
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    login_token: String,
    owner_token: String,
}

/// `POST /owner/login`: the owner token, once, for a session cookie.
pub async fn login(
    State(state): State<OwnerState>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return login_page(
            &state,
            StatusCode::BAD_REQUEST,
            Some(Refusal {
                code: "invalid_body".to_owned(),
                message: "the sign-in form is incomplete".to_owned(),
            }),
        );
    };
    let double_submit = session::cookie(&headers, LOGIN_COOKIE)
        .is_some_and(|cookie| session::tokens_match(cookie, &form.login_token));
    if !double_submit {
        return login_page(
            &state,
            StatusCode::FORBIDDEN,
            Some(Refusal {
                code: CSRF_INVALID.to_owned(),
                message: "the sign-in form expired or came from elsewhere; try again".to_owned(),
            }),
        );
    }
    if !state.wallet.is_owner(form.owner_token.trim()) {
        tracing::warn!("owner page sign-in refused");
        return login_page(
            &state,
            StatusCode::UNAUTHORIZED,
            Some(Refusal {
                code: "unauthorized".to_owned(),
                message: "that is not the owner token".to_owned(),
            }),
        );
    }
    let ttl = state.settings.session_ttl;
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let (id, _) = match session::create(state.wallet.store(), ttl_ms).await {
        Ok(created) => created,
        Err(e) => return error_page(&e, None),
    };
    tracing::info!("owner signed in to the owner page");
    let mut response = Redirect::to("/owner").into_response();
    let secure = state.settings.secure_cookie;
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        session::set_cookie(SESSION_COOKIE, &id, ttl.as_secs(), secure),
    );
    headers.append(
        header::SET_COOKIE,
        session::set_cookie(LOGIN_COOKIE, "", 0, secure),
    );
    response
}

/// A form that carries only the CSRF token.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf: Option<String>,
}

/// `POST /owner/logout`: ends the session.
pub async fn logout(
    State(state): State<OwnerState>,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let csrf = form.ok().and_then(|Form(f)| f.csrf);
    if let Err(page) = authorized(&state, &headers, csrf.as_deref()).await {
        return page;
    }
    if let Some(id) = session::cookie(&headers, SESSION_COOKIE)
        && let Err(e) = session::end(state.wallet.store(), id).await
    {
        return error_page(&e, None);
    }
    let mut response = to_login();
    response.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(SESSION_COOKIE, "", 0, state.settings.secure_cookie),
    );
    response
}

/// An owner's decision on a payment waiting for approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Approve,
    Reject,
}

/// `POST /owner/payments/{id}/approve`.
pub async fn approve(
    state: State<OwnerState>,
    headers: HeaderMap,
    id: Path<String>,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    decide(state, headers, id, form, Decision::Approve).await
}

/// `POST /owner/payments/{id}/reject`.
pub async fn reject(
    state: State<OwnerState>,
    headers: HeaderMap,
    id: Path<String>,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    decide(state, headers, id, form, Decision::Reject).await
}

/// Approves or rejects through [`Wallet::approve`] / [`Wallet::reject`] (CSRF-checked).
async fn decide(
    State(state): State<OwnerState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Result<Form<CsrfForm>, FormRejection>,
    decision: Decision,
) -> Response {
    let csrf = form.ok().and_then(|Form(f)| f.csrf);
    let session = match authorized(&state, &headers, csrf.as_deref()).await {
        Ok(session) => session,
        Err(page) => return page,
    };
    let (result, notice) = match decision {
        Decision::Approve => (state.wallet.approve(&id).await, "approved"),
        Decision::Reject => (state.wallet.reject(&id).await, "rejected"),
    };
    match result {
        Ok(_) => Redirect::to(&format!("/owner?notice={notice}")).into_response(),
        Err(e) => error_page(&e, Some(&session)),
    }
}

/// The kill switch form.
#[derive(Debug, Deserialize)]
pub struct SwitchForm {
    csrf: Option<String>,
    disabled: Option<String>,
}

/// `POST /owner/keys/{id}/switch`: sets the kill switch (`disabled=true|false`).
pub async fn switch(
    State(state): State<OwnerState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Result<Form<SwitchForm>, FormRejection>,
) -> Response {
    let form = form.ok().map(|Form(f)| f);
    let csrf = form.as_ref().and_then(|f| f.csrf.clone());
    let session = match authorized(&state, &headers, csrf.as_deref()).await {
        Ok(session) => session,
        Err(page) => return page,
    };
    let disabled = match form.and_then(|f| f.disabled).as_deref() {
        Some("true") => true,
        Some("false") => false,
        other => {
            let error = WalletError::invalid(
                "invalid_body",
                format!("disabled must be true or false, not {other:?}"),
            );
            return error_page(&error, Some(&session));
        }
    };
    let request = UpdateKeyRequest {
        disabled: Some(disabled),
        rules: None,
    };
    match keys::update(state.wallet.store(), &id, request).await {
        Ok(key) => {
            let notice = if disabled { "disabled" } else { "enabled" };
            Redirect::to(&format!("/owner/keys/{}?notice={notice}", key.id)).into_response()
        }
        Err(e) => error_page(&e, Some(&session)),
    }
}

/// `GET /owner/keys/{id}/revoke`: the confirmation.
pub async fn revoke_confirm(
    State(state): State<OwnerState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (_, session) = match signed_in(&state, &headers).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    match load_key(&state, &id).await {
        Ok(key) => render(
            StatusCode::OK,
            &ConfirmPage {
                chrome: Chrome::signed_in(format!("Revoke key {}", key.name), &session, None),
                id: key.id,
                name: key.name,
            },
        ),
        Err(e) => error_page(&e, Some(&session)),
    }
}

/// `POST /owner/keys/{id}/revoke`: revokes the key for good.
pub async fn revoke(
    State(state): State<OwnerState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let csrf = form.ok().and_then(|Form(f)| f.csrf);
    let session = match authorized(&state, &headers, csrf.as_deref()).await {
        Ok(session) => session,
        Err(page) => return page,
    };
    match keys::revoke(state.wallet.store(), &id).await {
        Ok(key) => Redirect::to(&format!("/owner/keys/{}?notice=revoked", key.id)).into_response(),
        Err(e) => error_page(&e, Some(&session)),
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
