//! Every header and body codec entry point of the SDK (v1 and v2), with round-trip checks.
#![no_main]

#[path = "../src/sdk_harness.rs"]
mod sdk_harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| sdk_harness::header_decode(data));
