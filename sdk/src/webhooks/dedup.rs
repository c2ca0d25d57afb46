//! Receivers' deduplication on the webhook id: deliveries are at-least-once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Receivers' deduplication on the webhook id.
///
/// Deliveries are at-least-once: the operator retries until it sees a 2xx, and a 2xx that is
/// lost on the way back means the same event arrives again (same `webhook-id`, new timestamp
/// and signature). Process an id once:
///
/// 1. [`verify`](super::verify()) first (never record unverified ids);
/// 2. [`first_seen`](Self::first_seen): `false` → answer 2xx and do nothing;
/// 3. process; if processing fails, [`forget`](Self::forget) the id and answer non-2xx so that
///    the retry is processed.
///
/// Keep ids for at least as long as the sender retries (days); a database table with a unique
/// key on the id, written in the same transaction as the event's effects, is the robust
/// implementation. [`MemoryDeduplicator`] suits a single process and tests.
pub trait Deduplicator {
    /// Records `id` at `now` (Unix seconds); `true` when it was not recorded before.
    fn first_seen(&self, id: &str, now: u64) -> bool;
    /// Removes `id` (its processing failed and a retry must be processed).
    fn forget(&self, id: &str);
}

/// An in-memory [`Deduplicator`] that keeps ids for a retention period.
#[derive(Debug)]
pub struct MemoryDeduplicator {
    retention_secs: u64,
    seen: Mutex<HashMap<String, u64>>,
}

impl MemoryDeduplicator {
    /// Keeps ids for `retention` (at least the sender's retry horizon).
    pub fn new(retention: Duration) -> Self {
        Self {
            retention_secs: retention.as_secs(),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Ids currently remembered.
    pub fn len(&self) -> usize {
        self.seen.lock().map(|s| s.len()).unwrap_or(0)
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for MemoryDeduplicator {
    /// Three days of retention (the operator retries for about 24 hours).
    fn default() -> Self {
        Self::new(Duration::from_secs(3 * 86_400))
    }
}

impl Deduplicator for MemoryDeduplicator {
    fn first_seen(&self, id: &str, now: u64) -> bool {
        let mut seen = match self.seen.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let retention = self.retention_secs;
        seen.retain(|_, at| now.saturating_sub(*at) <= retention);
        match seen.entry(id.to_owned()) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(now);
                true
            }
        }
    }

    fn forget(&self, id: &str) {
        let mut seen = match self.seen.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        seen.remove(id);
    }
}
