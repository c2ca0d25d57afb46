//! The refund reserve through the HTTP API of a started operator, against anvil, on SQLite and
//! PostgreSQL: a refund the merchant's reserve cannot cover is `409 refund_reserve_insufficient`
//! and changes nothing; credited, the refund goes through and is debited; a refund that fails on
//! chain gives its amount back; two merchants refunding concurrently each spend only their own
//! reserve and never overdraw it; `GET /v1/reserve` and the paginated statement.

mod operator_support;
mod store_support;

use std::time::{Duration, Instant};

use alloy::primitives::U256;
use alloy::providers::ext::AnvilApi;
use operator_support::*;
use serde_json::{Value, json};
use uuid::Uuid;
use x402_escrow_operator::config::ReceiptSource;
use x402_escrow_operator::store::{Backend, ReserveCredit, Store};

const T: Duration = Duration::from_secs(30);

both_backends!(
    refund_needs_the_merchants_reserve,
    failed_refund_gives_the_amount_back,
    two_merchants_refund_concurrently,
    reserve_and_statement_pages,
    deposits_and_topups_credit_the_reserve,
);

/// The binary under test (for `admin reserve …` and `reconcile`).
const BIN: &str = env!("CARGO_BIN_EXE_x402-escrow");

/// Credits `amount` of the chain's token to `merchant`'s reserve.
async fn credit(store: &Store, merchant: Uuid, chain: &Chain, amount: u128) {
    store
        .reserve_credit(&ReserveCredit {
            merchant_id: merchant,
            asset: chain.token(),
            amount,
            note: None,
        })
        .await
        .expect("credit");
}

/// Authorizes and captures `amount` for `api`'s merchant (paid to `pay_to`): the payment id.
async fn captured(
    chain: &Chain,
    api: &Api,
    signer: alloy::primitives::Address,
    pay_to: alloy::primitives::Address,
    amount: u64,
    tag: &str,
) -> String {
    let req = chain.requirements(amount, signer, pay_to).await;
    captured_with(chain, api, req, tag).await
}

async fn captured_with(chain: &Chain, api: &Api, req: Value, tag: &str) -> String {
    let body = chain.authorize_body(req, &chain.payer, tag).await;
    let (status, p) = api
        .post("/v1/payments/authorize", &body, &format!("auth-{tag}"))
        .await;
    assert_eq!(status, 201, "{p}");
    let id = p["id"].as_str().expect("id").to_owned();
    let (status, c) = api
        .act(&id, "capture", &json!({}), &format!("cap-{tag}"))
        .await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["status"], "captured", "{c}");
    id
}

/// The merchant's reserve balance in the chain's token (`GET /v1/reserve`), 0 when absent.
async fn reserve_balance(api: &Api, chain: &Chain) -> u128 {
    let (status, r) = api.get("/v1/reserve").await;
    assert_eq!(status, 200, "{r}");
    let token = format!("{:#x}", chain.token());
    r["balances"]
        .as_array()
        .expect("balances")
        .iter()
        .find(|b| b["asset"].as_str().map(str::to_lowercase) == Some(token.clone()))
        .map_or(0, |b| {
            b["balance"]
                .as_str()
                .expect("balance")
                .parse()
                .expect("amount")
        })
}

