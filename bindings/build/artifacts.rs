//! The contracts the bindings are generated from, the forge build that produces their artifacts,
//! and the reduction of a Foundry artifact to what `sol!` reads.
//!
//! Shared by `build.rs` (`#[path = "build/artifacts.rs"]`) and by the snapshot drift test
//! (`tests/artifact_snapshot.rs`), so both compile and reduce the contracts the same way.
//!
//! The reduced artifact keeps Foundry's shape, minus everything the bindings do not read:
//! `{"abi": […], "bytecode": {"object": "0x…"}, "deployedBytecode": {"object": "0x…"}}`. The
//! bytecode is forge's, unchanged: CREATE2 addresses depend on it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// (Solidity file, contract name, Rust module name, one-line description).
pub const CONTRACTS: &[(&str, &str, &str, &str)] = &[
    (
        "AuthCaptureEscrow.sol",
        "AuthCaptureEscrow",
        "auth_capture_escrow",
        "The escrow: authorize, capture, void, reclaim, refund, charge.",
    ),
    (
        "AuthCaptureEscrowV1_1.sol",
        "AuthCaptureEscrowV1_1",
        "auth_capture_escrow_v1_1",
        "The escrow with the Commerce Payments v1.1 fee interface added (`capture` / `charge` with an absolute `feeAmount`); a test stand-in for v1.1 escrows.",
    ),
    (
        "TokenStore.sol",
        "TokenStore",
        "token_store",
        "The per-operator vault (implementation; operators get minimal-proxy clones).",
    ),
    (
        "ERC3009PaymentCollector.sol",
        "ERC3009PaymentCollector",
        "erc3009_payment_collector",
        "Payment collector that spends the payer's ERC-3009 `ReceiveWithAuthorization` signature.",
    ),
    (
        "Permit2PaymentCollector.sol",
        "Permit2PaymentCollector",
        "permit2_payment_collector",
        "Payment collector that spends the payer's Uniswap Permit2 `PermitTransferFrom` signature.",
    ),
    (
        "PreApprovalPaymentCollector.sol",
        "PreApprovalPaymentCollector",
        "pre_approval_payment_collector",
        "Payment collector for payers who approved the collector and pre-approved the payment on chain.",
    ),
    (
        "OperatorRefundCollector.sol",
        "OperatorRefundCollector",
        "operator_refund_collector",
        "Refund collector that pulls refunds from the operator's own allowance.",
    ),
    (
        "TestUSDC.sol",
        "TestUSDC",
        "test_usdc",
        "USDC-like ERC-3009 / EIP-2612 test token for development chains.",
    ),
    (
        "Multicall3.sol",
        "Multicall3",
        "multicall3",
        "The `tryAggregate` subset of Multicall3 for development chains without the public singleton.",
    ),
    (
        "OperatorBatchExecutor.sol",
        "OperatorBatchExecutor",
        "operator_batch_executor",
        "EIP-7702 executor: the operator's signer delegates to it and sends many escrow calls in one transaction, each as itself.",
    ),
];

/// The committed snapshot directory, relative to the bindings crate: `<Contract>.json` each.
pub const SNAPSHOT_DIR: &str = "artifacts";

/// Where the forge build writes its artifacts, relative to the workspace root.
pub const FORGE_OUT: &str = "target/forge-bindings";

/// The forge build's cache, relative to the workspace root.
pub const FORGE_CACHE: &str = "target/forge-bindings-cache";

/// The full Foundry artifact of `name` (declared in `file`) in forge's out directory.
pub fn forge_artifact(forge_out: &Path, file: &str, name: &str) -> PathBuf {
    forge_out.join(file).join(format!("{name}.json"))
}

/// The reduced artifact of `name` in a snapshot directory.
pub fn snapshot_artifact(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.json"))
}

