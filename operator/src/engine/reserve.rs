//! The refund reserve's engine side: a capture's automatic top-up ([`topup_plan`]), deposits
//! the indexer saw ([`Engine::process_deposit`]), and `reconcile`'s check of the ledger against
//! the chain ([`Engine::reconcile_reserve`]).

use std::collections::BTreeMap;

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use alloy::sol_types::SolEvent;
use uuid::Uuid;
use x402_escrow_bindings::IERC20;

use super::{Engine, EngineConfig, EngineError};
use crate::lifecycle::Amount;
use crate::store::{ChainEvent, DepositOutcome, NewTopup, Payment, ReserveEntry};

/// Basis points in one whole.
const BPS: u128 = 10_000;

/// A capture's fee and the top-up it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TopupPlan {
    /// The `(feeBps, feeReceiver)` the capture is sent with.
    pub fee: (u16, Address),
    /// What is recorded with the capture (skipped, with the reason, when it cannot ride).
    pub topup: NewTopup,
}

/// The fee the escrow takes of `amount` at `bps` (`amount * bps / 10_000`, rounded down, as
/// `_distributeTokens` computes it).
fn fee_of(amount: Amount, bps: u16) -> Amount {
    amount.saturating_mul(u128::from(bps)) / BPS
}

/// How a capture of `amount` carries the merchant's top-up share (`share_bps`): the share is
/// added to the operator's fee (`fee`, already within the payment's bounds) and the whole fee
/// goes to the refund account (the signer), so the share lands where refunds are paid from.
/// The operator's own part stays what it would have been (`fee_of(amount, fee_bps)`); the
/// reserve is credited the rest, once the capture is confirmed. Skipped (the capture goes out
/// with `fee` unchanged, and the reason is recorded) when the payment's signed bounds do not
/// allow it: a `feeReceiver` fixed to another address, `fee + share > maxFeeBps`, or a share
/// that rounds to nothing.
pub(super) fn topup_plan(
    cfg: &EngineConfig,
    payment: &Payment,
    amount: Amount,
    fee: (u16, Address),
    share_bps: u16,
) -> TopupPlan {
    let info = &payment.info;
    let refund_account = cfg.signer;
    let planned = |amount_to_reserve: Amount, skipped: Option<String>| NewTopup {
        payment_id: payment.id,
        merchant_id: payment.merchant_id,
        asset: info.token,
        capture_amount: amount,
        share_bps,
        amount: amount_to_reserve,
        skipped,
    };
    let skip = |why: String| TopupPlan {
        fee,
        topup: planned(0, Some(why)),
    };
    if info.fee_receiver != Address::ZERO && info.fee_receiver != refund_account {
        return skip(format!(
            "the payment's signed feeReceiver {:#x} is not the refund account {refund_account:#x}",
            info.fee_receiver
        ));
    }
    let total = u32::from(fee.0) + u32::from(share_bps);
    if total > u32::from(info.max_fee_bps) {
        return skip(format!(
            "fee {} bps + reserve share {share_bps} bps exceeds the payment's maxFeeBps {}",
            fee.0, info.max_fee_bps
        ));
    }
    let total = u16::try_from(total).unwrap_or(u16::MAX);
    let share = fee_of(amount, total) - fee_of(amount, fee.0);
    if share == 0 {
        return skip(format!(
            "{share_bps} bps of a capture of {amount} rounds to nothing"
        ));
    }
    TopupPlan {
        fee: (total, refund_account),
        topup: planned(share, None),
    }
}

/// One disagreement `reconcile` found between the reserve ledger and the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReserveFinding {
    /// `balance_vs_ledger`, `deposit_not_on_chain`, `deposits_vs_transfers` or
    /// `refund_account_short`.
    pub check: &'static str,
    /// The merchant concerned (none for the per-asset checks).
    pub merchant_id: Option<Uuid>,
    /// The token.
    pub asset: Address,
    /// What the database says.
    pub database: String,
    /// What the chain (or the ledger, for `balance_vs_ledger`) says.
    pub chain: String,
}

impl Engine {
    /// Credits a `ReserveDeposit` chain event to the merchant it came from (at most once per
    /// transfer log) and marks it processed, in one SQL transaction.
    pub async fn process_deposit(&self, event: &ChainEvent) -> Result<(), EngineError> {
        match self.store().process_deposit_event(event).await? {
            DepositOutcome::Credited(entry) => tracing::info!(
                merchant_id = %entry.merchant_id, amount = %entry.amount, tx_hash = %event.tx_hash,
                "reserve deposit credited"
            ),
            DepositOutcome::AlreadyCredited => {
                tracing::debug!(tx_hash = %event.tx_hash, "reserve deposit already credited")
            }
            // Also every fee the escrow pays to the refund account (a top-up's capture): only
            // transfers from a merchant's address are deposits.
            DepositOutcome::UnknownSender(from) => tracing::info!(
                %from, tx_hash = %event.tx_hash,
                "transfer to the refund account from no merchant's deposit address: not credited"
            ),
        }
        Ok(())
    }

