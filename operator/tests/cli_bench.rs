//! `x402-escrow bench` end to end at a tiny size: 2 buyers × 5 paid requests on an automining
//! anvil, the operator as a child process. Checks the command exits 0, answers every paid
//! request, captures every payment and reports the operator's CPU, RSS, gas per operation and
//! the cost per paid request; the same through the EIP-7702 executor (`--executor`).

use std::process::Command;

/// Runs `x402-escrow bench ARGS` (with `--json`) and returns its report.
fn run_bench(args: &[&str]) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_x402-escrow"))
        .arg("bench")
        .args(args)
        .output()
        .expect("running x402-escrow bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "bench failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}"))
}

#[test]
fn bench_runs_two_buyers_five_requests_and_captures_all() {
    let report = run_bench(&[
        "--buyers",
        "2",
        "--requests",
        "10",
        "--anvil-ceiling",
        "4",
        "--json",
    ]);
    assert_eq!(report["buyers"], 2);
    assert_eq!(report["paid_ok"], 10, "{report:#}");
    assert_eq!(report["paid_failed"], 0, "{report:#}");
    assert_eq!(report["captured"], 10, "{report:#}");
    assert_eq!(report["baseline_ok"], 10, "{report:#}");
    assert_eq!(report["statuses"]["captured"], 10, "{report:#}");
    assert_eq!(report["paid_latency_ms"]["count"], 10);
    assert!(report["paid_rps"].as_f64().unwrap_or(0.0) > 0.0);
    assert!(report["operator_peak_rss_mib"].as_f64().unwrap_or(0.0) > 1.0);
    assert!(report["operator_cpu_secs"].as_f64().unwrap_or(0.0) > 0.0);
    let txs = report["transactions"].as_array().expect("transactions");
    let kind = |k: &str| {
        txs.iter()
            .find(|t| t["kind"] == k)
            .unwrap_or_else(|| panic!("no {k} transactions: {report:#}"))
    };
    let authorize = kind("authorize");
    assert_eq!(authorize["final_count"], 10, "authorize: {authorize}");
    assert_eq!(authorize["reverted"], 0, "authorize: {authorize}");
    assert_eq!(authorize["other"], 0, "authorize: {authorize}");
    let gas = authorize["gas_per_operation"].as_f64().unwrap_or(0.0);
    assert!(gas > 21_000.0 && gas < 500_000.0, "authorize gas {gas}");
    // Captures go out singly or merged into capture batches (`[batch]`): either way, ten
    // capture operations final, nothing reverted or left behind, and every merged single row
    // accounted for by a batch member.
    let ops = |k: &str| {
        txs.iter()
            .find(|t| t["kind"] == k)
            .map(|t| {
                assert_eq!(t["reverted"], 0, "{k}: {t}");
                assert_eq!(t["other"], 0, "{k}: {t}");
                (
                    t["operations"].as_i64().unwrap_or(-1),
                    t["merged"].as_i64().unwrap_or(-1),
                )
            })
            .unwrap_or((0, 0))
    };
    let (single, merged) = ops("capture");
    let (batched, _) = ops("capture_batch");
    assert_eq!(single + batched, 10, "capture operations: {report:#}");
    assert_eq!(
        merged, batched,
        "merged singles = batch members: {report:#}"
    );
    for k in ["capture", "capture_batch"] {
        if let Some(t) = txs
            .iter()
            .find(|t| t["kind"] == k && t["operations"].as_i64() > Some(0))
        {
            let gas = t["gas_per_operation"].as_f64().unwrap_or(0.0);
            assert!(
                gas > 10_000.0 && gas < 500_000.0,
                "{k} gas per capture {gas}"
            );
        }
    }
    let ceiling = &report["anvil_ceiling"];
    assert_eq!(ceiling["count"], 4);
    assert!(ceiling["pairs_per_sec"].as_f64().unwrap_or(0.0) > 0.0);
    // What a paid request cost: SQL writes (from the operator's counter), an authorize and a
    // capture (fewer when captures shared a batch), and their gas.
    let per = &report["per_paid_request"];
    let writes = per["sql_writes"].as_f64().unwrap_or(-1.0);
    assert!(writes >= 1.0 && writes < 200.0, "writes per paid request: {per}");
    let per_txs = per["transactions"].as_f64().unwrap_or(-1.0);
    assert!(per_txs > 1.0 && per_txs <= 2.0, "transactions per paid request: {per}");
    let per_gas = per["gas"].as_f64().unwrap_or(-1.0);
    assert!(per_gas > 60_000.0 && per_gas < 1_000_000.0, "gas per paid request: {per}");
    assert_eq!(report["executor"], false);
}

/// `--executor`: the operator's signer delegates to the EIP-7702 batch executor once, every paid
/// request is still answered and captured, nothing reverts.
#[test]
fn bench_through_the_executor_captures_all() {
    let report = run_bench(&["--buyers", "2", "--requests", "10", "--executor", "--json"]);
    assert_eq!(report["executor"], true);
    assert_eq!(report["paid_ok"], 10, "{report:#}");
    assert_eq!(report["paid_failed"], 0, "{report:#}");
    assert_eq!(report["captured"], 10, "{report:#}");
    assert_eq!(report["statuses"]["captured"], 10, "{report:#}");
    let txs = report["transactions"].as_array().expect("transactions");
    for t in txs {
        assert_eq!(t["reverted"], 0, "{t}");
        assert_eq!(t["other"], 0, "{t}");
    }
    let final_of = |k: &str| {
        txs.iter()
            .find(|t| t["kind"] == k)
            .map_or(0, |t| t["final_count"].as_i64().unwrap_or(-1))
    };
    assert_eq!(final_of("delegate"), 1, "one delegation: {report:#}");
    // Ten authorizations and ten captures, sent alone or as members of `execute` batches
    // (which depends on how the buyers' requests happened to meet).
    let operations: i64 = txs
        .iter()
        .filter(|t| t["kind"] != "delegate")
        .map(|t| t["operations"].as_i64().unwrap_or(-1))
        .sum();
    assert_eq!(operations, 20, "{report:#}");
    let per_txs = report["per_paid_request"]["transactions"]
        .as_f64()
        .unwrap_or(-1.0);
    assert!(per_txs > 0.0 && per_txs <= 2.1, "{report:#}");
}
