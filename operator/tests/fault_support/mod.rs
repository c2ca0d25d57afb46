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
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256};
use alloy::providers::Provider;
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use x402_escrow_bindings::AuthCaptureEscrow;
use x402_escrow_operator::store::Store;

use crate::operator_support::{Api, Chain, FEE_BPS, count, tx_statuses};

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

/// A free local port for the operator, which binds it again on every restart. Picked below
/// Linux's ephemeral range (32768–60999), so that while the operator is down no outgoing
/// connection of this or another process can be given the same port.
pub fn free_port() -> u16 {
    use rand::Rng;
    let mut rng = rand::rng();
    for _ in 0..200 {
        let port = rng.random_range(20_000..32_000u16);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 20000..32000");
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

    fn command(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("-c").arg(&self.config_path);
        // Nothing of the test's own environment leaks into the operator's configuration.
        for (k, _) in std::env::vars() {
            if k.starts_with("X402_") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Runs an admin command (`migrate`, `merchant add …`, `reconcile`) to completion, without
    /// blocking the test's runtime (its proxies and receivers keep serving meanwhile).
    pub async fn cli(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = tokio::process::Command::from(self.command());
        cmd.args(args)
            .kill_on_drop(true)
            .output()
            .await
            .expect("run x402-escrow")
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
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("log file");
        let child = self
            .command()
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn x402-escrow serve");
        OperatorProcess {
            child: Some(child),
            addr: self.addr,
        }
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
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

/// One running `x402-escrow serve`. Dropping it kills it.
pub struct OperatorProcess {
    child: Option<Child>,
    pub addr: SocketAddr,
}

impl OperatorProcess {
    /// Waits until `/healthz` answers 200; panics if the process exits or the time runs out.
    pub async fn wait_healthy(&mut self, timeout: Duration, log: &Path) {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("client");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                panic!("the operator exited ({status}) while starting:\n{text}");
            }
            if let Ok(r) = http
                .get(format!("http://{}/healthz", self.addr))
                .send()
                .await
                && r.status().as_u16() == 200
            {
                return;
            }
            assert!(Instant::now() < deadline, "operator not healthy");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `Some(exit status)` once the process has ended.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    /// SIGKILL (no shutdown handling runs) and reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM (graceful shutdown) and wait for the exit, bounded; SIGKILL if it takes too long.
    pub async fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the operator did not stop within 20 s of SIGTERM");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---- a switchable TCP proxy ----------------------------------------------------------------

/// How the proxy treats traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyMode {
    /// Forward both ways.
    Up,
    /// The endpoint is gone: open connections are cut, new ones reset as soon as accepted (the
    /// listener stays bound, so nobody else can take the port meanwhile).
    Refuse,
    /// A black hole: every open connection goes silent and new ones are accepted but never
    /// answered. Connections caught in it stay silent for good, even after the proxy is up
    /// again (the peer or a middlebox lost their state without telling anyone); only new
    /// connections are forwarded.
    Blackhole,
}

/// A TCP proxy from a local port to `upstream` whose [`ProxyMode`] the test switches.
#[derive(Clone)]
pub struct Proxy {
    pub addr: SocketAddr,
    mode: Arc<tokio::sync::watch::Sender<ProxyMode>>,
    /// Connections accepted while up / refused while down / swallowed by the black hole.
    pub accepted: Arc<AtomicU64>,
    pub refused: Arc<AtomicU64>,
    pub swallowed: Arc<AtomicU64>,
    held: Arc<Mutex<Vec<TcpStream>>>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    task: Arc<JoinHandle<()>>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("addr");
        let (mode, _) = tokio::sync::watch::channel(ProxyMode::Up);
        let mode = Arc::new(mode);
        let accepted = Arc::new(AtomicU64::new(0));
        let refused = Arc::new(AtomicU64::new(0));
        let swallowed = Arc::new(AtomicU64::new(0));
        let held: Arc<Mutex<Vec<TcpStream>>> = Arc::new(Mutex::new(Vec::new()));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::new(Mutex::new(Vec::new()));
        let task = {
            let (mode, accepted, refused, swallowed, held, conns) = (
                mode.clone(),
                accepted.clone(),
                refused.clone(),
                swallowed.clone(),
                held.clone(),
                conns.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let Ok((inbound, _)) = listener.accept().await else {
                        continue;
                    };
                    let now = *mode.borrow();
                    match now {
                        ProxyMode::Refuse => {
                            refused.fetch_add(1, Ordering::Relaxed);
                            // Reset at once (linger 0 → RST), like a dead host's port.
                            #[allow(deprecated)] // zero linger: an RST, no blocking
                            let _ = inbound.set_linger(Some(Duration::ZERO));
                            drop(inbound);
                            continue;
                        }
                        ProxyMode::Blackhole => {
                            swallowed.fetch_add(1, Ordering::Relaxed);
                            held.lock().await.push(inbound);
                            continue;
                        }
                        ProxyMode::Up => {}
                    }
                    accepted.fetch_add(1, Ordering::Relaxed);
                    let mut rx = mode.subscribe();
                    let held = held.clone();
                    let handle = tokio::spawn(async move {
                        let mut outbound = match TcpStream::connect(upstream).await {
                            Ok(s) => s,
                            Err(e) => {
                                eprintln!("proxy {upstream}: cannot connect upstream: {e}");
                                return;
                            }
                        };
                        let mut inbound = inbound;
                        let silenced = tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => false,
                            _ = rx.wait_for(|m| *m == ProxyMode::Blackhole) => true,
                        };
                        if silenced {
                            // Keep the client's socket open and never answer on it.
                            held.lock().await.push(inbound);
                        } else {
                            let _ = inbound.shutdown().await;
                        }
                    });
                    let mut all = conns.lock().await;
                    all.retain(|h| !h.is_finished());
                    all.push(handle);
                }
            })
        };
        Proxy {
            addr,
            mode,
            accepted,
            refused,
            swallowed,
            held,
            conns,
            task: Arc::new(task),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Switches the mode (see [`ProxyMode`]).
    pub async fn set_mode(&self, mode: ProxyMode) {
        self.mode.send_replace(mode);
        if mode == ProxyMode::Refuse {
            for h in self.conns.lock().await.drain(..) {
                h.abort();
            }
        }
    }

    /// `Refuse` (true) or `Up` (false).
    pub async fn set_down(&self, down: bool) {
        self.set_mode(if down {
            ProxyMode::Refuse
        } else {
            ProxyMode::Up
        })
        .await;
    }

    /// Connections held silent by the black hole.
    pub async fn held(&self) -> usize {
        self.held.lock().await.len()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if Arc::strong_count(&self.task) == 1 {
            self.task.abort();
        }
    }
}

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
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        match t.await {
            Ok(p) => out.push(p),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("payment task: {e}"),
        }
    }
    out
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

pub fn fee(amount: u128) -> u128 {
    amount * FEE_BPS as u128 / 10_000
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
