//! `x402-escrow bench` (issue 5, "Benchmarks"): the load driver is the `x402-escrow-bench`
//! crate; this module gives it the operator's store ([`db::StoreDatabase`]) and this binary as
//! the operator (a child process), and prints its report.

mod db;

use eyre::{Context, Result, bail, ensure};
use x402_escrow_bench::{BenchArgs, BenchDatabase};

/// `x402-escrow bench`: runs (stopping everything on Ctrl-C) and prints.
pub async fn main(args: BenchArgs) -> Result<()> {
    let json = args.json;
    if !json {
        eprintln!("starting anvil, deploying, starting the operator and the merchant…");
    }
    let exe = std::env::current_exe().wrap_err("locating this executable")?;
    let mut db = db::StoreDatabase::default();
    let report = tokio::select! {
        report = x402_escrow_bench::run(&exe, args, &mut db) => report?,
        _ = tokio::signal::ctrl_c() => {
            // The run was dropped (its operators killed): drop its database too.
            db.close().await;
            bail!("interrupted")
        }
    };
    if json {
        // One line: scripts read it whole, or its `summary` object.
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.render());
    }
    if let Some(paid) = &report.paid {
        ensure!(
            paid.paid_failed == 0 && paid.captured == paid.paid_ok,
            "{} paid request(s) failed and {} of {} answered payments were captured",
            paid.paid_failed,
            paid.captured,
            paid.paid_ok
        );
    }
    if let Some(f) = &report.facilitator {
        ensure!(
            f.failed == 0 && f.ok == f.requests && f.confirmed == f.ok,
            "{} of {} settle(s) failed and the database confirms {} of {} successful settles",
            f.failed,
            f.requests,
            f.confirmed,
            f.ok
        );
    }
    Ok(())
}
