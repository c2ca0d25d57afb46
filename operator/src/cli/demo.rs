//! `x402-escrow demo`: one local run of everything the escrow does.
//!
//! Starts the pinned anvil, deploys the contracts with CREATE2 (as `script/Deploy.s.sol` does),
//! then walks two payments through the escrow with the generated bindings:
//!
//! 1. the payer signs an ERC-3009 authorization for 10 USDC; the operator authorizes it,
//!    captures 6 (1% fee), refunds 2 of the captured amount, and voids the remaining 4;
//! 2. a second payment of 5 USDC is authorized and never captured; once its authorization
//!    expires, the payer reclaims it.
//!
//! Every step prints its transaction hash and everyone's balance afterwards.

use alloy::eips::BlockNumberOrTag;
use alloy::node_bindings::{Anvil, AnvilInstance};
use alloy::primitives::aliases::{U48, U120};
use alloy::primitives::{Address, B256, TxHash, U256};
use alloy::providers::ext::AnvilApi;
use alloy::providers::{DynProvider, Provider};
use alloy::signers::local::PrivateKeySigner;
use clap::Args;
use eyre::{Context, Result, ensure, eyre};
use x402_escrow_bindings::contracts::anvil_path;
use x402_escrow_bindings::deploy::DEFAULT_SALT;
use x402_escrow_bindings::eip3009::Authorization;
use x402_escrow_bindings::{
    AuthCaptureEscrow, Deployment, PaymentInfo, ReceiveWithAuthorization, TestUSDC, deploy_all,
    payment_info_hash,
};

/// One USDC in atomic units (6 decimals).
const USDC: u64 = 1_000_000;
/// The operator's fee on captures, in basis points.
const FEE_BPS: u16 = 100;

/// Options of `x402-escrow demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Use this anvil binary instead of the pinned toolchain's.
    #[arg(long, env = "X402_ANVIL")]
    anvil: Option<std::path::PathBuf>,
}

/// A participant with its own key and wallet-backed provider.
struct Actor {
    name: &'static str,
    signer: PrivateKeySigner,
    provider: DynProvider,
}

impl Actor {
    fn new(anvil: &AnvilInstance, index: usize, name: &'static str) -> Result<Self> {
        let (signer, provider) = super::x402::dev_wallet(anvil, index)?;
        Ok(Self {
            name,
            signer,
            provider,
        })
    }

    fn address(&self) -> Address {
        self.signer.address()
    }
}

/// Everything a step needs.
struct Demo {
    deployment: Deployment,
    token: TestUSDC::TestUSDCInstance<DynProvider>,
    operator: Actor,
    payer: Actor,
    receiver: Address,
    fee_receiver: Address,
    token_store: Address,
}

/// Runs the demo; fails with a readable error if any step does not do what it should.
pub async fn run(args: DemoArgs) -> Result<()> {
    let anvil_bin = args.anvil.unwrap_or_else(anvil_path);
    let anvil = Anvil::at(&anvil_bin)
        .try_spawn()
        .wrap_err_with(|| format!("could not start anvil at {}", anvil_bin.display()))?;
    println!(
        "anvil        {} (chain {})",
        anvil.endpoint(),
        anvil.chain_id()
    );

    let deployer = Actor::new(&anvil, 0, "deployer")?;
    let operator = Actor::new(&anvil, 1, "operator")?;
    let payer = Actor::new(&anvil, 2, "payer")?;
    let receiver = *anvil
        .addresses()
        .get(3)
        .ok_or_else(|| eyre!("missing dev account 3"))?;
    let fee_receiver = *anvil
        .addresses()
        .get(4)
        .ok_or_else(|| eyre!("missing dev account 4"))?;

    let deployment = deploy_all(&deployer.provider, deployer.address(), DEFAULT_SALT, true)
        .await
        .wrap_err("deploying the contracts")?;
    let token_info = deployment
        .token
        .clone()
        .ok_or_else(|| eyre!("a development deployment has a test token"))?;
    println!("escrow       {}", deployment.auth_capture_escrow);
    println!(
        "collector    {} (ERC-3009)",
        deployment.erc3009_payment_collector
    );
    println!(
        "refunds      {} (operator-funded)",
        deployment.operator_refund_collector
    );
    println!(
        "token        {} ({} v{})",
        token_info.address, token_info.name, token_info.version
    );

    let escrow = AuthCaptureEscrow::new(deployment.auth_capture_escrow, &operator.provider);
    let token_store = escrow.getTokenStore(operator.address()).call().await?;
    let demo = Demo {
        token: TestUSDC::new(token_info.address, deployer.provider.clone()),
        deployment,
        operator,
        payer,
        receiver,
        fee_receiver,
        token_store,
    };

    // Fund the payer, and the operator's refund float.
    let mint = demo
        .token
        .mint(demo.payer.address(), U256::from(100 * USDC))
        .send()
        .await?;
    mint.get_receipt().await?;
    let mint = demo
        .token
        .mint(demo.operator.address(), U256::from(20 * USDC))
        .send()
        .await?;
    mint.get_receipt().await?;
    println!();
    demo.print_balances("start").await?;

    demo.escrow_then_capture_refund_void().await?;
    demo.authorize_then_reclaim().await?;
    println!("\nDone: every balance above was checked against the escrow's rules.");
    Ok(())
}

