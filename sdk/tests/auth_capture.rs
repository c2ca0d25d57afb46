//! Operator-side consistency checks of `auth-capture`: every tampering is refused with its own
//! typed error, and buyer and operator agree for user-registered escrows.

mod support;

use alloy::primitives::{Address, B256, Bytes};
use alloy::signers::local::PrivateKeySigner;
use serde_json::json;
use support::base_sepolia_requirements;
use x402_escrow_sdk::escrows::{
    ERC3009_COLLECTOR_V1_1, ESCROW_V1_0, ESCROW_V1_1, PERMIT2_COLLECTOR_V1_0,
    PERMIT2_COLLECTOR_V1_1,
};
use x402_escrow_sdk::facilitator::reasons;
use x402_escrow_sdk::schemes::auth_capture::{
    self, AuthCaptureError, AuthCapturePayload, AuthCapturePermit2Payload, PaymentFlow,
    SignatureCheck, bound_salt, payment_info_from_json,
};
use x402_escrow_sdk::wire::{Extra, PaymentPayload, PaymentRequirements};
use x402_escrow_sdk::{Amount, EscrowDeployment, EscrowRegistry, Network, random_b256};

const NOW: u64 = 1_767_225_600;

fn requirements(bound: bool, escrow: Option<&str>) -> PaymentRequirements {
    let mut extra = json!({
        "name": "USDC",
        "version": "2",
        "captureAuthorizer": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
        "captureDeadline": NOW + 3600,
        "refundDeadline": NOW + 30 * 86400,
        "feeRecipient": "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
        "minFeeBps": 100,
        "maxFeeBps": 100
    });
    if bound {
        extra["receiverAuthorizer"] = json!("0x976EA74026E726554dB657fA54763abd0C3a0aa9");
    }
    if let Some(escrow) = escrow {
        extra["authCaptureEscrow"] = json!(escrow);
    }
    serde_json::from_value(base_sepolia_requirements("auth-capture", "1000000", extra))
        .expect("requirements")
}

fn signer() -> PrivateKeySigner {
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
        .parse()
        .expect("key")
}

fn build(requirements: &PaymentRequirements, registry: &EscrowRegistry) -> AuthCapturePayload {
    auth_capture::build_payload(requirements, &signer(), NOW, random_b256(), registry)
        .expect("build")
}

fn derive(
    requirements: &PaymentRequirements,
    payload: &AuthCapturePayload,
) -> Result<auth_capture::DerivedPayment, AuthCaptureError> {
    auth_capture::derive_payment_info(requirements, payload, &EscrowRegistry::canonical())
}

#[test]
fn random_payments_round_trip() {
    let registry = EscrowRegistry::canonical();
    for (bound, escrow) in [
        (false, None),
        (true, None),
        (false, Some("0xBdEA0D1bcC5966192B070Fdf62aB4EF5b4420cff")),
    ] {
        let req = requirements(bound, escrow);
        let payload = build(&req, &registry);
        assert_eq!(payload.salt_nonce.is_some(), bound);
        let derived = derive(&req, &payload).expect("derive");
        assert_eq!(derived.payer, signer().address());
        assert_eq!(derived.flow, PaymentFlow::Escrow);
        assert_eq!(
            derived.deployment.escrow,
            if escrow.is_some() {
                ESCROW_V1_0
            } else {
                ESCROW_V1_1
            }
        );
        assert_eq!(derived.payer_agnostic_hash, payload.authorization.nonce);
        assert_eq!(
            auth_capture::check_signature(&req, &payload),
            Ok(SignatureCheck::Ecdsa)
        );
        assert_eq!(auth_capture::check_timing(&req, &derived, NOW), Ok(()));
        // The JSON form converts back to the same struct.
        let json = derived.payment_info_json();
        assert_eq!(
            payment_info_from_json(&json),
            Ok(derived.payment_info.clone())
        );
        let reparsed: auth_capture::PaymentInfoJson =
            serde_json::from_value(serde_json::to_value(&json).expect("json")).expect("parse");
        assert_eq!(reparsed, json);
    }
}

