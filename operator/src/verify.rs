//! Verification of an x402 `auth-capture` payment before any gas is spent.
//!
//! [`Verifier::verify`] runs the checks in a fixed order, cheapest and most specific first, and
//! stops at the first failure with a typed [`VerifyError`] whose [`VerifyError::code`] is the
//! stable API [`ErrorCode`]:
//!
//! 1. requirements ↔ payload consistency (SDK `derive_from_payment_payload`): payload format,
//!    `accepted` = requirements, value = amount, nonce = payer-agnostic hash, known escrow;
//! 2. chain id = ours; escrow and ERC-3009 collector = a registered deployment;
//! 3. `captureAuthorizer` (`PaymentInfo.operator`) = one of our signer lanes;
//! 4. token = a configured asset; `payTo` = one of the merchant's receivers;
//! 5. amount > 0 and ≤ `maxAmount` (uint120);
//! 6. expiries: the SDK time window, `preApprovalExpiry` ahead by the safety margin, and
//!    `authorizationExpiry` later than now + the merchant's capture deadline + margin;
//! 7. fees: `maxFeeBps ≤ 10000`, `min ≤ max`, our fee inside `[min, max]`, fee receiver zero
//!    or ours;
//! 8. the payer's ECDSA signature (smart-wallet signatures are left to the simulation);
//! 9. on chain: the nonce unused (ERC-3009 `authorizationState`; Permit2 `nonceBitmap`), payer
//!    balance ≥ `maxAmount`, for Permit2 the payer's ERC-20 allowance to Permit2 ≥
//!    `maxAmount` (`permit2_allowance_missing` otherwise), and finally an `eth_call` of
//!    `escrow.authorize(…)` (flow `escrow`) or `escrow.charge(…)` (flow `authorization`) from our
//!    signer, with the payload's token collector (the deployment's ERC-3009 or Permit2
//!    collector) and the payer's signature, unchanged, as `collectorData`.
//!
//! Both x402 `assetTransferMethod`s are accepted: `eip3009` (the default) and `permit2`, for a
//! deployment that has a Permit2 collector (otherwise
//! `invalid_auth_capture_evm_unsupported_asset_transfer_method`).
//!
//! Both x402 `paymentFlow`s are accepted. `escrow` (the default) places a hold the merchant
//! captures or voids later, so `authorizationExpiry` must leave room for the merchant's capture
//! deadline. `authorization` charges at once (authorize + capture in one `charge`, the payment is
//! `captured` and refundable until `refundExpiry`): nothing waits for a capture, so the capture
//! deadline check is replaced by a check that the refund window is still open.

