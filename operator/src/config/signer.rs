//! `[signer]`: where the gas keys come from (never from the file itself).
//!
//! One key is one **lane** (`operator/DESIGN.md`, "Signer lanes"): its own nonce sequence and
//! outbox, leased by one instance at a time. The first key is the primary lane (the address
//! announced as `captureAuthorizer` where one address is asked for); every lane's address is
//! accepted as a payment's `operator`.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

use super::{ConfigError, Secret};

/// The most lanes one operator drives.
pub const MAX_LANES: usize = 64;

/// `[signer]`. Private keys come only from the environment (`X402_SIGNER_KEY`, or
/// `X402_SIGNER_KEYS` for several lanes); a file can name a keystore (`keystore`) or one
/// keystore per lane (`keystores`) instead, their password again from the environment.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignerConfig {
    /// An encrypted JSON keystore file (one lane).
    pub keystore: Option<PathBuf>,
    /// Encrypted JSON keystore files, one per lane, in lane order (all share one password).
    pub keystores: Vec<PathBuf>,
    /// The environment variable holding the keystore password.
    pub keystore_password_env: String,
    /// From `X402_SIGNER_KEY` (hex private key). Never read from the file.
    #[serde(skip)]
    pub private_key: Option<Secret>,
    /// From `X402_SIGNER_KEYS` (comma-separated hex private keys, one per lane, in lane order).
    /// Never read from the file.
    #[serde(skip)]
    pub private_keys: Vec<Secret>,
    /// From the variable named by `keystore_password_env`.
    #[serde(skip)]
    pub keystore_password: Option<Secret>,
}

impl Default for SignerConfig {
    fn default() -> Self {
        SignerConfig {
            keystore: None,
            keystores: Vec::new(),
            keystore_password_env: "X402_KEYSTORE_PASSWORD".into(),
            private_key: None,
            private_keys: Vec::new(),
            keystore_password: None,
        }
    }
}

impl fmt::Debug for SignerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignerConfig")
            .field("keystore", &self.keystore)
            .field("keystores", &self.keystores)
            .field("keystore_password_env", &self.keystore_password_env)
            .field("private_key", &self.private_key)
            .field("private_keys", &self.private_keys)
            .field("keystore_password", &self.keystore_password)
            .finish()
    }
}

/// Where one signing key comes from, once the configuration is complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignerSource {
    /// A raw private key (from `X402_SIGNER_KEY` or `X402_SIGNER_KEYS`).
    PrivateKey(Secret),
    /// An encrypted keystore and its password.
    Keystore {
        /// The keystore file.
        path: PathBuf,
        /// Its password.
        password: Secret,
    },
}

/// Why the signer keys are not a usable set of lanes. Key values are never repeated in a
/// message; entries are named by their 0-based position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignerConfigError {
    /// `X402_SIGNER_KEY` and `X402_SIGNER_KEYS` are both set.
    #[error(
        "X402_SIGNER_KEY and X402_SIGNER_KEYS are both set; use X402_SIGNER_KEYS alone for several lanes"
    )]
    KeyAndKeys,
    /// `signer.keystore` and `signer.keystores` are both set.
    #[error(
        "signer.keystore and signer.keystores are both set; list every lane in signer.keystores"
    )]
    KeystoreAndKeystores,
    /// Keys come from the environment and keystores from the file.
    #[error(
        "signer keys come from both the environment and signer.keystores; use one source for every lane"
    )]
    KeysAndKeystores,
    /// An entry of `X402_SIGNER_KEYS` is empty (two commas in a row, or a trailing comma).
    #[error("X402_SIGNER_KEYS entry {index} is empty")]
    EmptyKey {
        /// Its position.
        index: usize,
    },
    /// An entry is not a 32-byte hex private key.
    #[error("{var} entry {index} is not a 32-byte hex private key")]
    NotAKey {
        /// `X402_SIGNER_KEY` or `X402_SIGNER_KEYS`.
        var: &'static str,
        /// Its position.
        index: usize,
    },
    /// The same key is listed twice: two lanes would share one nonce sequence.
    #[error("{what} entries {first} and {second} are the same key; each lane needs its own")]
    Duplicate {
        /// `X402_SIGNER_KEYS` or `signer.keystores`.
        what: &'static str,
        /// The first position.
        first: usize,
        /// The repeated position.
        second: usize,
    },
    /// More lanes than [`MAX_LANES`].
    #[error("{count} signer keys configured; at most {max} lanes are supported")]
    TooMany {
        /// How many were given.
        count: usize,
        /// [`MAX_LANES`].
        max: usize,
    },
    /// A keystore is named but its password variable is not set.
    #[error("signer.keystore(s) is set but {var} is not")]
    MissingPassword {
        /// The password variable.
        var: String,
    },
}

