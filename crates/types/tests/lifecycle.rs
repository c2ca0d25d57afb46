//! The payment state machine (`PaymentStatus::apply`): every (status, event) pair of the
//! transition table, the terminal statuses, and random event sequences (proptest).

use PaymentEvent as E;
use PaymentStatus as S;
use x402_escrow_types::lifecycle::*;

fn am(authorized: u128, captured: u128, refunded: u128, released: u128) -> Amounts {
    Amounts {
        authorized,
        captured,
        refunded,
        released,
    }
}

fn ok(from: S, event: E, before: Amounts) -> (S, Amounts) {
    let mut a = before;
    let to = from
        .apply(&event, &mut a)
        .unwrap_or_else(|e| panic!("{from} {event:?}: {e}"));
    assert!(consistent(to, &a), "{from} --{event:?}--> {to} with {a:?}");
    (to, a)
}

fn err(from: S, event: E, before: Amounts) -> IllegalReason {
    let mut a = before;
    let e = from.apply(&event, &mut a).expect_err("must be illegal");
    assert_eq!(
        a, before,
        "amounts must not change on an illegal transition"
    );
    assert_eq!(e.from, from);
    e.reason
}

fn code() -> String {
    "E".into()
}

#[test]
fn as_str_round_trips() {
    for s in ALL_STATUSES {
        assert_eq!(s.as_str().parse::<S>().unwrap(), s);
        assert_eq!(s.to_string(), s.as_str());
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            format!("\"{}\"", s.as_str())
        );
    }
    assert!("nope".parse::<S>().is_err());
    for f in [Flow::Authorize, Flow::Charge] {
        assert_eq!(f.as_str().parse::<Flow>().unwrap(), f);
    }
}

#[test]
fn initial_and_flags() {
    assert_eq!(S::initial(Flow::Authorize), S::Authorizing);
    assert_eq!(S::initial(Flow::Charge), S::Charging);
    let terminal: Vec<_> = ALL_STATUSES
        .into_iter()
        .filter(|s| s.is_terminal())
        .collect();
    assert_eq!(
        terminal,
        vec![S::Refunded, S::Voided, S::Reclaimed, S::Failed]
    );
    let in_flight: Vec<_> = ALL_STATUSES
        .into_iter()
        .filter(|s| s.is_in_flight())
        .collect();
    assert_eq!(
        in_flight,
        vec![
            S::Authorizing,
            S::Capturing,
            S::Charging,
            S::Refunding,
            S::Voiding
        ]
    );
}

#[test]
fn first_action() {
    let z = Amounts::default();
    assert_eq!(
        ok(S::Authorizing, E::AuthorizeConfirmed { amount: 100 }, z),
        (S::Authorized, am(100, 0, 0, 0))
    );
    assert_eq!(
        ok(S::Authorizing, E::AuthorizeFailed { code: code() }, z),
        (S::Failed, z)
    );
    assert_eq!(
        ok(S::Charging, E::ChargeConfirmed { amount: 70 }, z),
        (S::Captured, am(70, 70, 0, 0))
    );
    assert_eq!(
        ok(S::Charging, E::ChargeFailed { code: code() }, z),
        (S::Failed, z)
    );
    assert_eq!(
        err(S::Authorizing, E::AuthorizeConfirmed { amount: 0 }, z),
        IllegalReason::ZeroAmount
    );
    assert_eq!(
        err(S::Charging, E::ChargeConfirmed { amount: 0 }, z),
        IllegalReason::ZeroAmount
    );
    assert_eq!(
        err(S::Authorizing, E::ChargeConfirmed { amount: 1 }, z),
        IllegalReason::NotAllowed
    );
    assert_eq!(
        err(S::Charging, E::AuthorizeConfirmed { amount: 1 }, z),
        IllegalReason::NotAllowed
    );
    assert_eq!(
        err(S::Authorizing, E::CaptureRequested { amount: 1 }, z),
        IllegalReason::NotAllowed
    );
    assert_eq!(
        err(S::Authorizing, E::VoidRequested, z),
        IllegalReason::NotAllowed
    );
}

