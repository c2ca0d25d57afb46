//! One running operator, assembled from a [`Config`]: the store, the signer, the engine, the
//! relayer, the indexer, the webhook worker and the HTTP API, each in its own task, all stopped
//! by one shutdown signal. `x402-escrow serve`, the demo and the end-to-end tests start it the
//! same way.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::Address;
use alloy::providers::{DynProvider, Provider};
use alloy::signers::local::PrivateKeySigner;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use x402_escrow_bindings::{Deployment, Deployments};

use crate::api::{self, ApiState, Readiness};
use crate::config::{Config, SignerSource};
use crate::engine::{self, Engine, FeePolicy};
use crate::indexer::{Indexer, IndexerConfig};
use crate::relayer::{self, Relayer};
use crate::store::{Store, StoreOptions};
use crate::verify::Verifier;
use crate::webhooks::{WebhookWorker, WebhookWorkerConfig};

mod error;

pub use error::{ChainError, DeploymentError, RpcUrlError, RuntimeError, SignerError};

/// Loads the signing key named by the configuration (the primary lane's).
pub fn load_signer(config: &Config) -> Result<PrivateKeySigner, RuntimeError> {
    let mut lanes = load_lanes(config)?;
    Ok(lanes.remove(0))
}

/// Loads every signer lane's key, in lane order (at least one). Two lanes with the same
/// address are refused.
pub fn load_lanes(config: &Config) -> Result<Vec<PrivateKeySigner>, RuntimeError> {
    let sources = config.signer.sources().map_err(SignerError::Config)?;
    if sources.is_empty() {
        return Err(SignerError::Missing.into());
    }
    let several = !config.signer.private_keys.is_empty();
    let mut lanes: Vec<PrivateKeySigner> = Vec::with_capacity(sources.len());
    for (index, source) in sources.into_iter().enumerate() {
        let key = match source {
            SignerSource::PrivateKey(key) => key
                .expose()
                .trim()
                .parse::<PrivateKeySigner>()
                .map_err(|e| {
                    if several {
                        SignerError::LaneNotAKey { index, source: e }
                    } else {
                        SignerError::NotAKey(e)
                    }
                })?,
            SignerSource::Keystore { path, password } => {
                PrivateKeySigner::decrypt_keystore(&path, password.expose())
                    .map_err(|source| SignerError::Keystore { path, source })?
            }
        };
        if let Some(first) = lanes.iter().position(|l| l.address() == key.address()) {
            return Err(SignerError::DuplicateLane {
                first,
                second: index,
                address: key.address(),
            }
            .into());
        }
        lanes.push(key);
    }
    Ok(lanes)
}

/// The contracts for the configured chain: the deployments file (a single `<chainId>.json` or a
/// directory of them), else the canonical deployments built into the bindings.
pub fn load_deployment(config: &Config) -> Result<Deployment, RuntimeError> {
    let chain_id = config.chain.chain_id;
    let from_dir = |dir: &Path| {
        Deployments::load_dir(dir)
            .map_err(DeploymentError::Load)?
            .get(chain_id)
            .cloned()
            .ok_or_else(|| DeploymentError::NotInDir {
                dir: dir.to_owned(),
                chain_id,
            })
    };
    let deployment = match &config.chain.deployments {
        Some(path) if path.is_dir() => from_dir(path)?,
        Some(path) => Deployment::load(path).map_err(DeploymentError::Load)?,
        None => Deployments::canonical()
            .map_err(DeploymentError::Load)?
            .get(chain_id)
            .cloned()
            .ok_or(DeploymentError::NoCanonical { chain_id })?,
    };
    if deployment.chain_id != chain_id {
        return Err(DeploymentError::WrongChain {
            deployment: deployment.chain_id,
            configured: chain_id,
        }
        .into());
    }
    Ok(deployment)
}

