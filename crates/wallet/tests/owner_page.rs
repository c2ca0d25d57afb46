//! The owner's page at `/owner`, driven over HTTP as a browser would (form posts, cookies,
//! redirects not followed), against a local resource that charges with `exact`:
//!
//! - sign-in: the double-submit token, a wrong owner token, the session cookie's attributes,
//!   the session stored only as a hash; every page's security headers;
//! - the keys list with rules and usage and the pending approvals; approve and reject through
//!   the page reach the same ledger the REST API uses (the approved payment is then paid by
//!   the caller's retry, the rejected one never);
//! - a POST without or with a wrong CSRF token changes nothing;
//! - the kill switch and revocation (behind a confirmation) stop the key's payments;
//! - values are HTML-escaped; signing out ends the session on the server.

use std::sync::{Arc, Mutex};

use alloy::primitives::{Address, B256};
use alloy::signers::local::PrivateKeySigner;
use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use x402_escrow_sdk::facilitator::SettleResponse;
use x402_escrow_sdk::schemes::EXACT;
use x402_escrow_sdk::types::schemes::exact::ExactExtra;
use x402_escrow_sdk::wire::codec::{encode_payment_required, encode_payment_response};
use x402_escrow_sdk::wire::{Extra, PaymentRequired, PaymentRequirements, ResourceInfo};
use x402_escrow_sdk::{Amount, EscrowRegistry, Network};
use x402_escrow_wallet::buyers::Buyers;
use x402_escrow_wallet::store::{State, Store};
use x402_escrow_wallet::{Wallet, WalletConfig, api};

const OWNER: &str = "owner-token-for-the-page-0123456789";
const PRICE: u64 = 10_000;
const TOKEN: Address = Address::repeat_byte(0x11);
const PAYEE: Address = Address::repeat_byte(0x22);

