//! The types of the x402-escrow operator's merchant API and of the x402 protocol it carries,
//! defined once: the operator serializes them and the merchant client (`x402-escrow-sdk`)
//! deserializes the same definitions. Data and codecs only: no HTTP client, no signing, no chain.
//!
//! - [`lifecycle`]: [`PaymentStatus`] (the wire enum, `snake_case`) with the transition table
//!   that moves it ([`PaymentStatus::apply`]), [`Flow`], [`PaymentEvent`], the amount
//!   bookkeeping ([`Amounts`]) and the token [`Amount`].
//! - [`api`]: request bodies, [`PaymentView`] and its parts, [`PaymentList`], the error envelope
//!   and [`ErrorCode`] (every code the API answers with, in one list: [`ErrorCode::ALL`]).
//! - [`terms`]: [`MerchantTerms`] (`GET /v1/merchant`) and the time windows derived from it.
//! - [`reserve`]: the refund reserve's views (`GET /v1/reserve`, `GET /v1/reserve/statement`).
//! - [`endpoint`]: the merchant's webhook endpoint, secret and API key rotation, the delivery log.
//! - [`wallet`]: the REST types of `x402-escrow wallet` (payment keys, `POST /v1/fetch`, the
//!   spend ledger, its error codes).
//! - [`request_id`]: the id of an HTTP request ([`RequestId`]).
//! - x402 building blocks (re-exported by the SDK at its old paths): [`amount`] (the protocol's
//!   decimal-string `uint256`), [`network`] (CAIP-2 and v1 names), [`primitives`] (addresses,
//!   hex), [`json`] (strict decoding) and their [`DecodeError`]; the x402 v1/v2 messages and
//!   their header codecs ([`wire`]), the schemes' payloads and extras ([`schemes`]) and the
//!   facilitator's `/verify`, `/settle`, `/supported` bodies ([`facilitator`]).
//!
//! Two amount types remain, on purpose: [`Amount`] (the API's, [`lifecycle::Amount`]) is a
//! `u128` (escrow amounts are `uint120`; the operator computes with it and its API reads
//! `^[0-9]{1,39}$`), while [`amount::Amount`] (the SDK's `x402_escrow_sdk::Amount`) is the x402
//! protocol's `uint256` with canonical decimal spelling (no leading zeros), which the x402 wire
//! requires and the operator's API does not: making one the other would change what either
//! side accepts. Likewise the root's [`AmountError`] is the lifecycle's bookkeeping error, and
//! [`amount::AmountError`] the x402 decimal-string one.

#![warn(missing_docs)]

pub mod amount;
pub mod api;
pub mod endpoint;
pub mod error;
pub mod facilitator;
pub mod json;
pub mod lifecycle;
pub mod network;
pub mod primitives;
pub mod query;
pub mod request_id;
pub mod reserve;
pub mod schemes;
pub mod terms;
pub mod wallet;
pub mod wire;

pub use error::DecodeError;

pub use api::{
    AmountsView, AuthorizeRequest, CaptureRequest, ErrorBody, ErrorCode, ErrorEnvelope, ErrorView,
    PaymentList, PaymentView, RefundRequest, TransactionView, VoidRequest,
};
pub use lifecycle::{
    ALL_STATUSES, Amount, AmountError, Amounts, Flow, IllegalReason, IllegalTransition,
    ParseEnumError, PaymentEvent, PaymentStatus,
};
pub use query::{EventList, EventQuery, PageCursor, PaymentQuery, QueryError};
pub use request_id::{RequestId, X_REQUEST_ID};
pub use reserve::{ReserveBalanceView, ReserveEntryView, ReserveStatement, ReserveView};
pub use terms::{MerchantTerms, TermsAsset, TermsEscrow};
