//! Merchants: API key (stored as its SHA-256), receivers, webhook endpoint, capture deadline.

use alloy::primitives::Address;
use sha2::{Digest, Sha256};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use uuid::Uuid;

use super::codec::{self, Record, get_i64, get_opt_i64, get_opt_str, get_str, get_uuid};
use super::{Result, Store, StoreError, StoreTx, in_own_tx};
use x402_escrow_sdk::webhooks::WebhookSecret;

use crate::config::Secret;

/// What it takes to create a merchant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMerchant {
    /// A display name.
    pub name: String,
    /// Addresses this merchant may be paid to (`PaymentInfo.receiver`).
    pub receivers: Vec<Address>,
    /// Where webhooks go (none: events are recorded but not delivered).
    pub webhook_url: Option<String>,
    /// The Standard Webhooks signing secret (`whsec_…`).
    pub webhook_secret: Option<Secret>,
    /// Uncaptured holds are voided this long after authorization (must fall before
    /// `authorizationExpiry`; the engine takes the earlier of the two).
    pub capture_deadline_secs: i64,
}

/// A merchant as stored: its settings (reachable directly through `Deref`, e.g.
/// `merchant.receivers`) and what the store adds. The API key itself is never stored, only its
/// hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merchant {
    /// Id (UUIDv7).
    pub id: Uuid,
    /// Name, allowed receivers, webhook endpoint and signing secret, auto-void delay.
    pub settings: NewMerchant,
    /// SHA-256 hex of the API key.
    pub api_key_hash: String,
    /// Set (unix ms) when the endpoint answered 410 Gone or the merchant turned deliveries
    /// off; deliveries stop.
    pub webhook_disabled_at: Option<i64>,
    /// Creation time (unix ms).
    pub created_at: i64,
    /// The signing secret before the last rotation, still signing until
    /// `webhook_previous_secret_expires_at`.
    pub webhook_previous_secret: Option<Secret>,
    /// When the previous secret stops signing (unix ms).
    pub webhook_previous_secret_expires_at: Option<i64>,
    /// SHA-256 hex of the API key before the last rotation, still accepted until
    /// `api_key_previous_expires_at`.
    pub api_key_previous_hash: Option<String>,
    /// When the previous API key stops authenticating (unix ms).
    pub api_key_previous_expires_at: Option<i64>,
}

impl Merchant {
    /// The secrets webhooks are signed with at `now` (unix ms): the current one, then the
    /// previous one while its grace period lasts.
    pub fn signing_secrets(&self, now: i64) -> Vec<&Secret> {
        let previous = self.webhook_previous_secret.as_ref().filter(|_| {
            self.webhook_previous_secret_expires_at
                .is_some_and(|at| at > now)
        });
        self.webhook_secret.iter().chain(previous).collect()
    }

    /// Whether `hash` (SHA-256 hex of a presented key) is this merchant's key at `now`: the
    /// current one, or the previous one within its grace period. Compared in constant time.
    pub fn accepts_key_hash(&self, hash: &str, now: i64) -> bool {
        use subtle::ConstantTimeEq;
        let current: bool = hash.as_bytes().ct_eq(self.api_key_hash.as_bytes()).into();
        let previous: bool = match (
            &self.api_key_previous_hash,
            self.api_key_previous_expires_at,
        ) {
            (Some(previous), Some(until)) if until > now => {
                hash.as_bytes().ct_eq(previous.as_bytes()).into()
            }
            _ => false,
        };
        current | previous
    }
}

codec::deref_to!(Merchant => settings: NewMerchant);

/// SHA-256 hex of an API key: what `merchants.api_key_hash` holds.
pub fn hash_api_key(api_key: &str) -> String {
    hex::encode(Sha256::digest(api_key.as_bytes()))
}

/// A fresh API key: `x402_sk_` + 32 random bytes in hex.
pub fn generate_api_key() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("x402_sk_{}", hex::encode(bytes))
}

impl Record for Merchant {
    const TABLE: &'static str = "merchants";
    const COLUMNS: &'static str = "id, name, api_key_hash, receivers, webhook_url, webhook_secret, \
        webhook_disabled_at, capture_deadline_secs, created_at, webhook_previous_secret, \
        webhook_previous_secret_expires_at, api_key_previous_hash, api_key_previous_expires_at";
    const ENTITY: &'static str = "merchant";

