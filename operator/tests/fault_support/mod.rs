//! Shared by the `fault_*` suites: the real `x402-escrow` binary as a child process (spawned on a
//! config file, killed with SIGKILL, restarted on the same database), its admin commands, a
//! switchable TCP proxy (an RPC endpoint or a webhook receiver that disappears), a merchant
//! client that retries the way a careful one does (same `Idempotency-Key`, same signed payment),
//! and the end-of-run ledger check (database == chain, balances exact, nonces without gaps,
//! `x402-escrow reconcile` clean).
//!
//! Scale knobs (environment, read by the suites): `X402_FAULT_SEED` (the random seed; printed by
//! every test), `X402_FAULT_N` (payments), `X402_FAULT_LOG` (`RUST_LOG` of the operator process;
//! default `warn`). The operator's output goes to a file under the cargo target's tmp dir, whose
//! path each test prints.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256};
use alloy::providers::Provider;
use alloy::rpc::types::Filter;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolEvent;
use serde_json::{Value, json};
use x402_escrow_bindings::{AuthCaptureEscrow, IERC3009};
use x402_escrow_operator::store::Store;
use x402_escrow_sdk::facilitator::VerifyRequest;
use x402_escrow_sdk::random_b256;
use x402_escrow_sdk::schemes::exact;
use x402_escrow_sdk::wire::{PaymentPayload, PaymentRequirements};
use x402_escrow_testkit::OperatorCommand;

use crate::operator_support::{Api, Chain, FEE_BPS, count, fee, tx_statuses};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_x402-escrow");

/// An environment knob, or its default.
pub fn knob<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// The run's seed: `X402_FAULT_SEED`, else `default` (printed so a failure can be replayed).
pub fn seed(test: &str, default: u64) -> u64 {
    let s = knob("X402_FAULT_SEED", default);
    eprintln!("[{test}] seed {s} (replay with X402_FAULT_SEED={s})");
    s
}

/// A free local port for the operator, which binds it again on every restart (below Linux's
/// ephemeral range: see [`x402_escrow_testkit::free_port`]).
pub fn free_port() -> u16 {
    x402_escrow_testkit::free_port().expect("free port")
}

// ---- the operator process ------------------------------------------------------------------

/// Everything needed to (re)start the operator binary: its config file and environment.
pub struct OperatorSetup {
    pub config_path: PathBuf,
    pub env: Vec<(String, String)>,
    pub addr: SocketAddr,
    pub log_path: PathBuf,
    pub table: toml::Table,
    _dir: tempfile::TempDir,
}

impl OperatorSetup {
    /// A config file for `db_url` and `chain`, with the RPC at `rpc_url` (a proxy, or the node),
    /// short intervals, and `tune` applied to the TOML table before it is written.
    pub fn new(
        test: &str,
        db_url: &str,
        chain: &Chain,
        rpc_url: &str,
        tune: impl FnOnce(&mut toml::Table),
    ) -> OperatorSetup {
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let text = format!(
            r#"
listen = "{addr}"
[database]
url = "{db_url}"
max_connections = 10
[chain]
rpc_url = "{rpc_url}"
chain_id = {chain_id}
deployments = "{deployments}"
confirmations = 1
poll_interval_ms = 100
start_block = 0
[relayer]
lease_ttl_secs = 3
bump_after_secs = 5
[webhooks]
poll_interval_ms = 100
retry_schedule_secs = [1]
[idempotency]
in_flight_timeout_secs = 60
[auto_void]
sweep_interval_secs = 1
[fees]
bps = {FEE_BPS}
receiver = "{fee_receiver}"
"#,
            chain_id = chain.deployment.chain_id,
            deployments = chain.deployments_file.display(),
            fee_receiver = chain.fee_receiver,
        );
        let mut table: toml::Table = toml::from_str(&text).expect("config toml");
        tune(&mut table);
        let dir = tempfile::tempdir().expect("tempdir");
        let config_path = dir.path().join("x402-escrow.toml");
        std::fs::write(&config_path, toml::to_string(&table).expect("toml")).expect("write");
        let logs = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fault-logs");
        std::fs::create_dir_all(&logs).expect("log dir");
        let log_path = logs.join(format!("{test}-{}.log", std::process::id()));
        let _ = std::fs::remove_file(&log_path);
        eprintln!("[{test}] operator log: {}", log_path.display());
        let env = vec![
            (
                "X402_SIGNER_KEY".to_owned(),
                alloy::hex::encode(chain.operator.to_bytes()),
            ),
            (
                "RUST_LOG".to_owned(),
                std::env::var("X402_FAULT_LOG").unwrap_or_else(|_| "warn".into()),
            ),
        ];
        OperatorSetup {
            config_path,
            env,
            addr,
            log_path,
            table,
            _dir: dir,
        }
    }

