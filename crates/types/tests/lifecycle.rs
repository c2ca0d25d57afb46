//! The payment state machine (`PaymentStatus::apply`): every (status, event) pair of the
//! transition table, the terminal statuses, and random event sequences (proptest).

use IllegalReason as R;
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

/// A legal transition: `(from, event, amounts before, status after, amounts after)`.
type Legal = (S, E, Amounts, S, Amounts);

/// A refused transition: `(from, event, amounts before, why)`.
type Illegal = (S, E, Amounts, R);

/// Every row moves to its status and amounts (and the result is consistent: see [`ok`]).
fn check_legal(rows: &[Legal]) {
    for (from, event, before, to, after) in rows {
        assert_eq!(
            ok(*from, event.clone(), *before),
            (*to, *after),
            "{from} --{event:?}--> from {before:?}"
        );
    }
}

/// Every row is refused for its reason, leaving the amounts as they were (see [`err`]).
fn check_illegal(rows: &[Illegal]) {
    for (from, event, before, reason) in rows {
        assert_eq!(
            &err(*from, event.clone(), *before),
            reason,
            "{from} {event:?} from {before:?}"
        );
    }
}

/// `event` is refused as not allowed in every status of `statuses`, from `before`.
fn check_not_allowed(statuses: &[S], event: E, before: Amounts) {
    for s in statuses {
        assert_eq!(
            err(*s, event.clone(), before),
            R::NotAllowed,
            "{s} {event:?}"
        );
    }
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

/// Every legal transition, by topic: the first action, partial and repeated captures, voids,
/// refunds, expiry and the payer's reclaim.
#[rustfmt::skip]
#[test]
fn legal_transitions() {
    let z = Amounts::default();
    check_legal(&[
        // --- The first action.
        (S::Authorizing, E::AuthorizeConfirmed { amount: 100 }, z, S::Authorized, am(100, 0, 0, 0)),
        (S::Authorizing, E::AuthorizeFailed { code: code() }, z, S::Failed, z),
        (S::Charging, E::ChargeConfirmed { amount: 70 }, z, S::Captured, am(70, 70, 0, 0)),
        (S::Charging, E::ChargeFailed { code: code() }, z, S::Failed, z),
        // --- Captures, partial and repeated: 40, then the remaining 60.
        (S::Authorized, E::CaptureRequested { amount: 40 }, am(100, 0, 0, 0), S::Capturing, am(100, 0, 0, 0)),
        (S::Capturing, E::CaptureConfirmed { amount: 40 }, am(100, 0, 0, 0), S::PartiallyCaptured, am(100, 40, 0, 0)),
        (S::PartiallyCaptured, E::CaptureRequested { amount: 60 }, am(100, 40, 0, 0), S::Capturing, am(100, 40, 0, 0)),
        (S::Capturing, E::CaptureConfirmed { amount: 60 }, am(100, 40, 0, 0), S::Captured, am(100, 100, 0, 0)),
        // Failed captures go back to where they came from.
        (S::Capturing, E::CaptureFailed { code: code() }, am(100, 0, 0, 0), S::Authorized, am(100, 0, 0, 0)),
        (S::Capturing, E::CaptureFailed { code: code() }, am(100, 30, 0, 0), S::PartiallyCaptured, am(100, 30, 0, 0)),
        // --- Voids.
        (S::Authorized, E::VoidRequested, am(100, 0, 0, 0), S::Voiding, am(100, 0, 0, 0)),
        (S::Voiding, E::VoidConfirmed { amount: 100 }, am(100, 0, 0, 0), S::Voided, am(100, 0, 0, 100)),
        (S::Voiding, E::VoidFailed { code: code() }, am(100, 0, 0, 0), S::Authorized, am(100, 0, 0, 0)),
        // Void of the leftover after a partial capture: the payment is then simply Captured.
        (S::PartiallyCaptured, E::VoidRequested, am(100, 30, 0, 0), S::Voiding, am(100, 30, 0, 0)),
        (S::Voiding, E::VoidConfirmed { amount: 70 }, am(100, 30, 0, 0), S::Captured, am(100, 30, 0, 70)),
        (S::Voiding, E::VoidConfirmed { amount: 70 }, am(100, 30, 10, 0), S::PartiallyRefunded, am(100, 30, 10, 70)),
        (S::Voiding, E::VoidConfirmed { amount: 70 }, am(100, 30, 30, 0), S::Refunded, am(100, 30, 30, 70)),
        (S::Voiding, E::VoidFailed { code: code() }, am(100, 30, 0, 0), S::PartiallyCaptured, am(100, 30, 0, 0)),
        // Void after expiry (the operator returns the funds without the payer's gas).
        (S::Expired, E::VoidRequested, am(100, 0, 0, 100), S::Voiding, am(100, 0, 0, 100)),
        (S::Voiding, E::VoidConfirmed { amount: 100 }, am(100, 0, 0, 100), S::Voided, am(100, 0, 0, 100)),
        (S::Voiding, E::VoidFailed { code: code() }, am(100, 0, 0, 100), S::Expired, am(100, 0, 0, 100)),
        // --- Refunds: 30, then the remaining 70.
        (S::Captured, E::RefundRequested { amount: 30 }, am(100, 100, 0, 0), S::Refunding, am(100, 100, 0, 0)),
        (S::Refunding, E::RefundConfirmed { amount: 30 }, am(100, 100, 0, 0), S::PartiallyRefunded, am(100, 100, 30, 0)),
        (S::PartiallyRefunded, E::RefundRequested { amount: 70 }, am(100, 100, 30, 0), S::Refunding, am(100, 100, 30, 0)),
        (S::Refunding, E::RefundConfirmed { amount: 70 }, am(100, 100, 30, 0), S::Refunded, am(100, 100, 100, 0)),
        (S::Refunding, E::RefundFailed { code: code() }, am(100, 100, 0, 0), S::Captured, am(100, 100, 0, 0)),
        (S::Refunding, E::RefundFailed { code: code() }, am(100, 100, 30, 0), S::PartiallyRefunded, am(100, 100, 30, 0)),
        // Refund of the captured part while the rest is still capturable.
        (S::PartiallyCaptured, E::RefundRequested { amount: 40 }, am(100, 40, 0, 0), S::Refunding, am(100, 40, 0, 0)),
        (S::Refunding, E::RefundConfirmed { amount: 40 }, am(100, 40, 0, 0), S::PartiallyCaptured, am(100, 40, 40, 0)),
        (S::Refunding, E::RefundFailed { code: code() }, am(100, 40, 0, 0), S::PartiallyCaptured, am(100, 40, 0, 0)),
        // --- Expiry.
        (S::Authorized, E::Expired, am(100, 0, 0, 0), S::Expired, am(100, 0, 0, 100)),
        (S::PartiallyCaptured, E::Expired, am(100, 40, 0, 0), S::Captured, am(100, 40, 0, 60)),
        (S::PartiallyCaptured, E::Expired, am(100, 40, 10, 0), S::PartiallyRefunded, am(100, 40, 10, 60)),
        (S::PartiallyCaptured, E::Expired, am(100, 40, 40, 0), S::Refunded, am(100, 40, 40, 60)),
        // A refund in flight from PartiallyCaptured: the window closes underneath it.
        (S::Refunding, E::Expired, am(100, 40, 0, 0), S::Refunding, am(100, 40, 0, 60)),
        (S::Refunding, E::RefundConfirmed { amount: 40 }, am(100, 40, 0, 60), S::Refunded, am(100, 40, 40, 60)),
        // --- The payer's reclaim.
        (S::Authorized, E::ReclaimObserved { amount: 100 }, am(100, 0, 0, 0), S::Reclaimed, am(100, 0, 0, 100)),
        (S::Expired, E::ReclaimObserved { amount: 100 }, am(100, 0, 0, 100), S::Reclaimed, am(100, 0, 0, 100)),
        (S::PartiallyCaptured, E::ReclaimObserved { amount: 60 }, am(100, 40, 0, 0), S::Captured, am(100, 40, 0, 60)),
        // Racing our own action: the reclaim wins, our transaction will revert.
        (S::Capturing, E::ReclaimObserved { amount: 100 }, am(100, 0, 0, 0), S::Reclaimed, am(100, 0, 0, 100)),
        (S::Capturing, E::ReclaimObserved { amount: 60 }, am(100, 40, 0, 0), S::Captured, am(100, 40, 0, 60)),
        (S::Voiding, E::ReclaimObserved { amount: 100 }, am(100, 0, 0, 0), S::Reclaimed, am(100, 0, 0, 100)),
        (S::Voiding, E::ReclaimObserved { amount: 100 }, am(100, 0, 0, 100), S::Reclaimed, am(100, 0, 0, 100)),
        (S::Voiding, E::ReclaimObserved { amount: 60 }, am(100, 40, 5, 0), S::PartiallyRefunded, am(100, 40, 5, 60)),
        // The expired remainder of a partly captured payment; status unchanged.
        (S::Captured, E::ReclaimObserved { amount: 60 }, am(100, 40, 0, 60), S::Captured, am(100, 40, 0, 60)),
        (S::PartiallyRefunded, E::ReclaimObserved { amount: 60 }, am(100, 40, 10, 60), S::PartiallyRefunded, am(100, 40, 10, 60)),
        (S::Refunded, E::ReclaimObserved { amount: 60 }, am(100, 40, 40, 60), S::Refunded, am(100, 40, 40, 60)),
        (S::Refunding, E::ReclaimObserved { amount: 60 }, am(100, 40, 0, 0), S::Refunding, am(100, 40, 0, 60)),
    ]);
}

/// Refused transitions, by topic: zero amounts, amounts over the limit, and events that are not
/// allowed in the status (one action at a time).
#[rustfmt::skip]
#[test]
fn illegal_transitions() {
    let z = Amounts::default();
    check_illegal(&[
        // --- The first action.
        (S::Authorizing, E::AuthorizeConfirmed { amount: 0 }, z, R::ZeroAmount),
        (S::Charging, E::ChargeConfirmed { amount: 0 }, z, R::ZeroAmount),
        (S::Authorizing, E::ChargeConfirmed { amount: 1 }, z, R::NotAllowed),
        (S::Charging, E::AuthorizeConfirmed { amount: 1 }, z, R::NotAllowed),
        (S::Authorizing, E::CaptureRequested { amount: 1 }, z, R::NotAllowed),
        (S::Authorizing, E::VoidRequested, z, R::NotAllowed),
        // --- Captures: limits.
        (S::Authorized, E::CaptureRequested { amount: 101 }, am(100, 0, 0, 0), R::ExceedsCapturable { requested: 101, available: 100 }),
        (S::Authorized, E::CaptureRequested { amount: 0 }, am(100, 0, 0, 0), R::ZeroAmount),
        (S::Capturing, E::CaptureConfirmed { amount: 61 }, am(100, 40, 0, 0), R::ExceedsCapturable { requested: 61, available: 60 }),
        // One action at a time.
        (S::Capturing, E::CaptureRequested { amount: 1 }, am(100, 0, 0, 0), R::NotAllowed),
        (S::Capturing, E::VoidRequested, am(100, 0, 0, 0), R::NotAllowed),
        (S::Capturing, E::RefundRequested { amount: 1 }, am(100, 10, 0, 0), R::NotAllowed),
        (S::Capturing, E::Expired, am(100, 0, 0, 0), R::NotAllowed),
        (S::Captured, E::CaptureRequested { amount: 1 }, am(100, 100, 0, 0), R::NotAllowed),
        (S::Authorized, E::CaptureConfirmed { amount: 1 }, am(100, 0, 0, 0), R::NotAllowed),
        // --- Voids: limits.
        (S::Voiding, E::VoidConfirmed { amount: 71 }, am(100, 30, 0, 0), R::ExceedsHeld { requested: 71, available: 70 }),
        (S::Voiding, E::VoidConfirmed { amount: 0 }, am(100, 30, 0, 0), R::ZeroAmount),
        (S::Authorized, E::VoidConfirmed { amount: 1 }, am(100, 0, 0, 0), R::NotAllowed),
        (S::Authorized, E::VoidFailed { code: code() }, am(100, 0, 0, 0), R::NotAllowed),
        // --- Refunds: limits.
        (S::Captured, E::RefundRequested { amount: 101 }, am(100, 100, 0, 0), R::ExceedsRefundable { requested: 101, available: 100 }),
        (S::PartiallyRefunded, E::RefundRequested { amount: 71 }, am(100, 100, 30, 0), R::ExceedsRefundable { requested: 71, available: 70 }),
        (S::Refunding, E::RefundConfirmed { amount: 101 }, am(100, 100, 0, 0), R::ExceedsRefundable { requested: 101, available: 100 }),
        (S::Captured, E::RefundRequested { amount: 0 }, am(100, 100, 0, 0), R::ZeroAmount),
        (S::Authorized, E::RefundRequested { amount: 1 }, am(100, 0, 0, 0), R::NotAllowed),
        (S::Refunded, E::RefundRequested { amount: 1 }, am(100, 100, 100, 0), R::NotAllowed),
        (S::Refunding, E::RefundRequested { amount: 1 }, am(100, 100, 0, 0), R::NotAllowed),
        (S::Captured, E::RefundConfirmed { amount: 1 }, am(100, 100, 0, 0), R::NotAllowed),
        // --- Expiry.
        (S::Refunding, E::Expired, am(100, 100, 0, 0), R::NotAllowed),
        // Nothing capturable after expiry.
        (S::Expired, E::CaptureRequested { amount: 1 }, am(100, 0, 0, 100), R::NotAllowed),
        // --- The payer's reclaim: limits.
        (S::Captured, E::ReclaimObserved { amount: 1 }, am(100, 100, 0, 0), R::ExceedsHeld { requested: 1, available: 0 }),
        (S::Authorized, E::ReclaimObserved { amount: 0 }, am(100, 0, 0, 0), R::ZeroAmount),
    ]);
}

/// An event refused as not allowed in every one of a set of statuses.
#[rustfmt::skip]
#[test]
fn events_not_allowed_in_these_statuses() {
    // A void of a payment with nothing left to release, or with an action in flight.
    check_not_allowed(
        &[S::Captured, S::PartiallyRefunded, S::Refunded, S::Voided, S::Reclaimed, S::Failed, S::Voiding, S::Refunding],
        E::VoidRequested,
        am(100, 100, 0, 0),
    );
    // Expiry where no hold is left to expire, or an action other than a refund is in flight.
    check_not_allowed(
        &[S::Authorizing, S::Charging, S::Capturing, S::Voiding, S::Captured, S::Expired, S::Voided, S::Failed],
        E::Expired,
        am(100, 0, 0, 0),
    );
    // A reclaim before anything is held, or after the hold is gone.
    check_not_allowed(
        &[S::Authorizing, S::Charging, S::Voided, S::Reclaimed, S::Failed],
        E::ReclaimObserved { amount: 1 },
        am(100, 0, 0, 100),
    );
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
        R::Amounts(AmountError::Inconsistent(_))
    ));
    assert!(matches!(
        err(
            S::Capturing,
            E::CaptureConfirmed { amount: 1 },
            am(u128::MAX, u128::MAX, 0, 0)
        ),
        R::Amounts(_) | R::ExceedsCapturable { .. }
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
