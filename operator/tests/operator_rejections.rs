//! Verification failures and merchant isolation through the HTTP API of a started operator:
//! each refused payment answers its stable error code and status, sends no transaction and
//! stores no payment; a merchant cannot see or move another merchant's payment.

mod operator_support;
mod store_support;

use alloy::signers::local::PrivateKeySigner;
use operator_support::*;
use serde_json::{Value, json};
use x402_escrow_operator::store::Backend;

both_backends!(rejections);

/// Flips one bit of the first `signature` field found under `v`.
fn tamper_signature(v: &mut Value) -> bool {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(sig)) = map.get_mut("signature") {
                let mut bytes = alloy::hex::decode(sig.trim_start_matches("0x")).expect("hex");
                bytes[10] ^= 0x01;
                *sig = format!("0x{}", alloy::hex::encode(bytes));
                return true;
            }
            map.values_mut().any(tamper_signature)
        }
        Value::Array(items) => items.iter_mut().any(tamper_signature),
        _ => false,
    }
}

/// Replaces every `"amount"` string field under `v` (requirements and their echo in the payload).
fn set_amounts(v: &mut Value, amount: &str) {
    match v {
        Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                if k == "amount" && item.is_string() {
                    *item = Value::String(amount.to_owned());
                } else {
                    set_amounts(item, amount);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| set_amounts(i, amount)),
        _ => {}
    }
}

async fn rejections(backend: Backend) {
    with_db(backend, |url| async move {
        let (chain, store, key_a, key_b) = two_shops(&url).await;
        let op = start(&config(&url, &chain)).await;
        let api = Api::new(&op, &key_a);
        let api_b = Api::new(&op, &key_b);
        let nonce0 = chain.nonce(op.signer).await;
        let payer0 = chain.balance(chain.payer.address()).await;

        let mut cases: Vec<(&str, Value, u16, &str)> = Vec::new();

        // Bad signature.
        let req = chain
            .requirements(2 * USDC, op.signer, chain.receiver)
            .await;
        let mut body = chain.authorize_body(req, &chain.payer, "bad-sig").await;
        assert!(tamper_signature(&mut body["paymentPayload"]), "{body}");
        cases.push(("bad signature", body, 400, "invalid_signature"));

        // Wrong operator: another captureAuthorizer than this operator's signer.
        let other_operator = chain.anvil.addresses()[7];
        let req = chain
            .requirements(2 * USDC, other_operator, chain.receiver)
            .await;
        let body = chain.authorize_body(req, &chain.payer, "wrong-op").await;
        cases.push(("wrong operator", body, 400, "wrong_operator"));

        // Payee not allowed: merchant A is paid to `receiver` only.
        let req = chain
            .requirements(2 * USDC, op.signer, chain.other_receiver)
            .await;
        let body = chain.authorize_body(req, &chain.payer, "payee").await;
        cases.push(("payee not allowed", body, 403, "payee_not_allowed"));

        // Amount above the maximum a PaymentInfo can hold (uint120).
        let req = chain
            .requirements(2 * USDC, op.signer, chain.receiver)
            .await;
        let mut body = chain.authorize_body(req, &chain.payer, "too-much").await;
        set_amounts(&mut body, &(1u128 << 121).to_string());
        // (A field out of range: refused when the JSON is read, before any verification.)
        cases.push(("amount above uint120", body, 400, "invalid_request"));

        // The signed authorization does not answer the requirements' amount.
        let req = chain
            .requirements(2 * USDC, op.signer, chain.receiver)
            .await;
        let mut body = chain.authorize_body(req, &chain.payer, "zero").await;
        set_amounts(&mut body, "0");
        cases.push(("amount mismatch", body, 400, "invalid_payload"));

        // A payer without funds.
        let broke = PrivateKeySigner::from(chain.anvil.keys()[8].clone());
        let req = chain
            .requirements(2 * USDC, op.signer, chain.receiver)
            .await;
        let body = chain.authorize_body(req, &broke, "broke").await;
        cases.push(("insufficient funds", body, 402, "insufficient_funds"));

        for (i, (name, body, status, code)) in cases.iter().enumerate() {
            let (got, resp) = api
                .post("/v1/payments/authorize", body, &format!("rej-{i}"))
                .await;
            assert_eq!((got, error_code(&resp)), (*status, *code), "{name}: {resp}");
            assert!(resp["error"]["message"].is_string(), "{name}: {resp}");
        }
        assert_eq!(count(&store, "payments").await, 0);
        // (Only the signer's delegation to the batch executor, written at start-up.)
        assert_eq!(count(&store, "chain_txs WHERE kind <> 'delegate'").await, 0);
        assert_eq!(chain.nonce(op.signer).await, nonce0);
        assert_eq!(chain.balance(chain.payer.address()).await, payer0);

        // ---- merchant isolation ---------------------------------------------------------------
        let (_, p) = api
            .authorize_payment(&chain, 2 * USDC, op.signer, "iso-1", "iso-auth")
            .await;
        let id = p["id"].as_str().unwrap().to_owned();

        let (status, e) = api_b.get(&format!("/v1/payments/{id}")).await;
        assert_eq!((status, error_code(&e)), (404, "not_found"), "{e}");
        let (status, e) = api_b.act(&id, "capture", &json!({}), "iso-cap").await;
        assert_eq!((status, error_code(&e)), (404, "not_found"), "{e}");
        let (status, e) = api_b.act(&id, "void", &json!({}), "iso-void").await;
        assert_eq!((status, error_code(&e)), (404, "not_found"), "{e}");
        let (status, list) = api_b.get("/v1/payments?request_id=iso-1").await;
        assert_eq!(status, 200, "{list}");
        assert_eq!(list["payments"].as_array().map(Vec::len), Some(0), "{list}");
        // A's hold is untouched; a capture above the capturable is refused without a tx.
        let (status, e) = api.act_amount(&id, "capture", 3 * USDC, "over-cap").await;
        assert_eq!((status, error_code(&e)), (400, "exceeds_capturable"), "{e}");
        let p = api.payment(&id).await;
        assert_eq!(p["status"], "authorized", "{p}");
        // Unknown key.
        let nobody = Api::new(&op, "x402_not_a_key");
        let (status, e) = nobody.get(&format!("/v1/payments/{id}")).await;
        assert_eq!((status, error_code(&e)), (401, "unauthorized"), "{e}");

        settle(&store, std::time::Duration::from_secs(30)).await;
        // A's authorize, and nothing for B's refused calls.
        assert_eq!(count(&store, "chain_txs WHERE kind <> 'delegate'").await, 1);
        wind_down(op, store, &chain).await;
    })
    .await
}