async fn refund_needs_the_merchants_reserve(backend: Backend) {
    with_db(backend, |url| async move {
        let chain = Chain::start().await;
        let store = test_store(&url).await;
        let (m, key) = merchant(&store, "shop", chain.receiver, None).await;
        let op = start(&config(&url, &chain)).await;
        chain.mint(op.signer, 50 * USDC).await; // the refund account's tokens
        let api = Api::new(&op, &key);
        let id = captured(&chain, &api, op.signer, chain.receiver, 2 * USDC, "r1").await;

        // No reserve: refused, nothing changes (payment, outbox, ledger).
        let before = api.payment(&id).await;
        let txs = count(&store, "chain_txs").await;
        let (status, e) = api.act_amount(&id, "refund", USDC, "ref-1").await;
        assert_eq!(status, 409, "{e}");
        assert_eq!(error_code(&e), "refund_reserve_insufficient");
        let after = api.payment(&id).await;
        assert_eq!(
            (&after["status"], &after["amounts"], &after["updatedAt"]),
            (&before["status"], &before["amounts"], &before["updatedAt"])
        );
        assert_eq!(count(&store, "chain_txs").await, txs);
        assert_eq!(count(&store, "reserve_entries").await, 0);
        assert_eq!(reserve_balance(&api, &chain).await, 0);

        // Credited less than the refund: still refused, still nothing written.
        credit(&store, m.id, &chain, 600_000).await;
        let (status, e) = api.act_amount(&id, "refund", USDC, "ref-2").await;
        assert_eq!(
            (status, error_code(&e)),
            (409, "refund_reserve_insufficient"),
            "{e}"
        );
        assert_eq!(count(&store, "chain_txs").await, txs);
        assert_eq!(count(&store, "reserve_entries").await, 1);

        // Within the reserve: refunded, and debited.
        let float0 = chain.balance(op.signer).await;
        let (status, r) = api.act_amount(&id, "refund", 500_000, "ref-3").await;
        assert_eq!(status, 200, "{r}");
        assert_eq!(r["status"], "partially_refunded", "{r}");
        assert_eq!(amount(&r, "refunded"), 500_000);
        assert_eq!(chain.balance(op.signer).await, float0 - 500_000);
        assert_eq!(reserve_balance(&api, &chain).await, 100_000);
        let (status, s) = api.get("/v1/reserve/statement").await;
        assert_eq!(status, 200, "{s}");
        let newest = &s["entries"][0];
        assert_eq!(
            (
                &newest["kind"],
                &newest["reason"],
                &newest["amount"],
                &newest["paymentId"]
            ),
            (
                &json!("debit"),
                &json!("refund"),
                &json!("500000"),
                &json!(id)
            ),
            "{s}"
        );
        assert_eq!(newest["balanceAfter"], "100000");
        settle(&store, T).await;
        wind_down(op, store, &chain).await;
    })
    .await
}

async fn failed_refund_gives_the_amount_back(backend: Backend) {
    with_db(backend, |url| async move {
        let chain = Chain::start().await;
        let store = test_store(&url).await;
        let (m, key) = merchant(&store, "shop", chain.receiver, None).await;
        let mut cfg = config(&url, &chain);
        // Single transactions and polled receipts: the refund row is seen `broadcast`.
        cfg.batch.use_executor = false;
        cfg.chain.receipts = ReceiptSource::Poll;
        let op = start(&cfg).await;
        chain.mint(op.signer, 50 * USDC).await;
        let api = Api::new(&op, &key);
        credit(&store, m.id, &chain, 3 * USDC as u128).await;
        // A refund window that closes soon after the capture window.
        let mut req = chain
            .requirements(2 * USDC, op.signer, chain.receiver)
            .await;
        let now = chain.now().await;
        req["extra"]["captureDeadline"] = json!(now + 3_700);
        req["extra"]["refundDeadline"] = json!(now + 3_800);
        let id = captured_with(&chain, &api, req, "f1").await;

        // The refund is accepted (the window is open) but mined after refundExpiry: it reverts.
        chain
            .plain
            .anvil_set_auto_mine(false)
            .await
            .expect("automine off");
        let refund = {
            let api = api.clone();
            let id = id.clone();
            tokio::spawn(async move { api.act_amount(&id, "refund", USDC, "ref-f1").await })
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while count(
            &store,
            "chain_txs WHERE kind = 'refund' AND status = 'broadcast'",
        )
        .await
            == 0
        {
            assert!(Instant::now() < deadline, "refund not broadcast");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            reserve_balance(&api, &chain).await,
            2 * USDC as u128,
            "debited while in flight"
        );
        chain
            .plain
            .anvil_increase_time(4_000)
            .await
            .expect("increase time");
        chain.plain.anvil_mine(Some(1), None).await.expect("mine");
        chain
            .plain
            .anvil_set_auto_mine(true)
            .await
            .expect("automine on");
        let (status, r) = refund.await.expect("refund task");
        assert_eq!(status, 200, "{r}");
        let p = api.wait_status(&id, &["captured"], T).await;
        assert_eq!(amount(&p, "refunded"), 0, "{p}");
        assert!(p["lastError"]["code"].is_string(), "{p}");

        // The amount is back, as a release entry naming the payment.
        assert_eq!(reserve_balance(&api, &chain).await, 3 * USDC as u128);
        let (_, s) = api.get("/v1/reserve/statement?limit=2").await;
        let kinds: Vec<(&Value, &Value)> = s["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| (&e["kind"], &e["reason"]))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (&json!("release"), &json!("refund_failed")),
                (&json!("debit"), &json!("refund")),
            ],
            "{s}"
        );
        assert_eq!(s["entries"][0]["paymentId"], json!(id));
        settle(&store, T).await;
        op.shutdown().await;
        store.close().await;
    })
    .await
}