    fn decode(row: &AnyRow) -> Result<Merchant> {
        let receivers: Vec<String> =
            serde_json::from_str(&get_str(row, "receivers")?).map_err(|e| StoreError::Decode {
                column: "receivers",
                message: e.to_string(),
            })?;
        Ok(Merchant {
            id: get_uuid(row, "id")?,
            settings: NewMerchant {
                name: get_str(row, "name")?,
                receivers: receivers
                    .iter()
                    .map(|r| codec::parse("receivers", r))
                    .collect::<Result<_>>()?,
                webhook_url: get_opt_str(row, "webhook_url")?,
                webhook_secret: get_opt_str(row, "webhook_secret")?.map(Secret::new),
                capture_deadline_secs: get_i64(row, "capture_deadline_secs")?,
            },
            api_key_hash: get_str(row, "api_key_hash")?,
            webhook_disabled_at: get_opt_i64(row, "webhook_disabled_at")?,
            created_at: get_i64(row, "created_at")?,
            webhook_previous_secret: get_opt_str(row, "webhook_previous_secret")?.map(Secret::new),
            webhook_previous_secret_expires_at: get_opt_i64(
                row,
                "webhook_previous_secret_expires_at",
            )?,
            api_key_previous_hash: get_opt_str(row, "api_key_previous_hash")?,
            api_key_previous_expires_at: get_opt_i64(row, "api_key_previous_expires_at")?,
        })
    }
}

pub(super) async fn insert(
    conn: &mut AnyConnection,
    now: i64,
    new: &NewMerchant,
    api_key: &str,
) -> Result<Merchant> {
    let receivers: Vec<String> = new.receivers.iter().map(codec::addr).collect();
    let receivers = codec::json("receivers", &receivers)?;
    let id = Uuid::now_v7();
    let row = codec::returning::<Merchant>(
        "INSERT INTO merchants (id, name, api_key_hash, receivers, webhook_url, webhook_secret, \
                                capture_deadline_secs, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(codec::uuid(&id))
    .bind(&new.name)
    .bind(hash_api_key(api_key))
    .bind(receivers)
    .bind(new.webhook_url.clone())
    .bind(new.webhook_secret.as_ref().map(|s| s.expose().to_owned()))
    .bind(new.capture_deadline_secs)
    .bind(now)
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| codec::conflict_or(e, "merchant", "api key already in use"))?;
    Merchant::decode(&row)
}

pub(super) async fn get(conn: &mut AnyConnection, id: Uuid) -> Result<Merchant> {
    codec::get_by_id(conn, id).await
}

impl StoreTx {
    /// Creates a merchant whose API key is `api_key` (only its hash is stored).
    pub async fn create_merchant_with_key(
        &mut self,
        new: &NewMerchant,
        api_key: &str,
    ) -> Result<Merchant> {
        let now = self.now_ms();
        insert(self.conn(), now, new, api_key).await
    }
}

impl Store {
    /// Creates a merchant with a fresh API key; returns the merchant and the key (shown once).
    pub async fn create_merchant(&self, new: &NewMerchant) -> Result<(Merchant, Secret)> {
        let key = generate_api_key();
        let merchant = self.create_merchant_with_key(new, &key).await?;
        Ok((merchant, Secret::new(key)))
    }

    in_own_tx! {
        /// Creates a merchant whose API key is `api_key` (only its hash is stored).
        pub async fn create_merchant_with_key(
            &self,
            new: &NewMerchant,
            api_key: &str,
        ) -> Result<Merchant>;
    }

    /// The merchant with this id ([`StoreError::NotFound`] otherwise).
    pub async fn get_merchant(&self, id: Uuid) -> Result<Merchant> {
        get(&mut *self.conn().await?, id).await
    }

    /// The merchant whose API key this is, if any: its current key, or its previous one
    /// within the rotation's grace period. The key is hashed and the hash looked up by
    /// equality, so no stored secret is ever compared byte by byte.
    pub async fn merchant_by_api_key(&self, api_key: &str) -> Result<Option<Merchant>> {
        let query = codec::select::<Merchant>(
            "WHERE api_key_hash = $1 \
                OR (api_key_previous_hash = $1 AND api_key_previous_expires_at > $2)",
        );
        let hash = hash_api_key(api_key);
        codec::fetch_optional(query.bind(hash).bind(self.now_ms()), &self.pool).await
    }

