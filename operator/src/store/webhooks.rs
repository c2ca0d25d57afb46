//! Merchant webhooks: the events (`webhook_events`, one per announcement, id = the Standard
//! Webhooks `webhook-id`) and their delivery state (`webhook_deliveries`, one per event: attempts,
//! next attempt time and the worker's lease on it).
//!
//! An event and its first delivery are written in the same transaction as the payment transition
//! that causes them ([`super::TransitionExtras::webhook`]), so an announced change is never lost
//! and a lost change is never announced.

use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use uuid::Uuid;

use super::chain::text_enum;
use super::codec::{self, Record, get_i64, get_opt_i64, get_opt_str, get_str, get_uuid};
use super::{Backend, Result, Store, StoreError, StoreTx, in_claim_tx, in_own_tx};

/// A webhook event to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhookEvent {
    /// The event id (`webhook-id`); [`NewWebhookEvent::new`] makes a UUIDv7 so the payload can
    /// carry it.
    pub id: Uuid,
    /// `payment.authorized`, `payment.captured`, …
    pub event_type: String,
    /// The JSON body.
    pub payload: serde_json::Value,
}

impl NewWebhookEvent {
    /// An event with a fresh id.
    pub fn new(event_type: impl Into<String>, payload: serde_json::Value) -> NewWebhookEvent {
        NewWebhookEvent {
            id: Uuid::now_v7(),
            event_type: event_type.into(),
            payload,
        }
    }
}

/// A stored webhook event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    /// The `webhook-id`.
    pub id: Uuid,
    /// The merchant it goes to.
    pub merchant_id: Uuid,
    /// The payment it is about.
    pub payment_id: Option<Uuid>,
    /// Its type.
    pub event_type: String,
    /// The JSON body (for an event about a payment, with its `sequence`).
    pub payload: serde_json::Value,
    /// Creation time (unix ms).
    pub created_at: i64,
    /// Its number among the payment's events (1, 2, … in the order written); `None` for an
    /// event not about a payment.
    pub sequence: Option<i64>,
}

/// Delivery state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for (another) attempt.
    Pending,
    /// A 2xx came back.
    Delivered,
    /// Retries exhausted.
    Failed,
    /// The endpoint answered 410 Gone (the merchant's webhook is disabled).
    Disabled,
}

text_enum!(DeliveryStatus, "delivery status", {
    Pending => "pending", Delivered => "delivered", Failed => "failed", Disabled => "disabled",
});

/// A delivery row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDelivery {
    /// Id (UUIDv7).
    pub id: Uuid,
    /// The event delivered.
    pub event_id: Uuid,
    /// The merchant.
    pub merchant_id: Uuid,
    /// State.
    pub status: DeliveryStatus,
    /// Attempts started so far (counted when claimed, so a crash mid-attempt still counts).
    pub attempts: i64,
    /// When the next attempt is due (unix ms).
    pub next_attempt_at: i64,
    /// The worker holding it.
    pub locked_by: Option<String>,
    /// Until when (unix ms); after that another worker may claim it.
    pub locked_until: Option<i64>,
    /// HTTP status of the last attempt.
    pub response_status: Option<u16>,
    /// Error of the last attempt.
    pub last_error: Option<String>,
    /// Creation time (unix ms).
    pub created_at: i64,
    /// Last change (unix ms).
    pub updated_at: i64,
    /// When it was delivered (unix ms).
    pub delivered_at: Option<i64>,
}

/// A claimed delivery together with its event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedDelivery {
    /// The delivery (now locked by the claimer).
    pub delivery: WebhookDelivery,
    /// What to send.
    pub event: WebhookEvent,
}

/// A delivery with what its log shows of its event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryLogEntry {
    /// The delivery.
    pub delivery: WebhookDelivery,
    /// The event's type.
    pub event_type: String,
    /// The payment the event is about.
    pub payment_id: Option<Uuid>,
    /// The event's number among its payment's events.
    pub sequence: Option<i64>,
}

/// The delivery log's rows, filtered by `conditions`: a delivery's columns (as
/// [`WebhookDelivery::decode`] reads them) and its event's type, payment and sequence.
fn delivery_log_query(conditions: &str) -> String {
    format!(
        "SELECT {}, e.event_type, e.payment_id, e.sequence \
         FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id {conditions}",
        codec::qualified::<WebhookDelivery>("d")
    )
}

