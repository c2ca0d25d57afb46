//! `x402-escrow bench` (issue 5, "Benchmarks"): a load driver for the whole paid path.
//!
//! Starts the pinned anvil (automine, or interval mining with `--block-time`), deploys the
//! contracts, prepares an operator database (a merchant, optionally `--seed-payments` settled
//! payments written straight through the store), runs the operator as a **child process**
//! (`x402-escrow serve` of this same binary, so its CPU time and peak RSS can be read from
//! `/proc/<pid>`), serves a merchant behind the SDK's [`X402Layer`] in this process, and drives
//! `--buyers` concurrent [`BuyerClient`]s against it:
//!
//! 1. a baseline: the same handler on a free route, same concurrency, same request count;
//! 2. the paid run: `402 → sign → authorize (on chain) → handler → capture`;
//! 3. settlement: waits until every paid request's payment is `captured` with its capture final;
//! 4. optionally (`--anvil-ceiling N`) anvil's own ceiling for the same transactions: N
//!    `authorize` and N `capture` calls signed locally with consecutive nonces and sent without
//!    any operator in between.
//!
//! It reports paid requests per second, p50/p95/p99 latency of both routes and their difference
//! (the latency the payment path adds), the operator's CPU and peak RSS (`VmHWM`), and gas per
//! operation from the stored receipts. Every child process is killed on exit, error or Ctrl-C.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use alloy::consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy::eips::eip2718::Encodable2718;
use alloy::network::TxSignerSync;
use alloy::node_bindings::{Anvil, AnvilInstance};
use alloy::primitives::aliases::{U48, U120};
use alloy::primitives::{Address, Bytes, TxKind, U256, keccak256};
use alloy::providers::ext::AnvilApi;
use alloy::providers::{DynProvider, Provider};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use axum::Router;
use axum::routing::get;
use clap::{Args, ValueEnum};
use eyre::{Context, Result, bail, ensure, eyre};
use serde::Serialize;
use sqlx::Row;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use x402_escrow_bindings::contracts::anvil_path;
use x402_escrow_bindings::deploy::DEFAULT_SALT;
use x402_escrow_bindings::eip3009::{Authorization, ReceiveWithAuthorization};
use x402_escrow_bindings::{AuthCaptureEscrow, Deployment, PaymentInfo, TestUSDC, deploy_all};
use x402_escrow_operator::lifecycle::{Flow, PaymentEvent};
use x402_escrow_operator::store::{
    NewMerchant, NewPayment, PaymentInfoRecord, Store, TransitionExtras,
};
use x402_escrow_sdk::buyer::{AssetLimits, BuyerClient, SpendLedger, SpendPolicy};
use x402_escrow_sdk::escrows::{EscrowDeployment, EscrowRegistry};
use x402_escrow_sdk::merchant::{
    AssetConfig, CaptureMode, OperatorClient, PaymentRoute, PaymentsConfig, X402Layer,
};
use x402_escrow_sdk::{Amount, Network};

use super::x402::demo::{CHAIN_CLOCK_LEAD_SECS, FEE_BPS, USDC, serve_app};

/// The price of one paid request ($0.01).
const PRICE: u64 = USDC / 100;
/// A fresh spend ledger every this many payments per buyer: the ledger is one JSON file
/// rewritten on every change, so a long run would otherwise measure the buyer's file I/O.
const LEDGER_ROTATE: u64 = 200;

/// When the merchant layer captures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BenchCaptureMode {
    /// Request the capture before answering (the layer's default).
    Sync,
    /// Answer first, capture in the background.
    Queued,
}

/// `database.sqlite_synchronous` for the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BenchSynchronous {
    /// fsync every commit.
    Full,
    /// Sync the WAL at checkpoints.
    Normal,
}

/// Options of `x402-escrow bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Concurrent buyers (each its own key, spend policy and ledger).
    #[arg(long, default_value_t = 16)]
    pub buyers: usize,
    /// Paid requests in total (default 1000 unless --duration is given).
    #[arg(long, conflicts_with = "duration")]
    pub requests: Option<u64>,
    /// Run the paid phase (and the baseline) for this many seconds instead.
    #[arg(long)]
    pub duration: Option<u64>,
    /// Anvil block time in seconds; 0 = automine (a block per transaction).
    #[arg(long, default_value_t = 0)]
    pub block_time: u64,
    /// Store this many settled (captured) payments in the operator's database before the run,
    /// directly through the store (for RSS and query cost with a big database).
    #[arg(long, default_value_t = 0)]
    pub seed_payments: u64,
    /// When the merchant layer captures.
    #[arg(long, value_enum, default_value_t = BenchCaptureMode::Sync)]
    pub capture_mode: BenchCaptureMode,
    /// The operator's chain poll interval (`chain.poll_interval_ms`).
    #[arg(long, default_value_t = 100)]
    pub poll_interval_ms: u64,
    /// The operator's database pool size (`database.max_connections`).
    #[arg(long, default_value_t = 5)]
    pub db_connections: u32,
    /// The operator's `database.sqlite_synchronous`: `full` (fsync every commit) or `normal`.
    #[arg(long, value_enum, default_value_t = BenchSynchronous::Full)]
    pub sqlite_synchronous: BenchSynchronous,
    /// Afterwards, send this many `authorize` and as many `capture` transactions straight to
    /// anvil (no operator) to measure the node's own ceiling for them; 0 = skip.
    #[arg(long, default_value_t = 0)]
    pub anvil_ceiling: u64,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Keep the scratch directory (database, operator log) instead of deleting it.
    #[arg(long)]
    pub keep_dir: bool,
    /// Use this anvil binary instead of the pinned toolchain's.
    #[arg(long, env = "X402_ANVIL")]
    pub anvil: Option<PathBuf>,
}