async fn two_merchants_refund_concurrently(backend: Backend) {
    with_db(backend, |url| async move {
        let chain = Chain::start().await;
        let store = test_store(&url).await;
        let (a, key_a) = merchant(&store, "shop-a", chain.receiver, None).await;
        let (b, key_b) = merchant(&store, "shop-b", chain.other_receiver, None).await;
        let op = start(&config(&url, &chain)).await;
        chain.mint(op.signer, 50 * USDC).await;
        let (api_a, api_b) = (Api::new(&op, &key_a), Api::new(&op, &key_b));
        let x = 100_000u64;
        // A's reserve covers three refunds of x, B's one.
        credit(&store, a.id, &chain, 3 * x as u128).await;
        credit(&store, b.id, &chain, x as u128).await;
        let mut a_ids = Vec::new();
        for i in 0..4 {
            a_ids.push(
                captured(
                    &chain,
                    &api_a,
                    op.signer,
                    chain.receiver,
                    2 * x,
                    &format!("a{i}"),
                )
                .await,
            );
        }
        let mut b_ids = Vec::new();
        for i in 0..2 {
            b_ids.push(
                captured(
                    &chain,
                    &api_b,
                    op.signer,
                    chain.other_receiver,
                    2 * x,
                    &format!("b{i}"),
                )
                .await,
            );
        }
        // Another merchant's payment is not found (and costs nothing).
        let (status, e) = api_b.act_amount(&a_ids[0], "refund", x, "cross").await;
        assert_eq!((status, error_code(&e)), (404, "not_found"), "{e}");

        // Six refunds at once.
        let mut tasks = Vec::new();
        for (api, ids, who) in [(&api_a, &a_ids, "a"), (&api_b, &b_ids, "b")] {
            for id in ids.iter() {
                let (api, id) = (api.clone(), id.clone());
                tasks.push(tokio::spawn(async move {
                    let (status, body) =
                        api.act_amount(&id, "refund", x, &format!("ref-{id}")).await;
                    (who, status, body)
                }));
            }
        }
        let (mut ok, mut refused) = (vec![], vec![]);
        for t in tasks {
            let (who, status, body) = t.await.expect("refund task");
            match status {
                200 => {
                    assert_eq!(body["status"], "partially_refunded", "{body}");
                    ok.push(who)
                }
                409 => {
                    assert_eq!(error_code(&body), "refund_reserve_insufficient", "{body}");
                    refused.push(who)
                }
                other => panic!("{who}: {other} {body}"),
            }
        }
        ok.sort();
        refused.sort();
        assert_eq!(ok, ["a", "a", "a", "b"]);
        assert_eq!(refused, ["a", "b"]);
        assert_eq!(reserve_balance(&api_a, &chain).await, 0);
        assert_eq!(reserve_balance(&api_b, &chain).await, 0);
        // Each merchant's statement holds its own entries only.
        let (_, s) = api_b.get("/v1/reserve/statement").await;
        assert_eq!(s["entries"].as_array().expect("entries").len(), 2, "{s}");
        settle(&store, T).await;
        wind_down(op, store, &chain).await;
    })
    .await
}

