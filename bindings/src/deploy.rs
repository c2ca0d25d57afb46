//! Deterministic deployment (CREATE2 through the deterministic deployment proxy) and the
//! committed deployment files (`deployments/<chainId>.json`).
//!
//! Every contract is created by [`CREATE2_DEPLOYER`] with one salt, so its address depends only
//! on the salt and its init code (bytecode ‖ constructor arguments): the same on every chain,
//! whether deployed by [`deploy_all`] or by `script/Deploy.s.sol` (forge routes
//! `new C{salt: s}(…)` through the same proxy). [`predict_addresses`] computes them off chain.
//!
//! | contract | constructor arguments |
//! |---|---|
//! | `AuthCaptureEscrow` | none (it creates its `TokenStore` implementation with CREATE, nonce 1) |
//! | `ERC3009PaymentCollector` | escrow, Multicall3 |
//! | `PreApprovalPaymentCollector` | escrow |
//! | `OperatorRefundCollector` | escrow |
//! | `Permit2PaymentCollector` (only where [`PERMIT2`] has code) | escrow, [`PERMIT2`], Multicall3 |
//! | `OperatorBatchExecutor` (the EIP-7702 delegate for batching) | none |
//! | `Multicall3` (dev chains without the public one) | none |
//! | `TestUSDC` (dev chains) | `"USD Coin"`, `"USDC"`, `"2"`, owner = deployer |

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, B256, Bytes, TxHash, address, b256};
use alloy::providers::{PendingTransactionError, Provider};
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::SolConstructor;
use alloy::transports::TransportError;
use serde::{Deserialize, Serialize};

use crate::contracts::{
    AuthCaptureEscrow, ERC3009PaymentCollector, Multicall3, OperatorBatchExecutor,
    OperatorRefundCollector, Permit2PaymentCollector, PreApprovalPaymentCollector, TestUSDC,
};

/// The deterministic deployment proxy (Arachnid's CREATE2 factory, forge's default
/// `create2_deployer`; preinstalled on anvil and present on most public chains). Calldata is
/// `salt ‖ initCode`; it deploys with CREATE2 and returns the new address.
pub const CREATE2_DEPLOYER: Address = address!("4e59b44847b379578588920ca78fbf26c0b4956c");

/// The public Multicall3 singleton (`tryAggregate` is used for ERC-6492 prepare calls).
pub const MULTICALL3: Address = address!("cA11bde05977b3631167028862bE2a173976CA11");

/// Uniswap Permit2, at the same address on every chain that has it. The Permit2 payment
/// collector is deployed only where this address has code (not on a fresh anvil: a test chain
/// places Permit2 there first, see the testkit).
pub const PERMIT2: Address = address!("000000000022D473030F116dDEE9F6B43aC78BA3");

/// anvil's default chain id; `script/Deploy.s.sol` treats it as a development chain.
pub const ANVIL_CHAIN_ID: u64 = 31337;

/// The default CREATE2 salt, `keccak256("x402-escrow.deploy.v1")` (also `Deploy.s.sol`'s
/// default when `DEPLOY_SALT` is unset).
pub const DEFAULT_SALT: B256 =
    b256!("6daa495a5cd9e2835c49c1c51966843e7ac6baa2c885399ae0b84318a7612f90");

/// The development token's name (also its EIP-712 domain name).
pub const TEST_TOKEN_NAME: &str = "USD Coin";
/// The development token's symbol.
pub const TEST_TOKEN_SYMBOL: &str = "USDC";
/// The development token's EIP-712 domain version.
pub const TEST_TOKEN_VERSION: &str = "2";
/// The development token's decimals.
pub const TEST_TOKEN_DECIMALS: u8 = 6;