    /// How the testkit runs this operator (the binary under test on the config file).
    fn operator(&self) -> OperatorCommand {
        let mut cmd = OperatorCommand::new(BIN, &self.config_path, self.addr, &self.log_path);
        cmd.env = self.env.clone();
        cmd
    }

    /// Runs an admin command (`migrate`, `merchant add …`, `reconcile`) to completion, without
    /// blocking the test's runtime (its proxies and receivers keep serving meanwhile).
    pub async fn cli(&self, args: &[&str]) -> std::process::Output {
        self.operator().run(args).await.expect("run x402-escrow")
    }

    /// `x402-escrow migrate`, then `merchant add`: (API key, webhook secret if a URL was given).
    pub async fn add_merchant(
        &self,
        name: &str,
        receiver: Address,
        webhook_url: Option<&str>,
    ) -> (String, Option<String>) {
        let out = self.cli(&["migrate"]).await;
        assert!(out.status.success(), "migrate: {out:?}");
        let receiver = receiver.to_string();
        let mut args = vec!["merchant", "add", "--name", name, "--receiver", &receiver];
        if let Some(url) = webhook_url {
            args.extend(["--webhook-url", url]);
        }
        let out = self.cli(&args).await;
        assert!(out.status.success(), "merchant add: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let field = |label: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(label))
                .and_then(|rest| rest.split_whitespace().next())
                .map(str::to_owned)
        };
        let key = field("api key").unwrap_or_else(|| panic!("no api key in {text}"));
        (key, field("webhook key"))
    }

    /// `x402-escrow reconcile`: must exit 0 and say the database equals the chain.
    pub async fn assert_reconcile_clean(&self) {
        let out = self.cli(&["reconcile"]).await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("no differences"),
            "x402-escrow reconcile: {}\nstdout:\n{stdout}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Spawns `x402-escrow serve` (output appended to the log file).
    pub fn spawn(&self) -> OperatorProcess {
        OperatorProcess(self.operator().spawn().expect("spawn x402-escrow serve"))
    }

    /// Spawns the operator and waits (bounded) until `/healthz` answers.
    pub async fn start(&self) -> OperatorProcess {
        let mut op = self.spawn();
        op.wait_healthy(Duration::from_secs(60), &self.log_path)
            .await;
        op
    }

    /// The last `n` lines of the operator's output.
    pub fn log_tail(&self, n: usize) -> String {
        self.operator().log_tail(n)
    }

    /// The outcome of the load task `load`; when it panicked, the operator's last 80 lines of
    /// output are printed before its panic is raised again.
    pub async fn joined<T>(&self, load: tokio::task::JoinHandle<T>) -> T {
        match load.await {
            Ok(outcome) => outcome,
            Err(e) => {
                eprintln!("{}", self.log_tail(80));
                std::panic::resume_unwind(e.into_panic())
            }
        }
    }
}

/// One running `x402-escrow serve` (the testkit's process, whose errors are the test's panics).
/// Dropping it kills it.
pub struct OperatorProcess(x402_escrow_testkit::OperatorProcess);

impl std::ops::Deref for OperatorProcess {
    type Target = x402_escrow_testkit::OperatorProcess;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for OperatorProcess {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl OperatorProcess {
    /// Waits until `/healthz` answers 200; panics (with the log) if the process exits or the
    /// time runs out.
    pub async fn wait_healthy(&mut self, timeout: Duration, _log: &Path) {
        if let Err(e) = self.0.wait_healthy(timeout).await {
            panic!("{e}");
        }
    }

    /// SIGTERM (graceful shutdown) and wait for the exit, bounded; SIGKILL (and a panic) if it
    /// takes longer than 20 s.
    pub async fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        match self.0.terminate(Duration::from_secs(20)).await {
            Ok(status) => status,
            Err(e) => panic!("{e}"),
        }
    }
}

// ---- a switchable TCP proxy: the testkit's -------------------------------------------------

#[allow(unused_imports)] // not every fault suite switches modes
pub use x402_escrow_testkit::ProxyMode;

/// The testkit's [`x402_escrow_testkit::Proxy`] (a TCP proxy whose [`ProxyMode`] the test
/// switches).
pub type Proxy = x402_escrow_testkit::Proxy;

// ---- a careful merchant client -------------------------------------------------------------

/// What the clients lived through (summed over every request).
#[derive(Default, Debug)]
pub struct ClientStats {
    /// Requests that failed at the connection level (operator down or killed mid-request).
    pub connection_errors: AtomicU64,
    /// 5xx answers (retried with the same key).
    pub server_errors: AtomicU64,
    /// `409 idempotency_key_in_flight` answers (a request of a killed process still holds the key).
    pub key_in_flight: AtomicU64,
    /// Keys given up after [`KEY_SWITCH_AFTER`] of `idempotency_key_in_flight`; the retry then
    /// relies on the operator's per-payment deduplication (same signed payment / state check).
    pub key_switches: AtomicU64,
    /// `409 payment_busy` answers.
    pub busy: AtomicU64,
    /// Actions found already done by an earlier attempt (`invalid_state` after a lost answer).
    pub found_done: AtomicU64,
    /// `/settle` answers `settlement_pending` (the transfer not mined yet; asked again).
    pub settle_pending: AtomicU64,
    /// `/settle` answers `unexpected_verify_error` / `unexpected_settle_error` (transient, such
    /// as the chain being unreachable; asked again).
    pub settle_transient: AtomicU64,
}

impl ClientStats {
    pub fn summary(&self) -> BTreeMap<&'static str, u64> {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        BTreeMap::from([
            ("connection_errors", g(&self.connection_errors)),
            ("server_errors", g(&self.server_errors)),
            ("key_in_flight", g(&self.key_in_flight)),
            ("key_switches", g(&self.key_switches)),
            ("busy", g(&self.busy)),
            ("found_done", g(&self.found_done)),
            ("settle_pending", g(&self.settle_pending)),
            ("settle_transient", g(&self.settle_transient)),
        ])
    }
}

