//! The auditable deployment path: `script/Deploy.s.sol` run by the pinned forge.

use std::path::Path;
use std::process::Command;

use alloy::hex;
use alloy::node_bindings::AnvilInstance;
use x402_escrow_bindings::contracts::WORKSPACE_ROOT;

/// The command that runs `script/Deploy.s.sol` (pinned forge, deploy profile, broadcast) against
/// `anvil` with its dev key 0, writing the deployment record to `deployments/<record>` under the
/// workspace (the script's only writable directory).
///
/// `--slow`: each transaction is sent once the previous one is mined. anvil 1.7.1 can leave a
/// transaction `queued` for ever when the block of its predecessor is mined between its nonce
/// check and its entry into the pool (see `operator/src/relayer/push.rs`); forge, sending the
/// script's transactions back to back, then waited for that receipt without end (a 632 s hang of
/// `forge_script_deploys_the_predicted_addresses` under the full test run).
///
/// Forge's build, cache and broadcast directories are `target/<scratch>`,
/// `target/<scratch>-cache` and `target/<scratch>-broadcast`: a name of the caller's own, since
/// others run forge concurrently. `DEPLOY_SALT`, `DEPLOY_TEST_TOKEN` and `DEPLOY_OVERWRITE` are
/// not inherited (set them on the command to use them).
pub fn deploy_script(anvil: &AnvilInstance, record: &str, scratch: &str) -> Command {
    let root = Path::new(WORKSPACE_ROOT);
    let key = format!("0x{}", hex::encode(anvil.keys()[0].to_bytes()));
    let target = root.join("target");
    let mut command = Command::new(root.join("tools/toolchain"));
    command
        .current_dir(root)
        .args([
            "forge",
            "script",
            "script/Deploy.s.sol",
            "--broadcast",
            "--slow",
            "--no-storage-caching",
        ])
        .arg("--rpc-url")
        .arg(anvil.endpoint())
        .args(["--private-key", &key])
        .env("FOUNDRY_PROFILE", "deploy")
        .env("FOUNDRY_OUT", target.join(scratch))
        .env(
            "FOUNDRY_CACHE_PATH",
            target.join(format!("{scratch}-cache")),
        )
        .env(
            "FOUNDRY_BROADCAST",
            target.join(format!("{scratch}-broadcast")),
        )
        .env("DEPLOYMENT_FILE", format!("deployments/{record}"))
        .env_remove("DEPLOY_SALT")
        .env_remove("DEPLOY_TEST_TOKEN")
        .env_remove("DEPLOY_OVERWRITE");
    command
}
