//! The owner's pages' handlers (their data and templates: [`super::views`]). Reads come from
//! the [`Store`](crate::store::Store) and [`Wallet::usage`]; every
//! change goes through the functions the REST API calls ([`Wallet::approve`],
//! [`Wallet::reject`], [`keys::update`], [`keys::revoke`]).

use axum::Form;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use x402_escrow_sdk::types::wallet::UpdateKeyRequest;

use super::OwnerState;
use super::session::{self, CSRF_INVALID, LOGIN_COOKIE, SESSION_COOKIE};
use super::views::{
    Chrome, ConfirmPage, ErrorPage, HomePage, KeyPage, LoginPage, PendingLine, Refusal, key_line,
    payment_line, render, rule_lines, time,
};
use crate::error::WalletError;
use crate::keys;
use crate::service::now_secs;
use crate::store::{KeyRow, OwnerSession, State as PaymentState};

/// At most this many pending payments and latest payments of a key are listed.
const LIST_LIMIT: u32 = 200;

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
async fn signed_in(state: &OwnerState, headers: &HeaderMap) -> Result<OwnerSession, Response> {
    match session::current(state.wallet.store(), headers).await {
        Ok(Some((_, session))) => Ok(session),
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
    let session = signed_in(state, headers).await?;
    match csrf {
        Some(token) if session::tokens_match(&session.csrf_token, token) => Ok(session),
        _ => Err(csrf_refused(&session)),
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
    let session = match signed_in(&state, &headers).await {
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
    let session = match signed_in(&state, &headers).await {
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
    let session = match signed_in(&state, &headers).await {
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