/// How long a client keeps retrying a key that a killed request left in flight before it retries
/// under a new key (the lock itself lasts `MIN_IN_FLIGHT_LOCK`, 60 s).
pub const KEY_SWITCH_AFTER: Duration = Duration::from_secs(3);

/// One payment a buyer makes: the signed authorize body, and whether the merchant captures
/// (else voids) it.
#[derive(Clone)]
pub struct Order {
    pub rid: String,
    pub amount: u64,
    pub body: Value,
    pub capture: bool,
}

/// A payment as the client saw it end.
#[derive(Clone, Debug)]
pub struct Paid {
    pub rid: String,
    pub id: String,
    pub hash: B256,
    pub amount: u64,
    pub capture: bool,
}

/// Builds `n` orders of seeded random amounts (0.01–1 USDC); `capture_share` of them captured.
pub async fn orders(
    chain: &Chain,
    signer: Address,
    tag: &str,
    n: usize,
    rng: &mut impl rand::Rng,
    capture_share: f64,
) -> Vec<Order> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let amount = rng.random_range(10_000..=1_000_000u64);
        let capture = rng.random_bool(capture_share);
        let req = chain.requirements(amount, signer, chain.receiver).await;
        let rid = format!("{tag}-{i}");
        let body = chain.authorize_body(req, &chain.payer, &rid).await;
        out.push(Order {
            rid,
            amount,
            body,
            capture,
        });
    }
    out
}

/// A merchant client that survives operator crashes and outages.
#[derive(Clone)]
pub struct Client {
    pub api: Api,
    pub stats: Arc<ClientStats>,
    /// Every request gives up (panics) after this long.
    pub patience: Duration,
}

const IN_FLIGHT: &[&str] = &[
    "authorizing",
    "charging",
    "capturing",
    "voiding",
    "refunding",
];

impl Client {
    pub fn new(addr: SocketAddr, key: &str, patience: Duration) -> Client {
        Client {
            api: Api::at(addr, key),
            stats: Arc::new(ClientStats::default()),
            patience,
        }
    }

    fn pause(attempt: u32) -> Duration {
        Duration::from_millis((50u64 << attempt.min(4)).min(500))
    }

