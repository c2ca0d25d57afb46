//! The operator's HTTP API (REST and facilitator bodies) through its real router and verifier.
#![no_main]

#[path = "../src/operator_harness.rs"]
mod operator_harness;
#[path = "../src/sdk_harness.rs"]
mod sdk_harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| operator_harness::api_bodies(data));
