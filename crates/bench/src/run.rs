//! The whole run: chain, database, operator child process(es), the mode's phase, report.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use alloy::providers::ext::AnvilApi;
use alloy::signers::local::PrivateKeySigner;
use x402_escrow_sdk::Network;
use x402_escrow_sdk::escrows::{EscrowDeployment, EscrowRegistry};
use x402_escrow_sdk::merchant::{AssetConfig, CaptureMode, PaymentsConfig};

use crate::ceiling::anvil_ceiling;
use crate::facilitator::facilitator_phase;
use crate::load::buyer_key;
use crate::paid::paid_phase;
use crate::report::{
    BenchSummary, FacilitatorReport, InstanceReport, PaidReport, PerPaidRequest, Percentiles,
    chrono_now, load_average,
};
use crate::{
    BenchArgs, BenchCaptureMode, BenchDatabase, BenchError, BenchMode, BenchReport,
    BenchSynchronous, Result, Seed, Step, usage,
};
use x402_escrow_demo::{CHAIN_CLOCK_LEAD_SECS, FEE_BPS, USDC};
use x402_escrow_testkit::{
    Chain, OperatorCommand, OperatorProcess, Permit2Setup, free_port, spawn_anvil,
};

/// A scratch directory removed on drop (unless kept).
pub(crate) struct Scratch {
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

// ---------------------------------------------------------------------------------- run

/// Runs the whole benchmark (see the crate docs).
///
/// `operator_exe` is the `x402-escrow` binary (the operator runs as its child process); `db`
/// creates, prepares and reads the operator's database, and is closed before this returns
/// (dropping a PostgreSQL database it created), also on error. A caller that abandons the
/// future (Ctrl-C) closes `db` itself.
pub async fn run<D: BenchDatabase>(
    operator_exe: &Path,
    args: BenchArgs,
    db: &mut D,
) -> Result<BenchReport> {
    check_args(&args)?;
    let outcome = run_checked(operator_exe, args, db).await;
    db.close().await;
    outcome
}

/// Whether `url` is a PostgreSQL URL.
fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Refuses options that do not fit together, before anything starts.
fn check_args(args: &BenchArgs) -> Result<()> {
    usage!(args.buyers > 0, "--buyers must be at least 1");
    usage!(args.instances > 0, "--instances must be at least 1");
    usage!(
        (1..=crate::MAX_SIGNERS).contains(&args.signers),
        "--signers must be between 1 and {}",
        crate::MAX_SIGNERS
    );
    let postgres = match &args.database {
        None => false,
        Some(url) => {
            usage!(
                is_postgres(url),
                "--database takes a postgres:// URL (without it the operator runs on a SQLite file in the scratch directory)"
            );
            true
        }
    };
    usage!(
        args.instances == 1 || postgres,
        "--instances {} needs --database postgres://…: the operator processes share one database, and a SQLite file is not shared between processes",
        args.instances
    );
    usage!(
        !postgres || args.sqlite_synchronous == BenchSynchronous::Full,
        "--sqlite-synchronous applies to SQLite, not to --database postgres://…"
    );
    if args.mode == BenchMode::Facilitator {
        usage!(
            args.duration.is_none(),
            "--mode facilitator needs --requests N, not --duration: the payloads are signed before the timed phase"
        );
        usage!(args.requests != Some(0), "--requests must be at least 1");
    }
    Ok(())
}

/// One operator process.
pub(crate) struct Instance {
    pub(crate) id: String,
    pub(crate) process: OperatorProcess,
    pub(crate) idle_rss_mib: f64,
}

/// One operator's counters at one moment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    pub(crate) cpu_secs: f64,
    pub(crate) writes: Option<u64>,
    pub(crate) posts: Option<u64>,
    /// `x402_store_writer_busy_seconds_total` (SQLite only).
    pub(crate) writer_busy_secs: Option<f64>,
}

/// Every instance's counters now.
pub(crate) async fn sample(http: &reqwest::Client, instances: &[Instance]) -> Result<Vec<Sample>> {
    let mut out = Vec::with_capacity(instances.len());
    for i in instances {
        let c = counters(http, &i.process.url()).await?;
        out.push(Sample {
            cpu_secs: i.process.cpu_secs()?,
            writes: c.writes,
            posts: c.posts,
            writer_busy_secs: c.writer_busy_secs,
        });
    }
    Ok(out)
}