// ------------------------------------------------------------------------------ the report

/// Latency percentiles, milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Percentiles {
    /// Samples.
    pub count: usize,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Percentiles {
    fn of(samples: &mut [Duration]) -> Percentiles {
        if samples.is_empty() {
            return Percentiles::default();
        }
        samples.sort_unstable();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let at = |q: f64| {
            let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
            ms(samples[rank - 1])
        };
        Percentiles {
            count: samples.len(),
            mean: samples.iter().map(|d| ms(*d)).sum::<f64>() / samples.len() as f64,
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
            max: ms(samples[samples.len() - 1]),
        }
    }
}

/// One transaction kind's totals from the operator's outbox.
#[derive(Debug, Clone, Serialize)]
pub struct TxKindReport {
    /// `authorize`, `capture`, …
    pub kind: String,
    /// Final (succeeded) rows.
    pub final_count: i64,
    /// Reverted rows.
    pub reverted: i64,
    /// Other rows (still in flight, or abandoned without being merged into a batch).
    pub other: i64,
    /// Single rows merged into a `capture_batch` / `void_batch` row (sent as part of it).
    pub merged: i64,
    /// Payment operations the final rows carried: one per single row, one per member of a batch.
    pub operations: i64,
    /// Mean gas used of the final rows.
    pub gas_mean: f64,
    /// Gas used of the final rows per payment operation (a batch's gas shared by its members).
    pub gas_per_operation: f64,
    /// Mean time from outbox row to final, ms.
    pub queued_to_final_ms: f64,
}

/// The node's own rate for the same transactions (`--anvil-ceiling`).
#[derive(Debug, Clone, Serialize)]
pub struct CeilingReport {
    /// Transactions per phase.
    pub count: u64,
    /// `authorize` transactions mined per second.
    pub authorize_tx_per_sec: f64,
    /// `capture` transactions mined per second.
    pub capture_tx_per_sec: f64,
    /// authorize + capture pairs per second (the bound on paid requests per second).
    pub pairs_per_sec: f64,
}

/// Everything `x402-escrow bench` measured.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// UTC time of the run (RFC 3339).
    pub started_at: String,
    /// `uptime`'s load averages at the start.
    pub load_before: String,
    /// `uptime`'s load averages at the end.
    pub load_after: String,
    /// CPUs.
    pub nproc: usize,
    /// Concurrent buyers.
    pub buyers: usize,
    /// 0 = automine.
    pub block_time: u64,
    /// Pre-stored payments.
    pub seed_payments: u64,
    /// Sync or queued capture.
    pub capture_mode: BenchCaptureMode,
    /// Operator poll interval, ms.
    pub poll_interval_ms: u64,
    /// The operator's SQLite `synchronous` setting.
    pub sqlite_synchronous: BenchSynchronous,
    /// Seconds spent seeding the database.
    pub seed_secs: f64,
    /// Free requests answered 200.
    pub baseline_ok: u64,
    /// Free requests per second.
    pub baseline_rps: f64,
    /// Latency of the free route.
    pub baseline_latency_ms: Percentiles,
    /// Paid requests answered 200 with a payment.
    pub paid_ok: u64,
    /// Paid requests that failed (any other outcome).
    pub paid_failed: u64,
    /// The first few failures.
    pub failures: Vec<String>,
    /// Wall time of the paid phase, s.
    pub paid_secs: f64,
    /// Paid requests answered per second.
    pub paid_rps: f64,
    /// Latency of the paid route (whole buyer round trip: 402, sign, paid request).
    pub paid_latency_ms: Percentiles,
    /// paid − baseline at p50 / p95 / p99.
    pub added_latency_ms: Percentiles,
    /// Bench payments captured with a final capture at the end.
    pub captured: u64,
    /// From the start of the paid phase until the last capture was final, s.
    pub settled_secs: f64,
    /// Captured payments per second over `settled_secs`.
    pub settled_per_sec: f64,
    /// Payment statuses of the bench's merchant at the end.
    pub statuses: BTreeMap<String, i64>,
    /// The operator's CPU time during the paid phase, seconds (user + system).
    pub operator_cpu_secs: f64,
    /// The operator's CPU use during the paid phase, % of one core.
    pub operator_cpu_percent: f64,
    /// The operator's peak resident set (`VmHWM`), MiB.
    pub operator_peak_rss_mib: f64,
    /// The operator's resident set at the end (`VmRSS`), MiB.
    pub operator_rss_mib: f64,
    /// The operator's RSS after start-up, before any load (MiB).
    pub operator_idle_rss_mib: f64,
    /// Per transaction kind.
    pub transactions: Vec<TxKindReport>,
    /// Anvil's own ceiling, when measured.
    pub anvil_ceiling: Option<CeilingReport>,
}

