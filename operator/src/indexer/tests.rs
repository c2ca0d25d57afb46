//! Tests of event encoding and effects.

use super::*;
use alloy::primitives::aliases::{U48, U120};
use alloy::primitives::{Address, U256};
use x402_escrow_bindings::PaymentInfo;

fn info() -> PaymentInfo {
    PaymentInfo {
        operator: Address::repeat_byte(1),
        payer: Address::repeat_byte(2),
        receiver: Address::repeat_byte(3),
        token: Address::repeat_byte(4),
        maxAmount: U120::from(1_000_000u64),
        preApprovalExpiry: U48::from(100u64),
        authorizationExpiry: U48::from(200u64),
        refundExpiry: U48::from(300u64),
        minFeeBps: 10,
        maxFeeBps: 100,
        feeReceiver: Address::repeat_byte(5),
        salt: U256::from(0xabcdefu64),
    }
}

/// The payment hash of the test events.
const HASH: B256 = B256::repeat_byte(9);

#[test]
fn json_round_trips_every_kind() {
    let events = [
        EscrowEvent::Authorized {
            payment_hash: HASH,
            payment_info: info(),
            amount: 5,
            token_collector: Address::repeat_byte(6),
        },
        EscrowEvent::Charged {
            payment_hash: HASH,
            payment_info: info(),
            amount: u128::from(u64::MAX) * 1000,
            token_collector: Address::repeat_byte(6),
            fee: EventFee::Bps(50),
            fee_receiver: Address::repeat_byte(7),
        },
        EscrowEvent::Captured {
            payment_hash: HASH,
            amount: 3,
            fee: EventFee::Bps(100),
            fee_receiver: Address::repeat_byte(7),
        },
        // v1.1 escrows state the fee as an amount.
        EscrowEvent::Captured {
            payment_hash: HASH,
            amount: 300,
            fee: EventFee::Amount(3),
            fee_receiver: Address::repeat_byte(7),
        },
        EscrowEvent::Charged {
            payment_hash: HASH,
            payment_info: info(),
            amount: 1_000_000,
            token_collector: Address::repeat_byte(6),
            fee: EventFee::Amount(u128::from(u64::MAX) * 3),
            fee_receiver: Address::repeat_byte(7),
        },
        EscrowEvent::Voided {
            payment_hash: HASH,
            amount: 2,
        },
        EscrowEvent::Reclaimed {
            payment_hash: HASH,
            amount: 2,
        },
        EscrowEvent::Refunded {
            payment_hash: HASH,
            amount: 1,
            token_collector: Address::repeat_byte(8),
        },
        EscrowEvent::TokenStoreCreated {
            operator: Address::repeat_byte(1),
            token_store: Address::repeat_byte(2),
        },
    ];
    for e in events {
        assert_eq!(EscrowEvent::from_json(&e.to_json()).unwrap(), e);
    }
    assert!(EscrowEvent::from_json(&serde_json::json!({"event": "Nope"})).is_err());
    assert!(EscrowEvent::from_json(&serde_json::json!({"event": "PaymentVoided"})).is_err());
}

#[test]
fn effects() {
    use crate::lifecycle::PaymentEvent;
    let cases = [
        (
            EscrowEvent::Reclaimed {
                payment_hash: HASH,
                amount: 7,
            },
            EventEffect::Payment {
                payment_hash: HASH,
                event: PaymentEvent::ReclaimObserved { amount: 7 },
                origin: Origin::Payer,
            },
        ),
        (
            EscrowEvent::Captured {
                payment_hash: HASH,
                amount: 4,
                fee: EventFee::Bps(0),
                fee_receiver: Address::ZERO,
            },
            EventEffect::Payment {
                payment_hash: HASH,
                event: PaymentEvent::CaptureConfirmed { amount: 4 },
                origin: Origin::Operator,
            },
        ),
        (
            EscrowEvent::TokenStoreCreated {
                operator: Address::repeat_byte(1),
                token_store: Address::ZERO,
            },
            EventEffect::None,
        ),
    ];
    for (event, effect) in cases {
        assert_eq!(event_effect(&event), effect, "{event:?}");
    }
}

#[test]
fn logs_of_both_interface_versions_decode() {
    use alloy::primitives::Log;
    use alloy::sol_types::SolEvent;
    use x402_escrow_bindings::AuthCaptureEscrow as V1_0;
    use x402_escrow_bindings::IAuthCaptureEscrowV1_1 as V1_1;
    let escrow = Address::repeat_byte(0xee);
    let v1_0 = V1_0::PaymentCaptured {
        paymentInfoHash: HASH,
        amount: U256::from(300),
        feeBps: 100,
        feeReceiver: Address::repeat_byte(7),
    };
    let v1_1 = V1_1::PaymentCaptured {
        paymentInfoHash: HASH,
        amount: U256::from(300),
        feeAmount: U256::from(3),
        feeReceiver: Address::repeat_byte(7),
    };
    let charged = V1_1::PaymentCharged {
        paymentInfoHash: HASH,
        paymentInfo: info().into(),
        amount: U256::from(500),
        tokenCollector: Address::repeat_byte(6),
        feeAmount: U256::from(5),
        feeReceiver: Address::repeat_byte(7),
    };
    let log = |data| Log {
        address: escrow,
        data,
    };
    assert_eq!(
        EscrowEvent::decode(&log(v1_0.encode_log_data())).unwrap(),
        Some(EscrowEvent::Captured {
            payment_hash: HASH,
            amount: 300,
            fee: EventFee::Bps(100),
            fee_receiver: Address::repeat_byte(7),
        })
    );
    assert_eq!(
        EscrowEvent::decode(&log(v1_1.encode_log_data())).unwrap(),
        Some(EscrowEvent::Captured {
            payment_hash: HASH,
            amount: 300,
            fee: EventFee::Amount(3),
            fee_receiver: Address::repeat_byte(7),
        })
    );
    assert_eq!(
        EscrowEvent::decode(&log(charged.encode_log_data())).unwrap(),
        Some(EscrowEvent::Charged {
            payment_hash: HASH,
            payment_info: info(),
            amount: 500,
            token_collector: Address::repeat_byte(6),
            fee: EventFee::Amount(5),
            fee_receiver: Address::repeat_byte(7),
        })
    );
    // A v1.1 topic with data that does not decode is an error, not an unknown log.
    let mut broken = v1_1.encode_log_data();
    broken.data = alloy::primitives::Bytes::from_static(&[1, 2, 3]);
    assert!(EscrowEvent::decode(&log(broken)).is_err());
}
