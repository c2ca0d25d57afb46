//! Against a real anvil (the pinned toolchain's): deterministic deployment, off-chain hashes vs
//! `getHash`, our ERC-3009 signatures accepted by the token, and a full payment lifecycle driven
//! through the bindings with every balance and payment state asserted after each step; and the
//! token interfaces `IERC20` / `IERC3009` against the deployed `TestUSDC`.

use alloy::network::EthereumWallet;
use alloy::node_bindings::{Anvil, AnvilInstance};
use alloy::primitives::aliases::{U48, U120};
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::ext::AnvilApi;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionReceipt;
use alloy::signers::local::PrivateKeySigner;
use eyre::{Result, ensure, eyre};
use x402_escrow_bindings::AuthCaptureEscrow::AuthCaptureEscrowErrors;
use x402_escrow_bindings::contracts::anvil_path;
use x402_escrow_bindings::deploy::{ANVIL_CHAIN_ID, DEFAULT_SALT};
use x402_escrow_bindings::eip3009::{Authorization, verify_payment_signature};
use x402_escrow_bindings::{
    AuthCaptureEscrow, Deployment, IERC20, IERC3009, PaymentInfo, ReceiveWithAuthorization,
    TestUSDC, TransferWithAuthorization, deploy_all, payer_agnostic_hash, payment_info_hash,
    predict_addresses,
};

/// One account of the scenario.
struct Actor {
    signer: PrivateKeySigner,
    provider: DynProvider,
}

impl Actor {
    fn new(anvil: &AnvilInstance, index: usize) -> Self {
        let signer: PrivateKeySigner = anvil.keys()[index].clone().into();
        let provider = ProviderBuilder::new()
            .wallet(EthereumWallet::from(signer.clone()))
            .connect_http(anvil.endpoint_url())
            .erased();
        Self { signer, provider }
    }

    fn address(&self) -> Address {
        self.signer.address()
    }
}

fn spawn_anvil() -> Result<AnvilInstance> {
    Ok(Anvil::at(anvil_path()).try_spawn()?)
}

async fn latest_timestamp(provider: &DynProvider) -> Result<u64> {
    let block = provider
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await?
        .ok_or_else(|| eyre!("no latest block"))?;
    Ok(block.header.timestamp)
}

/// Token balances of everyone involved, in a fixed order for readable assertions.
#[derive(Debug, PartialEq, Eq)]
struct Balances {
    payer: u64,
    receiver: u64,
    fee_receiver: u64,
    token_store: u64,
    operator: u64,
}

struct Scenario {
    deployment: Deployment,
    token: TestUSDC::TestUSDCInstance<DynProvider>,
    payer: Actor,
    operator: Actor,
    receiver: Address,
    fee_receiver: Address,
    token_store: Address,
}

impl Scenario {
    async fn balances(&self) -> Result<Balances> {
        let of = |a: Address| {
            let token = self.token.clone();
            async move {
                let b: U256 = token.balanceOf(a).call().await?;
                Ok::<u64, eyre::Report>(b.try_into()?)
            }
        };
        Ok(Balances {
            payer: of(self.payer.address()).await?,
            receiver: of(self.receiver).await?,
            fee_receiver: of(self.fee_receiver).await?,
            token_store: of(self.token_store).await?,
            operator: of(self.operator.address()).await?,
        })
    }

    /// `paymentState(hash)` as (hasCollectedPayment, capturable, refundable).
    async fn state(&self, info: &PaymentInfo) -> Result<(bool, u64, u64)> {
        let escrow =
            AuthCaptureEscrow::new(self.deployment.auth_capture_escrow, &self.operator.provider);
        let hash = payment_info_hash(
            info,
            self.deployment.chain_id,
            self.deployment.auth_capture_escrow,
        );
        let s = escrow.paymentState(hash).call().await?;
        Ok((
            s.hasCollectedPayment,
            s.capturableAmount.to(),
            s.refundableAmount.to(),
        ))
    }
}

