//! `x402-escrow gateway`: a paying reverse proxy in front of an upstream test server, with a
//! real operator on anvil and the SDK's BuyerClient.

const BIN: &str = env!("CARGO_BIN_EXE_x402-escrow");

#[allow(dead_code)]
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::{get, post};
use x402_escrow_demo::{Stack, USDC};
use x402_escrow_gateway::{
    self as gateway, RouteParseError, parse_latency_cap, parse_route, parse_routes,
};

#[test]
fn routes_parse_strictly() {
    let route = parse_route("GET /weather=$0.01", 6).expect("valid");
    assert_eq!(route.spec(), "GET /weather");
    assert_eq!(route.amount.to_string(), "10000");
    assert_eq!(
        parse_route(" POST /v1/x = 2 ", 6)
            .expect("valid")
            .amount
            .to_string(),
        "2000000"
    );

    let kind = |s: &str| match parse_route(s, 6) {
        Ok(_) => "valid",
        Err(RouteParseError::Shape(_)) => "shape",
        Err(RouteParseError::Method { .. }) => "method",
        Err(RouteParseError::Path { .. }) => "path",
        Err(RouteParseError::Price { .. }) => "price",
        Err(_) => "another error",
    };
    for (bad, want) in [
        ("GET /weather", "shape"),
        ("/weather=$0.01", "shape"),
        ("get /weather=$0.01", "method"),
        ("FETCH /w=$0.01", "method"),
        ("GET weather=$0.01", "path"),
        ("GET /w?x=1=$0.01", "path"),
        ("GET /a b=$0.01", "path"),
        ("GET /w=", "price"),
        ("GET /w=$", "price"),
        ("GET /w=abc", "price"),
        ("GET /w=-1", "price"),
        ("GET /w=$0", "price"),
        ("GET /w=0.0000001", "price"),
    ] {
        assert_eq!(kind(bad), want, "{bad}: {:?}", parse_route(bad, 6));
    }
    // `max:PRICE`: metered, the price a maximum.
    let metered = parse_route("GET /summarize=max:$0.50", 6).expect("valid");
    assert!(metered.metered);
    assert_eq!(metered.amount.to_string(), "500000");
    assert!(!route.metered);
    assert_eq!(kind("GET /summarize=max:"), "price");
    assert_eq!(kind("GET /summarize=max:$0"), "price");
    let dup = parse_routes(&["GET /a=$1".into(), "GET /a=$2".into()], 6);
    assert_eq!(dup, Err(RouteParseError::Duplicate("GET /a".into())));
    let err = parse_route("GET /w=abc", 6).unwrap_err().to_string();
    assert!(
        err.contains("\"GET /w=abc\"") && err.contains("price"),
        "{err}"
    );
}

#[test]
fn latency_cap_parses_strictly_and_covers_the_routes_within_it() {
    use clap::Parser as _;
    assert_eq!(
        parse_latency_cap("$0.05", 6).expect("valid").to_string(),
        "50000"
    );
    assert_eq!(
        parse_latency_cap(" 1 ", 6).expect("valid").to_string(),
        "1000000"
    );
    for bad in ["", " ", "abc", "$", "$0", "0", "-1", "0.0000001"] {
        assert!(
            matches!(
                parse_latency_cap(bad, 6),
                Err(RouteParseError::LatencyCap { .. })
            ),
            "{bad:?}: {:?}",
            parse_latency_cap(bad, 6)
        );
    }
    let err = parse_latency_cap("abc", 6).unwrap_err().to_string();
    assert!(err.contains("--latency-cap \"abc\""), "{err}");

    // Off unless asked; on for the routes priced within the cap.
    let mut routes = parse_routes(&["GET /cheap=$0.01".into(), "GET /dear=$1".into()], 6).unwrap();
    assert!(routes.iter().all(|r| !r.latency_mode()), "off by default");
    let cap = parse_latency_cap("$0.05", 6).unwrap();
    for route in &mut routes {
        route.latency_cap = Some(cap);
    }
    assert!(routes[0].latency_mode());
    assert!(!routes[1].latency_mode(), "priced above the cap");

    let argv = [
        "gateway",
        "--upstream",
        "http://127.0.0.1:9",
        "--route",
        "GET /a=$1",
        "--operator",
        "http://127.0.0.1:8",
        "--api-key",
        "k",
    ];
    let off = GatewayCli::try_parse_from(argv).expect("parses");
    assert_eq!(off.args.latency_cap, None);
    let on = GatewayCli::try_parse_from(argv.iter().copied().chain(["--latency-cap", "$0.05"]))
        .expect("parses");
    assert_eq!(on.args.latency_cap.as_deref(), Some("$0.05"));
}

