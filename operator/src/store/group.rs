//! Group commit: the hot-path writes of concurrent requests share one database transaction.
//!
//! A write handed to [`Store::grouped`] goes to this process's committer task. The committer
//! takes every write waiting at that moment (up to [`MAX_GROUP`]; it never waits for company,
//! so a lone write goes at once), opens one transaction, runs each write inside a savepoint of
//! its own, and commits once: one fsync of the SQLite WAL, or one commit round trip to
//! PostgreSQL, for the whole group. Each caller is answered only after that commit, so a write
//! that was answered is as durable as if it had committed alone.
//!
//! A write that fails is rolled back to its savepoint and its caller gets its own error; the
//! others are unaffected. (A write alone in its group runs without a savepoint, and its failure
//! rolls the transaction back: nothing is committed.) If the group's transaction itself fails
//! (begin, a savepoint or the commit), none of its writes happened and every caller gets
//! [`StoreError::GroupCommit`].
//!
//! Writes of one caller keep their order (the caller awaits each one). A write runs only
//! [`StoreTx`] operations: it must not wait for anything else (the transaction holds SQLite's
//! write turn while the group runs).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use super::{Result, Store, StoreError, StoreTx};

/// The most writes one group transaction carries.
pub const MAX_GROUP: usize = 64;

/// A boxed, sendable future borrowing the transaction for `'t`.
pub type TxFuture<'t, T> = Pin<Box<dyn Future<Output = T> + Send + 't>>;

/// Called once the group's fate is known: `Ok` when it committed.
type Finish = Box<dyn FnOnce(std::result::Result<(), Arc<StoreError>>) + Send>;

/// One queued write: runs on the group's transaction and says whether it succeeded (a failed
/// one is rolled back to its savepoint) and how to answer its caller after the commit.
type Job = Box<dyn for<'t> FnOnce(&'t mut StoreTx) -> TxFuture<'t, (bool, Finish)> + Send>;

/// The handle to this store's committer task (shared by the store's clones; started on first
/// use, restarted if its runtime went away).
#[derive(Clone, Default)]
pub(super) struct GroupCommitter {
    sender: Arc<Mutex<Option<mpsc::UnboundedSender<Job>>>>,
}

impl Store {
    /// Runs `write` in the next group transaction (see the [module docs](self)) and returns its
    /// result once that transaction has committed.
    pub async fn grouped<T, F>(&self, write: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut StoreTx) -> TxFuture<'t, Result<T>> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel::<Result<T>>();
        let job: Job = Box::new(move |tx| {
            Box::pin(async move {
                let out = write(tx).await;
                let ok = out.is_ok();
                let finish: Finish = Box::new(move |committed| {
                    let result = match (out, committed) {
                        (Err(e), _) => Err(e),
                        (Ok(value), Ok(())) => Ok(value),
                        (Ok(_), Err(e)) => Err(StoreError::GroupCommit(e)),
                    };
                    // The caller may have gone away; the write stands either way.
                    let _ = reply.send(result);
                });
                (ok, finish)
            })
        });
        self.submit(job);
        answer.await.unwrap_or_else(|_| {
            // The committer dropped the write without running it (its runtime shut down).
            Err(StoreError::GroupCommit(Arc::new(StoreError::Database(
                sqlx::Error::PoolClosed,
            ))))
        })
    }

    /// Hands `job` to the committer, starting one if there is none (or its task is gone).
    fn submit(&self, job: Job) {
        // The slot holds only a sender, valid whatever a panicking holder was doing.
        let mut slot = self
            .group
            .sender
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let job = match slot.as_ref() {
            Some(sender) => match sender.send(job) {
                Ok(()) => return,
                Err(mpsc::error::SendError(job)) => job,
            },
            None => job,
        };
        let (sender, jobs) = mpsc::unbounded_channel();
        // The receiver is right here: this cannot fail.
        let _ = sender.send(job);
        // The task's store has a committer slot of its own, never used: the task does not keep
        // the shared sender alive, so it ends when the last store clone is dropped.
        let store = Store {
            group: GroupCommitter::default(),
            ..self.clone()
        };
        tokio::spawn(run(store, jobs));
        *slot = Some(sender);
    }
}

/// The committer: one group transaction after another, until every sender is gone.
async fn run(store: Store, mut jobs: mpsc::UnboundedReceiver<Job>) {
    while let Some(first) = jobs.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        commit_group(&store, group).await;
    }
}

/// Runs one group in one transaction and answers every write in it.
async fn commit_group(store: &Store, group: Vec<Job>) {
    let mut tx = match store.begin().await {
        Ok(tx) => tx,
        // Dropping the jobs answers their callers with an error.
        Err(e) => {
            tracing::warn!(error = %e, writes = group.len(), "group transaction could not start");
            return;
        }
    };
    // A write alone in its group needs no savepoint: if it fails, the whole transaction is
    // rolled back (nothing is committed, nor counted), and it gets its own error as in a group.
    let alone = group.len() == 1;
    let mut finishes = Vec::with_capacity(group.len());
    let mut broken = None;
    let mut lone_failed = false;
    for job in group {
        if broken.is_some() {
            // Not run: dropping it answers its caller with an error.
            continue;
        }
        if !alone && let Err(e) = tx.savepoint().await {
            broken = Some(e);
            continue;
        }
        let (ok, finish) = job(&mut tx).await;
        finishes.push(finish);
        if alone {
            lone_failed = !ok;
            continue;
        }
        let closed = if ok {
            tx.release_savepoint().await
        } else {
            tx.rollback_to_savepoint().await
        };
        if let Err(e) = closed {
            broken = Some(e);
        }
    }
    if lone_failed {
        if let Err(e) = tx.rollback().await {
            tracing::warn!(error = %e, "rollback failed");
        }
        // The failed write answers with its own error whatever this says.
        for finish in finishes {
            finish(Ok(()));
        }
        return;
    }
    let outcome = match broken {
        Some(e) => {
            if let Err(rollback) = tx.rollback().await {
                tracing::warn!(error = %rollback, "rollback failed");
            }
            Err(Arc::new(e))
        }
        None => tx.commit().await.map_err(Arc::new),
    };
    if let Err(e) = &outcome {
        tracing::warn!(error = %e, writes = finishes.len(), "group transaction failed: none of its writes happened");
    }
    for finish in finishes {
        finish(outcome.clone());
    }
}
