//! First use with default settings, through the real binary: `deploy` (the record byte for byte
//! what `script/Deploy.s.sol` writes, idempotent, `--fund`, the protected canonical records, the
//! key only from the environment or a keystore), `pay --deployment` with the committed example
//! policy, the read-only commands (`reconcile`, `payments`, `merchant`, `migrate`) without a
//! signing key, `serve`'s error without one, `merchant add --print-api-key`, and `sample-api`.

mod cli_support;

#[allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use alloy::hex;
use alloy::node_bindings::{Anvil, AnvilInstance};
use alloy::primitives::{Address, U256};
use alloy::providers::ext::AnvilApi;
use alloy::providers::{Provider, ProviderBuilder};
use cli_support::BIN;
use x402_escrow_bindings::contracts::{WORKSPACE_ROOT, anvil_path};
use x402_escrow_bindings::deploy::{ANVIL_CHAIN_ID, DEFAULT_SALT, MULTICALL3};
use x402_escrow_bindings::{Deployment, Multicall3, TestUSDC, predict_addresses};
use x402_escrow_demo::Stack;
use x402_escrow_operator::store::Store;
use x402_escrow_pay::{PayArgs, pay, registry};
use x402_escrow_sdk::buyer::{PaymentStatus, SpendPolicy};

/// The binary with no `X402_*` variable inherited from the test's environment.
fn bin() -> Command {
    let mut command = Command::new(BIN);
    for (name, _) in std::env::vars() {
        if name.starts_with("X402_") {
            command.env_remove(name);
        }
    }
    command.env("RUST_BACKTRACE", "0");
    command
}

