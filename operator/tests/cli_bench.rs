//! `x402-escrow bench` end to end at a tiny size: 2 buyers × 5 paid requests on an automining
//! anvil, the operator as a child process. Checks the command exits 0, answers every paid
//! request, captures every payment and reports the operator's CPU, RSS and gas per operation.

use std::process::Command;

#[test]
fn bench_runs_two_buyers_five_requests_and_captures_all() {
    let output = Command::new(env!("CARGO_BIN_EXE_x402-escrow"))
        .args([
            "bench",
            "--buyers",
            "2",
            "--requests",
            "10",
            "--anvil-ceiling",
            "4",
            "--json",
        ])
        .output()
        .expect("running x402-escrow bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "bench failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    let report: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}"));
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
}
