//! What one fuzz input does to the SDK, shared by the cargo-fuzz targets `header_decode` and
//! `payload_verify` (`fuzz/fuzz_targets/`) and by the stable replay test
//! `sdk/tests/fuzz_corpus.rs`, which runs every committed corpus and regression file through
//! exactly these functions. Besides "never panics", each function asserts properties that must
//! hold for every input (see the docs of each).
//!
//! Depends only on `x402-escrow-sdk`, `alloy`, `base64` and `serde_json`, so both the fuzz crate
//! and the SDK's integration tests can include it with `#[path]`.
#![allow(dead_code)]

use alloy::primitives::{Address, B256, address, b256};
use alloy::signers::local::PrivateKeySigner;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use x402_escrow_sdk::facilitator::{FacilitatorRequest, VerifyRequest};
use x402_escrow_sdk::schemes::auth_capture::{
    self, SignatureCheck, payment_info_from_json, payment_info_to_json,
};
use x402_escrow_sdk::wire::codec;
use x402_escrow_sdk::wire::{PaymentPayload, PaymentRequirements, SchemePayload};
use x402_escrow_sdk::{EscrowRegistry, payer_agnostic_hash, payment_info_hash};

/// The verification time of every fuzz input (2026-01-01T00:00:00Z).
pub const NOW: u64 = 1_767_225_600;
/// The network of the fixture payments (Base Sepolia).
pub const CHAIN_ID: u64 = 84_532;
/// The fixture token (USDC on Base Sepolia).
pub const TOKEN: Address = address!("0x036CbD53842c5426634e7929541eC2318f3dCF7e");
/// The fixture merchant receiver.
pub const PAY_TO: Address = address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
/// The fixture operator (`captureAuthorizer`).
pub const OPERATOR: Address = address!("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC");
/// The fixture fee receiver.
pub const FEE_RECEIVER: Address = address!("0x90F79bf6EB2c4f870365E785982E1f101E93b906");
/// The fixture payer's key (anvil key 0: public test key, never a real one).
pub const PAYER_KEY: B256 =
    b256!("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80");

/// The escrows every fuzz input is verified against: the canonical deployments.
pub fn registry() -> EscrowRegistry {
    EscrowRegistry::canonical()
}

// ---- header_decode --------------------------------------------------------------------------

/// `header_decode`: the first byte selects how the rest is presented (even: as header bytes;
/// odd: base64-encoded first, so the fuzzer mutates the JSON inside a well-formed header). Every
/// codec entry point runs on it; whatever decodes must survive encode → decode unchanged, and
/// every error must render.
pub fn header_decode(data: &[u8]) {
    let (mode, rest) = data.split_first().map_or((0, data), |(m, r)| (*m, r));
    let encoded;
    let header: &[u8] = if mode & 1 == 1 {
        encoded = STANDARD.encode(rest);
        encoded.as_bytes()
    } else {
        rest
    };

    if let Some(v) = round_trip(
        "PAYMENT-REQUIRED",
        header,
        |h| codec::decode_payment_required(h),
        codec::encode_payment_required,
    ) {
        let _ = v.payment_identifier();
    }
    if let Some(v) = round_trip(
        "PAYMENT-SIGNATURE",
        header,
        |h| codec::decode_payment_signature(h),
        codec::encode_payment_signature,
    ) {
        let _ = v.payment_id();
    }
    round_trip(
        "PAYMENT-RESPONSE",
        header,
        |h| codec::decode_payment_response(h),
        codec::encode_payment_response,
    );
    round_trip(
        "X-PAYMENT",
        header,
        |h| codec::decode_x_payment(h),
        codec::encode_x_payment,
    );
    match codec::decode_x_payment_response(header) {
        Ok(v) => {
            let again = codec::encode_x_payment_response(&v).expect("encode X-PAYMENT-RESPONSE");
            // The v1 form has no v2-only fields (errorMessage, amount, extensions): the round
            // trip keeps everything else.
            let v1_only = x402_escrow_sdk::facilitator::SettleResponse {
                error_message: None,
                amount: None,
                extensions: None,
                ..v.clone()
            };
            assert_eq!(
                codec::decode_x_payment_response(&again).as_ref(),
                Ok(&v1_only),
                "X-PAYMENT-RESPONSE round trip"
            );
        }
        Err(e) => drop(e.to_string()),
    }

    // Bodies (no base64): the v1 402 body and the facilitator request, on the raw bytes.
    round_trip(
        "v1 402 body",
        rest,
        codec::decode_payment_required_v1_body,
        serde_json::to_vec,
    );
    let _ = codec::decode_402(Some(header), rest);
    let _ = codec::decode_402(None, rest);
    match codec::decode_body::<FacilitatorRequest>(rest, "facilitator request") {
        Ok(v) => {
            let again = serde_json::to_vec(&v).expect("encode facilitator request");
            assert_eq!(
                codec::decode_body::<FacilitatorRequest>(&again, "facilitator request").as_ref(),
                Ok(&v),
                "facilitator request round trip"
            );
            if let Ok(v2) = v.into_v2() {
                let again = serde_json::to_vec(&v2).expect("encode v2 request");
                assert_eq!(
                    codec::decode_body::<VerifyRequest>(&again, "facilitator request").as_ref(),
                    Ok(&v2),
                    "v1 → v2 request re-decodes"
                );
            }
        }
        Err(e) => drop(e.to_string()),
    }
}