fn run(command: &mut Command) -> Output {
    command.output().expect("run x402-escrow")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Fails the test with the command's output unless it succeeded.
fn ok(output: Output) -> Output {
    assert!(
        output.status.success(),
        "exit {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        stdout(&output),
        stderr(&output)
    );
    output
}

/// Anvil's dev key `index`, hex.
fn key(anvil: &AnvilInstance, index: usize) -> String {
    format!("0x{}", hex::encode(anvil.keys()[index].to_bytes()))
}

/// Removes a file however the test ends.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs `script/Deploy.s.sol` against `anvil` with dev key 0, writing the record to
/// `deployments/<relative name>` under the workspace (the script's only writable directory).
fn forge_script(anvil: &AnvilInstance, record: &str) {
    let output = x402_escrow_testkit::deploy_script(anvil, record, "forge-operator-deploy")
        .output()
        .expect("run forge");
    ok(output);
}

/// Adds `"explorer": "http://explorer.local"` to a record (a key the deployers do not write).
fn add_hand_written_key(path: &Path) {
    let mut value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    value["explorer"] = "http://explorer.local".into();
    std::fs::write(path, serde_json::to_string(&value).unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_writes_the_forge_scripts_record_and_is_idempotent() {
    // The auditable path: the forge script on one fresh anvil.
    let script_chain = Anvil::at(anvil_path()).try_spawn().unwrap();
    let name = format!("31337.first-use-{}.json", std::process::id());
    let script_record = RemoveOnDrop(Path::new(WORKSPACE_ROOT).join("deployments").join(&name));
    forge_script(&script_chain, &name);
    let script_text = std::fs::read_to_string(&script_record.0).unwrap();

    // The binary on another fresh anvil, default salt and default record path, funding two
    // addresses.
    let anvil = Anvil::at(anvil_path()).try_spawn().unwrap();
    let provider = ProviderBuilder::new().connect_http(anvil.endpoint_url());
    let deployer = anvil.addresses()[0];
    let (alice, bob) = (Address::repeat_byte(0xa1), Address::repeat_byte(0xb0));
    let cwd = tempfile::tempdir().unwrap();
    let first = ok(run(bin()
        .current_dir(cwd.path())
        .env("X402_DEPLOYER_KEY", key(&anvil, 0))
        .args(["deploy", "--rpc-url", &anvil.endpoint()])
        .args(["--fund", &alice.to_string(), "--fund", &bob.to_string()])
        .args(["--fund-amount", "250"])));
    let out = stdout(&first);
    let record = cwd.path().join("deployments/31337.json");
    let text = std::fs::read_to_string(&record).unwrap();
    assert_eq!(
        text, script_text,
        "the binary's record differs from the forge script's"
    );
    let predicted =
        predict_addresses(DEFAULT_SALT, deployer, true, true).to_deployment(ANVIL_CHAIN_ID);
    assert_eq!(Deployment::load(&record).unwrap(), predicted);
    assert!(
        out.contains("deployment record written to deployments/31337.json"),
        "{out}"
    );
    for address in [
        predicted.auth_capture_escrow,
        predicted.erc3009_payment_collector,
        predicted.operator_refund_collector,
        predicted.multicall3,
    ] {
        assert!(out.contains(&address.to_string()), "{address}: {out}");
    }
    assert_eq!(out.matches("  deployed").count(), 6, "{out}");
    let token = predicted.token.as_ref().unwrap().address;
    let usdc = TestUSDC::new(token, &provider);
    for who in [alice, bob] {
        assert_eq!(
            usdc.balanceOf(who).call().await.unwrap(),
            U256::from(250_000_000u64)
        );
    }

    // A re-run sends nothing and writes the same bytes.
    let nonce = provider.get_transaction_count(deployer).await.unwrap();
    let again = ok(run(bin()
        .current_dir(cwd.path())
        .env("X402_DEPLOYER_KEY", key(&anvil, 0))
        .args(["deploy", "--rpc-url", &anvil.endpoint()])));
    assert_eq!(std::fs::read_to_string(&record).unwrap(), script_text);
    assert_eq!(
        provider.get_transaction_count(deployer).await.unwrap(),
        nonce
    );
    assert_eq!(stdout(&again).matches("already deployed").count(), 6);

    // The binary on the chain the script deployed to: nothing sent, the same record.
    let script_deployer_nonce = ProviderBuilder::new()
        .connect_http(script_chain.endpoint_url())
        .get_transaction_count(deployer)
        .await
        .unwrap();
    let copy = cwd.path().join("from-script.json");
    std::fs::write(&copy, &script_text).unwrap();
    ok(run(bin()
        .env("X402_DEPLOYER_KEY", key(&script_chain, 0))
        .args(["deploy", "--rpc-url", &script_chain.endpoint()])
        .arg("--out")
        .arg(&copy)));
    assert_eq!(std::fs::read_to_string(&copy).unwrap(), script_text);
    assert_eq!(
        ProviderBuilder::new()
            .connect_http(script_chain.endpoint_url())
            .get_transaction_count(deployer)
            .await
            .unwrap(),
        script_deployer_nonce
    );

    // A record of the same escrow keeps a hand-written key, exactly as the script keeps it.
    add_hand_written_key(&script_record.0);
    add_hand_written_key(&record);
    forge_script(&script_chain, &name);
    ok(run(bin()
        .current_dir(cwd.path())
        .env("X402_DEPLOYER_KEY", key(&anvil, 0))
        .args(["deploy", "--rpc-url", &anvil.endpoint()])));
    let script_text = std::fs::read_to_string(&script_record.0).unwrap();
    assert!(script_text.contains("\"explorer\": \"http://explorer.local\""));
    assert_eq!(std::fs::read_to_string(&record).unwrap(), script_text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_protects_canonical_records_and_refuses_bad_input_before_sending() {
    // A chain with Base Sepolia's id and the committed canonical record in ./deployments.
    let anvil = Anvil::at(anvil_path()).chain_id(84532).try_spawn().unwrap();
    let provider = ProviderBuilder::new().connect_http(anvil.endpoint_url());
    let deployer = anvil.addresses()[0];
    let cwd = tempfile::tempdir().unwrap();
    std::fs::create_dir(cwd.path().join("deployments")).unwrap();
    let record = cwd.path().join("deployments/84532.json");
    let canonical =
        std::fs::read_to_string(Path::new(WORKSPACE_ROOT).join("deployments/84532.json")).unwrap();
    std::fs::write(&record, &canonical).unwrap();
    let deploy = |extra: &[&str]| {
        run(bin()
            .current_dir(cwd.path())
            .env("X402_DEPLOYER_KEY", key(&anvil, 0))
            .args(["deploy", "--rpc-url", &anvil.endpoint()])
            .args(extra))
    };
    let nothing_sent = || async {
        assert_eq!(provider.get_transaction_count(deployer).await.unwrap(), 0);
        assert_eq!(std::fs::read_to_string(&record).unwrap(), canonical);
    };
    // Refused, naming `flag`, and nothing sent (the returned check).
    let refused_for_want_of = |refused: std::process::Output, flag: &str| {
        assert!(!refused.status.success());
        assert!(stderr(&refused).contains(flag), "{}", stderr(&refused));
        nothing_sent()
    };

    // No public Multicall3 and no --test-token.
    let refused = deploy(&[]);
    refused_for_want_of(refused, "--test-token").await;

    provider
        .anvil_set_code(MULTICALL3, Multicall3::DEPLOYED_BYTECODE.clone())
        .await
        .unwrap();
    // --fund needs a test token (only implied on 31337).
    let refused = deploy(&["--fund", &Address::repeat_byte(1).to_string()]);
    refused_for_want_of(refused, "--test-token").await;
    // Zero tokens is not an amount.
    let refused = deploy(&["--test-token", "--fund-amount", "0"]);
    refused_for_want_of(refused, "--fund-amount").await;
    // The canonical record names another escrow: refused, before any transaction.
    let refused = deploy(&[]);
    assert!(!refused.status.success());
    let message = stderr(&refused);
    assert!(
        message.contains("records another escrow") && message.contains("--overwrite"),
        "{message}"
    );
    nothing_sent().await;

    // Elsewhere with --out, or deliberately with --overwrite.
    let predicted = predict_addresses(DEFAULT_SALT, deployer, false, false).to_deployment(84532);
    ok(deploy(&["--out", "deployments/ours.json"]));
    assert_eq!(
        Deployment::load(cwd.path().join("deployments/ours.json")).unwrap(),
        predicted
    );
    assert_eq!(std::fs::read_to_string(&record).unwrap(), canonical);
    ok(deploy(&["--overwrite"]));
    assert_eq!(Deployment::load(&record).unwrap(), predicted);
    assert_eq!(
        std::fs::read_to_string(&record).unwrap(),
        std::fs::read_to_string(cwd.path().join("deployments/ours.json")).unwrap()
    );
}

#[test]
fn the_deployer_key_comes_only_from_the_environment_or_a_keystore() {
    let anvil_key = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
    // No flag takes a key.
    for flag in ["--private-key", "--key", "--deployer-key"] {
        let output =
            run(bin().args(["deploy", "--rpc-url", "http://127.0.0.1:1", flag, anvil_key]));
        assert_eq!(output.status.code(), Some(2), "{flag}");
        assert!(stderr(&output).contains("unexpected argument"), "{flag}");
    }
    // No key at all: the error names both ways (and nothing is contacted first).
    let output = run(bin().args(["deploy", "--rpc-url", "http://127.0.0.1:1"]));
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("X402_DEPLOYER_KEY") && message.contains("--keystore"),
        "{message}"
    );
    // A keystore needs its password; a key and a keystore together are ambiguous.
    let dir = tempfile::tempdir().unwrap();
    let keystore = dir.path().join("deployer.json");
    std::fs::write(&keystore, "{}").unwrap();
    let with_keystore = |env: &[(&str, &str)]| {
        run(bin()
            .envs(env.iter().copied())
            .args(["deploy", "--rpc-url", "http://127.0.0.1:1", "--keystore"])
            .arg(&keystore))
    };
    for (env, want) in [
        (vec![], "X402_KEYSTORE_PASSWORD"),
        (
            vec![("X402_DEPLOYER_KEY", anvil_key)],
            "both X402_DEPLOYER_KEY and --keystore",
        ),
        (
            vec![("X402_KEYSTORE_PASSWORD", "pw")],
            "cannot decrypt keystore",
        ),
    ] {
        let output = with_keystore(&env);
        assert!(
            stderr(&output).contains(want),
            "{want}: {}",
            stderr(&output)
        );
    }
    // A malformed key is named, not echoed.
    let output = run(bin().env("X402_DEPLOYER_KEY", "0xnot-a-key-secret").args([
        "deploy",
        "--rpc-url",
        "http://127.0.0.1:1",
    ]));
    assert!(stderr(&output).contains("X402_DEPLOYER_KEY is not a private key"));
    assert!(!stderr(&output).contains("not-a-key-secret"));

    // An encrypted keystore (made by the pinned cast) deploys like the key it holds.
    let anvil = Anvil::at(anvil_path()).try_spawn().unwrap();
    let made = Command::new(anvil_path().with_file_name("cast"))
        .args([
            "wallet",
            "import",
            "deployer",
            "--private-key",
            &key(&anvil, 1),
        ])
        .arg("--keystore-dir")
        .arg(dir.path())
        .args(["--unsafe-password", "correct horse"])
        .output()
        .unwrap();
    ok(made);
    let record = dir.path().join("record.json");
    let deployed = ok(run(bin()
        .env("X402_KEYSTORE_PASSWORD", "correct horse")
        .args(["deploy", "--rpc-url", &anvil.endpoint(), "--keystore"])
        .arg(dir.path().join("deployer"))
        .arg("--out")
        .arg(&record)));
    assert!(stdout(&deployed).contains(&anvil.addresses()[1].to_string()));
    assert_eq!(
        Deployment::load(&record).unwrap(),
        predict_addresses(DEFAULT_SALT, anvil.addresses()[1], true, true)
            .to_deployment(ANVIL_CHAIN_ID)
    );
}

/// A config for the Stack's database, chain and record, with no signer.
fn read_only_config(stack: &Stack, record: &Path, signer_section: &str) -> PathBuf {
    let path = stack
        .dir()
        .join(format!("read-only-{}.toml", signer_section.len()));
    std::fs::write(
        &path,
        format!(
            "[database]\nurl = \"sqlite://{db}?mode=rwc\"\n\n[chain]\nrpc_url = \"{rpc}\"\nchain_id = {chain}\ndeployments = \"{record}\"\n{signer_section}",
            db = stack.dir().join("operator.db").display(),
            rpc = stack.chain.anvil.endpoint(),
            chain = stack.deployment.chain_id,
            record = record.display(),
        ),
    )
    .unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pay_with_a_deployment_record_then_read_only_commands_need_no_key() {
    let (stack, merchant, _stop) = cli_support::stack_with_merchant().await;
    // The record `deploy` writes, and the committed example policy as is: the Stack deploys
    // with anvil's first key and the default salt, like the README's path.
    let record = stack.dir().join("31337.json");
    stack.deployment.save(&record).unwrap();
    let policy = stack.dir().join("policy.toml");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("policy.example.toml"),
        &policy,
    )
    .unwrap();

    // In process: the record's escrow is trusted (and the default), the payment goes through.
    let args = PayArgs {
        url: format!("{merchant}/weather"),
        method: "GET".into(),
        data: None,
        headers: Vec::new(),
        key_env: "X402_BUYER_KEY".into(),
        policy: policy.clone(),
        ledger: stack.dir().join("ledger.json"),
        escrow: None,
        collector: None,
        deployment: Some(record.clone()),
        max_body: 4096,
    };
    let trusted = registry(&args).unwrap();
    let ours = trusted
        .get(stack.deployment.auth_capture_escrow)
        .expect("the record's escrow is trusted");
    assert_eq!(
        ours.erc3009_collector,
        stack.deployment.erc3009_payment_collector
    );
    let report = pay(&args, stack.payer.clone())
        .await
        .expect("setup")
        .expect("paid");
    assert_eq!(report.status, 200);
    let payment = report.payment.expect("a payment");
    assert_eq!(payment.status, PaymentStatus::Paid);
    let first_id = payment.merchant_payment_id.expect("operator id");
    stack
        .wait_for(&first_id, "captured")
        .await
        .expect("captured");

    // The binary: --deployment instead of --escrow/--collector.
    let buyer_key = format!("0x{}", hex::encode(stack.payer.to_bytes()));
    let pay_cli = |path: &str| {
        run(bin()
            .env("X402_BUYER_KEY", &buyer_key)
            .args(["pay", &format!("{merchant}{path}"), "--deployment"])
            .arg(&record)
            .arg("--policy")
            .arg(&policy)
            .arg("--ledger")
            .arg(stack.dir().join("ledger.json")))
    };
    let paid = ok(pay_cli("/weather"));
    let out = stdout(&paid);
    assert!(out.contains("status       paid"), "{out}");
    let second_id = out
        .lines()
        .find_map(|l| l.strip_prefix("operator id  "))
        .expect("operator id")
        .trim()
        .to_owned();
    stack
        .wait_for(&second_id, "captured")
        .await
        .expect("captured");
    // The example policy's $1 cap refuses the $2 report before signing.
    let refused = pay_cli("/report");
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("max_per_payment"));

    // Read-only commands, with no X402_SIGNER_KEY anywhere.
    let config = read_only_config(&stack, &record, "");
    let admin = |args: &[&str]| run(bin().arg("-c").arg(&config).args(args));
    let reconciled = ok(admin(&["reconcile"]));
    assert!(stdout(&reconciled).contains("no differences"));
    let listed = stdout(&ok(admin(&["payments", "list"])));
    assert!(
        listed.contains(&first_id) && listed.contains(&second_id),
        "{listed}"
    );
    assert!(stdout(&ok(admin(&["payments", "show", &first_id]))).contains("captured"));
    assert!(stdout(&ok(admin(&["merchant", "list"]))).contains("demo shop"));
    ok(admin(&["migrate"]));
    // A configured keystore whose password is absent does not matter to them either.
    let with_keystore = read_only_config(
        &stack,
        &record,
        "\n[signer]\nkeystore = \"/nonexistent/operator.keystore.json\"\n",
    );
    let listed = ok(run(bin()
        .arg("-c")
        .arg(&with_keystore)
        .args(["merchant", "list"])));
    assert!(stdout(&listed).contains("demo shop"));
    ok(run(bin().arg("-c").arg(&with_keystore).arg("reconcile")));

    // `serve` signs: without a key it stops at once, naming both ways to give it one.
    let mut serve = bin();
    serve
        .arg("-c")
        .arg(&config)
        .arg("serve")
        .env("X402_LISTEN", "127.0.0.1:0");
    let mut serve = tokio::process::Command::from(serve);
    serve.kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(30), serve.output())
        .await
        .expect("serve without a key exits")
        .unwrap();
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("X402_SIGNER_KEY") && message.contains("keystore"),
        "{message}"
    );

    // `merchant add --print-api-key`: one line, the key, which authenticates.
    let receiver = Address::repeat_byte(0x5e).to_string();
    let added = ok(admin(&[
        "merchant",
        "add",
        "--name",
        "shop",
        "--receiver",
        &receiver,
        "--print-api-key",
    ]));
    let printed = stdout(&added);
    assert_eq!(printed.lines().count(), 1, "{printed:?}");
    assert!(printed.ends_with('\n'));
    let api_key = printed.trim_end();
    assert!(!api_key.is_empty() && !api_key.contains(' '), "{printed:?}");
    assert!(stderr(&added).contains("merchant"));
    let store = Store::connect(&format!(
        "sqlite://{}?mode=rwc",
        stack.dir().join("operator.db").display()
    ))
    .await
    .unwrap();
    let merchant = store
        .merchant_by_api_key(api_key)
        .await
        .unwrap()
        .expect("the printed key authenticates");
    assert_eq!(merchant.name, "shop");
    assert_eq!(merchant.capture_deadline_secs, 3600);
    // Without the flag the output is as before.
    let added = stdout(&ok(admin(&[
        "merchant",
        "add",
        "--name",
        "shop2",
        "--receiver",
        &receiver,
    ])));
    assert!(
        added.contains("api key") && added.contains("merchant"),
        "{added}"
    );
    // A bad deadline is refused before the database is touched.
    let refused = admin(&[
        "merchant",
        "add",
        "--name",
        "bad",
        "--receiver",
        &receiver,
        "--capture-deadline-secs",
        "0",
    ]);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("--capture-deadline-secs"));

    stack.shutdown().await;
}