#[derive(Default)]
struct Seen {
    requests: Vec<(String, HeaderMap)>,
}

fn upstream(seen: Arc<Mutex<Seen>>) -> Router {
    let record = move |name: &'static str| {
        let seen = seen.clone();
        move |uri: Uri, headers: HeaderMap| {
            let seen = seen.clone();
            async move {
                seen.lock()
                    .unwrap()
                    .requests
                    .push((format!("{name} {uri}"), headers));
            }
        }
    };
    let ok = record("ok");
    let fail = record("fail");
    let free = record("free");
    Router::new()
        .route(
            "/ok",
            get(move |uri: Uri, headers: HeaderMap| async move {
                ok(uri, headers).await;
                ([("x-upstream", "yes")], "hello from upstream")
            }),
        )
        .route(
            "/fail",
            get(move |uri: Uri, headers: HeaderMap| async move {
                fail(uri, headers).await;
                (StatusCode::INTERNAL_SERVER_ERROR, "upstream broke")
            }),
        )
        .route(
            "/free",
            post(
                move |uri: Uri, headers: HeaderMap, body: String| async move {
                    free(uri.clone(), headers).await;
                    format!("free {} {body}", uri.query().unwrap_or(""))
                },
            ),
        )
}

async fn serve(app: Router) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (url, x402_escrow_demo::serve_app(listener, app))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_captures_on_2xx_voids_otherwise_and_passes_free_routes() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("x402_escrow_operator::engine=info")
        .with_test_writer()
        .try_init();
    let stack = Stack::start(BIN.as_ref(), None, None).await.expect("stack");
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (upstream_url, _stop_upstream) = serve(upstream(seen.clone())).await;

    let routes = parse_routes(&["GET /ok=$0.01".into(), "GET /fail=$0.02".into()], 6).unwrap();
    let layer = gateway::layer(stack.operator_client(), stack.payments_config(), &routes).unwrap();
    let app = gateway::router(&upstream_url, layer, Duration::from_secs(10)).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway_url = format!("http://{}", listener.local_addr().unwrap());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(gateway::serve(listener, app, async {
        let _ = stop_rx.await;
    }));

    let buyer = stack
        .buyer(stack.policy(USDC), &stack.dir().join("ledger.json"))
        .unwrap();

    // Unpaid: 402 from the gateway, the upstream never sees it.
    let unpaid = reqwest::get(format!("{gateway_url}/ok")).await.unwrap();
    assert_eq!(unpaid.status(), 402);
    assert!(seen.lock().unwrap().requests.is_empty());

    // 200 upstream → captured.
    let before = stack.balances().await.unwrap();
    let paid = buyer
        .get(format!("{gateway_url}/ok?city=lisbon"))
        .await
        .expect("paid");
    assert_eq!(paid.response.status(), 200);
    assert_eq!(paid.response.headers()["x-upstream"], "yes");
    let outcome = paid.payment.clone().expect("a payment");
    assert_eq!(paid.response.text().await.unwrap(), "hello from upstream");
    let id = outcome
        .merchant_payment_id
        .clone()
        .expect("operator payment id");
    let payment = stack.wait_for(&id, "captured").await.expect("captured");
    assert_eq!(payment.amounts.captured.to_string(), "10000");
    let after = stack.balances().await.unwrap();
    assert_eq!(
        before.payer - after.payer,
        alloy::primitives::U256::from(10_000u64)
    );
    assert_eq!(
        after.merchant - before.merchant,
        alloy::primitives::U256::from(9_900u64)
    );
    {
        let seen = seen.lock().unwrap();
        let (what, headers) = seen.requests.last().unwrap();
        assert_eq!(what, "ok /ok?city=lisbon");
        assert!(headers.get("payment-signature").is_none() && headers.get("x-payment").is_none());
        assert!(headers.get("x-request-id").is_some());
    }

    // 500 upstream → voided, the payer is whole.
    let before = stack.balances().await.unwrap();
    let failed = buyer
        .get(format!("{gateway_url}/fail"))
        .await
        .expect("sent");
    assert_eq!(failed.response.status(), 500);
    let outcome = failed.payment.clone().expect("a payment");
    assert!(
        outcome.void_expected || outcome.status.name() == "voided",
        "{outcome:?}"
    );
    let id = outcome
        .merchant_payment_id
        .clone()
        .expect("operator payment id");
    let payment = stack.wait_for(&id, "voided").await.expect("voided");
    assert_eq!(payment.amounts.captured.to_string(), "0");
    let after = stack.balances().await.unwrap();
    assert_eq!(after.payer, before.payer);
    assert_eq!(after.merchant, before.merchant);
    assert_eq!(after.escrow, before.escrow);

    // Unlisted route: forwarded as is (method, query, body), free.
    let free = reqwest::Client::new()
        .post(format!("{gateway_url}/free?a=1&b=2"))
        .header("x-custom", "kept")
        .body("payload")
        .send()
        .await
        .unwrap();
    assert_eq!(free.status(), 200);
    assert!(free.headers().get("payment-response").is_none());
    assert_eq!(free.text().await.unwrap(), "free a=1&b=2 payload");
    assert_eq!(
        seen.lock().unwrap().requests.last().unwrap().1["x-custom"],
        "kept"
    );
    let unchanged = stack.balances().await.unwrap();
    assert_eq!(unchanged, after);

    // Unknown path: the upstream's 404 comes back, nothing charged.
    let missing = reqwest::get(format!("{gateway_url}/nope")).await.unwrap();
    assert_eq!(missing.status(), 404);

    let _ = stop_tx.send(());
    served.await.unwrap().unwrap();
    stack.shutdown().await;
}

