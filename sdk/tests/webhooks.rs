//! Standard Webhooks: signing matches a known answer and an independent HMAC computation;
//! verification accepts rotation lists and refuses every tampering with its typed error.

use std::time::Duration;

use alloy::primitives::B256;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use x402_escrow_sdk::Amount;
use x402_escrow_sdk::webhooks::{
    self, DEFAULT_TOLERANCE, Deduplicator, MemoryDeduplicator, PaymentAmounts, PaymentEventData,
    SecretError, WebhookEvent, WebhookEventType, WebhookSecret, WebhookVerifyError,
};

/// The Standard Webhooks specification's published example.
const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const SPEC_TS: u64 = 1_614_265_330;
const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
const SPEC_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

/// HMAC-SHA256 through the `hmac` crate's own key handling (not the crate's code path).
fn independent_signature(key: &[u8], id: &str, ts: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

fn spec_secret() -> WebhookSecret {
    WebhookSecret::parse(SPEC_SECRET).expect("secret")
}

fn sample_event(id: &str) -> WebhookEvent {
    WebhookEvent::new(
        id,
        WebhookEventType::PaymentCaptured,
        1_767_225_600_123,
        PaymentEventData {
            payment_id: "0197f0c2-0000-7000-8000-000000000001".into(),
            request_id: "req_42".into(),
            payment_hash: B256::repeat_byte(0xab),
            status: "captured".into(),
            amount: Some(Amount::from(1_000_000u64)),
            amounts: PaymentAmounts {
                authorized: Amount::from(1_000_000u64),
                captured: Amount::from(1_000_000u64),
                refunded: Amount::ZERO,
                capturable: Amount::ZERO,
                refundable: Amount::from(1_000_000u64),
            },
            error_code: None,
            transaction_hash: Some(B256::repeat_byte(0x11)),
            idempotency_key: None,
        },
    )
}

#[test]
fn known_answer_vector() {
    let secret = spec_secret();
    assert_eq!(
        webhooks::sign(&secret, SPEC_ID, SPEC_TS, SPEC_BODY),
        SPEC_SIGNATURE
    );
    assert_eq!(
        independent_signature(secret.expose_bytes(), SPEC_ID, SPEC_TS, SPEC_BODY),
        SPEC_SIGNATURE
    );
}

#[test]
fn signatures_agree_with_an_independent_hmac_for_many_keys() {
    for len in [16usize, 24, 32, 63, 64] {
        let key: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
        let secret = WebhookSecret::from_bytes(key.clone()).expect("secret");
        let body = format!("{{\"n\":{len}}}");
        assert_eq!(
            webhooks::sign(&secret, "msg_1", 1_700_000_000, body.as_bytes()),
            independent_signature(&key, "msg_1", 1_700_000_000, body.as_bytes()),
            "key length {len}"
        );
    }
}

#[test]
fn secrets_parse_generate_and_never_print() {
    let secret = spec_secret();
    assert_eq!(secret.expose_secret(), SPEC_SECRET);
    assert_eq!(secret.to_string(), "whsec_…");
    assert!(!format!("{secret:?}").contains("MfKQ9r8"));
    // Padding optional.
    let unpadded = WebhookSecret::parse("whsec_AAAAAAAAAAAAAAAAAAAAAA").expect("16 bytes");
    assert_eq!(unpadded.expose_bytes(), &[0u8; 16]);
    assert_eq!(
        WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        Err(SecretError::MissingPrefix)
    );
    assert_eq!(
        WebhookSecret::parse("whsec_not base64!"),
        Err(SecretError::Base64)
    );
    assert_eq!(
        WebhookSecret::parse("whsec_AAAA"),
        Err(SecretError::Length(3))
    );
    assert_eq!(
        WebhookSecret::from_bytes(vec![1u8; 65]),
        Err(SecretError::Length(65))
    );
    let a = WebhookSecret::generate();
    let b = WebhookSecret::generate();
    assert_ne!(a, b);
    assert_eq!(a.expose_bytes().len(), 32);
    assert_eq!(WebhookSecret::parse(&a.expose_secret()), Ok(a));
    // Deserialize from config text, no Serialize.
    let parsed: WebhookSecret = serde_json::from_str(&format!("\"{SPEC_SECRET}\"")).expect("json");
    assert_eq!(parsed, spec_secret());
}

#[test]
fn headers_round_trip_through_verify() {
    let secret = WebhookSecret::generate();
    let event = sample_event("evt_1");
    let body = event.to_body().expect("body");
    let headers = webhooks::headers(&secret, &event.id, 1_000, &body);
    let map = headers.to_header_map().expect("header map");
    let verified = webhooks::verify(
        std::slice::from_ref(&secret),
        &map,
        &body,
        1_010,
        DEFAULT_TOLERANCE,
    )
    .expect("verifies");
    assert_eq!(verified.id, "evt_1");
    assert_eq!(verified.timestamp, 1_000);
    assert_eq!(verified.secret_index, 0);
    let (_, parsed) = webhooks::verify_event(
        std::slice::from_ref(&secret),
        &headers.pairs(),
        &body,
        1_010,
        DEFAULT_TOLERANCE,
    )
    .expect("event");
    assert_eq!(parsed, event);
}

#[test]
fn rotation_lists_are_accepted_either_way() {
    let old = WebhookSecret::generate();
    let new = WebhookSecret::generate();
    let body = b"{}";
    // The sender signs with both during a rotation.
    let both = webhooks::headers_rotating(&[new.clone(), old.clone()], "msg_r", 500, body);
    assert_eq!(both.signature.split(' ').count(), 2);
    for (secrets, index) in [
        (vec![old.clone()], 0),
        (vec![new.clone()], 0),
        (vec![WebhookSecret::generate(), new.clone()], 1),
    ] {
        let v = webhooks::verify(&secrets, &both.pairs(), body, 500, DEFAULT_TOLERANCE)
            .expect("one of the signatures matches");
        assert_eq!(v.secret_index, index);
    }
    // Unknown versions and junk entries are skipped, not fatal.
    let sig = webhooks::sign(&old, "msg_r", 500, body);
    let mixed = format!("v1a,Zm9v v2,abc garbage v1,!!! {sig}");
    let headers = [
        ("Webhook-Id", "msg_r"),
        ("Webhook-Timestamp", "500"),
        ("Webhook-Signature", mixed.as_str()),
    ];
    assert!(webhooks::verify(&[old], &headers, body, 500, DEFAULT_TOLERANCE).is_ok());
}

#[test]
fn every_rejection_has_its_error() {
    let secret = spec_secret();
    let secrets = std::slice::from_ref(&secret);
    let now = SPEC_TS + 10;
    let ok = |id: &str, ts: &str, sig: &str| {
        vec![
            ("webhook-id".to_owned(), id.to_owned()),
            ("webhook-timestamp".to_owned(), ts.to_owned()),
            ("webhook-signature".to_owned(), sig.to_owned()),
        ]
    };
    let ts = SPEC_TS.to_string();
    assert!(
        webhooks::verify(
            secrets,
            &ok(SPEC_ID, &ts, SPEC_SIGNATURE),
            SPEC_BODY,
            now,
            DEFAULT_TOLERANCE
        )
        .is_ok()
    );

    type Case<'a> = (Vec<(String, String)>, &'a [u8], u64, WebhookVerifyError);
    let cases: Vec<Case<'_>> = vec![
        (
            ok(SPEC_ID, &ts, SPEC_SIGNATURE)[1..].to_vec(),
            SPEC_BODY,
            now,
            WebhookVerifyError::MissingHeader("webhook-id"),
        ),
        (
            vec![
                ok(SPEC_ID, &ts, SPEC_SIGNATURE)[0].clone(),
                ok(SPEC_ID, &ts, SPEC_SIGNATURE)[2].clone(),
            ],
            SPEC_BODY,
            now,
            WebhookVerifyError::MissingHeader("webhook-timestamp"),
        ),
        (
            ok(SPEC_ID, &ts, SPEC_SIGNATURE)[..2].to_vec(),
            SPEC_BODY,
            now,
            WebhookVerifyError::MissingHeader("webhook-signature"),
        ),
        (
            ok(SPEC_ID, "-5", SPEC_SIGNATURE),
            SPEC_BODY,
            now,
            WebhookVerifyError::BadTimestamp("-5".into()),
        ),
        (
            ok(SPEC_ID, "1614265330.5", SPEC_SIGNATURE),
            SPEC_BODY,
            now,
            WebhookVerifyError::BadTimestamp("1614265330.5".into()),
        ),
        (
            ok(SPEC_ID, &ts, SPEC_SIGNATURE),
            SPEC_BODY,
            SPEC_TS + 301,
            WebhookVerifyError::TooOld {
                timestamp: SPEC_TS,
                now: SPEC_TS + 301,
                tolerance_secs: 300,
            },
        ),
        (
            ok(SPEC_ID, &ts, SPEC_SIGNATURE),
            SPEC_BODY,
            SPEC_TS - 301,
            WebhookVerifyError::TooNew {
                timestamp: SPEC_TS,
                now: SPEC_TS - 301,
                tolerance_secs: 300,
            },
        ),
        (
            ok(
                SPEC_ID,
                &ts,
                "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            ),
            SPEC_BODY,
            now,
            WebhookVerifyError::NoV1Signature,
        ),
        // Tampered body, id, timestamp and signature each break the match.
        (
            ok(SPEC_ID, &ts, SPEC_SIGNATURE),
            br#"{"test": 2432232315}"#,
            now,
            WebhookVerifyError::NoMatchingSignature,
        ),
        (
            ok("msg_other", &ts, SPEC_SIGNATURE),
            SPEC_BODY,
            now,
            WebhookVerifyError::NoMatchingSignature,
        ),
        (
            ok(SPEC_ID, &(SPEC_TS + 1).to_string(), SPEC_SIGNATURE),
            SPEC_BODY,
            now,
            WebhookVerifyError::NoMatchingSignature,
        ),
        (
            ok(
                SPEC_ID,
                &ts,
                "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=",
            ),
            SPEC_BODY,
            now,
            WebhookVerifyError::NoMatchingSignature,
        ),
        // A truncated signature never matches (length mismatch is not a prefix match).
        (
            ok(SPEC_ID, &ts, "v1,g0hM9SsE+OTPJTGt"),
            SPEC_BODY,
            now,
            WebhookVerifyError::NoMatchingSignature,
        ),
        (
            ok("msg\n1", &ts, SPEC_SIGNATURE),
            SPEC_BODY,
            now,
            WebhookVerifyError::BadId,
        ),
    ];
    for (i, (headers, body, now, expected)) in cases.into_iter().enumerate() {
        assert_eq!(
            webhooks::verify(secrets, &headers, body, now, DEFAULT_TOLERANCE),
            Err(expected),
            "case {i}"
        );
    }
    assert_eq!(
        webhooks::verify(
            &[],
            &ok(SPEC_ID, &ts, SPEC_SIGNATURE),
            SPEC_BODY,
            now,
            DEFAULT_TOLERANCE
        ),
        Err(WebhookVerifyError::NoSecrets)
    );
    // A custom tolerance.
    assert!(
        webhooks::verify(
            secrets,
            &ok(SPEC_ID, &ts, SPEC_SIGNATURE),
            SPEC_BODY,
            SPEC_TS + 3_000,
            Duration::from_secs(3_600)
        )
        .is_ok()
    );
}

