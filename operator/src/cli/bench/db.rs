//! The bench's [`BenchDatabase`] over the operator's store: the database prepared (migrated, the
//! bench merchant, the seed written through the store) and the results read back (the run's
//! rows only: the seed's are dated in the past, [`SEED_CLOCK_MS`]).
//!
//! The reads are SQL of their own: the store has no per-merchant status count
//! (`count_payments_by_status` is global) nor per-kind transaction totals.
//!
//! PostgreSQL (`--database postgres://…`): [`BenchDatabase::create`] connects to the given URL
//! only to run `CREATE DATABASE x402_bench_<uuid>` and hands back the same URL naming that
//! database; [`BenchDatabase::close`] drops it (`WITH (FORCE)`, so a connection an operator left
//! behind does not keep it alive). The same isolation as the operator's PostgreSQL tests.

use std::collections::BTreeMap;

use std::time::Instant;

use std::sync::Arc;

use alloy::primitives::{Address, Bytes, U256, keccak256};
use eyre::{Context, Result};
use sqlx::Row;
use x402_escrow_bench::{
    BenchDatabase, BenchMerchant, BoxError, LaneReport, PRICE, Seed, TxKindReport,
};
use x402_escrow_demo::FEE_BPS;
use x402_escrow_operator::lifecycle::{Flow, PaymentEvent};
use x402_escrow_operator::store::{
    MinedReceipt, NewChainTx, NewMerchant, NewPayment, NewTxAttempt, PaymentInfoRecord, Store,
    StoreTx, TransitionExtras, TxKind,
};

/// The operator's store, once prepared.
#[derive(Default)]
pub(super) struct StoreDatabase {
    store: Option<Store>,
    /// The PostgreSQL server URL and the database created on it, to drop in `close`.
    created: Option<(String, String)>,
}

/// `url` with its database name replaced by `name` (query string kept).
fn with_database(url: &str, name: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (url, None),
    };
    let authority = head.find("://").map_or(0, |i| i + 3);
    let path = head[authority..]
        .find('/')
        .map_or(head.len(), |i| i + authority);
    let mut out = format!("{}/{name}", &head[..path]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// Runs one statement on the server of `url` (a connection of its own).
async fn admin(url: &str, sql: String) -> Result<()> {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url)
        .await
        .wrap_err_with(|| format!("connecting to {url}"))?;
    let outcome = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await;
    conn.close().await.ok();
    outcome?;
    Ok(())
}

impl StoreDatabase {
    fn store(&self) -> Result<&Store, BoxError> {
        self.store
            .as_ref()
            .ok_or_else(|| "the bench database is not prepared".into())
    }
}

fn merchant_id(id: &str) -> Result<uuid::Uuid, BoxError> {
    Ok(id.parse::<uuid::Uuid>()?)
}

impl BenchDatabase for StoreDatabase {
    async fn create(&mut self, url: &str) -> Result<String, BoxError> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Ok(url.to_owned());
        }
        // A name of our own making (no quoting needed): `x402_bench_` + 32 hex digits.
        let name = format!("x402_bench_{}", uuid::Uuid::new_v4().simple());
        admin(url, format!("CREATE DATABASE {name}"))
            .await
            .wrap_err("creating the bench's PostgreSQL database")?;
        self.created = Some((url.to_owned(), name.clone()));
        Ok(with_database(url, &name))
    }

    async fn prepare(
        &mut self,
        url: &str,
        receiver: Address,
        plan: Seed,
    ) -> Result<BenchMerchant, BoxError> {
        let store = Store::connect(url).await?;
        store.migrate().await?;
        let (bench_merchant, api_key) = store
            .create_merchant(&NewMerchant {
                name: "bench shop".into(),
                receivers: vec![receiver],
                webhook_url: None,
                webhook_secret: None,
                capture_deadline_secs: 900,
            })
            .await?;
        let seed_started = Instant::now();
        let mut seed_batches = 0;
        if plan.count > 0 {
            let (seed_merchant, _) = store
                .create_merchant(&NewMerchant {
                    name: "seeded history".into(),
                    receivers: vec![Address::repeat_byte(0x22)],
                    webhook_url: None,
                    webhook_secret: None,
                    capture_deadline_secs: 900,
                })
                .await?;
            seed_batches = seed(&store, seed_merchant.id, &plan)
                .await
                .wrap_err("seeding payments")?;
        }
        let seed_secs = seed_started.elapsed().as_secs_f64();
        self.store = Some(store);
        Ok(BenchMerchant {
            id: bench_merchant.id.to_string(),
            api_key: api_key.expose().to_owned(),
            seed_secs,
            seed_batches,
        })
    }

    async fn captured_count(&self, merchant: &str) -> Result<u64, BoxError> {
        Ok(captured_count(self.store()?, merchant_id(merchant)?).await?)
    }

    async fn statuses(&self, merchant: &str) -> Result<BTreeMap<String, i64>, BoxError> {
        Ok(statuses(self.store()?, merchant_id(merchant)?).await?)
    }

    async fn transactions(&self) -> Result<Vec<TxKindReport>, BoxError> {
        Ok(tx_kinds(self.store()?).await?)
    }

    async fn signer_lease_owner(&self) -> Result<Option<String>, BoxError> {
        let row = sqlx::query("SELECT lease_owner FROM signers")
            .fetch_optional(self.store()?.pool())
            .await?;
        Ok(match row {
            Some(row) => row.try_get::<Option<String>, _>("lease_owner")?,
            None => None,
        })
    }

    async fn lanes(&self) -> Result<Vec<LaneReport>, BoxError> {
        let rows = sqlx::query(
            "SELECT s.address, s.lease_owner, \
                 (SELECT COUNT(*) FROM chain_txs t WHERE t.chain_id = s.chain_id AND t.signer = s.address \
                     AND t.status IN ('final', 'reverted') AND t.mined_tx_hash IS NOT NULL \
                     AND t.created_at > $1) AS txs, \
                 (SELECT COUNT(*) FROM payments p WHERE p.chain_id = s.chain_id AND p.operator = s.address \
                     AND p.created_at > $1) AS payments \
             FROM signers s ORDER BY s.address",
        )
        .bind(SEED_CLOCK_MS)
        .fetch_all(self.store()?.pool())
        .await?;
        let mut lanes = Vec::with_capacity(rows.len());
        for row in rows {
            lanes.push(LaneReport {
                signer: row.try_get("address")?,
                lease_owner: row.try_get("lease_owner")?,
                transactions: row.try_get("txs")?,
                payments: row.try_get("payments")?,
            });
        }
        Ok(lanes)
    }

    async fn close(&mut self) {
        if let Some(store) = self.store.take() {
            store.close().await;
        }
        if let Some((url, name)) = self.created.take()
            && let Err(e) =
                admin(&url, format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await
        {
            eprintln!("could not drop the bench database {name}: {e:#}");
        }
    }
}