impl DeliveryLogEntry {
    fn decode(row: &AnyRow) -> Result<DeliveryLogEntry> {
        Ok(DeliveryLogEntry {
            delivery: WebhookDelivery::decode(row)?,
            event_type: get_str(row, "event_type")?,
            payment_id: codec::get_opt_uuid(row, "payment_id")?,
            sequence: get_opt_i64(row, "sequence")?,
        })
    }
}

/// The result of one attempt, for [`Store::record_delivery`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// A 2xx: done.
    Delivered {
        /// The status received.
        response_status: u16,
    },
    /// Failed; try again at `next_attempt_at` (the worker computes backoff and jitter).
    Retry {
        /// The status received, if any.
        response_status: Option<u16>,
        /// What went wrong.
        error: String,
        /// When to try again (unix ms).
        next_attempt_at: i64,
    },
    /// Failed and out of retries.
    GiveUp {
        /// The status received, if any.
        response_status: Option<u16>,
        /// What went wrong.
        error: String,
    },
    /// 410 Gone: stop, and disable the merchant's endpoint (in the same transaction).
    Gone,
}

impl Record for WebhookEvent {
    const TABLE: &'static str = "webhook_events";
    const COLUMNS: &'static str =
        "id, merchant_id, payment_id, event_type, payload, created_at, sequence";
    const ENTITY: &'static str = "webhook event";

    fn decode(row: &AnyRow) -> Result<WebhookEvent> {
        Ok(WebhookEvent {
            id: get_uuid(row, "id")?,
            merchant_id: get_uuid(row, "merchant_id")?,
            payment_id: codec::get_opt_uuid(row, "payment_id")?,
            event_type: get_str(row, "event_type")?,
            payload: codec::get_json(row, "payload")?,
            created_at: get_i64(row, "created_at")?,
            sequence: get_opt_i64(row, "sequence")?,
        })
    }
}

impl Record for WebhookDelivery {
    const TABLE: &'static str = "webhook_deliveries";
    const COLUMNS: &'static str = "id, event_id, merchant_id, status, attempts, next_attempt_at, \
        locked_by, locked_until, response_status, last_error, created_at, updated_at, delivered_at";
    const ENTITY: &'static str = "webhook delivery";

    fn decode(row: &AnyRow) -> Result<WebhookDelivery> {
        let response_status = get_opt_i64(row, "response_status")?
            .map(|s| {
                u16::try_from(s).map_err(|e| StoreError::Decode {
                    column: "response_status",
                    message: e.to_string(),
                })
            })
            .transpose()?;
        Ok(WebhookDelivery {
            id: get_uuid(row, "id")?,
            event_id: get_uuid(row, "event_id")?,
            merchant_id: get_uuid(row, "merchant_id")?,
            status: codec::get_parsed(row, "status")?,
            attempts: get_i64(row, "attempts")?,
            next_attempt_at: get_i64(row, "next_attempt_at")?,
            locked_by: get_opt_str(row, "locked_by")?,
            locked_until: get_opt_i64(row, "locked_until")?,
            response_status,
            last_error: get_opt_str(row, "last_error")?,
            created_at: get_i64(row, "created_at")?,
            updated_at: get_i64(row, "updated_at")?,
            delivered_at: get_opt_i64(row, "delivered_at")?,
        })
    }
}

/// Why a delivery was given up when its merchant has no webhook endpoint.
pub const NO_ENDPOINT: &str = "the merchant has no webhook endpoint";

/// Why a delivery was given up when its merchant's webhook endpoint is disabled.
pub const ENDPOINT_DISABLED: &str =
    "the merchant's webhook endpoint is disabled (it answered 410 Gone, or was turned off)";

