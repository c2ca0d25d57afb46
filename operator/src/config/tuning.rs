//! The service knobs: `[relayer]`, `[webhooks]`, `[idempotency]`, `[batch]`, `[auto_void]`
//! and `[fees]`.

use alloy::primitives::Address;
use serde::Deserialize;

/// Declares a config section: the struct, deserialized with `deny_unknown_fields` and every
/// field optional, and its `Default`, from each field's doc, type and default value.
macro_rules! section {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $($(#[$field_meta:meta])* pub $field:ident: $ty:ty = $default:expr,)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Deserialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct $name {
            $($(#[$field_meta])* pub $field: $ty,)*
        }

        impl Default for $name {
            fn default() -> Self {
                $name {
                    $($field: $default,)*
                }
            }
        }
    };
}

/// `[fees]`: what the operator charges on each capture or charge.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeeConfig {
    /// The fee in basis points, clamped into each payment's `[minFeeBps, maxFeeBps]`.
    pub bps: u16,
    /// Where fees go when a payment leaves `feeReceiver` open (default: the signer's address).
    pub receiver: Option<Address>,
    /// Also accept payments made to the canonical v1.0 AuthCaptureEscrow on this chain.
    pub accept_canonical_escrow: bool,
}

section! {
    /// `[relayer]`.
    pub struct RelayerConfig {
        /// A broadcast transaction with no receipt after this long is re-broadcast, then replaced
        /// with bumped fees.
        pub bump_after_secs: u64 = 30,
        /// Fee increase per replacement, in percent (at least 10: the nodes' replacement rule).
        pub fee_bump_percent: u64 = 12,
        /// Never pay more than this max fee per gas (wei); `None`: no cap.
        pub max_fee_per_gas_wei: Option<u64> = None,
        /// How long a signer lease lasts; the holder renews it at a third of this.
        pub lease_ttl_secs: u64 = 15,
        /// Gas limit headroom over the estimate, in percent.
        pub gas_limit_margin_percent: u64 = 20,
    }
}

section! {
    /// `[webhooks]`.
    pub struct WebhookConfig {
        /// Whether this instance runs the delivery worker.
        pub enabled: bool = true,
        /// Per-request timeout.
        pub timeout_secs: u64 = 10,
        /// Give up after this many attempts.
        pub max_attempts: u32 = 10,
        /// Retry delays in seconds, one per attempt after the first (the last repeats); jitter is
        /// added by the worker.
        // Standard Webhooks' schedule: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h,
        // 20 h, 24 h.
        pub retry_schedule_secs: Vec<u64> =
            vec![5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400],
        /// How often the worker looks for due deliveries.
        pub poll_interval_ms: u64 = 1000,
        /// How long a claimed delivery stays locked to its worker.
        pub lock_secs: u64 = 60,
    }
}

section! {
    /// `[idempotency]`.
    pub struct IdempotencyConfig {
        /// How long keys are kept (at least 24).
        pub retention_hours: u64 = 24,
        /// How long a request may stay in flight before a retry may take its key over.
        pub in_flight_timeout_secs: u64 = 60,
    }
}

section! {
    /// `[batch]`: the relayer sends queued escrow calls of several payments in one transaction.
    /// With the batch executor (the signer's account delegates to it, EIP-7702) any mix of
    /// authorize, charge, capture, void and refund goes out as one `execute`; without it, captures
    /// (and voids) of our escrow are merged into one `captureBatch` (`voidBatch`).
    pub struct BatchConfig {
        /// The most calls in one batch transaction (at most 1,000; a batch whose gas would not
        /// fit in a block is split); 1 disables batching (every call is its own transaction,
        /// sent at once). With the executor one `execute` goes per block, so this is also what a
        /// signer carries per block on a chain with slow blocks: 256 lets a burst of 256 buyers
        /// be authorized in one block.
        pub max_size: usize = 256,
        /// How long a ready capture or void may wait for company before it is sent (alone, or
        /// with whatever joined it) in a `captureBatch` / `voidBatch`; a batch that reaches
        /// `max_size` goes at once. With the executor, calls wait only as long as the signer's
        /// transaction in flight makes them (see `operator/DESIGN.md`, "Grouping"), and this
        /// bounds the wait for the signer's delegation at start-up.
        pub max_wait_ms: u64 = 25,
        /// Batch through the `OperatorBatchExecutor` (delegating the signer's account to it on
        /// start-up) when one is known (see `operator/DESIGN.md`, "The general batch path").
        pub use_executor: bool = true,
        /// The executor to delegate to; default: the deployment's `batchExecutor`.
        pub executor: Option<alloy::primitives::Address> = None,
    }
}

section! {
    /// `[auto_void]`.
    pub struct AutoVoidConfig {
        /// Void uncaptured holds at their capture deadline.
        pub enabled: bool = true,
        /// The capture deadline for merchants that set none.
        pub default_capture_deadline_secs: u64 = 7 * 24 * 3600,
        /// The deadline is moved earlier, if needed, to at least this long before
        /// `authorizationExpiry`, so the void lands while the hold is still the operator's to void.
        // The value merchant layers assume by default (the SDK's constant, one source), and
        // below their default maxTimeoutSeconds (300), so default requirements are payable.
        pub expiry_margin_secs: u64 = x402_escrow_sdk::merchant::DEFAULT_EXPIRY_MARGIN_SECS,
        /// How often to look for due holds.
        pub sweep_interval_secs: u64 = 10,
    }
}

section! {
    /// `[console]`: the merchant console served at `/console` (`operator/src/console/`).
    pub struct ConsoleConfig {
        /// Whether `/console` is served.
        pub enabled: bool = true,
        /// Mark the session cookie `Secure` (set this when the operator is reached over https,
        /// e.g. behind a TLS-terminating proxy).
        pub secure_cookie: bool = false,
        /// How long a console session lasts after sign-in, in seconds.
        pub session_ttl_secs: u64 = 8 * 3600,
    }
}
