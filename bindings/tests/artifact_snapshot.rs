//! The artifact snapshot committed under `bindings/artifacts/` (what the bindings are built from
//! without the toolchain; see `build.rs`) is exactly what a fresh forge build produces: ABI,
//! creation bytecode and runtime bytecode of every contract the bindings need, and nothing else.
//!
//! `X402_BINDINGS_REFRESH=1` rewrites the snapshot from the fresh build instead of comparing:
//!
//! ```sh
//! X402_BINDINGS_REFRESH=1 cargo test -p x402-escrow-bindings --test artifact_snapshot
//! ```

#[path = "../build/artifacts.rs"]
#[allow(dead_code)]
mod artifacts;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use artifacts::{CONTRACTS, FORGE_OUT, SNAPSHOT_DIR, forge_artifact, forge_build, reduce_file};
use eyre::{Result, bail, eyre};
use serde_json::Value;

const REFRESH: &str = "bindings/artifacts is stale: refresh it with \
    `X402_BINDINGS_REFRESH=1 cargo test -p x402-escrow-bindings --test artifact_snapshot` \
    and commit the result";

/// Where a committed reduced artifact differs from the fresh one (`None`: they agree).
fn difference(committed: &str, fresh: &str) -> Result<Option<String>> {
    let committed: Value = serde_json::from_str(committed)?;
    let fresh: Value = serde_json::from_str(fresh)?;
    let mut differs = Vec::new();
    for key in ["abi", "bytecode", "deployedBytecode"] {
        if committed.get(key) != fresh.get(key) {
            differs.push(key);
        }
    }
    let extra: Vec<&String> = committed
        .as_object()
        .map(|o| {
            o.keys()
                .filter(|k| fresh.get(k.as_str()).is_none())
                .collect()
        })
        .unwrap_or_default();
    if !extra.is_empty() {
        return Ok(Some(format!("unexpected keys {extra:?}")));
    }
    Ok((!differs.is_empty()).then(|| format!("{} differ", differs.join(", "))))
}

#[test]
fn committed_artifacts_match_a_fresh_forge_build() -> Result<()> {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = crate_dir
        .parent()
        .ok_or_else(|| eyre!("the bindings crate has no parent directory"))?;
    let snapshot = crate_dir.join(SNAPSHOT_DIR);
    // A cache hit when build.rs compiled in forge mode (same out and cache directories).
    forge_build(root).map_err(|e| eyre!(e))?;
    let forge_out = root.join(FORGE_OUT);
    let refresh = std::env::var_os("X402_BINDINGS_REFRESH").is_some_and(|v| v != "0");

    let mut problems = Vec::new();
    let mut expected = BTreeSet::new();
    for (file, name, _, _) in CONTRACTS {
        let fresh = reduce_file(&forge_artifact(&forge_out, file, name)).map_err(|e| eyre!(e))?;
        let file_name = format!("{name}.json");
        let path = snapshot.join(&file_name);
        expected.insert(file_name.clone());
        if refresh {
            fs::create_dir_all(&snapshot)?;
            if fs::read_to_string(&path).ok().as_deref() != Some(fresh.as_str()) {
                fs::write(&path, &fresh)?;
                eprintln!("refreshed {}", path.display());
            }
            continue;
        }
        match fs::read_to_string(&path) {
            Err(e) => problems.push(format!("{file_name}: cannot read ({e})")),
            Ok(committed) => {
                if let Some(what) = difference(&committed, &fresh)? {
                    problems.push(format!("{file_name}: {what}"));
                } else if committed != fresh {
                    problems.push(format!("{file_name}: same content, not in canonical form"));
                }
            }
        }
    }

    // Nothing else in the snapshot: a removed contract must not linger.
    for entry in fs::read_dir(&snapshot)? {
        let file_name = entry?.file_name().to_string_lossy().into_owned();
        if !expected.contains(&file_name) {
            if refresh {
                fs::remove_file(snapshot.join(&file_name))?;
                eprintln!("removed {file_name}");
            } else {
                problems.push(format!("{file_name}: not an artifact the bindings use"));
            }
        }
    }

    if !problems.is_empty() {
        bail!("{REFRESH}:\n  {}", problems.join("\n  "));
    }
    Ok(())
}