async fn reserve_and_statement_pages(backend: Backend) {
    with_db(backend, |url| async move {
        let chain = Chain::start().await;
        let store = test_store(&url).await;
        let (m, key) = merchant(&store, "shop", chain.receiver, None).await;
        let (_, key_b) = merchant(&store, "shop-b", chain.other_receiver, None).await;
        store
            .add_deposit_address(m.id, alloy::primitives::Address::repeat_byte(0x44))
            .await
            .expect("deposit address");
        store.set_topup_rule(m.id, Some(250)).await.expect("rule");
        for i in 1..=5u128 {
            credit(&store, m.id, &chain, i * 1_000).await;
        }
        let op = start(&config(&url, &chain)).await;
        let api = Api::new(&op, &key);
        let (status, r) = api.get("/v1/reserve").await;
        assert_eq!(status, 200, "{r}");
        assert_eq!(r["merchantId"], json!(m.id.to_string()));
        assert_eq!(r["refundAccount"], json!(op.signer));
        assert_eq!(r["topupBps"], 250);
        assert_eq!(
            r["depositAddresses"],
            json!([alloy::primitives::Address::repeat_byte(0x44)])
        );
        assert_eq!(reserve_balance(&api, &chain).await, 15_000);

        // Pages of two, newest first, every entry once.
        let mut seen = Vec::new();
        let mut path = "/v1/reserve/statement?limit=2".to_owned();
        let mut pages = 0;
        loop {
            let (status, page) = api.get(&path).await;
            assert_eq!(status, 200, "{page}");
            pages += 1;
            for e in page["entries"].as_array().expect("entries") {
                seen.push(e["amount"].as_str().expect("amount").to_owned());
            }
            match page["nextCursor"].as_str() {
                Some(cursor) => path = format!("/v1/reserve/statement?limit=2&cursor={cursor}"),
                None => break,
            }
        }
        assert_eq!(pages, 3);
        assert_eq!(seen, ["5000", "4000", "3000", "2000", "1000"]);
        // The SDK's client reads the same views.
        let client = x402_escrow_sdk::merchant::OperatorClient::new(
            format!("http://{}", op.address),
            key.clone(),
        );
        let view = client.reserve().await.expect("reserve");
        assert_eq!(view.balances[0].balance, 15_000);
        assert_eq!(view.topup_bps, Some(250));
        let first = client
            .reserve_statement(None, Some(4))
            .await
            .expect("page 1");
        assert_eq!(first.entries.len(), 4);
        let rest = client
            .reserve_statement(first.next_cursor.as_deref(), Some(4))
            .await
            .expect("page 2");
        assert_eq!((rest.entries.len(), rest.next_cursor), (1, None));
        assert_eq!(rest.entries[0].amount, 1_000);
        let token = format!("{:#x}", chain.token());
        let (_, one) = api
            .get(&format!("/v1/reserve/statement?asset={token}&limit=200"))
            .await;
        assert_eq!(one["entries"].as_array().expect("entries").len(), 5);

        // Bad input: a specific code, nothing served.
        for bad in [
            "limit=0",
            "limit=201",
            "cursor=nope",
            "asset=0x12",
            "page=2",
        ] {
            let (status, e) = api.get(&format!("/v1/reserve/statement?{bad}")).await;
            assert_eq!(
                (status, error_code(&e)),
                (400, "invalid_request"),
                "{bad}: {e}"
            );
        }
        // Another merchant sees nothing of it; no key, no reserve.
        let other = Api::new(&op, &key_b);
        let (_, s) = other.get("/v1/reserve/statement").await;
        assert_eq!(s["entries"], json!([]));
        assert_eq!(reserve_balance(&other, &chain).await, 0);
        let (status, _) = Api::new(&op, "x402_sk_nobody").get("/v1/reserve").await;
        assert_eq!(status, 401);
        op.shutdown().await;
        store.close().await;
    })
    .await
}

