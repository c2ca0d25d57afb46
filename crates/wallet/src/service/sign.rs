//! `POST /v1/sign`: the payment header for a challenge the caller received.

use super::*;

impl Wallet {
    /// `POST /v1/sign`: the payment header for a challenge the caller received.
    pub async fn sign(
        &self,
        key: &KeyRow,
        idempotency_key: Option<String>,
        request: SignRequest,
    ) -> Result<SignOutcome, WalletError> {
        if let Err(refusal) = rules::check_key(key, now_secs()) {
            return Err(self.refuse_key(key, refusal).await);
        }
        let url = guard::parse_url(&request.url)?;
        let challenge = challenge_from_json(&request.payment_required)
            .map_err(|e| WalletError::InvalidChallenge(e.to_string()))?;
        let url_text = url.to_string();
        let mut hasher = Sha256::new();
        hasher.update(b"sign\0");
        hasher.update(url_text.as_bytes());
        hasher.update([0]);
        hasher.update(request.payment_required.to_string());
        let hash = hex::encode(hasher.finalize());
        let meta = Meta {
            url: &url_text,
            method: "SIGN",
            hash: &hash,
        };
        if let Err(refusal) = rules::check_url(&key.rules, &url) {
            return Err(self.record_refusal(key, &meta, None, refusal).await);
        }
        let idempotency_key = idempotency_key.unwrap_or_else(new_id);
        let existing = self
            .inner
            .store
            .payment_by_idempotency(&key.id, &idempotency_key)
            .await?;
        let (row, option) = match existing {
            Some(row) => {
                if row.request_hash != hash {
                    return Err(WalletError::Conflict {
                        code: "idempotency_conflict",
                        message: "this Idempotency-Key was used for another request".to_owned(),
                        payment_id: Some(row.id),
                    });
                }
                match row.state {
                    State::PendingApproval => {
                        return Ok(SignOutcome::Pending(Box::new(pending(row))));
                    }
                    State::Rejected => return Err(rejected(row)),
                    State::Signed => return Ok(SignOutcome::Signed(Box::new(sign_response(row)?))),
                    State::Reserved => {
                        let option = self.matching_offer(key, &row, &challenge).await?;
                        (row, option)
                    }
                    _ => return Err(completed(&row)),
                }
            }
            None => {
                let candidates = self.payable(key, &meta, &challenge).await?;
                match self
                    .reserve(key, &meta, &idempotency_key, candidates)
                    .await?
                {
                    Reserve::Exists(row) => {
                        return match row.state {
                            State::Signed => {
                                Ok(SignOutcome::Signed(Box::new(sign_response(*row)?)))
                            }
                            State::PendingApproval => {
                                Ok(SignOutcome::Pending(Box::new(pending(*row))))
                            }
                            _ => Err(completed(&row)),
                        };
                    }
                    Reserve::Made(row, option) => {
                        if row.state == State::PendingApproval {
                            self.notify_owner(&row);
                            return Ok(SignOutcome::Pending(Box::new(pending(*row))));
                        }
                        (*row, *option)
                    }
                }
            }
        };
        let signed = self.sign_row(key, row, &challenge, &option).await?;
        Ok(SignOutcome::Signed(Box::new(sign_response(signed)?)))
    }
}

fn sign_response(row: PaymentRow) -> Result<SignResponse, WalletError> {
    let (Some(name), Some(value)) = (row.header_name.clone(), row.header_value.clone()) else {
        return Err(WalletError::Internal(format!(
            "payment {} is signed without a header",
            row.id
        )));
    };
    Ok(SignResponse {
        header_name: name,
        header_value: value,
        payment: row.view(),
    })
}
