//! A payment's timeline and webhook deliveries, read from what the store keeps: the payment row
//! (created, last change, last error), its outbox rows (each action requested, its attempts'
//! hashes, the block it was mined in, final or reverted with the decoded reason) and its webhook
//! events (each confirmed transition the merchant is told about) with their deliveries.

use uuid::Uuid;

use super::format;
use super::views::{DeliveryRow, TimelineEntry};
use crate::store::{Payment, Store, StoreError};

/// The timeline of `payment`, oldest first, and its webhook deliveries.
pub async fn read(
    store: &Store,
    payment: &Payment,
    decimals: Option<u8>,
) -> Result<(Vec<TimelineEntry>, Vec<DeliveryRow>), StoreError> {
    let mut entries = vec![entry(
        payment.created_at,
        format!("payment created ({})", initial(payment)),
        format!(
            "{} of {} asked",
            payment.flow.as_str(),
            format::amount(payment.amount, decimals)
        ),
        None,
        None,
    )];
    for tx in store.txs_for_payment(payment.id).await? {
        let hash = match tx.mined_tx_hash {
            Some(h) => Some(format!("{h:#x}")),
            None => store
                .attempts_for(tx.id)
                .await?
                .last()
                .map(|a| format!("{:#x}", a.tx_hash)),
        };
        let amount = tx
            .request
            .get("amount")
            .and_then(|a| a.as_str())
            .and_then(|a| a.parse::<u128>().ok())
            .map(|a| format!("amount {}; ", format::amount(a, decimals)))
            .unwrap_or_default();
        entries.push(entry(
            tx.created_at,
            format!("{} requested", tx.kind.as_str()),
            format!(
                "{amount}transaction now {}, {} attempt(s)",
                tx.status.as_str(),
                tx.attempts
            ),
            hash.clone(),
            None,
        ));
        let settled = matches!(tx.status.as_str(), "final" | "reverted" | "abandoned");
        if tx.block_number.is_some() || settled {
            let mut detail = match tx.succeeded {
                Some(true) => "succeeded".to_owned(),
                Some(false) => "reverted".to_owned(),
                None => String::new(),
            };
            if let Some(reason) = &tx.revert_reason {
                if !detail.is_empty() {
                    detail.push_str(": ");
                }
                detail.push_str(reason);
            }
            entries.push(entry(
                tx.updated_at,
                format!("{} {}", tx.kind.as_str(), tx.status.as_str()),
                detail,
                hash,
                tx.block_number.map(|b| b.to_string()),
            ));
        }
    }
    let mut deliveries = Vec::new();
    for event in store.webhook_events_for_payment(payment.id).await? {
        entries.push(entry(
            event.created_at,
            event.event_type.clone(),
            event
                .payload
                .pointer("/data/status")
                .or_else(|| event.payload.get("status"))
                .and_then(|s| s.as_str())
                .map(|s| format!("status {s}; webhook event recorded"))
                .unwrap_or_else(|| "webhook event recorded".to_owned()),
            None,
            None,
        ));
        deliveries.push(delivery(store, event.id, &event.event_type, event.created_at).await?);
    }
    if let Some(code) = &payment.last_error_code {
        entries.push(entry(
            payment.updated_at,
            format!("last error: {code}"),
            payment.last_error_message.clone().unwrap_or_default(),
            None,
            None,
        ));
    }
    entries.push(entry(
        payment.updated_at,
        format!("now {}", payment.status.as_str()),
        format!("version {}", payment.version),
        None,
        None,
    ));
    // Stable: equal times keep the order above (request before outcome, events before "now").
    entries.sort_by_key(|e| e.at_ms);
    Ok((entries, deliveries))
}

fn initial(payment: &Payment) -> &'static str {
    crate::lifecycle::PaymentStatus::initial(payment.flow).as_str()
}

fn entry(
    at_ms: i64,
    what: String,
    detail: String,
    tx_hash: Option<String>,
    block: Option<String>,
) -> TimelineEntry {
    TimelineEntry {
        at_ms,
        at: format::time(at_ms),
        what,
        detail,
        tx_hash,
        block,
    }
}

async fn delivery(
    store: &Store,
    event_id: Uuid,
    event_type: &str,
    created_at: i64,
) -> Result<DeliveryRow, StoreError> {
    let base = DeliveryRow {
        event_type: event_type.to_owned(),
        event_id: event_id.to_string(),
        created: format::time(created_at),
        status: "none".to_owned(),
        attempts: "0".to_owned(),
        response_status: String::new(),
        last_error: String::new(),
        delivered: String::new(),
    };
    match store.delivery_for_event(event_id).await {
        Ok(d) => Ok(DeliveryRow {
            status: d.status.as_str().to_owned(),
            attempts: d.attempts.to_string(),
            response_status: d.response_status.map(|s| s.to_string()).unwrap_or_default(),
            last_error: d.last_error.map(|e| excerpt(&e)).unwrap_or_default(),
            delivered: d.delivered_at.map(format::time).unwrap_or_default(),
            ..base
        }),
        Err(StoreError::NotFound { .. }) => Ok(base),
        Err(e) => Err(e),
    }
}

/// The first 200 characters of `text`.
fn excerpt(text: &str) -> String {
    match text.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}