/// Runs `decode` on `input`: an error must render, and a decoded value must come back unchanged
/// through `encode` → `decode` (`what` names the form in messages). Returns the decoded value.
fn round_trip<T, B, E>(
    what: &str,
    input: &[u8],
    decode: impl Fn(&[u8]) -> Result<T, x402_escrow_sdk::DecodeError>,
    encode: impl Fn(&T) -> Result<B, E>,
) -> Option<T>
where
    T: PartialEq + std::fmt::Debug,
    B: AsRef<[u8]>,
    E: std::fmt::Debug,
{
    match decode(input) {
        Ok(v) => {
            let again = encode(&v).unwrap_or_else(|e| panic!("encode {what}: {e:?}"));
            assert_eq!(decode(again.as_ref()).as_ref(), Ok(&v), "{what} round trip");
            Some(v)
        }
        Err(e) => {
            drop(e.to_string());
            None
        }
    }
}

// ---- payload_verify -------------------------------------------------------------------------

/// `payload_verify`: the first byte selects the input form (even: a facilitator body
/// `{x402Version, paymentPayload, paymentRequirements}` of either version; odd: a v2
/// `PAYMENT-SIGNATURE` header verified against its own `accepted`). Whatever decodes goes through
/// the operator-side checks at [`NOW`] with the canonical registry. When the derivation
/// succeeds, the derived payment must be the one the payload committed to: nonce = payer-agnostic
/// hash, payer = `authorization.from`, the payment hash recomputed from the PaymentInfo, the
/// PaymentInfo's JSON form converting back to itself.
pub fn payload_verify(data: &[u8]) {
    let (mode, rest) = data.split_first().map_or((0, data), |(m, r)| (*m, r));
    let request = if mode & 1 == 0 {
        match codec::decode_body::<FacilitatorRequest>(rest, "facilitator request")
            .and_then(FacilitatorRequest::into_v2)
        {
            Ok(r) => r,
            Err(_) => return,
        }
    } else {
        match codec::decode_payment_signature(rest) {
            Ok(p) => VerifyRequest::new(p.clone(), p.accepted),
            Err(_) => return,
        }
    };
    verify_request(&request);
}

