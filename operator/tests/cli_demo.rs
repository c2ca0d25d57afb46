//! `x402-escrow demo` in-process: the four outcomes of issue 4's main command.

const BIN: &str = env!("CARGO_BIN_EXE_x402-escrow");

#[allow(dead_code)]
use alloy::primitives::U256;
use x402_escrow_demo::{self as demo, DemoArgs, Outcome, USDC};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_shows_captured_voided_refunded_and_refused() {
    let report = demo::run(BIN.as_ref(), DemoArgs::default())
        .await
        .expect("the demo runs");
    let text = report.render();
    println!("{text}");
    assert_eq!(report.scenarios.len(), 4);
    let [weather, flaky, refund, refused] = &report.scenarios[..] else {
        unreachable!()
    };

    // 1. Captured: the merchant got the price less the 1% fee.
    assert_eq!(weather.outcome, Outcome::Captured);
    assert_eq!(weather.http_status, Some(200));
    assert_eq!(weather.status.as_deref(), Some("captured"));
    assert_eq!(weather.captured, USDC / 100);
    assert_eq!(weather.request_id, "demo-1-weather");
    assert!(
        weather
            .transactions
            .iter()
            .any(|(k, h)| k == "capture" && h.is_some())
    );
    assert_eq!(
        weather.before.payer - weather.after.payer,
        U256::from(USDC / 100)
    );
    assert_eq!(
        weather.after.merchant - weather.before.merchant,
        U256::from(9_900u64)
    );
    assert_eq!(
        weather.after.fee_receiver - weather.before.fee_receiver,
        U256::from(100u64)
    );

    // 2. Voided: the payer is whole, nothing reached the merchant.
    assert_eq!(flaky.outcome, Outcome::Voided);
    assert_eq!(flaky.http_status, Some(500));
    assert_eq!(flaky.status.as_deref(), Some("voided"));
    assert_eq!(flaky.after.payer, flaky.before.payer);
    assert_eq!(flaky.after.merchant, flaky.before.merchant);
    assert_eq!(flaky.after.escrow, flaky.before.escrow);
    assert!(
        flaky
            .transactions
            .iter()
            .any(|(k, h)| k == "void" && h.is_some())
    );
    assert_eq!(flaky.ledger_status.as_deref(), Some("voided"));

    // 3. Captured $2, half refunded.
    assert_eq!(refund.outcome, Outcome::Refunded { refunded: USDC });
    assert_eq!(refund.status.as_deref(), Some("partially_refunded"));
    assert_eq!(refund.captured, 2 * USDC);
    assert_eq!(refund.refunded, USDC);
    assert_eq!(refund.before.payer - refund.after.payer, U256::from(USDC));
    assert!(
        refund
            .transactions
            .iter()
            .any(|(k, h)| k == "refund" && h.is_some())
    );

    // 4. Refused by the buyer's own policy: nothing moved.
    match &refused.outcome {
        Outcome::Refused { rule, .. } => assert_eq!(rule, "max_per_payment"),
        other => panic!("expected a policy refusal, got {other:?}"),
    }
    assert_eq!(refused.after, refused.before);
    assert!(refused.payment_id.is_none() && refused.transactions.is_empty());

    assert!(text.contains("REFUSED by rule `max_per_payment`"));
    assert!(report.elapsed.as_secs() < 120);
}
