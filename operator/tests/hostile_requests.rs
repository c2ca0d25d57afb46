//! Hostile requests against a started operator (anvil, contracts, SQLite or PostgreSQL, the
//! real HTTP API): one table, each row a request a hostile or broken client could send, with the
//! specific error code and HTTP status it must get. After every row: no transaction queued
//! (`chain_txs` unchanged), none sent (the signer's on-chain nonce unchanged), and no payment
//! stored or changed (id, status, version and amounts of every payment unchanged).

mod operator_support;
mod store_support;

use alloy::primitives::{Address, B256};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolStruct;
use operator_support::*;
use serde_json::{Value, json};
use x402_escrow_bindings::TestUSDC;
use x402_escrow_operator::store::{Backend, Store};
use x402_escrow_sdk::schemes::auth_capture;
use x402_escrow_sdk::wire::{PaymentPayload, PaymentRequirements};
use x402_escrow_sdk::{EscrowDeployment, EscrowRegistry, random_b256};

both_backends!(hostile_requests);

alloy::sol! {
    /// ERC-3009 `cancelAuthorization` typed data.
    struct CancelAuthorization {
        address authorizer;
        bytes32 nonce;
    }
}

/// What a row must get back.
enum Expect {
    /// An API error: HTTP status and `error.code`.
    Error(u16, &'static str),
    /// An API error that explains itself: HTTP status, `error.code`, the x402 `error.reason`,
    /// and a phrase of `error.message` (with its numbers).
    Explained(u16, &'static str, &'static str, &'static str),
    /// A facilitator answer (HTTP 200): `isValid` / `success` false with this reason.
    Refused(&'static str),
    /// The payment that already exists for this payload (an idempotent replay), unchanged.
    Existing(u16, String),
}

struct Row {
    name: &'static str,
    method: reqwest::Method,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    key: Option<String>,
    idempotency: bool,
    content_type: bool,
    expect: Expect,
}

impl Row {
    fn post(name: &'static str, path: impl Into<String>, body: &Value, expect: Expect) -> Row {
        Row::raw(name, path, serde_json::to_vec(body).expect("json"), expect)
    }

    fn raw(name: &'static str, path: impl Into<String>, body: Vec<u8>, expect: Expect) -> Row {
        Row {
            name,
            method: reqwest::Method::POST,
            path: path.into(),
            headers: vec![],
            body,
            key: None,
            idempotency: true,
            content_type: true,
            expect,
        }
    }

    fn get(name: &'static str, path: impl Into<String>, expect: Expect) -> Row {
        Row {
            method: reqwest::Method::GET,
            idempotency: false,
            content_type: false,
            ..Row::raw(name, path, vec![], expect)
        }
    }

    fn key(mut self, key: &str) -> Row {
        self.key = Some(key.to_owned());
        self
    }

    fn header(mut self, name: &str, value: &str) -> Row {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    fn no_idempotency_key(mut self) -> Row {
        self.idempotency = false;
        self
    }

    fn no_content_type(mut self) -> Row {
        self.content_type = false;
        self
    }
}

/// `requirements` and the payload's `accepted` echo, both edited by `f`.
fn both(body: &mut Value, f: impl Fn(&mut Value)) {
    f(&mut body["paymentRequirements"]);
    f(&mut body["paymentPayload"]["accepted"]);
}

/// An authorize body signed by `payer` as if at time `now`.
async fn body_at(
    chain: &Chain,
    requirements: Value,
    payer: &PrivateKeySigner,
    now: u64,
    request_id: &str,
) -> Value {
    let requirements: PaymentRequirements =
        serde_json::from_value(requirements).expect("requirements");
    let registry = EscrowRegistry::only(EscrowDeployment::from(&chain.deployment));
    let payload = auth_capture::build_payload(&requirements, payer, now, random_b256(), &registry)
        .expect("buyer payload");
    json!({
        "paymentPayload": PaymentPayload::new(requirements.clone(), payload),
        "paymentRequirements": requirements,
        "requestId": request_id,
    })
}

/// The facilitator body (`/verify`, `/settle`) of an authorize body.
fn facilitator_body(body: &Value) -> Value {
    json!({
        "x402Version": 2,
        "paymentPayload": body["paymentPayload"],
        "paymentRequirements": body["paymentRequirements"],
    })
}

/// Every payment's id, status, version, amounts and action in flight; and the other tables a
/// refused request must not touch.
async fn state(store: &Store) -> Vec<String> {
    let sql = "SELECT id, status, version, authorized_amount, captured_amount, refunded_amount, \
               released_amount, pending_tx_id FROM payments ORDER BY id";
    let mut out = rendered_rows(store, sql, |r| {
        format!(
            "{} {} v{} {}/{}/{}/{} {:?}",
            column::<String>(r, "id"),
            column::<String>(r, "status"),
            column::<i64>(r, "version"),
            column::<String>(r, "authorized_amount"),
            column::<String>(r, "captured_amount"),
            column::<String>(r, "refunded_amount"),
            column::<String>(r, "released_amount"),
            column::<Option<String>>(r, "pending_tx_id"),
        )
    })
    .await;
    for table in ["chain_txs", "tx_attempts", "webhook_events"] {
        out.push(format!("{table}: {}", count(store, table).await));
    }
    out
}

async fn send(api: &Api, row: &Row, n: usize) -> (u16, Value) {
    let mut req = api
        .http
        .request(row.method.clone(), format!("{}{}", api.base, row.path))
        .bearer_auth(row.key.as_deref().unwrap_or(&api.key));
    if row.idempotency {
        req = req.header("Idempotency-Key", format!("hostile-{n}"));
    }
    if row.content_type {
        req = req.header("Content-Type", "application/json");
    }
    for (k, v) in &row.headers {
        req = req.header(k.as_str(), v.as_str());
    }
    if row.method == reqwest::Method::POST {
        req = req.body(row.body.clone());
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", row.name));
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.expect("body");
    let value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "{}: {status} body is not JSON ({e}): {:?}",
            row.name,
            String::from_utf8_lossy(&bytes)
        )
    });
    (status, value)
}

async fn hostile_requests(backend: Backend) {
    with_db(backend, |url| async move {
        let (chain, store, key_a, key_b) = two_shops(&url).await;
        let op = start(&config(&url, &chain)).await;
        let api = Api::new(&op, &key_a);
        let now = chain.now().await;
        let good = || chain.requirements(2 * USDC, op.signer, chain.receiver);

        // ---- what the hostile requests aim at ---------------------------------------------
        // P1: merchant A's authorized hold; P2: merchant A's partly captured payment.
        let p1_body = chain.authorize_body(good().await, &chain.payer, "p1").await;
        let (status, p1) = api
            .post("/v1/payments/authorize", &p1_body, "setup-p1")
            .await;
        assert_eq!(status, 201, "{p1}");
        let p1 = p1["id"].as_str().expect("id").to_owned();
        let p2_body = chain.authorize_body(good().await, &chain.payer, "p2").await;
        let (status, p2) = api
            .post("/v1/payments/authorize", &p2_body, "setup-p2")
            .await;
        assert_eq!(status, 201, "{p2}");
        let p2 = p2["id"].as_str().expect("id").to_owned();
        let (status, c) = api.act_amount(&p2, "capture", USDC, "setup-capture").await;
        assert_eq!(status, 200, "{c}");
        api.wait_status(
            &p2,
            &["partially_captured"],
            std::time::Duration::from_secs(30),
        )
        .await;
        // A payment whose ERC-3009 authorization the payer cancelled on chain (a spent nonce the
        // operator never saw).
        let cancelled = chain
            .authorize_body(good().await, &chain.payer, "cancelled")
            .await;
        {
            let auth = &cancelled["paymentPayload"]["payload"]["authorization"];
            let nonce: B256 = serde_json::from_value(auth["nonce"].clone()).expect("nonce");
            let token = chain.deployment.token.as_ref().expect("token");
            let domain = x402_escrow_bindings::eip3009::token_domain(
                &token.name,
                &token.version,
                chain.deployment.chain_id,
                token.address,
            );
            let digest = CancelAuthorization {
                authorizer: chain.payer.address(),
                nonce,
            }
            .eip712_signing_hash(&domain);
            let sig = chain.payer.sign_hash_sync(&digest).expect("sign");
            TestUSDC::new(token.address, chain.admin.clone())
                .cancelAuthorization_1(chain.payer.address(), nonce, sig.as_bytes().into())
                .send()
                .await
                .expect("cancel")
                .get_receipt()
                .await
                .expect("cancel receipt");
        }
        settle(&store, std::time::Duration::from_secs(30)).await;

        // ---- the table ----------------------------------------------------------------------
        let authorize = "/v1/payments/authorize";
        let mut rows: Vec<Row> = Vec::new();
        let err = Expect::Error;

        // Chain, escrow, operator, token, receiver.
        let mut r = good().await;
        r["network"] = json!("eip155:1");
        let body = chain.authorize_body(r, &chain.payer, "h").await;
        rows.push(Row::post(
            "wrong chain",
            authorize,
            &body,
            err(400, "wrong_chain"),
        ));
        rows.push(Row::post(
            "wrong chain (facilitator /verify)",
            "/verify",
            &facilitator_body(&body),
            Expect::Refused("invalid_network"),
        ));
        let mut body = p1_body.clone();
        both(&mut body, |r| {
            r["network"] = json!("solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp")
        });
        rows.push(Row::post(
            "unknown network",
            authorize,
            &body,
            err(400, "invalid_request"),
        ));
        let mut body = p1_body.clone();
        both(&mut body, |r| {
            r["network"] = json!("eip155:99999999999999999999999")
        });
        rows.push(Row::post(
            "chain id > u64",
            authorize,
            &body,
            err(400, "invalid_request"),
        ));
        let mut body = p1_body.clone();
        both(&mut body, |r| {
            r["extra"]["authCaptureEscrow"] = json!(Address::repeat_byte(0xEE));
        });
        rows.push(Row::post(
            "wrong escrow",
            authorize,
            &body,
            err(400, "wrong_escrow"),
        ));
        let mut body = chain.authorize_body(good().await, &chain.payer, "h").await;
        body["paymentPayload"]["payload"]["authorization"]["to"] =
            json!(Address::repeat_byte(0xC0));
        rows.push(Row::post(
            "wrong collector",
            authorize,
            &body,
            err(400, "wrong_escrow"),
        ));
        let other_operator = chain.anvil.addresses()[7];
        let body = chain
            .authorize_body(
                chain
                    .requirements(2 * USDC, other_operator, chain.receiver)
                    .await,
                &chain.payer,
                "h",
            )
            .await;
        rows.push(Row::post(
            "wrong operator",
            authorize,
            &body,
            err(400, "wrong_operator"),
        ));
        let mut r = good().await;
        r["asset"] = json!(Address::repeat_byte(0x70));
        let body = chain.authorize_body(r, &chain.payer, "h").await;
        rows.push(Row::post(
            "wrong token",
            authorize,
            &body,
            err(400, "unsupported_asset"),
        ));
        let body = chain
            .authorize_body(
                chain
                    .requirements(2 * USDC, op.signer, chain.other_receiver)
                    .await,
                &chain.payer,
                "h",
            )
            .await;
        rows.push(Row::post(
            "receiver of another merchant",
            authorize,
            &body,
            err(403, "payee_not_allowed"),
        ));

        // Time.
        let body = body_at(&chain, good().await, &chain.payer, now - 3600, "h").await;
        rows.push(Row::post(
            "expired authorization",
            authorize,
            &body,
            Expect::Explained(
                400,
                "expired",
                "invalid_auth_capture_evm_authorization_expired",
                "authorization expires at",
            ),
        ));
        let mut r = good().await;
        r["maxTimeoutSeconds"] = json!(300);
        r["extra"]["captureDeadline"] = json!(now + 600);
        let body = chain.authorize_body(r, &chain.payer, "h").await;
        rows.push(Row::post(
            "capture deadline inside the merchant's capture window",
            authorize,
            &body,
            Expect::Explained(
                400,
                "expired",
                "invalid_auth_capture_evm_capture_deadline_expired",
                "s short of the capture window: now (",
            ),
        ));

        // Replays.
        rows.push(Row::post(
            "authorization cancelled on chain (spent ERC-3009 nonce)",
            authorize,
            &cancelled,
            err(409, "authorization_used"),
        ));
        let mut replay = p1_body.clone();
        replay["requestId"] = json!("another-request");
        rows.push(Row::post(
            "same signed payment again, another request id",
            authorize,
            &replay,
            Expect::Existing(201, p1.clone()),
        ));
        rows.push(
            Row::post(
                "same signed payment from another merchant",
                authorize,
                &p1_body,
                err(409, "authorization_used"),
            )
            .key(&key_b),
        );

        // Amounts.
        for (name, amount) in [
            ("amount above uint120", (1u128 << 121).to_string()),
            ("amount above uint256", "9".repeat(80)),
            ("negative amount", "-2000000".to_owned()),
            ("fractional amount", "2000000.5".to_owned()),
            ("amount with exponent", "2e6".to_owned()),
        ] {
            let mut body = p1_body.clone();
            both(&mut body, |r| r["amount"] = json!(amount));
            rows.push(Row::post(
                name,
                authorize,
                &body,
                err(400, "invalid_request"),
            ));
        }
        let mut body = p1_body.clone();
        both(&mut body, |r| r["amount"] = json!(2 * USDC));
        rows.push(Row::post(
            "amount as a JSON number",
            authorize,
            &body,
            err(400, "invalid_request"),
        ));
        let body = chain
            .authorize_body(
                chain.requirements(0, op.signer, chain.receiver).await,
                &chain.payer,
                "h",
            )
            .await;
        rows.push(Row::post(
            "zero amount",
            authorize,
            &body,
            err(400, "invalid_amount"),
        ));
        let mut body = chain.authorize_body(good().await, &chain.payer, "h").await;
        body["paymentPayload"]["payload"]["authorization"]["value"] = json!("1");
        rows.push(Row::post(
            "signed value below the amount",
            authorize,
            &body,
            err(400, "invalid_payload"),
        ));

        // Fees.
        let mut r = good().await;
        r["extra"]["minFeeBps"] = json!(200);
        let body = chain.authorize_body(r, &chain.payer, "h").await;
        rows.push(Row::post(
            "fee range above our fee",
            authorize,
            &body,
            err(400, "invalid_fee"),
        ));
        let mut r = good().await;
        r["extra"]["maxFeeBps"] = json!(50);
        let body = chain.authorize_body(r, &chain.payer, "h").await;
        rows.push(Row::post(
            "fee range below our fee",
            authorize,
            &body,
            err(400, "invalid_fee"),
        ));
        let mut r = good().await;
        r["extra"]["feeRecipient"] = json!(Address::repeat_byte(0xFE));
        let body = chain.authorize_body(r, &chain.payer, "h").await;
        rows.push(Row::post(
            "foreign fee recipient",
            authorize,
            &body,
            err(400, "invalid_fee"),
        ));
        let mut body = p1_body.clone();
        both(&mut body, |r| r["extra"]["maxFeeBps"] = json!(10_001));
        rows.push(Row::post(
            "maxFeeBps above 100%",
            authorize,
            &body,
            err(400, "invalid_request"),
        ));

        // Signature, salt, nonce.
        let mut body = chain.authorize_body(good().await, &chain.payer, "h").await;
        let sig = body["paymentPayload"]["payload"]["signature"]
            .as_str()
            .expect("signature")
            .to_owned();
        let mut bytes = alloy::hex::decode(&sig).expect("hex");
        bytes[5] ^= 0x40;
        body["paymentPayload"]["payload"]["signature"] =
            json!(format!("0x{}", alloy::hex::encode(&bytes)));
        rows.push(Row::post(
            "tampered signature",
            authorize,
            &body,
            err(400, "invalid_signature"),
        ));
        let mut body = chain.authorize_body(good().await, &chain.payer, "h").await;
        body["paymentPayload"]["payload"]["authorization"]["from"] =
            json!(chain.anvil.addresses()[9]);
        rows.push(Row::post(
            "signed by someone else than authorization.from",
            authorize,
            &body,
            err(400, "invalid_signature"),
        ));
        let mut body = chain.authorize_body(good().await, &chain.payer, "h").await;
        // Base64 (of the hex text) where hex is expected.
        body["paymentPayload"]["payload"]["signature"] =
            json!(x402_escrow_sdk::wire::codec::encode_header(&sig).expect("base64"));
        rows.push(Row::post(
            "signature in base64 instead of hex",
            authorize,
            &body,
            err(400, "invalid_request"),
        ));
        let mut body = chain.authorize_body(good().await, &chain.payer, "h").await;
        body["paymentPayload"]["payload"]["salt"] = json!(B256::repeat_byte(0x5A));
        rows.push(Row::post(
            "salt not the one the nonce commits to",
            authorize,
            &body,
            err(400, "invalid_payload"),
        ));
        let mut body = chain.authorize_body(good().await, &chain.payer, "h").await;
        body["paymentPayload"]["payload"]["authorization"]["nonce"] =
            json!(B256::repeat_byte(0x4E));
        rows.push(Row::post(
            "nonce not the payer-agnostic hash",
            authorize,
            &body,
            err(400, "invalid_payload"),
        ));

        // Shape: versions, schemes, missing fields, encodings.
        let mut body = p1_body.clone();
        body["paymentPayload"]["accepted"]["maxTimeoutSeconds"] = json!(901);
        rows.push(Row::post(
            "accepted differs from the requirements",
            authorize,
            &body,
            err(400, "invalid_payload"),
        ));
        let mut body = p1_body.clone();
        body["paymentPayload"]["x402Version"] = json!(1);
        rows.push(Row::post(
            "v1 version in a v2 payload",
            authorize,
            &body,
            err(400, "invalid_request"),
        ));
        let v1_body = json!({
            "x402Version": 1,
            "paymentPayload": {
                "x402Version": 1,
                "scheme": "auth-capture",
                "network": "base",
                "payload": p1_body["paymentPayload"]["payload"],
            },
            "paymentRequirements": {
                "scheme": "auth-capture",
                "network": "base-sepolia",
                "maxAmountRequired": "2000000",
                "resource": "https://shop.example/x",
                "description": "",
                "payTo": chain.receiver,
                "maxTimeoutSeconds": 900,
                "asset": chain.token(),
                "extra": p1_body["paymentRequirements"]["extra"],
            },
        });
        rows.push(Row::post(
            "v1 body whose payload and requirements name different networks",
            "/verify",
            &v1_body,
            err(400, "invalid_request"),
        ));
        let mut body = p1_body.clone();
        both(&mut body, |r| r["scheme"] = json!("auth-capture-v9"));
        rows.push(Row::post(
            "unknown scheme",
            authorize,
            &body,
            err(400, "invalid_payload"),
        ));
        rows.push(Row::post(
            "unknown scheme (facilitator /settle)",
            "/settle",
            &facilitator_body(&body),
            Expect::Refused("unsupported_scheme"),
        ));
        let mut body = p1_body.clone();
        body.as_object_mut()
            .expect("object")
            .remove("paymentRequirements");
        rows.push(Row::post(
            "missing paymentRequirements",
            authorize,
            &body,
            err(400, "invalid_request"),
        ));
        let mut body = p1_body.clone();
        body["paymentPayload"]["payload"]["authorization"]
            .as_object_mut()
            .expect("authorization")
            .remove("nonce");
        rows.push(Row::post(
            "missing authorization.nonce",
            authorize,
            &body,
            err(400, "invalid_request"),
        ));
        let mut bytes = b"\xff\xfe".to_vec();
        bytes.extend(serde_json::to_vec(&p1_body).expect("json"));
        rows.push(Row::raw(
            "non-UTF-8 body",
            authorize,
            bytes,
            err(400, "invalid_request"),
        ));
        rows.push(Row::raw(
            "not JSON",
            authorize,
            b"paymentPayload=1".to_vec(),
            err(400, "invalid_request"),
        ));
        rows.push(Row::raw(
            "body over 64 KiB",
            authorize,
            vec![b' '; 70 * 1024],
            err(413, "payload_too_large"),
        ));
        rows.push(
            Row::post(
                "no JSON content type",
                authorize,
                &p1_body,
                err(400, "invalid_request"),
            )
            .no_content_type(),
        );
        rows.push(
            Row::post(
                "oversized Idempotency-Key",
                authorize,
                &p1_body,
                err(400, "invalid_request"),
            )
            .no_idempotency_key()
            .header("Idempotency-Key", &"k".repeat(4096)),
        );
        rows.push(
            Row::post(
                "missing Idempotency-Key",
                authorize,
                &p1_body,
                err(400, "idempotency_key_missing"),
            )
            .no_idempotency_key(),
        );
        rows.push(
            Row::post(
                "oversized API key",
                authorize,
                &p1_body,
                err(401, "unauthorized"),
            )
            .key(&"x".repeat(8192)),
        );
        rows.push(
            Row::post(
                "unknown API key",
                authorize,
                &p1_body,
                err(401, "unauthorized"),
            )
            .key("x402_sk_nobody"),
        );
        rows.push(Row::post(
            "wait above the limit",
            format!("{authorize}?wait=3600"),
            &p1_body,
            err(400, "invalid_request"),
        ));

        // Someone else's payment, and amounts on existing payments.
        for (name, path, body) in [
            (
                "capture another merchant's payment",
                format!("/v1/payments/{p1}/capture"),
                json!({}),
            ),
            (
                "void another merchant's payment",
                format!("/v1/payments/{p1}/void"),
                json!({}),
            ),
            (
                "refund another merchant's payment",
                format!("/v1/payments/{p2}/refund"),
                json!({"amount": "1"}),
            ),
        ] {
            rows.push(Row::post(name, path, &body, err(404, "not_found")).key(&key_b));
        }
        rows.push(
            Row::get(
                "read another merchant's payment",
                format!("/v1/payments/{p1}"),
                err(404, "not_found"),
            )
            .key(&key_b),
        );
        rows.push(Row::get(
            "payment id that is not a UUID",
            "/v1/payments/not-a-uuid",
            err(400, "invalid_request"),
        ));
        let capture = format!("/v1/payments/{p1}/capture");
        for (name, amount, expect) in [
            (
                "capture above the hold",
                json!((3 * USDC).to_string()),
                err(400, "exceeds_capturable"),
            ),
            ("capture of zero", json!("0"), err(400, "invalid_amount")),
            ("negative capture", json!("-1"), err(400, "invalid_request")),
            (
                "fractional capture",
                json!("0.5"),
                err(400, "invalid_request"),
            ),
            (
                "capture above uint128",
                json!((u128::MAX).to_string() + "0"),
                err(400, "invalid_request"),
            ),
            (
                "capture above uint256",
                json!("1".repeat(79)),
                err(400, "invalid_request"),
            ),
            (
                "capture amount as a number",
                json!(1000),
                err(400, "invalid_request"),
            ),
        ] {
            rows.push(Row::post(
                name,
                capture.clone(),
                &json!({ "amount": amount }),
                expect,
            ));
        }
        rows.push(Row::post(
            "refund of a payment nothing was captured of",
            format!("/v1/payments/{p1}/refund"),
            &json!({"amount": "1"}),
            err(409, "invalid_state"),
        ));
        rows.push(Row::post(
            "refund above what was captured",
            format!("/v1/payments/{p2}/refund"),
            &json!({"amount": (USDC + 1).to_string()}),
            err(400, "exceeds_refundable"),
        ));
        rows.push(Row::post(
            "refund without amount",
            format!("/v1/payments/{p2}/refund"),
            &json!({}),
            err(400, "invalid_request"),
        ));
        rows.push(Row::post(
            "void with a body",
            format!("/v1/payments/{p1}/void"),
            &json!({"amount": "1"}),
            err(400, "invalid_request"),
        ));

        // ---- run -----------------------------------------------------------------------------
        let before = state(&store).await;
        let nonce = chain.nonce(op.signer).await;
        let payer_balance = chain.balance(chain.payer.address()).await;
        assert!(rows.len() >= 20, "{} rows", rows.len());
        for (n, row) in rows.iter().enumerate() {
            let (status, body) = send(&api, row, n).await;
            eprintln!("{n:>2} {} → {status} {}", row.name, error_code(&body));
            match &row.expect {
                Expect::Error(want_status, want_code) => {
                    assert_eq!(
                        (status, error_code(&body)),
                        (*want_status, *want_code),
                        "{}: {body}",
                        row.name
                    );
                    assert!(body["error"]["message"].is_string(), "{}: {body}", row.name);
                }
                Expect::Explained(want_status, want_code, want_reason, phrase) => {
                    assert_eq!(
                        (status, error_code(&body), body["error"]["reason"].as_str()),
                        (*want_status, *want_code, Some(*want_reason)),
                        "{}: {body}",
                        row.name
                    );
                    let message = body["error"]["message"].as_str().unwrap_or_default();
                    assert!(message.contains(phrase), "{}: {body}", row.name);
                }
                Expect::Refused(reason) => {
                    assert_eq!(status, 200, "{}: {body}", row.name);
                    let (flag, field) = if row.path == "/verify" {
                        ("isValid", "invalidReason")
                    } else {
                        ("success", "errorReason")
                    };
                    assert_eq!(body[flag], false, "{}: {body}", row.name);
                    assert_eq!(body[field], *reason, "{}: {body}", row.name);
                }
                Expect::Existing(want_status, id) => {
                    assert_eq!(status, *want_status, "{}: {body}", row.name);
                    assert_eq!(
                        body["id"].as_str(),
                        Some(id.as_str()),
                        "{}: {body}",
                        row.name
                    );
                }
            }
            assert_eq!(state(&store).await, before, "{}: state changed", row.name);
            assert_eq!(
                chain.nonce(op.signer).await,
                nonce,
                "{}: a transaction was sent",
                row.name
            );
        }
        assert_eq!(chain.balance(chain.payer.address()).await, payer_balance);
        assert_reconciled(&op).await;
        op.shutdown().await;
        store.close().await;
    })
    .await
}
