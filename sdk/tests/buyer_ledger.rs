//! Spend ledger: persistence across reopen, atomic reservation under concurrency, budget
//! returned by void/refund/failure, UTC day rollover, crash-safe file handling.

#![allow(clippy::result_large_err)]

use std::sync::Arc;

use alloy::primitives::{Address, B256, address};
use x402_escrow_sdk::buyer::{
    AssetLimits, LedgerError, PaymentIntent, PaymentStatus, PolicyViolation, ReserveError,
    SignedDetails, SpendLedger, SpendPolicy, Usage, utc_day,
};
use x402_escrow_sdk::{Amount, Network};

const USDC: Address = address!("0x036CbD53842c5426634e7929541eC2318f3dCF7e");
const SHOP: Address = address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
/// 2026-01-01T00:00:00Z.
const DAY0: u64 = 1_767_225_600;

fn amount(n: u64) -> Amount {
    Amount::from(n)
}

fn policy(daily: u64, budget: u64) -> SpendPolicy {
    SpendPolicy::new(vec![AssetLimits {
        max_per_payment: Some(amount(100)),
        daily_cap: Some(amount(daily)),
        total_budget: Some(amount(budget)),
        ..AssetLimits::new(Network::BASE_SEPOLIA, USDC)
    }])
}

fn intent(n: u64) -> PaymentIntent {
    PaymentIntent {
        scheme: "auth-capture".into(),
        network: Network::BASE_SEPOLIA,
        asset: USDC,
        payee: SHOP,
        host: "API.example.com".into(),
        amount: amount(n),
        resource: Some("http://api.example.com/x".into()),
    }
}

/// An empty ledger in a new temporary directory (removed when the returned guard drops), with
/// the policy `policy(daily, budget)`.
fn fresh_ledger(daily: u64, budget: u64) -> (tempfile::TempDir, SpendLedger, SpendPolicy) {
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = SpendLedger::open(dir.path().join("l.json")).expect("open");
    (dir, ledger, policy(daily, budget))
}

fn usage(ledger: &SpendLedger, now: u64) -> Usage {
    ledger
        .usage(Network::BASE_SEPOLIA, USDC, now)
        .expect("usage")
}

#[test]
fn records_survive_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nested/dir/ledger.json");
    let p = policy(1_000, 10_000);
    {
        let ledger = SpendLedger::open(&path).expect("open");
        ledger.reserve("pay_a", &p, &intent(40), DAY0).expect("a");
        ledger
            .record_signed(
                "pay_a",
                SignedDetails {
                    payment_hash: Some(B256::repeat_byte(1)),
                    escrow: Some(Address::repeat_byte(2)),
                    valid_before: Some(DAY0 + 60),
                    authorization_expiry: Some(DAY0 + 3600),
                },
                DAY0 + 1,
            )
            .expect("signed");
        ledger
            .record_paid("pay_a", Some(B256::repeat_byte(3)), false, DAY0 + 2)
            .expect("paid");
        ledger
            .reserve("pay_b", &p, &intent(60), DAY0 + 3)
            .expect("b");
    }
    let ledger = SpendLedger::open(&path).expect("reopen");
    let records = ledger.records().expect("records");
    assert_eq!(records.len(), 2);
    let a = &records[0];
    assert_eq!(a.id, "pay_a");
    assert_eq!(a.status, PaymentStatus::Paid);
    assert_eq!(a.host, "api.example.com");
    assert_eq!(a.payment_hash, Some(B256::repeat_byte(1)));
    assert_eq!(a.transaction, Some(B256::repeat_byte(3)));
    assert_eq!(a.signed_at, Some(DAY0 + 1));
    assert_eq!(records[1].status, PaymentStatus::Reserved);
    assert_eq!(usage(&ledger, DAY0 + 10).spent_today, amount(100));
    // Duplicate ids are refused.
    assert!(matches!(
        ledger.reserve("pay_a", &p, &intent(1), DAY0),
        Err(ReserveError::Ledger(LedgerError::DuplicatePayment(_)))
    ));
    assert!(matches!(
        ledger.record_void("nope", DAY0),
        Err(LedgerError::UnknownPayment(_))
    ));
    // No temporary files are left behind; the lock file sits beside the ledger.
    let mut names: Vec<String> = std::fs::read_dir(path.parent().expect("dir"))
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["ledger.json", "ledger.json.lock"]);
}