#[test]
fn captures_partial_and_repeated() {
    let a = am(100, 0, 0, 0);
    assert_eq!(
        ok(S::Authorized, E::CaptureRequested { amount: 40 }, a),
        (S::Capturing, a)
    );
    let (s, a) = ok(S::Capturing, E::CaptureConfirmed { amount: 40 }, a);
    assert_eq!((s, a), (S::PartiallyCaptured, am(100, 40, 0, 0)));
    assert_eq!(
        ok(S::PartiallyCaptured, E::CaptureRequested { amount: 60 }, a),
        (S::Capturing, a)
    );
    let (s, a) = ok(S::Capturing, E::CaptureConfirmed { amount: 60 }, a);
    assert_eq!((s, a), (S::Captured, am(100, 100, 0, 0)));
    // Failed captures go back to where they came from.
    assert_eq!(
        ok(
            S::Capturing,
            E::CaptureFailed { code: code() },
            am(100, 0, 0, 0)
        )
        .0,
        S::Authorized
    );
    assert_eq!(
        ok(
            S::Capturing,
            E::CaptureFailed { code: code() },
            am(100, 30, 0, 0)
        )
        .0,
        S::PartiallyCaptured
    );
    // Limits.
    assert_eq!(
        err(
            S::Authorized,
            E::CaptureRequested { amount: 101 },
            am(100, 0, 0, 0)
        ),
        IllegalReason::ExceedsCapturable {
            requested: 101,
            available: 100
        }
    );
    assert_eq!(
        err(
            S::Authorized,
            E::CaptureRequested { amount: 0 },
            am(100, 0, 0, 0)
        ),
        IllegalReason::ZeroAmount
    );
    assert_eq!(
        err(
            S::Capturing,
            E::CaptureConfirmed { amount: 61 },
            am(100, 40, 0, 0)
        ),
        IllegalReason::ExceedsCapturable {
            requested: 61,
            available: 60
        }
    );
    // One action at a time.
    assert_eq!(
        err(
            S::Capturing,
            E::CaptureRequested { amount: 1 },
            am(100, 0, 0, 0)
        ),
        IllegalReason::NotAllowed
    );
    assert_eq!(
        err(S::Capturing, E::VoidRequested, am(100, 0, 0, 0)),
        IllegalReason::NotAllowed
    );
    assert_eq!(
        err(
            S::Capturing,
            E::RefundRequested { amount: 1 },
            am(100, 10, 0, 0)
        ),
        IllegalReason::NotAllowed
    );
    assert_eq!(
        err(S::Capturing, E::Expired, am(100, 0, 0, 0)),
        IllegalReason::NotAllowed
    );
    assert_eq!(
        err(
            S::Captured,
            E::CaptureRequested { amount: 1 },
            am(100, 100, 0, 0)
        ),
        IllegalReason::NotAllowed
    );
    assert_eq!(
        err(
            S::Authorized,
            E::CaptureConfirmed { amount: 1 },
            am(100, 0, 0, 0)
        ),
        IllegalReason::NotAllowed
    );
}