/// `GET /paid`: 402 (exact) without a payment, 200 with a receipt with one; it remembers every
/// payment header it received.
fn resource(seen: Arc<Mutex<Vec<String>>>) -> Router {
    Router::new().route(
        "/paid",
        get(move |headers: HeaderMap| {
            let seen = seen.clone();
            async move {
                let network = Network::eip155(31337);
                let Some(payment) = headers.get("payment-signature") else {
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
                    return (
                        StatusCode::PAYMENT_REQUIRED,
                        [("PAYMENT-REQUIRED", header)],
                        "{}",
                    )
                        .into_response();
                };
                seen.lock()
                    .unwrap()
                    .push(payment.to_str().unwrap().to_owned());
                let receipt = SettleResponse::success(
                    B256::from(rand::random::<[u8; 32]>()),
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
        }),
    )
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// A page answer: status, headers, body.
struct Page {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    /// The value of the first `name="{field}" value="…"` input.
    fn field(&self, field: &str) -> String {
        let marker = format!("name=\"{field}\" value=\"");
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no {field} field in {}", self.body))
            + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_owned()
    }
}

/// A browser: one cookie jar, no redirects followed.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: Vec<(String, String)>,
}

impl Browser {
    fn new(base: &str) -> Self {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.to_owned(),
            cookies: Vec::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn keep(&mut self, response: reqwest::Response) -> Page {
        let page = Page {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        };
        for set in page.set_cookies() {
            let pair = set.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.retain(|(k, _)| k != name);
            if !value.is_empty() && !set.contains("Max-Age=0") {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
        page
    }

    async fn get(&mut self, path: &str) -> Page {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(response).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(form).unwrap())
            .send()
            .await
            .unwrap();
        self.keep(response).await
    }
}

async fn rest(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Option<Value>,
    idempotency: Option<&str>,
) -> (u16, Value) {
    let mut request = http.request(method, url).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    if let Some(key) = idempotency {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_sees_and_bounds_every_key_from_the_page() {
    let dir = std::env::temp_dir().join(format!(
        "x402-wallet-owner-{}",
        x402_escrow_wallet::store::new_id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::connect(&format!("sqlite://{}/wallet.db?mode=rwc", dir.display()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
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
    let base = serve(api::router(wallet)).await;
    let http = reqwest::Client::new();

    // A key whose every payment waits for approval, named with markup.
    let (status, created) = rest(
        &http,
        reqwest::Method::POST,
        format!("{base}/v1/keys"),
        OWNER,
        Some(json!({"name": "ops <b>bot</b>", "buyer": "main", "rules": {
            "assets": [TOKEN], "hosts": ["127.0.0.1"],
            "dailyCap": (5 * PRICE).to_string(),
            "approvalThreshold": (PRICE - 1).to_string()
        }})),
        None,
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let key = created["key"]["id"].as_str().unwrap().to_owned();
    let token = created["token"].as_str().unwrap().to_owned();
    let fetch = |idem: &'static str| {
        let (http, base, token, url) = (
            http.clone(),
            base.clone(),
            token.clone(),
            resource_url.clone(),
        );
        async move {
            rest(
                &http,
                reqwest::Method::POST,
                format!("{base}/v1/fetch"),
                &token,
                Some(json!({"url": url})),
                Some(idem),
            )
            .await
        }
    };
    let (status, body) = fetch("job-1").await;
    assert_eq!(status, 202, "{body}");
    let first = body["error"]["paymentId"].as_str().unwrap().to_owned();
    let (status, body) = fetch("job-2").await;
    assert_eq!(status, 202, "{body}");
    let second = body["error"]["paymentId"].as_str().unwrap().to_owned();

    // Signed out: every page sends to the sign-in form; the form sets a double-submit cookie.
    let mut browser = Browser::new(&base);
    let page = browser.get("/owner").await;
    assert_eq!((page.status, page.location()), (303, "/owner/login"));
    let page = browser.get(&format!("/owner/keys/{key}")).await;
    assert_eq!((page.status, page.location()), (303, "/owner/login"));
    let login = browser.get("/owner/login").await;
    assert_eq!(login.status, 200);
    for (name, value) in [
        (
            "content-security-policy",
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        ("cache-control", "no-store"),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
    ] {
        assert_eq!(login.headers[name], value, "{name}");
    }
    let login_token = login.field("login_token");
    assert!(login.set_cookies()[0].starts_with(&format!("x402_wallet_owner_login={login_token};")));

    // A forged sign-in (no double-submit match) and a wrong token make no session.
    let mut forger = Browser::new(&base);
    let page = forger
        .post(
            "/owner/login",
            &[("login_token", &login_token), ("owner_token", OWNER)],
        )
        .await;
    assert_eq!(page.status, 403);
    assert!(page.body.contains("csrf_token_invalid"));
    assert!(forger.cookies.iter().all(|(k, _)| k != "x402_wallet_owner"));
    let page = browser
        .post(
            "/owner/login",
            &[
                ("login_token", &login_token),
                ("owner_token", "not-the-owner-token"),
            ],
        )
        .await;
    assert_eq!(page.status, 401);
    assert!(page.body.contains("unauthorized"), "{}", page.body);
    assert!(
        browser
            .cookies
            .iter()
            .all(|(k, _)| k != "x402_wallet_owner")
    );

    // Signing in: a strict, HttpOnly session cookie; only its hash is stored.
    let login = browser.get("/owner/login").await;
    let login_token = login.field("login_token");
    let page = browser
        .post(
            "/owner/login",
            &[("login_token", &login_token), ("owner_token", OWNER)],
        )
        .await;
    assert_eq!((page.status, page.location()), (303, "/owner"));
    let session_cookie = page
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("x402_wallet_owner="))
        .expect("a session cookie");
    assert!(session_cookie.ends_with("; Path=/owner; Max-Age=28800; HttpOnly; SameSite=Strict"));
    let session_id = browser
        .cookies
        .iter()
        .find(|(k, _)| k == "x402_wallet_owner")
        .unwrap()
        .1
        .clone();
    assert!(store.owner_session(&session_id).await.unwrap().is_none());
    let hashed = hex::encode(Sha256::digest(session_id.as_bytes()));
    assert!(store.owner_session(&hashed).await.unwrap().is_some());

    // The keys and what waits: both pending payments counted against the 24 h cap.
    let home = browser.get("/owner").await;
    assert_eq!(home.status, 200, "{}", home.body);
    assert_eq!(home.headers["cache-control"], "no-store");
    assert!(home.body.contains(&format!("id=\"pending-{first}\"")));
    assert!(home.body.contains(&format!("id=\"pending-{second}\"")));
    assert!(
        home.body.contains("ops &#60;b&#62;bot&#60;/b&#62;")
            || home.body.contains("ops &lt;b&gt;bot&lt;/b&gt;"),
        "{}",
        home.body
    );
    assert!(!home.body.contains("<b>bot</b>"));
    assert!(
        home.body
            .contains("50000 per 24 h; approval above 9999; hosts: 127.0.0.1")
    );
    assert!(home.body.contains("20000 of 50000"), "{}", home.body);
    let csrf = home.field("csrf");

    // A POST without or with a wrong CSRF token changes nothing.
    let page = browser
        .post(&format!("/owner/payments/{first}/approve"), &[])
        .await;
    assert_eq!(page.status, 403);
    assert!(page.body.contains("csrf_token_invalid"));
    let page = browser
        .post(
            &format!("/owner/payments/{first}/approve"),
            &[("csrf", &"0".repeat(64))],
        )
        .await;
    assert_eq!(page.status, 403);
    assert_eq!(
        store.payment(&first).await.unwrap().unwrap().state,
        State::PendingApproval
    );

    // Approve the first, reject the second: the ledger the REST API reads.
    let page = browser
        .post(
            &format!("/owner/payments/{first}/approve"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(
        (page.status, page.location()),
        (303, "/owner?notice=approved")
    );
    assert_eq!(
        store.payment(&first).await.unwrap().unwrap().state,
        State::Reserved
    );
    let page = browser
        .post(
            &format!("/owner/payments/{first}/approve"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(page.status, 409, "approving twice");
    assert!(page.body.contains("not_pending"));
    let page = browser
        .post(
            &format!("/owner/payments/{second}/reject"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(
        (page.status, page.location()),
        (303, "/owner?notice=rejected")
    );
    assert_eq!(
        store.payment(&second).await.unwrap().unwrap().state,
        State::Rejected
    );
    let home = browser.get("/owner?notice=approved").await;
    assert!(home.body.contains("id=\"notice\""));
    assert!(home.body.contains("id=\"no-pending\""), "{}", home.body);
    let home = browser.get("/owner?notice=%3Cscript%3E").await;
    assert!(!home.body.contains("id=\"notice\""));

    // The caller's retry pays the approved payment, once; the rejected one is never signed.
    let (status, body) = fetch("job-1").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["payment"]["state"], "captured", "{body}");
    assert_eq!(seen.lock().unwrap().len(), 1);
    let page = browser.get(&format!("/owner/keys/{key}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("id=\"spent-total\">10000</td>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("s-captured"));
    assert!(page.body.contains("s-rejected"));
    assert!(page.body.contains("approval_threshold"));

    // The kill switch stops the key's payments and lets them go again.
    let page = browser
        .post(
            &format!("/owner/keys/{key}/switch"),
            &[("csrf", &csrf), ("disabled", "maybe")],
        )
        .await;
    assert_eq!(page.status, 400);
    assert!(!store.key(&key).await.unwrap().unwrap().disabled);
    let page = browser
        .post(
            &format!("/owner/keys/{key}/switch"),
            &[("csrf", &csrf), ("disabled", "true")],
        )
        .await;
    assert_eq!(
        (page.status, page.location()),
        (303, format!("/owner/keys/{key}?notice=disabled").as_str())
    );
    assert!(store.key(&key).await.unwrap().unwrap().disabled);
    let (status, body) = fetch("job-3").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("key_disabled")),
        "{body}"
    );
    let page = browser
        .get(&format!("/owner/keys/{key}?notice=disabled"))
        .await;
    assert!(
        page.body.contains("id=\"key-status\">disabled<"),
        "{}",
        page.body
    );
    let page = browser
        .post(
            &format!("/owner/keys/{key}/switch"),
            &[("csrf", &csrf), ("disabled", "false")],
        )
        .await;
    assert_eq!(page.status, 303);
    assert!(!store.key(&key).await.unwrap().unwrap().disabled);

    // Revoking asks first, refuses a forged post, then is final.
    let page = browser.get(&format!("/owner/keys/{key}/revoke")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Revoking is final"));
    let page = browser
        .post(&format!("/owner/keys/{key}/revoke"), &[("csrf", "forged")])
        .await;
    assert_eq!(page.status, 403);
    assert!(store.key(&key).await.unwrap().unwrap().revoked_at.is_none());
    let page = browser
        .post(&format!("/owner/keys/{key}/revoke"), &[("csrf", &csrf)])
        .await;
    assert_eq!(page.status, 303);
    assert!(store.key(&key).await.unwrap().unwrap().revoked_at.is_some());
    let (status, body) = fetch("job-4").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("key_revoked")),
        "{body}"
    );
    let page = browser.get(&format!("/owner/keys/{key}")).await;
    assert!(page.body.contains("id=\"key-status\">revoked<"));
    assert!(
        !page.body.contains("id=\"kill-switch\""),
        "no controls on a revoked key"
    );
    let page = browser.get("/owner/keys/no-such-key").await;
    assert_eq!(page.status, 404);
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "one payment reached the resource"
    );

    // The stylesheet is the console's, served from this origin.
    let css = browser.get("/owner/assets/owner.css").await;
    assert_eq!(css.status, 200);
    assert!(css.body.contains("--accent"));
    assert_eq!(browser.get("/owner/assets/other.css").await.status, 404);

    // Signing out ends the session on the server: the old cookie no longer opens a page.
    let page = browser.post("/owner/logout", &[("csrf", &csrf)]).await;
    assert_eq!((page.status, page.location()), (303, "/owner/login"));
    assert!(store.owner_session(&hashed).await.unwrap().is_none());
    let mut replay = Browser::new(&base);
    replay
        .cookies
        .push(("x402_wallet_owner".to_owned(), session_id));
    let page = replay.get("/owner").await;
    assert_eq!((page.status, page.location()), (303, "/owner/login"));

    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}
