//! Compiles the Solidity contracts with the deploy settings and generates their alloy bindings.
//!
//! 1. `tools/toolchain` (no arguments) installs the pinned toolchain if needed and prints its bin
//!    directory, exported to the crate as `X402_TOOLCHAIN_BIN` (tests find `anvil` there).
//! 2. `tools/toolchain forge build contracts` with `FOUNDRY_PROFILE=deploy` (via-IR, optimizer
//!    100,000 runs: the bytecode we deploy) into `target/forge-bindings` (cache
//!    `target/forge-bindings-cache`), so it never races other engineers' forge runs. Only
//!    `contracts/` is compiled: tests and scripts are not part of the bindings.
//! 3. `$OUT_DIR/contracts.rs` gets one `sol!` invocation per contract, each in its own module
//!    (every artifact that mentions `AuthCaptureEscrow.PaymentInfo` declares that struct, so they
//!    cannot share a namespace), reading the Foundry artifact JSON (ABI + bytecode).

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// (Solidity file, contract name, Rust module name, one-line description).
const CONTRACTS: &[(&str, &str, &str, &str)] = &[
    (
        "AuthCaptureEscrow.sol",
        "AuthCaptureEscrow",
        "auth_capture_escrow",
        "The escrow: authorize, capture, void, reclaim, refund, charge.",
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
];

fn main() {
    if let Err(message) = run() {
        // A panic in a build script prints its message with the cargo error, which is where the
        // developer looks; keep it explicit and actionable.
        panic!("\n\nx402-escrow-bindings build script failed:\n{message}\n");
    }
}

fn run() -> Result<(), String> {
    let manifest_dir = PathBuf::from(env_var("CARGO_MANIFEST_DIR")?);
    let root = manifest_dir
        .parent()
        .ok_or("the bindings crate must live inside the workspace root")?
        .to_path_buf();
    let out_dir = PathBuf::from(env_var("OUT_DIR")?);

    for path in [
        "contracts",
        "foundry.toml",
        "package-lock.json",
        "tools/solc",
        "tools/toolchain",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }
    println!("cargo:rerun-if-changed=build.rs");

    let toolchain = root.join("tools/toolchain");
    let bin_dir = toolchain_bin_dir(&root, &toolchain)?;
    println!("cargo:rustc-env=X402_TOOLCHAIN_BIN={}", bin_dir.display());
    println!("cargo:rustc-env=X402_WORKSPACE_ROOT={}", root.display());

    let forge_out = root.join("target/forge-bindings");
    let forge_cache = root.join("target/forge-bindings-cache");
    forge_build(&root, &toolchain, &forge_out, &forge_cache)?;

    let generated = generate_bindings(&forge_out)?;
    let dest = out_dir.join("contracts.rs");
    fs::write(&dest, generated).map_err(|e| format!("cannot write {}: {e}", dest.display()))?;
    Ok(())
}

fn env_var(name: &str) -> Result<String, String> {
    env::var(name).map_err(|_| format!("cargo did not set {name}"))
}

/// Runs `tools/toolchain` with no arguments: installs (if needed) and prints the bin directory.
fn toolchain_bin_dir(root: &Path, toolchain: &Path) -> Result<PathBuf, String> {
    let mut command = Command::new(toolchain);
    command.current_dir(root);
    let output = run_command(&mut command, "tools/toolchain")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let bin_dir = stdout
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .map(|line| PathBuf::from(line.trim()))
        .ok_or_else(|| {
            format!(
                "tools/toolchain printed no bin directory\n{}",
                describe(&output)
            )
        })?;
    if !bin_dir.join("anvil").exists() || !bin_dir.join("forge").exists() {
        return Err(format!(
            "tools/toolchain printed {} but forge/anvil are not there\n{}",
            bin_dir.display(),
            describe(&output)
        ));
    }
    Ok(bin_dir)
}

/// `FOUNDRY_PROFILE=deploy forge build contracts` into our own out and cache directories.
fn forge_build(root: &Path, toolchain: &Path, out: &Path, cache: &Path) -> Result<(), String> {
    // Two cargo invocations with different target directories may run this script at once;
    // serialise on a lock file when util-linux `flock` is available (it is wherever
    // tools/toolchain itself works, which uses it to serialise installs).
    let lock = root.join("target/.forge-bindings.lock");
    let mut command = if Command::new("flock").arg("--version").output().is_ok() {
        let mut c = Command::new("flock");
        c.arg(&lock).arg(toolchain);
        c
    } else {
        Command::new(toolchain)
    };
    command
        .current_dir(root)
        .args(["forge", "build", "contracts"])
        // Only the variables we mean: a developer's FOUNDRY_PROFILE must not leak in.
        .env("FOUNDRY_PROFILE", "deploy")
        .env("FOUNDRY_OUT", out)
        .env("FOUNDRY_CACHE_PATH", cache)
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

fn run_command(command: &mut Command, what: &str) -> Result<Output, String> {
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

fn describe(output: &Output) -> String {
    format!(
        "--- stdout ---\n{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&output.stdout).trim_end(),
        String::from_utf8_lossy(&output.stderr).trim_end()
    )
}

fn generate_bindings(forge_out: &Path) -> Result<String, String> {
    let mut code = String::from("// @generated by x402-escrow-bindings/build.rs. Do not edit.\n\n");
    for (file, name, module, description) in CONTRACTS {
        let artifact = forge_out.join(file).join(format!("{name}.json"));
        if !artifact.is_file() {
            return Err(format!(
                "forge succeeded but the artifact {} is missing (was the contract renamed?)",
                artifact.display()
            ));
        }
        let artifact = artifact
            .canonicalize()
            .map_err(|e| format!("cannot resolve {}: {e}", artifact.display()))?;
        let path = artifact
            .to_str()
            .ok_or_else(|| format!("artifact path is not UTF-8: {}", artifact.display()))?;
        // `include_bytes!` makes rustc track the artifact, so new bytecode always rebuilds the crate.
        write!(
            code,
            r#"/// Bindings for `{name}` (`contracts/{file}`), compiled with the deploy profile.
///
/// {description}
#[allow(missing_docs, clippy::too_many_arguments)]
pub mod {module} {{
    const _ARTIFACT: &[u8] = include_bytes!({path:?});
    alloy::sol!(
        #[sol(rpc, all_derives)]
        {name},
        {path:?}
    );
}}
pub use {module}::{name};

"#
        )
        .map_err(|e| e.to_string())?;
    }
    Ok(code)
}
