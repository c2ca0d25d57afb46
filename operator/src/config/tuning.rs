//! The service knobs: `[relayer]`, `[webhooks]`, `[idempotency]`, `[batch]`, `[auto_void]`
//! and `[fees]`.

use alloy::primitives::Address;
use serde::Deserialize;

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

/// `[relayer]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelayerConfig {
    /// A broadcast transaction with no receipt after this long is re-broadcast, then replaced
    /// with bumped fees.
    pub bump_after_secs: u64,
    /// Fee increase per replacement, in percent (at least 10: the nodes' replacement rule).
    pub fee_bump_percent: u64,
    /// Never pay more than this max fee per gas (wei); `None`: no cap.
    pub max_fee_per_gas_wei: Option<u64>,
    /// How long a signer lease lasts; the holder renews it at a third of this.
    pub lease_ttl_secs: u64,
    /// Gas limit headroom over the estimate, in percent.
    pub gas_limit_margin_percent: u64,
}

impl Default for RelayerConfig {
    fn default() -> Self {
        RelayerConfig {
            bump_after_secs: 30,
            fee_bump_percent: 12,
            max_fee_per_gas_wei: None,
            lease_ttl_secs: 15,
            gas_limit_margin_percent: 20,
        }
    }
}

/// `[webhooks]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Whether this instance runs the delivery worker.
    pub enabled: bool,
    /// Per-request timeout.
    pub timeout_secs: u64,
    /// Give up after this many attempts.
    pub max_attempts: u32,
    /// Retry delays in seconds, one per attempt after the first (the last repeats); jitter is
    /// added by the worker.
    pub retry_schedule_secs: Vec<u64>,
    /// How often the worker looks for due deliveries.
    pub poll_interval_ms: u64,
    /// How long a claimed delivery stays locked to its worker.
    pub lock_secs: u64,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            enabled: true,
            timeout_secs: 10,
            max_attempts: 10,
            // Standard Webhooks' schedule: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h,
            // 20 h, 24 h.
            retry_schedule_secs: vec![5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400],
            poll_interval_ms: 1000,
            lock_secs: 60,
        }
    }
}

/// `[idempotency]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdempotencyConfig {
    /// How long keys are kept (at least 24).
    pub retention_hours: u64,
    /// How long a request may stay in flight before a retry may take its key over.
    pub in_flight_timeout_secs: u64,
}

impl Default for IdempotencyConfig {
    fn default() -> Self {
        IdempotencyConfig {
            retention_hours: 24,
            in_flight_timeout_secs: 60,
        }
    }
}

/// `[batch]`: the relayer sends queued escrow calls of several payments in one transaction.
/// With the batch executor (the signer's account delegates to it, EIP-7702) any mix of
/// authorize, charge, capture, void and refund goes out as one `execute`; without it, captures
/// (and voids) of our escrow are merged into one `captureBatch` (`voidBatch`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// The most payments in one batch transaction; 1 disables batching (every call is its own
    /// transaction, sent at once).
    pub max_size: usize,
    /// How long a ready row may wait for company before it is sent (alone, or with whatever
    /// joined it): captures and voids for `captureBatch` / `voidBatch`; with the executor, any
    /// escrow call, and only while an earlier transaction of the signer is still in flight. A
    /// batch that reaches `max_size` goes at once.
    pub max_wait_ms: u64,
    /// Batch through the `OperatorBatchExecutor` (delegating the signer's account to it on
    /// start-up) when one is known. Off by default until every fault suite runs with it (see
    /// `operator/DESIGN.md`, "The general batch path").
    pub use_executor: bool,
    /// The executor to delegate to; default: the deployment's `batchExecutor`.
    pub executor: Option<alloy::primitives::Address>,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_size: 50,
            max_wait_ms: 25,
            use_executor: false,
            executor: None,
        }
    }
}

/// `[auto_void]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AutoVoidConfig {
    /// Void uncaptured holds at their capture deadline.
    pub enabled: bool,
    /// The capture deadline for merchants that set none.
    pub default_capture_deadline_secs: u64,
    /// The deadline is moved earlier, if needed, to at least this long before
    /// `authorizationExpiry`, so the void lands while the hold is still the operator's to void.
    pub expiry_margin_secs: u64,
    /// How often to look for due holds.
    pub sweep_interval_secs: u64,
}

impl Default for AutoVoidConfig {
    fn default() -> Self {
        AutoVoidConfig {
            enabled: true,
            default_capture_deadline_secs: 7 * 24 * 3600,
            // The value merchant layers assume by default (the SDK's constant, one source), and
            // below their default maxTimeoutSeconds (300), so default requirements are payable.
            expiry_margin_secs: x402_escrow_sdk::merchant::DEFAULT_EXPIRY_MARGIN_SECS,
            sweep_interval_secs: 10,
        }
    }
}
