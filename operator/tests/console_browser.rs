//! The merchant console in a real headless browser (Debian's `chromium` driven through
//! `chromedriver` over WebDriver, with `fantoccini`), against a started operator on anvil and a
//! payment the buyer made through the SDK's merchant layer: sign in, find the payment by its
//! request id, refund half of it through the confirmation step, and see the refund on the
//! timeline and its webhook delivered.
//!
//! `tools/test` installs `chromium` and `chromium-driver` when `/usr/bin/chromedriver` is missing
//! and sets `X402_BROWSER_TESTS=required`. Run by hand without chromedriver (and without that
//! variable), the test says so and skips; with the variable set, a missing driver fails it.

mod operator_support;
mod store_support;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use fantoccini::{Client, ClientBuilder, Locator};
use operator_support::*;
use serde_json::json;
use x402_escrow_operator::store::{Backend, PaymentFilter};
use x402_escrow_sdk::buyer::{AssetLimits, BuyerClient, SpendLedger, SpendPolicy};
use x402_escrow_sdk::merchant::{PaymentRoute, Price};

/// How long one page step may take (an upper bound on waiting, not a timed assertion).
const STEP: Duration = Duration::from_secs(30);

fn chromedriver() -> Option<PathBuf> {
    let path = std::env::var_os("CHROMEDRIVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromedriver"));
    path.exists().then_some(path)
}

