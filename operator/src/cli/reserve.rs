//! `x402-escrow admin reserve …`: a merchant's refund reserve from the command line — credit it,
//! register the addresses its deposits come from, set its automatic top-up, show its balance and
//! statement. Needs only the configuration and the database (no signing key); the asset
//! defaults to the deployment's token.

use alloy::primitives::Address;
use clap::{Args, Subcommand};
use eyre::{Context, Result, bail, eyre};
use uuid::Uuid;
use x402_escrow_operator::config::Config;
use x402_escrow_operator::runtime::load_deployment;
use x402_escrow_operator::store::ReserveCredit;
use x402_escrow_types::api::decimal;

use super::admin::{ConfigArgs, open_store};

/// `x402-escrow admin …`
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// A merchant's refund reserve (refunds are charged to it).
    #[command(subcommand)]
    Reserve(ReserveCommand),
}

/// `x402-escrow admin reserve …`
#[derive(Debug, Subcommand)]
pub enum ReserveCommand {
    /// Credit a merchant's reserve (an `admin` ledger entry).
    Credit(Credit),
    /// Register an address the merchant deposits its reserve from: token transfers from it to
    /// the operator's refund account are credited to this merchant.
    AddDepositAddress {
        /// The merchant id.
        #[arg(long)]
        merchant: Uuid,
        /// The address.
        #[arg(long)]
        address: Address,
    },
    /// Set (`--bps N`) or remove (`--off`) the automatic top-up: N basis points of each
    /// capture go to the reserve, within the payment's signed fee bounds.
    Topup {
        /// The merchant id.
        #[arg(long)]
        merchant: Uuid,
        /// The share of each capture, in basis points (1..=10000).
        #[arg(long, conflicts_with = "off", required_unless_present = "off")]
        bps: Option<u16>,
        /// Remove the rule.
        #[arg(long)]
        off: bool,
    },
    /// Show a merchant's reserve balances, deposit addresses and top-up rule.
    Show {
        /// The merchant id.
        #[arg(long)]
        merchant: Uuid,
    },
    /// Print a merchant's ledger, newest first.
    Statement {
        /// The merchant id.
        #[arg(long)]
        merchant: Uuid,
        /// At most this many entries.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

/// `x402-escrow admin reserve credit`
#[derive(Debug, Args)]
pub struct Credit {
    /// The merchant id.
    #[arg(long)]
    pub merchant: Uuid,
    /// Token units (e.g. 5000000 for $5.00 of a 6-decimal token).
    #[arg(long)]
    pub amount: String,
    /// The token (default: the deployment's token).
    #[arg(long)]
    pub asset: Option<Address>,
    /// A note kept with the entry.
    #[arg(long)]
    pub note: Option<String>,
}

/// The token an asset-less command means: the deployment's.
fn default_asset(config: &Config, asset: Option<Address>) -> Result<Address> {
    if let Some(asset) = asset {
        return Ok(asset);
    }
    let deployment = load_deployment(config).wrap_err("loading the deployment")?;
    deployment
        .token
        .map(|t| t.address)
        .ok_or_else(|| eyre!("the deployment records no token: pass --asset"))
}

/// `x402-escrow admin …`
pub async fn admin(config: &ConfigArgs, command: AdminCommand) -> Result<()> {
    let AdminCommand::Reserve(command) = command;
    let config = config.load()?;
    // Refused before the database is opened.
    let credit_amount = match &command {
        ReserveCommand::Credit(credit) => {
            let amount = decimal::parse(&credit.amount).map_err(|e| eyre!("--amount: {e}"))?;
            if amount == 0 {
                bail!("--amount must be positive");
            }
            Some(amount)
        }
        ReserveCommand::Topup { bps: Some(bps), .. } if *bps == 0 || *bps > 10_000 => {
            bail!("--bps must be between 1 and 10000")
        }
        _ => None,
    };
    let store = open_store(&config).await?;
    match command {
        ReserveCommand::Credit(credit) => {
            let asset = default_asset(&config, credit.asset)?;
            let entry = store
                .reserve_credit(&ReserveCredit {
                    merchant_id: credit.merchant,
                    asset,
                    amount: credit_amount.unwrap_or_default(),
                    note: credit.note,
                })
                .await
                .wrap_err_with(|| format!("crediting merchant {}", credit.merchant))?;
            println!("entry        {}", entry.id);
            println!("credited     {} of {asset:#x}", entry.amount);
            println!("balance      {}", entry.balance_after);
        }
        ReserveCommand::AddDepositAddress { merchant, address } => {
            store
                .add_deposit_address(merchant, address)
                .await
                .wrap_err_with(|| format!("registering {address:#x} for merchant {merchant}"))?;
            println!("deposits from {address:#x} are credited to merchant {merchant}");
        }
        ReserveCommand::Topup { merchant, bps, .. } => {
            store
                .set_topup_rule(merchant, bps)
                .await
                .wrap_err_with(|| format!("merchant {merchant}"))?;
            match bps {
                Some(bps) => println!("top-up: {bps} bps of each capture of merchant {merchant}"),
                None => println!("top-up off for merchant {merchant}"),
            }
        }
        ReserveCommand::Show { merchant } => {
            store.get_merchant(merchant).await?;
            println!(
                "{:<44}  {:>20}  {:>20}  {:>20}  {:>20}",
                "asset", "balance", "credited", "debited", "released"
            );
            for b in store.reserve_balances(merchant).await? {
                println!(
                    "{:<44}  {:>20}  {:>20}  {:>20}  {:>20}",
                    format!("{:#x}", b.asset),
                    b.balance,
                    b.credited,
                    b.debited,
                    b.released
                );
            }
            for a in store.deposit_addresses(merchant).await? {
                println!("deposit address  {a:#x}");
            }
            match store.topup_rule(merchant).await? {
                Some(bps) => println!("top-up           {bps} bps of each capture"),
                None => println!("top-up           off"),
            }
        }
        ReserveCommand::Statement { merchant, limit } => {
            store.get_merchant(merchant).await?;
            println!(
                "{:<36}  {:<8}  {:>16}  {:>16}  {:<16}  payment / transaction",
                "entry", "kind", "amount", "balance", "reason"
            );
            for e in store.reserve_statement(merchant, None, None, limit).await? {
                let link = match (e.payment_id, e.tx_hash) {
                    (Some(p), _) => p.to_string(),
                    (None, Some(h)) => format!("{h:#x}"),
                    (None, None) => e.note.clone().unwrap_or_default(),
                };
                println!(
                    "{:<36}  {:<8}  {:>16}  {:>16}  {:<16}  {link}",
                    e.id,
                    e.kind.as_str(),
                    e.amount,
                    e.balance_after,
                    e.reason.as_str()
                );
            }
        }
    }
    Ok(())
}
