//! `x402-escrow`: the operator's command line.

mod cli;

use clap::{Parser, Subcommand};

/// Refundable x402 payments: the escrow operator.
#[derive(Debug, Parser)]
#[command(name = "x402-escrow", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a local anvil, deploy the contracts and walk payments through their whole lifecycle.
    Demo(cli::demo::DemoArgs),
}

#[tokio::main]
async fn main() -> eyre::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();

    match Cli::parse().command {
        Command::Demo(args) => cli::demo::run(args).await,
    }
}