/// What the phase of a mode hands back: its numbers, and the operators' counters around the
/// measured window (the timed phase and, in the paid mode, its settlement).
pub(crate) struct Phase {
    pub(crate) paid: Option<PaidReport>,
    pub(crate) facilitator: Option<FacilitatorReport>,
    pub(crate) failures: Vec<String>,
    /// Successful operations (paid requests captured / settles succeeded) the costs divide by.
    pub(crate) operations: u64,
    /// Successful operations the bench sent through each instance.
    pub(crate) ok_per_instance: Vec<u64>,
    pub(crate) before: Vec<Sample>,
    pub(crate) after: Vec<Sample>,
    pub(crate) window: Duration,
}

/// Reads `count` every 20 ms until it reaches `target` or `deadline` passes; its last reading.
pub(crate) async fn poll_count<F, Fut>(target: u64, deadline: Instant, mut count: F) -> Result<u64>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<u64>>,
{
    let mut n = count().await?;
    while n < target && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        n = count().await?;
    }
    Ok(n)
}

/// Task `b`'s successes summed per instance `b % instances`.
pub(crate) fn per_instance(ok_per_task: &[u64], instances: usize) -> Vec<u64> {
    let n = instances.max(1);
    let mut out = vec![0; n];
    for (b, ok) in ok_per_task.iter().enumerate() {
        out[b % n] += ok;
    }
    out
}

/// What both modes share.
pub(crate) struct Setup<'a> {
    pub(crate) args: &'a BenchArgs,
    pub(crate) http: reqwest::Client,
    pub(crate) instances: &'a [Instance],
    pub(crate) payments_config: PaymentsConfig,
    pub(crate) api_key: String,
    pub(crate) merchant_id: String,
    pub(crate) dir: PathBuf,
    pub(crate) buyer_keys: Vec<PrivateKeySigner>,
}

