//! Gas per capture (and per void): batches of 1, 10 and 50 against single transactions.
//!
//! ```sh
//! cargo run -p x402-escrow-operator --example batch_gas
//! ```
//!
//! Starts the pinned anvil, deploys the contracts with the deploy-profile bytecode
//! (`x402_escrow_bindings::deploy_all`), authorizes holds through the ERC-3009 collector, and
//! measures each transaction's `gasUsed` from its receipt (the 21,000 base cost and calldata
//! included). One warm-up capture and void come first, so the operator's TokenStore exists and
//! the receiver's and fee receiver's balances are non-zero in every measured transaction alike;
//! one hold is left uncaptured throughout, so no measured transaction empties the TokenStore
//! (which would earn a 4,800 gas storage refund).
//! Every payment is distinct (own salt), with the same payer, receiver and fee receiver (one
//! merchant). Prints Markdown tables.
//!
//! Then the operator itself (`runtime::start`, SQLite): 50 payments authorized through its
//! engine, captured by 50 concurrent requests, once with `[batch] max_size = 1` (no batching)
//! and once with the defaults; the table gives what its outbox sent (`chain_txs.gas_used`).

use alloy::contract::{CallBuilder, CallDecoder};
use alloy::network::EthereumWallet;
use alloy::node_bindings::Anvil;
use alloy::primitives::aliases::{U48, U120};
use alloy::primitives::{Address, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use eyre::{Result, ensure, eyre};
use x402_escrow_bindings::contracts::auth_capture_escrow::AuthCaptureEscrow as Escrow;
use x402_escrow_bindings::deploy::DEFAULT_SALT;
use x402_escrow_bindings::eip3009::Authorization;
use x402_escrow_bindings::{
    AuthCaptureEscrow, Deployment, PaymentInfo, ReceiveWithAuthorization, TestUSDC, deploy_all,
};
use x402_escrow_operator::config::{Config, Secret};
use x402_escrow_operator::lifecycle::PaymentStatus;
use x402_escrow_operator::runtime;
use x402_escrow_operator::service::{AuthorizeRequest, CaptureRequest, PaymentService};
use x402_escrow_operator::store::NewMerchant;

const USDC: u64 = 1_000_000;
const AMOUNT: u64 = USDC;
const FEE_BPS: u16 = 100;
/// Single transactions measured per operation.
const SINGLES: usize = 50;
/// Batch sizes measured.
const SIZES: [usize; 3] = [1, 10, 50];

struct Bench {
    deployment: Deployment,
    operator: DynProvider,
    operator_address: Address,
    payer: PrivateKeySigner,
    receiver: Address,
    fee_receiver: Address,
    now: u64,
    salt: u64,
}

impl Bench {
    fn escrow(&self) -> AuthCaptureEscrow::AuthCaptureEscrowInstance<DynProvider> {
        AuthCaptureEscrow::new(self.deployment.auth_capture_escrow, self.operator.clone())
    }

    fn info(&mut self) -> Result<PaymentInfo> {
        self.salt += 1;
        let token = self
            .deployment
            .token
            .as_ref()
            .ok_or_else(|| eyre!("no token"))?;
        Ok(PaymentInfo {
            operator: self.operator_address,
            payer: self.payer.address(),
            receiver: self.receiver,
            token: token.address,
            maxAmount: U120::from(AMOUNT),
            preApprovalExpiry: U48::from(self.now + 3_600),
            authorizationExpiry: U48::from(self.now + 7_200),
            refundExpiry: U48::from(self.now + 86_400),
            minFeeBps: 0,
            maxFeeBps: 500,
            feeReceiver: Address::ZERO,
            salt: U256::from(self.salt),
        })
    }

    /// `n` authorized holds of `AMOUNT`.
    async fn holds(&mut self, n: usize) -> Result<Vec<PaymentInfo>> {
        let token = self
            .deployment
            .token
            .clone()
            .ok_or_else(|| eyre!("no token"))?;
        let domain = token.domain(self.deployment.chain_id);
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let info = self.info()?;
            let signature = ReceiveWithAuthorization::for_payment(
                &info,
                self.deployment.erc3009_payment_collector,
                self.deployment.chain_id,
                self.deployment.auth_capture_escrow,
            )
            .sign(&self.payer, &domain)?;
            let receipt = self
                .escrow()
                .authorize(
                    info.clone(),
                    U256::from(AMOUNT),
                    self.deployment.erc3009_payment_collector,
                    signature,
                )
                .send()
                .await?
                .get_receipt()
                .await?;
            ensure!(receipt.status(), "authorize reverted");
            out.push(info);
        }
        Ok(out)
    }

    fn capture_request(&self, info: &PaymentInfo) -> Escrow::CaptureRequest {
        Escrow::CaptureRequest {
            paymentInfo: info.clone(),
            amount: U256::from(AMOUNT),
            feeBps: FEE_BPS,
            feeReceiver: self.fee_receiver,
        }
    }

    async fn capture(&self, info: &PaymentInfo) -> Result<u64> {
        let escrow = self.escrow();
        let call = escrow.capture(info.clone(), U256::from(AMOUNT), FEE_BPS, self.fee_receiver);
        if info.salt == U256::from(self.salt) {
            println!(
                "<!-- capture: calldata {} bytes, {} gas -->",
                call.calldata().len(),
                calldata_gas(call.calldata())
            );
        }
        gas_used(call, "capture").await
    }

    async fn capture_batch(&self, infos: &[PaymentInfo]) -> Result<u64> {
        let requests = infos.iter().map(|i| self.capture_request(i)).collect();
        let escrow = self.escrow();
        let call = escrow.captureBatch(requests);
        println!(
            "<!-- captureBatch of {}: calldata {} bytes, {} gas -->",
            infos.len(),
            call.calldata().len(),
            calldata_gas(call.calldata())
        );
        gas_used(call, "captureBatch").await
    }

    async fn void(&self, info: &PaymentInfo) -> Result<u64> {
        gas_used(self.escrow().void(info.clone()), "void").await
    }

    async fn void_batch(&self, infos: &[PaymentInfo]) -> Result<u64> {
        gas_used(self.escrow().voidBatch(infos.to_vec()), "voidBatch").await
    }
}