use alloy::contract::{CallBuilder, CallDecoder};
use alloy::primitives::{Address, Bytes, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::sol_types::SolInterface;
use x402_escrow_bindings::contracts::auth_capture_escrow::AuthCaptureEscrow::AuthCaptureEscrowErrors;
use x402_escrow_bindings::{
    AuthCaptureEscrow, IAuthCaptureEscrowV1_1, IERC20, IERC3009, PaymentInfo,
};
use x402_escrow_sdk::escrows::{EscrowRegistry, FeeArgument, fee_amount};
use x402_escrow_sdk::schemes::auth_capture::{
    AssetTransferMethod, AuthCaptureError, DerivedPayment, PaymentFlow, SignatureCheck,
    check_payload_signature, check_timing,
};
use x402_escrow_sdk::wire::{PaymentPayload, PaymentRequirements, SchemePayload};

use x402_escrow_sdk::Network;
use x402_escrow_sdk::buyer::unix_now;
use x402_escrow_sdk::facilitator::reasons;
use x402_escrow_sdk::merchant::{MerchantTerms, TermsAsset, TermsEscrow};
use x402_escrow_sdk::schemes::auth_capture::CLOCK_SKEW_TOLERANCE_SECONDS;

use crate::lifecycle::{Amount, Flow};
#[cfg(doc)]
use crate::service::ErrorCode;
use crate::store::Merchant;

mod error;

use error::from_sdk;

/// The one Permit2 view the verifier reads.
mod permit2_view {
    alloy::sol! {
        /// Permit2's unordered-nonce bitmap.
        #[sol(rpc)]
        interface IPermit2Nonces {
            /// Bit `nonce & 0xff` of word `nonce >> 8` is set once `owner` spent `nonce`.
            function nonceBitmap(address owner, uint256 wordPos) external view returns (uint256);
        }
    }
}

pub use error::{VerifyCause, VerifyError};
use permit2_view::IPermit2Nonces;
use x402_escrow_bindings::deploy::PERMIT2;

/// Our reason for a charge whose refund window closes too soon (x402 names none).
pub const REASON_REFUND_DEADLINE_EXPIRED: &str = "refund_deadline_expired";

/// The escrow's fee ceiling (100 %).
pub const MAX_FEE_BPS: u16 = 10_000;

/// What the verifier accepts.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// Our chain.
    pub chain_id: u64,
    /// Our signer (the primary lane): the `captureAuthorizer` named where one address is asked
    /// for.
    pub operator: Address,
    /// Every signer lane's address, the primary included (empty: `operator` alone). A payment
    /// naming any of them as `captureAuthorizer` is accepted and pinned to that lane.
    pub lanes: Vec<Address>,
    /// Escrow deployments we operate (ours, and the canonical one if configured).
    pub registry: EscrowRegistry,
    /// Tokens we accept.
    pub assets: Vec<Address>,
    /// Our fee in basis points (must fall in the payment's `[minFeeBps, maxFeeBps]`).
    pub fee_bps: u16,
    /// Our fee receiver (a payment's non-zero `feeReceiver` must be this one).
    pub fee_receiver: Address,
    /// Safety margin in seconds on every expiry (time to get the transaction mined).
    pub expiry_margin_secs: u64,
    /// Capture deadline for merchants that configured none (seconds).
    pub default_capture_deadline_secs: u64,
}

impl VerifierConfig {
    /// Every `captureAuthorizer` accepted: the lanes, or `operator` alone.
    pub fn operators(&self) -> Vec<Address> {
        if self.lanes.is_empty() {
            vec![self.operator]
        } else {
            self.lanes.clone()
        }
    }

    /// How long `merchant` has to capture a hold (seconds): its own capture deadline, else the
    /// operator's default.
    pub fn capture_deadline_secs(&self, merchant: &Merchant) -> u64 {
        u64::try_from(merchant.capture_deadline_secs)
            .ok()
            .filter(|s| *s > 0)
            .unwrap_or(self.default_capture_deadline_secs)
    }

    /// What this verifier accepts from `merchant`, as merchants are told (`GET /v1/merchant`):
    /// the settings a merchant layer derives its offers from, so that both sides agree by
    /// construction. `assets` are the accepted tokens with their EIP-712 domains.
    pub fn merchant_terms(&self, merchant: &Merchant, assets: Vec<TermsAsset>) -> MerchantTerms {
        MerchantTerms {
            merchant_id: merchant.id.to_string(),
            name: merchant.name.clone(),
            network: Network::eip155(self.chain_id),
            receivers: merchant.receivers.clone(),
            capture_authorizer: self.operator,
            capture_authorizers: self.operators(),
            fee_recipient: self.fee_receiver,
            fee_bps: self.fee_bps,
            capture_deadline_seconds: self.capture_deadline_secs(merchant),
            expiry_margin_seconds: self.expiry_margin_secs,
            clock_skew_seconds: CLOCK_SKEW_TOLERANCE_SECONDS,
            escrows: self
                .registry
                .deployments()
                .iter()
                .map(|d| TermsEscrow {
                    label: d.label.clone(),
                    escrow: d.escrow,
                    erc3009_collector: d.erc3009_collector,
                    refund_collector: d.refund_collector,
                    permit2_collector: d.permit2_collector,
                })
                .collect(),
            assets,
        }
    }
}