#[test]
fn voids() {
    let a = am(100, 0, 0, 0);
    assert_eq!(ok(S::Authorized, E::VoidRequested, a), (S::Voiding, a));
    assert_eq!(
        ok(S::Voiding, E::VoidConfirmed { amount: 100 }, a),
        (S::Voided, am(100, 0, 0, 100))
    );
    assert_eq!(
        ok(S::Voiding, E::VoidFailed { code: code() }, a),
        (S::Authorized, a)
    );
    // Void of the leftover after a partial capture: the payment is then simply Captured.
    let p = am(100, 30, 0, 0);
    assert_eq!(
        ok(S::PartiallyCaptured, E::VoidRequested, p),
        (S::Voiding, p)
    );
    assert_eq!(
        ok(S::Voiding, E::VoidConfirmed { amount: 70 }, p),
        (S::Captured, am(100, 30, 0, 70))
    );
    assert_eq!(
        ok(
            S::Voiding,
            E::VoidConfirmed { amount: 70 },
            am(100, 30, 10, 0)
        )
        .0,
        S::PartiallyRefunded
    );
    assert_eq!(
        ok(
            S::Voiding,
            E::VoidConfirmed { amount: 70 },
            am(100, 30, 30, 0)
        )
        .0,
        S::Refunded
    );
    assert_eq!(
        ok(S::Voiding, E::VoidFailed { code: code() }, p),
        (S::PartiallyCaptured, p)
    );
    // Void after expiry (the operator returns the funds without the payer's gas).
    let x = am(100, 0, 0, 100);
    assert_eq!(ok(S::Expired, E::VoidRequested, x), (S::Voiding, x));
    assert_eq!(
        ok(S::Voiding, E::VoidConfirmed { amount: 100 }, x),
        (S::Voided, x)
    );
    assert_eq!(
        ok(S::Voiding, E::VoidFailed { code: code() }, x),
        (S::Expired, x)
    );
    // Limits.
    assert_eq!(
        err(S::Voiding, E::VoidConfirmed { amount: 71 }, p),
        IllegalReason::ExceedsHeld {
            requested: 71,
            available: 70
        }
    );
    assert_eq!(
        err(S::Voiding, E::VoidConfirmed { amount: 0 }, p),
        IllegalReason::ZeroAmount
    );
    for s in [
        S::Captured,
        S::PartiallyRefunded,
        S::Refunded,
        S::Voided,
        S::Reclaimed,
        S::Failed,
        S::Voiding,
        S::Refunding,
    ] {
        assert_eq!(
            err(s, E::VoidRequested, am(100, 100, 0, 0)),
            IllegalReason::NotAllowed,
            "{s}"
        );
    }
    assert_eq!(
        err(S::Authorized, E::VoidConfirmed { amount: 1 }, a),
        IllegalReason::NotAllowed
    );
    assert_eq!(
        err(S::Authorized, E::VoidFailed { code: code() }, a),
        IllegalReason::NotAllowed
    );
}

#[test]
fn refunds() {
    let c = am(100, 100, 0, 0);
    assert_eq!(
        ok(S::Captured, E::RefundRequested { amount: 30 }, c),
        (S::Refunding, c)
    );
    let (s, a) = ok(S::Refunding, E::RefundConfirmed { amount: 30 }, c);
    assert_eq!((s, a), (S::PartiallyRefunded, am(100, 100, 30, 0)));
    assert_eq!(
        ok(S::PartiallyRefunded, E::RefundRequested { amount: 70 }, a),
        (S::Refunding, a)
    );
    let (s, a) = ok(S::Refunding, E::RefundConfirmed { amount: 70 }, a);
    assert_eq!((s, a), (S::Refunded, am(100, 100, 100, 0)));
    assert_eq!(
        ok(S::Refunding, E::RefundFailed { code: code() }, c),
        (S::Captured, c)
    );
    assert_eq!(
        ok(
            S::Refunding,
            E::RefundFailed { code: code() },
            am(100, 100, 30, 0)
        )
        .0,
        S::PartiallyRefunded
    );
    // Refund of the captured part while the rest is still capturable.
    let p = am(100, 40, 0, 0);
    assert_eq!(
        ok(S::PartiallyCaptured, E::RefundRequested { amount: 40 }, p),
        (S::Refunding, p)
    );
    assert_eq!(
        ok(S::Refunding, E::RefundConfirmed { amount: 40 }, p),
        (S::PartiallyCaptured, am(100, 40, 40, 0))
    );
    assert_eq!(
        ok(S::Refunding, E::RefundFailed { code: code() }, p),
        (S::PartiallyCaptured, p)
    );
    // Limits.
    assert_eq!(
        err(S::Captured, E::RefundRequested { amount: 101 }, c),
        IllegalReason::ExceedsRefundable {
            requested: 101,
            available: 100
        }
    );
    assert_eq!(
        err(
            S::PartiallyRefunded,
            E::RefundRequested { amount: 71 },
            am(100, 100, 30, 0)
        ),
        IllegalReason::ExceedsRefundable {
            requested: 71,
            available: 70
        }
    );
    assert_eq!(
        err(S::Refunding, E::RefundConfirmed { amount: 101 }, c),
        IllegalReason::ExceedsRefundable {
            requested: 101,
            available: 100
        }
    );
    assert_eq!(
        err(S::Captured, E::RefundRequested { amount: 0 }, c),
        IllegalReason::ZeroAmount
    );
    assert_eq!(
        err(
            S::Authorized,
            E::RefundRequested { amount: 1 },
            am(100, 0, 0, 0)
        ),
        IllegalReason::NotAllowed
    );
    assert_eq!(
        err(
            S::Refunded,
            E::RefundRequested { amount: 1 },
            am(100, 100, 100, 0)
        ),
        IllegalReason::NotAllowed
    );
    assert_eq!(
        err(S::Refunding, E::RefundRequested { amount: 1 }, c),
        IllegalReason::NotAllowed
    );
    assert_eq!(
        err(S::Captured, E::RefundConfirmed { amount: 1 }, c),
        IllegalReason::NotAllowed
    );
}

