//! Header codecs: round trips for both protocol versions, and hostile headers each refused with
//! its own error.

mod support;

use alloy::primitives::{Address, B256, address};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use support::base_sepolia_requirements;
use x402_escrow_sdk::amount::AmountError;
use x402_escrow_sdk::facilitator::{
    FacilitatorRequest, SettleResponse, SupportedKind, SupportedResponse, VerifyResponse,
};
use x402_escrow_sdk::primitives::{AddressError, HexError};
use x402_escrow_sdk::schemes::auth_capture::{AuthCaptureExtra, LifecycleOperation, PaymentFlow};
use x402_escrow_sdk::wire::codec::{self, AnyPaymentRequired, MAX_HEADER_LEN};
use x402_escrow_sdk::wire::extensions::{self, PAYMENT_IDENTIFIER};
use x402_escrow_sdk::wire::{
    Extra, PaymentPayload, PaymentPayloadV1, PaymentRequired, PaymentRequiredV1,
    PaymentRequirements, PaymentRequirementsV1, ResourceInfo, SchemePayload,
};
use x402_escrow_sdk::{Amount, DecodeError, Network};

const PAYER: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
const SIGNATURE: &str = "0x2914bf6e80189d40e820170d1d0552f3360c5c61ac6b46bf1d637066f9c0b0aa453272d592a458241eea0067a3ff3e2daa93cd3ba64c892d4dcd61a5d8a1402b1c";

fn auth_capture_requirements() -> Value {
    base_sepolia_requirements(
        "auth-capture",
        "1000000",
        json!({
            "name": "USDC",
            "version": "2",
            "captureAuthorizer": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
            "captureDeadline": 1767229200,
            "refundDeadline": 1769817600,
            "feeRecipient": "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
            "minFeeBps": 50,
            "maxFeeBps": 100,
            "receiverAuthorizer": "0x976EA74026E726554dB657fA54763abd0C3a0aa9",
            "paymentFlow": "escrow",
            "captureMode": "sync",
            "operatorType": "delegated"
        }),
    )
}

fn exact_requirements() -> Value {
    base_sepolia_requirements("exact", "10000", json!({ "name": "USDC", "version": "2" }))
}

fn auth_capture_payload() -> Value {
    json!({
        "authorization": {
            "from": PAYER,
            "to": "0x8612dfdc421f80336cd14E8EF9cb1E765dB5ab88",
            "value": "1000000",
            "validAfter": "0",
            "validBefore": "1767225660",
            "nonce": "0xf65689def5e917f6331d7ce4231ac6d773bdecfee6380a2ac0bddaec554becd7"
        },
        "signature": SIGNATURE,
        "salt": "0x116479eec3404721e351a553e6903d4a9951249e01a49900fc17cf2a664a2850",
        "saltNonce": "0x4242424242424242424242424242424242424242424242424242424242424242"
    })
}

/// An `exact` payload from [`PAYER`] paying `value` to `to`.
fn exact_payload(to: &str, value: &str) -> Value {
    json!({
        "authorization": {
            "from": PAYER, "to": to, "value": value,
            "validAfter": "0", "validBefore": "1767225660",
            "nonce": "0x0707070707070707070707070707070707070707070707070707070707070707"
        },
        "signature": SIGNATURE
    })
}

fn payment_required() -> Value {
    json!({
        "x402Version": 2,
        "error": "PAYMENT-SIGNATURE header is required",
        "resource": { "url": "https://api.example.com/premium", "description": "Premium data", "mimeType": "application/json" },
        "accepts": [auth_capture_requirements(), exact_requirements()],
        "extensions": { "payment-identifier": extensions::advertise_payment_identifier(true) }
    })
}

fn payment_payload() -> Value {
    json!({
        "x402Version": 2,
        "resource": { "url": "https://api.example.com/premium" },
        "accepted": auth_capture_requirements(),
        "payload": auth_capture_payload(),
        "extensions": { "payment-identifier": { "info": { "required": true, "id": "pay_7d5d747be160e280504c099d984bcfe0" } } }
    })
}

fn b64(value: &Value) -> String {
    STANDARD.encode(serde_json::to_vec(value).expect("json"))
}