/// The interface version of an `AuthCaptureEscrow` deployment: how its `capture` and `charge`
/// take the fee, and which `PaymentCaptured` / `PaymentCharged` events it emits. JSON `"1.0"` /
/// `"1.1"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EscrowVersion {
    /// Commerce Payments v1.0: `uint16 feeBps` (ours, and the canonical v1.0 deployment).
    #[default]
    #[serde(rename = "1.0")]
    V1_0,
    /// Commerce Payments v1.1 (base/commerce-payments PR #90): `uint256 feeAmount` in token
    /// units, bounded by the payment's fee range; error `FeeAmountOutOfRange`.
    #[serde(rename = "1.1")]
    V1_1,
}

impl EscrowVersion {
    /// `"1.0"` or `"1.1"`, as in the deployment JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            EscrowVersion::V1_0 => "1.0",
            EscrowVersion::V1_1 => "1.1",
        }
    }
}

impl std::fmt::Display for EscrowVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The x402-escrow contracts on one chain: the JSON of `deployments/<chainId>.json` (camelCase).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// The chain (EIP-155 id).
    pub chain_id: u64,
    /// The escrow's interface version (`"1.0"` when absent: records written before versions
    /// were recorded are all v1.0).
    #[serde(default)]
    pub version: EscrowVersion,
    /// `AuthCaptureEscrow`.
    pub auth_capture_escrow: Address,
    /// Whether the escrow has the batch entry points `captureBatch` / `voidBatch` (ours does,
    /// the canonical Commerce Payments escrows do not); `false` when absent, so a record of
    /// unknown origin never gets a batch call it cannot take.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub batch_calls: bool,
    /// The escrow's `tokenStoreImplementation()`; absent where not recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_store_implementation: Option<Address>,
    /// `ERC3009PaymentCollector` (what x402 payers sign `ReceiveWithAuthorization` to).
    pub erc3009_payment_collector: Address,
    /// `PreApprovalPaymentCollector`; absent where not recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_approval_payment_collector: Option<Address>,
    /// `OperatorRefundCollector`.
    pub operator_refund_collector: Address,
    /// `Permit2PaymentCollector` (what x402 payers sign Permit2 `PermitTransferFrom` for, as its
    /// spender); absent where not deployed (a chain without Permit2, or not recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permit2_payment_collector: Option<Address>,
    /// The Multicall3 the ERC-3009 collector uses.
    pub multicall3: Address,
    /// `OperatorBatchExecutor`, the EIP-7702 delegate through which operators batch escrow
    /// calls; absent where not deployed (e.g. the canonical Commerce Payments records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_executor: Option<Address>,
    /// The payment token recorded for this chain (USDC, or `TestUSDC` on dev chains).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<TokenInfo>,
}

/// A payment token and its EIP-712 domain parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    /// The token contract.
    pub address: Address,
    /// `name()`, also the EIP-712 domain name (x402 `extra.name`).
    pub name: String,
    /// The EIP-712 domain version (x402 `extra.version`).
    pub version: String,
    /// `symbol()`.
    pub symbol: String,
    /// `decimals()`.
    pub decimals: u8,
}

impl TokenInfo {
    /// The token's EIP-712 domain on `chain_id` (for ERC-3009 signatures).
    pub fn domain(&self, chain_id: u64) -> alloy::sol_types::Eip712Domain {
        crate::eip3009::token_domain(&self.name, &self.version, chain_id, self.address)
    }
}

/// Errors reading or writing deployment files.
#[derive(Debug, thiserror::Error)]
pub enum DeploymentsError {
    /// The file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a valid deployment.
    #[error("{path}: invalid deployment JSON: {source}")]
    Json {
        /// The path.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// `<chainId>.json` holds another chain's deployment.
    #[error("{path}: file is named for chain {file_chain_id} but holds chainId {chain_id}")]
    ChainIdMismatch {
        /// The path.
        path: PathBuf,
        /// The chain id in the file name.
        file_chain_id: u64,
        /// The `chainId` inside.
        chain_id: u64,
    },
}

impl Deployment {
    /// Reads one deployment file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, DeploymentsError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| DeploymentsError::Io {
            path: path.to_owned(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| DeploymentsError::Json {
            path: path.to_owned(),
            source,
        })
    }

