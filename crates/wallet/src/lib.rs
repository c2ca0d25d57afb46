//! `x402-escrow wallet`: a spend-controlled x402 payment service for agents, servers and
//! workflow engines. One HTTP call (`POST /v1/fetch`) performs a request and pays its
//! `402 Payment Required` within the rules of a scoped **payment key**; the owner sees and
//! bounds every cent.
//!
//! - [`store`]: payment keys, the spend ledger and the audit log (sqlx: SQLite by default,
//!   PostgreSQL; migrations in `crates/wallet/migrations/{sqlite,postgres}`).
//! - [`buyers`]: the buyer keys that sign (environment or encrypted keystore; never stored).
//! - [`keys`]: payment keys (tokens stored as SHA-256) and their management.
//! - [`rules`]: a key's rules, each refusal naming its rule; [`guard`]: the SSRF guard and
//!   header checks.
//! - [`service`]: [`Wallet`]: fetch, sign, approvals, usage; [`reconcile`]: the chain read.
//! - [`api`]: the HTTP API (`openapi.yaml`), [`metrics`]: `/metrics`; [`owner`]: the owner's
//!   page at `/owner` (keys, rules, usage, approvals); [`cli`]: the commands.
//!
//! The buyer's pieces come from the SDK: the offers of a 402 and the signed header
//! (`x402_escrow_sdk::buyer::challenge`), whether an offer can be signed and the preference
//! `auth-capture` before `exact` (`buyer::select`), the receipt's reading (`buyer::receipt`),
//! the signing itself (`x402_escrow_sdk::schemes`).
//!
//! # Design
//!
//! **Reserve before signing.** A 402's payable offers are checked against the key's static
//! rules (schemes, networks, assets, payees, max per payment); the best one is then reserved
//! in one SQL transaction that first takes the key: `BEGIN IMMEDIATE` on SQLite (behind an
//! in-process writer queue, as in the operator's store), `SELECT … FOR UPDATE` of the key row
//! on PostgreSQL. Inside it the key's counting payments are summed (rolling 24 hours, total)
//! and the payment row is inserted: two concurrent fetches of one key run one after the other,
//! so no cap can be exceeded. Refusals write a `refused` ledger row naming the rule and an
//! audit entry; nothing is signed.
//!
//! **Counting.** A payment counts `amount - returned` while it is `pending_approval`,
//! `reserved`, `signed`, `authorized`, `captured` or `refunded`; `voided`, `expired`,
//! `failed`, `rejected` and `refused` count nothing. Money comes back from the receipt
//! (`voided`, `refunded` with its amount) or from the chain ([`reconcile`]).
//!
//! **Persist before sending.** The signed header is written (`signed`, with its payment hash,
//! nonce and `validBefore`) before the paid request leaves; every retry sends those bytes. A
//! caller's `Idempotency-Key` names the payment: repeating a request with it never reserves or
//! signs again. After a crash between signing and sending, the caller's retry with the same key
//! resends the persisted bytes; if no retry comes, the reconcile finds the signature unused on
//! chain once its `validBefore` has passed and releases it (`expired`). A crash before the
//! header was persisted leaves a `reserved` row with no signature anywhere: the retry signs it
//! (for the same offer), or it stays counted until the owner looks (`GET /v1/payments`).
//!
//! **Approval.** Above `approvalThreshold` the reservation is made in `pending_approval` (its
//! amount counts, so approvals cannot overrun a cap), the owner's webhook is told, and the
//! caller gets `202 approval_pending`. Approve makes it `reserved`; the caller's retry with the
//! same `Idempotency-Key` requests the resource again and signs the same offer (scheme, network,
//! token, payee, amount) of the fresh 402. Reject makes it `rejected`.
//!
//! **Hostile input.** Only `http(s)` URLs allowed by the key's `hosts`; a host that is or
//! resolves to a non-public address only when an entry names it exactly; redirects are not
//! followed; caller headers with CR/LF, hop-by-hop names, `Host`, payment or length headers are
//! refused; request bodies above `max_request_body` get `413 body_too_large`, resource bodies
//! above `max_response_body` `502 upstream_body_too_large`.
#![warn(missing_docs)]

pub mod api;
pub mod buyers;
pub mod cli;
pub mod error;
pub mod guard;
pub mod keys;
pub mod metrics;
pub mod owner;
pub mod reconcile;
pub mod rules;
pub mod service;
pub mod store;

pub use cli::{WalletArgs, WalletCliError, run};
pub use error::WalletError;
pub use service::{CrashPoint, FetchOutcome, SignOutcome, Wallet, WalletConfig};