    /// Rotates the merchant's API key: a fresh key becomes current (returned, shown once) and
    /// the old one stays valid for `grace_ms` (none when 0). Returns the key and the old key's
    /// end, if any.
    pub async fn rotate_api_key(&self, id: Uuid, grace_ms: i64) -> Result<(Secret, Option<i64>)> {
        let key = generate_api_key();
        let until = (grace_ms > 0).then(|| self.now_ms().saturating_add(grace_ms));
        let done = sqlx::query(
            "UPDATE merchants SET api_key_previous_hash = CASE WHEN $3 IS NULL THEN NULL \
                 ELSE api_key_hash END, api_key_previous_expires_at = $3, api_key_hash = $2 \
             WHERE id = $1",
        )
        .bind(codec::uuid(&id))
        .bind(hash_api_key(&key))
        .bind(until)
        .execute(&self.pool)
        .await
        .map(|done| self.wrote(done))?;
        codec::affected(&done, "merchant", id)?;
        Ok((Secret::new(key), until))
    }

    /// Rotates the merchant's webhook signing secret: a fresh Standard Webhooks secret becomes
    /// current (returned, shown once) and the old one (if any) keeps signing for `grace_ms` (not
    /// at all when 0). Returns the secret and the old secret's end, if any.
    pub async fn rotate_webhook_secret(
        &self,
        id: Uuid,
        grace_ms: i64,
    ) -> Result<(Secret, Option<i64>)> {
        let secret = Secret::new(WebhookSecret::generate().expose_secret());
        let until = (grace_ms > 0).then(|| self.now_ms().saturating_add(grace_ms));
        // One statement: the old secret (if there is one) becomes the previous one.
        let query = codec::returning::<Merchant>(
            "UPDATE merchants SET webhook_previous_secret = CASE WHEN $3 IS NULL THEN NULL \
                 ELSE webhook_secret END, webhook_previous_secret_expires_at = CASE \
                 WHEN webhook_secret IS NULL THEN NULL ELSE $3 END, webhook_secret = $2 \
             WHERE id = $1",
        )
        .bind(codec::uuid(&id))
        .bind(secret.expose().to_owned())
        .bind(until);
        let merchant: Merchant = self.wrote(codec::fetch_found(query, &self.pool, id).await)?;
        Ok((secret, merchant.webhook_previous_secret_expires_at))
    }

    /// Changes the webhook endpoint (`url`) and turns deliveries on or off (`enabled`; on also
    /// after a `410 Gone`); `None` leaves each as it is. Returns the merchant as stored now.
    pub async fn update_webhook_endpoint(
        &self,
        id: Uuid,
        url: Option<String>,
        enabled: Option<bool>,
    ) -> Result<Merchant> {
        // 0: leave, 1: enable (clear the stop), 2: disable (stop now).
        let switch: i64 = match enabled {
            None => 0,
            Some(true) => 1,
            Some(false) => 2,
        };
        let query = codec::returning::<Merchant>(
            "UPDATE merchants SET webhook_url = COALESCE($2, webhook_url), \
                 webhook_disabled_at = CASE WHEN $3 = 1 THEN NULL \
                     WHEN $3 = 2 THEN COALESCE(webhook_disabled_at, $4) \
                     ELSE webhook_disabled_at END \
             WHERE id = $1",
        )
        .bind(codec::uuid(&id))
        .bind(url)
        .bind(switch)
        .bind(self.now_ms());
        self.wrote(codec::fetch_found(query, &self.pool, id).await)
    }

    /// Every merchant, oldest first.
    pub async fn list_merchants(&self) -> Result<Vec<Merchant>> {
        codec::fetch_all(codec::select::<Merchant>("ORDER BY id"), &self.pool).await
    }

    /// Sets (or clears) the webhook endpoint and secret, and re-enables deliveries.
    pub async fn set_merchant_webhook(
        &self,
        id: Uuid,
        url: Option<String>,
        secret: Option<Secret>,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE merchants SET webhook_url = $2, webhook_secret = $3, webhook_disabled_at = NULL \
             WHERE id = $1",
        )
        .bind(codec::uuid(&id))
        .bind(url)
        .bind(secret.map(|s| s.expose().to_owned()))
        .execute(&self.pool)
        .await
        .map(|done| self.wrote(done))?;
        codec::affected(&done, "merchant", id)
    }
}