/// The running operator credits a deposit its indexer sees (a transfer from the merchant's
/// registered address to the refund account) and a capture's top-up (routed in the fee to the
/// refund account when the payment's fee bounds allow it, skipped with the reason otherwise);
/// `reconcile`'s reserve check agrees with the chain, and reports a reserve the refund account
/// cannot cover.
async fn deposits_and_topups_credit_the_reserve(backend: Backend) {
    with_db(backend, |url| async move {
        let chain = Chain::start().await;
        let store = test_store(&url).await;
        let (m, key) = merchant(&store, "shop", chain.receiver, None).await;
        let cfg = config(&url, &chain);
        let op = start(&cfg).await;
        let api = Api::new(&op, &key);
        // A merchant wallet with tokens, registered for deposits.
        let wallet = chain.key(7).expect("key 7");
        chain.mint(wallet.address(), 5 * USDC).await;
        store
            .add_deposit_address(m.id, wallet.address())
            .await
            .expect("deposit address");
        let usdc = x402_escrow_bindings::TestUSDC::new(chain.token(), chain.provider_for(&wallet));
        let receipt = mined(usdc.transfer(op.signer, U256::from(2 * USDC))).await;
        let deadline = Instant::now() + T;
        while reserve_balance(&api, &chain).await != 2 * USDC as u128 {
            assert!(Instant::now() < deadline, "deposit not credited");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (_, s) = api.get("/v1/reserve/statement").await;
        let e = &s["entries"][0];
        assert_eq!(
            (&e["kind"], &e["reason"]),
            (&json!("credit"), &json!("deposit")),
            "{s}"
        );
        assert_eq!(e["transactionHash"], json!(receipt.transaction_hash));

        // Top-up: 200 bps of each capture.
        store.set_topup_rule(m.id, Some(200)).await.expect("rule");
        let mut req = chain.requirements(USDC, op.signer, chain.receiver).await;
        // No fixed fee receiver: the operator picks it, so the fee can go to the refund account.
        req["extra"]["feeRecipient"] = json!(alloy::primitives::Address::ZERO);
        let float0 = chain.balance(op.signer).await;
        let recv0 = chain.balance(chain.receiver).await;
        captured_with(&chain, &api, req, "t1").await;
        let operator_fee = u128::from(USDC) * u128::from(FEE_BPS) / 10_000;
        let share = u128::from(USDC) * 200 / 10_000;
        assert_eq!(
            chain.balance(op.signer).await,
            float0 + operator_fee + share
        );
        assert_eq!(
            chain.balance(chain.receiver).await,
            recv0 + u128::from(USDC) - operator_fee - share
        );
        assert_eq!(
            reserve_balance(&api, &chain).await,
            2 * USDC as u128 + share
        );
        // The default requirements fix the fee receiver elsewhere: captured normally.
        let id = captured(&chain, &api, op.signer, chain.receiver, USDC, "t2").await;
        assert_eq!(
            reserve_balance(&api, &chain).await,
            2 * USDC as u128 + share
        );
        let topups = store
            .topups_for_payment(id.parse().expect("uuid"))
            .await
            .expect("topups");
        assert_eq!(topups.len(), 1);
        assert_eq!(topups[0].status, "skipped");
        assert!(
            topups[0]
                .reason
                .as_deref()
                .is_some_and(|r| r.contains("feeReceiver")),
            "{topups:?}"
        );

        // reconcile: the ledger agrees with the chain...
        let reader = x402_escrow_operator::runtime::open_read_only(&cfg)
            .await
            .expect("reader");
        let findings = reader
            .reconcile_reserve(Some(op.signer))
            .await
            .expect("reconcile");
        assert!(findings.is_empty(), "{findings:?}");
        // ...until the reserves promise more than the refund account holds.
        let held = chain.balance(op.signer).await;
        credit(&store, m.id, &chain, held).await;
        let findings = reader
            .reconcile_reserve(Some(op.signer))
            .await
            .expect("reconcile");
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].check, "refund_account_short");
        assert_eq!(findings[0].chain, held.to_string());
        settle(&store, T).await;
        op.shutdown().await;
        store.close().await;
    })
    .await
}