impl Demo {
    fn escrow(&self, actor: &Actor) -> AuthCaptureEscrow::AuthCaptureEscrowInstance<DynProvider> {
        AuthCaptureEscrow::new(self.deployment.auth_capture_escrow, actor.provider.clone())
    }

    async fn now(&self) -> Result<u64> {
        let block = self
            .operator
            .provider
            .get_block_by_number(BlockNumberOrTag::Latest)
            .await?
            .ok_or_else(|| eyre!("no latest block"))?;
        Ok(block.header.timestamp)
    }

    /// A payment from the payer to the receiver, capturable for `auth_secs`.
    async fn payment(&self, max_amount: u64, salt: u64, auth_secs: u64) -> Result<PaymentInfo> {
        let now = self.now().await?;
        Ok(PaymentInfo {
            operator: self.operator.address(),
            payer: self.payer.address(),
            receiver: self.receiver,
            token: self.token.address().to_owned(),
            maxAmount: U120::from(max_amount),
            preApprovalExpiry: U48::from(now + 600),
            authorizationExpiry: U48::from(now + auth_secs),
            refundExpiry: U48::from(now + 30 * 24 * 3600),
            minFeeBps: 0,
            maxFeeBps: FEE_BPS,
            feeReceiver: self.fee_receiver,
            salt: U256::from(salt),
        })
    }

    /// The payer's ERC-3009 signature over the payment, as an x402 buyer would produce it.
    fn sign(&self, info: &PaymentInfo) -> Result<alloy::primitives::Bytes> {
        let token = self
            .deployment
            .token
            .as_ref()
            .ok_or_else(|| eyre!("no test token"))?;
        let authorization = ReceiveWithAuthorization::for_payment(
            info,
            self.deployment.erc3009_payment_collector,
            self.deployment.chain_id,
            self.deployment.auth_capture_escrow,
        );
        Ok(authorization.sign(&self.payer.signer, &token.domain(self.deployment.chain_id))?)
    }

    fn hash(&self, info: &PaymentInfo) -> B256 {
        payment_info_hash(
            info,
            self.deployment.chain_id,
            self.deployment.auth_capture_escrow,
        )
    }

    async fn balance(&self, who: Address) -> Result<u64> {
        let balance: U256 = self.token.balanceOf(who).call().await?;
        Ok(balance.try_into()?)
    }

    async fn print_balances(&self, after: &str) -> Result<()> {
        println!(
            "  {:<28} payer {:>7}  receiver {:>7}  fee {:>6}  escrowed {:>7}  operator {:>7}",
            after,
            usdc(self.balance(self.payer.address()).await?),
            usdc(self.balance(self.receiver).await?),
            usdc(self.balance(self.fee_receiver).await?),
            usdc(self.balance(self.token_store).await?),
            usdc(self.balance(self.operator.address()).await?),
        );
        Ok(())
    }

    /// (capturable, refundable) of a payment on chain.
    async fn state(&self, info: &PaymentInfo) -> Result<(u64, u64)> {
        let state = self
            .escrow(&self.operator)
            .paymentState(self.hash(info))
            .call()
            .await?;
        Ok((state.capturableAmount.to(), state.refundableAmount.to()))
    }