/// Writes an event and its first delivery: due now, or already given up when the merchant has
/// no endpoint to deliver to ([`NO_ENDPOINT`], [`ENDPOINT_DISABLED`]). An event about a payment gets the next
/// number of that payment's events (`sequence`, also written into a JSON-object payload): the
/// transition that writes it has just updated the payment's row, which keeps out any other
/// writer of the same payment's events until it commits (and a unique index refuses a
/// duplicate number all the same).
pub(super) async fn insert(
    conn: &mut AnyConnection,
    now: i64,
    merchant_id: Uuid,
    payment_id: Option<Uuid>,
    new: &NewWebhookEvent,
) -> Result<WebhookEvent> {
    let mut body = new.payload.clone();
    let sequence = match payment_id {
        Some(payment_id) => {
            let row = sqlx::query(
                "SELECT COALESCE(MAX(sequence), 0) + 1 AS n FROM webhook_events WHERE payment_id = $1",
            )
            .bind(codec::uuid(&payment_id))
            .fetch_one(&mut *conn)
            .await?;
            let n = get_i64(&row, "n")?;
            if let Some(object) = body.as_object_mut() {
                object.insert("sequence".to_owned(), serde_json::Value::from(n));
            }
            Some(n)
        }
        None => None,
    };
    let payload = codec::json("payload", &body)?;
    let row = codec::returning::<WebhookEvent>(
        "INSERT INTO webhook_events (id, merchant_id, payment_id, event_type, payload, created_at, \
             sequence) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(codec::uuid(&new.id))
    .bind(codec::uuid(&merchant_id))
    .bind(payment_id.as_ref().map(codec::uuid))
    .bind(new.event_type.clone())
    .bind(payload)
    .bind(now)
    .bind(sequence)
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| codec::conflict_or(e, "webhook event", format!("id {} already exists", new.id)))?;
    let event = WebhookEvent::decode(&row)?;
    // Nowhere to deliver to (no endpoint, or it is disabled): the delivery is written as given
    // up, with the reason a worker would have recorded, instead of being claimed and given up
    // in two more writes. `redeliver` queues it again once there is an endpoint.
    sqlx::query(
        "INSERT INTO webhook_deliveries (id, event_id, merchant_id, status, attempts, next_attempt_at, \
             last_error, created_at, updated_at) \
         SELECT $1, $2, m.id, \
                CASE WHEN m.webhook_disabled_at IS NOT NULL OR COALESCE(m.webhook_url, '') = '' \
                     THEN 'failed' ELSE 'pending' END, \
                0, $4, \
                CASE WHEN m.webhook_disabled_at IS NOT NULL THEN $5 \
                     WHEN COALESCE(m.webhook_url, '') = '' THEN $6 END, \
                $4, $4 \
         FROM merchants m WHERE m.id = $3",
    )
    .bind(codec::uuid(&Uuid::now_v7()))
    .bind(codec::uuid(&event.id))
    .bind(codec::uuid(&merchant_id))
    .bind(now)
    .bind(ENDPOINT_DISABLED)
    .bind(NO_ENDPOINT)
    .execute(&mut *conn)
    .await?;
    Ok(event)
}

pub(super) async fn for_payment(
    conn: &mut AnyConnection,
    payment_id: Uuid,
) -> Result<Vec<WebhookEvent>> {
    let query = codec::select::<WebhookEvent>("WHERE payment_id = $1 ORDER BY id");
    codec::fetch_all(query.bind(codec::uuid(&payment_id)), &mut *conn).await
}

impl StoreTx {
    /// Writes a webhook event and its first delivery (not tied to a payment transition).
    pub async fn enqueue_webhook(
        &mut self,
        merchant_id: Uuid,
        payment_id: Option<Uuid>,
        event: &NewWebhookEvent,
    ) -> Result<WebhookEvent> {
        let now = self.now_ms();
        insert(self.conn(), now, merchant_id, payment_id, event).await
    }

    /// Claims up to `limit` due deliveries for `worker` for `lock_ms`: pending, due, not
    /// locked by a live claim, and not behind an earlier event of the same payment to the same
    /// merchant that is still pending (in flight or waiting for a retry): a payment's events are
    /// sent one at a time, in `sequence` order. Counts the attempt. Two workers never get the
    /// same row (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: one writer at a time).
    pub async fn claim_due_deliveries(
        &mut self,
        worker: &str,
        limit: u32,
        lock_ms: i64,
    ) -> Result<Vec<ClaimedDelivery>> {
        let now = self.now_ms();
        // One statement for both databases but for the row locking PostgreSQL needs.
        let locking = match self.backend {
            Backend::Postgres => " FOR UPDATE OF d SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let query = codec::returning::<WebhookDelivery>(&format!(
            "UPDATE webhook_deliveries \
             SET locked_by = $1, locked_until = $2, attempts = attempts + 1, updated_at = $3 \
             WHERE id IN ( \
                 SELECT d.id FROM webhook_deliveries d \
                 JOIN webhook_events e ON e.id = d.event_id \
                 WHERE d.status = 'pending' AND d.next_attempt_at <= $3 \
                   AND (d.locked_until IS NULL OR d.locked_until <= $3) \
                   AND NOT EXISTS ( \
                       SELECT 1 FROM webhook_events earlier \
                       JOIN webhook_deliveries ed ON ed.event_id = earlier.id \
                       WHERE e.payment_id IS NOT NULL AND earlier.payment_id = e.payment_id \
                         AND earlier.sequence < e.sequence \
                         AND ed.merchant_id = d.merchant_id AND ed.status = 'pending') \
                 ORDER BY d.next_attempt_at, d.id LIMIT $4{locking})"
        ))
        .bind(worker)
        .bind(now.saturating_add(lock_ms))
        .bind(now)
        .bind(i64::from(limit));
        let mut deliveries: Vec<WebhookDelivery> = codec::fetch_all(query, self.conn()).await?;
        // RETURNING order is unspecified.
        deliveries.sort_by_key(|d| (d.next_attempt_at, d.id));
        let mut claimed = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            let event = codec::get_by_id(self.conn(), delivery.event_id).await?;
            claimed.push(ClaimedDelivery { delivery, event });
        }
        Ok(claimed)
    }
}

