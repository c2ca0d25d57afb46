//! `POST /verify` (no gas, no state): `auth-capture` through the engine's verifier, `exact`
//! through the SDK and the chain (nonce, balance, simulation).

use alloy::primitives::{Address, Bytes};
use x402_escrow_bindings::{IERC20, IERC3009};
use x402_escrow_sdk::facilitator::{VerifyRequest, VerifyResponse, reasons};
use x402_escrow_sdk::schemes::auth_capture::derive_from_payment_payload;
use x402_escrow_sdk::schemes::exact::{self};

use super::*;
use crate::engine::Engine;
use crate::store::Merchant;

impl Engine {
    /// `POST /verify`: no gas, no state.
    pub async fn facilitator_verify(
        &self,
        merchant: &Merchant,
        request: &VerifyRequest,
    ) -> VerifyResponse {
        let requirements = &request.payment_requirements;
        let payload = &request.payment_payload;
        if requirements.network.chain_id() != self.inner.config.chain_id {
            return VerifyResponse::invalid(
                reasons::INVALID_NETWORK,
                format!(
                    "network {} is not served here (eip155:{})",
                    requirements.network.caip2(),
                    self.inner.config.chain_id
                ),
                None,
            );
        }
        match requirements.scheme.as_str() {
            AUTH_CAPTURE => {
                if payload.payload.as_lifecycle().is_some() {
                    return VerifyResponse::invalid(
                        reasons::AUTH_CAPTURE_PAYLOAD_TYPE,
                        "lifecycle payloads (capture, void, refund) are settled, not verified",
                        None,
                    );
                }
                if let Some(extra) = requirements.auth_capture_extra()
                    && let Err((reason, message)) = self.admit_operator(extra)
                {
                    return VerifyResponse::invalid(reason, message, payload.payload.payer());
                }
                let derived = match derive_from_payment_payload(
                    requirements,
                    payload,
                    &self.inner.verifier.config().registry,
                ) {
                    Ok(d) => d,
                    Err(e) => return VerifyResponse::invalid(e.reason(), e.to_string(), None),
                };
                let payer = derived.payment_info.payer;
                let now = match self.inner.verifier.acceptance_now().await {
                    Ok(now) => now,
                    Err(e) => {
                        return VerifyResponse::invalid(e.reason(), e.to_string(), Some(payer));
                    }
                };
                match self
                    .inner
                    .verifier
                    .verify(merchant, requirements, payload, Ok(derived), now)
                    .await
                {
                    Ok(_) => VerifyResponse::valid(payer),
                    Err(e) => VerifyResponse::invalid(e.reason(), e.to_string(), Some(payer)),
                }
            }
            EXACT => match self.verify_exact(merchant, request).await {
                Ok(payer) => VerifyResponse::valid(payer),
                Err((reason, message, payer)) => VerifyResponse::invalid(reason, message, payer),
            },
            other => VerifyResponse::invalid(
                reasons::UNSUPPORTED_SCHEME,
                format!("scheme {other:?} is not supported (auth-capture, exact)"),
                None,
            ),
        }
    }