#[test]
fn a_corrupt_file_is_reported_and_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledger.json");
    std::fs::write(&path, b"{\"version\":1,\"records\":[").expect("write");
    assert!(matches!(
        SpendLedger::open(&path),
        Err(LedgerError::Corrupt { .. })
    ));
    assert_eq!(
        std::fs::read(&path).expect("read"),
        b"{\"version\":1,\"records\":["
    );
    std::fs::write(&path, b"{\"version\":9,\"records\":[]}").expect("write");
    let err = SpendLedger::open(&path).expect_err("future version");
    assert!(err.to_string().contains("version 9"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reservations_never_exceed_the_cap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledger.json");
    // Daily cap 250 with 30 already spent today: 220 left, i.e. exactly 5 payments of 40.
    let p = Arc::new(policy(250, 10_000));
    let setup = SpendLedger::open(&path).expect("open");
    setup
        .reserve("pay_seed", &p, &intent(30), DAY0)
        .expect("seed");

    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let p = Arc::clone(&p);
            // Separate handles, as separate processes would have.
            let ledger = SpendLedger::open(&path).expect("open");
            tokio::task::spawn_blocking(move || {
                ledger.reserve(&format!("pay_{i:02}"), &p, &intent(40), DAY0 + 60 + i)
            })
        })
        .collect();
    let mut ok = 0;
    let mut refused = 0;
    for task in tasks {
        match task.await.expect("join") {
            Ok(_) => ok += 1,
            Err(ReserveError::Policy(PolicyViolation::DailyCapExceeded { cap, .. })) => {
                assert_eq!(cap, amount(250));
                refused += 1;
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((ok, refused), (5, 11));
    let ledger = SpendLedger::open(&path).expect("reopen");
    assert_eq!(ledger.records().expect("records").len(), 6);
    assert_eq!(usage(&ledger, DAY0 + 100).spent_today, amount(230));
}

#[test]
fn void_refund_and_failure_return_budget() {
    let (_dir, ledger, p) = fresh_ledger(200, 10_000);
    ledger.reserve("pay_1", &p, &intent(100), DAY0).expect("1");
    ledger.reserve("pay_2", &p, &intent(100), DAY0).expect("2");
    let refused = ledger.reserve("pay_3", &p, &intent(1), DAY0);
    assert!(matches!(
        refused,
        Err(ReserveError::Policy(
            PolicyViolation::DailyCapExceeded { .. }
        ))
    ));

    // A void returns the whole amount.
    ledger
        .record_paid("pay_1", None, false, DAY0)
        .expect("paid");
    ledger.record_void("pay_1", DAY0 + 1).expect("void");
    assert_eq!(usage(&ledger, DAY0).spent_today, amount(100));
    ledger
        .reserve("pay_3", &p, &intent(100), DAY0 + 2)
        .expect("3 fits now");

    // Refunds add up, capped at the amount.
    ledger
        .record_paid("pay_2", None, false, DAY0)
        .expect("paid");
    ledger
        .record_refund("pay_2", amount(30), DAY0 + 3)
        .expect("refund");
    assert_eq!(usage(&ledger, DAY0).spent_today, amount(170));
    let r = ledger
        .record_refund("pay_2", amount(500), DAY0 + 4)
        .expect("refund");
    assert_eq!(
        r.status,
        PaymentStatus::Refunded {
            amount: amount(100)
        }
    );
    assert_eq!(r.spent(), Amount::ZERO);
    assert_eq!(usage(&ledger, DAY0).spent_today, amount(100));

    // A failure releases the reservation.
    ledger.record_failed("pay_3", DAY0 + 5).expect("failed");
    assert_eq!(usage(&ledger, DAY0).spent_today, Amount::ZERO);
    ledger
        .record_reclaimed("pay_1", DAY0 + 6)
        .expect("reclaimed");
    assert_eq!(usage(&ledger, DAY0).spent_total, Amount::ZERO);
}

#[test]
fn daily_cap_rolls_over_at_utc_midnight_but_the_budget_does_not() {
    let (_dir, ledger, p) = fresh_ledger(100, 250);
    let last_second = DAY0 + 86_399;
    assert_eq!(utc_day(last_second), utc_day(DAY0));
    assert_eq!(utc_day(last_second + 1), utc_day(DAY0) + 1);

    ledger
        .reserve("d0", &p, &intent(100), DAY0 + 10)
        .expect("day 0");
    assert!(matches!(
        ledger.reserve("d0b", &p, &intent(1), last_second),
        Err(ReserveError::Policy(
            PolicyViolation::DailyCapExceeded { .. }
        ))
    ));
    ledger
        .reserve("d1", &p, &intent(100), last_second + 1)
        .expect("day 1");
    ledger
        .reserve("d2", &p, &intent(50), last_second + 86_400 + 1)
        .expect("day 2");
    let err = ledger
        .reserve("d2b", &p, &intent(1), last_second + 86_400 + 2)
        .expect_err("budget");
    assert!(matches!(
        err,
        ReserveError::Policy(PolicyViolation::BudgetExhausted { spent, budget, .. })
            if spent == amount(250) && budget == amount(250)
    ));
}

#[test]
fn unsigned_reservations_are_released_after_a_grace_period() {
    let (_dir, ledger, p) = fresh_ledger(1_000, 1_000);
    ledger.reserve("crashed", &p, &intent(10), DAY0).expect("r");
    ledger.reserve("signed", &p, &intent(10), DAY0).expect("r");
    ledger
        .record_signed("signed", SignedDetails::default(), DAY0)
        .expect("signed");
    assert!(
        ledger
            .release_unsigned(600, DAY0 + 60)
            .expect("none")
            .is_empty()
    );
    assert_eq!(
        ledger.release_unsigned(600, DAY0 + 601).expect("one"),
        ["crashed"]
    );
    assert_eq!(
        ledger.get("crashed").expect("get").map(|r| r.status),
        Some(PaymentStatus::Failed)
    );
    assert_eq!(
        ledger.get("signed").expect("get").map(|r| r.status),
        Some(PaymentStatus::Reserved)
    );
}