/// Runs the binary with `-c config` and `args`, without any `X402_*` variable of the test's
/// environment: (success, stdout, stderr).
fn cli(config: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let mut cmd = std::process::Command::new(BIN);
    for (name, _) in std::env::vars() {
        if name.starts_with("X402_") {
            cmd.env_remove(name);
        }
    }
    let out = cmd
        .arg("-c")
        .arg(config)
        .args(args)
        .output()
        .expect("run x402-escrow");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `x402-escrow admin reserve …` and `reconcile` from the command line: bad input refused
/// before anything is written, a credit (asset defaulting to the deployment's token), the
/// statement, and `reconcile` reporting a reserve the refund account cannot cover (non-zero
/// exit) — on SQLite (the CLI's storage is the same `Store` the suites above run on both).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_reserve_cli_and_reconcile() {
    let chain = Chain::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}/op.db?mode=rwc", dir.path().display());
    let config = dir.path().join("op.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"{db}\"\n[chain]\nrpc_url = \"{}\"\nchain_id = {}\ndeployments = \"{}\"\n",
            chain.url,
            chain.deployment.chain_id,
            chain.deployments_file.display()
        ),
    )
    .expect("config");
    let store = test_store(&db).await;
    let (m, _) = merchant(&store, "shop", chain.receiver, None).await;
    let id = m.id.to_string();

    for (args, why) in [
        (vec!["--amount", "0"], "must be positive"),
        (vec!["--amount", "12abc"], "--amount"),
    ] {
        let mut all = vec!["admin", "reserve", "credit", "--merchant", &id];
        all.extend(args);
        let (ok, _, err) = cli(&config, &all);
        assert!(!ok && err.contains(why), "{all:?}: {err}");
    }
    let nobody = Uuid::now_v7().to_string();
    let (ok, _, err) = cli(
        &config,
        &[
            "admin",
            "reserve",
            "credit",
            "--merchant",
            &nobody,
            "--amount",
            "5",
        ],
    );
    assert!(!ok && err.contains("not found"), "{err}");
    let (ok, _, err) = cli(
        &config,
        &["admin", "reserve", "topup", "--merchant", &id, "--bps", "0"],
    );
    assert!(!ok && err.contains("--bps"), "{err}");
    assert_eq!(count(&store, "reserve_entries").await, 0, "nothing written");

    let (ok, out, err) = cli(
        &config,
        &[
            "admin",
            "reserve",
            "credit",
            "--merchant",
            &id,
            "--amount",
            "2500000",
            "--note",
            "float",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("balance      2500000"), "{out}");
    let b = store
        .reserve_balance(m.id, chain.token())
        .await
        .expect("balance");
    assert_eq!(b.balance, 2_500_000, "the deployment's token by default");
    let (ok, out, _) = cli(
        &config,
        &["admin", "reserve", "statement", "--merchant", &id],
    );
    assert!(
        ok && out.contains("credit") && out.contains("admin"),
        "{out}"
    );

    // The refund account holds nothing: reconcile reports the reserve it cannot cover.
    let account = chain.operator.address().to_string();
    let (ok, out, _) = cli(&config, &["reconcile", "--refund-account", &account]);
    assert!(!ok, "{out}");
    assert!(out.contains("refund_account_short"), "{out}");
    // Funded, it agrees.
    chain.mint(chain.operator.address(), 3 * USDC).await;
    let (ok, out, err) = cli(&config, &["reconcile", "--refund-account", &account]);
    assert!(ok, "{out}{err}");
    store.close().await;
}