#[test]
fn pay_explains_a_missing_policy_and_a_bad_deployment_record() {
    let dir = tempfile::tempdir().unwrap();
    let buyer_key = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
    // The default --policy (policy.toml in the working directory) does not exist.
    let output = run(bin()
        .current_dir(dir.path())
        .env("X402_BUYER_KEY", buyer_key)
        .args(["pay", "http://127.0.0.1:1/report"]));
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("policy.toml") && message.contains("operator/policy.example.toml"),
        "{message}"
    );
    // --deployment and --escrow are alternatives.
    let output = run(bin().current_dir(dir.path()).args([
        "pay",
        "http://127.0.0.1:1/",
        "--deployment",
        "deployments/31337.json",
        "--escrow",
        &Address::ZERO.to_string(),
        "--collector",
        &Address::ZERO.to_string(),
    ]));
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("cannot be used with"));
    // A missing record is named.
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("policy.example.toml"),
        dir.path().join("policy.toml"),
    )
    .unwrap();
    let output = run(bin()
        .current_dir(dir.path())
        .env("X402_BUYER_KEY", buyer_key)
        .args([
            "pay",
            "http://127.0.0.1:1/",
            "--deployment",
            "deployments/31337.json",
        ]));
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("--deployment") && message.contains("deployments/31337.json"),
        "{message}"
    );
}