    /// Writes the deployment as pretty JSON (with a trailing newline).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), DeploymentsError> {
        let path = path.as_ref();
        let mut json =
            serde_json::to_string_pretty(self).map_err(|source| DeploymentsError::Json {
                path: path.to_owned(),
                source,
            })?;
        json.push('\n');
        std::fs::write(path, json).map_err(|source| DeploymentsError::Io {
            path: path.to_owned(),
            source,
        })
    }
}

/// Deployments by chain id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deployments(pub BTreeMap<u64, Deployment>);

impl Deployments {
    /// Reads every `<chainId>.json` in `dir` (other files are ignored) and checks that each
    /// file's `chainId` matches its name.
    pub fn load_dir(dir: impl AsRef<Path>) -> Result<Self, DeploymentsError> {
        let dir = dir.as_ref();
        let io = |source| DeploymentsError::Io {
            path: dir.to_owned(),
            source,
        };
        let mut deployments = BTreeMap::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            if path.extension().is_none_or(|ext| ext != "json") {
                continue;
            }
            let Some(file_chain_id) = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            let deployment = Deployment::load(&path)?;
            if deployment.chain_id != file_chain_id {
                return Err(DeploymentsError::ChainIdMismatch {
                    path,
                    file_chain_id,
                    chain_id: deployment.chain_id,
                });
            }
            deployments.insert(file_chain_id, deployment);
        }
        Ok(Self(deployments))
    }

    /// The committed canonical deployments (`deployments/8453.json`, `deployments/84532.json`:
    /// Base and Base Sepolia, v1.0), compiled into the crate.
    pub fn canonical() -> Result<Self, DeploymentsError> {
        const FILES: [(&str, &str); 2] = [
            (
                "deployments/8453.json",
                include_str!("../../deployments/8453.json"),
            ),
            (
                "deployments/84532.json",
                include_str!("../../deployments/84532.json"),
            ),
        ];
        let mut deployments = BTreeMap::new();
        for (path, text) in FILES {
            let deployment: Deployment =
                serde_json::from_str(text).map_err(|source| DeploymentsError::Json {
                    path: path.into(),
                    source,
                })?;
            deployments.insert(deployment.chain_id, deployment);
        }
        Ok(Self(deployments))
    }

    /// The deployment on `chain_id`, if any.
    pub fn get(&self, chain_id: u64) -> Option<&Deployment> {
        self.0.get(&chain_id)
    }

    /// All deployments, by ascending chain id.
    pub fn iter(&self) -> impl Iterator<Item = &Deployment> {
        self.0.values()
    }

    /// The deployment (on any chain) whose escrow is `escrow`.
    pub fn by_escrow(&self, escrow: Address) -> Option<&Deployment> {
        self.iter().find(|d| d.auth_capture_escrow == escrow)
    }
}

/// The addresses a deployment with a given salt and deployer gets (see [`predict_addresses`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PredictedAddresses {
    /// `AuthCaptureEscrow`.
    pub auth_capture_escrow: Address,
    /// Its `TokenStore` implementation (created by the escrow's constructor, CREATE nonce 1).
    pub token_store_implementation: Address,
    /// `ERC3009PaymentCollector`.
    pub erc3009_payment_collector: Address,
    /// `PreApprovalPaymentCollector`.
    pub pre_approval_payment_collector: Address,
    /// `OperatorRefundCollector`.
    pub operator_refund_collector: Address,
    /// Where `Permit2PaymentCollector` is (or would be) deployed; it is deployed only on chains
    /// where [`PERMIT2`] has code.
    pub permit2_payment_collector: Address,
    /// The Multicall3 used: ours (CREATE2) or the public [`MULTICALL3`].
    pub multicall3: Address,
    /// `OperatorBatchExecutor`.
    pub batch_executor: Address,
    /// `TestUSDC`, on development deployments.
    pub test_usdc: Option<Address>,
}

