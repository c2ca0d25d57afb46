//! In-process outcome notifications keyed by payment id.
//!
//! A caller waiting for a payment registers (getting a [`WaitGuard`]), and the engine wakes
//! every waiter of a payment after applying something to it. Waiters also re-read the row on a
//! timer, so a notification that never comes (another instance applied the outcome) only costs
//! latency.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use uuid::Uuid;

/// Payment id → (its notification, how many waiters hold it).
type Registry = Arc<Mutex<HashMap<Uuid, (Arc<Notify>, usize)>>>;

/// The registry of waiters.
#[derive(Debug, Default)]
pub struct Waiters {
    map: Registry,
}

/// One registered waiter; unregisters on drop.
#[derive(Debug)]
pub struct WaitGuard {
    map: Registry,
    id: Uuid,
    notify: Arc<Notify>,
}

impl Waiters {
    /// Registers a waiter for payment `id`.
    pub fn register(&self, id: Uuid) -> WaitGuard {
        let notify = match self.map.lock() {
            Ok(mut map) => {
                let entry = map
                    .entry(id)
                    .or_insert_with(|| (Arc::new(Notify::new()), 0));
                entry.1 += 1;
                entry.0.clone()
            }
            // A poisoned map only loses the in-process wake-up; polling still works.
            Err(_) => Arc::new(Notify::new()),
        };
        WaitGuard {
            map: self.map.clone(),
            id,
            notify,
        }
    }

    /// Wakes every waiter of payment `id`.
    pub fn wake(&self, id: Uuid) {
        if let Ok(map) = self.map.lock()
            && let Some((notify, _)) = map.get(&id)
        {
            notify.notify_waiters();
        }
    }
}

impl WaitGuard {
    /// The notification to wait on.
    pub fn notify(&self) -> &Notify {
        &self.notify
    }
}

impl Drop for WaitGuard {
    fn drop(&mut self) {
        if let Ok(mut map) = self.map.lock()
            && let Some(entry) = map.get_mut(&self.id)
        {
            entry.1 = entry.1.saturating_sub(1);
            if entry.1 == 0 {
                map.remove(&self.id);
            }
        }
    }
}
