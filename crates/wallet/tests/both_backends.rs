//! The wallet on SQLite and on a fresh PostgreSQL database (127.0.0.1:5432, created for the
//! test and dropped after), against a local resource that charges with `exact` and answers a
//! paid request with a receipt — no chain needed: the point is the ledger under concurrency.
//!
//! - 50 concurrent fetches against a 24 h cap that fits exactly 10: exactly 10 reserved,
//!   signed and paid, 40 refused naming `daily_cap`, usage exact;
//! - a crash between signing and sending, then the caller's retry: the same bytes reach the
//!   resource, one payment;
//! - owner tokens, key tokens stored hashed.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use alloy::primitives::{Address, B256};
use alloy::signers::local::PrivateKeySigner;
use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::{Value, json};
use sqlx::Connection as _;
use x402_escrow_sdk::facilitator::SettleResponse;
use x402_escrow_sdk::schemes::EXACT;
use x402_escrow_sdk::types::schemes::exact::ExactExtra;
use x402_escrow_sdk::wire::codec::{encode_payment_required, encode_payment_response};
use x402_escrow_sdk::wire::{Extra, PaymentRequired, PaymentRequirements, ResourceInfo};
use x402_escrow_sdk::{Amount, EscrowRegistry, Network};
use x402_escrow_wallet::buyers::Buyers;
use x402_escrow_wallet::store::{State, Store};
use x402_escrow_wallet::{CrashPoint, Wallet, WalletConfig, api};

const OWNER: &str = "owner-token-for-the-tests-0123456789";
const PRICE: u64 = 10_000;
const TOKEN: Address = Address::repeat_byte(0x11);
const PAYEE: Address = Address::repeat_byte(0x22);

