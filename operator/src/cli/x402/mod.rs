//! Issue 4's commands over their libraries: the end-to-end `demo` (`x402-escrow-demo`), the
//! paying client `pay` (`x402-escrow-pay`) and the paying reverse proxy `gateway`
//! (`x402-escrow-gateway`, called from `main`).

use eyre::{Context, Result};

pub use x402_escrow_demo::format_units;

/// `x402-escrow demo`: runs the demo with this binary as the operator, and prints its report.
pub async fn demo(args: x402_escrow_demo::DemoArgs) -> Result<()> {
    println!("starting anvil, deploying, starting the operator and the demo merchant…");
    let exe = std::env::current_exe().wrap_err("locating this executable")?;
    let report = x402_escrow_demo::run(&exe, args)
        .await
        .wrap_err("the demo did not go as expected")?;
    print!("{}", report.render());
    Ok(())
}
