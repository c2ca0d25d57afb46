//! criterion benchmarks of the SDK's per-payment hot path on the operator side: decoding the
//! payment header (v2 `PAYMENT-SIGNATURE`, v1 `X-PAYMENT`) and the facilitator body, recovering
//! the payer's ERC-3009 signature, and the auth-capture verification (derive the PaymentInfo and
//! check it against the requirements, the time window), then all of it together.
//!
//! `cargo bench -p x402-escrow-sdk --bench hot_paths`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use x402_escrow_bindings::eip3009::{self, Authorization, ReceiveWithAuthorization};
use x402_escrow_sdk::facilitator::{FacilitatorRequest, VerifyRequest};
use x402_escrow_sdk::schemes::auth_capture;
use x402_escrow_sdk::wire::{PaymentPayloadV1, PaymentRequirementsV1, codec};

// The fixtures of the fuzz targets: a valid signed payment at a fixed time.
#[path = "../../fuzz/src/sdk_harness.rs"]
mod sdk_harness;

use sdk_harness::NOW;

fn decode(c: &mut Criterion) {
    let payment = sdk_harness::valid_payment(false);
    let v2_header = codec::encode_payment_signature(&payment).expect("v2 header");
    let v1_req =
        PaymentRequirementsV1::from_v2(&payment.accepted, payment.resource.as_ref().unwrap());
    let v1_header =
        codec::encode_x_payment(&PaymentPayloadV1::new(&v1_req, payment.payload.clone()))
            .expect("v1 header");
    let body = serde_json::to_vec(&VerifyRequest::new(
        payment.clone(),
        payment.accepted.clone(),
    ))
    .expect("body");

    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Bytes(v2_header.len() as u64));
    group.bench_function("v2_payment_signature_header", |b| {
        b.iter(|| codec::decode_payment_signature(black_box(v2_header.as_bytes())).unwrap())
    });
    group.throughput(Throughput::Bytes(v1_header.len() as u64));
    group.bench_function("v1_x_payment_header", |b| {
        b.iter(|| codec::decode_x_payment(black_box(v1_header.as_bytes())).unwrap())
    });
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("facilitator_body_v2", |b| {
        b.iter(|| {
            codec::decode_body::<FacilitatorRequest>(black_box(&body), "body")
                .unwrap()
                .into_v2()
                .unwrap()
        })
    });
    group.finish();
}

fn verify(c: &mut Criterion) {
    let registry = sdk_harness::registry();
    let payment = sdk_harness::valid_payment(false);
    let requirements = payment.accepted.clone();
    let payload = payment.payload.as_auth_capture().expect("payload").clone();
    let derived = auth_capture::derive_from_payment_payload(&requirements, &payment, &registry)
        .expect("derive");
    let header = codec::encode_payment_signature(&payment).expect("header");

    // The same recovery through the bindings (what the collector presents to the token).
    let extra = requirements.auth_capture_extra().expect("extra");
    let domain = eip3009::token_domain(
        &extra.name,
        &extra.version,
        derived.chain_id,
        requirements.asset,
    );
    let authorization = ReceiveWithAuthorization::for_payment(
        &derived.payment_info,
        derived.deployment.erc3009_collector,
        derived.chain_id,
        derived.deployment.escrow,
    );

    let mut group = c.benchmark_group("verify");
    group.throughput(Throughput::Elements(1));
    group.bench_function("erc3009_recover_bindings", |b| {
        b.iter(|| {
            authorization
                .recover_signer(black_box(&domain), black_box(&payload.signature))
                .unwrap()
        })
    });
    group.bench_function("check_signature_sdk", |b| {
        b.iter(|| {
            auth_capture::check_signature(black_box(&requirements), black_box(&payload)).unwrap()
        })
    });
    group.bench_function("derive_payment_info", |b| {
        b.iter(|| {
            auth_capture::derive_from_payment_payload(
                black_box(&requirements),
                black_box(&payment),
                &registry,
            )
            .unwrap()
        })
    });
    group.bench_function("check_timing", |b| {
        b.iter(|| {
            auth_capture::check_timing(black_box(&requirements), black_box(&derived), NOW).unwrap()
        })
    });
    group.bench_function("header_to_verified", |b| {
        b.iter(|| {
            let payment = codec::decode_payment_signature(black_box(header.as_bytes())).unwrap();
            let derived =
                auth_capture::derive_from_payment_payload(&requirements, &payment, &registry)
                    .unwrap();
            auth_capture::check_timing(&requirements, &derived, NOW).unwrap();
            let payload = payment.payload.as_auth_capture().unwrap();
            auth_capture::check_signature(&requirements, payload).unwrap();
            derived
        })
    });
    group.finish();
}

criterion_group!(benches, decode, verify);
criterion_main!(benches);