#[tokio::test]
async fn deploy_hash_sign_and_full_lifecycle() -> Result<()> {
    let anvil = spawn_anvil()?;
    let deployer = Actor::new(&anvil, 0);
    let operator = Actor::new(&anvil, 1);
    let payer = Actor::new(&anvil, 2);
    let receiver = anvil.addresses()[3];
    let fee_receiver = anvil.addresses()[4];

    // --- Deterministic deployment -------------------------------------------------------------
    let deployment = deploy_all(&deployer.provider, deployer.address(), DEFAULT_SALT, true).await?;
    assert_eq!(deployment.chain_id, ANVIL_CHAIN_ID);
    assert_eq!(
        deployment,
        predict_addresses(DEFAULT_SALT, deployer.address(), true, true)
            .to_deployment(ANVIL_CHAIN_ID)
    );
    let nonce_before = deployer
        .provider
        .get_transaction_count(deployer.address())
        .await?;
    let again = deploy_all(&deployer.provider, deployer.address(), DEFAULT_SALT, true).await?;
    assert_eq!(
        again, deployment,
        "a second deploy_all finds everything in place"
    );
    assert_eq!(
        deployer
            .provider
            .get_transaction_count(deployer.address())
            .await?,
        nonce_before,
        "and sends nothing"
    );

    let chain_id = deployment.chain_id;
    let escrow_address = deployment.auth_capture_escrow;
    let collector = deployment.erc3009_payment_collector;
    let refund_collector = deployment.operator_refund_collector;
    let token_info = deployment
        .token
        .clone()
        .ok_or_else(|| eyre!("dev deployment has a token"))?;
    let domain = token_info.domain(chain_id);

    let escrow_as_operator = AuthCaptureEscrow::new(escrow_address, operator.provider.clone());
    let escrow_as_payer = AuthCaptureEscrow::new(escrow_address, payer.provider.clone());
    assert_eq!(
        Some(escrow_as_operator.tokenStoreImplementation().call().await?),
        deployment.token_store_implementation
    );
    let collector_binding =
        x402_escrow_bindings::ERC3009PaymentCollector::new(collector, &operator.provider);
    assert_eq!(
        collector_binding.authCaptureEscrow().call().await?,
        escrow_address
    );
    assert_eq!(
        collector_binding.multicall3().call().await?,
        deployment.multicall3
    );

    let token = TestUSDC::new(token_info.address, deployer.provider.clone());
    assert_eq!(token.name().call().await?, token_info.name);
    assert_eq!(token.symbol().call().await?, token_info.symbol);
    assert_eq!(token.decimals().call().await?, token_info.decimals);
    assert_eq!(token.owner().call().await?, deployer.address());
    token
        .mint(payer.address(), U256::from(10_000_000u64))
        .send()
        .await?
        .get_receipt()
        .await?;

    let token_store = escrow_as_operator
        .getTokenStore(operator.address())
        .call()
        .await?;
    let s = Scenario {
        deployment: deployment.clone(),
        token: token.clone(),
        payer,
        operator,
        receiver,
        fee_receiver,
        token_store,
    };

    // --- Our ERC-3009 signature is accepted by the token ----------------------------------------
    let now = latest_timestamp(&s.operator.provider).await?;
    let transfer = TransferWithAuthorization {
        from: s.payer.address(),
        to: receiver,
        value: U256::from(1_000u64),
        validAfter: U256::ZERO,
        validBefore: U256::from(now + 3600),
        nonce: B256::repeat_byte(0x42),
    };
    let signature = transfer.sign(&s.payer.signer, &domain)?;
    let receipt = token
        .transferWithAuthorization_0(
            transfer.from,
            transfer.to,
            transfer.value,
            transfer.validAfter,
            transfer.validBefore,
            transfer.nonce,
            signature,
        )
        .send()
        .await?
        .get_receipt()
        .await?;
    ensure!(receipt.status(), "transferWithAuthorization reverted");
    assert!(
        token
            .authorizationState(s.payer.address(), transfer.nonce)
            .call()
            .await?
    );
    // Start the lifecycle from round numbers: return the 1,000 (receiver is an anvil account).
    let receiver_actor = Actor::new(&anvil, 3);
    TestUSDC::new(token_info.address, &receiver_actor.provider)
        .transfer(s.payer.address(), U256::from(1_000u64))
        .send()
        .await?
        .get_receipt()
        .await?;
    assert_eq!(
        s.balances().await?,
        Balances {
            payer: 10_000_000,
            receiver: 0,
            fee_receiver: 0,
            token_store: 0,
            operator: 0
        }
    );

    // --- Payment 1: authorize -> partial capture (1% fee) -> refund -> void --------------------
    let now = latest_timestamp(&s.operator.provider).await?;
    let info = PaymentInfo {
        operator: s.operator.address(),
        payer: s.payer.address(),
        receiver,
        token: token_info.address,
        maxAmount: U120::from(1_000_000u64),
        preApprovalExpiry: U48::from(now + 600),
        authorizationExpiry: U48::from(now + 3600),
        refundExpiry: U48::from(now + 86_400),
        minFeeBps: 100,
        maxFeeBps: 100,
        feeReceiver: fee_receiver,
        salt: U256::from(1u64),
    };
    // Off-chain hashes equal the escrow's.
    assert_eq!(
        escrow_as_operator.getHash(info.clone()).call().await?,
        payment_info_hash(&info, chain_id, escrow_address)
    );
    let mut agnostic = info.clone();
    agnostic.payer = Address::ZERO;
    assert_eq!(
        escrow_as_operator.getHash(agnostic).call().await?,
        payer_agnostic_hash(&info, chain_id, escrow_address)
    );

    // The payer signs; the operator checks the signature off chain, then authorizes.
    let auth = ReceiveWithAuthorization::for_payment(&info, collector, chain_id, escrow_address);
    let signature = auth.sign(&s.payer.signer, &domain)?;
    verify_payment_signature(
        &info,
        collector,
        chain_id,
        escrow_address,
        &domain,
        &signature,
    )?;
    assert_eq!(
        s.state(&info).await?,
        (false, 0, 0),
        "{info:?} is not collected yet"
    );

    let receipt = escrow_as_operator
        .authorize(
            info.clone(),
            U256::from(1_000_000u64),
            collector,
            signature.clone(),
        )
        .send()
        .await?
        .get_receipt()
        .await?;
    ensure!(receipt.status(), "authorize reverted");
    let authorized = receipt
        .decoded_log::<AuthCaptureEscrow::PaymentAuthorized>()
        .ok_or_else(|| eyre!("no PaymentAuthorized event"))?;
    assert_eq!(
        authorized.paymentInfoHash,
        payment_info_hash(&info, chain_id, escrow_address)
    );
    assert!(
        token
            .authorizationState(s.payer.address(), auth.nonce)
            .call()
            .await?
    );
    assert_eq!(s.state(&info).await?, (true, 1_000_000, 0));
    assert_eq!(
        s.balances().await?,
        Balances {
            payer: 9_000_000,
            receiver: 0,
            fee_receiver: 0,
            token_store: 1_000_000,
            operator: 0
        }
    );

    // The same payment cannot be authorized twice (decoded custom error).
    let Err(err) = escrow_as_operator
        .authorize(info.clone(), U256::from(1_000_000u64), collector, signature)
        .call()
        .await
    else {
        panic!("second authorize must revert");
    };
    assert!(matches!(
        err.as_decoded_interface_error::<AuthCaptureEscrowErrors>(),
        Some(AuthCaptureEscrowErrors::PaymentAlreadyCollected(_))
    ));

    escrow_as_operator
        .capture(info.clone(), U256::from(600_000u64), 100, fee_receiver)
        .send()
        .await?
        .get_receipt()
        .await?;
    assert_eq!(s.state(&info).await?, (true, 400_000, 600_000));
    assert_eq!(
        s.balances().await?,
        Balances {
            payer: 9_000_000,
            receiver: 594_000,
            fee_receiver: 6_000,
            token_store: 400_000,
            operator: 0
        }
    );

    // Refund 100,000 from the operator's own funds through the OperatorRefundCollector.
    token
        .mint(s.operator.address(), U256::from(100_000u64))
        .send()
        .await?
        .get_receipt()
        .await?;
    TestUSDC::new(token_info.address, &s.operator.provider)
        .approve(refund_collector, U256::from(100_000u64))
        .send()
        .await?
        .get_receipt()
        .await?;
    assert_eq!(s.balances().await?.operator, 100_000);
    escrow_as_operator
        .refund(
            info.clone(),
            U256::from(100_000u64),
            refund_collector,
            Bytes::new(),
        )
        .send()
        .await?
        .get_receipt()
        .await?;
    assert_eq!(s.state(&info).await?, (true, 400_000, 500_000));
    assert_eq!(
        s.balances().await?,
        Balances {
            payer: 9_100_000,
            receiver: 594_000,
            fee_receiver: 6_000,
            token_store: 400_000,
            operator: 0
        }
    );

    escrow_as_operator
        .void(info.clone())
        .send()
        .await?
        .get_receipt()
        .await?;
    assert_eq!(s.state(&info).await?, (true, 0, 500_000));
    assert_eq!(
        s.balances().await?,
        Balances {
            payer: 9_500_000,
            receiver: 594_000,
            fee_receiver: 6_000,
            token_store: 0,
            operator: 0
        }
    );

    // --- Payment 2: authorize part of the maximum, then the payer reclaims after expiry --------
    let now = latest_timestamp(&s.operator.provider).await?;
    let info2 = PaymentInfo {
        maxAmount: U120::from(500_000u64),
        preApprovalExpiry: U48::from(now + 600),
        authorizationExpiry: U48::from(now + 3600),
        refundExpiry: U48::from(now + 7200),
        salt: U256::from(2u64),
        ..info.clone()
    };
    let signature2 =
        ReceiveWithAuthorization::for_payment(&info2, collector, chain_id, escrow_address)
            .sign(&s.payer.signer, &domain)?;
    escrow_as_operator
        .authorize(info2.clone(), U256::from(300_000u64), collector, signature2)
        .send()
        .await?
        .get_receipt()
        .await?;
    // The collector pulled maxAmount and sent back the 200,000 not authorized.
    assert_eq!(s.state(&info2).await?, (true, 300_000, 0));
    assert_eq!(
        s.balances().await?,
        Balances {
            payer: 9_200_000,
            receiver: 594_000,
            fee_receiver: 6_000,
            token_store: 300_000,
            operator: 0
        }
    );

    let Err(err) = escrow_as_payer.reclaim(info2.clone()).call().await else {
        panic!("too early to reclaim");
    };
    assert!(matches!(
        err.as_decoded_interface_error::<AuthCaptureEscrowErrors>(),
        Some(AuthCaptureEscrowErrors::BeforeAuthorizationExpiry(_))
    ));

    // Move time to exactly authorizationExpiry: capture closes, reclaim opens.
    let expiry: u64 = info2.authorizationExpiry.to();
    s.operator
        .provider
        .anvil_set_next_block_timestamp(expiry)
        .await?;
    s.operator.provider.anvil_mine(Some(1), None).await?;
    assert_eq!(latest_timestamp(&s.operator.provider).await?, expiry);
    let Err(err) = escrow_as_operator
        .capture(info2.clone(), U256::from(1u64), 100, fee_receiver)
        .call()
        .await
    else {
        panic!("capture after expiry must revert");
    };
    assert!(matches!(
        err.as_decoded_interface_error::<AuthCaptureEscrowErrors>(),
        Some(AuthCaptureEscrowErrors::AfterAuthorizationExpiry(_))
    ));

    let receipt = escrow_as_payer
        .reclaim(info2.clone())
        .send()
        .await?
        .get_receipt()
        .await?;
    let reclaimed = receipt
        .decoded_log::<AuthCaptureEscrow::PaymentReclaimed>()
        .ok_or_else(|| eyre!("no PaymentReclaimed event"))?;
    assert_eq!(reclaimed.amount, U256::from(300_000u64));
    assert_eq!(s.state(&info2).await?, (true, 0, 0));
    assert_eq!(
        s.balances().await?,
        Balances {
            payer: 9_500_000,
            receiver: 594_000,
            fee_receiver: 6_000,
            token_store: 0,
            operator: 0
        }
    );
    // Payment 1 is untouched.
    assert_eq!(s.state(&info).await?, (true, 0, 500_000));

    // --- Payment 3: on-chain pre-approval instead of a signature, then charge ------------------
    let pre_approval_collector = deployment
        .pre_approval_payment_collector
        .ok_or_else(|| eyre!("deploy_all records the pre-approval collector"))?;
    let now = latest_timestamp(&s.operator.provider).await?;
    let info3 = PaymentInfo {
        maxAmount: U120::from(200_000u64),
        preApprovalExpiry: U48::from(now + 600),
        authorizationExpiry: U48::from(now + 3600),
        refundExpiry: U48::from(now + 7200),
        salt: U256::from(3u64),
        ..info.clone()
    };
    TestUSDC::new(token_info.address, &s.payer.provider)
        .approve(pre_approval_collector, U256::from(200_000u64))
        .send()
        .await?
        .get_receipt()
        .await?;
    let pre_approval = x402_escrow_bindings::PreApprovalPaymentCollector::new(
        pre_approval_collector,
        &s.payer.provider,
    );
    // The collector's ABI has its own PaymentInfo type: convert with `.into()`.
    pre_approval
        .preApprove(info3.clone().into())
        .send()
        .await?
        .get_receipt()
        .await?;
    assert!(
        pre_approval
            .isPreApproved(payment_info_hash(&info3, chain_id, escrow_address))
            .call()
            .await?
    );
    escrow_as_operator
        .charge(
            info3.clone(),
            U256::from(200_000u64),
            pre_approval_collector,
            Bytes::new(),
            100,
            fee_receiver,
        )
        .send()
        .await?
        .get_receipt()
        .await?;
    assert_eq!(s.state(&info3).await?, (true, 0, 200_000));
    assert_eq!(
        s.balances().await?,
        Balances {
            payer: 9_300_000,
            receiver: 792_000,
            fee_receiver: 8_000,
            token_store: 0,
            operator: 0
        }
    );
    Ok(())
}