impl PredictedAddresses {
    /// The [`Deployment`] record of these addresses on `chain_id` (with the `TestUSDC` token
    /// info on development deployments), for a chain without Permit2 (a fresh anvil): no
    /// `Permit2PaymentCollector`. See [`Self::to_deployment_on`].
    pub fn to_deployment(&self, chain_id: u64) -> Deployment {
        self.to_deployment_on(chain_id, false)
    }

    /// The [`Deployment`] record of these addresses on `chain_id`, where `has_permit2` says
    /// whether [`PERMIT2`] has code there (and so whether the Permit2 collector is deployed).
    pub fn to_deployment_on(&self, chain_id: u64, has_permit2: bool) -> Deployment {
        Deployment {
            chain_id,
            version: EscrowVersion::V1_0,
            auth_capture_escrow: self.auth_capture_escrow,
            batch_calls: true,
            token_store_implementation: Some(self.token_store_implementation),
            erc3009_payment_collector: self.erc3009_payment_collector,
            pre_approval_payment_collector: Some(self.pre_approval_payment_collector),
            operator_refund_collector: self.operator_refund_collector,
            permit2_payment_collector: has_permit2.then_some(self.permit2_payment_collector),
            multicall3: self.multicall3,
            batch_executor: Some(self.batch_executor),
            token: self.test_usdc.map(|address| TokenInfo {
                address,
                name: TEST_TOKEN_NAME.to_owned(),
                version: TEST_TOKEN_VERSION.to_owned(),
                symbol: TEST_TOKEN_SYMBOL.to_owned(),
                decimals: TEST_TOKEN_DECIMALS,
            }),
        }
    }
}

/// One contract to create through [`CREATE2_DEPLOYER`].
struct Planned {
    name: &'static str,
    init_code: Vec<u8>,
    address: Address,
}

impl Planned {
    fn new(name: &'static str, bytecode: &Bytes, constructor_args: Vec<u8>, salt: B256) -> Self {
        let init_code = [bytecode.as_ref(), &constructor_args].concat();
        let address = CREATE2_DEPLOYER.create2_from_code(salt, &init_code);
        Self {
            name,
            init_code,
            address,
        }
    }
}

/// The contracts of a deployment, in deployment order, and their addresses. The Permit2
/// collector is planned only `with_permit2`; its address is predicted either way.
fn plan(
    salt: B256,
    deployer: Address,
    dev: bool,
    own_multicall3: bool,
    with_permit2: bool,
) -> (PredictedAddresses, Vec<Planned>) {
    let mut planned = Vec::new();

    let multicall3 = if own_multicall3 {
        let m = Planned::new("Multicall3", &Multicall3::BYTECODE, Vec::new(), salt);
        let address = m.address;
        planned.push(m);
        address
    } else {
        MULTICALL3
    };

    let escrow = Planned::new(
        "AuthCaptureEscrow",
        &AuthCaptureEscrow::BYTECODE,
        Vec::new(),
        salt,
    );
    let escrow_address = escrow.address;
    planned.push(escrow);

    let erc3009 = Planned::new(
        "ERC3009PaymentCollector",
        &ERC3009PaymentCollector::BYTECODE,
        ERC3009PaymentCollector::constructorCall {
            authCaptureEscrow_: escrow_address,
            multicall3_: multicall3,
        }
        .abi_encode(),
        salt,
    );
    let pre_approval = Planned::new(
        "PreApprovalPaymentCollector",
        &PreApprovalPaymentCollector::BYTECODE,
        PreApprovalPaymentCollector::constructorCall {
            authCaptureEscrow_: escrow_address,
        }
        .abi_encode(),
        salt,
    );
    let refund = Planned::new(
        "OperatorRefundCollector",
        &OperatorRefundCollector::BYTECODE,
        OperatorRefundCollector::constructorCall {
            authCaptureEscrow_: escrow_address,
        }
        .abi_encode(),
        salt,
    );
    let permit2 = Planned::new(
        "Permit2PaymentCollector",
        &Permit2PaymentCollector::BYTECODE,
        Permit2PaymentCollector::constructorCall {
            authCaptureEscrow_: escrow_address,
            permit2_: PERMIT2,
            multicall3_: multicall3,
        }
        .abi_encode(),
        salt,
    );
    let executor = Planned::new(
        "OperatorBatchExecutor",
        &OperatorBatchExecutor::BYTECODE,
        Vec::new(),
        salt,
    );
    let test_usdc = dev.then(|| {
        Planned::new(
            "TestUSDC",
            &TestUSDC::BYTECODE,
            TestUSDC::constructorCall {
                name_: TEST_TOKEN_NAME.to_owned(),
                symbol_: TEST_TOKEN_SYMBOL.to_owned(),
                version_: TEST_TOKEN_VERSION.to_owned(),
                owner_: deployer,
            }
            .abi_encode(),
            salt,
        )
    });

    let predicted = PredictedAddresses {
        auth_capture_escrow: escrow_address,
        token_store_implementation: escrow_address.create(1),
        erc3009_payment_collector: erc3009.address,
        pre_approval_payment_collector: pre_approval.address,
        operator_refund_collector: refund.address,
        permit2_payment_collector: permit2.address,
        multicall3,
        batch_executor: executor.address,
        test_usdc: test_usdc.as_ref().map(|t| t.address),
    };
    planned.extend([erc3009, pre_approval, refund]);
    planned.extend(with_permit2.then_some(permit2));
    planned.push(executor);
    planned.extend(test_usdc);
    (predicted, planned)
}

