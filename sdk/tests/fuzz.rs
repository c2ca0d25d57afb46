//! No input makes a decoder (or the scheme checks behind it) panic: arbitrary bytes, arbitrary
//! base64, and valid headers mutated at the byte level and at the JSON level.

mod support;

use alloy::primitives::Address;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;
use serde_json::{Value, json};
use support::base_sepolia_requirements;
use x402_escrow_sdk::schemes::auth_capture;
use x402_escrow_sdk::wire::codec;
use x402_escrow_sdk::{EscrowRegistry, random_b256};

fn valid_payload() -> Value {
    json!({
        "x402Version": 2,
        "resource": { "url": "https://api.example.com/premium" },
        "accepted": base_sepolia_requirements("auth-capture", "1000000", json!({
            "name": "USDC", "version": "2",
            "captureAuthorizer": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
            "captureDeadline": 1767229200, "refundDeadline": 1769817600,
            "feeRecipient": "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
            "minFeeBps": 100, "maxFeeBps": 100,
            "authCaptureEscrow": "0xBdEA0D1bcC5966192B070Fdf62aB4EF5b4420cff"
        })),
        "payload": {
            "authorization": {
                "from": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
                "to": "0x0E3dF9510de65469C4518D7843919c0b8C7A7757",
                "value": "1000000", "validAfter": "0", "validBefore": "1767225660",
                "nonce": "0x0d97550d5b3a1ce1544dc1881a9ce3fdfda172d1ab0c82126b902771151092d2"
            },
            "signature": "0x4405dcff75910bf2272ebc9385154f43be3a62ce4ddef3cd45436bab8fd4f1b71710155ea86872294209d136e4caa976d001e9c62ced4faa29413b440515deb31b",
            "salt": "0x1111111111111111111111111111111111111111111111111111111111111111"
        },
        "extensions": { "payment-identifier": { "info": { "required": false, "id": "pay_0123456789abcdef" } } }
    })
}

/// Runs every decoder on `header`, and the operator checks on whatever decodes.
fn exercise(header: &[u8]) {
    let _ = codec::decode_payment_required(header);
    let _ = codec::decode_payment_response(header);
    let _ = codec::decode_x_payment(header);
    let _ = codec::decode_x_payment_response(header);
    let _ = codec::decode_payment_required_v1_body(header);
    if let Ok(payment) = codec::decode_payment_signature(header) {
        let registry = EscrowRegistry::canonical();
        let _ = payment.payment_id();
        let _ = serde_json::to_string(&payment);
        if let Ok(derived) =
            auth_capture::derive_from_payment_payload(&payment.accepted, &payment, &registry)
        {
            let _ = auth_capture::check_timing(&payment.accepted, &derived, u64::MAX);
            let _ = auth_capture::check_timing(&payment.accepted, &derived, 0);
        }
        if let Some(payload) = payment.payload.as_auth_capture() {
            let _ = auth_capture::check_signature(&payment.accepted, payload);
        }
        let signer = alloy::signers::local::PrivateKeySigner::random();
        let _ = auth_capture::build_payload(
            &payment.accepted,
            &signer,
            u64::MAX,
            random_b256(),
            &registry,
        );
        let _ =
            auth_capture::build_payload(&payment.accepted, &signer, 0, random_b256(), &registry);
        let _ = auth_capture::prepare(
            &payment.accepted,
            Address::ZERO,
            1 << 47,
            random_b256(),
            &registry,
        );
        let _ = x402_escrow_sdk::schemes::exact::build_payload(
            &payment.accepted,
            &signer,
            u64::MAX,
            random_b256(),
        );
    }
}

/// Leaves of hostile JSON.
fn hostile_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[-+0-9.eE]{0,90}".prop_map(Value::String),
        "0x[0-9a-fA-F]{0,130}".prop_map(Value::String),
        ".{0,40}".prop_map(Value::String),
        Just(json!("eip155:0")),
        Just(json!("eip155:18446744073709551616")),
        Just(json!(
            "115792089237316195423570985008687907853269984665640564039457584007913129639935"
        )),
    ]
}

fn hostile_value() -> impl Strategy<Value = Value> {
    hostile_leaf().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every path (object keys, array indices) of `value`.
fn paths(value: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(prefix.clone());
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                prefix.push(k.clone());
                paths(v, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                prefix.push(i.to_string());
                paths(v, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn replace_at(root: &mut Value, path: &[String], new: Value) {
    let mut cursor = root;
    for key in path {
        cursor = match cursor {
            Value::Object(map) => match map.get_mut(key) {
                Some(v) => v,
                None => return,
            },
            Value::Array(items) => match key.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                Some(v) => v,
                None => return,
            },
            _ => return,
        };
    }
    *cursor = new;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..10_000)) {
        exercise(&bytes);
    }

    #[test]
    fn arbitrary_base64_json_never_panics(text in ".{0,400}") {
        exercise(STANDARD.encode(text.as_bytes()).as_bytes());
    }

    #[test]
    fn byte_mutations_never_panic(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let mut text = serde_json::to_vec(&valid_payload()).expect("json");
        for (index, byte, op) in edits {
            let i = index.index(text.len() + 1);
            match op {
                0 if i < text.len() => text[i] = byte,
                1 => text.insert(i, byte),
                _ if i < text.len() => { text.remove(i); }
                _ => text.push(byte),
            }
        }
        exercise(STANDARD.encode(&text).as_bytes());
        exercise(&text);
    }

    #[test]
    fn json_mutations_never_panic(
        replacements in prop::collection::vec((any::<prop::sample::Index>(), hostile_value()), 1..4),
    ) {
        let mut value = valid_payload();
        for (index, new) in replacements {
            let mut all = Vec::new();
            paths(&value, &mut Vec::new(), &mut all);
            let path = all[index.index(all.len())].clone();
            replace_at(&mut value, &path, new);
        }
        exercise(STANDARD.encode(serde_json::to_vec(&value).expect("json")).as_bytes());
    }
}

#[test]
fn the_unmutated_payload_decodes_and_derives() {
    let header = STANDARD.encode(serde_json::to_vec(&valid_payload()).expect("json"));
    let payment = codec::decode_payment_signature(&header).expect("valid");
    auth_capture::derive_from_payment_payload(
        &payment.accepted,
        &payment,
        &EscrowRegistry::canonical(),
    )
    .expect("derives");
}