#[test]
fn the_example_policy_caps_payments_at_one_dollar_for_the_local_test_token() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("policy.example.toml"))
            .unwrap();
    let policy = SpendPolicy::from_toml(&text).expect("the example policy parses");
    let local = policy
        .assets
        .iter()
        .find(|a| a.network.to_string() == "eip155:31337")
        .expect("an entry for anvil");
    // The TestUSDC that `x402-escrow deploy` (and the forge script) deploy on anvil with its
    // first dev account and the default salt.
    let anvil_deployer: Address = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
        .parse()
        .unwrap();
    assert_eq!(
        Some(local.asset),
        predict_addresses(DEFAULT_SALT, anvil_deployer, true, true).test_usdc
    );
    for asset in &policy.assets {
        assert_eq!(
            asset.max_per_payment.map(|a| a.to_string()),
            Some("1000000".to_owned())
        );
        assert!(asset.daily_cap.is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_api_serves_report_and_health_and_404_json() {
    use tokio::io::{AsyncBufReadExt, BufReader};

    let mut child = tokio::process::Command::new(BIN)
        .args(["sample-api", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let base = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("the listening address")
        .to_owned();
    let http = reqwest::Client::new();

    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let report = http.get(format!("{base}/report")).send().await.unwrap();
    assert_eq!(report.status(), 200);
    let body: serde_json::Value = report.json().await.unwrap();
    let generated = body["generated_at"].as_u64().expect("a unix time");
    assert!(generated >= before && generated <= before + 60, "{body}");
    assert!(body["regions"].as_array().is_some_and(|r| !r.is_empty()));

    let health = http.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    for request in [
        http.get(format!("{base}/nope")),
        http.post(format!("{base}/report")),
        http.get(format!("{base}/")),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 404);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body, serde_json::json!({"error": "not_found"}));
    }

    // One log line per request, in order.
    let mut logged = Vec::new();
    for _ in 0..5 {
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        logged.push(line);
    }
    let expected = [
        "GET /report 200",
        "GET /health 200",
        "GET /nope 404",
        "POST /report 404",
        "GET / 404",
    ];
    for (line, expected) in logged.iter().zip(expected) {
        assert!(line.contains(expected), "{line:?} vs {expected:?}");
    }
    child.kill().await.unwrap();
}