// ------------------------------------------------------------------------------- seeding

/// The seeded history's clock (unix ms, November 2023): every seeded row is dated then, so the
/// bench's reads of its own run leave them out (`created_at > SEED_CLOCK_MS`), and the lease
/// the seed takes to claim its batches has long expired when the operator starts.
const SEED_CLOCK_MS: i64 = 1_700_000_000_000;

/// [`SEED_CLOCK_MS`] in the chain's unit (seconds): when every seeded payment's windows closed.
const SEED_CLOCK_SECS: u64 = SEED_CLOCK_MS.unsigned_abs() / 1000;

/// Payments per seeded `execute` (about what a loaded run puts in one).
const SEED_BATCH: u64 = 16;

/// Seeded payments per SQL transaction.
const SEED_PER_TRANSACTION: u64 = 1024;

/// The lease owner the seed claims its batches as.
const SEED_OWNER: &str = "bench-seed";

/// Writes `plan.count` settled payments for `merchant` through the store, each as a loaded run
/// leaves it: the payment (`charge` → `captured`) and its single `charge` row merged into an
/// `execute` of `plan.signer` ([`SEED_BATCH`] per batch) that was claimed, signed, mined and
/// made final with the signer's next nonce. Returns the number of batches (the nonces used from
/// `plan.first_nonce` on). The rows are dated [`SEED_CLOCK_MS`] and every payment window closed
/// then, so the operator never acts on them; they make the database as big as that much
/// traffic would, in the tables and indexes the hot path reads.
async fn seed(store: &Store, merchant: uuid::Uuid, plan: &Seed) -> Result<u64> {
    let store = store.clone().with_clock(Arc::new(|| SEED_CLOCK_MS));
    store
        .upsert_signer(plan.chain_id, plan.signer, plan.first_nonce)
        .await?;
    store
        .acquire_lease(plan.chain_id, plan.signer, SEED_OWNER, 60_000)
        .await?
        .ok_or_else(|| eyre::eyre!("the seed could not take the signer's lease"))?;
    let mut batches = 0u64;
    let mut done = 0u64;
    while done < plan.count {
        let mut tx = store.begin().await?;
        let end = (done + SEED_PER_TRANSACTION).min(plan.count);
        while done < end {
            let next = (done + SEED_BATCH).min(end);
            seed_batch(&mut tx, merchant, plan, done..next).await?;
            batches += 1;
            done = next;
        }
        tx.commit().await?;
    }
    store
        .release_lease(plan.chain_id, plan.signer, SEED_OWNER)
        .await?;
    Ok(batches)
}

