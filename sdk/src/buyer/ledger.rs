//! The spend ledger: every payment the buyer reserved, persisted across runs.
//!
//! Storage is one JSON file. Every operation takes an exclusive OS file lock (on a sibling
//! `<file>.lock`, so that the lock survives the data file being replaced), reads the file,
//! changes it, and writes it back atomically: a temporary file in the same directory, `fsync`,
//! `rename` over the original, `fsync` of the directory. Two processes (or two threads, or two
//! [`SpendLedger`] values) sharing the file therefore never lose or tear each other's updates,
//! and a crash leaves either the old or the new file.
//!
//! [`SpendLedger::reserve`] checks the policy against the spending recorded in the file and
//! records the reservation in the same locked step, so concurrent payments cannot both pass a
//! cap that only one of them fits in.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use alloy::primitives::{Address, B256};
use serde::{Deserialize, Serialize};

use super::policy::{PaymentIntent, PolicyViolation, SpendPolicy, Usage, add};
use super::serde_util;
use crate::amount::Amount;
use crate::network::Network;

/// The file format's version.
pub const LEDGER_VERSION: u32 = 1;
/// Seconds in a UTC day (Unix time has no leap seconds).
pub const SECONDS_PER_DAY: u64 = 86_400;

/// The UTC day number (days since 1970-01-01) of a Unix time.
pub fn utc_day(unix_secs: u64) -> u64 {
    unix_secs / SECONDS_PER_DAY
}

/// Where a payment stands, as far as the buyer knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Counted against the budget; signed or about to be, outcome not known yet.
    Reserved,
    /// The server took the payment (authorized or settled).
    Paid,
    /// The hold was released back to the payer (void). Returns the whole amount.
    Voided,
    /// `amount` of the payment came back (refund, or a partial capture with the rest released).
    Refunded {
        /// Total returned so far, atomic units.
        #[serde(with = "serde_util::amount")]
        amount: Amount,
    },
    /// The payer reclaimed the hold after the authorization expired. Returns the whole amount.
    Reclaimed,
    /// The payment was not taken (refused, or never settled before its signature expired).
    /// Returns the whole amount.
    Failed,
}

impl PaymentStatus {
    /// What came back to the payer out of `amount`.
    pub fn returned(&self, amount: Amount) -> Amount {
        match self {
            Self::Reserved | Self::Paid => Amount::ZERO,
            Self::Refunded { amount: returned } => (*returned).min(amount),
            Self::Voided | Self::Reclaimed | Self::Failed => amount,
        }
    }

    /// A short name (`reserved`, `paid`, `voided`, `refunded`, `reclaimed`, `failed`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Reserved => "reserved",
            Self::Paid => "paid",
            Self::Voided => "voided",
            Self::Refunded { .. } => "refunded",
            Self::Reclaimed => "reclaimed",
            Self::Failed => "failed",
        }
    }
}

/// Details known once the payment is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SignedDetails {
    /// auth-capture: the escrow's payment hash (`paymentState` key).
    pub payment_hash: Option<B256>,
    /// auth-capture: the escrow the payment commits to.
    pub escrow: Option<Address>,
    /// The signature's `validBefore` (Unix seconds): after it, an unused payment can no longer
    /// be taken.
    pub valid_before: Option<u64>,
    /// auth-capture: `authorizationExpiry` (after it the payer may reclaim).
    pub authorization_expiry: Option<u64>,
}