/// A started operator, running on a tokio runtime of its own, so that [`RunningOperator::abort`]
/// ends every task it ever spawned (HTTP connections and detached handlers included), the way a
/// killed process would. Dropping it aborts it; [`RunningOperator::shutdown`] stops it gracefully.
pub struct RunningOperator {
    /// Where the HTTP API listens.
    pub address: SocketAddr,
    /// The primary signer's address (the `captureAuthorizer` named where one is asked for).
    pub signer: Address,
    /// Every signer lane's address, the primary first (a payment may name any of them).
    pub lanes: Vec<Address>,
    /// The contracts in use.
    pub deployment: Deployment,
    /// The engine (also reachable over HTTP).
    pub engine: Engine,
    /// The store.
    pub store: Store,
    shutdown: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl RunningOperator {
    /// Signals every task to stop and waits for them (requests in flight finish first).
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for (name, task) in std::mem::take(&mut self.tasks) {
            if let Err(e) = task.await {
                tracing::error!(task = name, error = %e, "operator task ended abnormally");
            }
        }
        // Drop shuts the (now idle) runtime down.
    }

    /// Kills the operator at once, mid-flight: every task on its runtime stops at its next
    /// await point and nothing more reaches the database or the chain. What a crash looks like
    /// to the rest of the world (used by the crash tests).
    pub fn abort(self) {
        drop(self);
    }
}

impl Drop for RunningOperator {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Safe inside an async context, unlike dropping the runtime: it does not wait.
            runtime.shutdown_background();
        }
    }
}

/// A future that resolves once `rx` sees `true` (or its sender is gone).
fn stopped(mut rx: watch::Receiver<bool>) -> impl Future<Output = ()> + Send + 'static {
    async move {
        while !*rx.borrow_and_update() {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }
}

/// What every command that talks to the chain needs: the key, the contracts, the store, a
/// provider checked to be on the configured chain, and an engine over them.
pub struct Core {
    /// The gas key (the primary lane's).
    pub signer: PrivateKeySigner,
    /// Every lane's key, the primary first.
    pub lanes: Vec<PrivateKeySigner>,
    /// The contracts.
    pub deployment: Deployment,
    /// The store, migrated.
    pub store: Store,
    /// A provider without fillers (reads, `eth_call`).
    pub provider: DynProvider,
    /// The engine (its relayer wake-up is `relayer_notify`).
    pub engine: Engine,
    /// The wake-up the engine sends after writing to the outbox.
    pub relayer_notify: Arc<Notify>,
}

/// Loads key and contracts, opens and migrates the store, checks the chain id, builds the engine.
pub async fn open(config: &Config) -> Result<Core, RuntimeError> {
    config.validate().map_err(RuntimeError::Config)?;
    let lanes = load_lanes(config)?;
    let addresses: Vec<Address> = lanes.iter().map(|l| l.address()).collect();
    let reader = open_reader(config, &addresses).await?;
    check_no_lane_retired(&reader.store, config.chain.chain_id, &addresses).await?;
    Ok(Core {
        signer: lanes[0].clone(),
        lanes,
        deployment: reader.deployment,
        store: reader.store,
        provider: reader.provider,
        engine: reader.engine,
        relayer_notify: reader.relayer_notify,
    })
}

/// Every operator address that live payments name (until their `refundExpiry`) must be one of
/// the configured `lanes`: the escrow takes their capture, void and refund only from it, so a
/// signing command refuses to run without its key ([`RuntimeError::LaneRetired`]).
async fn check_no_lane_retired(
    store: &Store,
    chain_id: u64,
    lanes: &[Address],
) -> Result<(), RuntimeError> {
    let now = x402_escrow_sdk::buyer::unix_now();
    let in_use = store.operators_in_use(chain_id, now).await?;
    match in_use.iter().find(|o| !lanes.contains(&o.operator)) {
        Some(retired) => Err(RuntimeError::LaneRetired {
            operator: retired.operator,
            payments: retired.payments,
            until: retired.until,
        }),
        None => Ok(()),
    }
}