/// `FOUNDRY_PROFILE=deploy tools/toolchain forge build contracts` into `root/FORGE_OUT` (cache
/// `root/FORGE_CACHE`), so it never races other forge runs in the workspace. Only `contracts/`
/// is compiled: tests and scripts are not part of the bindings.
pub fn forge_build(root: &Path) -> Result<(), String> {
    let toolchain = root.join("tools/toolchain");
    // Two cargo invocations with different target directories may run this at once; serialise
    // on a lock file when util-linux `flock` is available (it is wherever tools/toolchain itself
    // works, which uses it to serialise installs).
    let lock = root.join("target/.forge-bindings.lock");
    let mut command = if Command::new("flock").arg("--version").output().is_ok() {
        let mut c = Command::new("flock");
        c.arg(&lock).arg(&toolchain);
        c
    } else {
        Command::new(&toolchain)
    };
    command
        .current_dir(root)
        .args(["forge", "build", "contracts"])
        // Only the variables we mean: a developer's FOUNDRY_PROFILE must not leak in.
        .env("FOUNDRY_PROFILE", "deploy")
        .env("FOUNDRY_OUT", root.join(FORGE_OUT))
        .env("FOUNDRY_CACHE_PATH", root.join(FORGE_CACHE))
        .env_remove("FOUNDRY_SRC")
        .env_remove("FOUNDRY_VIA_IR")
        .env_remove("FOUNDRY_OPTIMIZER")
        .env_remove("FOUNDRY_OPTIMIZER_RUNS")
        .env_remove("FOUNDRY_EVM_VERSION")
        .env("FOUNDRY_DISABLE_NIGHTLY_WARNING", "1");
    run_command(
        &mut command,
        "FOUNDRY_PROFILE=deploy tools/toolchain forge build contracts",
    )
    .map(drop)
}

/// Runs `command`; its output on success, or an error naming `what` with stdout and stderr.
pub fn run_command(command: &mut Command, what: &str) -> Result<Output, String> {
    let output = command
        .output()
        .map_err(|e| format!("could not run {what}: {e}"))?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(format!(
            "{what} failed ({})\n{}",
            output.status,
            describe(&output)
        ))
    }
}

/// A command's stdout and stderr, for error messages.
pub fn describe(output: &Output) -> String {
    format!(
        "--- stdout ---\n{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&output.stdout).trim_end(),
        String::from_utf8_lossy(&output.stderr).trim_end()
    )
}

/// Reads the full Foundry artifact at `path` and reduces it (see [`reduce`]).
pub fn reduce_file(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    reduce(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// A full Foundry artifact reduced to its ABI and the `object` of `bytecode` and
/// `deployedBytecode` (pretty JSON with sorted keys, newline-terminated), refusing unlinked
/// library references.
pub fn reduce(artifact: &str) -> Result<String, String> {
    let full: serde_json::Value =
        serde_json::from_str(artifact).map_err(|e| format!("not JSON: {e}"))?;
    let abi = full.get("abi").ok_or("no `abi`")?;
    if !abi.is_array() {
        return Err("`abi` is not an array".into());
    }
    let object = |key: &str| -> Result<serde_json::Value, String> {
        let code = full.get(key).ok_or_else(|| format!("no `{key}`"))?;
        let object = code
            .get("object")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| format!("no `{key}.object` string"))?;
        // An unlinked library leaves `__$…$__` placeholders: not deployable as is.
        if object.contains("__$") {
            return Err(format!("`{key}` has unlinked library references"));
        }
        Ok(serde_json::json!({ "object": object }))
    };
    let reduced = serde_json::json!({
        "abi": abi,
        "bytecode": object("bytecode")?,
        "deployedBytecode": object("deployedBytecode")?,
    });
    let mut text = serde_json::to_string_pretty(&sorted(reduced)).map_err(|e| e.to_string())?;
    text.push('\n');
    Ok(text)
}

/// `value` with every object's keys in sorted order, whatever map serde_json was built with
/// (its `preserve_order` feature keeps insertion order), so the reduced text is canonical.
fn sorted(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.into_iter().collect();
            entries.sort_by(|(a, _), (b, _)| a.cmp(b));
            serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(sorted).collect())
        }
        other => other,
    }
}
