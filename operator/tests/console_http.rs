//! The merchant console over plain HTTP, against a started operator on anvil: sign-in failures,
//! the session cookie's flags, CSRF refusals (403, nothing changes), refusals with their codes,
//! page-size limits, hostile request ids escaped in every page, another merchant's payment
//! answering 404, and a double-submitted refund moving money once.

mod operator_support;
mod store_support;

use std::sync::Arc;

use operator_support::*;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::json;
use sha2::{Digest, Sha256};
use x402_escrow_operator::api::{ApiState, router};
use x402_escrow_operator::service::ErrorCode;
use x402_escrow_operator::store::Backend;

/// A request id a buyer could send: markup, both quotes and an ampersand.
const HOSTILE: &str = "<script>alert(1)</script>\"'&";

/// A browser without JavaScript: follows no redirect, keeps the cookies it is given.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: Vec<(String, String)>,
}

struct Page {
    status: StatusCode,
    location: Option<String>,
    set_cookies: Vec<String>,
    body: String,
}

impl Browser {
    fn new(base: &str) -> Browser {
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

    async fn read(&mut self, response: reqwest::Response) -> Page {
        let status = response.status();
        let location = response
            .headers()
            .get(LOCATION)
            .map(|v| v.to_str().unwrap().to_owned());
        let set_cookies: Vec<String> = response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        for c in &set_cookies {
            let pair = c.split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            self.cookies.retain(|(name, _)| name != k);
            if !v.is_empty() && !c.contains("Max-Age=0") {
                self.cookies.push((k.to_owned(), v.to_owned()));
            }
        }
        Page {
            status,
            location,
            set_cookies,
            body: response.text().await.unwrap(),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .unwrap();
        self.read(response).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(
                form.iter()
                    .map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v)))
                    .collect::<Vec<_>>()
                    .join("&"),
            )
            .send()
            .await
            .unwrap();
        self.read(response).await
    }

    /// Signs in with `key` (through the sign-in form and its token).
    async fn sign_in(&mut self, key: &str) -> Page {
        let form = self.get("/console/login").await;
        assert_eq!(form.status, 200, "{}", form.body);
        let token = field(&form.body, "login_token");
        self.post(
            "/console/login",
            &[("api_key", key), ("login_token", &token)],
        )
        .await
    }
}

/// The `value` of the form field `name` in `html`.
fn field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no field {name} in {html}"))
        + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].to_owned()
}

/// The refusal code a page shows.
fn refusal_code(html: &str) -> &str {
    let marker = "id=\"refusal-code\">";
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("no refusal in {html}"))
        + marker.len();
    let end = html[start..].find('<').unwrap() + start;
    &html[start..end]
}

