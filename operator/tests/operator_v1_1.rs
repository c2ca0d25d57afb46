//! The operator driving an escrow with the Commerce Payments v1.1 fee interface (our
//! `AuthCaptureEscrowV1_1`, recorded as a version `1.1` deployment): captures and charges go out
//! with `uint256 feeAmount` (our rate applied to the amount, rounded down as the escrow rounds
//! its bounds), the indexer reads the v1.1 `PaymentCaptured` / `PaymentCharged` events (fee as
//! an amount), and reconcile finds the database and `paymentState` in agreement. Through the
//! HTTP API of a started operator on anvil.

mod operator_support;
mod store_support;

use std::time::{Duration, Instant};

use alloy::primitives::{B256, U256};
use alloy::sol_types::SolCall;
use operator_support::*;
use serde_json::json;
use uuid::Uuid;
use x402_escrow_bindings::{AuthCaptureEscrow, EscrowVersion, IAuthCaptureEscrowV1_1};
use x402_escrow_operator::indexer::{EscrowEvent, EventFee};
use x402_escrow_operator::store::{Backend, ChainTx, Store, TxKind};

const T: Duration = Duration::from_secs(30);

both_backends!(v1_1_capture_with_fee_amount);

/// Waits (bounded) until the indexer stored `n` events of `hash`; returns them.
async fn indexed(store: &Store, hash: B256, n: usize) -> Vec<EscrowEvent> {
    let deadline = Instant::now() + T;
    loop {
        let events = store.events_for_payment(hash).await.expect("events");
        if events.len() >= n {
            return events
                .iter()
                .map(|e| EscrowEvent::from_stored(e).expect("typed event"))
                .collect();
        }
        assert!(Instant::now() < deadline, "indexed {events:#?}, want {n}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn id_and_hash(view: &serde_json::Value) -> (String, B256) {
    (
        view["id"].as_str().expect("id").to_owned(),
        view["paymentHash"]
            .as_str()
            .expect("hash")
            .parse()
            .expect("hash"),
    )
}

/// The payment's outbox rows of `kind` (single calls, whether they went out alone or in an
/// `execute`), oldest first.
async fn rows_of(store: &Store, id: &str, kind: TxKind) -> Vec<ChainTx> {
    let id: Uuid = id.parse().expect("uuid");
    store
        .txs_for_payment(id)
        .await
        .expect("txs")
        .into_iter()
        .filter(|t| t.kind == kind)
        .collect()
}

async fn v1_1_capture_with_fee_amount(backend: Backend) {
    with_db(backend, |url| async move {
        let (chain, store, _m, key) = open_shop_on(&url, None, TestEscrow::OursV1_1).await;
        assert_eq!(chain.deployment.version, EscrowVersion::V1_1);
        let op = start(&config(&url, &chain)).await;
        let api = Api::new(&op, &key);
        chain.mint(op.signer, 20 * USDC).await;
        let [payer0, recv0, fee0, _] = chain.balances(op.signer).await;

        let amount = 10 * USDC;
        let (_, p) = api
            .authorize_payment(&chain, amount, op.signer, "v11-1", "auth-1")
            .await;
        assert_eq!(p["status"], "authorized", "{p}");
        let (id, hash) = id_and_hash(&p);
        assert_eq!(chain.state(hash).await, (true, amount as u128, 0));

        // ---- a partial capture whose fee rounds down: 1 % of 3,333,333 is 33,333.33 --------
        let part: u64 = 3_333_333;
        let part_fee: u128 = 33_333;
        assert_eq!(fee(part as u128), part_fee);
        let (status, c1) = api.act_amount(&id, "capture", part, "cap-1").await;
        assert_eq!(status, 200, "{c1}");
        assert_eq!(c1["status"], "partially_captured", "{c1}");
        assert_eq!(
            chain.state(hash).await,
            (true, (amount - part) as u128, part as u128)
        );
        assert_eq!(chain.balance(chain.fee_receiver).await, fee0 + part_fee);
        assert_eq!(
            chain.balance(chain.receiver).await,
            recv0 + part as u128 - part_fee
        );
        // The call the operator wrote is the v1.1 capture, with the fee as an amount.
        let captures = rows_of(&store, &id, TxKind::Capture).await;
        assert_eq!(captures.len(), 1, "{captures:#?}");
        assert!(AuthCaptureEscrow::captureCall::abi_decode(&captures[0].calldata).is_err());
        let call = IAuthCaptureEscrowV1_1::captureCall::abi_decode(&captures[0].calldata)
            .expect("a v1.1 capture");
        assert_eq!(
            (call.amount, call.feeAmount, call.feeReceiver),
            (U256::from(part), U256::from(part_fee), chain.fee_receiver)
        );
        assert_eq!(
            captures[0].request["feeAmount"],
            json!(part_fee.to_string())
        );
        assert_eq!(captures[0].request["feeBps"], json!(FEE_BPS));

        // ---- capture the rest, refund 1 USDC -------------------------------------------------
        let rest = amount - part;
        let (status, c2) = api.act(&id, "capture", &json!({}), "cap-2").await;
        assert_eq!(status, 200, "{c2}");
        assert_eq!(c2["status"], "captured", "{c2}");
        assert_eq!(chain.state(hash).await, (true, 0, amount as u128));
        let fees = part_fee + fee(rest as u128);
        assert_eq!(chain.balance(chain.fee_receiver).await, fee0 + fees);
        assert_eq!(
            chain.balance(chain.receiver).await,
            recv0 + amount as u128 - fees
        );
        let (status, r) = api.act_amount(&id, "refund", USDC, "ref-1").await;
        assert_eq!(status, 200, "{r}");
        assert_eq!(r["status"], "partially_refunded", "{r}");
        assert_eq!(chain.state(hash).await, (true, 0, (amount - USDC) as u128));
        assert_eq!(
            chain.balance(chain.payer.address()).await,
            payer0 - (amount - USDC) as u128
        );

        // ---- the indexer decodes the v1.1 events ---------------------------------------------
        let events = indexed(&store, hash, 4).await;
        let captured: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                EscrowEvent::Captured {
                    amount,
                    fee,
                    fee_receiver,
                    ..
                } => Some((*amount, *fee, *fee_receiver)),
                _ => None,
            })
            .collect();
        assert_eq!(
            captured,
            [
                (part as u128, EventFee::Amount(part_fee), chain.fee_receiver),
                (
                    rest as u128,
                    EventFee::Amount(fee(rest as u128)),
                    chain.fee_receiver
                ),
            ],
            "{events:#?}"
        );
        let stored = store.events_for_payment(hash).await.expect("events");
        let capture_row = stored
            .iter()
            .find(|e| e.event_name == "PaymentCaptured")
            .expect("a stored capture");
        assert_eq!(capture_row.data["feeAmount"], json!(part_fee.to_string()));
        assert!(
            capture_row.data.get("feeBps").is_none(),
            "{:?}",
            capture_row.data
        );

        // ---- database == chain ---------------------------------------------------------------
        settle(&store, T).await;
        wind_down(op, store, &chain).await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_1_charge_then_refund() {
    with_db(Backend::Sqlite, |url| async move {
        let (chain, store, _m, key) = open_shop_on(&url, None, TestEscrow::OursV1_1).await;
        let op = start(&config(&url, &chain)).await;
        let api = Api::new(&op, &key);
        chain.mint(op.signer, 20 * USDC).await;
        let [payer0, recv0, fee0, _] = chain.balances(op.signer).await;

        let amount = 10 * USDC;
        let mut req = chain.requirements(amount, op.signer, chain.receiver).await;
        req["extra"]["paymentFlow"] = json!("authorization");
        let body = chain.authorize_body(req, &chain.payer, "v11-charge").await;
        let (status, p) = api.post("/v1/payments/authorize", &body, "charge-1").await;
        assert_eq!(status, 201, "{p}");
        assert_eq!(p["status"], "captured", "{p}");
        let (id, hash) = id_and_hash(&p);
        let charge_fee = fee(amount as u128);
        assert_eq!(chain.state(hash).await, (true, 0, amount as u128));
        assert_eq!(chain.balance(chain.fee_receiver).await, fee0 + charge_fee);
        assert_eq!(
            chain.balance(chain.receiver).await,
            recv0 + amount as u128 - charge_fee
        );
        let charges = rows_of(&store, &id, TxKind::Charge).await;
        assert_eq!(charges.len(), 1, "{charges:#?}");
        let call = IAuthCaptureEscrowV1_1::chargeCall::abi_decode(&charges[0].calldata)
            .expect("a v1.1 charge");
        assert_eq!(
            (call.amount, call.feeAmount),
            (U256::from(amount), U256::from(charge_fee))
        );

        let (status, r) = api.act_amount(&id, "refund", 4 * USDC, "refund-1").await;
        assert_eq!(status, 200, "{r}");
        assert_eq!(chain.state(hash).await, (true, 0, 6 * USDC as u128));
        assert_eq!(
            chain.balance(chain.payer.address()).await,
            payer0 - 6 * USDC as u128
        );

        let events = indexed(&store, hash, 2).await;
        let EscrowEvent::Charged {
            amount: charged,
            fee: charged_fee,
            token_collector,
            ..
        } = &events[0]
        else {
            panic!("{events:#?}")
        };
        assert_eq!(
            (*charged, *charged_fee, *token_collector),
            (
                amount as u128,
                EventFee::Amount(charge_fee),
                chain.deployment.erc3009_payment_collector
            )
        );
        assert_eq!(events[1].name(), "PaymentRefunded");

        settle(&store, T).await;
        wind_down(op, store, &chain).await;
    })
    .await
}