#[test]
fn expiry() {
    assert_eq!(
        ok(S::Authorized, E::Expired, am(100, 0, 0, 0)),
        (S::Expired, am(100, 0, 0, 100))
    );
    assert_eq!(
        ok(S::PartiallyCaptured, E::Expired, am(100, 40, 0, 0)),
        (S::Captured, am(100, 40, 0, 60))
    );
    assert_eq!(
        ok(S::PartiallyCaptured, E::Expired, am(100, 40, 10, 0)).0,
        S::PartiallyRefunded
    );
    assert_eq!(
        ok(S::PartiallyCaptured, E::Expired, am(100, 40, 40, 0)).0,
        S::Refunded
    );
    // A refund in flight from PartiallyCaptured: the window closes underneath it.
    let (s, a) = ok(S::Refunding, E::Expired, am(100, 40, 0, 0));
    assert_eq!((s, a), (S::Refunding, am(100, 40, 0, 60)));
    assert_eq!(
        ok(S::Refunding, E::RefundConfirmed { amount: 40 }, a),
        (S::Refunded, am(100, 40, 40, 60))
    );
    assert_eq!(
        err(S::Refunding, E::Expired, am(100, 100, 0, 0)),
        IllegalReason::NotAllowed
    );
    for s in [
        S::Authorizing,
        S::Charging,
        S::Capturing,
        S::Voiding,
        S::Captured,
        S::Expired,
        S::Voided,
        S::Failed,
    ] {
        assert_eq!(
            err(s, E::Expired, am(100, 0, 0, 0)),
            IllegalReason::NotAllowed,
            "{s}"
        );
    }
    // Nothing capturable after expiry.
    assert_eq!(
        err(
            S::Expired,
            E::CaptureRequested { amount: 1 },
            am(100, 0, 0, 100)
        ),
        IllegalReason::NotAllowed
    );
}