// --------------------------------------------------------------------------- the children

/// The operator child process: killed (SIGKILL) on drop, so an error or Ctrl-C anywhere in the
/// bench never leaves it behind.
struct OperatorProcess {
    child: Child,
    pid: u32,
    url: String,
}

impl OperatorProcess {
    async fn start(exe: &Path, config: &Path, signer_key: &str, log: &Path) -> Result<Self> {
        let log_file =
            std::fs::File::create(log).wrap_err_with(|| format!("creating {}", log.display()))?;
        let mut child = Command::new(exe)
            .arg("--config")
            .arg(config)
            .arg("serve")
            .env("X402_SIGNER_KEY", signer_key)
            .env(
                "RUST_LOG",
                std::env::var("X402_BENCH_OPERATOR_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true)
            .spawn()
            .wrap_err_with(|| format!("starting {} serve", exe.display()))?;
        let pid = child
            .id()
            .ok_or_else(|| eyre!("the operator exited at once"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| eyre!("no stdout from the operator"))?;
        let mut lines = BufReader::new(stdout).lines();
        let wait = async {
            while let Some(line) = lines.next_line().await? {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let url = rest
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    return Ok::<_, std::io::Error>(Some(url));
                }
            }
            Ok(None)
        };
        let url = match tokio::time::timeout(Duration::from_secs(60), wait).await {
            Ok(Ok(Some(url))) => url,
            Ok(Ok(None)) | Ok(Err(_)) => bail!(
                "the operator stopped before listening; see {}",
                log.display()
            ),
            Err(_) => bail!(
                "the operator did not start within 60 s; see {}",
                log.display()
            ),
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(OperatorProcess { child, pid, url })
    }

    /// user + system CPU seconds so far (`/proc/<pid>/stat` fields 14 and 15).
    fn cpu_secs(&self) -> Result<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid))
            .wrap_err("reading the operator's /proc/<pid>/stat")?;
        // The command name (field 2) is in parentheses and may hold spaces.
        let after = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest)
            .ok_or_else(|| eyre!("unexpected /proc/<pid>/stat"))?;
        let fields: Vec<&str> = after.split_whitespace().collect();
        // `after` starts at field 3 (state): utime is field 14 → index 11.
        let ticks = |i: usize| -> Result<f64> {
            fields
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .ok_or_else(|| eyre!("unexpected /proc/<pid>/stat"))
        };
        Ok((ticks(11)? + ticks(12)?) / clock_ticks())
    }

    /// (`VmHWM`, `VmRSS`) in MiB.
    fn memory_mib(&self) -> Result<(f64, f64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .wrap_err("reading the operator's /proc/<pid>/status")?;
        let field = |name: &str| -> Result<f64> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
                .map(|kb| kb / 1024.0)
                .ok_or_else(|| eyre!("no {name} in /proc/<pid>/status"))
        };
        Ok((field("VmHWM:")?, field("VmRSS:")?))
    }

    /// SIGTERM (graceful shutdown), then SIGKILL after 10 s.
    async fn stop(mut self) {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status();
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// Kernel clock ticks per second (`getconf CLK_TCK`; 100 on every common Linux).
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// A scratch directory removed on drop (unless kept).
struct Scratch {
    path: PathBuf,
    keep: bool,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("kept {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

// ------------------------------------------------------------------------------- the chain

/// Buyer `i`'s key: deterministic, so runs are reproducible.
fn buyer_key(i: usize) -> Result<PrivateKeySigner> {
    PrivateKeySigner::from_bytes(&keccak256(format!("x402-escrow bench buyer {i}")))
        .map_err(|e| eyre!("buyer key: {e}"))
}

/// Mints `amount` to each address; sends every mint first, then waits for the receipts.
async fn mint_all(
    provider: &DynProvider,
    token: Address,
    to: &[Address],
    amount: U256,
) -> Result<()> {
    let usdc = TestUSDC::new(token, provider.clone());
    let mut pending = Vec::new();
    for who in to {
        pending.push(
            usdc.mint(*who, amount)
                .send()
                .await
                .wrap_err("minting test USDC")?,
        );
    }
    for p in pending {
        p.get_receipt().await.wrap_err("minting test USDC")?;
    }
    Ok(())
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

// ----------------------------------------------------------------------------- load phases

/// What the buyers do: the same total work split over `buyers` tasks.
#[derive(Clone, Copy)]
enum Budget {
    Requests(u64),
    Until(Instant),
}

struct PhaseResult {
    ok: u64,
    failed: u64,
    failures: Vec<String>,
    latencies: Vec<Duration>,
    elapsed: Duration,
}

/// Runs `one(buyer, n)` from `buyers` tasks until the budget is spent.
async fn run_phase<F, Fut>(buyers: usize, budget: Budget, one: F) -> Result<PhaseResult>
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = std::result::Result<(), String>> + Send,
{
    let one = Arc::new(one);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for b in 0..buyers {
        let one = one.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut failures = Vec::new();
            let mut failed = 0u64;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                match budget {
                    Budget::Requests(total) if n >= total => break,
                    Budget::Until(deadline) if Instant::now() >= deadline => break,
                    _ => {}
                }
                let t = Instant::now();
                match one(b, n).await {
                    Ok(()) => lat.push(t.elapsed()),
                    Err(e) => {
                        failed += 1;
                        if failures.len() < 5 {
                            failures.push(e);
                        }
                    }
                }
            }
            (lat, failed, failures)
        }));
    }
    let mut result = PhaseResult {
        ok: 0,
        failed: 0,
        failures: Vec::new(),
        latencies: Vec::new(),
        elapsed: Duration::ZERO,
    };
    for task in tasks {
        let (lat, failed, failures) = task.await.wrap_err("a buyer task panicked")?;
        result.ok += lat.len() as u64;
        result.latencies.extend(lat);
        result.failed += failed;
        for f in failures {
            if result.failures.len() < 5 {
                result.failures.push(f);
            }
        }
    }
    result.elapsed = started.elapsed();
    Ok(result)
}

