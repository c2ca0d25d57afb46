//! `x402-escrow`: the operator's command line.

mod cli;

use clap::{Parser, Subcommand};

/// Refundable x402 payments: the escrow operator.
#[derive(Debug, Parser)]
#[command(name = "x402-escrow", version, about)]
struct Cli {
    #[command(flatten)]
    config: cli::admin::ConfigArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The whole stack on one machine: anvil, contracts, operator, a merchant behind the x402
    /// layer and a buyer with a spend policy (captured, voided, refunded, refused).
    Demo(x402_escrow_demo::DemoArgs),
    /// Load driver: N concurrent buyers through the merchant layer and the operator (a child
    /// process) on anvil; paid requests/s, added latency, operator CPU and RSS, gas per operation.
    Bench(x402_escrow_bench::BenchArgs),
    /// A paying reverse proxy: refundable x402 in front of any HTTP API.
    Gateway(x402_escrow_gateway::GatewayArgs),
    /// Request a URL, paying its x402 challenge under a spend policy.
    Pay(x402_escrow_pay::PayArgs),
    /// The spend-controlled payment service for agents: payment keys with rules,
    /// `POST /v1/fetch`, approvals, the spend ledger (`serve`, `key create`, …).
    Wallet(x402_escrow_wallet::WalletArgs),
    /// Deploy the contracts (CREATE2, the bindings' bytecode) and write
    /// deployments/<chainId>.json as script/Deploy.s.sol does. Key from X402_DEPLOYER_KEY or
    /// --keystore.
    Deploy(cli::deploy::DeployArgs),
    /// A tiny HTTP API to put behind the gateway: GET /report, GET /health.
    SampleApi(cli::sample_api::SampleApiArgs),
    /// Run the operator: HTTP API, engine, relayer, indexer and webhook delivery.
    Serve,
    /// Compare the database with the escrow on chain and report every difference.
    Reconcile {
        /// Check at most this many payments (newest first).
        #[arg(long, default_value_t = 10_000)]
        limit: u32,
        /// The operator's refund account, for checking the refund reserve against the chain
        /// (default: the address of the configured signing key, if any).
        #[arg(long)]
        refund_account: Option<alloy::primitives::Address>,
    },
    /// Create or update the database schema.
    Migrate,
    /// Manage merchants.
    #[command(subcommand)]
    Merchant(cli::admin::MerchantCommand),
    /// Inspect payments.
    #[command(subcommand)]
    Payments(cli::admin::PaymentsCommand),
    /// Operator administration: merchants' refund reserves.
    #[command(subcommand)]
    Admin(cli::reserve::AdminCommand),
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

    let cli = Cli::parse();
    match cli.command {
        Command::Demo(args) => cli::x402::demo(args).await,
        Command::Bench(args) => cli::bench::main(args).await,
        Command::Gateway(args) => Ok(x402_escrow_gateway::run(args).await?),
        Command::Pay(args) => Ok(x402_escrow_pay::run(args).await?),
        Command::Wallet(args) => Ok(x402_escrow_wallet::run(args).await?),
        Command::Deploy(args) => cli::deploy::run(args).await,
        Command::SampleApi(args) => cli::sample_api::run(args).await,
        Command::Serve => cli::serve::serve(&cli.config).await,
        Command::Reconcile {
            limit,
            refund_account,
        } => cli::serve::reconcile(&cli.config, limit, refund_account).await,
        Command::Migrate => cli::admin::migrate(&cli.config).await,
        Command::Merchant(command) => cli::admin::merchant(&cli.config, command).await,
        Command::Payments(command) => cli::admin::payments(&cli.config, command).await,
        Command::Admin(command) => cli::reserve::admin(&cli.config, command).await,
    }
}
