//! The worker's settings: [`WebhookWorkerConfig`], its retry schedule and jitter.

use std::time::Duration;

use rand::Rng;

use super::WebhookError;
use crate::config::WebhookConfig;

/// Default number of deliveries one worker sends at the same time.
pub const DEFAULT_CONCURRENCY: usize = 8;
/// Default jitter: each retry delay is multiplied by a random factor in `1 ± 0.2`.
pub const DEFAULT_JITTER: f64 = 0.2;

/// The worker's settings. [`WebhookWorkerConfig::from_config`] takes them from the `[webhooks]`
/// section; tests build one directly (millisecond schedules).
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookWorkerConfig {
    /// Timeout of one HTTP request (connect + answer).
    pub request_timeout: Duration,
    /// How long a claimed delivery stays locked to this worker. Must be longer than
    /// `request_timeout` (plus the time to record the result), or another worker could send the
    /// same attempt while this one is still waiting.
    pub lock: Duration,
    /// How often to look for due deliveries without a wake-up.
    pub poll_interval: Duration,
    /// Attempts in all (the first included); after the last failure the delivery is given up.
    pub max_attempts: u32,
    /// Delay before attempt `n + 1` after attempt `n` failed: `retry_schedule[n - 1]`; the last
    /// entry repeats. Must not be empty.
    pub retry_schedule: Vec<Duration>,
    /// Relative jitter on each delay, `0.0..=1.0` (0.2: ±20 %), so retries of many deliveries
    /// that failed together do not arrive together.
    pub jitter: f64,
    /// Deliveries in flight at once (per worker).
    pub concurrency: usize,
    /// Most deliveries claimed by one query.
    pub batch_size: u32,
    /// The `User-Agent` header.
    pub user_agent: String,
}

impl Default for WebhookWorkerConfig {
    /// The defaults of [`WebhookConfig`] (the Standard Webhooks schedule: immediately, 5 s,
    /// 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h).
    fn default() -> Self {
        WebhookWorkerConfig::from_config(&WebhookConfig::default())
    }
}

impl WebhookWorkerConfig {
    /// From the `[webhooks]` configuration section (concurrency and jitter use their defaults).
    pub fn from_config(config: &WebhookConfig) -> WebhookWorkerConfig {
        WebhookWorkerConfig {
            request_timeout: Duration::from_secs(config.timeout_secs),
            lock: Duration::from_secs(config.lock_secs),
            poll_interval: Duration::from_millis(config.poll_interval_ms),
            max_attempts: config.max_attempts,
            retry_schedule: config
                .retry_schedule_secs
                .iter()
                .map(|s| Duration::from_secs(*s))
                .collect(),
            jitter: DEFAULT_JITTER,
            concurrency: DEFAULT_CONCURRENCY,
            batch_size: u32::try_from(DEFAULT_CONCURRENCY).unwrap_or(u32::MAX),
            user_agent: format!("x402-escrow-operator/{}", env!("CARGO_PKG_VERSION")),
        }
    }

    /// Checks the settings: positive timeout, poll interval, attempts, concurrency and batch
    /// size; a non-empty schedule; jitter within `0..=1`; a lock longer than the timeout.
    pub fn validate(&self) -> Result<(), WebhookError> {
        let bad = |m: &str| Err(WebhookError::Config(m.to_owned()));
        if self.request_timeout.is_zero() {
            return bad("request timeout must be positive");
        }
        if self.lock <= self.request_timeout {
            return bad("lock must be longer than the request timeout");
        }
        if self.poll_interval.is_zero() {
            return bad("poll interval must be positive");
        }
        if self.max_attempts == 0 {
            return bad("max_attempts must be at least 1");
        }
        if self.retry_schedule.is_empty() {
            return bad("retry schedule must not be empty");
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return bad("jitter must be within 0.0..=1.0");
        }
        if self.concurrency == 0 || self.batch_size == 0 {
            return bad("concurrency and batch size must be positive");
        }
        Ok(())
    }

    /// The delay before the next attempt after attempt `attempt` (1-based) failed, before
    /// jitter; `None` when `attempt` was the last one.
    pub fn base_delay(&self, attempt: i64) -> Option<Duration> {
        if attempt >= i64::from(self.max_attempts) {
            return None;
        }
        let index = usize::try_from(attempt.saturating_sub(1)).unwrap_or(0);
        self.retry_schedule
            .get(index)
            .or(self.retry_schedule.last())
            .copied()
    }

    /// [`base_delay`](Self::base_delay) with jitter applied.
    pub fn retry_delay(&self, attempt: i64) -> Option<Duration> {
        let base = self.base_delay(attempt)?;
        if self.jitter <= 0.0 || base.is_zero() {
            return Some(base);
        }
        let factor = rand::rng().random_range((1.0 - self.jitter)..=(1.0 + self.jitter));
        Some(base.mul_f64(factor.max(0.0)))
    }
}