/// The resource: `GET /paid` answers 402 (exact, $0.01) without a payment, 200 with a receipt
/// with one; it remembers every payment header it received.
fn resource(seen: Arc<std::sync::Mutex<Vec<String>>>) -> Router {
    Router::new().route(
        "/paid",
        get(move |headers: HeaderMap| {
            let seen = seen.clone();
            async move {
                let network = Network::eip155(31337);
                match headers.get("payment-signature") {
                    None => {
                        let requirements = PaymentRequirements {
                            scheme: EXACT.to_owned(),
                            network,
                            amount: Amount::from(PRICE),
                            asset: TOKEN,
                            pay_to: PAYEE,
                            max_timeout_seconds: 300,
                            extra: Some(Extra::Exact(ExactExtra::new("USD Coin", "2"))),
                        };
                        let required = PaymentRequired::new(
                            ResourceInfo::new("http://127.0.0.1/paid"),
                            vec![requirements],
                        );
                        let header = encode_payment_required(&required).unwrap();
                        (
                            StatusCode::PAYMENT_REQUIRED,
                            [("PAYMENT-REQUIRED", header)],
                            "{}",
                        )
                            .into_response()
                    }
                    Some(payment) => {
                        let mut seen = seen.lock().unwrap();
                        seen.push(payment.to_str().unwrap().to_owned());
                        let tx = B256::from(rand::random::<[u8; 32]>());
                        let receipt = SettleResponse::success(
                            tx,
                            network,
                            Address::ZERO,
                            Some(Amount::from(PRICE)),
                        );
                        (
                            StatusCode::OK,
                            [(
                                "PAYMENT-RESPONSE",
                                encode_payment_response(&receipt).unwrap(),
                            )],
                            "paid content",
                        )
                            .into_response()
                    }
                }
            }
        }),
    )
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    body: Value,
    idempotency: Option<&str>,
) -> (u16, Value) {
    let mut request = http.post(url).bearer_auth(token).json(&body);
    if let Some(key) = idempotency {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn postgres_base() -> String {
    std::env::var("X402_TEST_POSTGRES_URL")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

async fn admin(sql: String) {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&postgres_base())
        .await
        .expect("PostgreSQL on 127.0.0.1:5432 (database test) is needed");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.ok();
}

async fn scenario(database: String) {
    let store = Store::connect(&database).await.unwrap();
    store.migrate().await.unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let resource_url = format!("{}/paid", serve(resource(seen.clone())).await);
    let mut buyers = Buyers::default();
    buyers.insert("main", PrivateKeySigner::random()).unwrap();
    let wallet = Wallet::new(
        store.clone(),
        buyers,
        EscrowRegistry::canonical(),
        WalletConfig::new(OWNER.to_owned()),
    )
    .unwrap();
    let base = serve(api::router(wallet.clone())).await;
    let http = reqwest::Client::new();

    let (status, created) = post(
        &http,
        &format!("{base}/v1/keys"),
        OWNER,
        json!({"name": "capped", "buyer": "main", "rules": {
            "assets": [TOKEN], "hosts": ["127.0.0.1"], "dailyCap": (10 * PRICE).to_string()
        }}),
        None,
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let key = created["key"]["id"].as_str().unwrap().to_owned();
    let token = created["token"].as_str().unwrap().to_owned();
    let stored = store.key(&key).await.unwrap().unwrap();
    assert_ne!(stored.token_hash, token, "the token is stored hashed");
    assert_eq!(
        stored.token_hash,
        x402_escrow_wallet::keys::hash_token(&token)
    );

    // 50 at once against a cap that fits 10.
    let paid = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (http, base, token, url) = (
            http.clone(),
            base.clone(),
            token.clone(),
            resource_url.clone(),
        );
        let (paid, refused) = (paid.clone(), refused.clone());
        tasks.push(tokio::spawn(async move {
            let (status, body) = post(
                &http,
                &format!("{base}/v1/fetch"),
                &token,
                json!({"url": url}),
                None,
            )
            .await;
            match status {
                200 => {
                    assert_eq!(body["status"], 200, "{body}");
                    assert_eq!(body["payment"]["state"], "captured", "{body}");
                    paid.fetch_add(1, Ordering::SeqCst);
                }
                403 => {
                    assert_eq!(body["error"]["code"], "daily_cap_exceeded", "{body}");
                    assert_eq!(body["error"]["rule"], "daily_cap", "{body}");
                    refused.fetch_add(1, Ordering::SeqCst);
                }
                other => panic!("unexpected {other}: {body}"),
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(paid.load(Ordering::SeqCst), 10);
    assert_eq!(refused.load(Ordering::SeqCst), 40);
    assert_eq!(
        seen.lock().unwrap().len(),
        10,
        "ten payments reached the resource"
    );
    let rows = store.key_payments(&key).await.unwrap();
    assert_eq!(
        rows.iter().filter(|p| p.state == State::Captured).count(),
        10
    );
    assert_eq!(
        rows.iter().filter(|p| p.state == State::Refused).count(),
        40
    );
    assert_eq!(rows.iter().filter(|p| p.header_value.is_some()).count(), 10);

    // Raise the cap, crash after signing, retry: the same bytes, once.
    let (status, _) = {
        let response = http
            .patch(format!("{base}/v1/keys/{key}"))
            .bearer_auth(OWNER)
            .json(&json!({"rules": {"assets": [TOKEN], "hosts": ["127.0.0.1"], "dailyCap": (11 * PRICE).to_string()}}))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), ())
    };
    assert_eq!(status, 200);
    wallet.set_crash_point(Some(CrashPoint::AfterSign));
    let fetch = |idem: &'static str| {
        let (http, base, token, url) = (
            http.clone(),
            base.clone(),
            token.clone(),
            resource_url.clone(),
        );
        async move {
            post(
                &http,
                &format!("{base}/v1/fetch"),
                &token,
                json!({"url": url}),
                Some(idem),
            )
            .await
        }
    };
    let (status, body) = fetch("job-1").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (500, Some("internal"))
    );
    let row = store
        .payment_by_idempotency(&key, "job-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.state, State::Signed);
    assert_eq!(seen.lock().unwrap().len(), 10, "nothing sent");
    wallet.set_crash_point(None);
    let (status, body) = fetch("job-1").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(seen.lock().unwrap().len(), 11);
    assert_eq!(
        seen.lock().unwrap().last(),
        row.header_value.as_ref(),
        "the persisted bytes"
    );
    let (status, body) = fetch("job-1").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("payment_completed"))
    );
    let (status, body) = fetch("job-2").await;
    assert_eq!(status, 403, "the cap is full: {body}");
    assert_eq!(seen.lock().unwrap().len(), 11);
    // A reused idempotency key with another request is a conflict.
    let (status, body) = post(
        &http,
        &format!("{base}/v1/fetch"),
        &token,
        json!({"url": format!("{resource_url}?other")}),
        Some("job-1"),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("idempotency_conflict"))
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_caps_hold_under_concurrency_and_crashes() {
    let dir = std::env::temp_dir().join(format!(
        "x402-wallet-{}",
        x402_escrow_wallet::store::new_id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    scenario(format!("sqlite://{}/wallet.db?mode=rwc", dir.display())).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_caps_hold_under_concurrency_and_crashes() {
    let name = format!("x402_wallet_t_{}", uuid::Uuid::new_v4().simple());
    admin(format!("CREATE DATABASE {name}")).await;
    let base = postgres_base();
    let head = base.split('?').next().unwrap_or(&base);
    let url = format!("{}/{name}", &head[..head.rfind('/').unwrap()]);
    let outcome = tokio::spawn(scenario(url)).await;
    admin(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