#[tokio::test]
async fn deploy_all_without_dev_requires_the_public_multicall3() -> Result<()> {
    let anvil = spawn_anvil()?;
    let deployer = Actor::new(&anvil, 0);
    let err = deploy_all(&deployer.provider, deployer.address(), DEFAULT_SALT, false)
        .await
        .expect_err("a fresh anvil has no Multicall3 at 0xcA11…");
    assert!(
        matches!(
            err,
            x402_escrow_bindings::deploy::DeployError::MissingMulticall3 {
                chain_id: ANVIL_CHAIN_ID
            }
        ),
        "{err}"
    );
    assert_eq!(
        deployer
            .provider
            .get_transaction_count(deployer.address())
            .await?,
        0
    );
    Ok(())
}

/// `IERC20` and `IERC3009` name the same functions and events as `TestUSDC`'s ABI, overload
/// numbers included: a call site can switch from one to the other by its type alone.
#[test]
fn token_interfaces_match_the_test_token_abi() {
    use alloy::sol_types::{SolCall, SolEvent};

    macro_rules! same_selectors {
        ($interface:ident: $($call:ident),* $(,)?) => {$(
            assert_eq!(
                $interface::$call::SELECTOR,
                TestUSDC::$call::SELECTOR,
                concat!(stringify!($interface), "::", stringify!($call))
            );
        )*};
    }
    same_selectors!(IERC20:
        nameCall, symbolCall, decimalsCall, totalSupplyCall, balanceOfCall, allowanceCall,
        approveCall, transferCall, transferFromCall,
    );
    same_selectors!(IERC3009:
        authorizationStateCall,
        transferWithAuthorization_0Call, transferWithAuthorization_1Call,
        receiveWithAuthorization_0Call, receiveWithAuthorization_1Call,
        cancelAuthorization_0Call, cancelAuthorization_1Call,
    );
    assert_eq!(
        IERC20::Transfer::SIGNATURE_HASH,
        TestUSDC::Transfer::SIGNATURE_HASH
    );
    assert_eq!(
        IERC20::Approval::SIGNATURE_HASH,
        TestUSDC::Approval::SIGNATURE_HASH
    );
    assert_eq!(
        IERC3009::AuthorizationUsed::SIGNATURE_HASH,
        TestUSDC::AuthorizationUsed::SIGNATURE_HASH
    );
    assert_eq!(
        IERC3009::AuthorizationCanceled::SIGNATURE_HASH,
        TestUSDC::AuthorizationCanceled::SIGNATURE_HASH
    );
}