    /// POST until an answer that is not a connection error, a 5xx or a key still in flight.
    /// Retries keep the key (and the body); after [`KEY_SWITCH_AFTER`] of "key in flight" the
    /// key is replaced.
    pub async fn post(&self, path: &str, body: &Value, key: &str) -> (u16, Value) {
        let deadline = Instant::now() + self.patience;
        let mut key = key.to_owned();
        let mut attempt = 0u32;
        let mut in_flight_since: Option<Instant> = None;
        let mut switches = 0;
        loop {
            assert!(
                Instant::now() < deadline,
                "POST {path} (key {key}) still failing after {:?}",
                self.patience
            );
            attempt += 1;
            match self.api.try_post(path, body, &key).await {
                Err(_) => {
                    self.stats.connection_errors.fetch_add(1, Ordering::Relaxed);
                }
                Ok((s, _)) if s >= 500 => {
                    self.stats.server_errors.fetch_add(1, Ordering::Relaxed);
                }
                Ok((409, b)) if b["error"]["code"] == "idempotency_key_in_flight" => {
                    self.stats.key_in_flight.fetch_add(1, Ordering::Relaxed);
                    let since = *in_flight_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > KEY_SWITCH_AFTER {
                        switches += 1;
                        self.stats.key_switches.fetch_add(1, Ordering::Relaxed);
                        key = format!("{key}-k{switches}");
                        in_flight_since = None;
                    }
                }
                Ok(answer) => return answer,
            }
            tokio::time::sleep(Self::pause(attempt)).await;
        }
    }

    /// GET a payment, retrying connection errors and 5xx.
    pub async fn payment(&self, id: &str) -> Value {
        let deadline = Instant::now() + self.patience;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sent = self
                .api
                .http
                .get(format!("{}/v1/payments/{id}", self.api.base))
                .bearer_auth(&self.api.key)
                .send()
                .await;
            if let Ok(resp) = sent {
                let status = resp.status().as_u16();
                if status == 200
                    && let Ok(v) = resp.json::<Value>().await
                {
                    return v;
                }
                assert!(status >= 500, "GET payment {id}: {status}");
            } else {
                self.stats.connection_errors.fetch_add(1, Ordering::Relaxed);
            }
            assert!(Instant::now() < deadline, "GET payment {id}: no answer");
            tokio::time::sleep(Self::pause(attempt)).await;
        }
    }

    /// Polls until the payment is not in flight.
    pub async fn settled(&self, id: &str) -> Value {
        let deadline = Instant::now() + self.patience;
        loop {
            let p = self.payment(id).await;
            if !IN_FLIGHT.contains(&p["status"].as_str().unwrap_or_default()) {
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "payment {id} still in flight after {:?}: {p}",
                self.patience
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// One paid request: authorize (retrying with the same key and the same signed payment),
    /// then capture or void it (retrying likewise) until it is captured or voided.
    pub async fn pay(&self, order: &Order) -> Paid {
        let (status, p) = self
            .post(
                "/v1/payments/authorize?wait=20",
                &order.body,
                &format!("auth-{}", order.rid),
            )
            .await;
        assert!(
            status == 201 || status == 202,
            "authorize {}: {status} {p}",
            order.rid
        );
        let id = p["id"].as_str().expect("payment id").to_owned();
        let hash: B256 = p["paymentHash"]
            .as_str()
            .expect("hash")
            .parse()
            .expect("hash");
        let p = self.settled(&id).await;
        assert_eq!(p["status"], "authorized", "{}: {p}", order.rid);
        let (action, target) = if order.capture {
            ("capture", "captured")
        } else {
            ("void", "voided")
        };
        let key = format!("{action}-{}", order.rid);
        loop {
            let (status, v) = self
                .post(&format!("/v1/payments/{id}/{action}"), &json!({}), &key)
                .await;
            let code = v["error"]["code"].as_str().unwrap_or_default().to_owned();
            match (status, code.as_str()) {
                (200, _) => {}
                (409, "payment_busy") => {
                    self.stats.busy.fetch_add(1, Ordering::Relaxed);
                }
                (409, "invalid_state") => {
                    self.stats.found_done.fetch_add(1, Ordering::Relaxed);
                }
                _ => panic!("{action} {}: {status} {v}", order.rid),
            }
            let p = self.settled(&id).await;
            match p["status"].as_str().unwrap_or_default() {
                s if s == target => break,
                "authorized" if code == "payment_busy" => continue,
                other => panic!("{action} {}: payment ended {other}: {p}", order.rid),
            }
        }
        Paid {
            rid: order.rid.clone(),
            id,
            hash,
            amount: order.amount,
            capture: order.capture,
        }
    }
}

/// Runs `orders` through `client` (`concurrency` at a time, see [`run_orders`]) in its own task:
/// the count of finished orders, and the task.
pub fn spawn_orders(
    client: &Client,
    orders: Vec<Order>,
    concurrency: usize,
) -> (Arc<AtomicU64>, tokio::task::JoinHandle<Vec<Paid>>) {
    let done = Arc::new(AtomicU64::new(0));
    let load = {
        let client = client.clone();
        let done = done.clone();
        tokio::spawn(async move { run_orders(&client, orders, concurrency, done).await })
    };
    (done, load)
}

/// Runs every order through `client` with at most `concurrency` at once; `done` counts finished
/// ones (for fault injectors that strike at a point of progress).
pub async fn run_orders(
    client: &Client,
    orders: Vec<Order>,
    concurrency: usize,
    done: Arc<AtomicU64>,
) -> Vec<Paid> {
    let sem = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut tasks = Vec::with_capacity(orders.len());
    for order in orders {
        let client = client.clone();
        let sem = sem.clone();
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await.expect("semaphore");
            let paid = client.pay(&order).await;
            done.fetch_add(1, Ordering::SeqCst);
            paid
        }));
    }
    join_tasks(tasks, "payment").await
}

