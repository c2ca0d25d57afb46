//! The x402 facilitator API (`/supported`, `/verify`, `/settle`) against a full operator
//! (`runtime::start`: relayer, engine, indexer) on anvil, the routes served over its engine
//! (`facilitator_support`). The delegated operator's authorizer signatures have their own
//! suite, `facilitator_delegated.rs`.

mod facilitator_support;
mod operator_support;
mod store_support;

use facilitator_support::{Env, assert_success, complete_charge};

use std::time::Duration;

use operator_support::{USDC, mined};
use serde_json::{Value, json};
use x402_escrow_bindings::TestUSDC;
use x402_escrow_sdk::facilitator::{VerifyRequest, reasons};
use x402_escrow_sdk::schemes::auth_capture::LifecycleOperation;
use x402_escrow_sdk::wire::extensions::set_payment_id;
use x402_escrow_sdk::wire::{PaymentPayloadV1, PaymentRequirementsV1, ResourceInfo, SchemePayload};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supported_shape_and_auth() {
    let env = Env::new(Duration::from_secs(20)).await;
    let resp = env
        .http
        .get(format!("{}/supported", env.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let (status, body) = env.call(reqwest::Method::GET, "/supported", None).await;
    assert_eq!(status, 200, "{body}");
    let kinds = body["kinds"].as_array().unwrap();
    let has = |v: u64, scheme: &str, network: &str| {
        kinds
            .iter()
            .any(|k| k["x402Version"] == v && k["scheme"] == scheme && k["network"] == network)
    };
    assert!(has(2, "auth-capture", &env.network()), "{body}");
    assert!(has(2, "exact", &env.network()), "{body}");
    // v1 entries under the chain's v1 name (anvil: "anvil").
    let v1 = x402_escrow_sdk::Network::eip155(env.deployment.chain_id)
        .v1_name()
        .expect("anvil has a v1 name");
    assert!(has(1, "auth-capture", v1), "{body}");
    assert!(has(1, "exact", v1), "{body}");
    assert_eq!(kinds.len(), 4, "{body}");
    let ac = kinds
        .iter()
        .find(|k| k["scheme"] == "auth-capture")
        .unwrap();
    assert_eq!(
        ac["extra"]["captureAuthorizer"]
            .as_str()
            .unwrap()
            .to_lowercase(),
        env.signer.to_string().to_lowercase()
    );
    assert_eq!(
        ac["extra"]["paymentFlows"],
        json!(["escrow", "authorization"]),
        "{body}"
    );
    assert_eq!(body["extensions"], json!(["payment-identifier"]));
    let signers = body["signers"]["eip155:*"].as_array().unwrap();
    assert_eq!(signers.len(), 1);
    assert_eq!(
        signers[0].as_str().unwrap().to_lowercase(),
        env.signer.to_string().to_lowercase()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_valid_and_invalid_reasons() {
    // Valid, and nothing was written or spent.
    let (env, requirements, ok) = Env::with_payment(5 * USDC).await;
    let body = env.verify(&ok).await;
    assert_eq!(body["isValid"], true, "{body}");
    assert_eq!(
        body["payer"].as_str().unwrap().to_lowercase(),
        env.payer.address().to_string().to_lowercase()
    );
    assert!(env.chain_state(&ok).await == (0, 0));

    let invalid = |body: &Value, reason: &str| {
        assert_eq!(body["isValid"], false, "{body}");
        assert_eq!(body["invalidReason"], reason, "{body}");
        assert!(body["invalidMessage"].is_string(), "{body}");
    };

    // Another network.
    let mut other = requirements.clone();
    other["network"] = json!("eip155:8453");
    let req = env.pay(&other, &env.payer).await;
    invalid(&env.verify(&req).await, reasons::INVALID_NETWORK);

    // captureAuthorizer is not an address we submit from (auth-capture v1.1: not admitted).
    let mut wrong_op = requirements.clone();
    wrong_op["extra"]["captureAuthorizer"] = json!(env.fee_receiver);
    let req = env.pay(&wrong_op, &env.payer).await;
    invalid(
        &env.verify(&req).await,
        reasons::AUTH_CAPTURE_OPERATOR_NOT_ADMITTED,
    );

    // Tampered signature (signed by someone else, claimed by the payer).
    let mut forged = env.pay(&requirements, &env.poor_payer).await;
    if let SchemePayload::AuthCapture(p) = &mut forged.payment_payload.payload {
        let honest = env.pay(&requirements, &env.payer).await;
        let h = honest.payment_payload.payload.as_auth_capture().unwrap();
        p.authorization = h.authorization.clone();
    }
    let body = env.verify(&forged).await;
    assert_eq!(body["isValid"], false, "{body}");
    let reason = body["invalidReason"].as_str().unwrap();
    assert!(
        reason == reasons::AUTH_CAPTURE_SIGNATURE || reason == reasons::AUTH_CAPTURE_NONCE_MISMATCH,
        "{body}"
    );

    // A payer without funds.
    let req = env.pay(&requirements, &env.poor_payer).await;
    invalid(&env.verify(&req).await, reasons::INSUFFICIENT_FUNDS);

    // payTo that is not the merchant's receiver.
    let mut stranger = requirements.clone();
    stranger["payTo"] = json!(env.address(7).unwrap());
    let req = env.pay(&stranger, &env.payer).await;
    invalid(
        &env.verify(&req).await,
        reasons::INVALID_PAYMENT_REQUIREMENTS,
    );

    // Accepted ≠ requirements.
    let mut mismatch = env.pay(&requirements, &env.payer).await;
    mismatch.payment_requirements.amount = x402_escrow_sdk::Amount::from(6 * USDC as u128);
    let body = env.verify(&mismatch).await;
    assert_eq!(body["isValid"], false, "{body}");

    // Unknown scheme.
    let mut unknown = serde_json::to_value(&ok).unwrap();
    unknown["paymentRequirements"]["scheme"] = json!("upto");
    unknown["paymentPayload"]["accepted"]["scheme"] = json!("upto");
    let (status, body) = env
        .call(reqwest::Method::POST, "/verify", Some(&unknown))
        .await;
    assert_eq!(status, 200, "{body}");
    invalid(&body, reasons::UNSUPPORTED_SCHEME);

    // Malformed body: 400.
    let (status, _) = env
        .call(
            reqwest::Method::POST,
            "/verify",
            Some(&json!({"x402Version": 2})),
        )
        .await;
    assert_eq!(status, 400);

    // Exact: valid, then a wrong amount.
    let exact_req = env.exact_requirements(USDC).await;
    let req = env.pay_exact(&exact_req, &env.payer).await;
    let body = env.verify(&req).await;
    assert_eq!(body["isValid"], true, "{body}");
    let req = env.pay_exact(&exact_req, &env.poor_payer).await;
    invalid(&env.verify(&req).await, reasons::INSUFFICIENT_FUNDS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settle_authorize_is_idempotent_then_lifecycle() {
    let env = Env::new(Duration::from_secs(20)).await;
    // Consent delegated to the facilitator (`receiverAuthorizer` = the one /supported names):
    // lifecycle calls carry no authorizer signature.
    let requirements = env.delegated_requirements(10 * USDC).await;
    let req = env.pay(&requirements, &env.payer).await;

    let first = env.settle(&req).await;
    let tx = assert_success(&first);
    assert_eq!(first["network"], env.network());
    assert_eq!(first["amount"], (10 * USDC).to_string());
    assert_eq!(env.chain_state(&req).await, (10 * USDC as u128, 0));

    // The same body again: the original success, not "authorization used".
    let again = env.settle(&req).await;
    assert_eq!(assert_success(&again), tx, "{again}");

    // Capture 6 through payload.type = capture.
    let before = env.balance(env.receiver).await;
    let capture = env
        .lifecycle_now(&req, LifecycleOperation::Capture, Some(6 * USDC))
        .await;
    let body = env.settle(&capture).await;
    let capture_tx = assert_success(&body);
    assert_ne!(capture_tx, tx);
    assert_eq!(
        env.chain_state(&req).await,
        (4 * USDC as u128, 6 * USDC as u128)
    );
    assert!(env.balance(env.receiver).await > before);

    // The same capture again: its expected balances are gone, so it is answered with the
    // original capture and nothing moves (single-use by the payment's own state).
    let body = env.settle(&capture).await;
    assert_eq!(assert_success(&body), capture_tx, "{body}");
    assert_eq!(
        env.chain_state(&req).await,
        (4 * USDC as u128, 6 * USDC as u128)
    );

    // A capture expecting balances the payment does not have: refused, nothing moves.
    let mut stale = env.lifecycle(&req, LifecycleOperation::Capture, Some(USDC));
    facilitator_support::set_expected(&mut stale, 10 * USDC as u128, 0);
    let body = env.settle(&stale).await;
    assert_eq!(
        body["errorReason"],
        reasons::AUTH_CAPTURE_UNEXPECTED_PAYMENT_STATE,
        "{body}"
    );
    // Without the expected balances at all: the payload is incomplete.
    let bare = env.lifecycle(&req, LifecycleOperation::Capture, Some(USDC));
    let body = env.settle(&bare).await;
    assert_eq!(
        body["errorReason"],
        reasons::AUTH_CAPTURE_PAYLOAD_FORMAT,
        "{body}"
    );
    assert_eq!(
        env.chain_state(&req).await,
        (4 * USDC as u128, 6 * USDC as u128)
    );

    // A capture asking for another fee than the operator's is refused before any gas.
    let mut wrong_fee = env
        .lifecycle_now(&req, LifecycleOperation::Capture, Some(USDC))
        .await;
    if let SchemePayload::AuthCaptureLifecycle(p) = &mut wrong_fee.payment_payload.payload {
        p.settle.fee_bps = Some(250);
    }
    let body = env.settle(&wrong_fee).await;
    assert_eq!(body["success"], false, "{body}");
    assert_eq!(body["errorReason"], reasons::AUTH_CAPTURE_EXTRA, "{body}");

    // Void the rest; a retried void answers with the same transaction.
    let void = env.lifecycle(&req, LifecycleOperation::Void, None);
    let body = env.settle(&void).await;
    let void_tx = assert_success(&body);
    assert_eq!(env.chain_state(&req).await, (0, 6 * USDC as u128));
    let body = env.settle(&void).await;
    assert_eq!(assert_success(&body), void_tx);

    // Refund 2.
    let payer_before = env.balance(env.payer.address()).await;
    let refund = env
        .lifecycle_now(&req, LifecycleOperation::Refund, Some(2 * USDC))
        .await;
    let body = env.settle(&refund).await;
    assert_success(&body);
    assert_eq!(
        env.balance(env.payer.address()).await,
        payer_before + u128::from(2 * USDC)
    );
    assert_eq!(env.chain_state(&req).await, (0, 4 * USDC as u128));

    // Capturing a voided payment is a failure with a reason and no transaction.
    let body = env
        .settle(
            &env.lifecycle_now(&req, LifecycleOperation::Capture, Some(USDC))
                .await,
        )
        .await;
    assert_eq!(body["success"], false, "{body}");
    assert_eq!(body["transaction"], "", "{body}");
    assert!(body["errorReason"].is_string(), "{body}");

    // A lifecycle payload for a payment we never saw.
    let stranger = env.pay(&requirements, &env.payer).await;
    let body = env
        .settle(&env.lifecycle(&stranger, LifecycleOperation::Void, None))
        .await;
    assert_eq!(body["success"], false, "{body}");
    assert_eq!(body["errorReason"], reasons::INVALID_PAYLOAD, "{body}");

    // Requirements without a receiverAuthorizer: the delegated operator is authorize-only, its
    // lifecycle goes through the operator's own API.
    let plain = env.requirements(USDC).await;
    let held = env.pay(&plain, &env.payer).await;
    assert_success(&env.settle(&held).await);
    let body = env
        .settle(&env.lifecycle(&held, LifecycleOperation::Void, None))
        .await;
    assert_eq!(
        body["errorReason"],
        reasons::AUTH_CAPTURE_LIFECYCLE_NOT_RELAYED,
        "{body}"
    );
    assert_eq!(env.chain_state(&held).await, (USDC as u128, 0));
}

/// Without the batch executor every call is its own transaction, sent at once: a settlement
/// whose receipt is not in yet answers `settlement_pending` naming its transaction, for an
/// escrow charge and for an `exact` transfer alike; retries answer success with the same hash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settle_pending_when_receipt_unknown() {
    let env = Env::with_config(Duration::from_secs(3), |c| c.batch.use_executor = false).await;
    let requirements = env.requirements(3 * USDC).await;
    let req = env.pay(&requirements, &env.payer).await;
    env.hold_blocks().await;

    let body = env.settle(&req).await;
    assert_eq!(body["success"], false, "{body}");
    assert_eq!(body["errorReason"], reasons::SETTLEMENT_PENDING, "{body}");
    let pending_tx = body["transaction"].as_str().unwrap().to_owned();
    assert_eq!(
        pending_tx.len(),
        66,
        "a pending settlement names its transaction: {body}"
    );

    // The same for an exact transfer.
    let exact_req = env
        .pay_exact(&env.exact_requirements(USDC).await, &env.payer)
        .await;
    let body = env.settle(&exact_req).await;
    assert_eq!(body["errorReason"], reasons::SETTLEMENT_PENDING, "{body}");
    let exact_tx = body["transaction"].as_str().unwrap().to_owned();
    assert_eq!(exact_tx.len(), 66, "{body}");

    env.mine_held().await;
    let last = env
        .settle_until_success(&exact_req, 20, Duration::from_millis(300))
        .await;
    assert_eq!(assert_success(&last), exact_tx, "{last}");
    // Retry until the relayer has seen the receipt: the same transaction, now a success.
    let last = env
        .settle_until_success(&req, 20, Duration::from_millis(300))
        .await;
    assert_eq!(assert_success(&last), pending_tx, "{last}");
    assert_eq!(env.chain_state(&req).await, (3 * USDC as u128, 0));
}

/// With the batch executor (the default) the signer keeps one transaction in flight: while the
/// charge waits for its block, the `exact` transfer behind it has no transaction yet and says
/// so (`settlement_pending`, "queued for broadcast"); once the block is mined it goes out and
/// both settlements answer success, each with the transaction that carried it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settle_pending_behind_the_executors_transaction_in_flight() {
    let env = Env::new(Duration::from_secs(3)).await;
    let requirements = env.requirements(3 * USDC).await;
    let req = env.pay(&requirements, &env.payer).await;
    env.hold_blocks().await;

    let body = env.settle(&req).await;
    assert_eq!(body["errorReason"], reasons::SETTLEMENT_PENDING, "{body}");
    let pending_tx = body["transaction"].as_str().unwrap().to_owned();
    assert_eq!(pending_tx.len(), 66, "{body}");

    let exact_req = env
        .pay_exact(&env.exact_requirements(USDC).await, &env.payer)
        .await;
    let body = env.settle(&exact_req).await;
    assert_eq!(body["success"], false, "{body}");
    assert_eq!(body["errorReason"], reasons::SETTLEMENT_PENDING, "{body}");
    assert_eq!(
        body["transaction"], "",
        "not sent while the charge is in flight: {body}"
    );
    assert!(
        body["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("queued")),
        "{body}"
    );

    env.mine_held().await;
    let last = env
        .settle_until_success(&req, 20, Duration::from_millis(300))
        .await;
    assert_eq!(assert_success(&last), pending_tx, "{last}");
    let last = env
        .settle_until_success(&exact_req, 20, Duration::from_millis(300))
        .await;
    let exact_tx = assert_success(&last);
    assert_eq!(exact_tx.len(), 66, "{last}");
    assert_ne!(exact_tx, pending_tx, "{last}");
    assert_eq!(env.chain_state(&req).await, (3 * USDC as u128, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_settle_moves_tokens_once() {
    let env = Env::new(Duration::from_secs(20)).await;
    let requirements = env.exact_requirements(2 * USDC).await;
    let req = env.pay_exact(&requirements, &env.payer).await;
    let payer_before = env.balance(env.payer.address()).await;
    let receiver_before = env.balance(env.receiver).await;

    let body = env.settle(&req).await;
    let tx = assert_success(&body);
    assert_eq!(body["amount"], (2 * USDC).to_string());
    assert_eq!(
        env.balance(env.payer.address()).await,
        payer_before - u128::from(2 * USDC)
    );
    assert_eq!(
        env.balance(env.receiver).await,
        receiver_before + u128::from(2 * USDC)
    );

    // Retried: the same success, no second transfer.
    let body = env.settle(&req).await;
    assert_eq!(assert_success(&body), tx);
    // Filed under the kind that says what it is, once.
    assert_eq!(env.tx_count("transfer").await, 1);
    assert_eq!(env.tx_count("charge").await, 0);
    assert_eq!(
        env.balance(env.receiver).await,
        receiver_before + u128::from(2 * USDC)
    );

    // Verifying the spent authorization now fails.
    let body = env.verify(&req).await;
    assert_eq!(body["isValid"], false, "{body}");

    // An authorization someone else already submitted (another instance, or before a restart):
    // /settle finds the transfer on chain and answers with its success, without sending again.
    let req = env.pay_exact(&requirements, &env.payer).await;
    let p = req.payment_payload.payload.as_exact().unwrap().clone();
    let (_, outsider) = env.wallet(8).unwrap();
    let receipt = mined(
        TestUSDC::new(env.token(), outsider).transferWithAuthorization_0(
            p.authorization.from,
            p.authorization.to,
            p.authorization.value.get(),
            p.authorization.valid_after.get(),
            p.authorization.valid_before.get(),
            p.authorization.nonce,
            p.signature.clone(),
        ),
    )
    .await;
    assert!(receipt.status());
    let received = env.balance(env.receiver).await;
    let body = env.settle(&req).await;
    assert_eq!(
        assert_success(&body),
        receipt.transaction_hash.to_string(),
        "{body}"
    );
    assert_eq!(env.balance(env.receiver).await, received);
}

/// A retried `/settle` of an `exact` authorization answers from the transfer's outbox row (kind
/// `transfer`, found by its intent key), also after the operator restarted while the transfer
/// was still unmined: no second row, one transfer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_settle_retried_after_restart_answers_from_outbox() {
    let mut env = Env::new(Duration::from_secs(2)).await;
    let req = env
        .pay_exact(&env.exact_requirements(USDC).await, &env.payer)
        .await;
    let receiver_before = env.balance(env.receiver).await;
    env.hold_blocks().await;

    let body = env.settle(&req).await;
    assert_eq!(body["errorReason"], reasons::SETTLEMENT_PENDING, "{body}");
    let pending_tx = body["transaction"].as_str().unwrap().to_owned();
    assert_eq!(pending_tx.len(), 66, "{body}");
    assert_eq!(env.tx_count("transfer").await, 1);
    assert_eq!(env.tx_count("charge").await, 0);

    env.restart().await;
    // Not mined yet, so the nonce looks unused on chain: only the outbox row tells.
    let body = env.settle(&req).await;
    assert_eq!(body["errorReason"], reasons::SETTLEMENT_PENDING, "{body}");
    assert_eq!(body["transaction"], pending_tx.as_str(), "{body}");
    assert_eq!(env.tx_count("transfer").await, 1);

    env.mine_held().await;
    let last = env
        .settle_until_success(&req, 60, Duration::from_millis(500))
        .await;
    assert_eq!(assert_success(&last), pending_tx, "{last}");
    assert_eq!(env.tx_count("transfer").await, 1);
    assert_eq!(
        env.balance(env.receiver).await,
        receiver_before + u128::from(USDC)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payment_identifier_replay_and_conflict() {
    let env = Env::new(Duration::from_secs(20)).await;
    let requirements = env.requirements(USDC).await;
    let id = "pay_0123456789abcdef";
    let with_id = |mut req: VerifyRequest| {
        let mut map = serde_json::Map::new();
        set_payment_id(&mut map, None, id);
        req.payment_payload.extensions = Some(map);
        req
    };
    let req = with_id(env.pay(&requirements, &env.payer).await);
    let first = env.settle(&req).await;
    let tx = assert_success(&first);
    let again = env.settle(&req).await;
    assert_eq!(again, first);
    assert_eq!(assert_success(&again), tx);

    // Same id, another payload (a re-signed payment): 409, nothing sent.
    let other = with_id(env.pay(&requirements, &env.payer).await);
    let (status, body) = env.post("/settle", &other).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "payment_identifier_conflict");
    assert_eq!(env.chain_state(&other).await, (0, 0));

    // A malformed id is refused.
    let mut bad = env.pay(&requirements, &env.payer).await;
    let mut map = serde_json::Map::new();
    set_payment_id(&mut map, None, "short");
    bad.payment_payload.extensions = Some(map);
    let (status, _) = env.post("/settle", &bad).await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_bodies_verify_and_settle() {
    let (env, _, req) = Env::with_payment(USDC).await;
    let resource = ResourceInfo::new("https://shop.example/item");
    let v1_requirements = PaymentRequirementsV1::from_v2(&req.payment_requirements, &resource);
    let v1_payload = PaymentPayloadV1::new(&v1_requirements, req.payment_payload.payload.clone());
    let body = json!({
        "x402Version": 1,
        "paymentPayload": v1_payload,
        "paymentRequirements": v1_requirements,
    });
    let (status, verified) = env
        .call(reqwest::Method::POST, "/verify", Some(&body))
        .await;
    assert_eq!(status, 200, "{verified}");
    assert_eq!(verified["isValid"], true, "{verified}");
    let (status, settled) = env
        .call(reqwest::Method::POST, "/settle", Some(&body))
        .await;
    assert_eq!(status, 200, "{settled}");
    assert_success(&settled);
    // v1 responses name the network by its v1 name.
    assert_eq!(settled["network"], "anvil", "{settled}");
    assert_eq!(env.chain_state(&req).await, (USDC as u128, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settle_authorization_flow_charges_then_refunds() {
    let env = Env::new(Duration::from_secs(20)).await;
    let amount = 10 * USDC;
    let mut requirements = env.delegated_requirements(amount).await;
    requirements["extra"]["paymentFlow"] = json!("authorization");
    let mut req = env.pay(&requirements, &env.payer).await;
    let payer0 = env.balance(env.payer.address()).await;
    let receiver0 = env.balance(env.receiver).await;
    let fee0 = env.balance(env.fee_receiver).await;
    // The operator charges 1% (fees.bps = 100).
    let fee = u128::from(amount / 100);

    // /verify takes the client's raw payload; /settle the completed charge (amount, fee, fee
    // receiver), refused in its raw form.
    let body = env.verify(&req).await;
    assert_eq!(body["isValid"], true, "{body}");
    let body = env.settle(&req).await;
    assert_eq!(
        body["errorReason"],
        reasons::AUTH_CAPTURE_PAYLOAD_FORMAT,
        "{body}"
    );
    let mut wrong_fee = req.clone();
    complete_charge(&mut wrong_fee, amount, 250, env.fee_receiver);
    let body = env.settle(&wrong_fee).await;
    assert_eq!(body["errorReason"], reasons::AUTH_CAPTURE_EXTRA, "{body}");
    assert_eq!(env.balance(env.payer.address()).await, payer0);
    complete_charge(&mut req, amount, 100, env.fee_receiver);

    // Settle = charge: captured at once, the merchant is paid.
    let first = env.settle(&req).await;
    let tx = assert_success(&first);
    assert_eq!(first["amount"], amount.to_string());
    assert_eq!(env.chain_state(&req).await, (0, amount as u128));
    assert_eq!(
        env.balance(env.payer.address()).await,
        payer0 - u128::from(amount)
    );
    assert_eq!(
        env.balance(env.receiver).await,
        receiver0 + u128::from(amount) - fee
    );
    assert_eq!(env.balance(env.fee_receiver).await, fee0 + fee);
    // Retried: the same charge.
    assert_eq!(assert_success(&env.settle(&req).await), tx);

    // Capture and void under flow "authorization" are refused with a reason, before any gas.
    for op in [LifecycleOperation::Capture, LifecycleOperation::Void] {
        let amount = (op == LifecycleOperation::Capture).then_some(USDC);
        let body = env.settle(&env.lifecycle_now(&req, op, amount).await).await;
        assert_eq!(body["success"], false, "{body}");
        assert_eq!(
            body["errorReason"],
            reasons::AUTH_CAPTURE_PAYLOAD_TYPE,
            "{body}"
        );
        assert_eq!(body["transaction"], "", "{body}");
    }
    assert_eq!(env.chain_state(&req).await, (0, amount as u128));

    // Refund 4, then the remaining 6: the payer has everything back (from the operator's float).
    let refund = env
        .lifecycle_now(&req, LifecycleOperation::Refund, Some(4 * USDC))
        .await;
    assert_success(&env.settle(&refund).await);
    assert_eq!(env.chain_state(&req).await, (0, 6 * USDC as u128));
    assert_eq!(
        env.balance(env.payer.address()).await,
        payer0 - u128::from(6 * USDC)
    );
    let rest = env
        .lifecycle_now(&req, LifecycleOperation::Refund, Some(6 * USDC))
        .await;
    assert_success(&env.settle(&rest).await);
    assert_eq!(env.chain_state(&req).await, (0, 0));
    assert_eq!(env.balance(env.payer.address()).await, payer0);
    // More than is refundable: refused.
    let body = env
        .settle(
            &env.lifecycle_now(&req, LifecycleOperation::Refund, Some(1))
                .await,
        )
        .await;
    assert_eq!(body["success"], false, "{body}");
}