/// chromedriver on a free port, killed on drop.
struct Driver {
    child: std::process::Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_driver(path: &PathBuf) -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + STEP;
    loop {
        if let Ok(r) = reqwest::get(format!("{}/status", driver.url)).await
            && r.status().is_success()
        {
            return driver;
        }
        assert!(Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    let binary = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    caps.insert(
        "goog:chromeOptions".to_owned(),
        json!({
            "binary": binary,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,1600"],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("WebDriver session")
}

async fn find(c: &Client, css: &str) -> fantoccini::elements::Element {
    c.wait()
        .at_most(STEP)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} not found: {e}"))
}

async fn text(c: &Client, css: &str) -> String {
    find(c, css).await;
    text_until(c, css, |_| true).await
}

/// The text of `css` once `ready` holds for it (within [`STEP`]), finding the element again
/// when a navigation replaced it between finding and reading (a page that has the same element
/// before and after a click); the last text read otherwise.
async fn text_until(c: &Client, css: &str, ready: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + STEP;
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Ok(element) = c.find(Locator::Css(css)).await
            && let Ok(text) = element.text().await
        {
            if ready(&text) {
                return text;
            }
            last = text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_refunds_half_in_a_browser() {
    let Some(driver_path) = chromedriver() else {
        if std::env::var("X402_BROWSER_TESTS").as_deref() == Ok("required") {
            panic!(
                "X402_BROWSER_TESTS=required but chromedriver is missing (apt-get install chromium chromium-driver)"
            );
        }
        eprintln!(
            "SKIPPED console_refunds_half_in_a_browser: chromedriver is missing \
             (/usr/bin/chromedriver, or the path in CHROMEDRIVER; apt-get install chromium \
             chromium-driver, or run tools/test, which installs them)"
        );
        return;
    };
    with_db(Backend::Sqlite, |url| async move {
        let hooks = Hooks::start().await;
        let (chain, store, _m, key) = open_shop(&url, Some(&hooks)).await;
        let op = start(&config(&url, &chain)).await;
        chain.mint(op.signer, 20 * USDC).await;

        // ---- the buyer pays 2 USDC for /report through the merchant layer ---------------------
        let price = 2 * USDC;
        let app: Router = Router::new()
            .route("/report", get(|| async { "the report" }))
            .layer(
                layer(&op, &key, payments_config(&chain, &op))
                    .paid(PaymentRoute::new(Price::atomic(u128::from(price)))),
            );
        let shop = serve(app).await;
        let dir = tempfile::tempdir().unwrap();
        let policy = SpendPolicy::new(vec![AssetLimits::new(network(&chain), chain.token())]);
        let ledger = SpendLedger::open(dir.path().join("spend.json")).unwrap();
        let buyer = BuyerClient::new(reqwest::Client::new(), chain.payer.clone(), policy, ledger)
            .with_registry(registry(&chain));
        let paid = buyer
            .get(format!("{}/report", shop.base))
            .await
            .expect("paid");
        assert_eq!(paid.response.status(), 200);
        settle(&store, WAIT).await;
        let payments = store
            .list_payments(&PaymentFilter::default())
            .await
            .unwrap();
        assert_eq!(payments.len(), 1);
        let payment = &payments[0];
        let id = payment.id.to_string();
        let request_id = payment.request_id.clone().expect("request id");
        assert_eq!(payment.amounts.captured, u128::from(price));
        hooks
            .wait_for(&id, &["payment.authorized", "payment.captured"], WAIT)
            .await;

        // ---- the merchant signs in -------------------------------------------------------------
        let driver = start_driver(&driver_path).await;
        let c = browser(&driver).await;
        let base = format!("http://{}", op.address);
        c.goto(&format!("{base}/console")).await.unwrap();
        find(&c, "#api_key").await.send_keys(&key).await.unwrap();
        find(&c, "#sign-in").await.click().await.unwrap();
        assert_eq!(text(&c, "#merchant-name").await, "shop");
        find(&c, "#chart").await;

        // ---- finds the payment by its request id ---------------------------------------------
        find(&c, "#q").await.send_keys(&request_id).await.unwrap();
        find(&c, "#search").await.click().await.unwrap();
        // The list page has a heading before the search too: wait for the searched one.
        let heading = text_until(&c, "#list-heading", |h| h.contains(&request_id)).await;
        assert!(heading.contains(&request_id), "{heading}");
        let rows = c
            .find_all(Locator::Css("#payments tbody tr"))
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        find(&c, "#payments a.open").await.click().await.unwrap();
        assert_eq!(text(&c, "#payment-id").await, id);
        assert_eq!(text(&c, "#request-id").await, request_id);
        assert_eq!(text(&c, "#status").await, "captured");

        // ---- refunds half, through the confirmation step -------------------------------------
        let half = u128::from(price) / 2;
        let field = find(&c, "#refund-amount").await;
        field.clear().await.unwrap();
        field.send_keys(&half.to_string()).await.unwrap();
        find(&c, "#refund").await.click().await.unwrap();
        let summary = text(&c, "#summary").await;
        assert!(summary.contains(&format!("Refund {half}")), "{summary}");
        // Nothing happened before the confirmation.
        assert_eq!(
            store
                .get_payment(payment.id)
                .await
                .unwrap()
                .amounts
                .refunded,
            0
        );
        find(&c, "#confirm").await.click().await.unwrap();
        let notice = text(&c, "#notice").await;
        assert!(notice.contains("Refund sent"), "{notice}");
        assert_eq!(text(&c, "#status").await, "partially_refunded");
        assert!(text(&c, "#refunded").await.starts_with(&half.to_string()));
        let timeline = text(&c, "#timeline").await;
        assert!(timeline.contains("refund requested"), "{timeline}");
        assert!(timeline.contains("refund final"), "{timeline}");

        // ---- and sees the refund's webhook delivered (reloading while it is pending) ---------
        hooks
            .wait_for(
                &id,
                &["payment.authorized", "payment.captured", "payment.refunded"],
                WAIT,
            )
            .await;
        let deadline = Instant::now() + WAIT;
        loop {
            c.refresh().await.unwrap();
            let deliveries = text(&c, "#deliveries").await;
            let refunded = deliveries
                .lines()
                .skip_while(|l| !l.contains("payment.refunded"))
                .take(3)
                .collect::<Vec<_>>()
                .join(" ");
            if refunded.contains("delivered") && refunded.contains("204") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "refund delivery not shown: {deliveries}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }

        // The chain agrees: half refunded, once.
        assert_eq!(chain.state(payment.payment_hash).await, (true, 0, half));
        assert_eq!(count(&store, "chain_txs WHERE kind = 'refund'").await, 1);
        c.close().await.unwrap();
        drop(driver);
        drop(shop);
        settle(&store, WAIT).await;
        wind_down(op, store, &chain).await;
    })
    .await;
}