#[test]
fn every_tampering_has_its_error() {
    let req = requirements(false, None);
    let good = build(&req, &EscrowRegistry::canonical());

    let mut p = good.clone();
    p.authorization.value = Amount::from(999_999u64);
    assert!(matches!(
        derive(&req, &p),
        Err(AuthCaptureError::AmountMismatch { .. })
    ));

    let mut p = good.clone();
    p.authorization.to = Address::repeat_byte(0x42);
    assert_eq!(
        derive(&req, &p),
        Err(AuthCaptureError::CollectorMismatch {
            field: "authorization.to",
            expected: ERC3009_COLLECTOR_V1_1,
            found: Address::repeat_byte(0x42)
        })
    );

    let mut p = good.clone();
    p.authorization.valid_after = Amount::from(1u64);
    assert_eq!(
        derive(&req, &p),
        Err(AuthCaptureError::ValidAfterNotZero(Amount::from(1u64)))
    );

    let mut p = good.clone();
    p.authorization.valid_before = Amount::from(1u64 << 48);
    assert!(matches!(
        derive(&req, &p),
        Err(AuthCaptureError::TimestampOutOfRange {
            field: "validBefore",
            ..
        })
    ));

    let mut p = good.clone();
    p.authorization.nonce = B256::repeat_byte(1);
    assert!(matches!(
        derive(&req, &p),
        Err(AuthCaptureError::NonceMismatch { .. })
    ));

    // A different salt (or validBefore) changes the PaymentInfo, so the nonce no longer matches.
    let mut p = good.clone();
    p.salt = B256::repeat_byte(9);
    assert!(matches!(
        derive(&req, &p),
        Err(AuthCaptureError::NonceMismatch { .. })
    ));
    let mut p = good.clone();
    p.authorization.valid_before = Amount::from(NOW + 59);
    assert!(matches!(
        derive(&req, &p),
        Err(AuthCaptureError::NonceMismatch { .. })
    ));

    let mut p = good.clone();
    p.salt_nonce = Some(B256::repeat_byte(1));
    assert_eq!(derive(&req, &p), Err(AuthCaptureError::SaltNonceUnexpected));

    // Someone else's signature over the same authorization.
    let mut p = good.clone();
    let other = PrivateKeySigner::random();
    let prepared = auth_capture::prepare(
        &req,
        signer().address(),
        NOW,
        good.salt,
        &EscrowRegistry::canonical(),
    )
    .expect("prepare");
    p.signature =
        x402_escrow_sdk::signing::sign_hash(&other, &prepared.signing_hash).expect("sign");
    assert!(matches!(
        auth_capture::check_signature(&req, &p),
        Err(AuthCaptureError::SignerMismatch { .. })
    ));
    // A smart-wallet signature can only be checked on chain.
    p.signature = Bytes::from(vec![7u8; 200]);
    assert_eq!(
        auth_capture::check_signature(&req, &p),
        Ok(SignatureCheck::NeedsOnChainCheck)
    );

    // Requirements the payload was not made for.
    let mut other_req = req.clone();
    other_req.amount = Amount::from(2_000_000u64);
    assert!(matches!(
        derive(&other_req, &good),
        Err(AuthCaptureError::AmountMismatch { .. })
    ));
    let v1_0 = requirements(false, Some("0xBdEA0D1bcC5966192B070Fdf62aB4EF5b4420cff"));
    assert!(matches!(
        derive(&v1_0, &good),
        Err(AuthCaptureError::CollectorMismatch { .. })
    ));
    let unknown = requirements(false, Some("0x000000000000000000000000000000000000dEaD"));
    assert!(matches!(
        derive(&unknown, &good),
        Err(AuthCaptureError::UnknownEscrow(_))
    ));
    let mut exact = req.clone();
    exact.scheme = "exact".into();
    assert_eq!(
        derive(&exact, &good),
        Err(AuthCaptureError::WrongScheme("exact".into()))
    );
    let mut permit2 = req.clone();
    if let Some(Extra::AuthCapture(extra)) = &mut permit2.extra {
        extra.asset_transfer_method = Some(auth_capture::AssetTransferMethod::Permit2);
    }
    assert_eq!(
        derive(&permit2, &good),
        Err(AuthCaptureError::PayloadMethodMismatch {
            expected: auth_capture::AssetTransferMethod::Permit2,
            found: "authorization"
        })
    );

    // Timing: too late to authorize; captureDeadline already passed.
    let derived = derive(&req, &good).expect("derive");
    assert!(matches!(
        auth_capture::check_timing(&req, &derived, NOW + 55),
        Err(AuthCaptureError::AuthorizationExpired { .. })
    ));
    // Signed for 60 s while 30 s were offered: within the clock-skew tolerance when the
    // verifier's clock reads NOW, refused once the excess is beyond it.
    let mut short_timeout = req.clone();
    short_timeout.max_timeout_seconds = 30;
    assert!(auth_capture::check_timing(&short_timeout, &derived, NOW).is_ok());
    let beyond = NOW - (auth_capture::CLOCK_SKEW_TOLERANCE_SECONDS - 30) - 1;
    assert!(matches!(
        auth_capture::check_timing(&short_timeout, &derived, beyond),
        Err(AuthCaptureError::DeadlineOrdering(_))
    ));
}