/// Every task's result, in order; a task's panic is the caller's (so its message is the test's).
async fn join_tasks<T>(tasks: Vec<tokio::task::JoinHandle<T>>, what: &str) -> Vec<T> {
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        match t.await {
            Ok(done) => out.push(done),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("{what} task: {e}"),
        }
    }
    out
}

// ---- `exact` transfers through the facilitator ---------------------------------------------

/// One `exact` payment a buyer makes through the facilitator: the signed `/settle` body of an
/// ERC-3009 transfer.
#[derive(Clone)]
pub struct ExactOrder {
    pub rid: String,
    pub amount: u64,
    pub nonce: B256,
    pub body: Value,
}

/// An `exact` settle as the client saw it end: the transaction the operator answered with.
#[derive(Clone, Debug)]
pub struct Transferred {
    pub rid: String,
    pub amount: u64,
    pub nonce: B256,
    pub tx: B256,
}

/// Builds `n` signed `exact` transfers of seeded random amounts (0.01–1 USDC) from `payer` to
/// `pay_to` (a receiver of the merchant that settles them).
pub async fn exact_orders(
    chain: &Chain,
    payer: &PrivateKeySigner,
    pay_to: Address,
    tag: &str,
    n: usize,
    rng: &mut impl rand::Rng,
) -> Vec<ExactOrder> {
    let now = chain.now().await;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let amount = rng.random_range(10_000..=1_000_000u64);
        let requirements: PaymentRequirements =
            serde_json::from_value(chain.exact_requirements(amount, pay_to, 3600))
                .expect("exact requirements");
        let nonce = random_b256();
        let payload = exact::build_payload(&requirements, payer, now, nonce).expect("payload");
        let request = VerifyRequest::new(
            PaymentPayload::new(requirements.clone(), payload),
            requirements,
        );
        out.push(ExactOrder {
            rid: format!("{tag}-exact-{i}"),
            amount,
            nonce,
            body: serde_json::to_value(&request).expect("settle body"),
        });
    }
    out
}

impl Client {
    /// One `exact` payment: `POST /settle` of the same signed transfer until the operator
    /// answers success (connection errors, 5xx, `settlement_pending` and the transient
    /// `unexpected_*` reasons are asked again; any other answer fails the test).
    pub async fn settle_exact(&self, order: &ExactOrder) -> Transferred {
        let deadline = Instant::now() + self.patience;
        let mut attempt = 0u32;
        loop {
            assert!(
                Instant::now() < deadline,
                "settle {} still not done after {:?}",
                order.rid,
                self.patience
            );
            attempt += 1;
            match self.api.try_post("/settle", &order.body, &order.rid).await {
                Err(_) => {
                    self.stats.connection_errors.fetch_add(1, Ordering::Relaxed);
                }
                Ok((s, _)) if s >= 500 => {
                    self.stats.server_errors.fetch_add(1, Ordering::Relaxed);
                }
                Ok((200, b)) if b["success"] == true => {
                    let tx = b["transaction"]
                        .as_str()
                        .and_then(|t| t.parse().ok())
                        .unwrap_or_else(|| panic!("settle {}: no transaction: {b}", order.rid));
                    return Transferred {
                        rid: order.rid.clone(),
                        amount: order.amount,
                        nonce: order.nonce,
                        tx,
                    };
                }
                Ok((200, b)) if b["errorReason"] == "settlement_pending" => {
                    self.stats.settle_pending.fetch_add(1, Ordering::Relaxed);
                }
                // The operator's transient answers (its chain unreachable, say): "a retry
                // should try again" (`api/facilitator.rs`).
                Ok((200, b))
                    if b["errorReason"] == "unexpected_verify_error"
                        || b["errorReason"] == "unexpected_settle_error" =>
                {
                    self.stats.settle_transient.fetch_add(1, Ordering::Relaxed);
                    // Each attempt costs the operator a chain call: no hurry while it is down.
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                Ok((status, b)) => panic!("settle {}: {status} {b}", order.rid),
            }
            tokio::time::sleep(Self::pause(attempt)).await;
        }
    }
}

/// Runs the `exact` `orders` through `client` (`concurrency` at a time) in its own task, spread
/// over a paid run: order `i` of `m` starts once `paid_done` reached `i * paid_total / m`, so
/// transfers are queued beside escrow calls (and ride the same `execute` batches) whenever a
/// fault strikes.
pub fn spawn_exact(
    client: &Client,
    orders: Vec<ExactOrder>,
    concurrency: usize,
    paid_done: Arc<AtomicU64>,
    paid_total: usize,
) -> tokio::task::JoinHandle<Vec<Transferred>> {
    let client = client.clone();
    tokio::spawn(async move {
        let sem = Arc::new(tokio::sync::Semaphore::new(concurrency));
        let m = orders.len().max(1) as u64;
        let mut tasks = Vec::with_capacity(orders.len());
        for (i, order) in orders.into_iter().enumerate() {
            let start_at = i as u64 * paid_total as u64 / m;
            while paid_done.load(Ordering::SeqCst) < start_at {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let permit = sem.clone().acquire_owned().await.expect("semaphore");
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                let _permit = permit;
                client.settle_exact(&order).await
            }));
        }
        join_tasks(tasks, "settle").await
    })
}