/// An engine that only reads, for commands that never sign (`reconcile`): the store and a
/// provider checked to be on the configured chain, without a signing key. Its operator address
/// is the zero address: only verification and sending consult it, and a reader does neither.
pub async fn open_read_only(config: &Config) -> Result<Engine, RuntimeError> {
    config.validate().map_err(RuntimeError::Config)?;
    Ok(open_reader(config, &[]).await?.engine)
}

/// What [`open`] and [`open_read_only`] share: everything but the key.
struct Reader {
    deployment: Deployment,
    store: Store,
    provider: DynProvider,
    engine: Engine,
    relayer_notify: Arc<Notify>,
}

/// `lanes`: every signer lane's address, the primary first (empty: a reader, whose operator is
/// the zero address).
async fn open_reader(config: &Config, lanes: &[Address]) -> Result<Reader, RuntimeError> {
    let operator = lanes.first().copied().unwrap_or(Address::ZERO);
    let deployment = load_deployment(config)?;

    let store = Store::connect_with(
        &config.database.url,
        &StoreOptions {
            max_connections: config.database.max_connections,
            sqlite_synchronous: config.database.sqlite_synchronous,
            ..StoreOptions::default()
        },
    )
    .await?;
    store.migrate().await?;

    let url = config.chain.rpc_url.parse().map_err(RuntimeError::RpcUrl)?;
    let provider: DynProvider =
        relayer::http_provider_with_timeout(url, config.chain.rpc_timeout());
    let node_chain = provider
        .get_chain_id()
        .await
        .map_err(|source| ChainError::Unreachable {
            url: config.chain.rpc_url.clone(),
            source,
        })?;
    if node_chain != config.chain.chain_id {
        return Err(ChainError::WrongChain {
            url: config.chain.rpc_url.clone(),
            node: node_chain,
            configured: config.chain.chain_id,
        }
        .into());
    }

    let fees = FeePolicy {
        fee_bps: config.fees.bps,
        fee_receiver: config.fees.receiver.unwrap_or(operator),
    };
    let (mut verifier_config, engine_config) = engine::configs(
        config,
        &deployment,
        operator,
        fees,
        config.fees.accept_canonical_escrow,
    );
    verifier_config.lanes = lanes.to_vec();
    let relayer_notify = Arc::new(Notify::new());
    let engine = Engine::new(
        store.clone(),
        provider.clone(),
        Verifier::new(provider.clone(), verifier_config),
        engine_config,
        relayer_notify.clone(),
    );
    Ok(Reader {
        deployment,
        store,
        provider,
        engine,
        relayer_notify,
    })
}

/// How long start-up waits for the signer's delegation to the batch executor.
pub const DELEGATION_WAIT: Duration = Duration::from_secs(30);

