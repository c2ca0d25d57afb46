//! Tests of loading, overrides, validation and redaction.

use super::*;
use alloy::primitives::Address;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const FULL: &str = r#"
        listen = "0.0.0.0:9000"
        instance_id = "op-1"

        [database]
        url = "postgres://op:hunter2@db:5432/x402"
        max_connections = 20

        [chain]
        rpc_url = "https://rpc.example"
        chain_id = 84532
        deployments = "deployments/84532.json"
        confirmations = 3
        poll_interval_ms = 500
        start_block = 123
        reorg_depth = 10

        [chain.contracts]
        escrow = "0x1111111111111111111111111111111111111111"

        [signer]
        keystore = "/keys/op.json"
        keystore_password_env = "OP_PW"

        [relayer]
        bump_after_secs = 45
        fee_bump_percent = 15
        max_fee_per_gas_wei = 200000000000
        lease_ttl_secs = 20
        gas_limit_margin_percent = 25

        [webhooks]
        enabled = false
        timeout_secs = 5
        max_attempts = 3
        retry_schedule_secs = [1, 2]
        poll_interval_ms = 250
        lock_secs = 30

        [idempotency]
        retention_hours = 48
        in_flight_timeout_secs = 30

        [auto_void]
        enabled = false
        default_capture_deadline_secs = 3600
        expiry_margin_secs = 60
        sweep_interval_secs = 5

        [batch]
        max_size = 10
        max_wait_ms = 40
    "#;

#[test]
fn defaults_are_valid() {
    let c = Config::load_with_env(None, &HashMap::new()).unwrap();
    assert_eq!(c.listen, "127.0.0.1:8402");
    assert_eq!(c.chain.chain_id, 31337);
    assert!(c.database.url.starts_with("sqlite:"));
    assert_eq!(c.idempotency.retention_hours, 24);
    assert!(c.signer.source().unwrap().is_none());
    let empty = Config::from_toml_str("").unwrap();
    assert_eq!(empty.chain.rpc_url, c.chain.rpc_url);
}

#[test]
fn loads_every_field_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("op.toml");
    std::fs::write(&path, FULL).unwrap();
    let c = Config::load_with_env(Some(&path), &env(&[("OP_PW", "pw")])).unwrap();
    assert_eq!(c.listen, "0.0.0.0:9000");
    assert_eq!(c.instance_id(), "op-1");
    assert_eq!(c.database.max_connections, 20);
    assert_eq!(c.chain.chain_id, 84532);
    assert_eq!(
        c.chain.deployments.as_deref(),
        Some(Path::new("deployments/84532.json"))
    );
    assert_eq!(
        c.chain.contracts.escrow,
        Some(
            "0x1111111111111111111111111111111111111111"
                .parse()
                .unwrap()
        )
    );
    assert_eq!(c.chain.contracts.refund_collector, None);
    assert_eq!(
        (
            c.chain.confirmations,
            c.chain.start_block,
            c.chain.reorg_depth
        ),
        (3, 123, 10)
    );
    assert_eq!(c.relayer.max_fee_per_gas_wei, Some(200_000_000_000));
    assert_eq!(c.relayer.fee_bump_percent, 15);
    assert_eq!(c.webhooks.retry_schedule_secs, vec![1, 2]);
    assert!(!c.webhooks.enabled);
    assert_eq!(c.idempotency.retention_hours, 48);
    assert!(!c.auto_void.enabled);
    assert_eq!((c.batch.max_size, c.batch.max_wait_ms), (10, 40));
    assert_eq!(
        c.signer.source().unwrap(),
        Some(SignerSource::Keystore {
            path: "/keys/op.json".into(),
            password: Secret::new("pw")
        })
    );
}