alloy::sol! {
    /// ERC-3009's cancellation, as the token's EIP-712 type (no helper in the crate signs it).
    struct CancelAuthorization {
        address authorizer;
        bytes32 nonce;
    }
}

/// A 65-byte `r ‖ s ‖ v` signature split into the `v, r, s` arguments.
fn split_signature(signature: &Bytes) -> Result<(u8, B256, B256)> {
    ensure!(
        signature.len() == 65,
        "signature of {} bytes",
        signature.len()
    );
    Ok((
        signature[64],
        B256::from_slice(&signature[..32]),
        B256::from_slice(&signature[32..64]),
    ))
}

/// The ERC-3009 function that spends an authorization.
#[derive(Clone, Copy, Debug)]
enum Spend {
    Transfer,
    Receive,
}

/// Submits `auth` (signed for `spend`'s EIP-712 type) through `spend`'s function, in the
/// `bytes signature` form or, with `split`, the `v, r, s` form; the receipt of the mined call.
async fn submit_authorization(
    token: &IERC3009::IERC3009Instance<DynProvider>,
    spend: Spend,
    split: bool,
    auth: &TransferWithAuthorization,
    signature: &Bytes,
) -> Result<TransactionReceipt> {
    let (f, t, x, a, b, n) = (
        auth.from,
        auth.to,
        auth.value,
        auth.validAfter,
        auth.validBefore,
        auth.nonce,
    );
    let sig = signature.clone();
    let (v, r, s) = split_signature(signature)?;
    let pending = match (spend, split) {
        (Spend::Transfer, false) => {
            let call = token.transferWithAuthorization_0(f, t, x, a, b, n, sig);
            call.send().await?
        }
        (Spend::Transfer, true) => {
            let call = token.transferWithAuthorization_1(f, t, x, a, b, n, v, r, s);
            call.send().await?
        }
        (Spend::Receive, false) => {
            let call = token.receiveWithAuthorization_0(f, t, x, a, b, n, sig);
            call.send().await?
        }
        (Spend::Receive, true) => {
            let call = token.receiveWithAuthorization_1(f, t, x, a, b, n, v, r, s);
            call.send().await?
        }
    };
    Ok(pending.get_receipt().await?)
}