#[test]
fn reclaims() {
    assert_eq!(
        ok(
            S::Authorized,
            E::ReclaimObserved { amount: 100 },
            am(100, 0, 0, 0)
        ),
        (S::Reclaimed, am(100, 0, 0, 100))
    );
    assert_eq!(
        ok(
            S::Expired,
            E::ReclaimObserved { amount: 100 },
            am(100, 0, 0, 100)
        ),
        (S::Reclaimed, am(100, 0, 0, 100))
    );
    assert_eq!(
        ok(
            S::PartiallyCaptured,
            E::ReclaimObserved { amount: 60 },
            am(100, 40, 0, 0)
        ),
        (S::Captured, am(100, 40, 0, 60))
    );
    // Racing our own action: the reclaim wins, our transaction will revert.
    assert_eq!(
        ok(
            S::Capturing,
            E::ReclaimObserved { amount: 100 },
            am(100, 0, 0, 0)
        )
        .0,
        S::Reclaimed
    );
    assert_eq!(
        ok(
            S::Capturing,
            E::ReclaimObserved { amount: 60 },
            am(100, 40, 0, 0)
        )
        .0,
        S::Captured
    );
    assert_eq!(
        ok(
            S::Voiding,
            E::ReclaimObserved { amount: 100 },
            am(100, 0, 0, 0)
        )
        .0,
        S::Reclaimed
    );
    assert_eq!(
        ok(
            S::Voiding,
            E::ReclaimObserved { amount: 100 },
            am(100, 0, 0, 100)
        )
        .0,
        S::Reclaimed
    );
    assert_eq!(
        ok(
            S::Voiding,
            E::ReclaimObserved { amount: 60 },
            am(100, 40, 5, 0)
        )
        .0,
        S::PartiallyRefunded
    );
    // The expired remainder of a partly captured payment; status unchanged.
    for s in [S::Captured, S::PartiallyRefunded, S::Refunded] {
        let r = if s == S::Captured {
            0
        } else if s == S::Refunded {
            40
        } else {
            10
        };
        let a = am(100, 40, r, 60);
        assert_eq!(ok(s, E::ReclaimObserved { amount: 60 }, a), (s, a));
    }
    assert_eq!(
        ok(
            S::Refunding,
            E::ReclaimObserved { amount: 60 },
            am(100, 40, 0, 0)
        ),
        (S::Refunding, am(100, 40, 0, 60))
    );
    // Limits.
    assert_eq!(
        err(
            S::Captured,
            E::ReclaimObserved { amount: 1 },
            am(100, 100, 0, 0)
        ),
        IllegalReason::ExceedsHeld {
            requested: 1,
            available: 0
        }
    );
    assert_eq!(
        err(
            S::Authorized,
            E::ReclaimObserved { amount: 0 },
            am(100, 0, 0, 0)
        ),
        IllegalReason::ZeroAmount
    );
    for s in [
        S::Authorizing,
        S::Charging,
        S::Voided,
        S::Reclaimed,
        S::Failed,
    ] {
        assert_eq!(
            err(s, E::ReclaimObserved { amount: 1 }, am(100, 0, 0, 100)),
            IllegalReason::NotAllowed,
            "{s}"
        );
    }
}

#[test]
fn terminal_states_refuse_everything_that_changes_them() {
    let events = sample_events(5);
    for s in [S::Voided, S::Reclaimed, S::Failed] {
        for e in &events {
            let a = if s == S::Failed {
                Amounts::default()
            } else {
                am(100, 0, 0, 100)
            };
            assert!(s.apply(e, &mut a.clone()).is_err(), "{s} accepted {e:?}");
        }
    }
    for e in &events {
        let mut a = am(100, 40, 40, 60);
        if let Ok(to) = S::Refunded.apply(e, &mut a) {
            assert_eq!(to, S::Refunded);
            assert!(matches!(e, E::ReclaimObserved { .. }));
        }
    }
}

#[test]
fn inconsistent_stored_amounts_are_refused() {
    let bad = am(10, 20, 0, 0);
    assert!(matches!(
        err(S::Authorized, E::VoidRequested, bad),
        IllegalReason::Amounts(AmountError::Inconsistent(_))
    ));
    assert!(matches!(
        err(
            S::Capturing,
            E::CaptureConfirmed { amount: 1 },
            am(u128::MAX, u128::MAX, 0, 0)
        ),
        IllegalReason::Amounts(_) | IllegalReason::ExceedsCapturable { .. }
    ));
}

fn sample_events(amount: u128) -> Vec<E> {
    vec![
        E::AuthorizeConfirmed { amount },
        E::AuthorizeFailed { code: code() },
        E::ChargeConfirmed { amount },
        E::ChargeFailed { code: code() },
        E::CaptureRequested { amount },
        E::CaptureConfirmed { amount },
        E::CaptureFailed { code: code() },
        E::VoidRequested,
        E::VoidConfirmed { amount },
        E::VoidFailed { code: code() },
        E::RefundRequested { amount },
        E::RefundConfirmed { amount },
        E::RefundFailed { code: code() },
        E::ReclaimObserved { amount },
        E::Expired,
    ]
}