/// One buyer: its key, policy and a ledger it replaces every [`LEDGER_ROTATE`] payments.
struct Buyer {
    signer: PrivateKeySigner,
    policy: SpendPolicy,
    registry: EscrowRegistry,
    http: reqwest::Client,
    dir: PathBuf,
    index: usize,
    state: tokio::sync::Mutex<(u64, Option<BuyerClient>)>,
}

impl Buyer {
    async fn client(&self) -> Result<BuyerClient> {
        let mut state = self.state.lock().await;
        let (used, client) = &mut *state;
        if client.is_none() || *used % LEDGER_ROTATE == 0 {
            let path = self.dir.join(format!(
                "buyer-{}-ledger-{}.json",
                self.index,
                *used / LEDGER_ROTATE
            ));
            let ledger = SpendLedger::open(&path).map_err(|e| eyre!("spend ledger: {e}"))?;
            *client = Some(
                BuyerClient::new(
                    self.http.clone(),
                    self.signer.clone(),
                    self.policy.clone(),
                    ledger,
                )
                .with_registry(self.registry.clone()),
            );
        }
        *used += 1;
        client.clone().ok_or_else(|| eyre!("no buyer client"))
    }
}

async fn paid_request(
    buyer: &Buyer,
    url: &str,
    request_id: String,
) -> std::result::Result<(), String> {
    let client = buyer.client().await.map_err(|e| e.to_string())?;
    let request = client
        .http()
        .get(url)
        .header("x-request-id", request_id)
        .build()
        .map_err(|e| e.to_string())?;
    let paid = client
        .send(request)
        .await
        .map_err(|e| format!("buyer: {e}"))?;
    let status = paid.response.status();
    let _ = paid.response.bytes().await;
    if status != reqwest::StatusCode::OK {
        return Err(format!("HTTP {status}"));
    }
    if paid.payment.is_none() {
        return Err("answered without asking for payment".into());
    }
    Ok(())
}

