//! The official `@x402/evm` client's vectors (testdata/x402-official-client.json): our payloads
//! must be byte-for-byte the client's, and the operator-side derivation must reproduce
//! `derived`.

use std::path::PathBuf;

use alloy::primitives::{Address, B256};
use alloy::signers::local::PrivateKeySigner;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use x402_escrow_sdk::schemes::auth_capture::{
    self, AuthCapturePayload, AuthCapturePermit2Payload, SignatureCheck,
};
use x402_escrow_sdk::schemes::exact::{self, ExactPayload};
use x402_escrow_sdk::wire::{PaymentPayload, PaymentRequirements, codec};
use x402_escrow_sdk::{EscrowRegistry, payment_info_hash};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Vectors<'a> {
    payer_private_key: String,
    payer: String,
    #[serde(borrow)]
    auth_capture: Vec<Case<'a>>,
    #[serde(borrow)]
    exact: Vec<Case<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Case<'a> {
    name: String,
    now_seconds: u64,
    random_byte: u8,
    #[serde(borrow)]
    requirements: &'a RawValue,
    #[serde(borrow)]
    payload: &'a RawValue,
    derived: Option<Value>,
}

fn vectors_text() -> String {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/x402-official-client.json");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Removes the whitespace between JSON tokens, keeping key order and string contents.
fn compact(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

fn signer(vectors: &Vectors<'_>) -> PrivateKeySigner {
    let signer: PrivateKeySigner = vectors.payer_private_key.parse().expect("vector key");
    assert_eq!(signer.address().to_checksum(None), vectors.payer);
    signer
}

#[test]
fn auth_capture_payloads_are_byte_identical() {
    let text = vectors_text();
    let vectors: Vectors<'_> = serde_json::from_str(&text).expect("vectors parse");
    let signer = signer(&vectors);
    let registry = EscrowRegistry::canonical();
    assert_eq!(vectors.auth_capture.len(), 3);
    for case in &vectors.auth_capture {
        let requirements: PaymentRequirements =
            serde_json::from_str(case.requirements.get()).expect(&case.name);
        let random = B256::repeat_byte(case.random_byte);
        let payload = auth_capture::build_payload(
            &requirements,
            &signer,
            case.now_seconds,
            random,
            &registry,
        )
        .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let ours = serde_json::to_string(&payload).expect("serialise");
        assert_eq!(ours, compact(case.payload.get()), "{}", case.name);
    }
}

#[test]
fn auth_capture_derivation_reproduces_derived() {
    let text = vectors_text();
    let vectors: Vectors<'_> = serde_json::from_str(&text).expect("vectors parse");
    let registry = EscrowRegistry::canonical();
    for case in &vectors.auth_capture {
        let requirements: PaymentRequirements =
            serde_json::from_str(case.requirements.get()).expect(&case.name);
        let payload: AuthCapturePayload =
            serde_json::from_str(case.payload.get()).expect(&case.name);
        // Decoding then encoding the client's payload is faithful.
        assert_eq!(
            serde_json::to_string(&payload).expect("serialise"),
            compact(case.payload.get())
        );

        let derived = auth_capture::derive_payment_info(&requirements, &payload, &registry)
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let expected = case
            .derived
            .as_ref()
            .expect("auth-capture cases carry derived");
        assert_eq!(
            serde_json::to_value(derived.payment_info_json()).expect("json"),
            expected["paymentInfo"],
            "{}",
            case.name
        );
        assert_eq!(Value::from(derived.chain_id), expected["chainId"]);
        assert_eq!(
            Value::from(derived.deployment.escrow.to_checksum(None)),
            expected["escrow"]
        );
        assert_eq!(
            Value::from(derived.payer_agnostic_hash.to_string()),
            expected["payerAgnosticHash"]
        );
        assert_eq!(
            Value::from(derived.payment_info_hash.to_string()),
            expected["paymentInfoHash"]
        );
        assert_eq!(
            payment_info_hash(
                &derived.payment_info,
                derived.chain_id,
                derived.deployment.escrow
            ),
            derived.payment_info_hash
        );
        assert_eq!(
            auth_capture::check_signature(&requirements, &payload),
            Ok(SignatureCheck::Ecdsa),
            "{}",
            case.name
        );
        assert_eq!(
            auth_capture::check_timing(&requirements, &derived, case.now_seconds),
            Ok(()),
            "{}",
            case.name
        );

        // The whole PaymentPayload through the v2 header codec.
        let payment = PaymentPayload::new(requirements.clone(), payload.clone());
        let header = codec::encode_payment_signature(&payment).expect("encode");
        let decoded = codec::decode_payment_signature(&header).expect("decode");
        assert_eq!(decoded, payment);
        let again = auth_capture::derive_from_payment_payload(&requirements, &decoded, &registry)
            .expect("derive");
        assert_eq!(again, derived);
    }
}

#[test]
fn exact_payloads_are_byte_identical_and_verify() {
    let text = vectors_text();
    let vectors: Vectors<'_> = serde_json::from_str(&text).expect("vectors parse");
    let signer = signer(&vectors);
    assert!(!vectors.exact.is_empty());
    for case in &vectors.exact {
        let requirements: PaymentRequirements =
            serde_json::from_str(case.requirements.get()).expect(&case.name);
        let nonce = B256::repeat_byte(case.random_byte);
        let payload = exact::build_payload(&requirements, &signer, case.now_seconds, nonce)
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(
            serde_json::to_string(&payload).expect("serialise"),
            compact(case.payload.get()),
            "{}",
            case.name
        );

        let theirs: ExactPayload = serde_json::from_str(case.payload.get()).expect(&case.name);
        assert_eq!(theirs, payload);
        assert_eq!(
            exact::verify_payload(&requirements, &theirs, case.now_seconds),
            Ok(signer.address())
        );
        // Wrong recipient, wrong amount, expired: each refused with its own error.
        let mut bad = theirs.clone();
        bad.authorization.to = Address::repeat_byte(1);
        assert!(matches!(
            exact::verify_payload(&requirements, &bad, case.now_seconds),
            Err(exact::ExactError::RecipientMismatch { .. })
        ));
        let mut bad = theirs.clone();
        bad.authorization.value = 1u64.into();
        assert!(matches!(
            exact::verify_payload(&requirements, &bad, case.now_seconds),
            Err(exact::ExactError::AmountMismatch { .. })
        ));
        assert!(matches!(
            exact::verify_payload(&requirements, &theirs, case.now_seconds + 60),
            Err(exact::ExactError::Expired { .. })
        ));
        let mut bad = theirs.clone();
        bad.authorization.nonce = B256::ZERO;
        assert!(matches!(
            exact::verify_payload(&requirements, &bad, case.now_seconds),
            Err(exact::ExactError::SignerMismatch { .. })
        ));
    }
}

/// `x402-official-client-permit2.json`: the official client's Permit2 payloads for the same
/// requirements, clocks and randomness as the ERC-3009 cases, with
/// `extra.assetTransferMethod: "permit2"` (generated by `testdata/gen-permit2-vectors.mjs`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Permit2Vectors<'a> {
    payer_private_key: String,
    payer: String,
    #[serde(borrow)]
    auth_capture_permit2: Vec<Case<'a>>,
}

fn permit2_vectors_text() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/x402-official-client-permit2.json");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

#[test]
fn auth_capture_permit2_payloads_are_byte_identical() {
    let text = permit2_vectors_text();
    let vectors: Permit2Vectors<'_> = serde_json::from_str(&text).expect("vectors parse");
    let signer: PrivateKeySigner = vectors.payer_private_key.parse().expect("vector key");
    assert_eq!(signer.address().to_checksum(None), vectors.payer);
    let registry = EscrowRegistry::canonical();
    assert_eq!(vectors.auth_capture_permit2.len(), 3);
    for case in &vectors.auth_capture_permit2 {
        let requirements: PaymentRequirements =
            serde_json::from_str(case.requirements.get()).expect(&case.name);
        let random = B256::repeat_byte(case.random_byte);
        let payload = auth_capture::build_permit2_payload(
            &requirements,
            &signer,
            case.now_seconds,
            random,
            &registry,
        )
        .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(
            serde_json::to_string(&payload).expect("serialise"),
            compact(case.payload.get()),
            "{}",
            case.name
        );
        // The method-dispatching builder makes the same bytes.
        let collect = auth_capture::build_collect_payload(
            &requirements,
            &signer,
            case.now_seconds,
            random,
            &registry,
        )
        .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(
            serde_json::to_string(&collect).expect("serialise"),
            compact(case.payload.get())
        );
    }
}

#[test]
fn auth_capture_permit2_derivation_matches_the_erc3009_case() {
    let text = permit2_vectors_text();
    let vectors: Permit2Vectors<'_> = serde_json::from_str(&text).expect("vectors parse");
    let eip3009_text = vectors_text();
    let eip3009: Vectors<'_> = serde_json::from_str(&eip3009_text).expect("vectors parse");
    let registry = EscrowRegistry::canonical();
    for (case, twin) in vectors
        .auth_capture_permit2
        .iter()
        .zip(&eip3009.auth_capture)
    {
        let requirements: PaymentRequirements =
            serde_json::from_str(case.requirements.get()).expect(&case.name);
        let payload: AuthCapturePermit2Payload =
            serde_json::from_str(case.payload.get()).expect(&case.name);
        assert_eq!(
            serde_json::to_string(&payload).expect("serialise"),
            compact(case.payload.get())
        );
        let derived = auth_capture::derive_permit2_payment_info(&requirements, &payload, &registry)
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        // Same requirements, clock and salt as the ERC-3009 twin: the same PaymentInfo, and the
        // Permit2 nonce is the twin's ERC-3009 nonce read as a uint256.
        let expected = twin.derived.as_ref().expect("derived");
        assert_eq!(
            serde_json::to_value(derived.payment_info_json()).expect("json"),
            expected["paymentInfo"],
            "{}",
            case.name
        );
        assert_eq!(
            Value::from(derived.payer_agnostic_hash.to_string()),
            expected["payerAgnosticHash"]
        );
        assert_eq!(
            Value::from(derived.payment_info_hash.to_string()),
            expected["paymentInfoHash"]
        );
        assert_eq!(
            payload.permit2_authorization.nonce.get(),
            alloy::primitives::U256::from_be_bytes(derived.payer_agnostic_hash.0)
        );
        assert_eq!(
            derived.transfer_method,
            auth_capture::AssetTransferMethod::Permit2
        );
        assert_eq!(
            Some(derived.token_collector),
            derived.deployment.permit2_collector
        );
        assert_eq!(
            auth_capture::check_permit2_signature(&requirements, &payload),
            Ok(SignatureCheck::Ecdsa),
            "{}",
            case.name
        );
        assert_eq!(
            auth_capture::check_timing(&requirements, &derived, case.now_seconds),
            Ok(())
        );

        // The whole PaymentPayload through the v2 header codec decodes as a Permit2 payload.
        let payment = PaymentPayload::new(requirements.clone(), payload.clone());
        let header = codec::encode_payment_signature(&payment).expect("encode");
        let decoded = codec::decode_payment_signature(&header).expect("decode");
        assert_eq!(decoded, payment);
        assert_eq!(decoded.payload.as_auth_capture_permit2(), Some(&payload));
        let again = auth_capture::derive_from_payment_payload(&requirements, &decoded, &registry)
            .expect("derive");
        assert_eq!(again, derived);
    }
}
