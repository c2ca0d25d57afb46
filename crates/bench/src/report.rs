//! What `x402-escrow bench` reports, and its text rendering.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::{BenchCaptureMode, BenchSynchronous};

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
    pub(crate) fn of(samples: &mut [Duration]) -> Percentiles {
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

/// What one captured paid request cost, on average, from the start of the paid phase until
/// the last capture was final.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct PerPaidRequest {
    /// SQL write transactions the operator committed (`x402_store_write_transactions_total`;
    /// `None` when the operator does not export it). Includes its idle loops over the period.
    pub sql_writes: Option<f64>,
    /// Chain transactions final (a batch counts once, however many payments it carried).
    pub transactions: f64,
    /// Gas used by those transactions (authorize + capture, each transaction's base cost
    /// included, a batch's gas shared among its members).
    pub gas: f64,
}

impl PerPaidRequest {
    /// The costs of `captured` requests, from the writes counter before and after and the
    /// per-kind transaction totals.
    pub fn of(
        captured: u64,
        writes: Option<(u64, u64)>,
        transactions: &[TxKindReport],
    ) -> PerPaidRequest {
        if captured == 0 {
            return PerPaidRequest::default();
        }
        let n = captured as f64;
        let txs: i64 = transactions.iter().map(|t| t.final_count).sum();
        let gas: f64 = transactions
            .iter()
            .map(|t| t.gas_mean * t.final_count as f64)
            .sum();
        PerPaidRequest {
            sql_writes: writes.map(|(before, after)| after.saturating_sub(before) as f64 / n),
            transactions: txs as f64 / n,
            gas: gas / n,
        }
    }
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
    /// Whether escrow calls went through the EIP-7702 batch executor.
    pub executor: bool,
    /// What one paid request cost the operator, over the paid phase and its settlement.
    pub per_paid_request: PerPaidRequest,
    /// Per transaction kind.
    pub transactions: Vec<TxKindReport>,
    /// Anvil's own ceiling, when measured.
    pub anvil_ceiling: Option<CeilingReport>,
}

pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The current UTC time, RFC 3339 (seconds).
pub(crate) fn chrono_now() -> String {
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
        let per = &self.per_paid_request;
        line(format!(
            "per paid request {:>10} SQL writes, {:.2} transactions, {:.0} gas{}",
            per.sql_writes
                .map_or_else(|| "n/a".to_owned(), |w| format!("{w:.1}")),
            per.transactions,
            per.gas,
            if self.executor {
                " (through the EIP-7702 executor)"
            } else {
                ""
            }
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
