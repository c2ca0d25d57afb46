//! The whole run: chain, database, operator child process, merchant, phases, report.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use alloy::providers::ext::AnvilApi;
use axum::Router;
use axum::routing::get;
use x402_escrow_sdk::buyer::{AssetLimits, SpendPolicy};
use x402_escrow_sdk::escrows::{EscrowDeployment, EscrowRegistry};
use x402_escrow_sdk::merchant::{
    AssetConfig, CaptureMode, OperatorClient, PaymentRoute, PaymentsConfig, X402Layer,
};
use x402_escrow_sdk::{Amount, Network};

use crate::ceiling::anvil_ceiling;
use crate::load::{Budget, Buyer, buyer_key, free_request, paid_request, run_phase};
use crate::report::{PerPaidRequest, Percentiles, chrono_now, load_average};
use crate::{
    BenchArgs, BenchCaptureMode, BenchDatabase, BenchError, BenchReport, BenchSynchronous, PRICE,
    Result, Seed, Step, check,
};
use x402_escrow_demo::{CHAIN_CLOCK_LEAD_SECS, FEE_BPS, USDC, serve_app};
use x402_escrow_testkit::{Chain, OperatorCommand, Permit2Setup, free_port, spawn_anvil};

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

/// Runs the whole benchmark (see the module docs).
///
/// `operator_exe` is the `x402-escrow` binary (the operator runs as its child process); `db`
/// prepares and reads the operator's database.
pub async fn run<D: BenchDatabase>(
    operator_exe: &Path,
    args: BenchArgs,
    mut db: D,
) -> Result<BenchReport> {
    check!(args.buyers > 0, "--buyers must be at least 1");
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

    // The operator's database: migrated, a merchant, the seed.
    let db_path = dir.join("operator.db");
    let db_url = format!("sqlite://{}?mode=rwc", db_path.display());
    let bench_merchant = db
        .prepare(
            &db_url,
            merchant,
            Seed {
                count: args.seed_payments,
                chain_id: deployment.chain_id,
                escrow: deployment.auth_capture_escrow,
            },
        )
        .await
        .step("preparing the operator's database")?;
    let api_key = bench_merchant.api_key.clone();
    let seed_secs = bench_merchant.seed_secs;

    let deployments = dir.join(format!("{}.json", deployment.chain_id));
    deployment
        .save(&deployments)
        .step("writing the deployments file")?;
    let config_path = dir.join("operator.toml");
    let listen = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let config = format!(
        r#"listen = "{listen}"
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
        executor = if args.executor {
            "[batch]\nuse_executor = true"
        } else {
            ""
        },
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
    std::fs::write(&config_path, config).step("writing the operator's config")?;
    let mut command =
        OperatorCommand::new(operator_exe, &config_path, listen, dir.join("operator.log"))
            .env("X402_SIGNER_KEY", hex::encode(operator_key.to_bytes()))
            .env(
                "RUST_LOG",
                std::env::var("X402_BENCH_OPERATOR_LOG").unwrap_or_else(|_| "warn".into()),
            );
    command.inherit_x402_env = true;
    let mut operator = command.start(Duration::from_secs(60)).await?;
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
        OperatorClient::new(operator.url(), api_key.clone()),
        payments_config,
    );
    async fn handler() -> axum::Json<serde_json::Value> {
        axum::Json(serde_json::json!({"city": "Lisbon", "forecast": "sunny", "celsius": 24}))
    }
    let app = Router::new().route("/free", get(handler)).route(
        "/paid",
        get(handler).layer(layer.paid(PaymentRoute::new("$0.01").description("Benchmark"))),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .step("binding the merchant")?;
    let merchant_url = format!(
        "http://{}",
        listener.local_addr().step("binding the merchant")?
    );
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
    let writes_before = store_writes(&http, &operator.url()).await?;
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
    let captured_count = || async {
        db.captured_count(&bench_merchant.id)
            .await
            .step("counting captured payments")
    };
    let mut captured = captured_count().await?;
    while captured < paid.ok && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        captured = captured_count().await?;
    }
    let settled = paid_started.elapsed();
    let writes_after = store_writes(&http, &operator.url()).await?;
    let cpu_after = operator.cpu_secs()?;
    let (peak_rss, rss) = operator.memory_mib()?;
    let statuses = db
        .statuses(&bench_merchant.id)
        .await
        .step("reading the payment statuses")?;
    let transactions = db.transactions().await.step("reading the transactions")?;

    let _ = stop_merchant.send(());
    // SIGTERM (graceful shutdown), SIGKILL after 10 s.
    let _ = operator.terminate(Duration::from_secs(10)).await;
    db.close().await;

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
        executor: args.executor,
        per_paid_request: PerPaidRequest::of(
            captured,
            writes_before.zip(writes_after),
            &transactions,
        ),
        transactions,
        anvil_ceiling,
    })
}

/// The operator's `x402_store_write_transactions_total` from its `/metrics`; `None` when it
/// does not export it.
async fn store_writes(http: &reqwest::Client, operator_url: &str) -> Result<Option<u64>> {
    let text = http
        .get(format!("{operator_url}/metrics"))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .step("reading the operator's metrics")?
        .text()
        .await
        .step("reading the operator's metrics")?;
    Ok(text.lines().find_map(|line| {
        let value = line.strip_prefix("x402_store_write_transactions_total ")?;
        value.trim().parse::<f64>().ok().map(|v| v as u64)
    }))
}
