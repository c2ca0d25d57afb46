//! `x402-escrow wallet …`: the arguments (clap) and what each command does. The binary only
//! parses and calls [`run`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use alloy::providers::{Provider as _, ProviderBuilder};
use clap::{Args, Subcommand};
use reqwest::Url;
use x402_escrow_bindings::Deployment;
use x402_escrow_sdk::escrows::{EscrowDeployment, EscrowRegistry};
use x402_escrow_sdk::types::wallet::{CreateKeyRequest, KeyRules, UpdateKeyRequest};

use crate::buyers::{BuyerKeyError, BuyerSpec, Buyers};
use crate::error::WalletError;
use crate::owner::OwnerPageSettings;
use crate::service::{Wallet, WalletConfig};
use crate::store::{Store, StoreError};
use crate::{api, keys, reconcile};

/// `x402-escrow wallet`.
#[derive(Debug, Clone, Args)]
pub struct WalletArgs {
    /// The wallet's database (SQLite file or PostgreSQL URL).
    #[arg(
        long,
        env = "X402_WALLET_DATABASE",
        default_value = "sqlite://x402-wallet.db?mode=rwc"
    )]
    pub database: String,
    /// What to do.
    #[command(subcommand)]
    pub command: WalletCommand,
}

/// The wallet's commands.
#[derive(Debug, Clone, Subcommand)]
pub enum WalletCommand {
    /// Run the wallet's HTTP API (migrates the database first).
    Serve(Box<ServeArgs>),
    /// Create or update the database schema.
    Migrate,
    /// Manage payment keys (the token is printed once).
    #[command(subcommand)]
    Key(KeyCommand),
    /// The spend ledger, newest first.
    Payments {
        /// Only this key's payments.
        #[arg(long)]
        key: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

/// `x402-escrow wallet key …`.
#[derive(Debug, Clone, Subcommand)]
pub enum KeyCommand {
    /// A new payment key bound to a buyer key; prints its token once.
    Create {
        /// A label.
        #[arg(long)]
        name: String,
        /// The buyer key's name (as in `serve --buyer NAME=…`).
        #[arg(long)]
        buyer: String,
        /// The rules, as JSON (`{"maxPerPayment": "10000", "assets": ["0x…"], …}`) or
        /// `@FILE`.
        #[arg(long)]
        rules: Option<String>,
        /// Unix seconds after which the key stops working.
        #[arg(long)]
        expires_at: Option<i64>,
    },
    /// Every key.
    List,
    /// A new token for the key (the old one stops working); prints it once.
    Rotate {
        /// The key.
        id: String,
    },
    /// Revoke the key for good.
    Revoke {
        /// The key.
        id: String,
    },
    /// The kill switch: stop every payment of the key.
    Disable {
        /// The key.
        id: String,
    },
    /// Undo `disable`.
    Enable {
        /// The key.
        id: String,
    },
}

/// `x402-escrow wallet serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:8404")]
    pub listen: SocketAddr,
    /// A buyer key: `NAME=env:VAR` (hex private key in VAR) or `NAME=keystore:PATH` (an
    /// encrypted JSON keystore). Repeatable.
    #[arg(long = "buyer", required = true)]
    pub buyers: Vec<BuyerSpec>,
    /// The variable holding the keystores' password.
    #[arg(long, default_value = "X402_WALLET_KEYSTORE_PASSWORD")]
    pub keystore_password_env: String,
    /// The variable holding the owner's token (at least 16 characters).
    #[arg(long, default_value = "X402_WALLET_OWNER_TOKEN")]
    pub owner_token_env: String,
    /// Notified when a payment waits for approval.
    #[arg(long)]
    pub owner_webhook: Option<Url>,
    /// Also sign for the escrow of this deployment record (e.g. deployments/31337.json).
    #[arg(long)]
    pub deployment: Option<PathBuf>,
    /// A JSON-RPC endpoint: reconcile payments with the chain (voids, refunds, expiries).
    #[arg(long)]
    pub rpc_url: Option<Url>,
    /// Seconds between reconcile passes.
    #[arg(long, default_value_t = 30)]
    pub reconcile_interval_secs: u64,
    /// Largest API request body, bytes.
    #[arg(long, default_value_t = 1024 * 1024)]
    pub max_request_body: usize,
    /// Largest resource body returned by /v1/fetch, bytes.
    #[arg(long, default_value_t = 4 * 1024 * 1024)]
    pub max_response_body: usize,
    /// Mark the owner page's session cookie `Secure` (the wallet is reached over https).
    #[arg(long)]
    pub secure_cookie: bool,
    /// Hours an owner page session lasts after sign-in.
    #[arg(long, default_value_t = 8)]
    pub owner_session_hours: u64,
}

/// Why a wallet command failed.
#[derive(Debug, thiserror::Error)]
pub enum WalletCliError {
    /// The wallet refused or failed.
    #[error(transparent)]
    Wallet(#[from] WalletError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A buyer key could not be loaded.
    #[error(transparent)]
    Buyer(#[from] BuyerKeyError),
    /// A setting is missing or wrong.
    #[error("{0}")]
    Setting(String),
    /// Serving failed.
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
}

fn read_rules(text: Option<&str>) -> Result<KeyRules, WalletCliError> {
    let Some(text) = text else {
        return Ok(KeyRules::default());
    };
    let json = match text.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| WalletCliError::Setting(format!("--rules {path}: {e}")))?,
        None => text.to_owned(),
    };
    serde_json::from_str(&json).map_err(|e| WalletCliError::Setting(format!("--rules: {e}")))
}

/// Runs a wallet command.
pub async fn run(args: WalletArgs) -> Result<(), WalletCliError> {
    let store = Store::connect(&args.database).await?;
    store.migrate().await?;
    match args.command {
        WalletCommand::Serve(serve_args) => serve(store, *serve_args).await,
        WalletCommand::Migrate => {
            println!("wallet database is up to date");
            Ok(())
        }
        WalletCommand::Key(command) => key_command(&store, command).await,
        WalletCommand::Payments { key, limit } => {
            for p in store
                .payments_page(key.as_deref(), None, None, limit.clamp(1, 10_000))
                .await?
            {
                println!(
                    "{}  {:<16} {:>14}  {:<12} {}{}",
                    p.id,
                    p.state.as_str(),
                    p.amount.to_string(),
                    p.scheme.as_deref().unwrap_or("-"),
                    p.url,
                    p.rule.map(|r| format!("  (rule {r})")).unwrap_or_default()
                );
            }
            Ok(())
        }
    }
}

async fn key_command(store: &Store, command: KeyCommand) -> Result<(), WalletCliError> {
    match command {
        KeyCommand::Create {
            name,
            buyer,
            rules,
            expires_at,
        } => {
            let created = keys::create(
                store,
                CreateKeyRequest {
                    name,
                    buyer,
                    rules: read_rules(rules.as_deref())?,
                    expires_at,
                },
            )
            .await?;
            println!("key   {}", created.key.id);
            println!("token {}", created.token);
            println!("(the token is shown once: only its SHA-256 is stored)");
        }
        KeyCommand::List => {
            for key in store.keys().await? {
                let status = if key.revoked_at.is_some() {
                    "revoked"
                } else if key.disabled {
                    "disabled"
                } else {
                    "active"
                };
                println!(
                    "{}  {:<8} buyer {:<12} {}  rules {}",
                    key.id,
                    status,
                    key.buyer,
                    key.name,
                    serde_json::to_string(&key.rules).unwrap_or_default()
                );
            }
        }
        KeyCommand::Rotate { id } => {
            let created = keys::rotate(store, &id).await?;
            println!("key   {}", created.key.id);
            println!("token {}", created.token);
        }
        KeyCommand::Revoke { id } => {
            keys::revoke(store, &id).await?;
            println!("key {id} revoked");
        }
        KeyCommand::Disable { id } => {
            keys::update(
                store,
                &id,
                UpdateKeyRequest {
                    disabled: Some(true),
                    rules: None,
                },
            )
            .await?;
            println!("key {id} disabled");
        }
        KeyCommand::Enable { id } => {
            keys::update(
                store,
                &id,
                UpdateKeyRequest {
                    disabled: Some(false),
                    rules: None,
                },
            )
            .await?;
            println!("key {id} enabled");
        }
    }
    Ok(())
}

async fn serve(store: Store, args: ServeArgs) -> Result<(), WalletCliError> {
    let owner_token = std::env::var(&args.owner_token_env).map_err(|_| {
        WalletCliError::Setting(format!(
            "set {} to the owner's token (at least 16 characters)",
            args.owner_token_env
        ))
    })?;
    let buyers = Buyers::load(&args.buyers, &args.keystore_password_env)?;
    let mut registry = EscrowRegistry::canonical();
    if let Some(path) = &args.deployment {
        let deployment = Deployment::load(path)
            .map_err(|e| WalletCliError::Setting(format!("--deployment: {e}")))?;
        registry.register_default(EscrowDeployment::from(&deployment));
    }
    let mut config = WalletConfig::new(owner_token);
    config.owner_webhook = args.owner_webhook;
    config.reconcile_interval = Duration::from_secs(args.reconcile_interval_secs.max(1));
    config.max_request_body = args.max_request_body;
    config.max_response_body = args.max_response_body;
    config.owner_page = OwnerPageSettings {
        secure_cookie: args.secure_cookie,
        session_ttl: Duration::from_secs(args.owner_session_hours.clamp(1, 24 * 30) * 3600),
    };
    let mut wallet = Wallet::new(store, buyers, registry, config)?;
    if let Some(url) = args.rpc_url {
        wallet = wallet.with_chain(ProviderBuilder::new().connect_http(url).erased());
    }
    let reconciler = tokio::spawn(reconcile::reconcile_loop(wallet.clone()));
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    eprintln!("wallet listening on http://{}", listener.local_addr()?);
    eprintln!(
        "owner page: http://{}/owner (sign in with the owner token)",
        listener.local_addr()?
    );
    for (name, address) in wallet.buyers().addresses() {
        eprintln!("buyer {name}: {address}");
    }
    axum::serve(listener, api::router(wallet))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    reconciler.abort();
    Ok(())
}