#[test]
fn verify_event_binds_the_body_to_the_webhook_id() {
    let secret = WebhookSecret::generate();
    let event = sample_event("evt_a");
    let body = event.to_body().expect("body");
    // Signed under another id: the signature is valid for that id, but the body says evt_a.
    let headers = webhooks::headers(&secret, "evt_b", 100, &body);
    let err = webhooks::verify_event(&[secret], &headers.pairs(), &body, 100, DEFAULT_TOLERANCE)
        .expect_err("mismatch");
    assert!(matches!(err, WebhookVerifyError::Payload(_)), "{err:?}");
}

#[test]
fn event_json_shape() {
    let event = sample_event("evt_1");
    let json = serde_json::to_value(&event).expect("json");
    assert_eq!(
        json,
        serde_json::json!({
            "id": "evt_1",
            "type": "payment.captured",
            "createdAt": "2026-01-01T00:00:00.123Z",
            "data": {
                "paymentId": "0197f0c2-0000-7000-8000-000000000001",
                "requestId": "req_42",
                "paymentHash": format!("{}", B256::repeat_byte(0xab)),
                "status": "captured",
                "amount": "1000000",
                "amounts": {
                    "authorized": "1000000",
                    "captured": "1000000",
                    "refunded": "0",
                    "capturable": "0",
                    "refundable": "1000000"
                },
                "transactionHash": format!("{}", B256::repeat_byte(0x11)),
            }
        })
    );
    let back: WebhookEvent = serde_json::from_value(json).expect("parse");
    assert_eq!(back, event);
    for t in WebhookEventType::ALL {
        let text = serde_json::to_string(&t).expect("type");
        assert_eq!(
            serde_json::from_str::<WebhookEventType>(&text).expect("back"),
            t
        );
    }
    // A type added later does not break older receivers.
    assert_eq!(
        serde_json::from_str::<WebhookEventType>("\"payment.expired\"").expect("other"),
        WebhookEventType::Other("payment.expired".into())
    );
    assert!(WebhookEvent::new_id().starts_with("evt_"));
}

#[test]
fn deduplicator_processes_each_id_once() {
    let dedupe = MemoryDeduplicator::new(Duration::from_secs(100));
    assert!(dedupe.first_seen("evt_1", 0));
    assert!(!dedupe.first_seen("evt_1", 50));
    dedupe.forget("evt_1");
    assert!(dedupe.first_seen("evt_1", 60));
    assert!(dedupe.first_seen("evt_2", 60));
    // Past retention, ids are dropped.
    assert!(dedupe.first_seen("evt_3", 500));
    assert_eq!(dedupe.len(), 1);
}
