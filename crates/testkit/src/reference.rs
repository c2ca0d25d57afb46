//! Escrows other than our deployed one, on a [`Chain`], as deployment records the operator can
//! be configured with:
//!
//! - [`deploy_reference_v1_0`]: the public Commerce Payments contracts themselves, compiled (the
//!   v1.0 set in `../shared/canonical/v1.0/`, read in place: never copied into the project):
//!   `AuthCaptureEscrow` (which creates its `TokenStore`), `ERC3009PaymentCollector(escrow,
//!   multicall3)`, `Permit2PaymentCollector(escrow, permit2, multicall3)` (where Permit2 has
//!   code), `PreApprovalPaymentCollector(escrow)` and `OperatorRefundCollector(escrow)`;
//! - [`deploy_ours_v1_1`]: our `AuthCaptureEscrowV1_1` (the v1.1 fee interface) with our
//!   collectors, the stand-in for a v1.1 escrow.
//!
//! Both are plain CREATE deployments by the chain's deployer (dev key 0) and reuse the chain's
//! test token, Multicall3 and batch executor (the executor calls any escrow as the signer). The
//! records say what the escrow is: `version` (`1.0` / `1.1`) and `batchCalls` (the reference
//! escrow has no `captureBatch` / `voidBatch`).

use std::path::PathBuf;

use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, Bytes};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::SolValue;
use x402_escrow_bindings::contracts::WORKSPACE_ROOT;
use x402_escrow_bindings::deploy::PERMIT2;
use x402_escrow_bindings::{
    AuthCaptureEscrow, AuthCaptureEscrowV1_1, Deployment, ERC3009PaymentCollector, EscrowVersion,
    OperatorRefundCollector, Permit2PaymentCollector, PreApprovalPaymentCollector,
};

use crate::{Chain, Error, Result};

/// `../shared/canonical/v1.0/`, from the workspace root: the compiled reference contracts.
pub fn reference_v1_0_dir() -> PathBuf {
    PathBuf::from(WORKSPACE_ROOT).join("../shared/canonical/v1.0")
}

/// The creation bytecode (`bytecode`) of the reference contract `name`.
fn reference_bytecode(name: &str) -> Result<Bytes> {
    let path = reference_v1_0_dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
        what: format!("reading {}", path.display()),
        source,
    })?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::Reference(format!("{}: {e}", path.display())))?;
    let hex = json
        .get("bytecode")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| Error::Reference(format!("{}: no string `bytecode`", path.display())))?;
    hex.parse()
        .map_err(|e| Error::Reference(format!("{}: `bytecode`: {e}", path.display())))
}

/// Deploys `init_code` (creation code ‖ ABI-encoded constructor arguments) with CREATE from the
/// chain's deployer and returns the new contract's address.
async fn create(chain: &Chain, name: &str, init_code: Vec<u8>) -> Result<Address> {
    let tx = TransactionRequest::default()
        .with_from(chain.deployer.address())
        .with_deploy_code(Bytes::from(init_code));
    let pending = chain
        .admin
        .send_transaction(tx)
        .await
        .map_err(|source| Error::Rpc {
            what: "sending a contract creation",
            source: Box::new(source),
        })?;
    let receipt = pending
        .get_receipt()
        .await
        .map_err(|source| Error::Receipt {
            what: "deploying a contract",
            source: Box::new(source),
        })?;
    match receipt.contract_address {
        Some(address) if receipt.status() => Ok(address),
        _ => Err(Error::Reference(format!(
            "deploying {name} failed (transaction {})",
            receipt.transaction_hash
        ))),
    }
}

/// Deploys the reference contract `name` with constructor arguments `args` (ABI-encoded).
async fn create_reference(chain: &Chain, name: &str, args: Vec<u8>) -> Result<Address> {
    let code = reference_bytecode(name)?;
    create(chain, name, [code.as_ref(), &args].concat()).await
}

/// Whether Permit2 has code on the chain (then a Permit2 collector is deployed too).
async fn has_permit2(chain: &Chain) -> Result<bool> {
    let code = chain
        .plain
        .get_code_at(PERMIT2)
        .await
        .map_err(|source| Error::Rpc {
            what: "reading Permit2's code",
            source: Box::new(source),
        })?;
    Ok(!code.is_empty())
}

