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
}