/// The full (status × event kind) matrix of which pairs may ever be legal, checked against
/// the table with amounts that make each legal pair's amount checks pass.
#[test]
fn matrix_of_allowed_pairs() {
    let allowed: &[(S, &str)] = &[
        (S::Authorizing, "authorize_confirmed"),
        (S::Authorizing, "authorize_failed"),
        (S::Charging, "charge_confirmed"),
        (S::Charging, "charge_failed"),
        (S::Authorized, "capture_requested"),
        (S::Authorized, "void_requested"),
        (S::Authorized, "expired"),
        (S::Authorized, "reclaim_observed"),
        (S::PartiallyCaptured, "capture_requested"),
        (S::PartiallyCaptured, "void_requested"),
        (S::PartiallyCaptured, "refund_requested"),
        (S::PartiallyCaptured, "expired"),
        (S::PartiallyCaptured, "reclaim_observed"),
        (S::Capturing, "capture_confirmed"),
        (S::Capturing, "capture_failed"),
        (S::Capturing, "reclaim_observed"),
        (S::Captured, "refund_requested"),
        (S::Captured, "reclaim_observed"),
        (S::PartiallyRefunded, "refund_requested"),
        (S::PartiallyRefunded, "reclaim_observed"),
        (S::Refunded, "reclaim_observed"),
        (S::Refunding, "refund_confirmed"),
        (S::Refunding, "refund_failed"),
        (S::Refunding, "expired"),
        (S::Refunding, "reclaim_observed"),
        (S::Voiding, "void_confirmed"),
        (S::Voiding, "void_failed"),
        (S::Voiding, "reclaim_observed"),
        (S::Expired, "void_requested"),
        (S::Expired, "reclaim_observed"),
    ];
    // Amounts per status under which every allowed pair passes its amount checks.
    let amounts_for = |s: S| match s {
        S::Authorizing | S::Charging | S::Failed => Amounts::default(),
        S::Authorized => am(100, 0, 0, 0),
        S::PartiallyCaptured | S::Capturing | S::Refunding => am(100, 40, 0, 0),
        S::Voiding => am(100, 0, 0, 0),
        S::Captured => am(100, 40, 0, 60),
        S::PartiallyRefunded => am(100, 40, 10, 60),
        S::Refunded => am(100, 40, 40, 60),
        S::Voided | S::Reclaimed | S::Expired => am(100, 0, 0, 100),
    };
    for s in ALL_STATUSES {
        for e in sample_events(5) {
            let legal = allowed.contains(&(s, e.name()));
            let mut a = amounts_for(s);
            let result = s.apply(&e, &mut a);
            assert_eq!(result.is_ok(), legal, "{s} × {}: {result:?}", e.name());
            if let Ok(to) = result {
                assert!(consistent(to, &a), "{s} × {} → {to} {a:?}", e.name());
            } else {
                assert_eq!(a, amounts_for(s));
            }
        }
    }
}

mod property {
    use super::*;
    use proptest::prelude::*;

    fn event() -> impl Strategy<Value = E> {
        let amount = prop_oneof![0u128..=3, 1u128..=150, Just(u128::MAX)];
        (0usize..15, amount).prop_map(|(i, amount)| sample_events(amount).swap_remove(i))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// Random event sequences (mostly illegal ones) never break the amount invariants or
        /// the status/amount consistency, and refused events never change anything.
        #[test]
        fn random_sequences_keep_invariants(
            flow in prop_oneof![Just(Flow::Authorize), Just(Flow::Charge)],
            events in proptest::collection::vec(event(), 0..60),
        ) {
            let mut status = S::initial(flow);
            let mut amounts = Amounts::default();
            for e in &events {
                let before = amounts;
                match status.apply(e, &mut amounts) {
                    Ok(next) => {
                        prop_assert!(amounts.check().is_ok());
                        prop_assert!(amounts.refunded <= amounts.captured);
                        prop_assert!(amounts.captured <= amounts.authorized);
                        prop_assert!(consistent(next, &amounts), "{status} {e:?} -> {next} {amounts:?}");
                        // Money only moves forward.
                        prop_assert!(amounts.captured >= before.captured);
                        prop_assert!(amounts.refunded >= before.refunded);
                        prop_assert!(amounts.released >= before.released);
                        if status.is_terminal() { prop_assert_eq!(next, status); }
                        status = next;
                    }
                    Err(_) => prop_assert_eq!(amounts, before),
                }
            }
        }
    }
}
