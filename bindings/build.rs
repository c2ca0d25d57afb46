//! Generates the alloy bindings of the Solidity contracts, compiled with the deploy settings,
//! from a fresh forge build when the pinned toolchain is at hand and otherwise from the artifact
//! snapshot committed under `bindings/artifacts/`, so that a crate user needs neither Node nor
//! forge.
//!
//! # Where the artifacts come from: `X402_BINDINGS_FROM`
//!
//! * `forge`: always compile (installing the pinned toolchain if needed); an error if that fails.
//! * `snapshot`: never run the toolchain; use `bindings/artifacts/<Contract>.json`.
//! * unset or `auto` (the default): `forge` when the crate is built inside its own repository
//!   checkout (the workspace root holds `tools/toolchain` and `package-lock.json`, and is not a
//!   cargo dependency checkout, which cargo marks with `.cargo-ok`) and the toolchain is
//!   installed there (`target/toolchain/bin/forge`) or can be (`npm` on `PATH`); otherwise
//!   `snapshot`. A developer of this repository therefore builds exactly as before; a merchant who
//!   depends on the SDK, or a checkout without Node, builds from the snapshot.
//!
//! # Forge mode
//!
//! 1. `tools/toolchain` (no arguments) installs the pinned toolchain if needed and prints its bin
//!    directory, exported to the crate as `X402_TOOLCHAIN_BIN` (tests find `anvil` there).
//! 2. `tools/toolchain forge build contracts` with `FOUNDRY_PROFILE=deploy` (via-IR, optimizer
//!    100,000 runs: the bytecode we deploy) into `target/forge-bindings` (cache
//!    `target/forge-bindings-cache`), so it never races other engineers' forge runs. Only
//!    `contracts/` is compiled: tests and scripts are not part of the bindings.
//! 3. Each artifact the bindings need is reduced to ABI + `bytecode` + `deployedBytecode` (see
//!    `build/artifacts.rs`) into `$OUT_DIR/artifacts/`, the same form as the snapshot, so both
//!    modes generate the same code.
//!
//! # Snapshot mode
//!
//! The reduced artifacts are read from `bindings/artifacts/`. `X402_TOOLCHAIN_BIN` is still set,
//! to `target/toolchain/bin` of the workspace root, where `tools/toolchain` installs `anvil`.
//!
//! # Both modes
//!
//! `$OUT_DIR/contracts.rs` gets one `sol!` invocation per contract, each in its own module (every
//! artifact that mentions `AuthCaptureEscrow.PaymentInfo` declares that struct, so they cannot
//! share a namespace).
//!
//! # The snapshot stays honest
//!
//! The test `committed_artifacts_match_a_fresh_forge_build` (`tests/artifact_snapshot.rs`, part
//! of `tools/test`) compiles the contracts with forge and fails when `bindings/artifacts/`
//! differs from the fresh build. After changing a contract, refresh the snapshot with
//!
//! ```sh
//! X402_BINDINGS_REFRESH=1 cargo test -p x402-escrow-bindings --test artifact_snapshot
//! ```

#[path = "build/artifacts.rs"]
mod artifacts;

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use artifacts::{
    CONTRACTS, FORGE_OUT, SNAPSHOT_DIR, describe, forge_artifact, forge_build, reduce_file,
    run_command, snapshot_artifact,
};

/// The variable that chooses where the artifacts come from.
const FROM_VAR: &str = "X402_BINDINGS_FROM";

/// Where the artifacts come from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Forge,
    Snapshot,
}

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

    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=build/artifacts.rs");
    println!("cargo:rerun-if-env-changed={FROM_VAR}");
    println!("cargo:rustc-env=X402_WORKSPACE_ROOT={}", root.display());

    let artifact_dir = match source(&root)? {
        Source::Forge => {
            for path in [
                "contracts",
                "foundry.toml",
                "package-lock.json",
                "tools/solc",
                "tools/toolchain",
            ] {
                println!("cargo:rerun-if-changed={}", root.join(path).display());
            }
            let bin_dir = toolchain_bin_dir(&root)?;
            println!("cargo:rustc-env=X402_TOOLCHAIN_BIN={}", bin_dir.display());
            forge_build(&root)?;
            reduce_forge_artifacts(&root.join(FORGE_OUT), &out_dir.join("artifacts"))?
        }
        Source::Snapshot => {
            let snapshot = manifest_dir.join(SNAPSHOT_DIR);
            println!("cargo:rerun-if-changed={}", snapshot.display());
            let bin_dir = root.join("target/toolchain/bin");
            println!("cargo:rustc-env=X402_TOOLCHAIN_BIN={}", bin_dir.display());
            snapshot
        }
    };

    let generated = generate_bindings(&artifact_dir)?;
    let dest = out_dir.join("contracts.rs");
    fs::write(&dest, generated).map_err(|e| format!("cannot write {}: {e}", dest.display()))?;
    Ok(())
}

