//! Console sessions and CSRF tokens.
//!
//! Signing in creates a session: a random 32-byte id (hex) that only the browser holds, in the
//! [`SESSION_COOKIE`] cookie (`HttpOnly`, `SameSite=Strict`, `Path=/console`, `Secure` when
//! configured), and a row in `console_sessions` keyed by the id's SHA-256 with the merchant, a
//! per-session CSRF token and the expiry. Expired rows are never honoured and are deleted at the
//! next sign-in. Signing out deletes the row.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::Method;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use sqlx::Row;
use uuid::Uuid;
use x402_escrow_pages::token_hash as hash_id;
pub use x402_escrow_pages::{cookie, is_token, random_token, set_cookie, tokens_match};

use super::views::{Chrome, ErrorPage, Refusal, render};
use crate::api::ApiState;
use crate::service::{ErrorCode, PaymentService};
use crate::store::{Merchant, Store, StoreError};

/// The session cookie.
pub const SESSION_COOKIE: &str = "x402_console";
/// The sign-in form's double-submit cookie.
pub const LOGIN_COOKIE: &str = "x402_console_login";
/// The console's code for a missing or wrong CSRF token (`403`).
pub const CSRF_INVALID: &str = "csrf_token_invalid";

/// A live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The merchant signed in.
    pub merchant_id: Uuid,
    /// The token every POST form of this session must carry.
    pub csrf_token: String,
    /// When it ends (unix ms).
    pub expires_at: i64,
}

/// Creates a session for `merchant_id` lasting `ttl_ms` (and deletes expired ones): the id for
/// the cookie and the session.
pub async fn create(
    store: &Store,
    merchant_id: Uuid,
    ttl_ms: i64,
) -> Result<(String, Session), StoreError> {
    let now = store.now_ms();
    sqlx::query("DELETE FROM console_sessions WHERE expires_at <= $1")
        .bind(now)
        .execute(store.pool())
        .await?;
    let id = random_token();
    let session = Session {
        merchant_id,
        csrf_token: random_token(),
        expires_at: now.saturating_add(ttl_ms),
    };
    sqlx::query(
        "INSERT INTO console_sessions (id_hash, merchant_id, csrf_token, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(hash_id(&id))
    .bind(merchant_id.hyphenated().to_string())
    .bind(session.csrf_token.clone())
    .bind(now)
    .bind(session.expires_at)
    .execute(store.pool())
    .await?;
    Ok((id, session))
}

/// The live session with this id, if any.
pub async fn lookup(store: &Store, id: &str) -> Result<Option<Session>, StoreError> {
    if !is_token(id) {
        return Ok(None);
    }
    let row = sqlx::query(
        "SELECT merchant_id, csrf_token, expires_at FROM console_sessions \
         WHERE id_hash = $1 AND expires_at > $2",
    )
    .bind(hash_id(id))
    .bind(store.now_ms())
    .fetch_optional(store.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let merchant: String = row.try_get("merchant_id")?;
    let merchant_id = Uuid::parse_str(&merchant).map_err(|e| StoreError::Decode {
        column: "merchant_id",
        message: e.to_string(),
    })?;
    Ok(Some(Session {
        merchant_id,
        csrf_token: row.try_get("csrf_token")?,
        expires_at: row.try_get("expires_at")?,
    }))
}

/// Ends the session with this id (signing out).
pub async fn delete(store: &Store, id: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM console_sessions WHERE id_hash = $1")
        .bind(hash_id(id))
        .execute(store.pool())
        .await?;
    Ok(())
}

/// The signed-in merchant of a console request, with its session and session id. As an
/// extractor, a request without a live session is sent to the sign-in page (GET) or answered
/// `401 unauthorized` (anything else).
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The merchant.
    pub merchant: Arc<Merchant>,
    /// Its session.
    pub session: Session,
    /// The session id (from the cookie).
    pub session_id: String,
}

impl SignedIn {
    /// The page chrome for this merchant (title, name, the sign-out form's CSRF token).
    pub fn chrome(&self, title: impl Into<String>) -> Chrome {
        Chrome::signed_in(title, &self.merchant.name, &self.session.csrf_token)
    }
}

/// Why a request has no [`SignedIn`].
pub enum NotSignedIn {
    /// A page: go to the sign-in page.
    Redirect,
    /// A form post: 401.
    Unauthorized,
    /// The store failed.
    Store(StoreError),
}

impl IntoResponse for NotSignedIn {
    fn into_response(self) -> Response {
        match self {
            NotSignedIn::Redirect => Redirect::to("/console/login").into_response(),
            NotSignedIn::Unauthorized => render(
                ErrorCode::Unauthorized.http_status(),
                &ErrorPage {
                    chrome: Chrome::signed_out("Signed out"),
                    refusal: Refusal::new(
                        ErrorCode::Unauthorized.as_str(),
                        "your console session has ended; sign in again",
                    ),
                },
            ),
            NotSignedIn::Store(e) => {
                tracing::error!(error = %e, "console session lookup failed");
                render(
                    500,
                    &ErrorPage {
                        chrome: Chrome::signed_out("Error"),
                        refusal: Refusal::new(ErrorCode::Internal.as_str(), "internal error"),
                    },
                )
            }
        }
    }
}

impl<S: PaymentService> FromRequestParts<ApiState<S>> for SignedIn {
    type Rejection = NotSignedIn;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState<S>,
    ) -> Result<Self, Self::Rejection> {
        let missing = if parts.method == Method::GET {
            NotSignedIn::Redirect
        } else {
            NotSignedIn::Unauthorized
        };
        let Some(id) = cookie(&parts.headers, SESSION_COOKIE).map(str::to_owned) else {
            return Err(missing);
        };
        let Some(session) = lookup(&state.store, &id)
            .await
            .map_err(NotSignedIn::Store)?
        else {
            return Err(missing);
        };
        let merchant = match state.store.get_merchant(session.merchant_id).await {
            Ok(m) => m,
            Err(StoreError::NotFound { .. }) => return Err(missing),
            Err(e) => return Err(NotSignedIn::Store(e)),
        };
        tracing::Span::current().record("merchant_id", tracing::field::display(merchant.id));
        Ok(SignedIn {
            merchant: Arc::new(merchant),
            session,
            session_id: id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue, header};

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; x402_console=abc ; b=2"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, "b"), Some("2"));
        assert_eq!(cookie(&headers, LOGIN_COOKIE), None);
    }

    #[test]
    fn set_cookie_carries_every_flag() {
        let v = set_cookie(SESSION_COOKIE, "ff", "/console", 60, true);
        assert_eq!(
            v.to_str().unwrap(),
            "x402_console=ff; Path=/console; Max-Age=60; HttpOnly; SameSite=Strict; Secure"
        );
        let v = set_cookie(SESSION_COOKIE, "", "/console", 0, false);
        assert!(!v.to_str().unwrap().contains("Secure"));
    }
}