#[test]
fn salt_binding_is_enforced() {
    let req = requirements(true, None);
    let good = build(&req, &EscrowRegistry::canonical());
    let salt_nonce = good.salt_nonce.expect("bound payload has saltNonce");
    assert_eq!(
        good.salt,
        bound_salt(
            "0x976EA74026E726554dB657fA54763abd0C3a0aa9"
                .parse()
                .expect("addr"),
            Address::ZERO,
            salt_nonce
        )
    );

    let mut p = good.clone();
    p.salt_nonce = None;
    assert_eq!(derive(&req, &p), Err(AuthCaptureError::SaltNonceMissing));
    assert_eq!(
        AuthCaptureError::SaltNonceMissing.reason(),
        reasons::AUTH_CAPTURE_PAYLOAD_FORMAT
    );

    let mut p = good.clone();
    p.salt_nonce = Some(B256::repeat_byte(3));
    let error = derive(&req, &p).expect_err("binding");
    assert!(matches!(
        error,
        AuthCaptureError::SaltBindingMismatch { .. }
    ));
    assert_eq!(error.reason(), reasons::AUTH_CAPTURE_SALT_BINDING_MISMATCH);

    // Requirements re-pointed at another authorizer: the binding no longer opens.
    let mut other = req.clone();
    if let Some(Extra::AuthCapture(extra)) = &mut other.extra {
        extra.receiver_authorizer = Some(Address::repeat_byte(5));
    }
    assert!(matches!(
        derive(&other, &good),
        Err(AuthCaptureError::SaltBindingMismatch { .. })
    ));
}

#[test]
fn whole_payment_payload_checks() {
    let req = requirements(false, None);
    let payload = build(&req, &EscrowRegistry::canonical());
    let registry = EscrowRegistry::canonical();
    let payment = PaymentPayload::new(req.clone(), payload.clone());
    assert!(auth_capture::derive_from_payment_payload(&req, &payment, &registry).is_ok());

    let mut on_base = req.clone();
    on_base.network = Network::BASE;
    assert_eq!(
        auth_capture::derive_from_payment_payload(&on_base, &payment, &registry),
        Err(AuthCaptureError::NetworkMismatch {
            expected: Network::BASE,
            found: Network::BASE_SEPOLIA
        })
    );
    let mut longer = req.clone();
    longer.max_timeout_seconds = 120;
    let error = auth_capture::derive_from_payment_payload(&longer, &payment, &registry)
        .expect_err("mismatch");
    assert_eq!(
        error.to_string(),
        "accepted.maxTimeoutSeconds does not match the payment requirements"
    );
    assert_eq!(error.reason(), reasons::REQUIREMENTS_MISMATCH);
}

#[test]
fn user_registered_escrows() {
    // Our own deployment on anvil, as the operator registers it.
    let local = EscrowDeployment::v1_0_interface(
        "local",
        Address::repeat_byte(0xe5),
        Address::repeat_byte(0xc0),
        None,
    );
    let mut registry = EscrowRegistry::canonical();
    registry.register(local.clone());
    let escrow = local.escrow.to_checksum(None);
    let req = requirements(false, Some(&escrow));
    let payload =
        auth_capture::build_payload(&req, &signer(), NOW, random_b256(), &registry).expect("build");
    assert_eq!(payload.authorization.to, local.erc3009_collector);
    let derived = auth_capture::derive_payment_info(&req, &payload, &registry).expect("derive");
    assert_eq!(derived.deployment, local);
    // Unknown to a registry without it.
    assert_eq!(
        auth_capture::build_payload(
            &req,
            &signer(),
            NOW,
            random_b256(),
            &EscrowRegistry::canonical()
        ),
        Err(AuthCaptureError::UnknownEscrow(local.escrow))
    );
    // As the default, it serves requirements that name no escrow.
    let only = EscrowRegistry::only(local.clone());
    let req = requirements(false, None);
    let payload =
        auth_capture::build_payload(&req, &signer(), NOW, random_b256(), &only).expect("build");
    assert_eq!(payload.authorization.to, local.erc3009_collector);
    assert!(auth_capture::derive_payment_info(&req, &payload, &only).is_ok());
    assert!(matches!(
        derive(&req, &payload),
        Err(AuthCaptureError::CollectorMismatch { .. })
    ));
}