    /// The `exact` checks: requirements echo, asset, payee, SDK `verify_payload`, nonce unused,
    /// balance, and an `eth_call` of `transferWithAuthorization` from our signer.
    pub(super) async fn verify_exact(
        &self,
        merchant: &Merchant,
        request: &VerifyRequest,
    ) -> Result<Address, (String, String, Option<Address>)> {
        let requirements = &request.payment_requirements;
        let Some(payload) = request.payment_payload.payload.as_exact() else {
            return Err((
                reasons::INVALID_PAYLOAD.into(),
                "not an exact ERC-3009 payload".into(),
                None,
            ));
        };
        let payer = payload.authorization.from;
        let fail = |r: &str, m: String| (r.to_owned(), m, Some(payer));
        if let Err(e) = request.payment_payload.accepted.check_matches(requirements) {
            return Err(fail(reasons::REQUIREMENTS_MISMATCH, e.to_string()));
        }
        if !self
            .inner
            .verifier
            .config()
            .assets
            .contains(&requirements.asset)
        {
            return Err(fail(
                reasons::INVALID_PAYMENT_REQUIREMENTS,
                format!("asset {} is not accepted", requirements.asset),
            ));
        }
        if !merchant.receivers.contains(&requirements.pay_to) {
            return Err(fail(
                reasons::INVALID_PAYMENT_REQUIREMENTS,
                format!(
                    "payTo {} is not one of the merchant's receivers",
                    requirements.pay_to
                ),
            ));
        }
        let now = self
            .inner
            .verifier
            .acceptance_now()
            .await
            .map_err(|e| fail(reasons::UNEXPECTED_VERIFY_ERROR, e.to_string()))?;
        exact::verify_payload(requirements, payload, now)
            .map_err(|e| fail(e.reason(), e.to_string()))?;
        let auth = &payload.authorization;
        let used = IERC3009::new(requirements.asset, self.inner.provider.clone())
            .authorizationState(auth.from, auth.nonce)
            .call()
            .await
            .map_err(|e| fail(reasons::UNEXPECTED_VERIFY_ERROR, e.to_string()))?;
        if used {
            return Err(fail(
                REASON_AUTHORIZATION_USED,
                format!("authorization {} was already used or cancelled", auth.nonce),
            ));
        }
        let balance = IERC20::new(requirements.asset, self.inner.provider.clone())
            .balanceOf(auth.from)
            .call()
            .await
            .map_err(|e| fail(reasons::UNEXPECTED_VERIFY_ERROR, e.to_string()))?;
        if balance < auth.value.get() {
            return Err(fail(
                reasons::INSUFFICIENT_FUNDS,
                format!("payer balance {balance} is below {}", auth.value),
            ));
        }
        let sim = alloy::providers::Provider::call(
            &self.inner.provider,
            alloy::rpc::types::TransactionRequest::default()
                .from(self.inner.config.signer)
                .to(requirements.asset)
                .input(
                    Bytes::from(crate::engine::calldata::transfer_with_authorization(
                        payload,
                    ))
                    .into(),
                ),
        )
        .await;
        if let Err(e) = sim {
            let (reason, message) = simulation_failure(&e);
            return Err(fail(reason, message));
        }
        Ok(payer)
    }
}

/// Why an `exact` payload's simulation failed: the token reverting the transfer is the
/// payload's fault (`invalid_payload`); no answer from the node, or an error that is not a
/// revert, says nothing of the payload, and a retry should try again
/// (`unexpected_verify_error`).
fn simulation_failure(e: &alloy::transports::TransportError) -> (&'static str, String) {
    match crate::relayer::revert::revert_reason_of(e) {
        Some(revert) => (
            reasons::INVALID_PAYLOAD,
            format!("simulation of transferWithAuthorization reverted: {revert}"),
        ),
        None => (
            reasons::UNEXPECTED_VERIFY_ERROR,
            format!("simulation of transferWithAuthorization failed: {e}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use alloy::rpc::json_rpc::{ErrorPayload, RpcError};
    use alloy::transports::TransportErrorKind;

    use super::*;

    #[test]
    fn a_revert_is_the_payload_and_no_answer_is_transient() {
        let revert = RpcError::ErrorResp(ErrorPayload {
            code: 3,
            message: "execution reverted: FiatTokenV2: invalid signature".into(),
            data: None,
        });
        let (reason, message) = simulation_failure(&revert);
        assert_eq!(reason, reasons::INVALID_PAYLOAD);
        assert!(message.contains("invalid signature"), "{message}");
        // The node unreachable (the fault suite's RPC outage): not the payload's fault.
        let gone = TransportErrorKind::custom_str("error sending request: connection refused");
        let (reason, message) = simulation_failure(&gone);
        assert_eq!(reason, reasons::UNEXPECTED_VERIFY_ERROR);
        assert!(message.contains("connection refused"), "{message}");
        // An error answer that is not a revert (a rate limit, say) is no verdict either.
        let limited = RpcError::ErrorResp(ErrorPayload {
            code: -32005,
            message: "rate limit exceeded".into(),
            data: None,
        });
        assert_eq!(
            simulation_failure(&limited).0,
            reasons::UNEXPECTED_VERIFY_ERROR
        );
    }
}