/// One payment in the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerRecord {
    /// The payment id (also the `payment-identifier` id and the `Idempotency-Key`).
    pub id: String,
    /// The scheme.
    pub scheme: String,
    /// The network.
    #[serde(with = "serde_util::network")]
    pub network: Network,
    /// The token.
    pub asset: Address,
    /// The recipient (`payTo`).
    pub payee: Address,
    /// The host paid.
    pub host: String,
    /// The resource URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The amount, atomic units.
    #[serde(with = "serde_util::amount")]
    pub amount: Amount,
    /// The status.
    pub status: PaymentStatus,
    /// When reserved (Unix seconds); the UTC day of this time is the day it counts against.
    pub created_at: u64,
    /// Last change (Unix seconds).
    pub updated_at: u64,
    /// When signed (Unix seconds); `None` while only reserved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_at: Option<u64>,
    /// auth-capture: the escrow's payment hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_hash: Option<B256>,
    /// auth-capture: the escrow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escrow: Option<Address>,
    /// The signature's `validBefore`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_before: Option<u64>,
    /// auth-capture: `authorizationExpiry`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_expiry: Option<u64>,
    /// The settlement transaction, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction: Option<B256>,
    /// The server answered non-2xx after taking the payment: the merchant is expected to void
    /// it, but until the escrow or a receipt confirms it the amount stays counted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub void_expected: bool,
}

impl LedgerRecord {
    /// What came back to the payer.
    pub fn returned(&self) -> Amount {
        self.status.returned(self.amount)
    }

    /// What counts against the budget: the amount minus what came back.
    pub fn spent(&self) -> Amount {
        Amount::new(self.amount.get().saturating_sub(self.returned().get()))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LedgerFile {
    version: u32,
    records: Vec<LedgerRecord>,
}

impl LedgerFile {
    fn empty() -> Self {
        Self {
            version: LEDGER_VERSION,
            records: Vec::new(),
        }
    }

    fn find_mut(&mut self, id: &str) -> Result<&mut LedgerRecord, LedgerError> {
        self.records
            .iter_mut()
            .find(|r| r.id == id)
            .ok_or_else(|| LedgerError::UnknownPayment(id.to_owned()))
    }

    fn usage(&self, network: Network, asset: Address, now: u64) -> Usage {
        let today = utc_day(now);
        self.records
            .iter()
            .filter(|r| r.network == network && r.asset == asset)
            .fold(Usage::default(), |usage, r| {
                let spent = r.spent();
                Usage {
                    spent_today: if utc_day(r.created_at) == today {
                        add(usage.spent_today, spent)
                    } else {
                        usage.spent_today
                    },
                    spent_total: add(usage.spent_total, spent),
                }
            })
    }
}

/// Why a ledger operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// Reading, writing or locking the file failed.
    #[error("spend ledger {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The file is not a ledger this version understands (it is left untouched).
    #[error("spend ledger {path} is unreadable: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// No payment has this id.
    #[error("spend ledger has no payment {0:?}")]
    UnknownPayment(String),
    /// A payment with this id already exists.
    #[error("spend ledger already has a payment {0:?}")]
    DuplicatePayment(String),
}

/// Why [`SpendLedger::reserve`] refused.
#[derive(Debug, thiserror::Error)]
pub enum ReserveError {
    /// The policy refused the payment.
    #[error(transparent)]
    Policy(#[from] PolicyViolation),
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// The spend ledger (a handle on the file; cheap to clone, every clone shares the file).
#[derive(Debug, Clone)]
pub struct SpendLedger {
    path: PathBuf,
    lock_path: PathBuf,
}

impl SpendLedger {
    /// Opens (creating it, and its directory, when missing) the ledger at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, LedgerError> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|source| LedgerError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let mut lock_name = path.file_name().unwrap_or_default().to_os_string();
        lock_name.push(".lock");
        let ledger = Self {
            lock_path: path.with_file_name(lock_name),
            path,
        };
        // Creates the file when missing and checks that it is readable.
        ledger.with_file(|_| Ok(((), false)))?;
        Ok(ledger)
    }

    /// The ledger file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, source: io::Error) -> LedgerError {
        LedgerError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Runs `f` on the file's contents under the exclusive lock; writes the contents back when
    /// `f` says it changed them.
    fn with_file<R>(
        &self,
        f: impl FnOnce(&mut LedgerFile) -> Result<(R, bool), LedgerError>,
    ) -> Result<R, LedgerError> {
        let lock_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.lock_path)
            .map_err(|source| LedgerError::Io {
                path: self.lock_path.clone(),
                source,
            })?;
        let mut lock = fd_lock::RwLock::new(lock_file);
        let _guard = lock.write().map_err(|source| LedgerError::Io {
            path: self.lock_path.clone(),
            source,
        })?;
        let (mut contents, exists) = self.load()?;
        let (result, changed) = f(&mut contents)?;
        if changed || !exists {
            self.store(&contents)?;
        }
        Ok(result)
    }