    /// Checks the reserve ledger against itself and the chain:
    /// * each kept balance equals its entries (`credited − debited + released`);
    /// * each credited deposit is a `Transfer` of that amount to the refund account in a
    ///   successful transaction on chain (by transaction hash and log index), and per asset the
    ///   credited deposits sum to the transfers found;
    /// * per asset, the refund account holds at least every merchant's reserve
    ///   (`refund_account_short` otherwise).
    ///
    /// `refund_account`: the operator's signer (a read-only engine does not know it); `None`
    /// checks the ledger alone.
    pub async fn reconcile_reserve(
        &self,
        refund_account: Option<Address>,
    ) -> Result<Vec<ReserveFinding>, EngineError> {
        let store = self.store();
        let mut out = Vec::new();
        let balances = store.all_reserve_balances().await?;
        let ledger: BTreeMap<(Uuid, Address), Amount> = store
            .reserve_ledger_sums()
            .await?
            .into_iter()
            .map(|(m, a, s)| ((m, a), s))
            .collect();
        let mut totals: BTreeMap<Address, Amount> = BTreeMap::new();
        for b in &balances {
            let sum = ledger.get(&(b.merchant_id, b.asset)).copied().unwrap_or(0);
            if sum != b.balance {
                out.push(ReserveFinding {
                    check: "balance_vs_ledger",
                    merchant_id: Some(b.merchant_id),
                    asset: b.asset,
                    database: b.balance.to_string(),
                    chain: sum.to_string(),
                });
            }
            *totals.entry(b.asset).or_default() += b.balance;
        }
        let Some(refund_account) = refund_account else {
            return Ok(out);
        };
        let mut credited: BTreeMap<Address, Amount> = BTreeMap::new();
        let mut found: BTreeMap<Address, Amount> = BTreeMap::new();
        for deposit in store.standing_deposits().await? {
            *credited.entry(deposit.asset).or_default() += deposit.amount;
            let on_chain = self.deposit_on_chain(&deposit, refund_account).await?;
            *found.entry(deposit.asset).or_default() += on_chain.unwrap_or(0);
            if on_chain != Some(deposit.amount) {
                out.push(ReserveFinding {
                    check: "deposit_not_on_chain",
                    merchant_id: Some(deposit.merchant_id),
                    asset: deposit.asset,
                    database: format!(
                        "{} credited from {:?} log {:?}",
                        deposit.amount, deposit.tx_hash, deposit.log_index
                    ),
                    chain: on_chain.map_or("no such transfer".into(), |v| v.to_string()),
                });
            }
        }
        for (asset, sum) in &credited {
            let seen = found.get(asset).copied().unwrap_or(0);
            if seen != *sum {
                out.push(ReserveFinding {
                    check: "deposits_vs_transfers",
                    merchant_id: None,
                    asset: *asset,
                    database: sum.to_string(),
                    chain: seen.to_string(),
                });
            }
        }
        for (asset, total) in &totals {
            let token = IERC20::new(*asset, self.inner.provider.clone());
            let held = token
                .balanceOf(refund_account)
                .call()
                .await
                .map_err(|e| EngineError::Chain(e.to_string()))?;
            if held < U256::from(*total) {
                out.push(ReserveFinding {
                    check: "refund_account_short",
                    merchant_id: None,
                    asset: *asset,
                    database: total.to_string(),
                    chain: held.to_string(),
                });
            }
        }
        Ok(out)
    }

    /// The value of the `Transfer` to `refund_account` a deposit credit names, if its
    /// transaction succeeded and carries it at that log index.
    async fn deposit_on_chain(
        &self,
        deposit: &ReserveEntry,
        refund_account: Address,
    ) -> Result<Option<Amount>, EngineError> {
        let (Some(hash), Some(index)) = (deposit.tx_hash, deposit.log_index) else {
            return Ok(None);
        };
        let receipt = self
            .inner
            .provider
            .get_transaction_receipt(hash)
            .await
            .map_err(|e| EngineError::Chain(format!("receipt of deposit {hash}: {e}")))?;
        let Some(receipt) = receipt.filter(|r| r.status()) else {
            return Ok(None);
        };
        Ok(receipt
            .inner
            .logs()
            .iter()
            .find(|l| l.log_index == Some(index) && l.address() == deposit.asset)
            .and_then(|l| IERC20::Transfer::decode_log(&l.inner).ok())
            .filter(|t| t.to == refund_account)
            .and_then(|t| u128::try_from(t.value).ok()))
    }
}