fn env_var(name: &str) -> Result<String, String> {
    env::var(name).map_err(|_| format!("cargo did not set {name}"))
}

/// Forge or snapshot, from `X402_BINDINGS_FROM` and what the machine has (see the module docs).
fn source(root: &Path) -> Result<Source, String> {
    match env::var(FROM_VAR).as_deref() {
        Ok("forge") => return Ok(Source::Forge),
        Ok("snapshot") => return Ok(Source::Snapshot),
        Ok("auto") | Ok("") | Err(env::VarError::NotPresent) => {}
        Ok(other) => {
            return Err(format!(
                "{FROM_VAR}={other:?}: expected `forge`, `snapshot` or `auto` (the default)"
            ));
        }
        Err(env::VarError::NotUnicode(_)) => return Err(format!("{FROM_VAR} is not UTF-8")),
    }
    let own_checkout = root.join("tools/toolchain").is_file()
        && root.join("package-lock.json").is_file()
        && !root.join(".cargo-ok").exists();
    if !own_checkout {
        return Ok(Source::Snapshot);
    }
    // `exists` follows the symlink into node_modules: a removed node_modules is "not installed".
    if root.join("target/toolchain/bin/forge").exists() {
        return Ok(Source::Forge);
    }
    // The toolchain would have to be installed: that takes npm. Decide again when PATH changes.
    println!("cargo:rerun-if-env-changed=PATH");
    Ok(if on_path("npm") {
        Source::Forge
    } else {
        Source::Snapshot
    })
}

/// Whether an executable file `name` is in a directory of `PATH`.
fn on_path(name: &str) -> bool {
    env::var_os("PATH").is_some_and(|path| {
        env::split_paths(&path).any(|dir| {
            fs::metadata(dir.join(name)).is_ok_and(|meta| {
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt as _;
                    meta.is_file() && meta.permissions().mode() & 0o111 != 0
                }
                #[cfg(not(unix))]
                {
                    meta.is_file()
                }
            })
        })
    })
}

/// Runs `tools/toolchain` with no arguments: installs (if needed) and prints the bin directory.
fn toolchain_bin_dir(root: &Path) -> Result<PathBuf, String> {
    let mut command = Command::new(root.join("tools/toolchain"));
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

/// Reduces the forge artifacts of [`CONTRACTS`] into `dest` (the snapshot's form); returns `dest`.
fn reduce_forge_artifacts(forge_out: &Path, dest: &Path) -> Result<PathBuf, String> {
    fs::create_dir_all(dest).map_err(|e| format!("cannot create {}: {e}", dest.display()))?;
    for (file, name, _, _) in CONTRACTS {
        let artifact = forge_artifact(forge_out, file, name);
        if !artifact.is_file() {
            return Err(format!(
                "forge succeeded but the artifact {} is missing (was the contract renamed?)",
                artifact.display()
            ));
        }
        let reduced = reduce_file(&artifact)?;
        let path = snapshot_artifact(dest, name);
        // Rewrite only on change: rustc tracks the file (`include_bytes!`).
        if fs::read_to_string(&path).ok().as_deref() != Some(reduced.as_str()) {
            fs::write(&path, reduced)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
    }
    Ok(dest.to_path_buf())
}

fn generate_bindings(artifact_dir: &Path) -> Result<String, String> {
    let mut code = String::from("// @generated by x402-escrow-bindings/build.rs. Do not edit.\n\n");
    for (file, name, module, description) in CONTRACTS {
        let artifact = snapshot_artifact(artifact_dir, name);
        if !artifact.is_file() {
            return Err(format!(
                "the artifact {} is missing (was the contract renamed? refresh the snapshot: \
                 X402_BINDINGS_REFRESH=1 cargo test -p x402-escrow-bindings --test artifact_snapshot)",
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
