//! The wallet's error: every variant maps to one code of
//! [`WALLET_ERROR_CODES`](x402_escrow_sdk::types::wallet::WALLET_ERROR_CODES) and its status.

use x402_escrow_sdk::types::wallet::{WALLET_ERROR_CODES, WalletErrorBody, WalletErrorEnvelope};

use crate::rules::Refusal;
use crate::store::StoreError;

/// Where the wallet can stop a request.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    /// The input is malformed or not allowed (`code` says which rule of the API).
    #[error("{message}")]
    Invalid {
        /// The error code.
        code: &'static str,
        /// What was wrong.
        message: String,
    },
    /// A spend rule refused: nothing was signed.
    #[error("{refusal}")]
    Refused {
        /// The rule.
        refusal: Refusal,
        /// The ledger entry recording the refusal, when one was written.
        payment_id: Option<String>,
    },
    /// A conflict with the ledger (`idempotency_conflict`, `payment_completed`, …).
    #[error("{message}")]
    Conflict {
        /// The error code.
        code: &'static str,
        /// What conflicts.
        message: String,
        /// The payment concerned.
        payment_id: Option<String>,
    },
    /// Missing or unknown credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// Authenticated, but not allowed to do this.
    #[error("{0}")]
    Forbidden(String),
    /// No such resource.
    #[error("{0} not found")]
    NotFound(String),
    /// No offer of the 402 can be signed by this wallet.
    #[error("no payable offer: {0}")]
    NoPayableOffer(String),
    /// The 402's challenge does not decode.
    #[error("invalid payment challenge: {0}")]
    InvalidChallenge(String),
    /// The resource could not be reached (a signed payment stays reserved; retry with the same
    /// `Idempotency-Key` to resend it).
    #[error("upstream: {message}")]
    Upstream {
        /// What failed.
        message: String,
        /// The payment concerned.
        payment_id: Option<String>,
    },
    /// The resource's body is larger than the wallet returns.
    #[error("the resource's body is larger than {0} bytes")]
    UpstreamTooLarge(usize),
    /// The key's buyer key is not loaded.
    #[error("buyer key {0:?} is not loaded in this wallet")]
    BuyerUnavailable(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A fault injected by a test ([`CrashPoint`](crate::CrashPoint)): the process "dies" here.
    #[error("injected crash at {0:?}")]
    InjectedCrash(crate::CrashPoint),
    /// Anything else.
    #[error("internal error: {0}")]
    Internal(String),
}

impl WalletError {
    /// An `Invalid` error.
    pub fn invalid(code: &'static str, message: String) -> Self {
        WalletError::Invalid { code, message }
    }

    /// A refusal without a ledger entry.
    pub fn refused(refusal: Refusal) -> Self {
        WalletError::Refused {
            refusal,
            payment_id: None,
        }
    }

    /// The error code.
    pub fn code(&self) -> &'static str {
        match self {
            WalletError::Invalid { code, .. } | WalletError::Conflict { code, .. } => code,
            WalletError::Refused { refusal, .. } => refusal.code,
            WalletError::Unauthorized(_) => "unauthorized",
            WalletError::Forbidden(_) => "forbidden",
            WalletError::NotFound(_) => "not_found",
            WalletError::NoPayableOffer(_) => "no_payable_offer",
            WalletError::InvalidChallenge(_) => "invalid_challenge",
            WalletError::Upstream { .. } => "upstream_unreachable",
            WalletError::UpstreamTooLarge(_) => "upstream_body_too_large",
            WalletError::BuyerUnavailable(_) => "buyer_unavailable",
            WalletError::Store(_) | WalletError::InjectedCrash(_) | WalletError::Internal(_) => {
                "internal"
            }
        }
    }

    /// The HTTP status of the code.
    pub fn status(&self) -> u16 {
        let code = self.code();
        WALLET_ERROR_CODES
            .iter()
            .find(|(c, _)| *c == code)
            .map_or(500, |(_, status)| *status)
    }

    /// The JSON body.
    pub fn envelope(&self) -> WalletErrorEnvelope {
        let (rule, payment_id) = match self {
            WalletError::Refused {
                refusal,
                payment_id,
            } => (Some(refusal.rule.to_owned()), payment_id.clone()),
            WalletError::Conflict { payment_id, .. } | WalletError::Upstream { payment_id, .. } => {
                (None, payment_id.clone())
            }
            _ => (None, None),
        };
        let message = match self {
            // Details of internal failures stay in the log.
            WalletError::Store(_) | WalletError::Internal(_) | WalletError::InjectedCrash(_) => {
                "internal error".to_owned()
            }
            other => other.to_string(),
        };
        WalletErrorEnvelope {
            error: WalletErrorBody {
                code: self.code().to_owned(),
                message,
                rule,
                payment_id,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_status() {
        let refusal = Refusal {
            rule: "daily_cap",
            code: "daily_cap_exceeded",
            message: "x".into(),
        };
        let e = WalletError::Refused {
            refusal,
            payment_id: Some("p".into()),
        };
        assert_eq!(e.status(), 403);
        let body = e.envelope().error;
        assert_eq!(body.rule.as_deref(), Some("daily_cap"));
        assert_eq!(body.payment_id.as_deref(), Some("p"));
        assert_eq!(
            WalletError::invalid("body_too_large", "x".into()).status(),
            413
        );
        assert_eq!(WalletError::Unauthorized("x".into()).status(), 401);
    }
}
