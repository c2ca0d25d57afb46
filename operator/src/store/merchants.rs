//! Merchants: API key (stored as its SHA-256), receivers, webhook endpoint, capture deadline.

use alloy::primitives::Address;
use sha2::{Digest, Sha256};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use uuid::Uuid;

use super::codec::{self, Record, get_i64, get_opt_i64, get_opt_str, get_str, get_uuid};
use super::{Result, Store, StoreError, StoreTx, in_own_tx};
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
    /// Set (unix ms) when the endpoint answered 410 Gone; deliveries stop.
    pub webhook_disabled_at: Option<i64>,
    /// Creation time (unix ms).
    pub created_at: i64,
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
        webhook_disabled_at, capture_deadline_secs, created_at";
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

    /// The merchant whose API key this is, if any. The key is hashed and the hash looked up by
    /// equality, so no stored secret is ever compared byte by byte.
    pub async fn merchant_by_api_key(&self, api_key: &str) -> Result<Option<Merchant>> {
        let query = codec::select::<Merchant>("WHERE api_key_hash = $1");
        codec::fetch_optional(query.bind(hash_api_key(api_key)), &self.pool).await
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