/// The CREATE2 addresses of a deployment with `salt` by `deployer`, computed off chain.
///
/// `dev` adds `TestUSDC` (owned by `deployer`, the only address-dependent part);
/// `own_multicall3` means our `Multicall3` is deployed (dev chains where [`MULTICALL3`] has no
/// code) and the ERC-3009 collector is built with its address. [`deploy_all`] decides the latter
/// from the chain: `own_multicall3 = dev && code_at(MULTICALL3).is_empty()`.
pub fn predict_addresses(
    salt: B256,
    deployer: Address,
    dev: bool,
    own_multicall3: bool,
) -> PredictedAddresses {
    plan(salt, deployer, dev, own_multicall3, false).0
}

/// Errors from [`deploy_all`].
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// An RPC request failed.
    #[error("RPC error: {0}")]
    Rpc(#[from] TransportError),
    /// Waiting for a deployment transaction failed.
    #[error("waiting for the deployment transaction failed: {0}")]
    PendingTransaction(#[from] PendingTransactionError),
    /// The chain has no deterministic deployment proxy at [`CREATE2_DEPLOYER`].
    #[error("chain {chain_id} has no CREATE2 deployer at {CREATE2_DEPLOYER}")]
    MissingCreate2Deployer {
        /// The chain.
        chain_id: u64,
    },
    /// A non-development chain has no Multicall3 at [`MULTICALL3`].
    #[error(
        "chain {chain_id} has no Multicall3 at {MULTICALL3} (only dev deployments bring their own)"
    )]
    MissingMulticall3 {
        /// The chain.
        chain_id: u64,
    },
    /// A deployment transaction reverted.
    #[error("deploying {contract} reverted (transaction {tx_hash})")]
    Reverted {
        /// The contract.
        contract: &'static str,
        /// The transaction.
        tx_hash: TxHash,
    },
    /// The deployment transaction succeeded but left no code at the predicted address.
    #[error("deploying {contract} left no code at the predicted address {address}")]
    NoCode {
        /// The contract.
        contract: &'static str,
        /// The predicted address.
        address: Address,
    },
}

