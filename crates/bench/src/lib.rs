//! `x402-escrow bench` (issue 5, "Benchmarks"): a load driver for the whole paid path.
//!
//! Starts the pinned anvil (automine, or interval mining with `--block-time`), deploys the
//! contracts, prepares an operator database (a merchant, optionally `--seed-payments` settled
//! payments written straight through the store, with the chain rows a run leaves), runs the
//! operator as a **child process** (`x402-escrow serve` of the binary given, so its CPU time and
//! peak RSS can be read from `/proc/<pid>`), serves a merchant behind the SDK's
//! [`X402Layer`](x402_escrow_sdk::merchant::X402Layer) in this process, and drives `--buyers`
//! concurrent [`BuyerClient`](x402_escrow_sdk::BuyerClient)s against it:
//!
//! 1. a baseline: the same handler on a free route, same concurrency, same request count;
//! 2. the paid run: `402 → sign → authorize (on chain) → handler → capture`;
//! 3. settlement: waits until every paid request's payment is `captured` with its capture final;
//! 4. optionally (`--anvil-ceiling N`) anvil's own ceiling for the same transactions: N `authorize`
//!    and N `capture` calls signed locally with consecutive nonces and sent without any operator in
//!    between.
//!
//! Two modes (`--mode`):
//!
//! - `paid` (the default) is the sequence above;
//! - `facilitator` signs `--requests` x402 payloads (`--scheme exact` or `auth-capture`) before
//!   the timed phase, as x402 clients would, then posts them from `--buyers` concurrent clients
//!   to the operator's facilitator `POST /settle` with the merchant's API key (no merchant layer,
//!   no baseline): settles per second, latency per settle, failures, and SQL writes,
//!   transactions and gas per settle.
//!
//! The operator's database is a SQLite file in the run's scratch directory, or with
//! `--database postgres://…` a fresh PostgreSQL database created on that server for the run and
//! dropped afterwards. On PostgreSQL, `--instances N` runs N operator processes (each its own
//! port and instance id) on that one database; the merchant side assigns clients to instances
//! round robin (client `b` talks to instance `b % N`), so a payment taken by one instance is
//! sent by whichever holds the signer lease.
//!
//! It reports paid requests per second, p50/p95/p99 latency of both routes and their difference
//! (the latency the payment path adds), the operator's CPU and peak RSS (`VmHWM`), and gas per
//! operation from the stored receipts. Every child process is killed on exit, error or Ctrl-C.
//!
//! The operator's database is reached through [`BenchDatabase`], which the binary implements
//! over the operator's store (this crate does not depend on the operator library, which the
//! binary itself is part of).
#![warn(missing_docs)]

mod ceiling;
mod facilitator;
mod load;
mod paid;
mod report;
mod run;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;

use alloy::primitives::Address;
use clap::{Args, ValueEnum};
use serde::Serialize;
use x402_escrow_demo::USDC;

pub use report::{
    BenchReport, BenchSummary, CeilingReport, FacilitatorReport, InstanceReport, PaidReport,
    PerPaidRequest, Percentiles, TxKindReport,
};
pub use run::run;

/// The price of one paid request ($0.01), atomic units.
pub const PRICE: u64 = USDC / 100;
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

/// What the bench drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BenchMode {
    /// Buyers pay a merchant route behind the SDK's layer (402, sign, authorize, capture).
    Paid,
    /// Pre-signed payloads posted to the operator's x402 facilitator `POST /settle`.
    Facilitator,
}

/// The x402 scheme of the facilitator mode's payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
pub enum BenchScheme {
    /// ERC-3009 `transferWithAuthorization` straight to the merchant (one transfer per settle).
    #[value(name = "exact")]
    #[serde(rename = "exact")]
    Exact,
    /// An escrow hold (`authorize`, one transaction per settle; the payment stays authorized).
    #[value(name = "auth-capture")]
    #[serde(rename = "auth-capture")]
    AuthCapture,
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
    /// directly through the store, with the chain rows a loaded run leaves (each payment's
    /// single merged into a final `execute` of the signer, 16 to a batch): for RSS and query
    /// cost with a big history.
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
    /// Send the operator's escrow calls through its EIP-7702 batch executor
    /// (`batch.use_executor`, the operator's default): one transaction carries many authorize /
    /// capture calls. `--executor false`: one transaction per call.
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub executor: bool,
    /// Afterwards, send this many `authorize` and as many `capture` transactions straight to
    /// anvil (no operator) to measure the node's own ceiling for them; 0 = skip.
    #[arg(long, default_value_t = 0)]
    pub anvil_ceiling: u64,
    /// What to drive: buyers through the merchant layer (`paid`) or pre-signed payloads posted
    /// to the operator's facilitator `POST /settle` (`facilitator`, needs `--requests`).
    #[arg(long, value_enum, default_value_t = BenchMode::Paid)]
    pub mode: BenchMode,
    /// The facilitator mode's scheme.
    #[arg(long, value_enum, default_value_t = BenchScheme::AuthCapture)]
    pub scheme: BenchScheme,
    /// Run the operator on this PostgreSQL server (`postgres://user@host:port/db`) instead of a
    /// SQLite file: the bench creates a fresh database `x402_bench_<uuid>` there (the URL's
    /// database is only used to connect for that) and drops it at the end.
    #[arg(long)]
    pub database: Option<String>,
    /// Operator processes on the one database (PostgreSQL only), each with its own port and
    /// instance id; clients are assigned to them round robin.
    #[arg(long, default_value_t = 1)]
    pub instances: usize,
    /// Signer lanes: operator keys, each with its own nonce sequence, leased by one instance at
    /// a time (1–[`MAX_SIGNERS`]). Above 1 the operators get them as `X402_SIGNER_KEYS` and the
    /// merchant's challenges name the lanes in turn as `captureAuthorizer`.
    #[arg(long, default_value_t = 1)]
    pub signers: usize,
    /// Print the report as one line of JSON (its `summary` object has the key numbers) instead
    /// of a table.
    #[arg(long)]
    pub json: bool,
    /// Keep the scratch directory (database, operator log) instead of deleting it.
    #[arg(long)]
    pub keep_dir: bool,
    /// Use this anvil binary instead of the pinned toolchain's.
    #[arg(long, env = "X402_ANVIL")]
    pub anvil: Option<PathBuf>,
}