/// The SDK's operator-side checks of one request, with the properties of a successful
/// derivation. Returns whether the payment passed every offline check (derivation, time window
/// at [`NOW`], ECDSA signature).
pub fn verify_request(request: &VerifyRequest) -> bool {
    let registry = registry();
    let requirements = &request.payment_requirements;
    let payment = &request.payment_payload;
    let signature = payment
        .payload
        .as_auth_capture()
        .map(|p| auth_capture::check_signature(requirements, p));
    if let Some(Err(e)) = &signature {
        let _ = (e.to_string(), e.reason());
    }
    let derived = match auth_capture::derive_from_payment_payload(requirements, payment, &registry)
    {
        Ok(d) => d,
        Err(e) => {
            let _ = (e.to_string(), e.reason());
            return false;
        }
    };
    let SchemePayload::AuthCapture(payload) = &payment.payload else {
        panic!("derived a payment from a payload that is not an auth-capture client payload");
    };
    let auth = &payload.authorization;
    assert_eq!(derived.payer, auth.from, "payer is authorization.from");
    assert_eq!(derived.payment_info.payer, auth.from);
    assert_eq!(
        derived.payer_agnostic_hash, auth.nonce,
        "nonce commits to the PaymentInfo"
    );
    assert_eq!(
        derived.payer_agnostic_hash,
        payer_agnostic_hash(
            &derived.payment_info,
            derived.chain_id,
            derived.deployment.escrow
        )
    );
    assert_eq!(
        derived.payment_info_hash,
        payment_info_hash(
            &derived.payment_info,
            derived.chain_id,
            derived.deployment.escrow
        )
    );
    assert_eq!(derived.chain_id, requirements.network.chain_id());
    assert_eq!(
        derived
            .payment_info
            .maxAmount
            .to::<alloy::primitives::U256>(),
        requirements.amount.get(),
        "maxAmount is the required amount"
    );
    assert_eq!(derived.payment_info.receiver, requirements.pay_to);
    assert_eq!(derived.payment_info.token, requirements.asset);
    assert_eq!(auth.to, derived.deployment.erc3009_collector);
    let json = payment_info_to_json(&derived.payment_info);
    assert_eq!(
        payment_info_from_json(&json).as_ref(),
        Ok(&derived.payment_info),
        "PaymentInfo JSON round trip"
    );
    assert_eq!(derived.payment_info_json(), json);
    let timing = auth_capture::check_timing(requirements, &derived, NOW);
    let _ = auth_capture::check_timing(requirements, &derived, 0);
    let _ = auth_capture::check_timing(requirements, &derived, u64::MAX);
    timing.is_ok() && matches!(signature, Some(Ok(SignatureCheck::Ecdsa)))
}

// ---- seeds ----------------------------------------------------------------------------------

/// The fixture requirements (auth-capture on Base Sepolia, canonical escrow), with the salt
/// bound to a `receiverAuthorizer` when `bound`.
pub fn requirements(bound: bool) -> PaymentRequirements {
    let mut extra = json!({
        "name": "USDC",
        "version": "2",
        "captureAuthorizer": OPERATOR,
        "captureDeadline": NOW + 3600,
        "refundDeadline": NOW + 30 * 86_400,
        "feeRecipient": FEE_RECEIVER,
        "minFeeBps": 0,
        "maxFeeBps": 500
    });
    if bound {
        extra["receiverAuthorizer"] = json!("0x976EA74026E726554dB657fA54763abd0C3a0aa9");
    }
    serde_json::from_value(json!({
        "scheme": "auth-capture",
        "network": format!("eip155:{CHAIN_ID}"),
        "amount": "1000000",
        "asset": TOKEN,
        "payTo": PAY_TO,
        "maxTimeoutSeconds": 900,
        "extra": extra
    }))
    .expect("fixture requirements")
}

/// A valid, signed payment for [`requirements`] (deterministic: fixed key, time and salt).
pub fn valid_payment(bound: bool) -> PaymentPayload {
    let signer = PrivateKeySigner::from_bytes(&PAYER_KEY).expect("fixture key");
    let req = requirements(bound);
    let payload = auth_capture::build_payload(
        &req,
        &signer,
        NOW,
        B256::repeat_byte(if bound { 0x22 } else { 0x11 }),
        &registry(),
    )
    .expect("fixture payload");
    let mut payment = PaymentPayload::new(req, payload);
    payment.resource = Some(x402_escrow_sdk::wire::ResourceInfo::new(
        "https://api.example.com/premium",
    ));
    payment
}