/// A payment that passed every check: what the engine stores and sends.
#[derive(Debug, Clone)]
pub struct VerifiedPayment {
    /// The reconstructed payment (PaymentInfo, hashes, deployment, flow).
    pub derived: DerivedPayment,
    /// The amount to authorize (= `maxAmount` in x402 auth-capture), or to charge (a completed
    /// charge's own `amount`, at most `maxAmount`).
    pub amount: Amount,
    /// The payer's signature (the collector data of `authorize` / `charge`, for the collector
    /// in `derived.token_collector`).
    pub signature: Bytes,
    /// The merchant's capture window in seconds (the auto-void comes this long after the hold;
    /// it was checked to end before `authorizationExpiry` minus the safety margin). Meaningless
    /// for a charge (nothing to capture).
    pub capture_deadline_secs: u64,
    /// How the payment settles: `Authorize` (x402 flow `escrow`) or `Charge` (flow
    /// `authorization`).
    pub flow: Flow,
    /// The fee a charge takes (our `fee_bps`, checked to lie in the payment's range).
    pub fee_bps: u16,
    /// Where a charge sends the fee (the payment's `feeReceiver`, else ours).
    pub fee_receiver: Address,
}

/// The name of the escrow custom error in revert data, if it is one (`"PaymentAlreadyCollected"`).
/// Both interface versions' errors are known (v1.1 adds `FeeAmountOutOfRange`).
pub fn decode_escrow_error(data: &[u8]) -> Option<String> {
    let text = match AuthCaptureEscrowErrors::abi_decode(data) {
        Ok(decoded) => format!("{decoded:?}"),
        Err(_) => format!(
            "{:?}",
            IAuthCaptureEscrowV1_1::IAuthCaptureEscrowV1_1Errors::abi_decode(data).ok()?
        ),
    };
    Some(
        text.split(['(', ' ', '{'])
            .next()
            .unwrap_or(&text)
            .to_owned(),
    )
}

/// Best-effort decoding of an `eth_call` / contract error into a short reason (custom error
/// name, revert string, or the transport error text).
pub fn describe_call_error(err: &alloy::contract::Error) -> String {
    if let Some(data) = err.as_revert_data() {
        if let Some(name) = decode_escrow_error(&data) {
            return name;
        }
        if let Some(reason) = alloy::sol_types::decode_revert_reason(&data) {
            return reason;
        }
        return format!("revert 0x{}", hex::encode(&data));
    }
    err.to_string()
}

/// Runs `call` as `from` (an `eth_call`), keeping only whether it would succeed.
async fn simulate<P: Provider, D: CallDecoder>(
    call: CallBuilder<P, D>,
    from: Address,
) -> Result<(), alloy::contract::Error> {
    call.from(from).call().await.map(|_| ())
}

/// Whether an error is a transport failure rather than a revert.
fn is_transport(err: &alloy::contract::Error) -> bool {
    err.as_revert_data().is_none()
        && matches!(err, alloy::contract::Error::TransportError(e) if !e.is_error_resp())
}

/// Checks x402 payments against our configuration and the chain.
#[derive(Debug, Clone)]
pub struct Verifier {
    provider: DynProvider,
    config: VerifierConfig,
}

impl Verifier {
    /// A verifier reading the chain through `provider`.
    pub fn new(provider: DynProvider, config: VerifierConfig) -> Self {
        Verifier { provider, config }
    }

    /// The configuration.
    pub fn config(&self) -> &VerifierConfig {
        &self.config
    }

    /// The time a payment is judged at: the later of the wall clock and the latest block's
    /// timestamp (unix seconds). See `DESIGN.md`, "Clocks": a chain whose latest block is old
    /// (an idle dev chain, a node that fell behind) must not make a fresh payment look as if it
    /// was signed for too long, and a chain running ahead of the wall clock is what the escrow
    /// will enforce the expiries against. The next block is never earlier than either, so the
    /// later one is the conservative choice for every "still valid when mined" check.
    pub async fn acceptance_now(&self) -> Result<u64, VerifyError> {
        Ok(self.chain_now().await?.max(unix_now()))
    }