/// Sets `value[path…] = new` (path of object keys / array indices).
fn with(mut value: Value, path: &[&str], new: Value) -> Value {
    let mut cursor = &mut value;
    for key in &path[..path.len() - 1] {
        cursor = match key.parse::<usize>() {
            Ok(i) => &mut cursor[i],
            Err(_) => &mut cursor[*key],
        };
    }
    let last = path[path.len() - 1];
    match cursor {
        Value::Object(map) => {
            if new.is_null() {
                map.remove(last);
            } else {
                map.insert(last.to_owned(), new);
            }
        }
        Value::Array(items) => items[last.parse::<usize>().expect("index")] = new,
        _ => panic!("cannot set {last}"),
    }
    value
}

fn decode_payload(value: &Value) -> Result<PaymentPayload, DecodeError> {
    codec::decode_payment_signature(b64(value))
}

// ---------------------------------------------------------------- round trips

#[test]
fn v2_payment_required_round_trip() {
    let original = payment_required();
    let decoded = codec::decode_payment_required(b64(&original)).expect("decode");
    assert_eq!(decoded.accepts.len(), 2);
    let extra = decoded.accepts[0]
        .auth_capture_extra()
        .expect("typed extra");
    assert_eq!(extra.flow(), PaymentFlow::Escrow);
    assert!(extra.is_salt_bound());
    assert_eq!(extra.other.get("operatorType"), Some(&json!("delegated")));
    assert!(matches!(decoded.accepts[1].extra, Some(Extra::Exact(_))));
    assert_eq!(decoded.payment_identifier().map(|i| i.required), Some(true));
    // Faithful: the re-encoded JSON is the original value (absent options stay absent).
    let header = codec::encode_payment_required(&decoded).expect("encode");
    let reencoded: Value =
        serde_json::from_slice(&STANDARD.decode(&header).expect("b64")).expect("json");
    assert_eq!(reencoded, original);
    assert_eq!(
        codec::decode_payment_required(&header).expect("decode again"),
        decoded
    );
}

#[test]
fn v2_payment_payload_round_trip() {
    let original = payment_payload();
    let decoded = decode_payload(&original).expect("decode");
    assert!(matches!(decoded.payload, SchemePayload::AuthCapture(_)));
    assert_eq!(
        decoded.payment_id().as_deref(),
        Some("pay_7d5d747be160e280504c099d984bcfe0")
    );
    let header = codec::encode_payment_signature(&decoded).expect("encode");
    let reencoded: Value =
        serde_json::from_slice(&STANDARD.decode(&header).expect("b64")).expect("json");
    assert_eq!(reencoded, original);
    // Unpadded base64 is accepted too.
    let unpadded = STANDARD_NO_PAD.encode(serde_json::to_vec(&original).expect("json"));
    assert_eq!(
        codec::decode_payment_signature(unpadded).expect("unpadded"),
        decoded
    );
    // serde's Deserialize goes through the same strict decoder.
    let via_serde: PaymentPayload = serde_json::from_value(original).expect("serde");
    assert_eq!(via_serde, decoded);
}