/// `requirements(bound, escrow)` asking for Permit2.
fn permit2_requirements(bound: bool, escrow: Option<&str>) -> PaymentRequirements {
    let mut req = requirements(bound, escrow);
    if let Some(Extra::AuthCapture(extra)) = &mut req.extra {
        extra.asset_transfer_method = Some(auth_capture::AssetTransferMethod::Permit2);
    }
    req
}

fn build_permit2(req: &PaymentRequirements) -> AuthCapturePermit2Payload {
    auth_capture::build_permit2_payload(
        req,
        &signer(),
        NOW,
        random_b256(),
        &EscrowRegistry::canonical(),
    )
    .expect("build permit2")
}

fn derive_permit2(
    req: &PaymentRequirements,
    payload: &AuthCapturePermit2Payload,
) -> Result<auth_capture::DerivedPayment, AuthCaptureError> {
    auth_capture::derive_permit2_payment_info(req, payload, &EscrowRegistry::canonical())
}

#[test]
fn permit2_payments_round_trip() {
    for (bound, escrow, collector, escrow_address) in [
        (false, None, PERMIT2_COLLECTOR_V1_1, ESCROW_V1_1),
        (true, None, PERMIT2_COLLECTOR_V1_1, ESCROW_V1_1),
        (
            false,
            Some("0xBdEA0D1bcC5966192B070Fdf62aB4EF5b4420cff"),
            PERMIT2_COLLECTOR_V1_0,
            ESCROW_V1_0,
        ),
    ] {
        let req = permit2_requirements(bound, escrow);
        let payload = build_permit2(&req);
        let permit = &payload.permit2_authorization;
        assert_eq!(permit.from, signer().address());
        assert_eq!(permit.spender, collector);
        assert_eq!(permit.permitted.token, req.asset);
        assert_eq!(permit.permitted.amount, req.amount);
        assert_eq!(permit.deadline, Amount::from(NOW + 60));
        assert_eq!(payload.salt_nonce.is_some(), bound);
        let derived = derive_permit2(&req, &payload).expect("derive");
        assert_eq!(derived.payer, signer().address());
        assert_eq!(derived.deployment.escrow, escrow_address);
        assert_eq!(derived.token_collector, collector);
        assert_eq!(
            derived.transfer_method,
            auth_capture::AssetTransferMethod::Permit2
        );
        assert_eq!(derived.payment_info.preApprovalExpiry.to::<u64>(), NOW + 60);
        assert_eq!(
            permit.nonce.get(),
            auth_capture::permit2::permit2_nonce(derived.payer_agnostic_hash)
        );
        assert_eq!(
            auth_capture::check_permit2_signature(&req, &payload),
            Ok(SignatureCheck::Ecdsa)
        );
        assert_eq!(auth_capture::check_timing(&req, &derived, NOW), Ok(()));
        // Through the wire: a PaymentPayload decodes to the Permit2 variant and derives alike.
        let payment = PaymentPayload::new(req.clone(), payload.clone());
        let text = serde_json::to_string(&payment).expect("json");
        let decoded: PaymentPayload = serde_json::from_str(&text).expect("decode");
        assert_eq!(decoded.payload.as_auth_capture_permit2(), Some(&payload));
        assert_eq!(decoded.payload.payer(), Some(signer().address()));
        assert_eq!(
            auth_capture::derive_from_payment_payload(&req, &decoded, &EscrowRegistry::canonical()),
            Ok(derived)
        );
    }
}