    /// The latest block's timestamp (chain time, unix seconds): what the escrow's own expiry
    /// checks compared against when that block was made.
    pub async fn chain_now(&self) -> Result<u64, VerifyError> {
        let block = self
            .provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await
            .map_err(VerifyError::chain_unavailable)?
            .ok_or_else(|| VerifyError::ChainUnavailable("no latest block".into()))?;
        Ok(block.header.timestamp)
    }

    /// Runs every check (see the module docs) for `merchant` at time `now` (unix seconds; the
    /// engine passes [`Verifier::acceptance_now`]). `derived` is what the caller got from
    /// `derive_from_payment_payload(requirements, payment, registry)` with this verifier's
    /// registry (derived once per request; its error is reported in check order).
    pub async fn verify(
        &self,
        merchant: &Merchant,
        requirements: &PaymentRequirements,
        payment: &PaymentPayload,
        derived: Result<DerivedPayment, AuthCaptureError>,
        now: u64,
    ) -> Result<VerifiedPayment, VerifyError> {
        let cfg = &self.config;
        // Chain first: a payment for another network is not ours whatever else it says.
        let found = requirements.network.chain_id();
        if found != cfg.chain_id {
            return Err(VerifyError::WrongChain {
                expected: cfg.chain_id,
                found,
            });
        }
        let derived = derived.map_err(from_sdk)?;
        if derived.chain_id != cfg.chain_id {
            return Err(VerifyError::WrongChain {
                expected: cfg.chain_id,
                found: derived.chain_id,
            });
        }
        let (signature, completion) = match &payment.payload {
            SchemePayload::AuthCapture(payload) => (payload.signature.clone(), &payload.charge),
            SchemePayload::AuthCapturePermit2(payload) => {
                (payload.signature.clone(), &payload.charge)
            }
            _ => {
                return Err(VerifyError::InvalidPayload(
                    "not an auth-capture payload".into(),
                ));
            }
        };
        let flow = match derived.flow {
            PaymentFlow::Escrow => Flow::Authorize,
            PaymentFlow::Authorization => Flow::Charge,
        };
        let info: &PaymentInfo = &derived.payment_info;
        if !cfg.operators().contains(&info.operator) {
            return Err(VerifyError::WrongOperator {
                expected: cfg.operator,
                found: info.operator,
            });
        }
        if !cfg.assets.contains(&info.token) {
            return Err(VerifyError::UnsupportedAsset(info.token));
        }
        if !merchant.receivers.contains(&info.receiver) {
            return Err(VerifyError::PayeeNotAllowed(info.receiver));
        }
        let max_amount: u128 = info.maxAmount.to::<u128>();
        // A charge in its completed form (auth-capture v1.1) names its amount: more than zero
        // and at most what the client authorized (charge is terminal: the rest never leaves the
        // payer). A hold always takes the whole amount.
        let amount = match (flow, completion.amount) {
            (Flow::Charge, Some(charged)) => {
                let charged = u128::try_from(charged.get()).unwrap_or(u128::MAX);
                if charged > max_amount {
                    return Err(VerifyError::invalid_amount(format!(
                        "the charge's amount {charged} is above the authorized {max_amount}"
                    )));
                }
                charged
            }
            _ => max_amount,
        };
        if amount == 0 {
            return Err(VerifyError::InvalidAmount("amount is zero".into()));
        }

        // Expiries.
        check_timing(requirements, &derived, now).map_err(from_sdk)?;
        let pre = info.preApprovalExpiry.to::<u64>();
        let auth = info.authorizationExpiry.to::<u64>();
        let refund = info.refundExpiry.to::<u64>();
        let margin = cfg.expiry_margin_secs;
        if pre <= now.saturating_add(margin) {
            return Err(VerifyError::Expired {
                reason: reasons::AUTH_CAPTURE_AUTHORIZATION_EXPIRED,
                detail: format!(
                    "validBefore (preApprovalExpiry) {pre} is {} s short of now ({now}) + the \
                     operator's auto_void.expiry_margin_secs ({margin} s) needed to get the hold mined",
                    shortfall(pre, now.saturating_add(margin)),
                )
                .into(),
            });
        }
        if !(pre <= auth && auth <= refund) {
            return Err(VerifyError::Expired {
                reason: reasons::AUTH_CAPTURE_DEADLINE_ORDERING,
                detail: format!(
                    "expiries out of order: validBefore {pre}, captureDeadline {auth}, \
                     refundDeadline {refund} (each must be at most the next)"
                )
                .into(),
            });
        }
        let deadline_secs = cfg.capture_deadline_secs(merchant);
        if flow == Flow::Charge {
            // Captured at once: what must stay open is the refund window (already implied by
            // the ordering above and the preApprovalExpiry margin; stated for the reader).
            if refund <= now.saturating_add(margin) {
                return Err(VerifyError::Expired {
                    reason: REASON_REFUND_DEADLINE_EXPIRED,
                    detail: format!(
                        "refundDeadline {refund} is {} s short of now ({now}) + \
                         auto_void.expiry_margin_secs ({margin} s)",
                        shortfall(refund, now.saturating_add(margin)),
                    )
                    .into(),
                });
            }
        } else {
            // The hold must outlive the merchant's capture window (the auto-void comes that long
            // after the hold) plus the margin to get the capture or void mined.
            let needed = required_capture_deadline(now, deadline_secs, margin);
            if auth <= needed {
                return Err(VerifyError::Expired {
                    reason: reasons::AUTH_CAPTURE_CAPTURE_DEADLINE_EXPIRED,
                    detail: format!(
                        "captureDeadline (authorizationExpiry) {auth} is {} s short of the capture \
                         window: now ({now}) + the merchant's capture_deadline_secs \
                         ({deadline_secs} s) + the operator's auto_void.expiry_margin_secs \
                         ({margin} s) = {needed}",
                        shortfall(auth, needed),
                    )
                    .into(),
                });
            }
        }

        // Fees.
        if info.maxFeeBps > MAX_FEE_BPS {
            return Err(VerifyError::InvalidFee(format!(
                "maxFeeBps {} > 10000",
                info.maxFeeBps
            )));
        }
        if info.minFeeBps > info.maxFeeBps {
            return Err(VerifyError::InvalidFee(format!(
                "minFeeBps {} > maxFeeBps {}",
                info.minFeeBps, info.maxFeeBps
            )));
        }
        if cfg.fee_bps < info.minFeeBps || cfg.fee_bps > info.maxFeeBps {
            return Err(VerifyError::InvalidFee(format!(
                "our fee {} bps is outside [{}, {}]",
                cfg.fee_bps, info.minFeeBps, info.maxFeeBps
            )));
        }
        if info.feeReceiver != Address::ZERO && info.feeReceiver != cfg.fee_receiver {
            return Err(VerifyError::InvalidFee(format!(
                "feeRecipient {} is not ours",
                info.feeReceiver
            )));
        }
        if info.feeReceiver == Address::ZERO && cfg.fee_bps > 0 && cfg.fee_receiver == Address::ZERO
        {
            return Err(VerifyError::InvalidFee("no fee receiver configured".into()));
        }

        // Signature (EOA); smart wallets are checked by the simulation.
        match check_payload_signature(requirements, &payment.payload).map_err(from_sdk)? {
            SignatureCheck::Ecdsa | SignatureCheck::NeedsOnChainCheck => {}
        }

        // On chain.
        let used = match derived.transfer_method {
            AssetTransferMethod::Eip3009 => IERC3009::new(info.token, self.provider.clone())
                .authorizationState(derived.payer, derived.payer_agnostic_hash)
                .call()
                .await
                .map_err(VerifyError::chain_unavailable)?,
            AssetTransferMethod::Permit2 => {
                let nonce = U256::from_be_bytes(derived.payer_agnostic_hash.0);
                let word = IPermit2Nonces::new(PERMIT2, self.provider.clone())
                    .nonceBitmap(derived.payer, nonce >> 8)
                    .call()
                    .await
                    .map_err(VerifyError::chain_unavailable)?;
                word.bit((nonce & U256::from(0xff)).to::<usize>())
            }
        };
        if used {
            return Err(VerifyError::AuthorizationUsed(derived.payer_agnostic_hash));
        }
        let balance = IERC20::new(info.token, self.provider.clone())
            .balanceOf(derived.payer)
            .call()
            .await
            .map_err(VerifyError::chain_unavailable)?;
        let required = U256::from(max_amount);
        if balance < required {
            return Err(VerifyError::InsufficientFunds { balance, required });
        }
        if derived.transfer_method == AssetTransferMethod::Permit2 {
            let allowance = IERC20::new(info.token, self.provider.clone())
                .allowance(derived.payer, PERMIT2)
                .call()
                .await
                .map_err(VerifyError::chain_unavailable)?;
            if allowance < required {
                return Err(VerifyError::Permit2AllowanceMissing {
                    token: info.token,
                    allowance,
                    required,
                });
            }
        }
        let escrow = AuthCaptureEscrow::new(derived.deployment.escrow, self.provider.clone());
        let fee_bps = cfg.fee_bps;
        let fee_receiver = if info.feeReceiver != Address::ZERO {
            info.feeReceiver
        } else {
            cfg.fee_receiver
        };
        // The escrow call the flow will send, simulated as the operator.
        let (payment_info, value) = (info.clone(), U256::from(amount));
        // The collector of the payload's transfer method; the signature goes as it came (an
        // ERC-6492 envelope included: the collector unwraps it and deploys the wallet).
        let collector = derived.token_collector;
        let data = signature.clone();
        let simulation = match flow {
            Flow::Authorize => {
                let call = escrow.authorize(payment_info, value, collector, data);
                simulate(call, info.operator).await
            }
            Flow::Charge => match derived.deployment.fee_argument {
                FeeArgument::Bps => {
                    let call =
                        escrow.charge(payment_info, value, collector, data, fee_bps, fee_receiver);
                    simulate(call, info.operator).await
                }
                FeeArgument::Amount => {
                    // A v1.1 escrow: the same fee, as an amount.
                    let fee = U256::from(fee_amount(amount, fee_bps));
                    let v1_1 =
                        IAuthCaptureEscrowV1_1::new(derived.deployment.escrow, &self.provider);
                    let call = v1_1.charge(
                        payment_info.into(),
                        value,
                        collector,
                        data,
                        fee,
                        fee_receiver,
                    );
                    simulate(call, info.operator).await
                }
            },
        };
        if let Err(e) = simulation {
            if is_transport(&e) {
                return Err(VerifyError::chain_unavailable(e));
            }
            return Err(VerifyError::simulation_failed(e));
        }
        Ok(VerifiedPayment {
            derived,
            amount,
            signature,
            capture_deadline_secs: deadline_secs,
            flow,
            fee_bps,
            fee_receiver,
        })
    }
}

/// The earliest `authorizationExpiry` an `escrow`-flow hold placed at `now` may have: it must
/// come after the merchant's capture window and the margin to get the capture or void mined
/// (strictly after: a hold expiring exactly then is refused).
pub fn required_capture_deadline(now: u64, capture_deadline_secs: u64, margin_secs: u64) -> u64 {
    now.saturating_add(capture_deadline_secs)
        .saturating_add(margin_secs)
}

/// How many seconds `value` falls short of being strictly after `needed` (at least 1).
fn shortfall(value: u64, needed: u64) -> u64 {
    needed.saturating_sub(value).saturating_add(1)
}