    async fn step(&self, actor: &Actor, what: &str, tx: TxHash) -> Result<()> {
        let receipt = actor
            .provider
            .get_transaction_receipt(tx)
            .await?
            .ok_or_else(|| eyre!("no receipt for {tx}"))?;
        ensure!(receipt.status(), "{what} reverted ({tx})");
        println!(
            "{:<8} {:<30} tx {} gas {}",
            actor.name, what, tx, receipt.gas_used
        );
        self.print_balances("").await
    }

    async fn escrow_then_capture_refund_void(&self) -> Result<()> {
        println!("\nPayment 1: authorize 10, capture 6 (1% fee), refund 2, void the rest");
        let info = self.payment(10 * USDC, 1, 3600).await?;
        println!("  payment hash {}", self.hash(&info));
        let payer_before = self.balance(self.payer.address()).await?;
        let signature = self.sign(&info)?;
        let escrow = self.escrow(&self.operator);

        let tx = escrow
            .authorize(
                info.clone(),
                U256::from(10 * USDC),
                self.deployment.erc3009_payment_collector,
                signature,
            )
            .send()
            .await?
            .watch()
            .await?;
        self.step(&self.operator, "authorize 10", tx).await?;
        ensure!(
            self.state(&info).await? == (10 * USDC, 0),
            "10 should be held"
        );

        let tx = escrow
            .capture(
                info.clone(),
                U256::from(6 * USDC),
                FEE_BPS,
                self.fee_receiver,
            )
            .send()
            .await?
            .watch()
            .await?;
        self.step(&self.operator, "capture 6 (fee 1%)", tx).await?;
        ensure!(
            self.balance(self.receiver).await? == 5_940_000,
            "receiver gets 6 minus 1%"
        );
        ensure!(
            self.balance(self.fee_receiver).await? == 60_000,
            "fee receiver gets 1% of 6"
        );

        let operator_token = TestUSDC::new(*self.token.address(), self.operator.provider.clone());
        let approve = operator_token
            .approve(
                self.deployment.operator_refund_collector,
                U256::from(2 * USDC),
            )
            .send()
            .await?;
        approve.get_receipt().await?;
        let tx = escrow
            .refund(
                info.clone(),
                U256::from(2 * USDC),
                self.deployment.operator_refund_collector,
                Default::default(),
            )
            .send()
            .await?
            .watch()
            .await?;
        self.step(&self.operator, "refund 2", tx).await?;

        let tx = escrow.void(info.clone()).send().await?.watch().await?;
        self.step(&self.operator, "void (returns 4)", tx).await?;
        ensure!(
            self.state(&info).await? == (0, 4 * USDC),
            "nothing held, 4 still refundable"
        );
        let payer_after = self.balance(self.payer.address()).await?;
        ensure!(
            payer_before - payer_after == 4 * USDC,
            "the payer paid exactly 6 - 2"
        );
        Ok(())
    }

    async fn authorize_then_reclaim(&self) -> Result<()> {
        println!(
            "\nPayment 2: authorize 5, the operator goes silent, the payer reclaims after expiry"
        );
        let info = self.payment(5 * USDC, 2, 3600).await?;
        println!("  payment hash {}", self.hash(&info));
        let payer_before = self.balance(self.payer.address()).await?;
        let signature = self.sign(&info)?;
        let tx = self
            .escrow(&self.operator)
            .authorize(
                info.clone(),
                U256::from(5 * USDC),
                self.deployment.erc3009_payment_collector,
                signature,
            )
            .send()
            .await?
            .watch()
            .await?;
        self.step(&self.operator, "authorize 5", tx).await?;

        let expiry: u64 = info.authorizationExpiry.to();
        self.operator
            .provider
            .anvil_set_next_block_timestamp(expiry)
            .await?;
        self.operator.provider.anvil_mine(Some(1), None).await?;
        println!("  (time moves to the authorization expiry)");

        let tx = self
            .escrow(&self.payer)
            .reclaim(info.clone())
            .send()
            .await?
            .watch()
            .await?;
        self.step(&self.payer, "reclaim 5", tx).await?;
        ensure!(self.state(&info).await? == (0, 0), "nothing left in escrow");
        ensure!(
            self.balance(self.payer.address()).await? == payer_before,
            "the payer has all 5 back"
        );
        Ok(())
    }
}

/// Atomic units as a decimal USDC amount.
fn usdc(amount: u64) -> String {
    format!("{}.{:02}", amount / USDC, (amount % USDC) / 10_000)
}