/// Seed inputs per target: `(target, file name, bytes)`. Valid inputs of every shape the
/// targets read, so the fuzzer starts from the accepting paths. The replay test checks that the
/// valid ones still pass.
pub fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();
    for bound in [false, true] {
        let payment = valid_payment(bound);
        let body = serde_json::to_vec(&VerifyRequest::new(
            payment.clone(),
            payment.accepted.clone(),
        ))
        .expect("body");
        let header = codec::encode_payment_signature(&payment).expect("header");
        let tag = if bound { "bound" } else { "unbound" };
        out.push((
            "payload_verify",
            format!("seed-body-{tag}"),
            [&[0u8][..], &body].concat(),
        ));
        out.push((
            "payload_verify",
            format!("seed-header-{tag}"),
            [&[1u8][..], header.as_bytes()].concat(),
        ));
        let json_text = serde_json::to_vec(&payment).expect("payment json");
        out.push((
            "header_decode",
            format!("seed-payment-{tag}"),
            [&[1u8][..], &json_text].concat(),
        ));
        out.push((
            "header_decode",
            format!("seed-body-{tag}"),
            [&[0u8][..], &body].concat(),
        ));
        // v1: the same payment as an X-PAYMENT, and a v1 facilitator body.
        let v1_req = x402_escrow_sdk::wire::PaymentRequirementsV1::from_v2(
            &payment.accepted,
            payment.resource.as_ref().expect("resource"),
        );
        let v1 = x402_escrow_sdk::wire::PaymentPayloadV1::new(&v1_req, payment.payload.clone());
        out.push((
            "header_decode",
            format!("seed-x-payment-{tag}"),
            [&[1u8][..], &serde_json::to_vec(&v1).expect("v1")].concat(),
        ));
        let v1_body = serde_json::to_vec(&json!({
            "x402Version": 1,
            "paymentPayload": v1,
            "paymentRequirements": v1_req,
        }))
        .expect("v1 body");
        out.push((
            "payload_verify",
            format!("seed-v1-body-{tag}"),
            [&[0u8][..], &v1_body].concat(),
        ));
        out.push((
            "header_decode",
            format!("seed-v1-body-{tag}"),
            [&[0u8][..], &v1_body].concat(),
        ));
        if !bound {
            let required = x402_escrow_sdk::wire::PaymentRequired::new(
                payment.resource.clone().expect("resource"),
                vec![payment.accepted.clone()],
            );
            out.push((
                "header_decode",
                "seed-payment-required".into(),
                [
                    &[1u8][..],
                    &serde_json::to_vec(&required).expect("required"),
                ]
                .concat(),
            ));
            let v1_402 = x402_escrow_sdk::wire::PaymentRequiredV1::new(vec![v1_req.clone()]);
            out.push((
                "header_decode",
                "seed-v1-402-body".into(),
                [&[0u8][..], &serde_json::to_vec(&v1_402).expect("v1 402")].concat(),
            ));
            let receipt = json!({
                "success": true,
                "payer": payment.payload.as_auth_capture().expect("payload").authorization.from,
                "transaction": format!("0x{}", "ab".repeat(32)),
                "network": format!("eip155:{CHAIN_ID}"),
                "amount": "1000000"
            });
            out.push((
                "header_decode",
                "seed-payment-response".into(),
                [&[1u8][..], &serde_json::to_vec(&receipt).expect("receipt")].concat(),
            ));
        }
    }
    out
}

/// Whether `value` (a decoded JSON document) looks like one of the valid seeds: used by the
/// replay test to tell seeds that must pass from mutated corpus entries that may not.
pub fn is_seed_name(name: &str) -> bool {
    name.starts_with("seed-")
}

/// `value` as pretty JSON, for failure messages.
pub fn show(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}
