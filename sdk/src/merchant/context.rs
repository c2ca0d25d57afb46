//! What the layer puts into request extensions for handlers.

use alloy::primitives::{Address, B256};

use crate::amount::Amount;
use crate::network::Network;

pub use x402_escrow_types::{RequestId, X_REQUEST_ID};

/// The authorized payment of the current request (in request extensions while the handler
/// runs: `Extension<PaymentContext>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentContext {
    /// The operator's payment id.
    pub payment_id: String,
    /// The escrow's payment hash.
    pub payment_hash: B256,
    /// The amount held, in atomic units.
    pub amount: Amount,
    /// The payer (ERC-3009 `from`).
    pub payer: Option<Address>,
    /// `auth-capture` or `exact`.
    pub scheme: String,
    /// The network.
    pub network: Network,
    /// The request id.
    pub request_id: RequestId,
    /// Whether the hold (or charge) was final on chain when the handler started. `false` only in
    /// latency mode ([`PaymentRoute::latency_mode`](super::PaymentRoute::latency_mode)): the
    /// handler runs while the hold is in flight, and its response reaches the buyer only if the
    /// hold becomes final; a handler may defer irreversible side effects accordingly. `true` for
    /// `exact` (verified before the handler, settled after it).
    pub hold_final: bool,
}
