//! Signer lanes: the fair share of lanes one instance holds (see `operator/DESIGN.md`, "Signer
//! lanes").
//!
//! Every lane (one signer key) has its own [`Relayer`](super::Relayer) in every instance; the
//! signer lease decides which instance's relayer sends. [`LaneShare`] is shared by one
//! instance's relayers: with `K` lanes and `N` live instances (heartbeats in
//! `operator_instances`) an instance holds at most `ceil(K / N)` leases. A relayer takes a free
//! lease only while the instance is under its share, and gives its lease back when the instance
//! is over it (another instance joined), so the lanes spread over the instances; the leases of
//! a dead instance expire and are taken by the others, whose share grew.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The lanes one instance may hold (shared by its relayers).
#[derive(Debug)]
pub struct LaneShare {
    lanes: usize,
    live: AtomicUsize,
    held: AtomicUsize,
}

impl LaneShare {
    /// A share of `lanes` lanes, assuming this instance alone until told otherwise.
    pub fn new(lanes: usize) -> LaneShare {
        LaneShare {
            lanes: lanes.max(1),
            live: AtomicUsize::new(1),
            held: AtomicUsize::new(0),
        }
    }

    /// How many lanes there are.
    pub fn lanes(&self) -> usize {
        self.lanes
    }

    /// Records how many instances are alive (this one included; at least 1).
    pub fn set_live(&self, instances: usize) {
        self.live.store(instances.max(1), Ordering::Relaxed);
    }

    /// How many instances are alive, as last recorded.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// How many lanes this instance may hold: `ceil(lanes / live)`.
    pub fn quota(&self) -> usize {
        self.lanes.div_ceil(self.live())
    }

    /// How many lanes this instance holds.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// Reserves a place for one more lease when under the quota (`false`: at the quota, do not
    /// try). Undo with [`LaneShare::unreserve`] when the lease was not taken.
    pub fn try_reserve(&self) -> bool {
        let quota = self.quota();
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held < quota).then_some(held + 1)
            })
            .is_ok()
    }

    /// Gives back a place reserved by [`LaneShare::try_reserve`] (the lease was not taken, or
    /// it was released or lost).
    pub fn unreserve(&self) {
        let _ = self
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_sub(1)
            });
    }

    /// When over the quota, claims the duty of giving one lease back (`true`: the caller must
    /// release its lease; the place is already given back). At most as many callers get `true`
    /// as the instance holds over its quota.
    pub fn take_surplus(&self) -> bool {
        let quota = self.quota();
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held > quota).then(|| held - 1)
            })
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::LaneShare;

    #[test]
    fn an_instance_holds_its_fair_share() {
        let share = LaneShare::new(2);
        // Alone: both lanes.
        assert!(share.try_reserve());
        assert!(share.try_reserve());
        assert!(!share.try_reserve());
        assert!(!share.take_surplus());
        // A second instance: one lane is given back, exactly once.
        share.set_live(2);
        assert_eq!(share.quota(), 1);
        assert!(share.take_surplus());
        assert!(!share.take_surplus());
        assert_eq!(share.held(), 1);
        assert!(!share.try_reserve());
        // The other died: its lane may be taken again.
        share.set_live(1);
        assert!(share.try_reserve());
        assert_eq!(share.held(), 2);
        share.unreserve();
        share.unreserve();
        share.unreserve();
        assert_eq!(share.held(), 0);
    }

    #[test]
    fn quota_rounds_up() {
        let share = LaneShare::new(3);
        share.set_live(2);
        assert_eq!(share.quota(), 2);
        share.set_live(5);
        assert_eq!(share.quota(), 1);
        let one = LaneShare::new(1);
        one.set_live(2);
        assert_eq!(one.quota(), 1);
    }
}