/// Deploys every contract with CREATE2 through [`CREATE2_DEPLOYER`], from `deployer` (the
/// provider must be able to send transactions from it: a wallet filler or an unlocked dev
/// account), and returns the [`Deployment`].
///
/// Idempotent: a contract whose predicted address already has code is not deployed again, so a
/// re-run after a partial failure completes the deployment. Addresses equal
/// [`predict_addresses`] and those `script/Deploy.s.sol` deploys with the same salt.
///
/// With `dev`, also deploys `TestUSDC` and, when [`MULTICALL3`] has no code (a fresh anvil),
/// our `Multicall3`. Without `dev`, a chain without the public Multicall3 is an error.
/// `Permit2PaymentCollector` is deployed (and recorded) when [`PERMIT2`] has code, and skipped
/// otherwise: the record then has no `permit2PaymentCollector`.
pub async fn deploy_all<P: Provider>(
    provider: &P,
    deployer: Address,
    salt: B256,
    dev: bool,
) -> Result<Deployment, DeployError> {
    let chain_id = provider.get_chain_id().await?;
    if provider.get_code_at(CREATE2_DEPLOYER).await?.is_empty() {
        return Err(DeployError::MissingCreate2Deployer { chain_id });
    }
    let multicall3_missing = provider.get_code_at(MULTICALL3).await?.is_empty();
    if multicall3_missing && !dev {
        return Err(DeployError::MissingMulticall3 { chain_id });
    }

    let has_permit2 = !provider.get_code_at(PERMIT2).await?.is_empty();
    let (predicted, planned) = plan(salt, deployer, dev, multicall3_missing, has_permit2);
    for contract in planned {
        if !provider.get_code_at(contract.address).await?.is_empty() {
            continue;
        }
        let input: Bytes = [salt.as_slice(), &contract.init_code].concat().into();
        let tx = TransactionRequest::default()
            .with_from(deployer)
            .with_to(CREATE2_DEPLOYER)
            .with_input(input);
        let receipt = provider.send_transaction(tx).await?.get_receipt().await?;
        if !receipt.status() {
            return Err(DeployError::Reverted {
                contract: contract.name,
                tx_hash: receipt.transaction_hash,
            });
        }
        if provider.get_code_at(contract.address).await?.is_empty() {
            return Err(DeployError::NoCode {
                contract: contract.name,
                address: contract.address,
            });
        }
    }
    Ok(predicted.to_deployment_on(chain_id, has_permit2))
}

#[cfg(test)]
mod tests {
    use alloy::primitives::keccak256;

    use super::*;

    #[test]
    fn default_salt_is_documented_preimage() {
        assert_eq!(keccak256("x402-escrow.deploy.v1"), DEFAULT_SALT);
    }

    #[test]
    fn prediction_depends_on_inputs_as_documented() {
        let a = Address::repeat_byte(1);
        let b = Address::repeat_byte(2);
        let p = predict_addresses(DEFAULT_SALT, a, true, true);
        let q = predict_addresses(DEFAULT_SALT, b, true, true);
        // Only the test token depends on the deployer.
        assert_eq!(p.auth_capture_escrow, q.auth_capture_escrow);
        assert_eq!(p.erc3009_payment_collector, q.erc3009_payment_collector);
        assert_ne!(p.test_usdc, q.test_usdc);
        // The collector embeds the Multicall3 address.
        let r = predict_addresses(DEFAULT_SALT, a, false, false);
        assert_eq!(r.multicall3, MULTICALL3);
        assert_eq!(r.test_usdc, None);
        assert_eq!(p.auth_capture_escrow, r.auth_capture_escrow);
        assert_ne!(p.erc3009_payment_collector, r.erc3009_payment_collector);
        assert_eq!(p.operator_refund_collector, r.operator_refund_collector);
        // Another salt, other addresses.
        let s = predict_addresses(B256::ZERO, a, true, true);
        assert_ne!(p.auth_capture_escrow, s.auth_capture_escrow);
    }