/// `x402-escrow gateway`'s command line, for building its settings as the binary does.
#[derive(clap::Parser)]
struct GatewayCli {
    #[command(flatten)]
    args: gateway::GatewayArgs,
}

fn gateway_args(stack: &Stack, upstream: &str, extra: &[&str]) -> gateway::GatewayArgs {
    use clap::Parser as _;
    let operator = stack.operator_client();
    let mut argv = vec![
        "gateway".to_owned(),
        "--operator".to_owned(),
        operator.base_url().to_owned(),
        "--api-key".to_owned(),
        stack.api_key.clone(),
        "--upstream".to_owned(),
        upstream.to_owned(),
        "--route".to_owned(),
        "GET /ok=$0.01".to_owned(),
        "--route".to_owned(),
        "GET /fail=$0.02".to_owned(),
    ];
    argv.extend(extra.iter().map(|s| (*s).to_owned()));
    GatewayCli::try_parse_from(argv).expect("arguments").args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_reads_the_operators_terms_and_offers_each_flow() {
    let stack = Stack::start(BIN.as_ref(), None, None).await.expect("stack");
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (upstream_url, _stop_upstream) = serve(upstream(seen.clone())).await;
    let terms = gateway::fetch_terms(&stack.operator_client(), Duration::from_secs(5))
        .await
        .expect("terms");
    assert_eq!(terms.receivers, vec![stack.merchant]);
    assert_eq!(terms.capture_authorizer, stack.operator_signer);

    // Nothing but the operator, the key, the upstream and the routes: everything else comes from
    // the operator's terms.
    let config = gateway::payments_config(&gateway_args(&stack, &upstream_url, &[]), &terms)
        .expect("agrees");
    assert_eq!(config.pay_to, stack.merchant);
    assert_eq!(config.asset.address, stack.token.address);
    assert_eq!(config.escrow, Some(stack.deployment.auth_capture_escrow));
    assert_eq!(
        config.payment_flow,
        x402_escrow_sdk::merchant::PaymentFlow::Escrow
    );
    assert!(!config.offer_exact);

    // A flag the operator would refuse at payment time is refused now, naming both settings.
    let error = gateway::payments_config(
        &gateway_args(&stack, &upstream_url, &["--max-fee-bps", "0"]),
        &terms,
    )
    .expect_err("fee outside the range");
    let text = format!("{:#}", eyre::Report::new(error));
    assert!(text.contains("fees.bps (100)"), "{text}");
    assert!(
        text.contains("PaymentsConfig::min_fee_bps..max_fee_bps"),
        "{text}"
    );
    let stranger = "0x000000000000000000000000000000000000dEaD";
    let error = gateway::payments_config(
        &gateway_args(&stack, &upstream_url, &["--pay-to", stranger]),
        &terms,
    )
    .expect_err("not a receiver");
    let text = format!("{:#}", eyre::Report::new(error));
    assert!(text.contains("PaymentsConfig::pay_to"), "{text}");

    // --transfer-method: one auth-capture offer per method, in the order given (the demo
    // stack's escrow has a Permit2 collector).
    use x402_escrow_sdk::schemes::auth_capture::AssetTransferMethod;
    let config = gateway::payments_config(
        &gateway_args(
            &stack,
            &upstream_url,
            &[
                "--transfer-method",
                "permit2",
                "--transfer-method",
                "eip3009",
            ],
        ),
        &terms,
    )
    .expect("agrees");
    assert_eq!(
        config.asset_transfer_methods,
        vec![AssetTransferMethod::Permit2, AssetTransferMethod::Eip3009]
    );
    let routes = parse_routes(&["GET /ok=$0.01".into()], 6).unwrap();
    let layer = gateway::layer(stack.operator_client(), config, &routes).unwrap();
    let app = gateway::router(&upstream_url, layer, Duration::from_secs(10)).unwrap();
    let (methods_url, stop_methods) = serve(app).await;
    let unpaid = reqwest::get(format!("{methods_url}/ok")).await.unwrap();
    assert_eq!(unpaid.status(), 402);
    let header = unpaid.headers()["payment-required"].as_bytes().to_vec();
    let challenge =
        x402_escrow_sdk::wire::codec::decode_payment_required(header).expect("challenge");
    let methods: Vec<AssetTransferMethod> = challenge
        .accepts
        .iter()
        .map(|a| a.auth_capture_extra().expect("extra").transfer_method())
        .collect();
    assert_eq!(
        methods,
        vec![AssetTransferMethod::Permit2, AssetTransferMethod::Eip3009]
    );
    let _ = stop_methods.send(());

    // --flow authorization: charged before forwarding; a 2xx keeps it, a 500 refunds it all.
    let config = gateway::payments_config(
        &gateway_args(
            &stack,
            &upstream_url,
            &["--flow", "authorization", "--offer-exact"],
        ),
        &terms,
    )
    .expect("agrees");
    assert_eq!(
        config.payment_flow,
        x402_escrow_sdk::merchant::PaymentFlow::Authorization
    );
    assert!(config.offer_exact);
    let routes = parse_routes(&["GET /ok=$0.01".into(), "GET /fail=$0.02".into()], 6).unwrap();
    let layer = gateway::layer(stack.operator_client(), config, &routes).unwrap();
    let app = gateway::router(&upstream_url, layer, Duration::from_secs(10)).unwrap();
    let (gateway_url, stop) = serve(app).await;

    let unpaid = reqwest::get(format!("{gateway_url}/ok")).await.unwrap();
    assert_eq!(unpaid.status(), 402);
    let header = unpaid.headers()["payment-required"].as_bytes().to_vec();
    let challenge =
        x402_escrow_sdk::wire::codec::decode_payment_required(header).expect("challenge");
    let schemes: Vec<&str> = challenge
        .accepts
        .iter()
        .map(|a| a.scheme.as_str())
        .collect();
    assert_eq!(schemes, vec!["auth-capture", "exact"]);
    let extra = challenge.accepts[0].auth_capture_extra().expect("extra");
    assert_eq!(
        extra.flow(),
        x402_escrow_sdk::merchant::PaymentFlow::Authorization
    );

    let buyer = stack
        .buyer(stack.policy(USDC), &stack.dir().join("ledger.json"))
        .unwrap();
    let before = stack.balances().await.unwrap();
    let paid = buyer.get(format!("{gateway_url}/ok")).await.expect("paid");
    assert_eq!(paid.response.status(), 200);
    let id = paid
        .payment
        .clone()
        .and_then(|p| p.merchant_payment_id)
        .expect("operator payment id");
    let payment = stack.wait_for(&id, "captured").await.expect("charged");
    assert_eq!(payment.amounts.captured.to_string(), "10000");
    let after = stack.balances().await.unwrap();
    assert_eq!(
        before.payer - after.payer,
        alloy::primitives::U256::from(10_000u64)
    );
    assert_eq!(after.escrow, before.escrow, "a charge holds nothing");

    let before = stack.balances().await.unwrap();
    let failed = buyer
        .get(format!("{gateway_url}/fail"))
        .await
        .expect("sent");
    assert_eq!(failed.response.status(), 500);
    let id = failed
        .payment
        .clone()
        .and_then(|p| p.merchant_payment_id)
        .expect("operator payment id");
    let payment = stack.wait_for(&id, "refunded").await.expect("refunded");
    assert_eq!(payment.amounts.refunded.to_string(), "20000");
    let after = stack.balances().await.unwrap();
    assert_eq!(after.payer, before.payer, "the whole amount came back");
    // The refund is paid from the operator's refund account and charged to the merchant's refund
    // reserve (the demo stack credits it), so the merchant's receiver keeps the charge.
    assert_eq!(
        after.merchant - before.merchant,
        alloy::primitives::U256::from(19_800u64)
    );
    assert_eq!(
        before.operator_float - after.operator_float,
        alloy::primitives::U256::from(20_000u64)
    );

    let _ = stop.send(());
    stack.shutdown().await;
}

/// An upstream that prices its work: `/summarize` used a quarter of the cent it may charge,
/// `/bad-meter` sends a price that is not an amount.
fn metered_upstream() -> Router {
    Router::new()
        .route(
            "/summarize",
            get(|| async { ([(gateway::METERED_PRICE_HEADER, "2500")], "summary") }),
        )
        .route(
            "/bad-meter",
            get(|| async { ([(gateway::METERED_PRICE_HEADER, "lots")], "summary") }),
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_metered_routes_capture_the_upstreams_price_and_release_the_rest() {
    let stack = Stack::start(BIN.as_ref(), None, None).await.expect("stack");
    let (upstream_url, _stop_upstream) = serve(metered_upstream()).await;
    let routes = parse_routes(
        &[
            "GET /summarize=max:$0.01".into(),
            "GET /bad-meter=max:$0.01".into(),
        ],
        6,
    )
    .unwrap();
    let layer = gateway::layer(stack.operator_client(), stack.payments_config(), &routes).unwrap();
    let app = gateway::router(&upstream_url, layer, Duration::from_secs(10)).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway_url = format!("http://{}", listener.local_addr().unwrap());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(gateway::serve(listener, app, async {
        let _ = stop_rx.await;
    }));
    let buyer = stack
        .buyer(stack.policy(USDC), &stack.dir().join("ledger.json"))
        .unwrap();

    // The buyer authorizes up to $0.01; the upstream priced its work at 2,500 units: that is
    // captured, the rest released, and the price header never reaches the buyer.
    let before = stack.balances().await.unwrap();
    let paid = buyer
        .get(format!("{gateway_url}/summarize"))
        .await
        .expect("paid");
    assert_eq!(paid.response.status(), 200);
    assert!(
        paid.response
            .headers()
            .get(gateway::METERED_PRICE_HEADER)
            .is_none()
    );
    let id = paid
        .payment
        .clone()
        .expect("a payment")
        .merchant_payment_id
        .expect("operator payment id");
    assert_eq!(paid.response.text().await.unwrap(), "summary");
    let payment = stack.wait_for(&id, "captured").await.expect("captured");
    assert_eq!(payment.amounts.authorized.to_string(), "10000");
    assert_eq!(payment.amounts.captured.to_string(), "2500");
    assert_eq!(payment.amounts.capturable.to_string(), "0");
    let after = stack.balances().await.unwrap();
    assert_eq!(
        before.payer - after.payer,
        alloy::primitives::U256::from(2_500u64)
    );
    assert_eq!(
        after.merchant - before.merchant,
        alloy::primitives::U256::from(2_475u64),
        "the price less the 1% fee"
    );
    assert_eq!(after.escrow, before.escrow, "nothing left in escrow");

    // A price that is not an amount is a failed request: nothing captured, the payer whole.
    let before = stack.balances().await.unwrap();
    let failed = buyer
        .get(format!("{gateway_url}/bad-meter"))
        .await
        .expect("sent");
    assert_eq!(failed.response.status(), 502);
    let id = failed
        .payment
        .clone()
        .expect("a payment")
        .merchant_payment_id
        .expect("operator payment id");
    let payment = stack.wait_for(&id, "voided").await.expect("voided");
    assert_eq!(payment.amounts.captured.to_string(), "0");
    let after = stack.balances().await.unwrap();
    assert_eq!(after.payer, before.payer);
    assert_eq!(after.merchant, before.merchant);

    let _ = stop_tx.send(());
    served.await.unwrap().unwrap();
    stack.shutdown().await;
}
