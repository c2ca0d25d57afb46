//! The operator database: the seed written through the store, and the results read back.

use std::collections::BTreeMap;

use alloy::primitives::{Address, U256, keccak256};
use eyre::Result;
use sqlx::Row;
use x402_escrow_operator::lifecycle::{Flow, PaymentEvent};
use x402_escrow_operator::store::{NewPayment, PaymentInfoRecord, Store, TransitionExtras};

use super::report::TxKindReport;
use super::*;
use x402_escrow_demo::FEE_BPS;

// ------------------------------------------------------------------------------- seeding

/// Writes `count` settled (`charge` → `captured`) payments for `merchant` straight through the
/// store, 1000 per SQL transaction. They have no outbox rows, so the operator never acts on
/// them; they only make the database big.
pub(super) async fn seed(
    store: &Store,
    merchant: uuid::Uuid,
    chain_id: u64,
    escrow: Address,
    count: u64,
) -> Result<()> {
    let payer = Address::repeat_byte(0x11);
    let receiver = Address::repeat_byte(0x22);
    let token = Address::repeat_byte(0x33);
    let mut done = 0u64;
    while done < count {
        let mut tx = store.begin().await?;
        let end = (done + 1000).min(count);
        for i in done..end {
            let new = NewPayment {
                merchant_id: merchant,
                payment_hash: keccak256(format!("x402-escrow bench seed {i}")),
                chain_id,
                escrow,
                info: PaymentInfoRecord {
                    operator: Address::repeat_byte(0x44),
                    payer,
                    receiver,
                    token,
                    max_amount: u128::from(PRICE),
                    pre_approval_expiry: 2_000_000_000,
                    authorization_expiry: 2_000_000_000,
                    refund_expiry: 2_000_000_000,
                    min_fee_bps: 0,
                    max_fee_bps: FEE_BPS,
                    fee_receiver: Address::ZERO,
                    salt: U256::from(i),
                },
                amount: u128::from(PRICE),
                flow: Flow::Charge,
                request_id: Some(format!("seed-{i}")),
                idempotency_key: Some(format!("seed-{i}")),
                capture_deadline_at: None,
            };
            let (payment, _) = tx.insert_payment(&new, None).await?;
            tx.transition_payment(
                payment.id,
                payment.version,
                &PaymentEvent::ChargeConfirmed {
                    amount: u128::from(PRICE),
                },
                TransitionExtras::default(),
            )
            .await?;
        }
        tx.commit().await?;
        done = end;
    }
    Ok(())
}

// ------------------------------------------------------------------------ reading results

pub(super) async fn statuses(store: &Store, merchant: uuid::Uuid) -> Result<BTreeMap<String, i64>> {
    let rows = sqlx::query(
        "SELECT status, COUNT(*) AS n FROM payments WHERE merchant_id = $1 GROUP BY status",
    )
    .bind(merchant.to_string())
    .fetch_all(store.pool())
    .await?;
    let mut out = BTreeMap::new();
    for row in rows {
        out.insert(
            row.try_get::<String, _>("status")?,
            row.try_get::<i64, _>("n")?,
        );
    }
    Ok(out)
}

/// Bench payments with a final capture (and nothing of theirs still in flight).
pub(super) async fn captured_count(store: &Store, merchant: uuid::Uuid) -> Result<u64> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM payments WHERE merchant_id = $1 AND status = 'captured' AND pending_tx_id IS NULL",
    )
    .bind(merchant.to_string())
    .fetch_one(store.pool())
    .await?;
    Ok(u64::try_from(row.try_get::<i64, _>("n")?).unwrap_or(0))
}

pub(super) async fn tx_kinds(store: &Store) -> Result<Vec<TxKindReport>> {
    // Single rows merged into a batch are `abandoned` by design: counted apart, not as "other".
    let rows = sqlx::query(
        "SELECT kind, status, \
         CAST(CASE WHEN id IN (SELECT source_tx_id FROM chain_tx_members) THEN 1 ELSE 0 END AS BIGINT) AS merged, \
         COUNT(*) AS n, \
         CAST(COALESCE(SUM(gas_used), 0) AS BIGINT) AS gas, \
         CAST(COALESCE(SUM(updated_at - created_at), 0) AS BIGINT) AS ms \
         FROM chain_txs GROUP BY kind, status, merged ORDER BY kind, status",
    )
    .fetch_all(store.pool())
    .await?;
    // Members carried by final batch rows, per kind.
    let members = sqlx::query(
        "SELECT t.kind AS kind, COUNT(*) AS n FROM chain_txs t \
         JOIN chain_tx_members m ON m.batch_tx_id = t.id \
         WHERE t.status = 'final' GROUP BY t.kind",
    )
    .fetch_all(store.pool())
    .await?;
    let mut carried: BTreeMap<String, i64> = BTreeMap::new();
    for row in members {
        carried.insert(row.try_get("kind")?, row.try_get("n")?);
    }
    let mut by_kind: BTreeMap<String, TxKindReport> = BTreeMap::new();
    let mut gas_by_kind: BTreeMap<String, i64> = BTreeMap::new();
    for row in rows {
        let kind: String = row.try_get("kind")?;
        let status: String = row.try_get("status")?;
        let merged: i64 = row.try_get("merged")?;
        let n: i64 = row.try_get("n")?;
        let gas: i64 = row.try_get("gas")?;
        let ms: i64 = row.try_get("ms")?;
        let entry = by_kind.entry(kind.clone()).or_insert(TxKindReport {
            kind: kind.clone(),
            final_count: 0,
            reverted: 0,
            other: 0,
            merged: 0,
            operations: 0,
            gas_mean: 0.0,
            gas_per_operation: 0.0,
            queued_to_final_ms: 0.0,
        });
        match status.as_str() {
            _ if merged == 1 => entry.merged += n,
            "final" => {
                entry.final_count = n;
                gas_by_kind.insert(kind.clone(), gas);
                if n > 0 {
                    entry.gas_mean = gas as f64 / n as f64;
                    entry.queued_to_final_ms = ms as f64 / n as f64;
                }
            }
            "reverted" => entry.reverted += n,
            _ => entry.other += n,
        }
    }
    for entry in by_kind.values_mut() {
        entry.operations = carried
            .get(&entry.kind)
            .copied()
            .unwrap_or(entry.final_count);
        let gas = gas_by_kind.get(&entry.kind).copied().unwrap_or(0);
        if entry.operations > 0 {
            entry.gas_per_operation = gas as f64 / entry.operations as f64;
        }
    }
    Ok(by_kind.into_values().collect())
}