impl From<SignerConfigError> for ConfigError {
    fn from(e: SignerConfigError) -> Self {
        ConfigError::Signer(e)
    }
}

/// Splits `X402_SIGNER_KEYS` into its entries (trimmed; empty entries kept, so that validation
/// can name them).
pub(super) fn split_keys(value: &str) -> Vec<Secret> {
    value.split(',').map(|k| Secret::new(k.trim())).collect()
}

/// A 32-byte hex key, with or without `0x`, normalized to lower-case hex without prefix.
fn normalized_key(key: &str) -> Option<String> {
    let hex = key.strip_prefix("0x").unwrap_or(key);
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| hex.to_ascii_lowercase())
}

impl SignerConfig {
    /// Checks the shape of the lane list without reading any keystore: at most one source of
    /// keys, no empty, malformed or repeated entry, at most [`MAX_LANES`]. A single key is not
    /// parsed here (commands that do not sign do not need it).
    pub fn check_lanes(&self) -> Result<(), SignerConfigError> {
        if self.private_key.is_some() && !self.private_keys.is_empty() {
            return Err(SignerConfigError::KeyAndKeys);
        }
        if self.keystore.is_some() && !self.keystores.is_empty() {
            return Err(SignerConfigError::KeystoreAndKeystores);
        }
        if !self.private_keys.is_empty() && !self.keystores.is_empty() {
            return Err(SignerConfigError::KeysAndKeystores);
        }
        let count = self.private_keys.len().max(self.keystores.len());
        if count > MAX_LANES {
            return Err(SignerConfigError::TooMany {
                count,
                max: MAX_LANES,
            });
        }
        let mut seen: Vec<String> = Vec::with_capacity(self.private_keys.len());
        for (index, key) in self.private_keys.iter().enumerate() {
            if key.expose().is_empty() {
                return Err(SignerConfigError::EmptyKey { index });
            }
            let key = normalized_key(key.expose()).ok_or(SignerConfigError::NotAKey {
                var: "X402_SIGNER_KEYS",
                index,
            })?;
            if let Some(first) = seen.iter().position(|k| *k == key) {
                return Err(SignerConfigError::Duplicate {
                    what: "X402_SIGNER_KEYS",
                    first,
                    second: index,
                });
            }
            seen.push(key);
        }
        for (index, path) in self.keystores.iter().enumerate() {
            if let Some(first) = self.keystores[..index].iter().position(|p| p == path) {
                return Err(SignerConfigError::Duplicate {
                    what: "signer.keystores",
                    first,
                    second: index,
                });
            }
        }
        Ok(())
    }

    /// The primary lane's key source: the environment key wins over a keystore. `None` when
    /// nothing is set (commands that do not sign, like `migrate`, still work).
    pub fn source(&self) -> Result<Option<SignerSource>, ConfigError> {
        Ok(self.sources()?.into_iter().next())
    }

    /// Every lane's key source, in lane order (empty when nothing is set). Validated as by
    /// [`SignerConfig::check_lanes`].
    pub fn sources(&self) -> Result<Vec<SignerSource>, ConfigError> {
        self.check_lanes()?;
        if !self.private_keys.is_empty() {
            return Ok(self
                .private_keys
                .iter()
                .cloned()
                .map(SignerSource::PrivateKey)
                .collect());
        }
        if let Some(key) = &self.private_key {
            return Ok(vec![SignerSource::PrivateKey(key.clone())]);
        }
        let paths: Vec<PathBuf> = match &self.keystore {
            Some(path) => vec![path.clone()],
            None => self.keystores.clone(),
        };
        if paths.is_empty() {
            return Ok(Vec::new());
        }
        let password =
            self.keystore_password
                .clone()
                .ok_or_else(|| SignerConfigError::MissingPassword {
                    var: self.keystore_password_env.clone(),
                })?;
        Ok(paths
            .into_iter()
            .map(|path| SignerSource::Keystore {
                path,
                password: password.clone(),
            })
            .collect())
    }
}