fn assert_escaped(html: &str) {
    assert!(!html.contains("<script>alert(1)"), "raw markup in {html}");
    assert!(!html.contains("\"'&<"), "raw quotes in {html}");
    assert!(
        html.contains("&#60;script&#62;alert(1)&#60;/script&#62;&#34;&#39;&#38;"),
        "escaped request id missing in {html}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_refuses_bad_input_and_escapes_everything() {
    with_db(Backend::Sqlite, |url| async move {
        let (chain, store, _m, key_a) = open_shop(&url, None).await;
        let (_mb, key_b) = merchant(&store, "shop-b", chain.other_receiver, None).await;
        let op = start(&config(&url, &chain)).await;
        chain.mint(op.signer, 20 * USDC).await;
        let api = Api::new(&op, &key_a);
        let (_, p) = api
            .authorize_payment(&chain, 4 * USDC, op.signer, HOSTILE, "auth-1")
            .await;
        let id = p["id"].as_str().unwrap().to_owned();
        let (status, p) = api.act(&id, "capture", &json!({}), "cap-1").await;
        assert_eq!(status, 200, "{p}");
        let refunds = || count(&store, "chain_txs WHERE kind = 'refund'");
        let base = format!("http://{}", op.address);

        // ---- signed out: pages send to the sign-in page, forms are 401 ------------------------
        let mut a = Browser::new(&base);
        let page = a.get("/console/payments").await;
        assert_eq!(page.status, 303);
        assert_eq!(page.location.as_deref(), Some("/console/login"));
        let page = a
            .post(
                &format!("/console/payments/{id}/act"),
                &[("action", "void"), ("csrf", "x"), ("idem", "k")],
            )
            .await;
        assert_eq!(page.status, 401, "{}", page.body);
        assert_eq!(refusal_code(&page.body), "unauthorized");

        // ---- sign-in failures create no session ----------------------------------------------
        let page = a.sign_in("x402_sk_not-a-key").await;
        assert_eq!(page.status, 401, "{}", page.body);
        assert_eq!(refusal_code(&page.body), "unauthorized");
        assert!(
            page.set_cookies
                .iter()
                .all(|c| !c.starts_with("x402_console="))
        );
        // The right key without the sign-in form's cookie: refused as a forged form.
        let mut forged = Browser::new(&base);
        let page = forged
            .post(
                "/console/login",
                &[
                    ("api_key", key_a.as_str()),
                    ("login_token", &"a".repeat(64)),
                ],
            )
            .await;
        assert_eq!(page.status, 403, "{}", page.body);
        assert_eq!(refusal_code(&page.body), "csrf_token_invalid");
        assert_eq!(count(&store, "console_sessions").await, 0);

        // ---- sign-in: the cookie's flags, the id stored only hashed ---------------------------
        let page = a.sign_in(&key_a).await;
        assert_eq!(page.status, 303, "{}", page.body);
        assert_eq!(page.location.as_deref(), Some("/console/payments"));
        let cookie = page
            .set_cookies
            .iter()
            .find(|c| c.starts_with("x402_console="))
            .expect("session cookie")
            .clone();
        let value = cookie["x402_console=".len()..].split(';').next().unwrap();
        assert_eq!(value.len(), 64, "{cookie}");
        assert_eq!(
            cookie,
            format!(
                "x402_console={value}; Path=/console; Max-Age=28800; HttpOnly; SameSite=Strict"
            )
        );
        let hashed = hex::encode(Sha256::digest(value.as_bytes()));
        assert_eq!(
            count(
                &store,
                &format!("console_sessions WHERE id_hash = '{hashed}'")
            )
            .await,
            1
        );
        assert_eq!(
            count(
                &store,
                &format!("console_sessions WHERE id_hash = '{value}'")
            )
            .await,
            0
        );

        // ---- the hostile request id is escaped in the list, the search and the payment --------
        let page = a.get("/console/payments").await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains(&id), "{}", page.body);
        assert!(page.body.contains("<svg class=\"chart\""), "{}", page.body);
        assert_escaped(&page.body);
        let q: String = url_encode(HOSTILE);
        let page = a.get(&format!("/console/payments?q={q}")).await;
        assert_eq!(page.status, 200);
        assert!(
            page.body.contains(&format!("/console/payments/{id}")),
            "{}",
            page.body
        );
        assert_escaped(&page.body);
        let page = a.get(&format!("/console/payments/{id}")).await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert_escaped(&page.body);
        assert!(page.body.contains("capture final"), "{}", page.body);
        for (name, value) in [
            ("content-security-policy", "default-src 'none'"),
            ("x-frame-options", "DENY"),
        ] {
            let response = reqwest::Client::new()
                .get(format!("{base}/console/payments/{id}"))
                .header(COOKIE, a.cookie_header())
                .send()
                .await
                .unwrap();
            let got = response.headers().get(name).unwrap().to_str().unwrap();
            assert!(got.starts_with(value), "{name}: {got}");
        }
        let csrf = field(&page.body, "csrf");

        // ---- page-size limits and bad parameters: 400 invalid_request -------------------------
        for query in ["limit=0", "limit=201", "limit=ten", "chart=week", "sort=id"] {
            let page = a.get(&format!("/console/payments?{query}")).await;
            assert_eq!(page.status, 400, "{query}: {}", page.body);
            assert_eq!(refusal_code(&page.body), "invalid_request", "{query}");
            assert!(!page.body.contains(&id), "{query} listed payments");
        }
        let page = a
            .get(&format!("/console/payments?q={}", "r".repeat(256)))
            .await;
        assert_eq!(page.status, 400);
        let page = a.get("/console/payments?limit=200").await;
        assert_eq!(page.status, 200);

        // ---- CSRF: a missing or wrong token is 403 and refunds nothing ------------------------
        for token in ["", "0000", &"f".repeat(64)] {
            let page = a
                .post(
                    &format!("/console/payments/{id}/act"),
                    &[
                        ("action", "refund"),
                        ("amount", "1000"),
                        ("csrf", token),
                        ("idem", "csrf-test"),
                    ],
                )
                .await;
            assert_eq!(page.status, 403, "{}", page.body);
            assert_eq!(refusal_code(&page.body), "csrf_token_invalid");
        }
        assert_eq!(amount(&api.payment(&id).await, "refunded"), 0);
        assert_eq!(refunds().await, 0);

        // ---- refusals carry their codes and change nothing ------------------------------------
        let page = a
            .get(&format!(
                "/console/payments/{id}/confirm?action=refund&amount=1.5"
            ))
            .await;
        assert_eq!(page.status, 400);
        assert_eq!(refusal_code(&page.body), "invalid_amount");
        let page = a
            .get(&format!("/console/payments/{id}/confirm?action=burn"))
            .await;
        assert_eq!(page.status, 400);
        assert_eq!(refusal_code(&page.body), "invalid_request");
        let too_much = (5 * USDC).to_string();
        let page = a
            .get(&format!(
                "/console/payments/{id}/confirm?action=refund&amount={too_much}"
            ))
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
        let idem = field(&page.body, "idem");
        let act = |idem: String, action: &'static str, amount: String| {
            let csrf = csrf.clone();
            let path = format!("/console/payments/{id}/act");
            (
                path,
                vec![
                    ("action".to_owned(), action.to_owned()),
                    ("amount".to_owned(), amount),
                    ("csrf".to_owned(), csrf),
                    ("idem".to_owned(), idem),
                ],
            )
        };
        let (path, form) = act(idem, "refund", too_much.clone());
        let page = a.post(&path, &borrowed(&form)).await;
        assert_eq!(
            page.status.as_u16(),
            ErrorCode::ExceedsRefundable.http_status(),
            "{}",
            page.body
        );
        assert_eq!(refusal_code(&page.body), "exceeds_refundable");
        let (path, form) = act("void-1".to_owned(), "void", String::new());
        let page = a.post(&path, &borrowed(&form)).await;
        assert_eq!(
            page.status.as_u16(),
            ErrorCode::InvalidState.http_status(),
            "{}",
            page.body
        );
        assert_eq!(refusal_code(&page.body), "invalid_state");
        assert_eq!(amount(&api.payment(&id).await, "refunded"), 0);
        assert_eq!(refunds().await, 0);

        // ---- another merchant: the payment is 404 everywhere ----------------------------------
        let mut b = Browser::new(&base);
        assert_eq!(b.sign_in(&key_b).await.status, 303);
        let page = b.get(&format!("/console/payments/{id}")).await;
        assert_eq!(page.status, 404, "{}", page.body);
        assert_eq!(refusal_code(&page.body), "not_found");
        let page = b
            .get(&format!(
                "/console/payments/{id}/confirm?action=refund&amount=1"
            ))
            .await;
        assert_eq!(page.status, 404);
        let page = b.get(&format!("/console/payments?q={id}")).await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains("id=\"no-payments\""), "{}", page.body);
        let page = b.get("/console/payments").await;
        assert!(!page.body.contains(&id), "{}", page.body);
        let b_csrf = {
            let page = b.get("/console/settings").await;
            assert_eq!(page.status, 200);
            assert!(page.body.contains("shop-b"), "{}", page.body);
            field(&page.body, "csrf")
        };
        let page = b
            .post(
                &format!("/console/payments/{id}/act"),
                &[
                    ("action", "refund"),
                    ("amount", "1000"),
                    ("csrf", &b_csrf),
                    ("idem", "cross-1"),
                ],
            )
            .await;
        assert_eq!(page.status, 404, "{}", page.body);
        assert_eq!(refusal_code(&page.body), "not_found");
        assert_eq!(refunds().await, 0);

        // ---- a double-submitted refund moves money once --------------------------------------
        let page = a
            .get(&format!(
                "/console/payments/{id}/confirm?action=refund&amount={}",
                USDC
            ))
            .await;
        let idem = field(&page.body, "idem");
        let (path, form) = act(idem.clone(), "refund", USDC.to_string());
        let first = a.post(&path, &borrowed(&form)).await;
        assert_eq!(first.status, 303, "{}", first.body);
        assert_eq!(
            first.location,
            Some(format!("/console/payments/{id}?notice=refund"))
        );
        let again = a.post(&path, &borrowed(&form)).await;
        assert_eq!(again.status, 303, "{}", again.body);
        assert_eq!(
            again.location,
            Some(format!("/console/payments/{id}?notice=replayed"))
        );
        // The same form key with another amount is refused.
        let (path, form) = act(idem, "refund", (2 * USDC).to_string());
        let page = a.post(&path, &borrowed(&form)).await;
        assert_eq!(page.status, 422, "{}", page.body);
        assert_eq!(refusal_code(&page.body), "idempotency_key_reused");
        let p = api.payment(&id).await;
        assert_eq!(amount(&p, "refunded"), u128::from(USDC), "{p}");
        assert_eq!(refunds().await, 1);
        let page = a
            .get(&format!("/console/payments/{id}?notice=refund"))
            .await;
        assert!(page.body.contains("refund final"), "{}", page.body);
        assert!(page.body.contains("id=\"notice\""), "{}", page.body);

        // ---- sign-out: CSRF-checked, then the session is gone ---------------------------------
        let page = a.post("/console/logout", &[("csrf", "nope")]).await;
        assert_eq!(page.status, 403);
        let page = a.post("/console/logout", &[("csrf", &csrf)]).await;
        assert_eq!(page.status, 303);
        assert!(
            page.set_cookies
                .iter()
                .any(|c| c.starts_with("x402_console=;") && c.contains("Max-Age=0")),
            "{:?}",
            page.set_cookies
        );
        assert_eq!(
            count(
                &store,
                &format!("console_sessions WHERE id_hash = '{hashed}'")
            )
            .await,
            0
        );
        let mut stale = Browser::new(&base);
        stale
            .cookies
            .push(("x402_console".to_owned(), value.to_owned()));
        let page = stale.get("/console/payments").await;
        assert_eq!(page.status, 303);

        // ---- behind https: the same router marks the cookie Secure ----------------------------
        let mut state = ApiState::new(Arc::new(op.engine.clone()), store.clone());
        state.console.secure_cookie = true;
        let secure = serve(router(state)).await;
        let mut s = Browser::new(&secure.base);
        let page = s.sign_in(&key_a).await;
        let cookie = page
            .set_cookies
            .iter()
            .find(|c| c.starts_with("x402_console="))
            .expect("session cookie");
        assert!(
            cookie.ends_with("; HttpOnly; SameSite=Strict; Secure"),
            "{cookie}"
        );
        drop(secure);

        settle(&store, WAIT).await;
        wind_down(op, store, &chain).await;
    })
    .await;
}

