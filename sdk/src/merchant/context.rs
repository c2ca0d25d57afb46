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

/// The price of a metered route's request, set by the handler after the work (tokens
/// generated, rows returned): put it in the **response's** extensions
/// (`(Extension(MeteredPrice(amount)), body)` in axum). On a route marked
/// [`PaymentRoute::metered`](super::PaymentRoute::metered) the route's price is the most the
/// buyer authorizes, and after a 2xx the layer captures exactly this amount and releases the
/// rest of the hold in the same step (flow `authorization`: refunds the rest of the charge).
/// Zero releases everything. An amount above the authorization is refused before any
/// transaction: the whole hold goes back and the buyer gets `500`
/// [`METERED_PRICE_TOO_HIGH`](super::METERED_PRICE_TOO_HIGH) instead of the response. Without
/// it, a metered route captures the whole authorization. Ignored on routes that are not
/// metered (their buyers were quoted a fixed price).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeteredPrice(pub Amount);
