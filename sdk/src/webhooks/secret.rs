//! [`WebhookSecret`]: the `whsec_<base64>` key an endpoint's signatures are made with.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Deserializer};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{GENERATED_SECRET_LEN, MAX_SECRET_LEN, MIN_SECRET_LEN, SECRET_PREFIX};

type HmacSha256 = Hmac<Sha256>;

/// Why a secret could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The text does not start with `whsec_`.
    #[error("webhook secret must start with \"whsec_\"")]
    MissingPrefix,
    /// The part after the prefix is not standard base64.
    #[error("webhook secret is not valid base64 after \"whsec_\"")]
    Base64,
    /// The decoded key is shorter or longer than allowed.
    #[error(
        "webhook secret is {0} bytes long; it must be {MIN_SECRET_LEN} to {MAX_SECRET_LEN} bytes"
    )]
    Length(usize),
}

/// A webhook signing secret (the raw HMAC key).
///
/// Neither `Display` nor `Debug` prints the key: they show `whsec_…` with the key elided, so a
/// secret that ends up in a log or an error message does not leak.
/// [`expose_secret`](Self::expose_secret) returns the full `whsec_<base64>` text, for the one
/// place that needs it (showing it to the merchant once, storing it). Equality is constant-time.
#[derive(Clone)]
pub struct WebhookSecret {
    key: Vec<u8>,
}

impl WebhookSecret {
    /// Parses `whsec_<base64>` (standard alphabet, padding optional).
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let encoded = text
            .trim()
            .strip_prefix(SECRET_PREFIX)
            .ok_or(SecretError::MissingPrefix)?;
        let lenient = base64::engine::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::GeneralPurposeConfig::new()
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
        );
        let key = lenient.decode(encoded).map_err(|_| SecretError::Base64)?;
        Self::from_bytes(key)
    }

    /// A secret from raw key bytes ([`MIN_SECRET_LEN`]..=[`MAX_SECRET_LEN`]).
    pub fn from_bytes(key: impl Into<Vec<u8>>) -> Result<Self, SecretError> {
        let key = key.into();
        if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&key.len()) {
            return Err(SecretError::Length(key.len()));
        }
        Ok(Self { key })
    }

    /// A fresh random secret of [`GENERATED_SECRET_LEN`] bytes from the OS CSPRNG.
    pub fn generate() -> Self {
        Self {
            key: rand::random::<[u8; GENERATED_SECRET_LEN]>().to_vec(),
        }
    }

    /// The full secret, `whsec_<base64>`. Only call this to hand the secret over or store it.
    pub fn expose_secret(&self) -> String {
        format!("{SECRET_PREFIX}{}", BASE64.encode(&self.key))
    }

    /// The raw key bytes. Only call this to hand the secret over or store it.
    pub fn expose_bytes(&self) -> &[u8] {
        &self.key
    }

    /// The HMAC-SHA256 of `content` under this key.
    ///
    /// Keys are at most one SHA-256 block long (checked on construction), so the block-sized
    /// key HMAC expects is the key padded with zeros, exactly as HMAC defines it.
    pub(super) fn mac(&self, content: &[&[u8]]) -> [u8; 32] {
        let mut block = [0u8; MAX_SECRET_LEN];
        if self.key.len() <= MAX_SECRET_LEN {
            block[..self.key.len()].copy_from_slice(&self.key);
        } else {
            // Unreachable through the constructors; HMAC's rule for keys longer than a block.
            let digest = Sha256::digest(&self.key);
            block[..digest.len()].copy_from_slice(&digest);
        }
        let mut mac = <HmacSha256 as hmac::digest::KeyInit>::new(&block.into());
        for part in content {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Display for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SECRET_PREFIX}…")
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "WebhookSecret({SECRET_PREFIX}…, {} bytes)",
            self.key.len()
        )
    }
}

impl PartialEq for WebhookSecret {
    fn eq(&self, other: &Self) -> bool {
        self.key.ct_eq(&other.key).into()
    }
}

impl Eq for WebhookSecret {}

impl FromStr for WebhookSecret {
    type Err = SecretError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl<'de> Deserialize<'de> for WebhookSecret {
    /// From the `whsec_<base64>` string (configuration files). There is deliberately no
    /// `Serialize`: write [`WebhookSecret::expose_secret`] explicitly.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}
