//! Sessions of the owner's page and their CSRF tokens.
//!
//! A session id is 32 random bytes (hex) that only the browser holds, in the
//! [`SESSION_COOKIE`] cookie; the store keeps its SHA-256 with the session's CSRF token and its
//! end ([`crate::store::OwnerSession`]). Ended rows are never honoured and are deleted at the
//! next sign-in; signing out deletes the row.

use axum::http::{HeaderMap, HeaderValue};

use x402_escrow_pages::token_hash as hash_id;
pub use x402_escrow_pages::{cookie, is_token, random_token, tokens_match};

use crate::error::WalletError;
use crate::store::{OwnerSession, Store, now_ms};

/// The session cookie.
pub const SESSION_COOKIE: &str = "x402_wallet_owner";
/// The sign-in form's double-submit cookie.
pub const LOGIN_COOKIE: &str = "x402_wallet_owner_login";
/// The code of a missing or wrong CSRF token (`403`).
pub const CSRF_INVALID: &str = "csrf_token_invalid";

/// Starts a session lasting `ttl_ms`: the id for the cookie and the session.
pub async fn create(store: &Store, ttl_ms: i64) -> Result<(String, OwnerSession), WalletError> {
    let id = random_token();
    let session = OwnerSession {
        csrf_token: random_token(),
        expires_at: now_ms().saturating_add(ttl_ms),
    };
    store.insert_owner_session(&hash_id(&id), &session).await?;
    Ok((id, session))
}

/// The live session of the request's cookie, with its id.
pub async fn current(
    store: &Store,
    headers: &HeaderMap,
) -> Result<Option<(String, OwnerSession)>, WalletError> {
    let Some(id) = cookie(headers, SESSION_COOKIE).filter(|id| is_token(id)) else {
        return Ok(None);
    };
    Ok(store
        .owner_session(&hash_id(id))
        .await?
        .map(|session| (id.to_owned(), session)))
}

/// Ends the session with this id.
pub async fn end(store: &Store, id: &str) -> Result<(), WalletError> {
    Ok(store.delete_owner_session(&hash_id(id)).await?)
}

/// A `Set-Cookie` value for the page's path (`/owner`): `value` for `max_age_secs` (0 clears
/// it).
pub fn set_cookie(name: &str, value: &str, max_age_secs: u64, secure: bool) -> HeaderValue {
    x402_escrow_pages::set_cookie(name, value, "/owner", max_age_secs, secure)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderValue, header};

    #[test]
    fn cookies_are_found_by_exact_name_and_set_strictly() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("x402_wallet_owner_login=aa; x402_wallet_owner=bb"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("bb"));
        assert_eq!(cookie(&headers, LOGIN_COOKIE), Some("aa"));
        assert_eq!(cookie(&headers, "other"), None);
        let set = set_cookie(SESSION_COOKIE, "bb", 60, true);
        assert_eq!(
            set.to_str().unwrap(),
            "x402_wallet_owner=bb; Path=/owner; Max-Age=60; HttpOnly; SameSite=Strict; Secure"
        );
    }
}
