//! `x402-escrow pay`: a successful payment to the demo merchant and a policy refusal, both
//! in-process (`pay::pay`) and through the built binary (exit status and output).

mod cli_support;

#[allow(dead_code)]
use std::path::Path;

use cli_support::BIN;
use x402_escrow_demo::Stack;
use x402_escrow_pay::{PayArgs, pay};
use x402_escrow_sdk::buyer::{BuyerError, PaymentStatus};

fn write_policy(stack: &Stack, path: &Path, max_per_payment: u64) {
    let text = format!(
        "networks = [\"eip155:{chain}\"]\nhosts = [\"127.0.0.1\"]\n\n[[assets]]\nnetwork = \"eip155:{chain}\"\nasset = \"{asset}\"\nlabel = \"USDC\"\nmax_per_payment = \"{max_per_payment}\"\ndaily_cap = \"5000000\"\n",
        chain = stack.deployment.chain_id,
        asset = stack.token.address,
    );
    std::fs::write(path, text).unwrap();
}

fn args(stack: &Stack, url: String) -> PayArgs {
    PayArgs {
        url,
        method: "GET".into(),
        data: None,
        headers: vec!["X-Request-Id: pay-test".into()],
        key_env: "X402_BUYER_KEY".into(),
        policy: stack.dir().join("policy.toml"),
        ledger: stack.dir().join("ledger.json"),
        escrow: Some(stack.deployment.auth_capture_escrow),
        collector: Some(stack.deployment.erc3009_payment_collector),
        deployment: None,
        max_body: 4096,
    }
}

fn cli_args(args: &PayArgs) -> Vec<String> {
    vec![
        "pay".into(),
        args.url.clone(),
        "--policy".into(),
        args.policy.display().to_string(),
        "--ledger".into(),
        args.ledger.display().to_string(),
        "--escrow".into(),
        args.escrow.unwrap().to_string(),
        "--collector".into(),
        args.collector.unwrap().to_string(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pay_succeeds_and_policy_refusals_fail_naming_the_rule() {
    let (stack, merchant, _stop) = cli_support::stack_with_merchant().await;
    write_policy(&stack, &stack.dir().join("policy.toml"), 1_000_000);

    // In-process: a successful payment.
    let weather = args(&stack, format!("{merchant}/weather"));
    let report = pay(&weather, stack.payer.clone())
        .await
        .expect("setup")
        .expect("paid");
    assert_eq!(report.status, 200);
    assert!(String::from_utf8_lossy(&report.body).contains("forecast"));
    let payment = report.payment.expect("a payment");
    assert_eq!(payment.amount.to_string(), "10000");
    assert_eq!(payment.status, PaymentStatus::Paid);
    assert!(payment.payment_hash.is_some());
    let id = payment.merchant_payment_id.expect("operator id");
    let settled = stack.wait_for(&id, "captured").await.expect("captured");
    assert_eq!(settled.request_id.as_deref(), Some("pay-test"));

    // In-process: the $2 report is over the $1 max per payment → refused before signing.
    let report_args = args(&stack, format!("{merchant}/report"));
    let before = stack.balances().await.unwrap();
    match pay(&report_args, stack.payer.clone()).await.expect("setup") {
        Err(BuyerError::Policy(violation)) => assert_eq!(violation.rule(), "max_per_payment"),
        other => panic!("expected a policy refusal, got {other:?}"),
    }
    assert_eq!(stack.balances().await.unwrap(), before);

    // The binary: success prints the outcome, refusal exits non-zero naming the rule.
    let key = format!("0x{}", hex::encode(stack.payer.to_bytes()));
    let bin = BIN;
    let pay_cli = |args: Vec<String>| {
        tokio::process::Command::new(bin)
            .args(args)
            .env("X402_BUYER_KEY", &key)
            .env_remove("X402_CONFIG")
            .output()
    };
    let ok = pay_cli(cli_args(&weather)).await.unwrap();
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(stdout.contains("status       200"), "{stdout}");
    assert!(stdout.contains("amount       10000 units"), "{stdout}");
    assert!(stdout.contains("status       paid"), "{stdout}");
    assert!(stdout.contains("forecast"), "{stdout}");

    let refused = pay_cli(cli_args(&report_args)).await.unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(stderr.contains("max_per_payment"), "{stderr}");
    assert!(stderr.contains("nothing was signed"), "{stderr}");

    // A missing key is a clear error.
    let no_key = tokio::process::Command::new(bin)
        .args(cli_args(&weather))
        .env_remove("X402_BUYER_KEY")
        .output()
        .await
        .unwrap();
    assert!(!no_key.status.success());
    assert!(String::from_utf8_lossy(&no_key.stderr).contains("X402_BUYER_KEY"));

    stack.shutdown().await;
}