/// Sends `call` and returns the gasUsed of its receipt (an error if `what` reverted).
async fn gas_used<D: CallDecoder>(call: CallBuilder<&DynProvider, D>, what: &str) -> Result<u64> {
    let receipt = call.send().await?.get_receipt().await?;
    ensure!(receipt.status(), "{what} reverted");
    Ok(receipt.gas_used)
}

/// The escrow action a table measures.
#[derive(Clone, Copy)]
enum Op {
    Capture,
    Void,
}

impl Bench {
    /// The rows of `op`'s table: [`SINGLES`] single calls, then one batch of each of [`SIZES`].
    async fn measure(&mut self, op: Op) -> Result<Vec<Row>> {
        let (single, batch) = match op {
            Op::Capture => ("capture", "captureBatch"),
            Op::Void => ("void", "voidBatch"),
        };
        let mut rows = Vec::new();
        let mut total = 0;
        for info in &self.holds(SINGLES).await? {
            total += match op {
                Op::Capture => self.capture(info).await?,
                Op::Void => self.void(info).await?,
            };
        }
        rows.push(Row {
            what: format!("{SINGLES} × {single}"),
            txs: SINGLES,
            total,
            per_item: total / SINGLES as u64,
        });
        for size in SIZES {
            let infos = self.holds(size).await?;
            let gas = match op {
                Op::Capture => self.capture_batch(&infos).await?,
                Op::Void => self.void_batch(&infos).await?,
            };
            rows.push(Row {
                what: format!("{batch} of {size}"),
                txs: 1,
                total: gas,
                per_item: gas / size as u64,
            });
        }
        Ok(rows)
    }
}

/// Intrinsic calldata gas (EIP-2028): 16 per non-zero byte, 4 per zero byte.
fn calldata_gas(data: &[u8]) -> u64 {
    data.iter().map(|b| if *b == 0 { 4 } else { 16 }).sum()
}