async fn free_request(http: &reqwest::Client, url: &str) -> std::result::Result<(), String> {
    let response = http.get(url).send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    let _ = response.bytes().await;
    if status != reqwest::StatusCode::OK {
        return Err(format!("HTTP {status}"));
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

// ------------------------------------------------------------------------- anvil ceiling

/// Signs `count` authorize calls (then as many captures) with consecutive nonces from a dev
/// key of its own, sends each phase as fast as the node takes them and times until the last
/// receipt: what anvil alone sustains for the operator's transactions.
async fn anvil_ceiling(
    anvil: &AnvilInstance,
    deployment: &Deployment,
    token_domain: &alloy::sol_types::Eip712Domain,
    payer: &PrivateKeySigner,
    count: u64,
) -> Result<CeilingReport> {
    let (operator, provider) = super::x402::dev_wallet(anvil, 5)?;
    let chain_id = deployment.chain_id;
    let escrow = deployment.auth_capture_escrow;
    let collector = deployment.erc3009_payment_collector;
    let now = provider
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await?
        .ok_or_else(|| eyre!("no latest block"))?
        .header
        .timestamp;
    let base_fee = provider.get_gas_price().await?;
    let mut infos = Vec::new();
    let mut authorize = Vec::new();
    for i in 0..count {
        let info = PaymentInfo {
            operator: operator.address(),
            payer: payer.address(),
            receiver: Address::repeat_byte(0x55),
            token: deployment
                .token
                .as_ref()
                .map(|t| t.address)
                .ok_or_else(|| eyre!("no test token"))?,
            maxAmount: U120::from(PRICE),
            preApprovalExpiry: U48::from(now + 3600),
            authorizationExpiry: U48::from(now + 7200),
            refundExpiry: U48::from(now + 86400),
            minFeeBps: 0,
            maxFeeBps: FEE_BPS,
            feeReceiver: Address::repeat_byte(0x66),
            salt: U256::from(i) + U256::from(1u64 << 40),
        };
        let signature = ReceiveWithAuthorization::for_payment(&info, collector, chain_id, escrow)
            .sign(payer, token_domain)?;
        authorize.push(
            AuthCaptureEscrow::authorizeCall {
                paymentInfo: info.clone(),
                amount: U256::from(PRICE),
                tokenCollector: collector,
                collectorData: signature,
            }
            .abi_encode(),
        );
        infos.push(info);
    }
    let capture: Vec<Vec<u8>> = infos
        .iter()
        .map(|info| {
            AuthCaptureEscrow::captureCall {
                paymentInfo: info.clone(),
                amount: U256::from(PRICE),
                feeBps: FEE_BPS,
                feeReceiver: Address::repeat_byte(0x66),
            }
            .abi_encode()
        })
        .collect();
    let mut nonce = provider.get_transaction_count(operator.address()).await?;
    let mut rate = |calls: &[Vec<u8>], gas: u64| -> Result<Vec<Bytes>> {
        calls
            .iter()
            .map(|input| {
                let mut tx = TxEip1559 {
                    chain_id,
                    nonce,
                    gas_limit: gas,
                    max_fee_per_gas: base_fee * 3,
                    max_priority_fee_per_gas: 1,
                    to: TxKind::Call(escrow),
                    value: U256::ZERO,
                    access_list: Default::default(),
                    input: Bytes::from(input.clone()),
                };
                nonce += 1;
                let signature = operator.sign_transaction_sync(&mut tx)?;
                Ok(TxEnvelope::from(tx.into_signed(signature))
                    .encoded_2718()
                    .into())
            })
            .collect()
    };
    let raw_authorize = rate(&authorize, 400_000)?;
    let raw_capture = rate(&capture, 200_000)?;
    let send_all = |raw: Vec<Bytes>| {
        let provider = provider.clone();
        async move {
            let started = Instant::now();
            let last = raw.last().map(keccak256).unwrap_or_default();
            // Eight sends in flight, in nonce order: what a pipelining relayer could do.
            let mut in_flight = std::collections::VecDeque::new();
            for bytes in raw {
                let provider = provider.clone();
                in_flight.push_back(tokio::spawn(async move {
                    provider.send_raw_transaction(&bytes).await.map(|_| ())
                }));
                if in_flight.len() >= 8
                    && let Some(sent) = in_flight.pop_front()
                {
                    sent.await??;
                }
            }
            for sent in in_flight {
                sent.await??;
            }
            let deadline = Instant::now() + Duration::from_secs(300);
            loop {
                if let Some(receipt) = provider.get_transaction_receipt(last).await? {
                    ensure!(receipt.status(), "a ceiling transaction reverted");
                    break;
                }
                ensure!(Instant::now() < deadline, "ceiling transactions not mined");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok::<_, eyre::Report>(started.elapsed())
        }
    };
    let a = send_all(raw_authorize).await?;
    let c = send_all(raw_capture).await?;
    let per_sec = |d: Duration| count as f64 / d.as_secs_f64().max(1e-9);
    Ok(CeilingReport {
        count,
        authorize_tx_per_sec: per_sec(a),
        capture_tx_per_sec: per_sec(c),
        pairs_per_sec: per_sec(a + c),
    })
}

// ---------------------------------------------------------------------------------- run

/// Runs the whole benchmark (see the module docs).
pub async fn run(args: BenchArgs) -> Result<BenchReport> {
    ensure!(args.buyers > 0, "--buyers must be at least 1");
    let started_at = chrono_now();
    let load_before = load_average();
    let budget_requests = args.requests.unwrap_or(1000);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let scratch = Scratch {
        path: std::env::temp_dir().join(format!("x402-bench-{}-{nanos}", std::process::id())),
        keep: args.keep_dir,
    };
    std::fs::create_dir_all(&scratch.path)
        .wrap_err_with(|| format!("creating {}", scratch.path.display()))?;
    let dir = scratch.path.clone();

    // Chain: automine while deploying and funding, then the requested block time.
    let anvil_bin = args.anvil.clone().unwrap_or_else(anvil_path);
    let mut anvil = Anvil::at(&anvil_bin)
        .keep_stdout()
        .try_spawn()
        .wrap_err_with(|| format!("could not start anvil at {}", anvil_bin.display()))?;
    // Anvil logs every request to stdout; drain it so a closed pipe never stops (or crashes) it.
    if let Some(mut stdout) = anvil.child_mut().stdout.take() {
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    }
    let (deployer, deployer_provider) = super::x402::dev_wallet(&anvil, 0)?;
    let (operator_key, _) = super::x402::dev_wallet(&anvil, 1)?;
    let merchant = super::x402::dev_wallet(&anvil, 3)?.0.address();
    let fee_receiver = super::x402::dev_wallet(&anvil, 4)?.0.address();
    let deployment = deploy_all(&deployer_provider, deployer.address(), DEFAULT_SALT, true)
        .await
        .wrap_err("deploying the contracts")?;
    let token = deployment
        .token
        .clone()
        .ok_or_else(|| eyre!("a development deployment has a test token"))?;
    let buyer_keys = (0..args.buyers)
        .map(buyer_key)
        .collect::<Result<Vec<_>>>()?;
    let ceiling_payer = buyer_key(usize::MAX)?;
    let mut funded: Vec<Address> = buyer_keys.iter().map(|k| k.address()).collect();
    funded.push(ceiling_payer.address());
    mint_all(
        &deployer_provider,
        token.address,
        &funded,
        U256::from(1_000_000 * USDC),
    )
    .await?;
    // See `Stack::start` in the demo: the operator compares the buyer's wall-clock validBefore
    // with the latest block's time, so the chain's clock runs a little ahead.
    deployer_provider
        .anvil_increase_time(CHAIN_CLOCK_LEAD_SECS)
        .await
        .wrap_err("advancing anvil's clock")?;
    deployer_provider.evm_mine(None).await?;
    if args.block_time > 0 {
        deployer_provider
            .anvil_set_interval_mining(args.block_time)
            .await
            .wrap_err("switching anvil to interval mining")?;
    }

    // The operator's database: migrated, a merchant, the seed.
    let db_path = dir.join("operator.db");
    let db_url = format!("sqlite://{}?mode=rwc", db_path.display());
    let store = Store::connect(&db_url).await?;
    store.migrate().await?;
    let (bench_merchant, api_key) = store
        .create_merchant(&NewMerchant {
            name: "bench shop".into(),
            receivers: vec![merchant],
            webhook_url: None,
            webhook_secret: None,
            capture_deadline_secs: 900,
        })
        .await?;
    let seed_started = Instant::now();
    if args.seed_payments > 0 {
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
            deployment.chain_id,
            deployment.auth_capture_escrow,
            args.seed_payments,
        )
        .await
        .wrap_err("seeding payments")?;
    }
    let seed_secs = seed_started.elapsed().as_secs_f64();

    let deployments = dir.join(format!("{}.json", deployment.chain_id));
    deployment.save(&deployments)?;
    let config_path = dir.join("operator.toml");
    let config = format!(
        r#"listen = "127.0.0.1:0"
[database]
url = "{db_url}"
max_connections = {db_connections}
{synchronous}
[chain]
rpc_url = "{rpc}"
chain_id = {chain_id}
deployments = "{deployments}"
confirmations = 1
poll_interval_ms = {poll}
[fees]
bps = {FEE_BPS}
receiver = "{fee_receiver}"
[auto_void]
expiry_margin_secs = 60
"#,
        db_connections = args.db_connections,
        // Only written when not the default, so the command also drives older operators.
        synchronous = match args.sqlite_synchronous {
            BenchSynchronous::Full => "",
            BenchSynchronous::Normal => "sqlite_synchronous = \"normal\"",
        },
        rpc = anvil.endpoint(),
        chain_id = deployment.chain_id,
        deployments = deployments.display(),
        poll = args.poll_interval_ms,
    );
    std::fs::write(&config_path, config)?;
    let exe = std::env::current_exe().wrap_err("locating this executable")?;
    let operator = OperatorProcess::start(
        &exe,
        &config_path,
        &hex::encode(operator_key.to_bytes()),
        &dir.join("operator.log"),
    )
    .await?;
    let operator_idle_rss_mib = operator.memory_mib()?.1;

    // The merchant: the same handler free and paid.
    let mut payments_config = PaymentsConfig::new(
        Network::eip155(deployment.chain_id),
        AssetConfig::new(
            token.address,
            token.name.clone(),
            token.version.clone(),
            token.decimals,
        ),
        merchant,
        operator_key.address(),
    );
    let registry = EscrowRegistry::only(EscrowDeployment::from(&deployment));
    payments_config.escrow = Some(deployment.auth_capture_escrow);
    payments_config.registry = registry.clone();
    payments_config.fee_recipient = fee_receiver;
    payments_config.max_fee_bps = FEE_BPS;
    payments_config.capture_mode = match args.capture_mode {
        BenchCaptureMode::Sync => CaptureMode::Sync,
        BenchCaptureMode::Queued => CaptureMode::Queued,
    };
    let layer = X402Layer::new(
        OperatorClient::new(operator.url.clone(), api_key.expose().to_owned()),
        payments_config,
    );
    async fn handler() -> axum::Json<serde_json::Value> {
        axum::Json(serde_json::json!({"city": "Lisbon", "forecast": "sunny", "celsius": 24}))
    }
    let app = Router::new().route("/free", get(handler)).route(
        "/paid",
        get(handler).layer(layer.paid(PaymentRoute::new("$0.01").description("Benchmark"))),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let merchant_url = format!("http://{}", listener.local_addr()?);
    let stop_merchant = serve_app(listener, app);

    let budget = |now: Instant| match args.duration {
        Some(secs) => Budget::Until(now + Duration::from_secs(secs)),
        None => Budget::Requests(budget_requests),
    };

    // Baseline: the free route.
    let http = reqwest::Client::new();
    let free_url = format!("{merchant_url}/free");
    let baseline = {
        let http = http.clone();
        let url = free_url.clone();
        run_phase(args.buyers, budget(Instant::now()), move |_, _| {
            let http = http.clone();
            let url = url.clone();
            async move { free_request(&http, &url).await }
        })
        .await?
    };

    // Paid.
    let mut limits = AssetLimits::new(Network::eip155(deployment.chain_id), token.address);
    limits.max_per_payment = Some(Amount::from(PRICE));
    let policy = SpendPolicy::new(vec![limits]);
    let buyers: Arc<Vec<Buyer>> = Arc::new(
        buyer_keys
            .iter()
            .enumerate()
            .map(|(index, signer)| Buyer {
                signer: signer.clone(),
                policy: policy.clone(),
                registry: registry.clone(),
                http: http.clone(),
                dir: dir.clone(),
                index,
                state: tokio::sync::Mutex::new((0, None)),
            })
            .collect(),
    );
    let cpu_before = operator.cpu_secs()?;
    let paid_started = Instant::now();
    let paid_url = format!("{merchant_url}/paid");
    let paid = {
        let buyers = buyers.clone();
        let url = paid_url.clone();
        run_phase(args.buyers, budget(paid_started), move |b, n| {
            let buyers = buyers.clone();
            let url = url.clone();
            async move { paid_request(&buyers[b], &url, format!("bench-{n}")).await }
        })
        .await?
    };
    let paid_elapsed = paid.elapsed;

    // Settlement: every answered payment captured, its capture final.
    let deadline = Instant::now() + Duration::from_secs(120 + 4 * args.block_time * 10);
    let mut captured = captured_count(&store, bench_merchant.id).await?;
    while captured < paid.ok && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        captured = captured_count(&store, bench_merchant.id).await?;
    }
    let settled = paid_started.elapsed();
    let cpu_after = operator.cpu_secs()?;
    let (peak_rss, rss) = operator.memory_mib()?;
    let statuses = statuses(&store, bench_merchant.id).await?;
    let transactions = tx_kinds(&store).await?;

    let _ = stop_merchant.send(());
    operator.stop().await;
    store.close().await;

    let anvil_ceiling = if args.anvil_ceiling > 0 {
        Some(
            anvil_ceiling(
                &anvil,
                &deployment,
                &token.domain(deployment.chain_id),
                &ceiling_payer,
                args.anvil_ceiling,
            )
            .await
            .wrap_err("measuring anvil's ceiling")?,
        )
    } else {
        None
    };
    // The wallet provider's block poller stops with it, before the node goes away.
    drop(deployer_provider);
    drop(anvil);

    let mut baseline_lat = baseline.latencies;
    let mut paid_lat = paid.latencies;
    let baseline_latency_ms = Percentiles::of(&mut baseline_lat);
    let paid_latency_ms = Percentiles::of(&mut paid_lat);
    let added_latency_ms = Percentiles {
        count: paid_latency_ms.count,
        mean: paid_latency_ms.mean - baseline_latency_ms.mean,
        p50: paid_latency_ms.p50 - baseline_latency_ms.p50,
        p95: paid_latency_ms.p95 - baseline_latency_ms.p95,
        p99: paid_latency_ms.p99 - baseline_latency_ms.p99,
        max: paid_latency_ms.max - baseline_latency_ms.max,
    };
    let cpu = cpu_after - cpu_before;
    Ok(BenchReport {
        started_at,
        load_before,
        load_after: load_average(),
        nproc: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        buyers: args.buyers,
        block_time: args.block_time,
        seed_payments: args.seed_payments,
        capture_mode: args.capture_mode,
        poll_interval_ms: args.poll_interval_ms,
        sqlite_synchronous: args.sqlite_synchronous,
        seed_secs,
        baseline_ok: baseline.ok,
        baseline_rps: baseline.ok as f64 / baseline.elapsed.as_secs_f64().max(1e-9),
        baseline_latency_ms,
        paid_ok: paid.ok,
        paid_failed: paid.failed,
        failures: paid.failures,
        paid_secs: paid_elapsed.as_secs_f64(),
        paid_rps: paid.ok as f64 / paid_elapsed.as_secs_f64().max(1e-9),
        paid_latency_ms,
        added_latency_ms,
        captured,
        settled_secs: settled.as_secs_f64(),
        settled_per_sec: captured as f64 / settled.as_secs_f64().max(1e-9),
        statuses,
        operator_cpu_secs: cpu,
        operator_cpu_percent: 100.0 * cpu / settled.as_secs_f64().max(1e-9),
        operator_peak_rss_mib: peak_rss,
        operator_rss_mib: rss,
        operator_idle_rss_mib,
        transactions,
        anvil_ceiling,
    })
}

/// The current UTC time, RFC 3339 (seconds).
fn chrono_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

impl BenchReport {
    /// The readable table.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        let mode = if self.block_time == 0 {
            "automine".to_owned()
        } else {
            format!("{} s blocks", self.block_time)
        };
        line(format!(
            "x402-escrow bench — {} buyers, {mode}, capture {:?}, {} seeded payments, poll {} ms, sqlite synchronous {:?}",
            self.buyers,
            self.capture_mode,
            self.seed_payments,
            self.poll_interval_ms,
            self.sqlite_synchronous
        ));
        line(format!(
            "started {} on {} CPUs, load {} → {}",
            self.started_at, self.nproc, self.load_before, self.load_after
        ));
        if self.seed_payments > 0 {
            line(format!("seeding took {:.1} s", self.seed_secs));
        }
        line(String::new());
        line(format!(
            "{:<26} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "", "count", "mean ms", "p50 ms", "p95 ms", "p99 ms", "max ms"
        ));
        let row = |name: &str, p: &Percentiles| {
            format!(
                "{name:<26} {:>8} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
                p.count, p.mean, p.p50, p.p95, p.p99, p.max
            )
        };
        line(row("free route (baseline)", &self.baseline_latency_ms));
        line(row("paid route", &self.paid_latency_ms));
        line(row("added by the payment path", &self.added_latency_ms));
        line(String::new());
        line(format!(
            "baseline         {:>10.1} requests/s",
            self.baseline_rps
        ));
        line(format!(
            "paid             {:>10.1} paid requests/s ({} ok, {} failed in {:.2} s)",
            self.paid_rps, self.paid_ok, self.paid_failed, self.paid_secs
        ));
        line(format!(
            "settled          {:>10.1} captures/s ({} captured, last final {:.2} s after the start)",
            self.settled_per_sec, self.captured, self.settled_secs
        ));
        line(format!(
            "operator CPU     {:>10.1} % of one core ({:.2} s user+sys until settled)",
            self.operator_cpu_percent, self.operator_cpu_secs
        ));
        line(format!(
            "operator RSS     {:>10.1} MiB peak (VmHWM); {:.1} MiB at the end, {:.1} MiB idle after start",
            self.operator_peak_rss_mib, self.operator_rss_mib, self.operator_idle_rss_mib
        ));
        let statuses = self
            .statuses
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ");
        line(format!("statuses         {statuses}"));
        line(String::new());
        line(format!(
            "{:<14} {:>7} {:>9} {:>7} {:>7} {:>6} {:>9} {:>9} {:>16}",
            "tx kind",
            "final",
            "reverted",
            "other",
            "merged",
            "ops",
            "gas/tx",
            "gas/op",
            "queued→final ms"
        ));
        for t in &self.transactions {
            line(format!(
                "{:<14} {:>7} {:>9} {:>7} {:>7} {:>6} {:>9.0} {:>9.0} {:>16.1}",
                t.kind,
                t.final_count,
                t.reverted,
                t.other,
                t.merged,
                t.operations,
                t.gas_mean,
                t.gas_per_operation,
                t.queued_to_final_ms
            ));
        }
        if let Some(c) = &self.anvil_ceiling {
            line(String::new());
            line(format!(
                "anvil alone      {:.0} authorize/s, {:.0} capture/s → {:.0} authorize+capture pairs/s ({} each, 8 in flight)",
                c.authorize_tx_per_sec, c.capture_tx_per_sec, c.pairs_per_sec, c.count
            ));
        }
        for f in &self.failures {
            line(format!("failure: {f}"));
        }
        out
    }
}

/// `x402-escrow bench`: runs (stopping everything on Ctrl-C) and prints.
pub async fn main(args: BenchArgs) -> Result<()> {
    let json = args.json;
    if !json {
        eprintln!("starting anvil, deploying, starting the operator and the merchant…");
    }
    let report = tokio::select! {
        report = run(args) => report?,
        _ = tokio::signal::ctrl_c() => bail!("interrupted"),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    ensure!(
        report.paid_failed == 0 && report.captured == report.paid_ok,
        "{} paid request(s) failed and {} of {} answered payments were captured",
        report.paid_failed,
        report.captured,
        report.paid_ok
    );
    Ok(())
}
