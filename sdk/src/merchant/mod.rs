//! Merchant side: a tower [`Layer`](tower::Layer) for axum that charges for routes with
//! refundable x402 `auth-capture` payments through the x402-escrow operator.
//!
//! - Unpaid request → `402` with the v2 `PAYMENT-REQUIRED` header and a v1-compatible JSON body.
//! - Paid request (`PAYMENT-SIGNATURE` or v1 `X-PAYMENT`) → strict decoding (bad header → 400),
//!   matched against the route's requirements → the operator authorizes (places the hold) → the
//!   handler runs with [`RequestId`] and [`PaymentContext`] in its extensions → 2xx: capture
//!   (sync or queued, [`CaptureMode`]); non-2xx, error, timeout, panic or client disconnect:
//!   void. The response carries `PAYMENT-RESPONSE` (`X-PAYMENT-RESPONSE` for v1) with the
//!   `x402-escrow` receipt extension, and `X-Request-Id`.
//! - Payment flow `authorization` ([`PaymentsConfig::payment_flow`], [`PaymentRoute::flow`]): the
//!   operator charges before the handler runs (the payment is `captured` at once); a 2xx leaves
//!   it so, anything else refunds the whole amount (receipt status `refunded`).
//! - `exact` ([`PaymentsConfig::offer_exact`]): verified by the operator's `/verify` before the
//!   handler, settled through its `/settle` only after a 2xx (a failed handler costs nothing).
//! - Latency mode ([`PaymentRoute::latency_mode`], per route, off by default): for payments up
//!   to the route's cap the handler runs while the hold is in flight; the response is released
//!   only once the hold is final, and a failed hold withholds it (402, [`HOLD_FAILED`]).
//! - Metered routes ([`PaymentRoute::metered`], pay for what you use): the price is the most the
//!   buyer authorizes; the handler sets the actual price after the work ([`MeteredPrice`], a
//!   response extension) and the layer captures exactly that and releases the rest.
//! - [`OperatorClient`]: the operator's REST API with idempotency keys and retries.
//!
//! ```ignore
//! let operator = OperatorClient::new("http://127.0.0.1:8402", api_key);
//! let config = PaymentsConfig::new(network, AssetConfig::new(usdc, "USDC", "2", 6), pay_to, operator_signer);
//! let payments = X402Layer::new(operator, config);
//! let app = Router::new()
//!     .route("/weather", get(weather).layer(payments.paid(PaymentRoute::new("$0.01").description("Weather"))));
//! ```

mod challenge;
mod config;
mod context;
mod flow;
mod layer;
pub mod operator;
mod read;
mod settle;
mod terms;

pub use challenge::EPOCH_SECS;
pub use config::{AssetConfig, CaptureMode, PaymentRoute, PaymentsConfig, Price};
pub use context::{MeteredPrice, PaymentContext, RequestId, X_REQUEST_ID};
pub use layer::{
    HOLD_FAILED, METERED_PRICE_TOO_HIGH, PAYMENT_IDENTIFIER_REQUIRED, RouteSpecError, X402Layer,
    X402Service,
};
pub use operator::{AuthorizeCall, OperatorClient, OperatorError, OperatorPayment, OperatorRetry};
pub use terms::{
    DEFAULT_CAPTURE_DEADLINE_SECS, DEFAULT_EXPIRY_MARGIN_SECS, DEFAULT_MAX_TIMEOUT_SECS,
    MerchantTerms, MerchantTermsExt, TermsAsset, TermsError, TermsEscrow,
    capture_deadline_offer_secs,
};
/// The operator's REST API types (one definition, shared with the operator).
pub use x402_escrow_types::{
    AmountsView, ErrorBody, ErrorCode, ErrorView, EventList, EventQuery, Flow, PageCursor,
    PaymentList, PaymentQuery, PaymentStatus, PaymentView, TransactionView,
};

pub use crate::schemes::auth_capture::{AssetTransferMethod, PaymentFlow};
