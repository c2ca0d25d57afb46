//! Rust bindings for the x402-escrow contracts.
//!
//! * [`contracts`]: typed `sol!` bindings (`#[sol(rpc)]`) with the deploy-profile bytecode of
//!   `AuthCaptureEscrow`, `TokenStore`, the collectors, `TestUSDC` and `Multicall3`.
//! * [`interfaces`]: the token interfaces production code speaks to, [`IERC20`] and
//!   [`IERC3009`] (`TestUSDC` is for development chains).
//! * [`hash`]: the escrow's payment hashes computed off chain.
//! * [`eip3009`]: ERC-3009 authorizations: build, sign (as the x402 client does) and verify.
//! * [`deploy`]: deterministic CREATE2 deployment and `deployments/<chainId>.json` files.
//!
//! The contracts are compiled by `build.rs` with the pinned toolchain (`tools/toolchain`,
//! `FOUNDRY_PROFILE=deploy`), so the bytecode here is the bytecode that gets deployed. Without
//! the toolchain (no Node, or this crate used as a dependency) `build.rs` reads the same
//! artifacts from the snapshot committed under `bindings/artifacts/`, which a test keeps equal to
//! a fresh forge build; `X402_BINDINGS_FROM=forge|snapshot` forces either (see `build.rs`).

#![warn(missing_docs)]

pub mod contracts;
pub mod deploy;
pub mod eip3009;
pub mod hash;
pub mod interfaces;

pub use contracts::{
    AuthCaptureEscrow, AuthCaptureEscrowV1_1, ERC3009PaymentCollector, IAuthCaptureEscrowV1_1,
    Multicall3, OperatorRefundCollector, PaymentInfo, PaymentState, Permit2PaymentCollector,
    PreApprovalPaymentCollector, TestUSDC, TokenStore,
};
pub use deploy::{
    Deployment, Deployments, EscrowVersion, TokenInfo, deploy_all, predict_addresses,
};
pub use eip3009::{
    Authorization, Eip3009Error, ReceiveWithAuthorization, TransferWithAuthorization, token_domain,
};
pub use hash::{payer_agnostic_hash, payment_info_hash};
pub use interfaces::{IERC20, IERC3009};