/// The most signer lanes `--signers` takes (anvil's funded development keys 1 and 5–9).
pub const MAX_SIGNERS: usize = 6;

/// One signer lane at the end of a run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LaneReport {
    /// The lane's address (lower-case hex).
    pub signer: String,
    /// The instance holding its lease at the end, if any.
    pub lease_owner: Option<String>,
    /// Transactions it sent that were mined (`final` or `reverted`).
    pub transactions: i64,
    /// Payments pinned to it (their `operator` is its address).
    pub payments: i64,
}

/// A boxed error source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The seed history asked for (`--seed-payments`).
#[derive(Debug, Clone, Copy)]
pub struct Seed {
    /// How many settled payments to write (0 = none).
    pub count: u64,
    /// Their chain.
    pub chain_id: u64,
    /// Their escrow.
    pub escrow: Address,
    /// The first lane's key: the seeded payments name it as their operator, and the seeded
    /// batches are its transactions, as those of a run would be.
    pub signer: Address,
    /// The signer's next nonce on the chain before the seed: the seeded batches hold the
    /// nonces from here on (the bench then moves the chain's nonce past them).
    pub first_nonce: u64,
}

/// The merchant the buyers pay.
#[derive(Debug, Clone)]
pub struct BenchMerchant {
    /// Its id in the operator's database.
    pub id: String,
    /// Its operator API key.
    pub api_key: String,
    /// Seconds spent creating the seed merchant and writing the seed.
    pub seed_secs: f64,
    /// The settled `execute` rows the seed wrote: they hold the signer's nonces
    /// `first_nonce .. first_nonce + seed_batches`.
    pub seed_batches: u64,
}

/// The operator's database as the bench uses it: created and prepared before the operator
/// starts, read while and after it runs, closed (and a database it created dropped) at the end.
pub trait BenchDatabase {
    /// A fresh database for this run from `url`: a SQLite URL is used as given (the bench puts
    /// the file in its scratch directory); a PostgreSQL URL names a server on which a new
    /// database is created. Returns the URL the operator and [`prepare`](Self::prepare) use.
    fn create(&mut self, url: &str) -> impl Future<Output = Result<String, BoxError>> + Send;
    /// Opens and migrates the database at `url`, creates the bench merchant paid to
    /// `receiver` (capture deadline 900 s) and, with `seed.count > 0`, another merchant with
    /// that many settled payments and the chain rows a run leaves behind (each payment's single
    /// merged into a final `execute` of the signer), all dated in the past: the operator never
    /// acts on them, and the bench's reads of its own run leave them out.
    fn prepare(
        &mut self,
        url: &str,
        receiver: Address,
        seed: Seed,
    ) -> impl Future<Output = Result<BenchMerchant, BoxError>> + Send;
    /// The merchant's payments captured with nothing of theirs still in flight.
    fn captured_count(&self, merchant: &str) -> impl Future<Output = Result<u64, BoxError>> + Send;
    /// The merchant's payments per status.
    fn statuses(
        &self,
        merchant: &str,
    ) -> impl Future<Output = Result<BTreeMap<String, i64>, BoxError>> + Send;
    /// Every transaction kind's totals from the outbox.
    fn transactions(&self) -> impl Future<Output = Result<Vec<TxKindReport>, BoxError>> + Send;
    /// The instance id holding the (first) signer lease, if any.
    fn signer_lease_owner(&self) -> impl Future<Output = Result<Option<String>, BoxError>> + Send;
    /// Every signer lane: its lease holder, the transactions it sent and the payments pinned
    /// to it.
    fn lanes(&self) -> impl Future<Output = Result<Vec<LaneReport>, BoxError>> + Send;
    /// Closes the database and drops a database [`create`](Self::create) made. Safe to call
    /// more than once.
    fn close(&mut self) -> impl Future<Output = ()> + Send;
}

/// Why the bench could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Setting up the chain or the operator process failed.
    #[error(transparent)]
    Testkit(#[from] x402_escrow_testkit::Error),
    /// A step failed.
    #[error("{what}")]
    Step {
        /// What was being done.
        what: String,
        /// Why.
        #[source]
        source: BoxError,
    },
    /// Something did not go as the bench expects.
    #[error("{0}")]
    Unexpected(String),
    /// The options do not fit together (nothing was started).
    #[error("{0}")]
    Usage(String),
}

/// `Result` with [`BenchError`].
pub type Result<T, E = BenchError> = std::result::Result<T, E>;

/// Names the step an error comes from.
trait Step<T> {
    fn step(self, what: impl Into<String>) -> Result<T>;
}

impl<T, E: Into<BoxError>> Step<T> for std::result::Result<T, E> {
    fn step(self, what: impl Into<String>) -> Result<T> {
        self.map_err(|e| BenchError::Step {
            what: what.into(),
            source: e.into(),
        })
    }
}

/// `ensure!` for [`BenchError::Unexpected`].
macro_rules! check {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(BenchError::Unexpected(format!($($fmt)+)));
        }
    };
}
pub(crate) use check;

/// `ensure!` for [`BenchError::Usage`].
macro_rules! usage {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(BenchError::Usage(format!($($fmt)+)));
        }
    };
}
pub(crate) use usage;
