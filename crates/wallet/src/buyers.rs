//! Buyer keys: the private keys that sign payments. They come from the environment or from an
//! encrypted keystore (the Ethereum JSON keystore, decrypted by alloy-signer-local) at start-up
//! and live only in memory; the database names a buyer key, never holds it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;

use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;

/// Where one buyer key comes from (`NAME=env:VAR` or `NAME=keystore:PATH`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuyerSpec {
    /// The name payment keys refer to.
    pub name: String,
    /// The source.
    pub source: BuyerSource,
}

/// A buyer key's source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuyerSource {
    /// A hex private key in this environment variable.
    Env(String),
    /// An encrypted JSON keystore; its password comes from the environment.
    Keystore(PathBuf),
}

/// Why a buyer key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum BuyerKeyError {
    /// The spec is not `NAME=env:VAR` or `NAME=keystore:PATH`.
    #[error("buyer {0:?}: expected NAME=env:VAR or NAME=keystore:PATH")]
    Spec(String),
    /// The variable is not set.
    #[error("buyer {name}: environment variable {var} is not set")]
    MissingEnv {
        /// The buyer.
        name: String,
        /// The variable.
        var: String,
    },
    /// The variable holds no private key.
    #[error("buyer {name}: {var} is not a private key")]
    BadKey {
        /// The buyer.
        name: String,
        /// The variable.
        var: String,
    },
    /// The keystore could not be decrypted.
    #[error("buyer {name}: keystore {path}: {message}")]
    Keystore {
        /// The buyer.
        name: String,
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// The same name twice.
    #[error("buyer {0} is configured twice")]
    Duplicate(String),
}

impl FromStr for BuyerSpec {
    type Err = BuyerKeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let spec = || BuyerKeyError::Spec(s.to_owned());
        let (name, source) = s.split_once('=').ok_or_else(spec)?;
        if name.is_empty() {
            return Err(spec());
        }
        let source = if let Some(var) = source.strip_prefix("env:") {
            BuyerSource::Env(var.to_owned())
        } else if let Some(path) = source.strip_prefix("keystore:") {
            BuyerSource::Keystore(PathBuf::from(path))
        } else {
            return Err(spec());
        };
        Ok(BuyerSpec {
            name: name.to_owned(),
            source,
        })
    }
}

/// The loaded buyer keys, by name.
#[derive(Clone, Default)]
pub struct Buyers(BTreeMap<String, PrivateKeySigner>);

impl std::fmt::Debug for Buyers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(name, key)| (name, key.address())))
            .finish()
    }
}

impl Buyers {
    /// Loads every spec; `password_env` holds the keystores' password.
    pub fn load(specs: &[BuyerSpec], password_env: &str) -> Result<Buyers, BuyerKeyError> {
        let mut buyers = Buyers::default();
        for spec in specs {
            let signer = match &spec.source {
                BuyerSource::Env(var) => {
                    let text = std::env::var(var).map_err(|_| BuyerKeyError::MissingEnv {
                        name: spec.name.clone(),
                        var: var.clone(),
                    })?;
                    text.trim()
                        .parse::<PrivateKeySigner>()
                        .map_err(|_| BuyerKeyError::BadKey {
                            name: spec.name.clone(),
                            var: var.clone(),
                        })?
                }
                BuyerSource::Keystore(path) => {
                    let password =
                        std::env::var(password_env).map_err(|_| BuyerKeyError::MissingEnv {
                            name: spec.name.clone(),
                            var: password_env.to_owned(),
                        })?;
                    PrivateKeySigner::decrypt_keystore(path, password).map_err(|e| {
                        BuyerKeyError::Keystore {
                            name: spec.name.clone(),
                            path: path.display().to_string(),
                            message: e.to_string(),
                        }
                    })?
                }
            };
            buyers.insert(&spec.name, signer)?;
        }
        Ok(buyers)
    }

    /// Adds a key under `name`.
    pub fn insert(&mut self, name: &str, signer: PrivateKeySigner) -> Result<(), BuyerKeyError> {
        if self.0.insert(name.to_owned(), signer).is_some() {
            return Err(BuyerKeyError::Duplicate(name.to_owned()));
        }
        Ok(())
    }

    /// The key named `name`.
    pub fn get(&self, name: &str) -> Option<&PrivateKeySigner> {
        self.0.get(name)
    }

    /// Names and addresses.
    pub fn addresses(&self) -> Vec<(String, Address)> {
        self.0
            .iter()
            .map(|(name, key)| (name.clone(), key.address()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_and_keystores() {
        assert!("a=env:X".parse::<BuyerSpec>().is_ok());
        assert!("a=file:X".parse::<BuyerSpec>().is_err());
        assert!("=env:X".parse::<BuyerSpec>().is_err());
        let dir = std::env::temp_dir().join(format!("wallet-ks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut rng = rand08::thread_rng();
        let (signer, file) =
            PrivateKeySigner::new_keystore(&dir, &mut rng, "pw-for-test", None).unwrap();
        // SAFETY of the test: the variable name is unique to this test.
        unsafe { std::env::set_var("X402_WALLET_TEST_KS_PASSWORD", "pw-for-test") };
        let spec: BuyerSpec = format!("main=keystore:{}", dir.join(&file).display())
            .parse()
            .unwrap();
        let buyers = Buyers::load(&[spec], "X402_WALLET_TEST_KS_PASSWORD").unwrap();
        assert_eq!(buyers.get("main").unwrap().address(), signer.address());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