/// A second merchant ("kiosk", receiving at the chain's `other_receiver`) settling `exact`
/// transfers through `/settle` beside a paid run, from its own payer (dev key 5, minted here),
/// so the escrow ledger of the paid run stays its own.
pub struct ExactLoad {
    /// The kiosk's client (its stats: what the settles lived through).
    pub client: Client,
    orders: Vec<ExactOrder>,
    planned: usize,
    payer: Address,
    pay_to: Address,
    before: (u128, u128),
}

impl ExactLoad {
    /// Adds the kiosk merchant, funds the payer and signs `m` transfers.
    pub async fn prepare(
        setup: &OperatorSetup,
        chain: &Chain,
        tag: &str,
        m: usize,
        rng: &mut impl rand::Rng,
    ) -> ExactLoad {
        let (key, _) = setup
            .add_merchant("kiosk", chain.other_receiver, None)
            .await;
        let payer = chain.key(5).expect("key 5");
        chain
            .mint(payer.address(), 1_000 * crate::operator_support::USDC)
            .await;
        let orders = exact_orders(chain, &payer, chain.other_receiver, tag, m, rng).await;
        ExactLoad {
            client: Client::new(setup.addr, &key, Duration::from_secs(240)),
            orders,
            planned: m,
            payer: payer.address(),
            pay_to: chain.other_receiver,
            before: (
                chain.balance(payer.address()).await,
                chain.balance(chain.other_receiver).await,
            ),
        }
    }

    /// Starts the settles, `concurrency` at a time, spread over the paid run ([`spawn_exact`]).
    pub fn spawn(
        &mut self,
        concurrency: usize,
        paid_done: Arc<AtomicU64>,
        paid_total: usize,
    ) -> tokio::task::JoinHandle<Vec<Transferred>> {
        let orders = std::mem::take(&mut self.orders);
        spawn_exact(&self.client, orders, concurrency, paid_done, paid_total)
    }

    /// Every planned transfer was answered and happened once and as answered
    /// ([`assert_exact_ledger`]), and at least one rode an `execute` beside escrow calls (the
    /// point of the mix). Prints what the kiosk lived through.
    pub async fn check(&self, test: &str, chain: &Chain, store: &Store, done: &[Transferred]) {
        assert_eq!(done.len(), self.planned, "every transfer answered");
        let carried =
            assert_exact_ledger(chain, store, done, self.payer, self.pay_to, self.before).await;
        eprintln!(
            "[{test}] {} exact transfers, {carried} of them carried by an execute; the settle client saw {:?}",
            done.len(),
            self.client.stats.summary()
        );
        assert!(carried > 0, "no transfer rode an execute");
    }
}