#[test]
fn permit2_collect_payload_follows_the_requirements() {
    let registry = EscrowRegistry::canonical();
    let eip3009 = requirements(false, None);
    let permit2 = permit2_requirements(false, None);
    let random = random_b256();
    let collect = auth_capture::build_collect_payload(&permit2, &signer(), NOW, random, &registry)
        .expect("build");
    assert!(collect.as_auth_capture_permit2().is_some());
    let collect = auth_capture::build_collect_payload(&eip3009, &signer(), NOW, random, &registry)
        .expect("build");
    assert!(collect.as_auth_capture().is_some());
    // Each single-method builder refuses the other method's requirements.
    assert_eq!(
        auth_capture::prepare(&permit2, signer().address(), NOW, random, &registry),
        Err(AuthCaptureError::PayloadMethodMismatch {
            expected: auth_capture::AssetTransferMethod::Permit2,
            found: "authorization"
        })
    );
    let error = auth_capture::prepare_permit2(&eip3009, signer().address(), NOW, random, &registry)
        .expect_err("eip3009 requirements");
    assert_eq!(
        error.reason(),
        reasons::AUTH_CAPTURE_PAYLOAD_METHOD_MISMATCH
    );
    // The prepared digest, signed elsewhere, gives the payload build_permit2_payload makes.
    let prepared =
        auth_capture::prepare_collect(&permit2, signer().address(), NOW, random, &registry)
            .expect("prepare");
    let signature =
        x402_escrow_sdk::signing::sign_hash(&signer(), &prepared.signing_hash()).expect("sign");
    let built = auth_capture::build_permit2_payload(&permit2, &signer(), NOW, random, &registry)
        .expect("build");
    assert_eq!(prepared.into_payload(signature), built.into());
}