/// The escrow's `tokenStoreImplementation()` (the same view in every version).
async fn token_store_implementation(chain: &Chain, escrow: Address) -> Result<Address> {
    AuthCaptureEscrow::new(escrow, chain.plain.clone())
        .tokenStoreImplementation()
        .call()
        .await
        .map_err(|source| Error::Contract {
            what: "reading tokenStoreImplementation()",
            source: Box::new(source),
        })
}

/// The public Commerce Payments v1.0 contracts (`../shared/canonical/v1.0/`) deployed on
/// `chain`; the record of them (version `1.0`, no batch calls; the chain's token, Multicall3 and
/// batch executor). `chain.deployment` is left as it is: the caller decides which record the
/// operator uses.
pub async fn deploy_reference_v1_0(chain: &Chain) -> Result<Deployment> {
    let ours = &chain.deployment;
    let multicall3 = ours.multicall3;
    let escrow = create_reference(chain, "AuthCaptureEscrow", Vec::new()).await?;
    let erc3009 = create_reference(
        chain,
        "ERC3009PaymentCollector",
        (escrow, multicall3).abi_encode_params(),
    )
    .await?;
    let permit2 = if has_permit2(chain).await? {
        Some(
            create_reference(
                chain,
                "Permit2PaymentCollector",
                (escrow, PERMIT2, multicall3).abi_encode_params(),
            )
            .await?,
        )
    } else {
        None
    };
    let pre_approval =
        create_reference(chain, "PreApprovalPaymentCollector", escrow.abi_encode()).await?;
    let refund = create_reference(chain, "OperatorRefundCollector", escrow.abi_encode()).await?;
    Ok(Deployment {
        chain_id: ours.chain_id,
        version: EscrowVersion::V1_0,
        auth_capture_escrow: escrow,
        batch_calls: false,
        token_store_implementation: Some(token_store_implementation(chain, escrow).await?),
        erc3009_payment_collector: erc3009,
        pre_approval_payment_collector: Some(pre_approval),
        operator_refund_collector: refund,
        permit2_payment_collector: permit2,
        multicall3,
        batch_executor: ours.batch_executor,
        token: ours.token.clone(),
    })
}

/// Our `AuthCaptureEscrowV1_1` (v1.0 and v1.1 entry points) with our collectors deployed on
/// `chain`; the record of them as a v1.1 deployment (version `1.1`: the operator passes fees as
/// amounts and reads the v1.1 events; it has `captureBatch` / `voidBatch`, which take v1.0 fees
/// and are therefore not used for it).
pub async fn deploy_ours_v1_1(chain: &Chain) -> Result<Deployment> {
    let ours = &chain.deployment;
    let multicall3 = ours.multicall3;
    let escrow = create(
        chain,
        "AuthCaptureEscrowV1_1",
        AuthCaptureEscrowV1_1::BYTECODE.to_vec(),
    )
    .await?;
    let with_args = |code: &Bytes, args: Vec<u8>| [code.as_ref(), &args].concat();
    let erc3009 = create(
        chain,
        "ERC3009PaymentCollector",
        with_args(
            &ERC3009PaymentCollector::BYTECODE,
            (escrow, multicall3).abi_encode_params(),
        ),
    )
    .await?;
    let permit2 = if has_permit2(chain).await? {
        Some(
            create(
                chain,
                "Permit2PaymentCollector",
                with_args(
                    &Permit2PaymentCollector::BYTECODE,
                    (escrow, PERMIT2, multicall3).abi_encode_params(),
                ),
            )
            .await?,
        )
    } else {
        None
    };
    let pre_approval = create(
        chain,
        "PreApprovalPaymentCollector",
        with_args(&PreApprovalPaymentCollector::BYTECODE, escrow.abi_encode()),
    )
    .await?;
    let refund = create(
        chain,
        "OperatorRefundCollector",
        with_args(&OperatorRefundCollector::BYTECODE, escrow.abi_encode()),
    )
    .await?;
    Ok(Deployment {
        chain_id: ours.chain_id,
        version: EscrowVersion::V1_1,
        auth_capture_escrow: escrow,
        batch_calls: true,
        token_store_implementation: Some(token_store_implementation(chain, escrow).await?),
        erc3009_payment_collector: erc3009,
        pre_approval_payment_collector: Some(pre_approval),
        operator_refund_collector: refund,
        permit2_payment_collector: permit2,
        multicall3,
        batch_executor: ours.batch_executor,
        token: ours.token.clone(),
    })
}