impl Store {
    in_own_tx! {
        /// Writes a webhook event and its first delivery in its own transaction.
        pub async fn enqueue_webhook(
            &self,
            merchant_id: Uuid,
            payment_id: Option<Uuid>,
            event: &NewWebhookEvent,
        ) -> Result<WebhookEvent>;
    }

    /// See [`StoreTx::claim_due_deliveries`]; nothing due rolls back (not a write).
    pub async fn claim_due_deliveries(
        &self,
        worker: &str,
        limit: u32,
        lock_ms: i64,
    ) -> Result<Vec<ClaimedDelivery>> {
        in_claim_tx!(self, |tx| tx
            .claim_due_deliveries(worker, limit, lock_ms)
            .await?)
    }

    /// Records the result of an attempt by `worker`, which must still hold the claim
    /// ([`StoreError::ClaimLost`] otherwise: its lock expired and another worker took the row).
    /// [`DeliveryOutcome::Gone`] also disables the merchant's webhook, in the same transaction.
    pub async fn record_delivery(
        &self,
        delivery_id: Uuid,
        worker: &str,
        outcome: &DeliveryOutcome,
    ) -> Result<WebhookDelivery> {
        let now = self.now_ms();
        let (status, response_status, error, next_attempt_at, delivered_at) = match outcome {
            DeliveryOutcome::Delivered { response_status } => (
                DeliveryStatus::Delivered,
                Some(*response_status),
                None,
                None,
                Some(now),
            ),
            DeliveryOutcome::Retry {
                response_status,
                error,
                next_attempt_at,
            } => (
                DeliveryStatus::Pending,
                *response_status,
                Some(error.clone()),
                Some(*next_attempt_at),
                None,
            ),
            DeliveryOutcome::GiveUp {
                response_status,
                error,
            } => (
                DeliveryStatus::Failed,
                *response_status,
                Some(error.clone()),
                None,
                None,
            ),
            DeliveryOutcome::Gone => (
                DeliveryStatus::Disabled,
                Some(410),
                Some("410 Gone".to_owned()),
                None,
                None,
            ),
        };
        // Shares a transaction with other hot-path writes (`Store::grouped`).
        let worker = worker.to_owned();
        self.grouped(move |tx| Box::pin(async move {
            let query = codec::returning::<WebhookDelivery>(
                "UPDATE webhook_deliveries SET status = $3, response_status = $4, last_error = $5, \
                     next_attempt_at = COALESCE($6, next_attempt_at), delivered_at = $7, \
                     locked_by = NULL, locked_until = NULL, updated_at = $8 \
                 WHERE id = $1 AND locked_by = $2 AND status = 'pending'",
            )
            .bind(codec::uuid(&delivery_id))
            .bind(worker.as_str())
            .bind(status.as_str())
            .bind(response_status.map(i64::from))
            .bind(error)
            .bind(next_attempt_at)
            .bind(delivered_at)
            .bind(now);
            let Some(delivery) = codec::fetch_optional::<WebhookDelivery>(query, tx.conn()).await?
            else {
                return Err(StoreError::ClaimLost {
                    entity: "webhook delivery",
                    id: delivery_id,
                    owner: worker,
                });
            };
            if status == DeliveryStatus::Disabled {
                sqlx::query("UPDATE merchants SET webhook_disabled_at = $2 WHERE id = $1 AND webhook_disabled_at IS NULL")
                    .bind(codec::uuid(&delivery.merchant_id))
                    .bind(now)
                    .execute(tx.conn())
                    .await?;
                tracing::warn!(merchant_id = %delivery.merchant_id, "webhook endpoint answered 410: disabled");
            }
            Ok(delivery)
        }))
        .await
    }

