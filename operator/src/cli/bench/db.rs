//! The bench's [`BenchDatabase`] over the operator's store: the database prepared (migrated, the
//! bench merchant, the seed written through the store) and the results read back.
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

use alloy::primitives::{Address, U256, keccak256};
use eyre::{Context, Result};
use sqlx::Row;
use x402_escrow_bench::{
    BenchDatabase, BenchMerchant, BoxError, LaneReport, PRICE, Seed, TxKindReport,
};
use x402_escrow_demo::FEE_BPS;
use x402_escrow_operator::lifecycle::{Flow, PaymentEvent};
use x402_escrow_operator::store::{
    NewMerchant, NewPayment, PaymentInfoRecord, Store, TransitionExtras,
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
            seed(
                &store,
                seed_merchant.id,
                plan.chain_id,
                plan.escrow,
                plan.count,
            )
            .await
            .wrap_err("seeding payments")?;
        }
        let seed_secs = seed_started.elapsed().as_secs_f64();
        self.store = Some(store);
        Ok(BenchMerchant {
            id: bench_merchant.id.to_string(),
            api_key: api_key.expose().to_owned(),
            seed_secs,
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
                     AND t.status IN ('final', 'reverted') AND t.mined_tx_hash IS NOT NULL) AS txs, \
                 (SELECT COUNT(*) FROM payments p WHERE p.chain_id = s.chain_id AND p.operator = s.address) AS payments \
             FROM signers s ORDER BY s.address",
        )
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

/// Writes `count` settled (`charge` → `captured`) payments for `merchant` straight through the
/// store, 1000 per SQL transaction. They have no outbox rows, so the operator never acts on
/// them; they only make the database big.
async fn seed(
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
                    // Settled history: every window closed (2023), so no live payment names
                    // the placeholder operator (the operator refuses to start without the key
                    // of an operator that live payments name).
                    pre_approval_expiry: 1_700_000_000,
                    authorization_expiry: 1_700_000_000,
                    refund_expiry: 1_700_000_000,
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
