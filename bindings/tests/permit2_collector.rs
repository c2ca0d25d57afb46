//! On the testkit chain (Permit2 at its canonical address, our contracts deployed): the
//! Permit2 collector is in the deployment record, and a payer's `PermitTransferFrom` signed off
//! chain under the canonical Permit2 domain (name "Permit2", this chain, 0x0000…8BA3) with the
//! x402 terms (spender = the collector, nonce = the payer-agnostic payment hash, deadline =
//! `preApprovalExpiry`, amount = `maxAmount`) authorizes a payment; the same signature cannot be
//! used twice, and one over other terms is refused with Permit2's `InvalidSigner()`.

use alloy::primitives::aliases::{U48, U120};
use alloy::primitives::{Address, Bytes, U256};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol;
use alloy::sol_types::{SolError, SolStruct, eip712_domain};
use eyre::{Result, ensure, eyre};
use x402_escrow_bindings::deploy::PERMIT2;
use x402_escrow_bindings::{
    AuthCaptureEscrow, PaymentInfo, Permit2PaymentCollector, TestUSDC, payer_agnostic_hash,
    payment_info_hash,
};
use x402_escrow_testkit::{Chain, permit2_domain_separator};

sol! {
    /// Permit2's signed structs (SignatureTransfer, without witness).
    struct TokenPermissions {
        address token;
        uint256 amount;
    }

    /// What the payer signs; `spender` is the collector.
    struct PermitTransferFrom {
        TokenPermissions permitted;
        address spender;
        uint256 nonce;
        uint256 deadline;
    }

    /// The ECDSA signature recovers to someone other than the owner.
    error InvalidSigner();

    /// The Permit2 views this test reads.
    #[sol(rpc)]
    interface IPermit2View {
        function DOMAIN_SEPARATOR() external view returns (bytes32);
        function nonceBitmap(address owner, uint256 wordPos) external view returns (uint256);
    }
}

/// `payer`'s signature of the x402 Permit2 terms of `info` for `collector` of `escrow`.
fn sign_permit(
    payer: &PrivateKeySigner,
    info: &PaymentInfo,
    chain_id: u64,
    escrow: Address,
    collector: Address,
) -> Result<Bytes> {
    let permit = PermitTransferFrom {
        permitted: TokenPermissions {
            token: info.token,
            amount: U256::from(info.maxAmount),
        },
        spender: collector,
        nonce: U256::from_be_bytes(payer_agnostic_hash(info, chain_id, escrow).0),
        deadline: U256::from(info.preApprovalExpiry),
    };
    let domain = eip712_domain! {
        name: "Permit2",
        chain_id: chain_id,
        verifying_contract: PERMIT2,
    };
    let signature = payer.sign_hash_sync(&permit.eip712_signing_hash(&domain))?;
    Ok(signature.as_bytes().into())
}

#[tokio::test]
async fn permit2_payment_on_the_test_chain() -> Result<()> {
    let chain = Chain::start().await?;
    let chain_id = chain.deployment.chain_id;
    let escrow_address = chain.escrow();
    let collector = chain
        .deployment
        .permit2_payment_collector
        .ok_or_else(|| eyre!("the test chain records a Permit2 collector"))?;

    let permit2 = IPermit2View::new(PERMIT2, chain.plain.clone());
    assert_eq!(
        permit2.DOMAIN_SEPARATOR().call().await?,
        permit2_domain_separator(chain_id),
        "Permit2 answers with the canonical domain"
    );
    let binding = Permit2PaymentCollector::new(collector, chain.plain.clone());
    assert_eq!(binding.authCaptureEscrow().call().await?, escrow_address);
    assert_eq!(binding.permit2().call().await?, PERMIT2);
    assert_eq!(
        binding.multicall3().call().await?,
        chain.deployment.multicall3
    );

    let (_, operator) = chain.wallet(1)?;
    let operator_address = chain.address(1)?;
    let (payer, payer_provider) = chain.wallet(2)?;
    let token = chain.token()?;
    chain
        .mint(payer.address(), U256::from(100_000_000u64))
        .await?;
    let approved = TestUSDC::new(token, payer_provider)
        .approve(PERMIT2, U256::MAX)
        .send()
        .await?
        .get_receipt()
        .await?;
    ensure!(approved.status(), "approving Permit2 reverted");

    let now = chain.now().await?;
    let info = PaymentInfo {
        operator: operator_address,
        payer: payer.address(),
        receiver: chain.address(3)?,
        token,
        maxAmount: U120::from(50_000_000u64),
        preApprovalExpiry: U48::from(now + 600),
        authorizationExpiry: U48::from(now + 3_600),
        refundExpiry: U48::from(now + 86_400),
        minFeeBps: 0,
        maxFeeBps: 100,
        feeReceiver: chain.address(4)?,
        salt: U256::from(7u64),
    };
    let signature = sign_permit(&payer, &info, chain_id, escrow_address, collector)?;
    let escrow = AuthCaptureEscrow::new(escrow_address, operator);

    // Other terms (the amount instead of maxAmount): Permit2 refuses.
    let mut wrong = info.clone();
    wrong.maxAmount = U120::from(20_000_000u64);
    let wrong_signature = sign_permit(&payer, &wrong, chain_id, escrow_address, collector)?;
    let err = escrow
        .authorize(
            info.clone(),
            U256::from(20_000_000u64),
            collector,
            wrong_signature,
        )
        .call()
        .await
        .err()
        .ok_or_else(|| eyre!("a signature over other terms must be refused"))?;
    let data = err
        .as_revert_data()
        .ok_or_else(|| eyre!("a revert, not {err}"))?;
    assert_eq!(data.as_ref(), InvalidSigner::SELECTOR.as_slice());

    let receipt = escrow
        .authorize(
            info.clone(),
            U256::from(20_000_000u64),
            collector,
            signature.clone(),
        )
        .send()
        .await?
        .get_receipt()
        .await?;
    ensure!(receipt.status(), "authorize through Permit2 reverted");

    let hash = payment_info_hash(&info, chain_id, escrow_address);
    let state = escrow.paymentState(hash).call().await?;
    assert!(state.hasCollectedPayment);
    assert_eq!(state.capturableAmount, U120::from(20_000_000u64));
    let store = escrow.getTokenStore(operator_address).call().await?;
    assert_eq!(chain.balance(store).await?, U256::from(20_000_000u64));
    assert_eq!(
        chain.balance(payer.address()).await?,
        U256::from(80_000_000u64)
    );

    let nonce = U256::from_be_bytes(payer_agnostic_hash(&info, chain_id, escrow_address).0);
    let word = permit2
        .nonceBitmap(payer.address(), nonce >> 8)
        .call()
        .await?;
    let bit = (nonce & U256::from(0xffu64)).to::<usize>();
    ensure!(word.bit(bit), "Permit2 spent the payment's nonce");

    // The same signature again: the escrow has the payment already.
    let again = escrow
        .authorize(info, U256::from(1u64), collector, signature)
        .call()
        .await
        .err()
        .ok_or_else(|| eyre!("a second authorize must be refused"))?;
    let decoded = again
        .as_decoded_interface_error::<AuthCaptureEscrow::AuthCaptureEscrowErrors>()
        .ok_or_else(|| eyre!("an escrow error, not {again}"))?;
    assert!(matches!(
        decoded,
        AuthCaptureEscrow::AuthCaptureEscrowErrors::PaymentAlreadyCollected(e)
            if e.paymentInfoHash == hash
    ));
    Ok(())
}