    /// One page of `merchant_id`'s delivery log, newest first by id (UUIDv7: creation order),
    /// after `cursor` (a delivery id) and with `status` if given; reads `limit` rows.
    pub async fn page_deliveries(
        &self,
        merchant_id: Uuid,
        status: Option<DeliveryStatus>,
        cursor: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<DeliveryLogEntry>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(delivery_log_query(
            "WHERE d.merchant_id = $1 AND ($2 = '' OR d.status = $2) AND ($3 = '' OR d.id < $3) \
             ORDER BY d.id DESC LIMIT $4",
        )))
        .bind(codec::uuid(&merchant_id))
        .bind(status.map(|s| s.as_str().to_owned()).unwrap_or_default())
        .bind(cursor.as_ref().map(codec::uuid).unwrap_or_default())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(DeliveryLogEntry::decode).collect()
    }

    /// Queues `merchant_id`'s delivery `id` again, due now with a fresh retry schedule
    /// (whatever its state: a delivered event is sent once more, with the same `webhook-id`).
    /// [`StoreError::NotFound`] for another merchant's delivery; [`StoreError::Conflict`] while
    /// a worker is attempting it.
    pub async fn redeliver(&self, merchant_id: Uuid, id: Uuid) -> Result<DeliveryLogEntry> {
        let now = self.now_ms();
        let done = sqlx::query(
            "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = $3, \
                 locked_by = NULL, locked_until = NULL, updated_at = $3 \
             WHERE id = $1 AND merchant_id = $2 \
               AND NOT (status = 'pending' AND locked_until IS NOT NULL AND locked_until > $3)",
        )
        .bind(codec::uuid(&id))
        .bind(codec::uuid(&merchant_id))
        .bind(now)
        .execute(&self.pool)
        .await
        .map(|done| self.wrote(done))?;
        let entry = self.delivery_log_entry(merchant_id, id).await?;
        match entry {
            Some(entry) if done.rows_affected() == 1 => Ok(entry),
            // Not requeued although it is this merchant's: an attempt is in flight.
            Some(_) => Err(StoreError::Conflict {
                entity: "webhook delivery",
                detail: format!("delivery {id} is being attempted now; try again shortly"),
            }),
            // Another merchant's delivery, or none, reads as not found.
            None => Err(StoreError::NotFound {
                entity: "webhook delivery",
                key: id.to_string(),
            }),
        }
    }

    /// `merchant_id`'s delivery `id` with its event's facts, if it is this merchant's.
    pub async fn delivery_log_entry(
        &self,
        merchant_id: Uuid,
        id: Uuid,
    ) -> Result<Option<DeliveryLogEntry>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(delivery_log_query(
            "WHERE d.merchant_id = $1 AND d.id = $2",
        )))
        .bind(codec::uuid(&merchant_id))
        .bind(codec::uuid(&id))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(DeliveryLogEntry::decode).transpose()
    }

    /// The delivery row of an event.
    pub async fn delivery_for_event(&self, event_id: Uuid) -> Result<WebhookDelivery> {
        let query = codec::select::<WebhookDelivery>("WHERE event_id = $1");
        codec::fetch_found(query.bind(codec::uuid(&event_id)), &self.pool, event_id).await
    }

    /// The webhook event with this id.
    pub async fn get_webhook_event(&self, id: Uuid) -> Result<WebhookEvent> {
        codec::get_by_id(&mut *self.conn().await?, id).await
    }

    /// The `next_attempt_at` (unix ms) of the oldest pending delivery that is due now, if any:
    /// `now - it` is how far the webhook workers lag behind (metrics).
    pub async fn oldest_due_delivery_at(&self) -> Result<Option<i64>> {
        let row = sqlx::query(
            "SELECT MIN(next_attempt_at) AS t FROM webhook_deliveries \
             WHERE status = 'pending' AND next_attempt_at <= $1",
        )
        .bind(self.now_ms())
        .fetch_one(&self.pool)
        .await?;
        get_opt_i64(&row, "t")
    }

    /// How many deliveries are pending (metrics).
    pub async fn pending_delivery_count(&self) -> Result<i64> {
        let row =
            sqlx::query("SELECT COUNT(*) AS n FROM webhook_deliveries WHERE status = 'pending'")
                .fetch_one(&self.pool)
                .await?;
        get_i64(&row, "n")
    }
}
