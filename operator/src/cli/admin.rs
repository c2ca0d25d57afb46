//! Administrative subcommands that need only the configuration and the database:
//! `migrate`, `merchant add|list`, `payments list|show`. None of them signs, so none needs a
//! signing key.

use std::path::PathBuf;

use alloy::primitives::Address;
use clap::{Args, Subcommand};
use eyre::{Context, Result, bail};
use uuid::Uuid;
use x402_escrow_operator::config::{Config, Secret};
use x402_escrow_operator::lifecycle::PaymentStatus;
use x402_escrow_operator::service::{payment_view, transaction_views};
use x402_escrow_operator::store::{NewMerchant, PaymentFilter, Store};
use x402_escrow_sdk::merchant::DEFAULT_CAPTURE_DEADLINE_SECS;

/// Where the configuration comes from (shared by every subcommand that reads it).
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// TOML configuration file; `X402_*` environment variables override it.
    #[arg(long, short, env = "X402_CONFIG", global = true)]
    pub config: Option<PathBuf>,
}

impl ConfigArgs {
    /// Loads and validates the configuration.
    pub fn load(&self) -> Result<Config> {
        let config = Config::load(self.config.as_deref()).wrap_err("loading the configuration")?;
        Ok(config)
    }

    /// Opens the configured database and brings its schema up to date.
    pub async fn store(&self) -> Result<Store> {
        let config = self.load()?;
        open_store(&config).await
    }
}

/// Connects to the configured database and runs the embedded migrations.
pub async fn open_store(config: &Config) -> Result<Store> {
    let store = Store::connect(&config.database.url)
        .await
        .wrap_err("connecting to the database")?;
    store.migrate().await.wrap_err("migrating the database")?;
    Ok(store)
}

/// `x402-escrow merchant …`
#[derive(Debug, Subcommand)]
pub enum MerchantCommand {
    /// Register a merchant; prints its API key once (only its hash is stored).
    Add(MerchantAdd),
    /// List merchants.
    List,
}

/// `x402-escrow merchant add`
#[derive(Debug, Args)]
pub struct MerchantAdd {
    /// Display name.
    #[arg(long)]
    pub name: String,
    /// An address this merchant is paid to (repeat for several).
    #[arg(long = "receiver", required = true)]
    pub receivers: Vec<Address>,
    /// Webhook endpoint for payment events.
    #[arg(long)]
    pub webhook_url: Option<String>,
    /// Uncaptured holds are voided this many seconds after authorization.
    /// The default is the one merchant layers assume
    /// (`x402_escrow_sdk::merchant::DEFAULT_CAPTURE_DEADLINE_SECS`); layers built from the
    /// operator's terms follow whatever is set here.
    #[arg(long, default_value_t = DEFAULT_CAPTURE_DEADLINE_SECS as i64)]
    pub capture_deadline_secs: i64,
    /// Print only the API key on stdout (the other details go to stderr), for
    /// `export X402_API_KEY=$(x402-escrow merchant add … --print-api-key)`.
    #[arg(long)]
    pub print_api_key: bool,
}

/// `x402-escrow payments …`
#[derive(Debug, Subcommand)]
pub enum PaymentsCommand {
    /// List payments, newest first.
    List(PaymentsList),
    /// Show one payment with its transactions.
    Show {
        /// The payment id.
        id: Uuid,
    },
}

/// `x402-escrow payments list`
#[derive(Debug, Args)]
pub struct PaymentsList {
    /// Only this merchant's payments.
    #[arg(long)]
    pub merchant: Option<Uuid>,
    /// Only payments in this status (e.g. `authorized`).
    #[arg(long)]
    pub status: Option<PaymentStatus>,
    /// Only payments for this HTTP request id.
    #[arg(long)]
    pub request_id: Option<String>,
    /// At most this many.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
}

/// `x402-escrow migrate`
pub async fn migrate(config: &ConfigArgs) -> Result<()> {
    config.store().await?;
    println!("database schema is up to date");
    Ok(())
}

/// `x402-escrow merchant …`
pub async fn merchant(config: &ConfigArgs, command: MerchantCommand) -> Result<()> {
    if let MerchantCommand::Add(add) = &command
        && add.capture_deadline_secs <= 0
    {
        // Refused before the database is opened (or created).
        bail!("--capture-deadline-secs must be positive");
    }
    let store = config.store().await?;
    match command {
        MerchantCommand::Add(add) => {
            let secret = add
                .webhook_url
                .as_ref()
                .map(|_| x402_escrow_sdk::webhooks::WebhookSecret::generate());
            let new = NewMerchant {
                name: add.name,
                receivers: add.receivers,
                webhook_url: add.webhook_url,
                webhook_secret: secret.as_ref().map(|s| Secret::new(s.expose_secret())),
                capture_deadline_secs: add.capture_deadline_secs,
            };
            let (merchant, api_key) = store.create_merchant(&new).await?;
            if add.print_api_key {
                // stdout carries the key alone; what else is shown once goes to stderr.
                println!("{}", api_key.expose());
                eprintln!("merchant     {}", merchant.id);
                eprintln!("name         {}", merchant.name);
                if let Some(secret) = secret {
                    eprintln!(
                        "webhook key  {}   (shown once; verify webhook signatures with it)",
                        secret.expose_secret()
                    );
                }
                return Ok(());
            }
            println!("merchant     {}", merchant.id);
            println!("name         {}", merchant.name);
            println!(
                "api key      {}   (shown once; store it now)",
                api_key.expose()
            );
            if let Some(secret) = secret {
                println!(
                    "webhook key  {}   (verify webhook signatures with it)",
                    secret.expose_secret()
                );
            }
        }
        MerchantCommand::List => {
            println!("{:<36}  {:<20}  {:<8}  receivers", "id", "name", "deadline");
            for m in store.list_merchants().await? {
                let receivers: Vec<String> = m.receivers.iter().map(ToString::to_string).collect();
                println!(
                    "{:<36}  {:<20}  {:<8}  {}",
                    m.id,
                    m.name,
                    format!("{}s", m.capture_deadline_secs),
                    receivers.join(",")
                );
            }
        }
    }
    Ok(())
}

/// `x402-escrow payments …`
pub async fn payments(config: &ConfigArgs, command: PaymentsCommand) -> Result<()> {
    let store = config.store().await?;
    match command {
        PaymentsCommand::List(list) => {
            let filter = PaymentFilter {
                merchant_id: list.merchant,
                status: list.status,
                request_id: list.request_id,
                limit: Some(list.limit),
                ..PaymentFilter::default()
            };
            println!(
                "{:<36}  {:<18}  {:>14}  {:>14}  {:>14}  request",
                "id", "status", "authorized", "captured", "refunded"
            );
            for p in store.list_payments(&filter).await? {
                println!(
                    "{:<36}  {:<18}  {:>14}  {:>14}  {:>14}  {}",
                    p.id,
                    p.status.as_str(),
                    p.amounts.authorized,
                    p.amounts.captured,
                    p.amounts.refunded,
                    p.request_id.as_deref().unwrap_or("-")
                );
            }
        }
        PaymentsCommand::Show { id } => {
            let payment = store
                .get_payment(id)
                .await
                .wrap_err_with(|| format!("payment {id}"))?;
            let txs = transaction_views(&store, id).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&payment_view(&payment, txs))?
            );
        }
    }
    Ok(())
}