/// Every `exact` transfer happened exactly once and as answered: `payer` lost and `pay_to`
/// gained exactly their sum; the token logged one `AuthorizationUsed` per transfer and none
/// else for `payer`; the transaction each `/settle` answered with succeeded and used that
/// authorization; one `transfer` row per transfer, each final and succeeded. Returns how many
/// of them an `execute` carried.
pub async fn assert_exact_ledger(
    chain: &Chain,
    store: &Store,
    done: &[Transferred],
    payer: Address,
    pay_to: Address,
    before: (u128, u128),
) -> i64 {
    let total: u128 = done.iter().map(|t| u128::from(t.amount)).sum();
    assert_eq!(
        chain.balance(payer).await,
        before.0 - total,
        "exact payer balance"
    );
    assert_eq!(
        chain.balance(pay_to).await,
        before.1 + total,
        "exact payTo balance"
    );

    let used = chain
        .plain
        .get_logs(
            &Filter::new()
                .address(chain.token())
                .event_signature(IERC3009::AuthorizationUsed::SIGNATURE_HASH)
                .topic1(payer.into_word())
                .from_block(0),
        )
        .await
        .expect("AuthorizationUsed logs");
    let mut used_nonces: Vec<B256> = used
        .iter()
        .filter_map(|l| l.topics().get(2).copied())
        .collect();
    used_nonces.sort();
    let mut want: Vec<B256> = done.iter().map(|t| t.nonce).collect();
    want.sort();
    assert_eq!(
        used_nonces, want,
        "one AuthorizationUsed per transfer, none else"
    );

    for t in done {
        let receipt = chain
            .plain
            .get_transaction_receipt(t.tx)
            .await
            .expect("receipt")
            .unwrap_or_else(|| panic!("{}: answered {} is not mined", t.rid, t.tx));
        assert!(receipt.status(), "{}: {} reverted", t.rid, t.tx);
        let carried = receipt.inner.logs().iter().any(|l| {
            l.address() == chain.token()
                && l.topics().first() == Some(&IERC3009::AuthorizationUsed::SIGNATURE_HASH)
                && l.topics().get(2) == Some(&t.nonce)
        });
        assert!(carried, "{}: {} did not use its authorization", t.rid, t.tx);
    }

    assert_eq!(
        count(store, "chain_txs WHERE kind = 'transfer'").await,
        done.len() as i64,
        "one transfer row per transfer"
    );
    assert_eq!(
        count(
            store,
            "chain_txs WHERE kind = 'transfer' AND NOT (status = 'final' AND COALESCE(succeeded, 0) = 1)"
        )
        .await,
        0,
        "every transfer row final and succeeded: {:?}",
        tx_statuses(store).await
    );
    count(
        store,
        "chain_tx_members m JOIN chain_txs s ON s.id = m.source_tx_id \
         JOIN chain_txs b ON b.id = m.batch_tx_id \
         WHERE s.kind = 'transfer' AND b.kind = 'execute' AND b.status = 'final' \
         AND m.fallback_tx_id IS NULL",
    )
    .await
}

// ---- the ledger check ----------------------------------------------------------------------

/// Balances before the run.
#[derive(Clone, Copy, Debug)]
pub struct Balances {
    pub payer: u128,
    pub receiver: u128,
    pub fee_receiver: u128,
}

pub async fn balances(chain: &Chain) -> Balances {
    Balances {
        payer: chain.balance(chain.payer.address()).await,
        receiver: chain.balance(chain.receiver).await,
        fee_receiver: chain.balance(chain.fee_receiver).await,
    }
}