    #[test]
    fn canonical_deployments_parse() {
        let d = Deployments::canonical().unwrap();
        let base = d.get(8453).unwrap();
        assert_eq!(
            base.auth_capture_escrow,
            address!("BdEA0D1bcC5966192B070Fdf62aB4EF5b4420cff")
        );
        assert_eq!(base.token.as_ref().unwrap().name, "USD Coin");
        // The canonical v1.0 Permit2 collector (same address on Base and Base Sepolia).
        assert_eq!(
            base.permit2_payment_collector,
            Some(address!("992476B9Ee81d52a5BdA0622C333938D0Af0aB26"))
        );
        let sepolia = d.get(84532).unwrap();
        assert_eq!(sepolia.token.as_ref().unwrap().name, "USDC");
        assert_eq!(
            d.by_escrow(base.auth_capture_escrow).map(|d| d.chain_id),
            Some(8453)
        );
    }

    #[test]
    fn deployment_json_shape() {
        let p = predict_addresses(DEFAULT_SALT, Address::repeat_byte(1), true, true);
        let d = p.to_deployment(ANVIL_CHAIN_ID);
        let json = serde_json::to_value(&d).unwrap();
        for key in [
            "chainId",
            "authCaptureEscrow",
            "tokenStoreImplementation",
            "erc3009PaymentCollector",
            "preApprovalPaymentCollector",
            "operatorRefundCollector",
            "multicall3",
        ] {
            assert!(json.get(key).is_some(), "missing {key}");
        }
        assert_eq!(json["token"]["decimals"], 6);
        assert!(
            json.get("permit2PaymentCollector").is_none(),
            "no Permit2 collector on a chain without Permit2"
        );
        assert_eq!(serde_json::from_value::<Deployment>(json).unwrap(), d);

        let with_permit2 = p.to_deployment_on(ANVIL_CHAIN_ID, true);
        let json = serde_json::to_value(&with_permit2).unwrap();
        assert_eq!(
            json["permit2PaymentCollector"],
            serde_json::to_value(p.permit2_payment_collector).unwrap()
        );
        assert_eq!(
            serde_json::from_value::<Deployment>(json).unwrap(),
            with_permit2
        );
    }

    #[test]
    fn permit2_collector_prediction_embeds_escrow_permit2_and_multicall3() {
        let p = predict_addresses(DEFAULT_SALT, Address::repeat_byte(1), true, true);
        let init_code = [
            Permit2PaymentCollector::BYTECODE.as_ref(),
            &Permit2PaymentCollector::constructorCall {
                authCaptureEscrow_: p.auth_capture_escrow,
                permit2_: PERMIT2,
                multicall3_: p.multicall3,
            }
            .abi_encode(),
        ]
        .concat();
        assert_eq!(
            p.permit2_payment_collector,
            CREATE2_DEPLOYER.create2_from_code(DEFAULT_SALT, &init_code)
        );
        // Like the ERC-3009 collector, it depends on which Multicall3 is used.
        let public = predict_addresses(DEFAULT_SALT, Address::repeat_byte(1), false, false);
        assert_ne!(
            p.permit2_payment_collector,
            public.permit2_payment_collector
        );
    }

    #[test]
    fn load_dir_reads_chain_files_and_checks_ids() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deployments");
        let loaded = Deployments::load_dir(&repo).unwrap();
        let canonical = Deployments::canonical().unwrap();
        for d in canonical.iter() {
            assert_eq!(loaded.get(d.chain_id), Some(d));
        }

        let dir = std::env::temp_dir().join(format!("x402-deployments-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut d = canonical.get(8453).unwrap().clone();
        d.save(dir.join("8453.json")).unwrap();
        std::fs::write(dir.join("README.md"), "ignored").unwrap();
        std::fs::write(dir.join("31337.parity-1.json"), "ignored").unwrap();
        assert_eq!(Deployments::load_dir(&dir).unwrap().0.len(), 1);

        d.chain_id = 1;
        d.save(dir.join("10.json")).unwrap();
        let err = Deployments::load_dir(&dir).unwrap_err();
        assert!(matches!(
            err,
            DeploymentsError::ChainIdMismatch {
                file_chain_id: 10,
                chain_id: 1,
                ..
            }
        ));
        std::fs::write(dir.join("10.json"), "{").unwrap();
        assert!(matches!(
            Deployments::load_dir(&dir).unwrap_err(),
            DeploymentsError::Json { .. }
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