/// With batching through the executor, waits (up to [`DELEGATION_WAIT`]) until the signer's
/// account delegates to it: the relayer's first pass sends the `delegate` transaction (once per
/// signer, ever) and holds other work until it is mined, so start-up returns once payments can
/// go out batched. Gives up with a warning (payments then go out one by one until it lands).
async fn wait_for_delegation(
    provider: &DynProvider,
    config: &Config,
    deployment: &Deployment,
    lanes: &[Address],
) {
    let batch = crate::relayer::BatchOptions::from_config(config, deployment);
    let Some(executor) = batch.executor.filter(|_| batch.enabled()) else {
        return;
    };
    let deadline = tokio::time::Instant::now() + DELEGATION_WAIT;
    let mut waiting: Vec<Address> = lanes.to_vec();
    loop {
        let mut still = Vec::with_capacity(waiting.len());
        for signer in waiting {
            match provider.get_code_at(signer).await {
                Ok(code) if relayer::delegated_to(&code) == Some(executor) => {}
                Ok(_) => still.push(signer),
                Err(e) => {
                    tracing::debug!(error = %e, %signer, "reading the signer's code");
                    still.push(signer);
                }
            }
        }
        waiting = still;
        if waiting.is_empty() {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(%executor, signers = ?waiting, "signers do not delegate to the batch executor yet; their escrow calls go out one by one until they do");
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Applies every settled chain transaction of one lane's relayer in the engine (at least once;
/// the engine's handler is idempotent, and its own sweep re-scans anything missed while
/// lagging).
fn apply_outcomes(
    handle: &relayer::RelayerHandle,
    engine: Engine,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let mut outcomes = handle.subscribe();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                next = outcomes.recv() => match next {
                    Ok(outcome) => {
                        if let Err(e) = engine.on_tx_outcome(outcome.chain_tx_id).await {
                            tracing::warn!(chain_tx = %outcome.chain_tx_id, error = %e, "applying a transaction outcome failed; the sweep will retry");
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "outcome stream lagged; re-scanning");
                        if let Err(e) = engine.process_outcomes().await {
                            tracing::warn!(error = %e, "re-scanning outcomes failed; the sweep will retry");
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    })
}

/// One lane's relayer as the instance's wake-ups see it.
#[derive(Clone)]
struct LaneWake {
    address: Address,
    handle: relayer::RelayerHandle,
}

/// Wakes the relayers of `lanes` this instance holds (`only`: just that lane's). Relayers of
/// lanes held elsewhere look for a free lease on their own timer.
fn wake_held(lanes: &[LaneWake], only: Option<Address>) {
    for lane in lanes {
        if only.is_none_or(|a| a == lane.address) && lane.handle.health().lease_held {
            lane.handle.wake();
        }
    }
}

/// The instance's heartbeat (`operator_instances`): every third of a lease length, records it
/// is alive and updates the lane share with the number of live instances; on shutdown removes
/// the row, so the others take its lanes at once.
async fn heartbeat(
    store: Store,
    chain_id: u64,
    instance: String,
    ttl: Duration,
    share: Arc<relayer::LaneShare>,
    stop: watch::Receiver<bool>,
) {
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let every = (ttl / 3).max(Duration::from_millis(100));
    let stop = stopped(stop);
    tokio::pin!(stop);
    loop {
        match store.heartbeat_instance(chain_id, &instance, ttl_ms).await {
            Ok(live) => {
                if live != share.live() {
                    tracing::info!(live, lanes = share.lanes(), "operator instances alive");
                }
                share.set_live(live);
            }
            Err(e) => tracing::warn!(error = %e, "instance heartbeat failed"),
        }
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::time::sleep(every) => {}
        }
    }
    if let Err(e) = store.retire_instance(chain_id, &instance).await {
        tracing::warn!(error = %e, "removing the instance heartbeat failed");
    }
}

/// PostgreSQL only: `LISTEN`s on [`OUTBOX_CHANNEL`](crate::store::OUTBOX_CHANNEL) and wakes the
/// relayer of the lane a new outbox row names, if this instance holds it — so a row written by
/// another instance goes out at once instead of at the holder's next poll; and on
/// [`PAYMENT_CHANNEL`](crate::store::PAYMENT_CHANNEL), waking this instance's requests waiting on
/// a payment whose outcome another instance applied. Polling stays the fallback (a notification
/// lost while the connection is down is found by the next pass or re-read).
async fn listen_outbox(
    url: String,
    lanes: Vec<LaneWake>,
    engine: Engine,
    stop: watch::Receiver<bool>,
) {
    use sqlx::postgres::PgListener;
    let stop = stopped(stop);
    tokio::pin!(stop);
    let mut retry = Duration::from_millis(200);
    loop {
        let connected = async {
            let mut listener = PgListener::connect(&url).await?;
            listener
                .listen_all([crate::store::OUTBOX_CHANNEL, crate::store::PAYMENT_CHANNEL])
                .await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let mut listener = tokio::select! {
            _ = &mut stop => return,
            connected = connected => match connected {
                Ok(listener) => listener,
                Err(e) => {
                    tracing::warn!(error = %e, retry_ms = retry.as_millis() as u64, "cannot LISTEN for outbox rows; relayers poll meanwhile");
                    tokio::select! {
                        _ = &mut stop => return,
                        _ = tokio::time::sleep(retry) => {}
                    }
                    retry = (retry * 2).min(Duration::from_secs(10));
                    continue;
                }
            },
        };
        tracing::debug!("listening for outbox rows");
        retry = Duration::from_millis(200);
        loop {
            tokio::select! {
                _ = &mut stop => return,
                next = listener.recv() => match next {
                    Ok(n) if n.channel() == crate::store::PAYMENT_CHANNEL => {
                        if let Ok(id) = n.payload().parse::<uuid::Uuid>() {
                            engine.wake_waiters(id);
                        }
                    }
                    Ok(n) => wake_held(&lanes, n.payload().parse::<Address>().ok()),
                    Err(e) => {
                        tracing::warn!(error = %e, "outbox LISTEN connection failed; reconnecting");
                        // Rows announced while it was down: a pass looks at them now.
                        wake_held(&lanes, None);
                        break;
                    }
                },
            }
        }
    }
}

/// Opens the store, checks the chain, and starts every component. The API listens on
/// `config.listen` (`127.0.0.1:0` picks a free port; see [`RunningOperator::address`]).
pub async fn start(config: Config) -> Result<RunningOperator, RuntimeError> {
    let Core {
        signer,
        lanes,
        deployment,
        store,
        provider,
        engine,
        relayer_notify,
    } = open(&config).await?;
    let instance = config.instance_id();
    let lane_addresses: Vec<Address> = lanes.iter().map(|l| l.address()).collect();

    // One relayer per lane, each taking its lane's lease within the instance's fair share.
    let share = Arc::new(relayer::LaneShare::new(lanes.len()));
    let lease_ttl = Duration::from_secs(config.relayer.lease_ttl_secs);
    share.set_live(
        store
            .heartbeat_instance(
                config.chain.chain_id,
                &instance,
                i64::try_from(lease_ttl.as_millis()).unwrap_or(i64::MAX),
            )
            .await?,
    );
    let mut relayers = Vec::with_capacity(lanes.len());
    let mut lane_wakes = Vec::with_capacity(lanes.len());
    for key in &lanes {
        // One lane: the engine wakes its relayer directly. Several: through `wake_held`.
        let notify = if lanes.len() == 1 {
            relayer_notify.clone()
        } else {
            Arc::new(Notify::new())
        };
        let relayer = Relayer::from_config(
            store.clone(),
            &config,
            &deployment,
            key.clone(),
            instance.clone(),
        )
        .map_err(|e| RuntimeError::component("relayer", e))?
        .with_notify(notify)
        .with_share(share.clone());
        lane_wakes.push(LaneWake {
            address: key.address(),
            handle: relayer.handle(),
        });
        relayers.push(relayer);
    }
    let escrow = config
        .chain
        .contracts
        .escrow
        .unwrap_or(deployment.auth_capture_escrow);
    let indexer = Indexer::new(
        store.clone(),
        provider.clone(),
        IndexerConfig::from_chain_config(&config.chain, escrow),
    )
    .with_deposits(crate::indexer::DepositWatch {
        refund_account: engine.config().signer,
        tokens: engine.config().assets.iter().map(|a| a.address).collect(),
    });
    let webhooks = WebhookWorker::new(
        store.clone(),
        WebhookWorkerConfig::from_config(&config.webhooks),
        format!("{instance}-webhooks"),
    )
    .map_err(|e| RuntimeError::component("webhooks", e))?
    .with_notifier(Arc::new(Notify::new()));

    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|source| RuntimeError::Listen {
            address: config.listen.clone(),
            source,
        })?;
    let address = listener
        .local_addr()
        .map_err(|source| RuntimeError::Listen {
            address: config.listen.clone(),
            source,
        })?;

    let mut state = ApiState::new(Arc::new(engine.clone()), store.clone()).with_config(&config);
    let rpc = provider.clone();
    state.readiness = Readiness::new()
        .with_database(store.clone())
        .with_check("rpc", move || {
            let rpc = rpc.clone();
            async move {
                rpc.get_block_number()
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        })
        .with_lane_leases(store.clone(), config.chain.chain_id, lane_addresses.clone());
    state.tx_queue_signer = Some((config.chain.chain_id, signer.address()));

    let (shutdown, rx) = watch::channel(false);
    let sweep = Duration::from_secs(config.auto_void.sweep_interval_secs.max(1));
    let mut tasks: Vec<(&'static str, JoinHandle<()>)> = Vec::new();

    for (relayer, lane) in relayers.into_iter().zip(&lane_wakes) {
        tasks.push(("relayer", tokio::spawn(relayer.run(stopped(rx.clone())))));
        // Every settled chain transaction goes to the engine.
        tasks.push((
            "outcomes",
            apply_outcomes(&lane.handle, engine.clone(), rx.clone()),
        ));
    }
    tasks.push((
        "heartbeat",
        tokio::spawn(heartbeat(
            store.clone(),
            config.chain.chain_id,
            instance.clone(),
            lease_ttl,
            share.clone(),
            rx.clone(),
        )),
    ));
    if lane_wakes.len() > 1 {
        // The engine's wake-up after writing to the outbox reaches every lane held here.
        let lanes = lane_wakes.clone();
        let notify = relayer_notify.clone();
        let stop = stopped(rx.clone());
        tasks.push((
            "lane wake-ups",
            tokio::spawn(async move {
                tokio::pin!(stop);
                loop {
                    tokio::select! {
                        _ = &mut stop => return,
                        _ = notify.notified() => wake_held(&lanes, None),
                    }
                }
            }),
        ));
    }
    if store.backend() == crate::store::Backend::Postgres {
        tasks.push((
            "outbox listener",
            tokio::spawn(listen_outbox(
                config.database.url.clone(),
                lane_wakes.clone(),
                engine.clone(),
                rx.clone(),
            )),
        ));
    }
    let engine_loop = engine.clone();
    let engine_stop = rx.clone();
    tasks.push((
        "engine",
        tokio::spawn(async move { engine_loop.run(sweep, engine_stop).await }),
    ));
    let indexer_stop = rx.clone();
    tasks.push((
        "indexer",
        tokio::spawn(async move { indexer.run(indexer_stop).await }),
    ));
    tasks.push(("webhooks", tokio::spawn(webhooks.run(stopped(rx.clone())))));
    tasks.push((
        "idempotency",
        tokio::spawn(api::idempotency::expire_task(
            store.clone(),
            Duration::from_secs(3600),
            stopped(rx.clone()),
        )),
    ));
    // The x402 facilitator endpoints (/supported, /verify, /settle) sit beside the REST API, outside
    // its Idempotency-Key layer (x402 middleware retries with the payment-identifier extension),
    // under its request id and HTTP metrics layers. payment-identifier records are kept as long
    // as Idempotency-Keys ([idempotency]).
    let facilitator_settings = api::facilitator::FacilitatorSettings {
        retention: Duration::from_secs(config.idempotency.retention_hours.saturating_mul(3600)),
        ..api::facilitator::FacilitatorSettings::default()
    };
    let app = api::router_with_facilitator(state, facilitator_settings);
    let api_stop = stopped(rx.clone());
    tasks.push((
        "api",
        tokio::spawn(async move {
            if let Err(e) = api::serve(listener, app, api_stop).await {
                tracing::error!(error = %e, "the HTTP API stopped");
            }
        }),
    ));

    wait_for_delegation(&provider, &config, &deployment, &lane_addresses).await;
    tracing::info!(%address, signer = %signer.address(), lanes = lane_addresses.len(), escrow = %escrow, chain = config.chain.chain_id, "operator started");
    Ok(RunningOperator {
        address,
        signer: signer.address(),
        lanes: lane_addresses,
        deployment,
        engine,
        store,
        shutdown,
        tasks,
        runtime: None,
    })
}