async fn run_checked<D: BenchDatabase>(
    operator_exe: &Path,
    args: BenchArgs,
    db: &mut D,
) -> Result<BenchReport> {
    let started_at = chrono_now();
    let load_before = load_average();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let scratch = Scratch {
        path: std::env::temp_dir().join(format!("x402-bench-{}-{nanos}", std::process::id())),
        keep: args.keep_dir,
    };
    std::fs::create_dir_all(&scratch.path).step(format!("creating {}", scratch.path.display()))?;
    let dir = scratch.path.clone();

    // Chain: automine while deploying and funding, then the requested block time. Anvil logs
    // every request to stdout; the testkit drains it so a closed pipe never stops (or crashes) it.
    // Permit2 when the shared fixtures are there: the bench also runs from a bare checkout.
    let chain = Chain::deploy_with(
        spawn_anvil(args.anvil.as_deref(), &[], true)?,
        Permit2Setup::IfShared,
    )
    .await?;
    let deployment = chain.deployment.clone();
    let operator_key = chain.key(1)?;
    // Signer lanes: key 1, then 5, 6, … (funded development keys no other role uses).
    let mut lane_keys = vec![operator_key.clone()];
    for lane in 1..args.signers {
        lane_keys.push(chain.key(4 + lane)?);
    }
    let merchant = chain.address(3)?;
    let fee_receiver = chain.address(4)?;
    let token = deployment.token.clone().ok_or_else(|| {
        BenchError::Unexpected("a development deployment has a test token".into())
    })?;
    let buyer_keys = (0..args.buyers)
        .map(buyer_key)
        .collect::<Result<Vec<_>>>()?;
    let ceiling_payer = buyer_key(usize::MAX)?;
    let mut funded: Vec<Address> = buyer_keys.iter().map(|k| k.address()).collect();
    funded.push(ceiling_payer.address());
    chain
        .mint_all(&funded, U256::from(1_000_000 * USDC))
        .await?;
    // See `Stack::start` in the demo: the operator compares the buyer's wall-clock validBefore
    // with the latest block's time, so the chain's clock runs a little ahead.
    chain.advance_clock(CHAIN_CLOCK_LEAD_SECS).await?;
    if args.block_time > 0 {
        chain
            .admin
            .anvil_set_interval_mining(args.block_time)
            .await
            .step("switching anvil to interval mining")?;
    }

    // The operator's database: a fresh one, migrated, a merchant, the seed.
    let requested_url = match &args.database {
        Some(url) => url.clone(),
        None => format!("sqlite://{}?mode=rwc", dir.join("operator.db").display()),
    };
    // The seeded batches hold the signer's nonces from its next one on.
    let first_nonce = if args.seed_payments > 0 {
        chain
            .admin
            .get_transaction_count(operator_key.address())
            .pending()
            .await
            .step("reading the signer's nonce")?
    } else {
        0
    };
    let db_url = db
        .create(&requested_url)
        .await
        .step("creating the operator's database")?;
    let postgres = is_postgres(&db_url);
    let database_name = postgres.then(|| database_of(&db_url));
    let bench_merchant = db
        .prepare(
            &db_url,
            merchant,
            Seed {
                count: args.seed_payments,
                chain_id: deployment.chain_id,
                escrow: deployment.auth_capture_escrow,
                signer: operator_key.address(),
                first_nonce,
            },
        )
        .await
        .step("preparing the operator's database")?;
    let seed_secs = bench_merchant.seed_secs;
    let seed_batches = bench_merchant.seed_batches;
    if seed_batches > 0 {
        // The chain's account nonce past the seeded batches, as if they had been sent: the
        // operator takes the higher of its stored nonce and the chain's.
        chain
            .admin
            .anvil_set_nonce(operator_key.address(), first_nonce + seed_batches)
            .await
            .step("moving the signer's nonce past the seeded batches")?;
    }

    let deployments = dir.join(format!("{}.json", deployment.chain_id));
    deployment
        .save(&deployments)
        .step("writing the deployments file")?;
    // The operators, one after the other: the first takes the signer lease.
    let mut instances = Vec::with_capacity(args.instances);
    for i in 0..args.instances {
        let id = format!("bench-{i}");
        let listen = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let config = format!(
            r#"listen = "{listen}"
instance_id = "{id}"
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
{executor}
"#,
            executor = format!("[batch]\nuse_executor = {}", args.executor),
            db_connections = args.db_connections,
            // Only written when not the default, so the command also drives older operators.
            synchronous = match args.sqlite_synchronous {
                BenchSynchronous::Full => "",
                BenchSynchronous::Normal => "sqlite_synchronous = \"normal\"",
            },
            rpc = chain.url,
            chain_id = deployment.chain_id,
            deployments = deployments.display(),
            poll = args.poll_interval_ms,
        );
        let (config_path, log) = if args.instances == 1 {
            (dir.join("operator.toml"), dir.join("operator.log"))
        } else {
            (
                dir.join(format!("operator-{i}.toml")),
                dir.join(format!("operator-{i}.log")),
            )
        };
        std::fs::write(&config_path, config).step("writing the operator's config")?;
        let (key_var, keys) = if lane_keys.len() == 1 {
            ("X402_SIGNER_KEY", hex::encode(operator_key.to_bytes()))
        } else {
            let keys: Vec<String> = lane_keys
                .iter()
                .map(|k| hex::encode(k.to_bytes()))
                .collect();
            ("X402_SIGNER_KEYS", keys.join(","))
        };
        let mut command = OperatorCommand::new(operator_exe, &config_path, listen, log)
            .env(key_var, keys)
            .env(
                "RUST_LOG",
                std::env::var("X402_BENCH_OPERATOR_LOG").unwrap_or_else(|_| "warn".into()),
            );
        command.inherit_x402_env = true;
        let process = command.start(Duration::from_secs(60)).await?;
        let idle_rss_mib = process.memory_mib()?.1;
        instances.push(Instance {
            id,
            process,
            idle_rss_mib,
        });
    }

    // What the merchant accepts (the layer's configuration; the facilitator mode signs against
    // the same offers).
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
    if lane_keys.len() > 1 {
        payments_config.capture_authorizers = lane_keys.iter().map(|k| k.address()).collect();
    }
    payments_config.escrow = Some(deployment.auth_capture_escrow);
    payments_config.registry = EscrowRegistry::only(EscrowDeployment::from(&deployment));
    payments_config.fee_recipient = fee_receiver;
    payments_config.max_fee_bps = FEE_BPS;
    payments_config.capture_mode = match args.capture_mode {
        BenchCaptureMode::Sync => CaptureMode::Sync,
        BenchCaptureMode::Queued => CaptureMode::Queued,
    };

    let setup = Setup {
        args: &args,
        http: reqwest::Client::new(),
        instances: &instances,
        payments_config,
        api_key: bench_merchant.api_key.clone(),
        merchant_id: bench_merchant.id.clone(),
        dir: dir.clone(),
        buyer_keys,
    };
    let phase = match args.mode {
        BenchMode::Paid => paid_phase(&setup, db).await?,
        BenchMode::Facilitator => facilitator_phase(&setup, db).await?,
    };
    drop(setup);

    let statuses = db
        .statuses(&bench_merchant.id)
        .await
        .step("reading the payment statuses")?;
    let transactions = db.transactions().await.step("reading the transactions")?;
    let signer_lease_owner = db
        .signer_lease_owner()
        .await
        .step("reading the signer lease")?;
    let lanes = db.lanes().await.step("reading the signer lanes")?;
    let window = phase.window.as_secs_f64().max(1e-9);
    let mut operator_instances = Vec::with_capacity(instances.len());
    for (n, (i, (before, after))) in instances
        .iter()
        .zip(phase.before.iter().zip(&phase.after))
        .enumerate()
    {
        let (peak_rss_mib, rss_mib) = i.process.memory_mib()?;
        let cpu_secs = after.cpu_secs - before.cpu_secs;
        operator_instances.push(InstanceReport {
            instance_id: i.id.clone(),
            url: i.process.url(),
            holds_signer_lease: signer_lease_owner.as_deref() == Some(i.id.as_str()),
            lanes_held: lanes
                .iter()
                .filter(|l| l.lease_owner.as_deref() == Some(i.id.as_str()))
                .count(),
            ok: phase.ok_per_instance.get(n).copied().unwrap_or(0),
            posts: after
                .posts
                .zip(before.posts)
                .map(|(a, b)| a.saturating_sub(b)),
            sql_writes: after
                .writes
                .zip(before.writes)
                .map(|(a, b)| a.saturating_sub(b)),
            cpu_secs,
            cpu_percent: 100.0 * cpu_secs / window,
            // PostgreSQL's writers take no turns (its counter stays at zero).
            writer_busy_percent: after
                .writer_busy_secs
                .zip(before.writer_busy_secs)
                .filter(|_| !postgres)
                .map(|(a, b)| 100.0 * (a - b).max(0.0) / window),
            peak_rss_mib,
            rss_mib,
            idle_rss_mib: i.idle_rss_mib,
        });
    }
    // SIGTERM (graceful shutdown), SIGKILL after 10 s.
    for mut i in instances {
        let _ = i.process.terminate(Duration::from_secs(10)).await;
    }

    let anvil_ceiling = if args.anvil_ceiling > 0 {
        Some(
            anvil_ceiling(
                &chain,
                &deployment,
                &token.domain(deployment.chain_id),
                &ceiling_payer,
                args.anvil_ceiling,
            )
            .await
            .step("measuring anvil's ceiling")?,
        )
    } else {
        None
    };
    // The wallet provider's block poller stops with it, before the node goes away.
    drop(chain);

    // Costs per operation: every instance's writes over the window.
    let writes: Option<(u64, u64)> = phase
        .before
        .iter()
        .zip(&phase.after)
        .try_fold((0u64, 0u64), |(b, a), (before, after)| {
            Some((b + before.writes?, a + after.writes?))
        });
    let per_op = PerPaidRequest::of(phase.operations, writes, &transactions);
    let mut paid = phase.paid;
    let mut facilitator = phase.facilitator;
    if let Some(p) = paid.as_mut() {
        p.per_paid_request = per_op;
    }
    if let Some(f) = facilitator.as_mut() {
        f.per_settle = per_op;
    }
    let operator_cpu_secs: f64 = operator_instances.iter().map(|i| i.cpu_secs).sum();
    let operator_peak_rss_mib: f64 = operator_instances.iter().map(|i| i.peak_rss_mib).sum();
    let load_after = load_average();
    let database = if postgres { "postgres" } else { "sqlite" }.to_owned();
    let (ok, failed, per_sec, latency) = match (&paid, &facilitator) {
        (Some(p), _) => (p.paid_ok, p.paid_failed, p.paid_rps, p.paid_latency_ms),
        (None, Some(f)) => (f.ok, f.failed, f.settles_per_sec, f.latency_ms),
        (None, None) => (0, 0, 0.0, Percentiles::default()),
    };
    let operator_cpu_percent = 100.0 * operator_cpu_secs / window;
    let writer_busy_percent = operator_instances
        .iter()
        .filter_map(|i| i.writer_busy_percent)
        .reduce(f64::max);
    let summary = BenchSummary {
        mode: args.mode,
        scheme: facilitator.as_ref().map(|f| f.scheme),
        database: database.clone(),
        instances: args.instances,
        signers: args.signers,
        buyers: args.buyers,
        seed_payments: args.seed_payments,
        ok,
        failed,
        per_sec,
        p50_ms: latency.p50,
        p95_ms: latency.p95,
        p99_ms: latency.p99,
        sql_writes_per_op: per_op.sql_writes,
        transactions_per_op: per_op.transactions,
        gas_per_op: per_op.gas,
        operator_cpu_percent,
        writer_busy_percent,
        operator_peak_rss_mib,
        load_before: load_before.clone(),
        load_after: load_after.clone(),
    };
    Ok(BenchReport {
        summary,
        started_at,
        load_before,
        load_after,
        nproc: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        mode: args.mode,
        database,
        database_name,
        instances: args.instances,
        signers: args.signers,
        buyers: args.buyers,
        block_time: args.block_time,
        seed_payments: args.seed_payments,
        capture_mode: args.capture_mode,
        poll_interval_ms: args.poll_interval_ms,
        sqlite_synchronous: args.sqlite_synchronous,
        seed_secs,
        seed_batches,
        paid,
        facilitator,
        failures: phase.failures,
        statuses,
        operator_cpu_secs,
        operator_cpu_percent,
        operator_peak_rss_mib,
        operator_rss_mib: operator_instances.iter().map(|i| i.rss_mib).sum(),
        operator_idle_rss_mib: operator_instances.iter().map(|i| i.idle_rss_mib).sum(),
        operator_instances,
        signer_lease_owner,
        lanes,
        executor: args.executor,
        transactions,
        anvil_ceiling,
    })
}

