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

mod ceiling;
mod db;
mod load;
mod report;
mod run;

use clap::{Args, ValueEnum};
use eyre::{Result, bail, ensure};
use serde::Serialize;
use std::path::PathBuf;

use x402_escrow_demo::USDC;

use report::BenchReport;
use run::run;

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
