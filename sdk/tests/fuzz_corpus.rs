//! Replays the committed cargo-fuzz inputs of the SDK targets (`fuzz/seeds/`, `fuzz/corpus/`,
//! `fuzz/regressions/` for `header_decode` and `payload_verify`) through the very functions the
//! fuzz targets run (`fuzz/src/sdk_harness.rs`), so every input a fuzzer ever found stays fixed
//! under `cargo test`. The seed files are checked to be what the harness generates, and the valid
//! ones to pass every offline check. Regenerate the seeds after a fixture change with
//! `X402_WRITE_FUZZ_SEEDS=1 cargo test -p x402-escrow-sdk --test fuzz_corpus`.

#[path = "../../fuzz/src/sdk_harness.rs"]
mod sdk_harness;

use std::path::{Path, PathBuf};

use x402_escrow_sdk::facilitator::{FacilitatorRequest, VerifyRequest};
use x402_escrow_sdk::wire::codec;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// Every file under `fuzz/<kind>/<target>/`, sorted.
fn inputs(kind: &str, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = fuzz_dir().join(kind).join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).expect("read input");
            (p, bytes)
        })
        .collect()
}

fn replay(target: &str, run: fn(&[u8])) -> usize {
    let mut n = 0;
    for kind in ["seeds", "corpus", "regressions"] {
        for (path, bytes) in inputs(kind, target) {
            let outcome = std::panic::catch_unwind(|| run(&bytes));
            assert!(outcome.is_ok(), "{} fails {target}", path.display());
            n += 1;
        }
    }
    n
}

#[test]
fn seeds_are_committed_and_current() {
    let write = std::env::var_os("X402_WRITE_FUZZ_SEEDS").is_some();
    for (target, name, bytes) in sdk_harness::seeds() {
        let path = fuzz_dir().join("seeds").join(target).join(&name);
        if write {
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, &bytes).expect("write seed");
        }
        let committed = std::fs::read(&path).unwrap_or_else(|e| {
            panic!("{}: {e} (regenerate: see the module docs)", path.display())
        });
        assert!(
            committed == bytes,
            "{} is stale (regenerate: see the module docs)",
            path.display()
        );
    }
}

#[test]
fn valid_seeds_pass_every_offline_check() {
    let mut checked = 0;
    for (target, name, bytes) in sdk_harness::seeds() {
        if target != "payload_verify" {
            continue;
        }
        let (mode, rest) = bytes.split_first().expect("mode byte");
        let request = if mode & 1 == 0 {
            codec::decode_body::<FacilitatorRequest>(rest, "body")
                .and_then(FacilitatorRequest::into_v2)
                .unwrap_or_else(|e| panic!("{name}: {e}"))
        } else {
            let p = codec::decode_payment_signature(rest).unwrap_or_else(|e| panic!("{name}: {e}"));
            VerifyRequest::new(p.clone(), p.accepted)
        };
        assert!(
            sdk_harness::verify_request(&request),
            "{name} does not verify"
        );
        checked += 1;
    }
    assert_eq!(checked, 6);
}

#[test]
fn header_decode_inputs_replay() {
    let n = replay("header_decode", sdk_harness::header_decode);
    assert!(n >= 10, "only {n} header_decode inputs");
}

#[test]
fn payload_verify_inputs_replay() {
    let n = replay("payload_verify", sdk_harness::payload_verify);
    assert!(n >= 6, "only {n} payload_verify inputs");
}