/// Waits (bounded, by SQL, for any number of payments) until no payment is in flight and every
/// chain transaction is settled.
pub async fn settle_all(store: &Store, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let busy = count(
            store,
            "payments WHERE status IN ('authorizing', 'charging', 'capturing', 'voiding', 'refunding')",
        )
        .await;
        let open = count(
            store,
            "chain_txs WHERE status NOT IN ('final', 'reverted', 'abandoned')",
        )
        .await;
        if busy == 0 && open == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not settled after {timeout:?}: {busy} payments in flight, txs {:?}",
            tx_statuses(store).await
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// Escrow events on chain per payment hash, by event name.
pub async fn escrow_events(chain: &Chain) -> HashMap<B256, BTreeMap<&'static str, u32>> {
    let logs = chain
        .plain
        .get_logs(&Filter::new().address(chain.escrow()).from_block(0))
        .await
        .expect("escrow logs");
    let names: [(B256, &'static str); 4] = [
        (
            AuthCaptureEscrow::PaymentAuthorized::SIGNATURE_HASH,
            "authorized",
        ),
        (
            AuthCaptureEscrow::PaymentCaptured::SIGNATURE_HASH,
            "captured",
        ),
        (AuthCaptureEscrow::PaymentVoided::SIGNATURE_HASH, "voided"),
        (
            AuthCaptureEscrow::PaymentReclaimed::SIGNATURE_HASH,
            "reclaimed",
        ),
    ];
    let mut out: HashMap<B256, BTreeMap<&'static str, u32>> = HashMap::new();
    for log in logs {
        let topics = log.topics();
        let (Some(sig), Some(hash)) = (topics.first(), topics.get(1)) else {
            continue;
        };
        // (Other escrow events, like the operator's token store creation, are not per payment.)
        let Some(name) = names.iter().find(|(s, _)| s == sig).map(|(_, n)| *n) else {
            continue;
        };
        *out.entry(*hash).or_default().entry(name).or_default() += 1;
    }
    out
}

/// How many logs the escrow emitted on the canonical chain (all kinds).
pub async fn escrow_log_count(chain: &Chain) -> usize {
    chain
        .plain
        .get_logs(&Filter::new().address(chain.escrow()).from_block(0))
        .await
        .expect("escrow logs")
        .len()
}

/// Every payment ended as its order asked, exactly once, in the database and on chain:
/// one payment row per order, each captured or voided; `paymentState` agrees; one authorize
/// event per payment and exactly one capture (captured) or void (voided) event, nothing else;
/// the payer, receiver and fee receiver balances moved by exactly the captured amounts and their
/// fees; the signer's nonces have no gaps; `x402-escrow reconcile` reports no difference.
pub async fn assert_ledger(
    setup: &OperatorSetup,
    chain: &Chain,
    store: &Store,
    paid: &[Paid],
    before: Balances,
) {
    use sqlx::Row;
    assert_eq!(
        count(store, "payments").await,
        paid.len() as i64,
        "one payment row per paid request"
    );
    let rows = sqlx::query("SELECT id, request_id, payment_hash, status, amount FROM payments")
        .fetch_all(store.pool())
        .await
        .expect("payments");
    let by_id: HashMap<String, (String, String, String)> = rows
        .iter()
        .map(|r| {
            (
                r.try_get::<String, _>("id").expect("id"),
                (
                    r.try_get::<Option<String>, _>("request_id")
                        .expect("request id")
                        .unwrap_or_default(),
                    r.try_get::<String, _>("payment_hash").expect("hash"),
                    r.try_get::<String, _>("status").expect("status"),
                ),
            )
        })
        .collect();
    let events = escrow_events(chain).await;
    let mut captured_total = 0u128;
    let mut fees = 0u128;
    for p in paid {
        let (rid, hash, status) = by_id
            .get(&p.id)
            .unwrap_or_else(|| panic!("payment {} ({}) not in the database", p.id, p.rid));
        assert_eq!(rid, &p.rid);
        assert_eq!(hash.parse::<B256>().expect("hash"), p.hash);
        let want = if p.capture { "captured" } else { "voided" };
        assert_eq!(status, want, "{}: {}", p.rid, p.id);
        let (collected, capturable, refundable) = chain.state(p.hash).await;
        let amount = p.amount as u128;
        assert!(collected, "{}: not collected on chain", p.rid);
        assert_eq!(capturable, 0, "{}: still capturable on chain", p.rid);
        assert_eq!(
            refundable,
            if p.capture { amount } else { 0 },
            "{}: refundable on chain",
            p.rid
        );
        let mut want_events = BTreeMap::from([("authorized", 1u32)]);
        want_events.insert(if p.capture { "captured" } else { "voided" }, 1);
        assert_eq!(
            events.get(&p.hash),
            Some(&want_events),
            "{}: escrow events of {}",
            p.rid,
            p.hash
        );
        if p.capture {
            captured_total += amount;
            fees += fee(amount);
        }
    }
    assert_eq!(
        events.len(),
        paid.len(),
        "escrow events for payments nobody asked for"
    );
    let after = balances(chain).await;
    assert_eq!(after.payer, before.payer - captured_total, "payer balance");
    assert_eq!(
        after.receiver,
        before.receiver + captured_total - fees,
        "receiver balance"
    );
    assert_eq!(
        after.fee_receiver,
        before.fee_receiver + fees,
        "fee receiver balance"
    );
    crate::operator_support::assert_nonces(store, chain).await;
    setup.assert_reconcile_clean().await;
}

/// Sets `[section] key = value` in a config table.
pub fn set(table: &mut toml::Table, section: &str, key: &str, value: toml::Value) {
    table
        .entry(section.to_owned())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .expect("a table")
        .insert(key.to_owned(), value);
}
