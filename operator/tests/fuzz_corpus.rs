//! Replays the committed cargo-fuzz inputs of `api_bodies` (`fuzz/seeds/`, `fuzz/corpus/`,
//! `fuzz/regressions/`) through the function the fuzz target runs
//! (`fuzz/src/operator_harness.rs`: the real router, store and verifier), so every input a
//! fuzzer ever found stays fixed under `cargo test`. The seeds are checked to be current and to
//! reach the statuses they were made for. Regenerate them with
//! `X402_WRITE_FUZZ_SEEDS=1 cargo test -p x402-escrow-operator --test fuzz_corpus`.

#[path = "../../fuzz/src/operator_harness.rs"]
mod operator_harness;
#[path = "../../fuzz/src/sdk_harness.rs"]
mod sdk_harness;

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

#[test]
fn seeds_are_current_and_reach_their_status() {
    let write = std::env::var_os("X402_WRITE_FUZZ_SEEDS").is_some();
    let seeds = operator_harness::seeds();
    for (name, bytes, status) in &seeds {
        let path = fuzz_dir().join("seeds/api_bodies").join(name);
        if write {
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, bytes).expect("write seed");
        }
        let committed = std::fs::read(&path).unwrap_or_else(|e| {
            panic!("{}: {e} (regenerate: see the module docs)", path.display())
        });
        assert!(committed == *bytes, "{} is stale", path.display());
        let (uri, got, body) = operator_harness::api_request(bytes).expect("a request");
        operator_harness::check_response(&uri, got, &body);
        assert_eq!(
            got.as_u16(),
            *status,
            "{name}: {uri}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    // The valid payment got through every offline check of the operator's verifier.
    let (_, _, body) = operator_harness::api_request(&seeds[0].1).expect("request");
    let body: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(body["error"]["code"], "chain_unavailable", "{body}");
}

#[test]
fn api_bodies_inputs_replay() {
    let mut n = 0;
    for kind in ["seeds", "corpus", "regressions"] {
        let dir = fuzz_dir().join(kind).join("api_bodies");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries.map(|e| e.expect("entry").path()).collect();
        files.sort();
        for path in files {
            let bytes = std::fs::read(&path).expect("read input");
            let outcome = std::panic::catch_unwind(|| operator_harness::api_bodies(&bytes));
            assert!(outcome.is_ok(), "{} fails api_bodies", path.display());
            n += 1;
        }
    }
    assert!(n >= 12, "only {n} api_bodies inputs");
}
