//! `x402-escrow bench` (issue 5, "Benchmarks"): the load driver is the `x402-escrow-bench`
//! crate; this module gives it the operator's store ([`db::StoreDatabase`]) and this binary as
//! the operator (a child process), and prints its report.

mod db;

use eyre::{Context, Result, bail, ensure};
use x402_escrow_bench::BenchArgs;

/// `x402-escrow bench`: runs (stopping everything on Ctrl-C) and prints.
pub async fn main(args: BenchArgs) -> Result<()> {
    let json = args.json;
    if !json {
        eprintln!("starting anvil, deploying, starting the operator and the merchant…");
    }
    let exe = std::env::current_exe().wrap_err("locating this executable")?;
    let report = tokio::select! {
        report = x402_escrow_bench::run(
            &exe,
            args,
            db::StoreDatabase::default(),
        ) => report?,
        _ = tokio::signal::ctrl_c() => bail!("interrupted"),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    ensure!(
        report.paid_failed == 0 && report.captured == report.paid_ok,
        "{} paid request(s) failed and {} of {} answered payments were captured",
        report.paid_failed,
        report.captured,
        report.paid_ok
    );
    Ok(())
}