#[test]
fn lifecycle_and_exact_payloads_round_trip() {
    let info = json!({
        "operator": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
        "payer": PAYER,
        "receiver": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        "token": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
        "maxAmount": "1000000",
        "preApprovalExpiry": 1767225660u64,
        "authorizationExpiry": 1767229200u64,
        "refundExpiry": 1769817600u64,
        "minFeeBps": 50,
        "maxFeeBps": 100,
        "feeReceiver": "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
        "salt": "0x116479eec3404721e351a553e6903d4a9951249e01a49900fc17cf2a664a2850"
    });
    let capture = json!({
        "x402Version": 2,
        "accepted": auth_capture_requirements(),
        "payload": {
            "type": "capture",
            "paymentInfo": info,
            "saltNonce": "0x4242424242424242424242424242424242424242424242424242424242424242",
            "amount": "750000",
            "feeBps": 50,
            "feeReceiver": "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
        }
    });
    let decoded = decode_payload(&capture).expect("capture");
    let lifecycle = decoded.payload.as_lifecycle().expect("lifecycle");
    assert_eq!(lifecycle.operation, LifecycleOperation::Capture);
    assert_eq!(lifecycle.settle.amount, Some(Amount::from(750_000u64)));
    assert_eq!(serde_json::to_value(&decoded).expect("json"), capture);

    let void = with(
        capture.clone(),
        &["payload"],
        json!({ "type": "void", "paymentInfo": info }),
    );
    assert_eq!(
        decode_payload(&void)
            .expect("void")
            .payload
            .as_lifecycle()
            .map(|l| l.operation),
        Some(LifecycleOperation::Void)
    );
    let refund_without_amount = with(void.clone(), &["payload", "type"], json!("refund"));
    assert_eq!(
        decode_payload(&refund_without_amount),
        Err(DecodeError::MissingField {
            field: "payload.amount".into()
        })
    );
    let bad_type = with(void, &["payload", "type"], json!("reclaim"));
    assert!(
        matches!(decode_payload(&bad_type), Err(DecodeError::InvalidValue { field, .. }) if field == "payload.type")
    );

    let exact = json!({
        "x402Version": 2,
        "accepted": exact_requirements(),
        "payload": exact_payload("0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "10000")
    });
    let decoded = decode_payload(&exact).expect("exact");
    assert!(decoded.payload.as_exact().is_some());
    assert_eq!(serde_json::to_value(&decoded).expect("json"), exact);
}

#[test]
fn settle_responses_round_trip_both_versions() {
    let tx = B256::repeat_byte(0xab);
    let payer = address!("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
    for response in [
        SettleResponse::success(
            tx,
            Network::BASE_SEPOLIA,
            payer,
            Some(Amount::from(1_000_000u64)),
        ),
        SettleResponse::failure("invalid_payload", "bad", Network::BASE_SEPOLIA, None),
        SettleResponse::pending(tx, Network::BASE_SEPOLIA, payer),
    ] {
        let header = codec::encode_payment_response(&response).expect("encode");
        assert_eq!(
            codec::decode_payment_response(&header).expect("decode"),
            response
        );
        let v1 = codec::encode_x_payment_response(&response).expect("encode v1");
        let v1_json: Value =
            serde_json::from_slice(&STANDARD.decode(&v1).expect("b64")).expect("json");
        assert_eq!(v1_json["network"], "base-sepolia");
        let back = codec::decode_x_payment_response(&v1).expect("decode v1");
        assert_eq!(
            (back.success, back.transaction, back.network),
            (response.success, response.transaction, response.network)
        );
    }
    let failure =
        serde_json::to_value(SettleResponse::failure("x", "y", Network::BASE, None)).expect("json");
    assert_eq!(failure["transaction"], "");
    let pending = SettleResponse::pending(tx, Network::BASE, payer);
    assert!(pending.is_pending() && !pending.success);
    assert_eq!(
        serde_json::to_value(&pending).expect("json")["errorReason"],
        "settlement_pending"
    );
    // A success without a transaction, or a pending without its hash, is inconsistent.
    let bad = json!({ "success": true, "transaction": "", "network": "eip155:8453" });
    assert!(
        matches!(codec::decode_payment_response(b64(&bad)), Err(DecodeError::Inconsistent { field, .. }) if field == "transaction")
    );
    let bad = json!({ "success": false, "errorReason": "settlement_pending", "transaction": "", "network": "eip155:8453" });
    assert!(matches!(
        codec::decode_payment_response(b64(&bad)),
        Err(DecodeError::Inconsistent { .. })
    ));
}

#[test]
fn v1_round_trips() {
    let body = json!({
        "x402Version": 1,
        "error": "X-PAYMENT header is required",
        "accepts": [{
            "scheme": "exact",
            "network": "base-sepolia",
            "maxAmountRequired": "1000",
            "resource": "http://localhost:3001/protected-route",
            "description": "Access to premium content",
            "mimeType": "application/json",
            "outputSchema": { "input": { "type": "http", "method": "GET" } },
            "payTo": "0xfa3F54AE9C4287CA09a486dfaFaCe7d1d4095d93",
            "maxTimeoutSeconds": 300,
            "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
            "extra": { "name": "USDC", "version": "2" }
        }]
    });
    let text = serde_json::to_vec(&body).expect("json");
    let decoded = codec::decode_payment_required_v1_body(&text).expect("v1 body");
    assert_eq!(decoded.accepts[0].network, Network::BASE_SEPOLIA);
    assert_eq!(serde_json::to_value(&decoded).expect("json"), body);
    let (v2, resource) = decoded.accepts[0].to_v2();
    assert_eq!(v2.amount, Amount::from(1000u64));
    assert_eq!(resource.url, "http://localhost:3001/protected-route");
    assert_eq!(
        PaymentRequirementsV1::from_v2(&v2, &resource).network,
        Network::BASE_SEPOLIA
    );
    assert!(matches!(
        codec::decode_402(None, &text),
        Ok(AnyPaymentRequired::V1(_))
    ));

    let x_payment = json!({
        "x402Version": 1,
        "scheme": "exact",
        "network": "base-sepolia",
        "payload": exact_payload("0xfa3F54AE9C4287CA09a486dfaFaCe7d1d4095d93", "1000")
    });
    let payment = codec::decode_x_payment(b64(&x_payment)).expect("X-PAYMENT");
    assert_eq!(serde_json::to_value(&payment).expect("json"), x_payment);
    let header = codec::encode_x_payment(&payment).expect("encode");
    assert_eq!(codec::decode_x_payment(&header).expect("again"), payment);
    let v2_payment = payment.clone().into_v2(&decoded.accepts[0]).expect("lift");
    assert_eq!(v2_payment.accepted, v2);
    let mismatched = PaymentPayloadV1 {
        network: Network::BASE,
        ..payment
    };
    assert!(mismatched.into_v2(&decoded.accepts[0]).is_err());

    // The facilitator body, v1 and v2, dispatched on x402Version.
    let v1_request = json!({ "x402Version": 1, "paymentPayload": x_payment, "paymentRequirements": body["accepts"][0] });
    let request: FacilitatorRequest = serde_json::from_value(v1_request).expect("v1 request");
    assert_eq!(request.version(), 1);
    assert_eq!(request.into_v2().expect("lift").payment_requirements, v2);
    let v2_request = json!({ "x402Version": 2, "paymentPayload": payment_payload(), "paymentRequirements": auth_capture_requirements() });
    let request: FacilitatorRequest = serde_json::from_value(v2_request).expect("v2 request");
    assert_eq!(request.version(), 2);
}

#[test]
fn facilitator_responses() {
    let payer = address!("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
    let valid = serde_json::to_value(VerifyResponse::valid(payer)).expect("json");
    assert_eq!(valid, json!({ "isValid": true, "payer": PAYER }));
    let invalid = VerifyResponse::invalid("invalid_auth_capture_evm_nonce_mismatch", "nonce", None);
    assert_eq!(
        serde_json::from_value::<VerifyResponse>(serde_json::to_value(&invalid).expect("json"))
            .expect("back"),
        invalid
    );
    let supported = SupportedResponse {
        kinds: vec![SupportedKind {
            x402_version: 2,
            scheme: "auth-capture".into(),
            network: "eip155:31337".into(),
            extra: None,
        }],
        extensions: vec![PAYMENT_IDENTIFIER.into()],
        signers: [("eip155:*".to_owned(), vec![payer])].into_iter().collect(),
    };
    let value = serde_json::to_value(&supported).expect("json");
    assert_eq!(value["signers"]["eip155:*"][0], PAYER);
    assert_eq!(
        serde_json::from_value::<SupportedResponse>(value).expect("back"),
        supported
    );
}

#[test]
fn foreign_accepts_are_skipped_ours_are_strict() {
    let solana = json!({
        "scheme": "exact", "network": "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp", "amount": "1000",
        "asset": "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", "payTo": "2wKupLR9q6wXYppw8Gr2NvWxKBUqm4PPJKkQfoxHDBg4",
        "maxTimeoutSeconds": 60
    });
    let fiat = json!({ "scheme": "card", "network": "eip155:8453", "amount": "100", "asset": "USD", "payTo": "merchant", "maxTimeoutSeconds": 60 });
    let mixed = with(
        payment_required(),
        &["accepts"],
        json!([solana, auth_capture_requirements(), fiat]),
    );
    let decoded = codec::decode_payment_required(b64(&mixed)).expect("mixed");
    assert_eq!(decoded.accepts.len(), 1);
    let only_foreign = with(payment_required(), &["accepts"], json!([solana]));
    assert_eq!(
        codec::decode_payment_required(b64(&only_foreign)),
        Err(DecodeError::NoSupportedAccepts {
            field: "accepts".into()
        })
    );
    let broken_ours = with(
        payment_required(),
        &["accepts"],
        json!([
            solana,
            with(auth_capture_requirements(), &["amount"], json!("-5"))
        ]),
    );
    assert_eq!(
        codec::decode_payment_required(b64(&broken_ours)),
        Err(DecodeError::InvalidAmount {
            field: "accepts[1].amount".into(),
            reason: AmountError::Sign
        })
    );
}

// ---------------------------------------------------------------- hostile headers

#[test]
fn transport_level_garbage() {
    let what = "PAYMENT-SIGNATURE header";
    assert_eq!(
        codec::decode_payment_signature(""),
        Err(DecodeError::Empty { what })
    );
    assert_eq!(
        codec::decode_payment_signature("   "),
        Err(DecodeError::Empty { what })
    );
    let huge = "A".repeat(MAX_HEADER_LEN + 1);
    assert_eq!(
        codec::decode_payment_signature(&huge),
        Err(DecodeError::TooLarge {
            what,
            len: MAX_HEADER_LEN + 1,
            max: MAX_HEADER_LEN
        })
    );
    assert!(matches!(
        codec::decode_payment_signature("not base64!"),
        Err(DecodeError::Base64 { .. })
    ));
    assert!(matches!(
        codec::decode_payment_signature("eyJ4Ijo\u{e9}"),
        Err(DecodeError::Base64 { .. })
    ));
    // URL-safe alphabet ('-', '_') is not the standard alphabet.
    let urlsafe = URL_SAFE_NO_PAD.encode([0xfb, 0xff, 0xfe]);
    assert!(matches!(
        codec::decode_payment_signature(urlsafe),
        Err(DecodeError::Base64 { .. })
    ));
    // Non-UTF-8 bytes inside valid base64.
    let latin1 = STANDARD.encode(b"{\"x402Version\":2,\"e\":\"\xe9\"}");
    assert_eq!(
        codec::decode_payment_signature(latin1),
        Err(DecodeError::Utf8 { what, offset: 22 })
    );
    // Raw non-UTF-8 header bytes are just invalid base64.
    assert!(matches!(
        codec::decode_payment_signature([0xffu8, 0xfe, 0x41]),
        Err(DecodeError::Base64 { .. })
    ));
    assert!(matches!(
        codec::decode_payment_signature(STANDARD.encode("{not json")),
        Err(DecodeError::Json { .. })
    ));
    assert!(matches!(
        codec::decode_payment_signature(STANDARD.encode("{} trailing")),
        Err(DecodeError::Json { .. })
    ));
    let dup = STANDARD.encode(r#"{"x402Version":2,"x402Version":1}"#);
    assert!(
        matches!(codec::decode_payment_signature(dup), Err(DecodeError::Json { reason, .. }) if reason.contains("duplicate key"))
    );
    assert_eq!(
        codec::decode_payment_signature(STANDARD.encode("[1,2]")),
        Err(DecodeError::WrongType {
            field: String::new(),
            expected: "an object",
            found: "array"
        })
    );
    // The v1 body limit applies to bodies.
    let big_body = vec![b' '; codec::MAX_BODY_LEN + 1];
    assert!(matches!(
        codec::decode_payment_required_v1_body(&big_body),
        Err(DecodeError::TooLarge { .. })
    ));
}

#[test]
fn version_mismatches() {
    let v1_in_v2 = with(payment_payload(), &["x402Version"], json!(1));
    assert_eq!(
        decode_payload(&v1_in_v2),
        Err(DecodeError::VersionMismatch {
            field: "x402Version".into(),
            expected: 2,
            found: "1".into()
        })
    );
    assert!(matches!(
        decode_payload(&with(payment_payload(), &["x402Version"], json!(3))),
        Err(DecodeError::VersionMismatch { .. })
    ));
    assert!(matches!(
        decode_payload(&with(payment_payload(), &["x402Version"], json!(2.5))),
        Err(DecodeError::VersionMismatch { .. })
    ));
    assert_eq!(
        decode_payload(&with(payment_payload(), &["x402Version"], json!("2"))),
        Err(DecodeError::WrongType {
            field: "x402Version".into(),
            expected: "an integer",
            found: "string"
        })
    );
    assert_eq!(
        decode_payload(&with(payment_payload(), &["x402Version"], Value::Null)),
        Err(DecodeError::MissingField {
            field: "x402Version".into()
        })
    );
    let v2_in_v1 = codec::decode_x_payment(b64(&payment_payload()));
    assert!(matches!(
        v2_in_v1,
        Err(DecodeError::VersionMismatch { expected: 1, .. })
    ));
    assert!(matches!(
        codec::decode_payment_required(b64(&json!({"x402Version": 1, "accepts": []}))),
        Err(DecodeError::VersionMismatch { .. })
    ));
}

#[test]
fn amount_attacks() {
    let cases: [(Value, AmountError); 8] = [
        (json!("-1"), AmountError::Sign),
        (json!("+1"), AmountError::Sign),
        (json!("1.5"), AmountError::Fraction),
        (json!("1e6"), AmountError::Fraction),
        (json!("0x10"), AmountError::NotDecimal),
        (json!("007"), AmountError::LeadingZero),
        (json!("9".repeat(79)), AmountError::TooManyDigits(79)),
        (
            json!("1329227995784915872903807060280344576"),
            AmountError::Overflow { bits: 120 },
        ),
    ];
    for (bad, reason) in cases {
        let payment = with(payment_payload(), &["accepted", "amount"], bad.clone());
        let expected = DecodeError::InvalidAmount {
            field: "accepted.amount".into(),
            reason,
        };
        assert_eq!(decode_payload(&payment), Err(expected.clone()), "{bad}");
        assert!(expected.to_string().contains("accepted.amount"));
    }
    // 2^256 is refused for exact too; 2^120 is fine for exact.
    let two_256 = "115792089237316195423570985008687907853269984665640564039457584007913129639936";
    let exact = with(exact_requirements(), &["amount"], json!(two_256));
    assert_eq!(
        serde_json::from_value::<PaymentRequirements>(exact).map_err(|e| e.to_string()),
        Err("`amount`: amount exceeds the maximum of a uint256".to_owned())
    );
    let exact_big = with(
        exact_requirements(),
        &["amount"],
        json!("1329227995784915872903807060280344576"),
    );
    assert!(serde_json::from_value::<PaymentRequirements>(exact_big).is_ok());
    // A number where a decimal string is required.
    assert_eq!(
        decode_payload(&with(
            payment_payload(),
            &["payload", "authorization", "value"],
            json!(1000000)
        )),
        Err(DecodeError::WrongType {
            field: "payload.authorization.value".into(),
            expected: "a decimal string",
            found: "number"
        })
    );
}

#[test]
fn address_and_hex_attacks() {
    let cases: [(&[&str], Value, DecodeError); 6] = [
        (
            &["accepted", "payTo"],
            json!("0x70997970c51812dc3A010C7d01b50e0d17dc79C8"),
            DecodeError::InvalidAddress {
                field: "accepted.payTo".into(),
                reason: AddressError::Checksum,
            },
        ),
        (
            &["accepted", "asset"],
            json!("036CbD53842c5426634e7929541eC2318f3dCF7e"),
            DecodeError::InvalidAddress {
                field: "accepted.asset".into(),
                reason: AddressError::MissingPrefix,
            },
        ),
        (
            &["payload", "authorization", "from"],
            json!("0x1234"),
            DecodeError::InvalidAddress {
                field: "payload.authorization.from".into(),
                reason: AddressError::Length(4),
            },
        ),
        (
            &["accepted", "extra", "captureAuthorizer"],
            json!("0xZZ44CdDdB6a900fa2b585dd299e03d12FA4293BC"),
            DecodeError::InvalidAddress {
                field: "accepted.extra.captureAuthorizer".into(),
                reason: AddressError::NotHex,
            },
        ),
        (
            &["payload", "authorization", "nonce"],
            json!("0x1234"),
            DecodeError::InvalidHex {
                field: "payload.authorization.nonce".into(),
                reason: HexError::Length {
                    expected: 64,
                    found: 4,
                },
            },
        ),
        (
            &["payload", "signature"],
            json!("0x123"),
            DecodeError::InvalidHex {
                field: "payload.signature".into(),
                reason: HexError::OddLength,
            },
        ),
    ];
    for (path, bad, expected) in cases {
        assert_eq!(
            decode_payload(&with(payment_payload(), path, bad)),
            Err(expected)
        );
    }
    // Lowercase addresses are accepted (no checksum to verify) and written back checksummed.
    let lower = with(
        payment_payload(),
        &["accepted", "payTo"],
        json!("0x70997970c51812dc3a010c7d01b50e0d17dc79c8"),
    );
    let decoded = decode_payload(&lower).expect("lowercase");
    assert_eq!(
        serde_json::to_value(&decoded).expect("json")["accepted"]["payTo"],
        "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    );
}

#[test]
fn missing_fields_are_named() {
    for (path, field) in [
        (&["accepted", "payTo"][..], "accepted.payTo"),
        (&["accepted", "extra"][..], "accepted.extra"),
        (
            &["accepted", "extra", "captureAuthorizer"][..],
            "accepted.extra.captureAuthorizer",
        ),
        (
            &["accepted", "extra", "refundDeadline"][..],
            "accepted.extra.refundDeadline",
        ),
        (&["payload", "signature"][..], "payload.signature"),
        (&["payload", "salt"][..], "payload.salt"),
        (
            &["payload", "authorization", "validBefore"][..],
            "payload.authorization.validBefore",
        ),
        (&["accepted"][..], "accepted"),
        (&["payload"][..], "payload"),
    ] {
        let payment = with(payment_payload(), path, Value::Null);
        let error = decode_payload(&payment).expect_err(field);
        assert_eq!(
            error,
            DecodeError::MissingField {
                field: field.into()
            }
        );
        assert_eq!(error.to_string(), format!("`{field}` is missing"));
        assert_eq!(error.field(), Some(field));
        assert_eq!(error.code(), "missing_field");
    }
    let required = with(payment_required(), &["resource"], Value::Null);
    assert_eq!(
        codec::decode_payment_required(b64(&required)),
        Err(DecodeError::MissingField {
            field: "resource".into()
        })
    );
}

/// Decodes the payment payload with the field at `path` set to `bad`: it must fail with the
/// error `code` and, when given, name `field`. Returns the error.
fn assert_rejected(path: &[&str], bad: Value, code: &str, field: Option<&str>) -> DecodeError {
    let case = format!("{path:?} = {bad}");
    let error = decode_payload(&with(payment_payload(), path, bad)).expect_err(&case);
    assert_eq!(error.code(), code, "{case}");
    if let Some(field) = field {
        assert_eq!(error.field(), Some(field), "{case}");
    }
    error
}

#[test]
fn networks_and_ranges() {
    const NETWORK: &[&str] = &["accepted", "network"];
    assert_rejected(
        NETWORK,
        json!("base-sepolia"),
        "invalid_network",
        Some("accepted.network"),
    );
    assert_rejected(NETWORK, json!("eip155:084532"), "invalid_network", None);
    let solana = json!("solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp");
    assert!(matches!(
        assert_rejected(NETWORK, solana, "invalid_network", None),
        DecodeError::InvalidNetwork {
            reason: "only eip155 networks are supported",
            ..
        }
    ));

    assert_eq!(
        assert_rejected(
            &["accepted", "extra", "minFeeBps"],
            json!(10_001),
            "out_of_range",
            None
        ),
        DecodeError::OutOfRange {
            field: "accepted.extra.minFeeBps".into(),
            value: "10001".into(),
            min: 0,
            max: 10_000
        }
    );
    let extra = |key| ["accepted", "extra", key];
    let timeout = ["accepted", "maxTimeoutSeconds"];
    for (path, bad, code, field) in [
        (extra("maxFeeBps"), json!(-1), "out_of_range", None),
        (
            extra("captureDeadline"),
            json!(1u64 << 48),
            "out_of_range",
            None,
        ),
        (
            extra("minFeeBps"),
            json!(101),
            "inconsistent",
            Some("accepted.extra.minFeeBps"),
        ),
        (
            extra("refundDeadline"),
            json!(1767229199),
            "inconsistent",
            Some("accepted.extra.captureDeadline"),
        ),
        (
            extra("paymentFlow"),
            json!("autoCapture"),
            "invalid_value",
            Some("accepted.extra.paymentFlow"),
        ),
        (
            extra("assetTransferMethod"),
            json!("permit3"),
            "invalid_value",
            None,
        ),
    ] {
        assert_rejected(&path, bad, code, field);
    }
    for (bad, code) in [
        (json!(0), "out_of_range"),
        (json!(1.5), "wrong_type"),
        (json!("60"), "wrong_type"),
    ] {
        assert_rejected(&timeout, bad, code, None);
    }
    assert_rejected(&["accepted", "scheme"], json!(""), "invalid_value", None);
}

#[test]
fn payment_identifier_is_validated() {
    const ID: &[&str] = &["extensions", "payment-identifier", "info", "id"];
    for (bad, code, field) in [
        (
            json!("short"),
            "invalid_value",
            Some("extensions.payment-identifier.info.id"),
        ),
        (json!("pay 7d5d747be160e280504c"), "invalid_value", None),
        (json!("a".repeat(129)), "invalid_value", None),
        (json!(1234567890123456u64), "wrong_type", None),
    ] {
        assert_rejected(ID, bad, code, field);
    }
    // Other extensions pass through untouched.
    let other = with(
        payment_payload(),
        &["extensions", "bazaar"],
        json!({ "info": [1, 2, 3] }),
    );
    let decoded = decode_payload(&other).expect("unknown extension");
    assert_eq!(
        decoded.extensions.as_ref().and_then(|e| e.get("bazaar")),
        Some(&json!({ "info": [1, 2, 3] }))
    );
}

#[test]
fn building_blocks_compose() {
    // A merchant builds a challenge in code; a buyer decodes it and echoes an id.
    let requirements: PaymentRequirements =
        serde_json::from_value(auth_capture_requirements()).expect("requirements");
    let mut challenge = PaymentRequired::new(
        ResourceInfo::new("https://api.example.com/premium"),
        vec![requirements.clone()],
    );
    let mut ext = serde_json::Map::new();
    ext.insert(
        PAYMENT_IDENTIFIER.into(),
        extensions::advertise_payment_identifier(false),
    );
    challenge.extensions = Some(ext);
    let header = codec::encode_payment_required(&challenge).expect("encode");
    let seen = codec::decode_payment_required(&header).expect("decode");
    assert_eq!(seen, challenge);
    let extra: &AuthCaptureExtra = seen.accepts[0].auth_capture_extra().expect("extra");
    assert_eq!(
        extra.receiver_authorizer_or_zero(),
        address!("0x976EA74026E726554dB657fA54763abd0C3a0aa9")
    );
    assert_eq!(extra.policy_or_zero(), Address::ZERO);
    let v1 = PaymentRequiredV1::new(vec![PaymentRequirementsV1::from_v2(
        &requirements,
        &challenge.resource,
    )]);
    let v1_json = serde_json::to_value(&v1).expect("json");
    assert_eq!(v1_json["accepts"][0]["network"], "base-sepolia");
    assert_eq!(v1_json["accepts"][0]["maxAmountRequired"], "1000000");
    assert!(requirements.check_matches(&seen.accepts[0]).is_ok());
    let mut other = requirements.clone();
    other.amount = Amount::from(1u64);
    assert_eq!(
        requirements.check_matches(&other).map_err(|e| e.0),
        Err("amount")
    );
}

#[test]
fn a_client_answer_echoes_the_challenge() {
    let challenge = codec::decode_payment_required(b64(&payment_required())).expect("challenge");
    let payload: x402_escrow_sdk::schemes::auth_capture::AuthCapturePayload =
        serde_json::from_value(auth_capture_payload()).expect("payload");
    let answer = PaymentPayload::answering(
        &challenge,
        challenge.accepts[0].clone(),
        payload,
        Some("pay_0123456789abcdef01"),
    );
    assert_eq!(answer.resource.as_ref(), Some(&challenge.resource));
    assert_eq!(
        answer.payment_id().as_deref(),
        Some("pay_0123456789abcdef01")
    );
    let ext = answer.extensions.as_ref().expect("extensions");
    assert_eq!(ext[PAYMENT_IDENTIFIER]["info"]["required"], true);
    assert!(ext[PAYMENT_IDENTIFIER].get("schema").is_some());
    let header = codec::encode_payment_signature(&answer).expect("encode");
    assert_eq!(
        codec::decode_payment_signature(&header).expect("decode"),
        answer
    );
}