#[test]
fn environment_overrides_the_file() {
    let mut c = Config::from_toml_str(FULL).unwrap();
    c.apply_env(|k| {
        env(&[
            ("X402_DATABASE_URL", "sqlite::memory:"),
            ("X402_LISTEN", "127.0.0.1:1"),
            ("X402_RPC_URL", "http://node:8545"),
            ("X402_CHAIN_ID", "8453"),
            ("X402_CONFIRMATIONS", "12"),
            ("X402_START_BLOCK", "99"),
            ("X402_ESCROW", "0x2222222222222222222222222222222222222222"),
            (
                "X402_REFUND_COLLECTOR",
                "0x3333333333333333333333333333333333333333",
            ),
            (
                "X402_SIGNER_KEY",
                " 0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80 ",
            ),
            ("X402_IDEMPOTENCY_RETENTION_HOURS", "72"),
            ("X402_AUTO_VOID", "true"),
            ("X402_POLL_INTERVAL_MS", ""),
            ("X402_BATCH_MAX_SIZE", "1"),
            ("X402_BATCH_MAX_WAIT_MS", "5"),
            ("X402_BATCH_USE_EXECUTOR", "true"),
            ("X402_RECEIPTS", "poll"),
        ])
        .get(k)
        .cloned()
    })
    .unwrap();
    c.validate().unwrap();
    assert_eq!(c.database.url, "sqlite::memory:");
    assert_eq!(c.listen, "127.0.0.1:1");
    assert_eq!(c.chain.rpc_url, "http://node:8545");
    assert_eq!(c.chain.chain_id, 8453);
    assert_eq!(c.chain.confirmations, 12);
    assert_eq!(c.chain.start_block, 99);
    assert_eq!(
        c.chain.poll_interval_ms, 500,
        "an empty variable does not override"
    );
    assert_eq!(
        c.chain.contracts.escrow,
        Some(
            "0x2222222222222222222222222222222222222222"
                .parse()
                .unwrap()
        )
    );
    assert!(c.chain.contracts.refund_collector.is_some());
    assert_eq!(c.idempotency.retention_hours, 72);
    assert!(c.auto_void.enabled);
    assert_eq!((c.batch.max_size, c.batch.max_wait_ms), (1, 5));
    assert!(c.batch.use_executor);
    assert_eq!(c.chain.receipts, ReceiptSource::Poll);
    // The environment key wins over the file's keystore, and is trimmed.
    match c.signer.source().unwrap() {
        Some(SignerSource::PrivateKey(k)) => {
            assert!(k.expose().starts_with("0xac09") && k.expose().ends_with("ff80"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_environment_values_name_the_variable_not_the_value() {
    let mut c = Config::default();
    let err = c
        .apply_env(|k| (k == "X402_CHAIN_ID").then(|| "base".to_string()))
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("X402_CHAIN_ID"), "{text}");
    assert!(!text.contains("base"), "{text}");
    assert!(
        c.apply_env(|k| (k == "X402_ESCROW").then(|| "0x12".to_string()))
            .is_err()
    );
    let err = c
        .apply_env(|k| (k == "X402_RECEIPTS").then(|| "websocket".to_string()))
        .unwrap_err();
    assert!(err.to_string().contains("X402_RECEIPTS"), "{err}");
    assert_eq!(c.chain.receipts, ReceiptSource::Push, "unchanged");
    assert!(Config::from_toml_str("[chain]\nreceipts = \"sometimes\"").is_err());
    assert_eq!(
        Config::from_toml_str("[chain]\nreceipts = \"poll\"")
            .unwrap()
            .chain
            .receipts,
        ReceiptSource::Poll
    );
}

#[test]
fn unknown_fields_and_keys_in_files_are_refused() {
    assert!(Config::from_toml_str("lisen = \"x\"").is_err());
    assert!(Config::from_toml_str("[chain]\nrpc = \"x\"").is_err());
    // The private key cannot come from a file.
    let err = Config::from_toml_str("[signer]\nprivate_key = \"0xabc\"").unwrap_err();
    assert!(err.to_string().contains("private_key"));
    assert!(Config::from_toml_str("[chain]\nchain_id = \"one\"").is_err());
}

#[test]
fn validation() {
    let bad = |toml: &str| {
        let c = Config::from_toml_str(toml).unwrap();
        c.validate().unwrap_err().to_string()
    };
    assert!(bad("[idempotency]\nretention_hours = 23").contains("24"));
    assert!(bad("[relayer]\nfee_bump_percent = 5").contains("fee_bump_percent"));
    assert!(bad("listen = \"nowhere\"").contains("listen"));
    assert!(bad("listen = \":80\"").contains("listen"));
    let named = Config::from_toml_str("listen = \"localhost:8402\"").unwrap();
    named.validate().unwrap();
    assert!(bad("[database]\nurl = \"mysql://x\"").contains("database.url"));
    // A keystore without its password does not stop commands that do not sign; the
    // signer source names the missing variable.
    let keystore = Config::from_toml_str("[signer]\nkeystore = \"/k.json\"").unwrap();
    keystore.validate().unwrap();
    let err = keystore.signer.source().unwrap_err().to_string();
    assert!(err.contains("X402_KEYSTORE_PASSWORD"), "{err}");
    assert!(bad("[batch]\nmax_size = 0").contains("batch.max_size"));
    assert!(bad("[batch]\nmax_size = 1001").contains("batch.max_size"));
    assert!(bad("[batch]\nmax_wait_ms = 600000").contains("batch.max_wait_ms"));
}

#[test]
fn secrets_are_redacted() {
    let mut c = Config::from_toml_str(FULL).unwrap();
    c.apply_env(|k| match k {
        "X402_SIGNER_KEY" => Some("0xdeadbeefsecretkey".into()),
        "OP_PW" => Some("keystore-pass".into()),
        _ => None,
    })
    .unwrap();
    let debug = format!("{c:?}");
    assert!(!debug.contains("deadbeef"), "{debug}");
    assert!(!debug.contains("keystore-pass"), "{debug}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(debug.contains("[redacted]"));
    let s = Secret::new("x");
    assert_eq!(format!("{s}"), "[redacted]");
    assert_eq!(format!("{s:?}"), "[redacted]");
    assert_eq!(s.expose(), "x");
}

#[test]
fn indexer_section_sets_the_read_mode_range_and_window() {
    use crate::indexer::{IndexerConfig, ReadMode};
    let escrow = Address::repeat_byte(0x11);

    let defaults = Config::default();
    let c = IndexerConfig::from_chain_config(&defaults.chain, escrow);
    assert_eq!(c.mode, ReadMode::Latest);
    assert_eq!((c.max_range, c.window), (1_000, 64));

    let config = Config::from_toml_str(
        r#"
            [chain]
            confirmations = 4
            [chain.indexer]
            safe = true
            max_range = 500
            window = 16
            "#,
    )
    .expect("parses");
    let c = IndexerConfig::from_chain_config(&config.chain, escrow);
    assert_eq!(c.mode, ReadMode::Safe { confirmations: 4 });
    assert_eq!((c.max_range, c.window), (500, 16));

    let mut bad = Config::default();
    bad.chain.indexer.max_range = 0;
    assert!(bad.validate().is_err());
    let mut bad = Config::default();
    bad.chain.indexer.window = 1;
    assert!(bad.validate().is_err());
    assert!(Config::from_toml_str("[chain.indexer]\nsafe = true\nunknown = 1").is_err());
}

const LANE_A: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const LANE_B: &str = "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a";

#[test]
fn signer_keys_give_one_lane_each_in_order() {
    let keys = format!("{LANE_A}, {LANE_B}");
    let c = Config::load_with_env(None, &env(&[("X402_SIGNER_KEYS", &keys)])).unwrap();
    let sources = c.signer.sources().unwrap();
    assert_eq!(
        sources,
        vec![
            SignerSource::PrivateKey(Secret::new(LANE_A)),
            SignerSource::PrivateKey(Secret::new(LANE_B)),
        ]
    );
    // The primary lane is the first key.
    assert_eq!(
        c.signer.source().unwrap(),
        Some(SignerSource::PrivateKey(Secret::new(LANE_A)))
    );
    // A single key is one lane, as before.
    let one = Config::load_with_env(None, &env(&[("X402_SIGNER_KEY", LANE_B)])).unwrap();
    assert_eq!(one.signer.sources().unwrap().len(), 1);
    // Keystores, one per lane, share the password variable.
    let mut files = Config::from_toml_str(
        "[signer]\nkeystores = [\"/k/0.json\", \"/k/1.json\"]\nkeystore_password_env = \"PW\"",
    )
    .unwrap();
    files
        .apply_env(|k| (k == "PW").then(|| "pw".to_owned()))
        .unwrap();
    files.validate().unwrap();
    let paths: Vec<_> = files
        .signer
        .sources()
        .unwrap()
        .into_iter()
        .map(|s| match s {
            SignerSource::Keystore { path, password } => {
                assert_eq!(password.expose(), "pw");
                path
            }
            other => panic!("not a keystore: {other:?}"),
        })
        .collect();
    assert_eq!(
        paths,
        vec![PathBuf::from("/k/0.json"), PathBuf::from("/k/1.json")]
    );
    // Debug never shows the keys.
    let debug = format!("{c:?}");
    assert!(
        !debug.contains(&LANE_A[2..]) && !debug.contains(LANE_B),
        "{debug}"
    );
}

#[test]
fn bad_signer_lanes_are_refused_with_their_own_error() {
    let refused = |pairs: &[(&str, &str)]| -> SignerConfigError {
        match Config::load_with_env(None, &env(pairs)).unwrap_err() {
            ConfigError::Signer(e) => e,
            other => panic!("not a signer error: {other}"),
        }
    };
    let both = format!("{LANE_A},{LANE_B}");
    assert_eq!(
        refused(&[("X402_SIGNER_KEY", LANE_A), ("X402_SIGNER_KEYS", &both)]),
        SignerConfigError::KeyAndKeys
    );
    assert_eq!(
        refused(&[("X402_SIGNER_KEYS", &format!("{LANE_A},,{LANE_B}"))]),
        SignerConfigError::EmptyKey { index: 1 }
    );
    assert_eq!(
        refused(&[("X402_SIGNER_KEYS", &format!("{LANE_A},"))]),
        SignerConfigError::EmptyKey { index: 1 }
    );
    let err = refused(&[("X402_SIGNER_KEYS", &format!("{LANE_A},0x1234"))]);
    assert_eq!(
        err,
        SignerConfigError::NotAKey {
            var: "X402_SIGNER_KEYS",
            index: 1
        }
    );
    // The message names the entry, never the value.
    let dup = format!("{LANE_B},{LANE_A},0x{}", LANE_B.to_ascii_uppercase());
    let err = refused(&[("X402_SIGNER_KEYS", &dup)]);
    assert_eq!(
        err,
        SignerConfigError::Duplicate {
            what: "X402_SIGNER_KEYS",
            first: 0,
            second: 2
        }
    );
    assert!(!err.to_string().contains(LANE_B), "{err}");
    let many: Vec<String> = (1..=MAX_LANES + 1).map(|i| format!("{i:064x}")).collect();
    assert_eq!(
        refused(&[("X402_SIGNER_KEYS", &many.join(","))]),
        SignerConfigError::TooMany {
            count: MAX_LANES + 1,
            max: MAX_LANES
        }
    );
    let invalid = |toml: &str, pairs: &[(&str, &str)]| {
        let mut c = Config::from_toml_str(toml).unwrap();
        c.apply_env(|k| {
            pairs
                .iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| v.to_string())
        })
        .unwrap();
        match c.validate().unwrap_err() {
            ConfigError::Signer(e) => e,
            other => panic!("not a signer error: {other}"),
        }
    };
    assert_eq!(
        invalid(
            "[signer]\nkeystore = \"/k.json\"\nkeystores = [\"/k/0.json\"]",
            &[]
        ),
        SignerConfigError::KeystoreAndKeystores
    );
    assert_eq!(
        invalid(
            "[signer]\nkeystores = [\"/k/0.json\"]",
            &[("X402_SIGNER_KEYS", LANE_A)]
        ),
        SignerConfigError::KeysAndKeystores
    );
    assert_eq!(
        invalid("[signer]\nkeystores = [\"/k/0.json\", \"/k/0.json\"]", &[]),
        SignerConfigError::Duplicate {
            what: "signer.keystores",
            first: 0,
            second: 1
        }
    );
    // Keystores without their password: the shape is fine, the sources name the variable.
    let c = Config::from_toml_str("[signer]\nkeystores = [\"/k/0.json\"]").unwrap();
    c.validate().unwrap();
    assert_eq!(
        c.signer.sources().unwrap_err().to_string(),
        "invalid config: signer.keystore(s) is set but X402_KEYSTORE_PASSWORD is not"
    );
    // A list in the file cannot carry keys either.
    assert!(Config::from_toml_str("[signer]\nprivate_keys = [\"0xabc\"]").is_err());
}
