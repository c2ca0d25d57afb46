//! Decode → derive → auth-capture scheme checks (canonical registry, fixed time).
#![no_main]

#[path = "../src/sdk_harness.rs"]
mod sdk_harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| sdk_harness::payload_verify(data));