/// Every ERC-20 and ERC-3009 function of the interfaces, against `TestUSDC` on anvil, with the
/// balances, allowances, authorization states and events each one leaves behind.
#[tokio::test]
async fn token_interfaces_drive_the_test_token() -> Result<()> {
    use alloy::signers::SignerSync;
    use alloy::sol_types::SolStruct;

    let anvil = spawn_anvil()?;
    let deployer = Actor::new(&anvil, 0);
    let spender = Actor::new(&anvil, 1);
    let payer = Actor::new(&anvil, 2);
    let payee = Actor::new(&anvil, 3);
    let deployment = deploy_all(&deployer.provider, deployer.address(), DEFAULT_SALT, true).await?;
    let token_info = deployment
        .token
        .clone()
        .ok_or_else(|| eyre!("dev deployment has a token"))?;
    let domain = token_info.domain(deployment.chain_id);
    // Minting is TestUSDC's own; everything after it goes through the interfaces.
    TestUSDC::new(token_info.address, &deployer.provider)
        .mint(payer.address(), U256::from(10_000u64))
        .send()
        .await?
        .get_receipt()
        .await?;

    // --- ERC-20 ---------------------------------------------------------------------------------
    let erc20 = |actor: &Actor| IERC20::new(token_info.address, actor.provider.clone());
    let balance = |a: Address| {
        let token = erc20(&deployer);
        async move { Ok::<U256, eyre::Report>(token.balanceOf(a).call().await?) }
    };
    let allowance = || {
        let token = erc20(&deployer);
        let (owner, spender) = (payer.address(), spender.address());
        async move { Ok::<U256, eyre::Report>(token.allowance(owner, spender).call().await?) }
    };
    let token = erc20(&deployer);
    assert_eq!(token.name().call().await?, token_info.name);
    assert_eq!(token.symbol().call().await?, token_info.symbol);
    assert_eq!(token.decimals().call().await?, token_info.decimals);
    assert_eq!(token.totalSupply().call().await?, U256::from(10_000u64));
    assert_eq!(balance(payer.address()).await?, U256::from(10_000u64));

    let receipt = erc20(&payer)
        .approve(spender.address(), U256::from(500u64))
        .send()
        .await?
        .get_receipt()
        .await?;
    let approval = receipt
        .decoded_log::<IERC20::Approval>()
        .ok_or_else(|| eyre!("no Approval event"))?;
    assert_eq!(
        (approval.owner, approval.spender, approval.value),
        (payer.address(), spender.address(), U256::from(500u64))
    );
    assert_eq!(allowance().await?, U256::from(500u64));
    let receipt = erc20(&spender)
        .transferFrom(payer.address(), payee.address(), U256::from(200u64))
        .send()
        .await?
        .get_receipt()
        .await?;
    let transfer = receipt
        .decoded_log::<IERC20::Transfer>()
        .ok_or_else(|| eyre!("no Transfer event"))?;
    assert_eq!(
        (transfer.from, transfer.to, transfer.value),
        (payer.address(), payee.address(), U256::from(200u64))
    );
    assert_eq!(allowance().await?, U256::from(300u64));
    erc20(&payer)
        .transfer(payee.address(), U256::from(100u64))
        .send()
        .await?
        .get_receipt()
        .await?;
    assert_eq!(balance(payer.address()).await?, U256::from(9_700u64));
    assert_eq!(balance(payee.address()).await?, U256::from(300u64));

    // --- ERC-3009 -------------------------------------------------------------------------------
    let erc3009 = |actor: &Actor| IERC3009::new(token_info.address, actor.provider.clone());
    let now = latest_timestamp(&deployer.provider).await?;
    let authorization = |value: u64, nonce: u8| TransferWithAuthorization {
        from: payer.address(),
        to: payee.address(),
        value: U256::from(value),
        validAfter: U256::ZERO,
        validBefore: U256::from(now + 3600),
        nonce: B256::repeat_byte(nonce),
    };
    let used = |nonce: B256| {
        let token = erc3009(&deployer);
        let from = payer.address();
        async move { Ok::<bool, eyre::Report>(token.authorizationState(from, nonce).call().await?) }
    };

    // Both functions in both forms: transfers submitted by a third party, receives by the payee.
    let forms = [
        (Spend::Transfer, false, 1_000),
        (Spend::Transfer, true, 2_000),
        (Spend::Receive, false, 3_000),
        (Spend::Receive, true, 1_500),
    ];
    for (nonce, (spend, split, value)) in (1u8..).zip(forms) {
        let a = authorization(value, nonce);
        assert!(!used(a.nonce).await?);
        let (signature, submitter) = match spend {
            Spend::Transfer => (a.sign(&payer.signer, &domain)?, &spender),
            Spend::Receive => {
                let receive = ReceiveWithAuthorization {
                    from: a.from,
                    to: a.to,
                    value: a.value,
                    validAfter: a.validAfter,
                    validBefore: a.validBefore,
                    nonce: a.nonce,
                };
                (receive.sign(&payer.signer, &domain)?, &payee)
            }
        };
        let receipt =
            submit_authorization(&erc3009(submitter), spend, split, &a, &signature).await?;
        ensure!(receipt.status(), "{spend:?} (split {split}) reverted");
        let event = receipt
            .decoded_log::<IERC3009::AuthorizationUsed>()
            .ok_or_else(|| eyre!("no AuthorizationUsed event ({spend:?}, split {split})"))?;
        assert_eq!((event.authorizer, event.nonce), (payer.address(), a.nonce));
        assert!(used(a.nonce).await?);
    }
    assert_eq!(balance(payer.address()).await?, U256::from(2_200u64));
    assert_eq!(balance(payee.address()).await?, U256::from(7_800u64));

    // cancelAuthorization: `v, r, s` (_0) and `bytes signature` (_1); a cancelled nonce is spent.
    for (nonce, split) in [(0x05, false), (0x06, true)] {
        let nonce = B256::repeat_byte(nonce);
        let cancel = CancelAuthorization {
            authorizer: payer.address(),
            nonce,
        };
        let signature = payer
            .signer
            .sign_hash_sync(&cancel.eip712_signing_hash(&domain))?;
        let signature = Bytes::copy_from_slice(&signature.as_bytes());
        let (v, r, s) = split_signature(&signature)?;
        let token = erc3009(&spender);
        let pending = if split {
            let call = token.cancelAuthorization_0(payer.address(), nonce, v, r, s);
            call.send().await?
        } else {
            let call = token.cancelAuthorization_1(payer.address(), nonce, signature);
            call.send().await?
        };
        let receipt = pending.get_receipt().await?;
        let event = receipt
            .decoded_log::<IERC3009::AuthorizationCanceled>()
            .ok_or_else(|| eyre!("no AuthorizationCanceled event"))?;
        assert_eq!((event.authorizer, event.nonce), (payer.address(), nonce));
        assert!(used(nonce).await?);
    }
    let a = authorization(100, 0x05);
    let signature = a.sign(&payer.signer, &domain)?;
    let refused =
        submit_authorization(&erc3009(&spender), Spend::Transfer, false, &a, &signature).await;
    ensure!(
        refused.is_err(),
        "a cancelled authorization must not transfer"
    );
    assert_eq!(balance(payer.address()).await?, U256::from(2_200u64));
    Ok(())
}
