//! Payment keys: API tokens bound to one buyer key with rules. The token (`x402_wk_` + 32
//! random bytes, hex) is shown once; the database keeps its SHA-256.

use sha2::{Digest, Sha256};
use x402_escrow_sdk::types::wallet::{AuditEntry, CreateKeyRequest, KeyCreated, UpdateKeyRequest};

use crate::error::WalletError;
use crate::rules;
use crate::store::{KeyRow, Store, new_id, now_ms};

/// SHA-256 hex of a token.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A fresh token.
pub fn generate_token() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("x402_wk_{}", hex::encode(bytes))
}

/// An audit entry made now.
pub fn audit_entry(
    actor: &str,
    key_id: Option<&str>,
    payment_id: Option<&str>,
    decision: &str,
    rule: Option<&str>,
    detail: String,
) -> AuditEntry {
    AuditEntry {
        id: new_id(),
        at: now_ms(),
        actor: actor.to_owned(),
        key_id: key_id.map(str::to_owned),
        payment_id: payment_id.map(str::to_owned),
        decision: decision.to_owned(),
        rule: rule.map(str::to_owned),
        detail,
    }
}

/// Creates a key (rules validated first); returns it with its token.
pub async fn create(store: &Store, request: CreateKeyRequest) -> Result<KeyCreated, WalletError> {
    rules::validate(&request.rules).map_err(|m| WalletError::invalid("invalid_rules", m))?;
    if request.name.trim().is_empty() || request.buyer.trim().is_empty() {
        return Err(WalletError::invalid(
            "invalid_request",
            "a key needs a name and a buyer".to_owned(),
        ));
    }
    let token = generate_token();
    let now = now_ms();
    let key = KeyRow {
        id: new_id(),
        name: request.name,
        buyer: request.buyer,
        token_hash: hash_token(&token),
        rules: request.rules,
        created_at: now,
        expires_at: request.expires_at,
        revoked_at: None,
        disabled: false,
        updated_at: now,
    };
    let mut tx = store.begin().await?;
    tx.insert_key(&key).await?;
    tx.audit(&audit_entry(
        "owner",
        Some(&key.id),
        None,
        "key_created",
        None,
        format!("key {:?} for buyer {}", key.name, key.buyer),
    ))
    .await?;
    tx.commit().await?;
    Ok(KeyCreated {
        key: key.view(),
        token,
    })
}

async fn change(
    store: &Store,
    id: &str,
    decision: &str,
    apply: impl FnOnce(&mut KeyRow) -> Result<String, WalletError>,
) -> Result<KeyRow, WalletError> {
    let mut tx = store.begin().await?;
    let mut key = tx
        .lock_key(id)
        .await?
        .ok_or_else(|| WalletError::NotFound(format!("key {id}")))?;
    let detail = apply(&mut key)?;
    key.updated_at = now_ms();
    tx.update_key(&key).await?;
    tx.audit(&audit_entry(
        "owner",
        Some(id),
        None,
        decision,
        None,
        detail,
    ))
    .await?;
    tx.commit().await?;
    Ok(key)
}

/// A new token for the key; the old one stops working at once.
pub async fn rotate(store: &Store, id: &str) -> Result<KeyCreated, WalletError> {
    let token = generate_token();
    let hash = hash_token(&token);
    let key = change(store, id, "key_rotated", |key| {
        if key.revoked_at.is_some() {
            return Err(WalletError::Conflict {
                code: "key_revoked",
                message: format!("key {id} is revoked"),
                payment_id: None,
            });
        }
        key.token_hash = hash;
        Ok("token replaced".to_owned())
    })
    .await?;
    Ok(KeyCreated {
        key: key.view(),
        token,
    })
}

/// Revokes the key for good.
pub async fn revoke(store: &Store, id: &str) -> Result<KeyRow, WalletError> {
    change(store, id, "key_revoked", |key| {
        key.revoked_at.get_or_insert_with(now_ms);
        Ok("revoked".to_owned())
    })
    .await
}

/// The kill switch and new rules.
pub async fn update(
    store: &Store,
    id: &str,
    request: UpdateKeyRequest,
) -> Result<KeyRow, WalletError> {
    if let Some(rules) = &request.rules {
        rules::validate(rules).map_err(|m| WalletError::invalid("invalid_rules", m))?;
    }
    change(store, id, "key_updated", |key| {
        let mut detail = Vec::new();
        if let Some(disabled) = request.disabled {
            key.disabled = disabled;
            detail.push(format!("disabled={disabled}"));
        }
        if let Some(rules) = request.rules {
            key.rules = rules;
            detail.push("rules replaced".to_owned());
        }
        Ok(detail.join(", "))
    })
    .await
}