fn borrowed(form: &[(String, String)]) -> Vec<(&str, &str)> {
    form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// How long a webhook may take to arrive.
const T: std::time::Duration = std::time::Duration::from_secs(30);

/// The merchant as stored now.
async fn merchant_row(
    store: &x402_escrow_operator::store::Store,
    id: uuid::Uuid,
) -> x402_escrow_operator::store::Merchant {
    store.get_merchant(id).await.expect("merchant")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_settings_manage_webhooks_and_keys_and_show_the_reserve() {
    with_db(Backend::Sqlite, |url| async move {
        let hooks = Hooks::start().await;
        let (chain, store, m, key) = open_shop(&url, Some(&hooks)).await;
        let op = start(&config(&url, &chain)).await;
        let api = Api::new(&op, &key);
        let (_, p) = api
            .authorize_payment(&chain, USDC, op.signer, "req-settings", "auth-s1")
            .await;
        let id = p["id"].as_str().unwrap().to_owned();
        hooks.wait_for(&id, &["payment.authorized"], T).await;
        let base = format!("http://{}", op.address);
        let mut a = Browser::new(&base);
        assert_eq!(a.sign_in(&key).await.status, 303);

        // The page: the delivery log, the reserve and its statement, the endpoint form.
        // (The receiver has the event; the worker records its answer right after.)
        let deadline = std::time::Instant::now() + T;
        let page = loop {
            let page = a.get("/console/settings").await;
            assert_eq!(page.status, 200, "{}", page.body);
            if page
                .body
                .contains("<span class=\"status\">delivered</span>")
            {
                break page;
            }
            assert!(std::time::Instant::now() < deadline, "{}", page.body);
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        assert!(page.body.contains("id=\"delivery-log\""), "{}", page.body);
        assert!(page.body.contains("payment.authorized"));
        assert!(page.body.contains("id=\"reserve-balances\""));
        assert!(page.body.contains("id=\"reserve-statement\""));
        assert!(page.body.contains(&format!("value=\"{}\"", hooks.url)));
        let csrf = field(&page.body, "csrf");
        let marker = "<tr id=\"delivery-";
        let start_at = page.body.find(marker).expect("a delivery") + marker.len();
        let delivery = page.body[start_at..start_at + 36].to_owned();

        // Redelivery: refused without the CSRF token, then sent again.
        let before = hooks.deliveries();
        let path = format!("/console/webhook/deliveries/{delivery}/redeliver");
        let page = a.post(&path, &[("csrf", "forged")]).await;
        assert_eq!(page.status, 403);
        assert_eq!(refusal_code(&page.body), "csrf_token_invalid");
        let page = a.post(&path, &[("csrf", &csrf)]).await;
        assert_eq!(page.status, 303, "{}", page.body);
        let deadline = std::time::Instant::now() + T;
        while hooks.deliveries() == before {
            assert!(std::time::Instant::now() < deadline, "not redelivered");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(hooks.rejected().is_empty(), "{:?}", hooks.rejected());
        let page = a
            .post(
                &format!(
                    "/console/webhook/deliveries/{}/redeliver",
                    uuid::Uuid::now_v7()
                ),
                &[("csrf", &csrf)],
            )
            .await;
        assert_eq!(page.status, 404);

        // The endpoint form: a bad URL changes nothing; deliveries off, then on.
        let page = a
            .post(
                "/console/webhook",
                &[
                    ("csrf", &csrf),
                    ("url", "ftp://x.example"),
                    ("enabled", "true"),
                ],
            )
            .await;
        assert_eq!(page.status, 400);
        assert_eq!(refusal_code(&page.body), "invalid_webhook_url");
        assert_eq!(
            merchant_row(&store, m.id).await.webhook_url.as_deref(),
            Some(hooks.url.as_str())
        );
        let page = a
            .post(
                "/console/webhook",
                &[("csrf", &csrf), ("url", ""), ("enabled", "false")],
            )
            .await;
        assert_eq!(page.status, 303);
        assert!(
            merchant_row(&store, m.id)
                .await
                .webhook_disabled_at
                .is_some()
        );
        let page = a
            .post(
                "/console/webhook",
                &[("csrf", &csrf), ("url", ""), ("enabled", "true")],
            )
            .await;
        assert_eq!(page.status, 303);
        let now = merchant_row(&store, m.id).await;
        assert!(now.webhook_disabled_at.is_none());
        assert_eq!(now.webhook_url.as_deref(), Some(hooks.url.as_str()));

        // Rotating the signing secret: confirmed, shown once; the receiver that still knows
        // only the old secret keeps verifying during the grace period.
        let page = a.get("/console/rotate/webhook-secret").await;
        assert_eq!(page.status, 200);
        let page = a
            .post("/console/rotate/webhook-secret", &[("csrf", &csrf)])
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(
            page.body.contains("id=\"new-secret\">whsec_"),
            "{}",
            page.body
        );
        assert!(page.body.contains("id=\"previous-until\""));
        let (status, p) = api.act(&id, "capture", &json!({}), "cap-s1").await;
        assert_eq!(status, 200, "{p}");
        hooks.wait_for(&id, &["payment.captured"], T).await;
        assert!(hooks.rejected().is_empty(), "{:?}", hooks.rejected());

        // Rotating the API key: both keys work for a day; the new one is shown once.
        let page = a
            .post("/console/rotate/api-key", &[("csrf", "forged")])
            .await;
        assert_eq!(page.status, 403);
        let page = a.post("/console/rotate/api-key", &[("csrf", &csrf)]).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let start_at = page.body.find("id=\"new-secret\">").unwrap() + "id=\"new-secret\">".len();
        let end = page.body[start_at..].find('<').unwrap() + start_at;
        let new_key = page.body[start_at..end].to_owned();
        assert!(new_key.starts_with("x402_sk_"));
        for k in [key.as_str(), new_key.as_str()] {
            let (status, _) = Api::new(&op, k).get("/v1/merchant").await;
            assert_eq!(status, 200, "{k}");
        }
        assert_eq!(a.get("/console/rotate/everything").await.status, 404);

        // The payments list's filters, checked by the REST list's parser.
        let page = a.get("/console/payments?status=captured").await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(
            page.body.contains(&format!("/console/payments/{id}\"")),
            "{}",
            page.body
        );
        assert!(page.body.contains("<option value=\"captured\" selected>"));
        let page = a.get("/console/payments?status=voided").await;
        assert!(page.body.contains("id=\"no-payments\""), "{}", page.body);
        let payer = chain.payer.address().to_string();
        let page = a
            .get(&format!(
                "/console/payments?payer={payer}&min_amount={USDC}&max_amount={USDC}"
            ))
            .await;
        assert!(
            page.body.contains(&format!("/console/payments/{id}\"")),
            "{}",
            page.body
        );
        let page = a
            .get(&format!("/console/payments?min_amount={}", USDC + 1))
            .await;
        assert!(page.body.contains("id=\"no-payments\""), "{}", page.body);
        for (query, code) in [
            ("status=paid", "invalid_status_filter"),
            ("created_after=soon", "invalid_time_filter"),
            ("payer=0x1", "invalid_payer_filter"),
            ("min_amount=2&max_amount=1", "invalid_amount_filter"),
            ("cursor=nope", "invalid_cursor"),
        ] {
            let page = a.get(&format!("/console/payments?{query}")).await;
            assert_eq!(page.status, 400, "{query}");
            assert_eq!(refusal_code(&page.body), code, "{query}");
        }
        // A filtered list pages with a link carrying its filters.
        let (_, second) = api
            .authorize_payment(&chain, USDC, op.signer, "req-settings-2", "auth-s2")
            .await;
        let page = a
            .get("/console/payments?status=authorized,captured&limit=1")
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
        let second_id = second["id"].as_str().unwrap();
        assert!(
            page.body
                .contains(&format!("/console/payments/{second_id}\""))
        );
        let marker = "id=\"older\"";
        assert!(page.body.contains(marker), "{}", page.body);
        let href_start = page
            .body
            .find("<a href=\"/console/payments?status=")
            .expect("older link")
            + "<a href=\"".len();
        let href_end = page.body[href_start..].find('"').unwrap() + href_start;
        let older = page.body[href_start..href_end]
            .replace("&#38;", "&")
            .replace("&amp;", "&");
        assert!(older.contains("&limit=1&cursor="), "{older}");
        let page = a.get(&older).await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(
            page.body.contains(&format!("/console/payments/{id}\"")),
            "{}",
            page.body
        );
        assert!(
            !page
                .body
                .contains(&format!("/console/payments/{second_id}\"")),
            "the next page starts after the first: {}",
            page.body
        );
        drop(hooks);
        op.shutdown().await;
    })
    .await;
}
