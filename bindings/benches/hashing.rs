//! criterion benchmarks of the off-chain PaymentInfo hashes: the struct hash, the escrow's
//! `getHash` (the payment's key) and the payer-agnostic hash (the ERC-3009 nonce).
//!
//! `cargo bench -p x402-escrow-bindings --bench hashing`

use std::hint::black_box;

use alloy::primitives::aliases::{U48, U120};
use alloy::primitives::{Address, U256};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use x402_escrow_bindings::PaymentInfo;
use x402_escrow_bindings::hash::{
    payer_agnostic_hash, payment_info_hash, payment_info_struct_hash,
};

fn hashing(c: &mut Criterion) {
    let info = PaymentInfo {
        operator: Address::repeat_byte(0x0B),
        payer: Address::repeat_byte(0x01),
        receiver: Address::repeat_byte(0xAA),
        token: Address::repeat_byte(0x70),
        maxAmount: U120::from(1_000_000u64),
        preApprovalExpiry: U48::from(1_767_226_500u64),
        authorizationExpiry: U48::from(1_767_229_200u64),
        refundExpiry: U48::from(1_769_817_600u64),
        minFeeBps: 0,
        maxFeeBps: 500,
        feeReceiver: Address::repeat_byte(0xFE),
        salt: U256::from(0x1111_1111u64),
    };
    let escrow = Address::repeat_byte(0xE5);
    let mut group = c.benchmark_group("payment_info_hash");
    group.throughput(Throughput::Elements(1));
    group.bench_function("struct_hash", |b| {
        b.iter(|| payment_info_struct_hash(black_box(&info)))
    });
    group.bench_function("full", |b| {
        b.iter(|| payment_info_hash(black_box(&info), black_box(84_532), black_box(escrow)))
    });
    group.bench_function("payer_agnostic", |b| {
        b.iter(|| payer_agnostic_hash(black_box(&info), black_box(84_532), black_box(escrow)))
    });
    group.finish();
}

criterion_group!(benches, hashing);
criterion_main!(benches);