/// One row of the table.
struct Row {
    what: String,
    txs: usize,
    total: u64,
    per_item: u64,
}

fn print_table(op: &str, rows: &[Row]) {
    let single = rows.first().map_or(1, |r| r.per_item.max(1));
    println!("| {op} | transactions | total gasUsed | gas per {op} | vs single |");
    println!("|---|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {:.1}% |",
            r.what,
            r.txs,
            r.total,
            r.per_item,
            r.per_item as f64 * 100.0 / single as f64
        );
    }
    println!();
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let anvil = Anvil::at(x402_escrow_bindings::contracts::anvil_path()).try_spawn()?;
    let key = |i: usize| PrivateKeySigner::from(anvil.keys()[i].clone());
    let wallet = |k: PrivateKeySigner| {
        ProviderBuilder::new()
            .wallet(EthereumWallet::from(k))
            .connect_http(anvil.endpoint_url())
            .erased()
    };
    let deployer = key(0);
    let admin = wallet(deployer.clone());
    let deployment = deploy_all(&admin, deployer.address(), DEFAULT_SALT, true).await?;
    let operator_key = key(1);
    let payer = key(2);
    let token = deployment.token.clone().ok_or_else(|| eyre!("no token"))?;
    TestUSDC::new(token.address, admin.clone())
        .mint(payer.address(), U256::from(1_000 * USDC))
        .send()
        .await?
        .get_receipt()
        .await?;
    let now = admin
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await?
        .ok_or_else(|| eyre!("no block"))?
        .header
        .timestamp;
    let mut bench = Bench {
        deployment,
        operator_address: operator_key.address(),
        operator: wallet(operator_key.clone()),
        payer,
        receiver: anvil.addresses()[3],
        fee_receiver: anvil.addresses()[4],
        now,
        salt: 0,
    };

    // Warm-up: TokenStore deployed, receiver and fee receiver balances non-zero.
    let warm = bench.holds(2).await?;
    bench.capture(&warm[0]).await?;
    bench.void(&warm[1]).await?;
    // One hold that stays: the TokenStore's balance never drops to zero in a measured
    // transaction (clearing that slot would earn a 4,800 gas refund no running operator sees).
    bench.holds(1).await?;

    let captures = bench.measure(Op::Capture).await?;
    let voids = bench.measure(Op::Void).await?;

    println!(
        "Transaction gasUsed (receipts, 21,000 base + calldata included), anvil, deploy-profile bytecode.\n"
    );
    print_table("capture", &captures);
    print_table("void", &voids);

    // The operator itself: OPERATOR_CAPTURES holds authorized through it, then captured by that
    // many concurrent requests; what its outbox sent, by `[batch]` setting.
    let endpoint = anvil.endpoint();
    let dir = tempfile::tempdir()?;
    let deployments = dir
        .path()
        .join(format!("{}.json", bench.deployment.chain_id));
    bench.deployment.save(&deployments)?;
    println!(
        "| operator, {OPERATOR_CAPTURES} concurrent captures | transactions | total gasUsed | gas per capture |"
    );
    println!("|---|---:|---:|---:|");
    for (max_size, max_wait_ms) in [(1, 0), (50, 25)] {
        let mut config = Config {
            listen: "127.0.0.1:0".into(),
            ..Config::default()
        };
        config.database.url = format!(
            "sqlite://{}/op-{max_size}.db?mode=rwc",
            dir.path().display()
        );
        config.chain.rpc_url = endpoint.clone();
        config.chain.chain_id = bench.deployment.chain_id;
        config.chain.deployments = Some(deployments.clone());
        config.chain.poll_interval_ms = 100;
        config.signer.private_key = Some(Secret::new(alloy::hex::encode(operator_key.to_bytes())));
        config.fees.bps = FEE_BPS;
        config.fees.receiver = Some(bench.fee_receiver);
        config.webhooks.enabled = false;
        config.batch.max_size = max_size;
        config.batch.max_wait_ms = max_wait_ms;
        let (txs, gas) = operator_run(&bench, config).await?;
        println!(
            "| `[batch]` max_size = {max_size}, max_wait_ms = {max_wait_ms} | {txs} | {gas} | {} |",
            gas / OPERATOR_CAPTURES as u64
        );
    }
    Ok(())
}