#[cfg(test)]
mod tests {
    use alloy::primitives::{B256, U256};

    use super::*;
    use crate::lifecycle::{Amounts, Flow, PaymentStatus};
    use crate::store::{NewPayment, PaymentInfoRecord};

    fn config(signer: Address, fee_bps: u16) -> EngineConfig {
        EngineConfig {
            chain_id: 1,
            signer,
            refund_collector: Address::repeat_byte(0xC0),
            multicall3: Address::repeat_byte(0xCA),
            fee_bps,
            fee_receiver: Address::repeat_byte(0xFE),
            default_wait: std::time::Duration::from_secs(1),
            expiry_margin_secs: 60,
            auto_void: true,
            refund_allowance: U256::ZERO,
            poll_interval: std::time::Duration::from_secs(1),
            assets: vec![],
        }
    }

    fn payment(min: u16, max: u16, fee_receiver: Address) -> Payment {
        Payment {
            id: Uuid::now_v7(),
            inserted: NewPayment {
                merchant_id: Uuid::now_v7(),
                payment_hash: B256::repeat_byte(1),
                chain_id: 1,
                escrow: Address::repeat_byte(0xE5),
                info: PaymentInfoRecord {
                    operator: Address::repeat_byte(0x0B),
                    payer: Address::repeat_byte(0x0A),
                    receiver: Address::repeat_byte(0x0C),
                    token: Address::repeat_byte(0x70),
                    max_amount: 1_000_000,
                    pre_approval_expiry: 1,
                    authorization_expiry: 2,
                    refund_expiry: 3,
                    min_fee_bps: min,
                    max_fee_bps: max,
                    fee_receiver,
                    salt: U256::ZERO,
                },
                amount: 1_000_000,
                flow: Flow::Authorize,
                request_id: None,
                idempotency_key: None,
                capture_deadline_at: None,
            },
            status: PaymentStatus::Authorized,
            amounts: Amounts::default(),
            pending_tx_id: None,
            last_error_code: None,
            last_error_message: None,
            created_at: 0,
            updated_at: 0,
            version: 0,
        }
    }

    #[test]
    fn share_rides_in_the_fee_to_the_refund_account() {
        let signer = Address::repeat_byte(0x51);
        let cfg = config(signer, 100);
        let p = payment(0, 1_000, Address::ZERO);
        let plan = topup_plan(&cfg, &p, 1_000_000, (100, cfg.fee_receiver), 500);
        assert_eq!(plan.fee, (600, signer));
        assert_eq!(plan.topup.amount, 50_000);
        assert_eq!(plan.topup.skipped, None);
        // The operator's own part is what it would have been without the top-up.
        assert_eq!(
            fee_of(1_000_000, 600) - plan.topup.amount,
            fee_of(1_000_000, 100)
        );
    }

    #[test]
    fn bounds_too_tight_capture_normally_with_the_reason() {
        let signer = Address::repeat_byte(0x51);
        let cfg = config(signer, 100);
        let p = payment(0, 300, Address::ZERO);
        let plan = topup_plan(&cfg, &p, 1_000_000, (100, cfg.fee_receiver), 500);
        assert_eq!(plan.fee, (100, cfg.fee_receiver));
        assert_eq!(plan.topup.amount, 0);
        assert!(
            plan.topup
                .skipped
                .as_deref()
                .is_some_and(|why| why.contains("maxFeeBps 300")),
            "{plan:?}"
        );
    }

    #[test]
    fn fixed_fee_receiver_elsewhere_skips() {
        let signer = Address::repeat_byte(0x51);
        let cfg = config(signer, 100);
        let other = Address::repeat_byte(0x99);
        let p = payment(0, 10_000, other);
        let plan = topup_plan(&cfg, &p, 1_000_000, (100, other), 500);
        assert_eq!(plan.fee, (100, other));
        assert!(plan.topup.skipped.is_some());
        // A fixed feeReceiver that is the refund account itself is fine.
        let p = payment(0, 10_000, signer);
        let plan = topup_plan(&cfg, &p, 1_000_000, (100, signer), 500);
        assert_eq!(plan.fee, (600, signer));
        assert_eq!(plan.topup.amount, 50_000);
    }

    #[test]
    fn dust_share_skips() {
        let signer = Address::repeat_byte(0x51);
        let cfg = config(signer, 0);
        let p = payment(0, 10_000, Address::ZERO);
        let plan = topup_plan(&cfg, &p, 10, (0, cfg.fee_receiver), 1);
        assert_eq!(plan.topup.amount, 0);
        assert!(plan.topup.skipped.is_some());
    }
}