    fn load(&self) -> Result<(LedgerFile, bool), LedgerError> {
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok((LedgerFile::empty(), false));
            }
            Err(e) => return Err(self.io(e)),
        };
        let file: LedgerFile =
            serde_json::from_slice(&bytes).map_err(|e| LedgerError::Corrupt {
                path: self.path.clone(),
                reason: e.to_string(),
            })?;
        if file.version != LEDGER_VERSION {
            return Err(LedgerError::Corrupt {
                path: self.path.clone(),
                reason: format!(
                    "version {} (this program reads {LEDGER_VERSION})",
                    file.version
                ),
            });
        }
        Ok((file, true))
    }

    fn store(&self, contents: &LedgerFile) -> Result<(), LedgerError> {
        let bytes = serde_json::to_vec_pretty(contents).map_err(|e| LedgerError::Corrupt {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        write_atomically(&self.path, &bytes).map_err(|e| self.io(e))
    }

    /// Checks `intent` against `policy` and the spending recorded so far, and records it as
    /// [`PaymentStatus::Reserved`] under `id`, in one locked step. `now` is Unix seconds.
    pub fn reserve(
        &self,
        id: &str,
        policy: &SpendPolicy,
        intent: &PaymentIntent,
        now: u64,
    ) -> Result<LedgerRecord, ReserveError> {
        let span = tracing::debug_span!("ledger_reserve", id, amount = %intent.amount);
        let _enter = span.enter();
        let outcome = self.with_file(|file| {
            if file.records.iter().any(|r| r.id == id) {
                return Err(LedgerError::DuplicatePayment(id.to_owned()));
            }
            let usage = file.usage(intent.network, intent.asset, now);
            if let Err(violation) = policy.check(intent, usage) {
                return Ok((Err(violation), false));
            }
            let record = LedgerRecord {
                id: id.to_owned(),
                scheme: intent.scheme.clone(),
                network: intent.network,
                asset: intent.asset,
                payee: intent.payee,
                host: super::policy::normalize_host(&intent.host),
                resource: intent.resource.clone(),
                amount: intent.amount,
                status: PaymentStatus::Reserved,
                created_at: now,
                updated_at: now,
                signed_at: None,
                payment_hash: None,
                escrow: None,
                valid_before: None,
                authorization_expiry: None,
                transaction: None,
                void_expected: false,
            };
            file.records.push(record.clone());
            Ok((Ok(record), true))
        })?;
        match &outcome {
            Ok(_) => tracing::debug!("reserved"),
            Err(violation) => tracing::info!(rule = violation.rule(), %violation, "refused"),
        }
        outcome.map_err(ReserveError::Policy)
    }

    fn update(
        &self,
        id: &str,
        f: impl FnOnce(&mut LedgerRecord),
    ) -> Result<LedgerRecord, LedgerError> {
        self.with_file(|file| {
            let record = file.find_mut(id)?;
            f(record);
            Ok((record.clone(), true))
        })
    }

    /// Records what signing produced (before the payment is sent).
    pub fn record_signed(
        &self,
        id: &str,
        details: SignedDetails,
        now: u64,
    ) -> Result<LedgerRecord, LedgerError> {
        self.update(id, |r| {
            r.signed_at = Some(now);
            r.payment_hash = details.payment_hash;
            r.escrow = details.escrow;
            r.valid_before = details.valid_before;
            r.authorization_expiry = details.authorization_expiry;
            r.updated_at = now;
        })
    }

    /// Records a settlement transaction (e.g. from a `settlement_pending` receipt) without
    /// changing the status.
    pub fn record_transaction(
        &self,
        id: &str,
        transaction: B256,
        now: u64,
    ) -> Result<LedgerRecord, LedgerError> {
        self.update(id, |r| {
            r.transaction = Some(transaction);
            r.updated_at = now;
        })
    }

    /// The server took the payment. `void_expected`: it answered non-2xx, so the merchant
    /// should void it (the amount stays counted until that is confirmed).
    pub fn record_paid(
        &self,
        id: &str,
        transaction: Option<B256>,
        void_expected: bool,
        now: u64,
    ) -> Result<LedgerRecord, LedgerError> {
        self.update(id, |r| {
            r.status = PaymentStatus::Paid;
            r.transaction = transaction.or(r.transaction);
            r.void_expected = void_expected;
            r.updated_at = now;
        })
    }

    /// The hold was voided: the whole amount returns to the budget.
    pub fn record_void(&self, id: &str, now: u64) -> Result<LedgerRecord, LedgerError> {
        self.set_status(id, PaymentStatus::Voided, now)
    }

    /// The payer reclaimed the hold: the whole amount returns to the budget.
    pub fn record_reclaimed(&self, id: &str, now: u64) -> Result<LedgerRecord, LedgerError> {
        self.set_status(id, PaymentStatus::Reclaimed, now)
    }

    /// The payment failed (was not taken): the reservation is released.
    pub fn record_failed(&self, id: &str, now: u64) -> Result<LedgerRecord, LedgerError> {
        self.set_status(id, PaymentStatus::Failed, now)
    }

    /// A refund of `amount` (added to earlier refunds, at most the payment's amount) returns
    /// to the budget.
    pub fn record_refund(
        &self,
        id: &str,
        amount: Amount,
        now: u64,
    ) -> Result<LedgerRecord, LedgerError> {
        self.update(id, |r| {
            let total = add(r.returned(), amount).min(r.amount);
            r.status = PaymentStatus::Refunded { amount: total };
            r.void_expected = false;
            r.updated_at = now;
        })
    }

    /// Sets the status outright (reconciliation against the chain).
    pub fn set_status(
        &self,
        id: &str,
        status: PaymentStatus,
        now: u64,
    ) -> Result<LedgerRecord, LedgerError> {
        self.update(id, |r| {
            r.status = status;
            r.void_expected = false;
            r.updated_at = now;
        })
    }

    /// Releases reservations that were never signed and are older than `older_than_secs`
    /// (a process that died between reserving and signing). Returns their ids.
    pub fn release_unsigned(
        &self,
        older_than_secs: u64,
        now: u64,
    ) -> Result<Vec<String>, LedgerError> {
        self.with_file(|file| {
            let mut released = Vec::new();
            for r in &mut file.records {
                if r.status == PaymentStatus::Reserved
                    && r.signed_at.is_none()
                    && now.saturating_sub(r.created_at) > older_than_secs
                {
                    r.status = PaymentStatus::Failed;
                    r.updated_at = now;
                    released.push(r.id.clone());
                }
            }
            let changed = !released.is_empty();
            Ok((released, changed))
        })
    }

    /// The record of `id`.
    pub fn get(&self, id: &str) -> Result<Option<LedgerRecord>, LedgerError> {
        self.with_file(|file| Ok((file.records.iter().find(|r| r.id == id).cloned(), false)))
    }

    /// Every record, oldest first.
    pub fn records(&self) -> Result<Vec<LedgerRecord>, LedgerError> {
        self.with_file(|file| Ok((file.records.clone(), false)))
    }

    /// What has been spent in (network, asset): today (UTC day of `now`) and in total.
    pub fn usage(&self, network: Network, asset: Address, now: u64) -> Result<Usage, LedgerError> {
        self.with_file(|file| Ok((file.usage(network, asset, now), false)))
    }
}

/// Writes `bytes` to `path` atomically: a fresh temporary file beside it, fsync, rename over
/// `path`, fsync of the directory.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{:016x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    let result = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        sync_dir(&dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}