/// One seeded batch: payments `range`, their singles merged into one `execute`, settled.
async fn seed_batch(
    tx: &mut StoreTx,
    merchant: uuid::Uuid,
    plan: &Seed,
    range: std::ops::Range<u64>,
) -> Result<()> {
    let mut payments = Vec::new();
    let mut singles = Vec::new();
    for i in range.clone() {
        let single = seed_row(plan, TxKind::Charge, plan.escrow);
        let (payment, row) = tx
            .insert_payment(&seed_payment(merchant, plan, i), Some(&single))
            .await?;
        let row = row.ok_or_else(|| eyre::eyre!("seeded payment {i} has no outbox row"))?;
        payments.push(payment.id);
        singles.push(row.id);
    }
    let batch = tx
        .merge_batch(&seed_row(plan, TxKind::Execute, plan.signer), &singles)
        .await?;
    let claimed = tx
        .claim_tx(plan.chain_id, plan.signer, SEED_OWNER, batch.id)
        .await?
        .ok_or_else(|| eyre::eyre!("the seeded batch {} was not claimable", batch.id))?;
    let tx_hash = keccak256(format!("x402-escrow bench seed batch {}", range.start));
    tx.record_attempt(
        claimed.id,
        &NewTxAttempt {
            tx_hash,
            raw_tx: Bytes::from_static(&[0x04]),
            max_fee_per_gas: 2_000_000_000,
            max_priority_fee_per_gas: 1_000_000_000,
        },
    )
    .await?;
    let members = u64::try_from(singles.len()).unwrap_or(u64::MAX);
    tx.mark_mined(
        claimed.id,
        &MinedReceipt {
            tx_hash,
            block_number: claimed.nonce.unwrap_or(0) + 1,
            block_hash: keccak256(tx_hash),
            gas_used: 21_000 + 45_000 * members,
            effective_gas_price: 1_000_000_000,
            succeeded: true,
            revert_reason: None,
        },
    )
    .await?;
    tx.mark_final(claimed.id).await?;
    for id in payments {
        let payment = tx.get_payment(id).await?;
        tx.transition_payment(
            id,
            payment.version,
            &PaymentEvent::ChargeConfirmed {
                amount: u128::from(PRICE),
            },
            TransitionExtras::default(),
        )
        .await?;
    }
    Ok(())
}

/// Seeded payment `i` of `merchant`: a settled `charge` whose windows all closed in 2023.
fn seed_payment(merchant: uuid::Uuid, plan: &Seed, i: u64) -> NewPayment {
    NewPayment {
        merchant_id: merchant,
        payment_hash: keccak256(format!("x402-escrow bench seed {i}")),
        chain_id: plan.chain_id,
        escrow: plan.escrow,
        info: PaymentInfoRecord {
            operator: plan.signer,
            payer: Address::repeat_byte(0x11),
            receiver: Address::repeat_byte(0x22),
            token: Address::repeat_byte(0x33),
            max_amount: u128::from(PRICE),
            // Settled history: every window closed (2023), so no seeded payment is one the
            // operator must still be able to act on.
            pre_approval_expiry: SEED_CLOCK_SECS,
            authorization_expiry: SEED_CLOCK_SECS,
            refund_expiry: SEED_CLOCK_SECS,
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
    }
}

/// A seeded outbox row of `kind` to `to` (the payment, for a single, is set by the insert).
fn seed_row(plan: &Seed, kind: TxKind, to: Address) -> NewChainTx {
    NewChainTx {
        chain_id: plan.chain_id,
        signer: plan.signer,
        kind,
        payment_id: None,
        request: serde_json::json!({ "seeded": true }),
        to,
        calldata: Bytes::from_static(&[0x5e, 0xed, 0x00, 0x00]),
        value: U256::ZERO,
        gas_limit: Some(200_000),
    }
}

// ------------------------------------------------------------------------ reading results

async fn statuses(store: &Store, merchant: uuid::Uuid) -> Result<BTreeMap<String, i64>> {
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
async fn captured_count(store: &Store, merchant: uuid::Uuid) -> Result<u64> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM payments WHERE merchant_id = $1 AND status = 'captured' AND pending_tx_id IS NULL",
    )
    .bind(merchant.to_string())
    .fetch_one(store.pool())
    .await?;
    Ok(u64::try_from(row.try_get::<i64, _>("n")?).unwrap_or(0))
}

async fn tx_kinds(store: &Store) -> Result<Vec<TxKindReport>> {
    // Single rows merged into a batch are `abandoned` by design: counted apart, not as "other".
    let rows = sqlx::query(
        "SELECT kind, status, \
         CAST(CASE WHEN id IN (SELECT source_tx_id FROM chain_tx_members) THEN 1 ELSE 0 END AS BIGINT) AS merged, \
         COUNT(*) AS n, \
         CAST(COALESCE(SUM(gas_used), 0) AS BIGINT) AS gas, \
         CAST(COALESCE(SUM(updated_at - created_at), 0) AS BIGINT) AS ms \
         FROM chain_txs WHERE created_at > $1 GROUP BY kind, status, merged ORDER BY kind, status",
    )
    .bind(SEED_CLOCK_MS)
    .fetch_all(store.pool())
    .await?;
    // Members carried by final batch rows, per kind.
    let members = sqlx::query(
        "SELECT t.kind AS kind, COUNT(*) AS n FROM chain_txs t \
         JOIN chain_tx_members m ON m.batch_tx_id = t.id \
         WHERE t.status = 'final' AND t.created_at > $1 GROUP BY t.kind",
    )
    .bind(SEED_CLOCK_MS)
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
            merged_final: 0,
            operations: 0,
            gas_mean: 0.0,
            gas_per_operation: 0.0,
            queued_to_final_ms: 0.0,
        });
        match status.as_str() {
            _ if merged == 1 => {
                entry.merged += n;
                if status == "final" {
                    entry.merged_final += n;
                }
            }
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