/// Captures through a running operator (see `main`).
const OPERATOR_CAPTURES: usize = 50;

/// Starts an operator with `config`, authorizes `OPERATOR_CAPTURES` payments through its engine,
/// captures them all at once, and returns how many capture transactions it sent and their gas.
async fn operator_run(bench: &Bench, config: Config) -> Result<(usize, u64)> {
    use sqlx::Row;
    use x402_escrow_sdk::wire::{PaymentPayload, PaymentRequirements};
    use x402_escrow_sdk::{EscrowDeployment, EscrowRegistry, random_b256};

    let op = runtime::start(config).await?;
    let (merchant, _key) = op
        .store
        .create_merchant(&NewMerchant {
            name: "bench".into(),
            receivers: vec![bench.receiver],
            webhook_url: None,
            webhook_secret: None,
            capture_deadline_secs: 3600,
        })
        .await?;
    let token = bench
        .deployment
        .token
        .clone()
        .ok_or_else(|| eyre!("no token"))?;
    let registry = EscrowRegistry::only(EscrowDeployment::from(&bench.deployment));
    let now = bench
        .operator
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await?
        .ok_or_else(|| eyre!("no block"))?
        .header
        .timestamp;
    let mut tasks = Vec::new();
    for i in 0..OPERATOR_CAPTURES {
        let requirements: PaymentRequirements = serde_json::from_value(serde_json::json!({
            "scheme": "auth-capture",
            "network": format!("eip155:{}", bench.deployment.chain_id),
            "amount": AMOUNT.to_string(),
            "asset": token.address,
            "payTo": bench.receiver,
            "maxTimeoutSeconds": 900,
            "extra": {
                "name": token.name,
                "version": token.version,
                "captureAuthorizer": op.signer,
                "captureDeadline": now + 7200,
                "refundDeadline": now + 30 * 86400,
                "feeRecipient": bench.fee_receiver,
                "minFeeBps": 0,
                "maxFeeBps": 500,
                "authCaptureEscrow": bench.deployment.auth_capture_escrow,
            }
        }))?;
        let payload = x402_escrow_sdk::schemes::auth_capture::build_payload(
            &requirements,
            &bench.payer,
            now,
            random_b256(),
            &registry,
        )?;
        let request = AuthorizeRequest {
            payment_payload: PaymentPayload::new(requirements.clone(), payload),
            payment_requirements: requirements,
            request_id: Some(format!("bench-{i}")),
            wait: None,
        };
        let engine = op.engine.clone();
        let merchant = merchant.clone();
        tasks.push(tokio::spawn(async move {
            engine.authorize(&merchant, request, None).await
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        let view = t.await?.map_err(|e| eyre!("authorize: {e}"))?;
        ensure!(
            view.status == PaymentStatus::Authorized,
            "authorize: {view:?}"
        );
        ids.push(view.id);
    }
    let mut tasks = Vec::new();
    for id in ids {
        let engine = op.engine.clone();
        let merchant = merchant.clone();
        tasks.push(tokio::spawn(async move {
            engine
                .capture(&merchant, id, CaptureRequest { amount: None })
                .await
        }));
    }
    for t in tasks {
        let view = t.await?.map_err(|e| eyre!("capture: {e}"))?;
        ensure!(view.status == PaymentStatus::Captured, "capture: {view:?}");
    }
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, SUM(gas_used) AS gas FROM chain_txs \
         WHERE kind IN ('capture', 'capture_batch') AND status = 'final'",
    )
    .fetch_one(op.store.pool())
    .await?;
    let n: i64 = row.try_get("n")?;
    let gas: i64 = row.try_get("gas")?;
    op.shutdown().await;
    Ok((usize::try_from(n)?, u64::try_from(gas)?))
}