#[test]
fn permit2_tampering_is_refused_with_its_own_error() {
    let req = permit2_requirements(false, None);
    let good = build_permit2(&req);
    assert!(derive_permit2(&req, &good).is_ok());

    // Spender: not the escrow's Permit2 collector.
    let mut p = good.clone();
    p.permit2_authorization.spender = ERC3009_COLLECTOR_V1_1;
    let error = derive_permit2(&req, &p).expect_err("wrong spender");
    assert_eq!(
        error,
        AuthCaptureError::CollectorMismatch {
            field: "permit2Authorization.spender",
            expected: PERMIT2_COLLECTOR_V1_1,
            found: ERC3009_COLLECTOR_V1_1,
        }
    );
    assert_eq!(error.reason(), reasons::AUTH_CAPTURE_COLLECTOR_MISMATCH);

    // Token: another ERC-20 than the asset.
    let mut p = good.clone();
    p.permit2_authorization.permitted.token = Address::repeat_byte(0x77);
    let error = derive_permit2(&req, &p).expect_err("wrong token");
    assert_eq!(
        error,
        AuthCaptureError::TokenMismatch {
            expected: req.asset,
            found: Address::repeat_byte(0x77)
        }
    );
    assert_eq!(error.reason(), reasons::AUTH_CAPTURE_TOKEN_MISMATCH);

    // Amount.
    let mut p = good.clone();
    p.permit2_authorization.permitted.amount = Amount::from(1_000_001u64);
    let error = derive_permit2(&req, &p).expect_err("wrong amount");
    assert!(matches!(error, AuthCaptureError::AmountMismatch { .. }));
    assert_eq!(error.reason(), reasons::AUTH_CAPTURE_AMOUNT_MISMATCH);

    // Nonce: not the payer-agnostic hash; a moved deadline changes the PaymentInfo it commits to.
    let mut p = good.clone();
    p.permit2_authorization.nonce = Amount::from(12_345u64);
    let error = derive_permit2(&req, &p).expect_err("wrong nonce");
    assert!(matches!(error, AuthCaptureError::NonceMismatch { .. }));
    assert_eq!(error.reason(), reasons::AUTH_CAPTURE_NONCE_MISMATCH);
    let mut p = good.clone();
    p.permit2_authorization.deadline = Amount::from(NOW + 3000);
    assert!(matches!(
        derive_permit2(&req, &p),
        Err(AuthCaptureError::NonceMismatch { .. })
    ));
    // Deadline beyond uint48.
    let mut p = good.clone();
    p.permit2_authorization.deadline = Amount::from(1u64 << 48);
    assert!(matches!(
        derive_permit2(&req, &p),
        Err(AuthCaptureError::TimestampOutOfRange {
            field: "permit2Authorization.deadline",
            ..
        })
    ));
    // Salt nonce on an unbound payment.
    let mut p = good.clone();
    p.salt_nonce = Some(B256::repeat_byte(3));
    assert_eq!(
        derive_permit2(&req, &p),
        Err(AuthCaptureError::SaltNonceUnexpected)
    );

    // Expired: the deadline (= preApprovalExpiry) too close to now.
    let derived = derive_permit2(&req, &good).expect("derive");
    let error = auth_capture::check_timing(&req, &derived, NOW + 55).expect_err("expired");
    assert_eq!(error.reason(), reasons::AUTH_CAPTURE_AUTHORIZATION_EXPIRED);

    // Signatures: someone else's, a payload field changed after signing, a smart wallet's.
    let mut p = good.clone();
    let prepared = auth_capture::prepare_permit2(
        &req,
        signer().address(),
        NOW,
        good.salt,
        &EscrowRegistry::canonical(),
    )
    .expect("prepare");
    p.signature =
        x402_escrow_sdk::signing::sign_hash(&PrivateKeySigner::random(), &prepared.signing_hash)
            .expect("sign");
    let error = auth_capture::check_permit2_signature(&req, &p).expect_err("other signer");
    assert!(matches!(error, AuthCaptureError::SignerMismatch { .. }));
    assert_eq!(error.reason(), reasons::AUTH_CAPTURE_SIGNATURE);
    let mut p = good.clone();
    p.permit2_authorization.spender = Address::repeat_byte(0x99);
    assert!(matches!(
        auth_capture::check_permit2_signature(&req, &p),
        Err(AuthCaptureError::SignerMismatch { .. })
    ));
    let mut p = good.clone();
    p.signature = Bytes::from(vec![7u8; 200]);
    assert_eq!(
        auth_capture::check_permit2_signature(&req, &p),
        Ok(SignatureCheck::NeedsOnChainCheck)
    );

    // A Permit2 payload for requirements that ask for ERC-3009 (and the reverse, above).
    let eip3009 = requirements(false, None);
    let error = derive_permit2(&eip3009, &good).expect_err("method");
    assert_eq!(
        error,
        AuthCaptureError::PayloadMethodMismatch {
            expected: auth_capture::AssetTransferMethod::Eip3009,
            found: "permit2Authorization"
        }
    );
    assert_eq!(
        error.reason(),
        reasons::AUTH_CAPTURE_PAYLOAD_METHOD_MISMATCH
    );
}

#[test]
fn permit2_needs_a_deployment_with_a_permit2_collector() {
    // A deployment without a Permit2 collector: nothing can be signed or accepted for it.
    let local = EscrowDeployment::v1_0_interface(
        "local",
        Address::repeat_byte(0xe5),
        Address::repeat_byte(0xc0),
        None,
    );
    let registry = EscrowRegistry::only(local.clone());
    let req = permit2_requirements(false, None);
    let error = auth_capture::build_permit2_payload(&req, &signer(), NOW, random_b256(), &registry)
        .expect_err("no collector");
    assert_eq!(
        error,
        AuthCaptureError::Permit2CollectorMissing(local.escrow)
    );
    assert_eq!(
        error.reason(),
        reasons::AUTH_CAPTURE_UNSUPPORTED_TRANSFER_METHOD
    );
    // A payload made for a deployment that has one is refused by a registry where it has none.
    let with = local
        .clone()
        .with_permit2_collector(Some(Address::repeat_byte(0xc2)));
    let payload = auth_capture::build_permit2_payload(
        &req,
        &signer(),
        NOW,
        random_b256(),
        &EscrowRegistry::only(with.clone()),
    )
    .expect("build");
    assert_eq!(
        payload.permit2_authorization.spender,
        Address::repeat_byte(0xc2)
    );
    assert!(
        auth_capture::derive_permit2_payment_info(&req, &payload, &EscrowRegistry::only(with))
            .is_ok()
    );
    assert_eq!(
        auth_capture::derive_permit2_payment_info(&req, &payload, &registry),
        Err(AuthCaptureError::Permit2CollectorMissing(local.escrow))
    );
}
