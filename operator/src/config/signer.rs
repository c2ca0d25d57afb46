//! `[signer]`: where the gas key comes from (never from the file itself).

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

use super::{ConfigError, Secret};

/// `[signer]`. The private key itself comes only from `X402_SIGNER_KEY`; a file can name a
/// keystore instead (its password again from the environment).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignerConfig {
    /// An encrypted JSON keystore file.
    pub keystore: Option<PathBuf>,
    /// The environment variable holding the keystore password.
    pub keystore_password_env: String,
    /// From `X402_SIGNER_KEY` (hex private key). Never read from the file.
    #[serde(skip)]
    pub private_key: Option<Secret>,
    /// From the variable named by `keystore_password_env`.
    #[serde(skip)]
    pub keystore_password: Option<Secret>,
}

impl Default for SignerConfig {
    fn default() -> Self {
        SignerConfig {
            keystore: None,
            keystore_password_env: "X402_KEYSTORE_PASSWORD".into(),
            private_key: None,
            keystore_password: None,
        }
    }
}

impl fmt::Debug for SignerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignerConfig")
            .field("keystore", &self.keystore)
            .field("keystore_password_env", &self.keystore_password_env)
            .field("private_key", &self.private_key)
            .field("keystore_password", &self.keystore_password)
            .finish()
    }
}

/// Where the signing key comes from, once the configuration is complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignerSource {
    /// A raw private key (from `X402_SIGNER_KEY`).
    PrivateKey(Secret),
    /// An encrypted keystore and its password.
    Keystore {
        /// The keystore file.
        path: PathBuf,
        /// Its password.
        password: Secret,
    },
}

impl SignerConfig {
    /// The key source: the environment key wins over a keystore. `None` when neither is set
    /// (commands that do not sign, like `migrate`, still work).
    pub fn source(&self) -> Result<Option<SignerSource>, ConfigError> {
        if let Some(key) = &self.private_key {
            return Ok(Some(SignerSource::PrivateKey(key.clone())));
        }
        match (&self.keystore, &self.keystore_password) {
            (Some(path), Some(password)) => Ok(Some(SignerSource::Keystore {
                path: path.clone(),
                password: password.clone(),
            })),
            (Some(_), None) => Err(ConfigError::Invalid(format!(
                "signer.keystore is set but {} is not",
                self.keystore_password_env
            ))),
            (None, _) => Ok(None),
        }
    }
}