/// The database name of a PostgreSQL URL (its path, without the query).
fn database_of(url: &str) -> String {
    let head = url.split('?').next().unwrap_or(url);
    head.rsplit('/').next().unwrap_or_default().to_owned()
}

/// What the bench reads of one operator's `/metrics`; `None` for a counter it does not export.
#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    /// `x402_store_write_transactions_total`.
    writes: Option<u64>,
    /// POST requests answered: the sum of `x402_http_requests_total` over POST routes.
    posts: Option<u64>,
    /// `x402_store_writer_busy_seconds_total` (SQLite only).
    writer_busy_secs: Option<f64>,
}

/// Reads [`Counters`] from the operator's `/metrics`.
async fn counters(http: &reqwest::Client, operator_url: &str) -> Result<Counters> {
    let text = http
        .get(format!("{operator_url}/metrics"))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .step("reading the operator's metrics")?
        .text()
        .await
        .step("reading the operator's metrics")?;
    Ok(parse_counters(&text))
}

/// [`Counters`] from an exposition text.
fn parse_counters(text: &str) -> Counters {
    let number = |v: &str| v.trim().parse::<f64>().ok();
    let count = |v: &str| number(v).map(|v| v as u64);
    let writes = text
        .lines()
        .find_map(|line| count(line.strip_prefix("x402_store_write_transactions_total ")?));
    let writer_busy_secs = text
        .lines()
        .find_map(|line| number(line.strip_prefix("x402_store_writer_busy_seconds_total ")?));
    let mut posts = None;
    for line in text.lines() {
        if let Some(labels) = line.strip_prefix("x402_http_requests_total{")
            && labels.contains("method=\"POST\"")
            && let Some((_, n)) = labels.rsplit_once(' ')
            && let Some(n) = count(n)
        {
            *posts.get_or_insert(0) += n;
        }
    }
    if posts.is_none() && text.contains("x402_http_requests_total") {
        posts = Some(0);
    }
    Counters {
        writes,
        posts,
        writer_busy_secs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_read_from_the_exposition_text() {
        let text = "# TYPE x402_store_write_transactions counter\n\
            x402_store_write_transactions_total 41\n\
            x402_store_writer_busy_seconds_total 2.5\n\
            x402_http_requests_total{method=\"POST\",route=\"/v1/payments/authorize\",status=\"201\"} 3\n\
            x402_http_requests_total{method=\"POST\",route=\"/v1/payments/{id}/capture\",status=\"200\"} 2\n\
            x402_http_requests_total{method=\"GET\",route=\"/v1/payments/{id}\",status=\"200\"} 7\n";
        let c = parse_counters(text);
        assert_eq!(c.writes, Some(41));
        assert_eq!(c.posts, Some(5));
        assert_eq!(c.writer_busy_secs, Some(2.5));
        // An operator without the busy counter; no POST yet counts as zero.
        let c = parse_counters(
            "x402_store_write_transactions_total 0\n\
             x402_http_requests_total{method=\"GET\",route=\"/health\",status=\"200\"} 1\n",
        );
        assert_eq!(
            (c.writes, c.posts, c.writer_busy_secs),
            (Some(0), Some(0), None)
        );
    }
}
