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
//! merchant). Prints a Markdown table.

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
        let receipt = call.send().await?.get_receipt().await?;
        ensure!(receipt.status(), "capture reverted");
        Ok(receipt.gas_used)
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
        let receipt = call.send().await?.get_receipt().await?;
        ensure!(receipt.status(), "captureBatch reverted");
        Ok(receipt.gas_used)
    }

    async fn void(&self, info: &PaymentInfo) -> Result<u64> {
        let receipt = self
            .escrow()
            .void(info.clone())
            .send()
            .await?
            .get_receipt()
            .await?;
        ensure!(receipt.status(), "void reverted");
        Ok(receipt.gas_used)
    }

    async fn void_batch(&self, infos: &[PaymentInfo]) -> Result<u64> {
        let receipt = self
            .escrow()
            .voidBatch(infos.to_vec())
            .send()
            .await?
            .get_receipt()
            .await?;
        ensure!(receipt.status(), "voidBatch reverted");
        Ok(receipt.gas_used)
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
        operator: wallet(operator_key),
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

    let mut captures = Vec::new();
    let singles = bench.holds(SINGLES).await?;
    let mut total = 0;
    for info in &singles {
        total += bench.capture(info).await?;
    }
    captures.push(Row {
        what: format!("{SINGLES} × capture"),
        txs: SINGLES,
        total,
        per_item: total / SINGLES as u64,
    });
    for size in SIZES {
        let infos = bench.holds(size).await?;
        let gas = bench.capture_batch(&infos).await?;
        captures.push(Row {
            what: format!("captureBatch of {size}"),
            txs: 1,
            total: gas,
            per_item: gas / size as u64,
        });
    }

    let mut voids = Vec::new();
    let singles = bench.holds(SINGLES).await?;
    let mut total = 0;
    for info in &singles {
        total += bench.void(info).await?;
    }
    voids.push(Row {
        what: format!("{SINGLES} × void"),
        txs: SINGLES,
        total,
        per_item: total / SINGLES as u64,
    });
    for size in SIZES {
        let infos = bench.holds(size).await?;
        let gas = bench.void_batch(&infos).await?;
        voids.push(Row {
            what: format!("voidBatch of {size}"),
            txs: 1,
            total: gas,
            per_item: gas / size as u64,
        });
    }

    println!(
        "Transaction gasUsed (receipts, 21,000 base + calldata included), anvil, deploy-profile bytecode.\n"
    );
    print_table("capture", &captures);
    print_table("void", &voids);
    Ok(())
}
