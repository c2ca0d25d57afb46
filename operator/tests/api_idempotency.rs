//! `Idempotency-Key` through the HTTP API, on SQLite and on PostgreSQL (fresh database per test,
//! see `store_support`): replay byte for byte (errors included), 422 on a different body, 409
//! while in flight, 400 when missing or malformed, keys scoped per merchant, expiry, 5xx not
//! stored.

mod api_support;
mod store_support;

use std::time::Duration;

use api_support::*;
use axum::http::StatusCode;
use store_support::Ctx;
use x402_escrow_operator::api::IdempotencySettings;

const RETENTION: Duration = Duration::from_secs(24 * 3600);

async fn app(ctx: &Ctx, service: FakeService) -> App {
    app_with(ctx.store.clone(), service, |state| {
        state.idempotency = IdempotencySettings {
            retention: RETENTION,
            in_flight_timeout: Duration::from_secs(60),
        };
    })
    .await
}

async fn replay_after_completion_is_byte_identical(ctx: Ctx) {
    let app = app(&ctx, FakeService::default()).await;
    let call = || {
        Call::post("/v1/payments/authorize")
            .key(KEY_A)
            .idem("order-1")
            .json(&authorize_body("1000", "r1"))
    };
    let first = call().send(&app.router).await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(first.header("idempotent-replayed"), None);
    let second = call().send(&app.router).await;
    assert_eq!(second.status, StatusCode::CREATED);
    assert_eq!(
        second.body, first.body,
        "replayed body must be byte-identical"
    );
    assert_eq!(second.header("idempotent-replayed"), Some("true"));
    assert_eq!(second.header("content-type"), Some("application/json"));
    assert_eq!(app.service.calls(), 1, "the handler ran once");

    // the bare-token form names the same key
    let third = Call::post("/v1/payments/authorize")
        .key(KEY_A)
        .header("idempotency-key", "order-1")
        .json(&authorize_body("1000", "r1"))
        .send(&app.router)
        .await;
    assert_eq!(third.body, first.body);
    assert_eq!(app.service.calls(), 1);
}

async fn error_responses_are_replayed(ctx: Ctx) {
    let app = app(&ctx, FakeService::default()).await;
    let call = || {
        Call::post("/v1/payments/authorize")
            .key(KEY_A)
            .idem("declined")
            .json(&authorize_body("1000", "fail"))
    };
    let first = call().send(&app.router).await;
    assert_eq!(first.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(first.code(), "insufficient_funds");
    let second = call().send(&app.router).await;
    assert_eq!(second.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(second.body, first.body);
    assert_eq!(second.header("idempotent-replayed"), Some("true"));
    assert_eq!(app.service.calls(), 1);

    // a 404 from the service is replayed too
    let missing = uuid::Uuid::now_v7();
    let call = || {
        Call::post(format!("/v1/payments/{missing}/void"))
            .key(KEY_A)
            .idem("void-missing")
    };
    let a = call().send(&app.router).await;
    let b = call().send(&app.router).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!((b.status, &b.body), (a.status, &a.body));
    assert_eq!(b.header("idempotent-replayed"), Some("true"));
}

async fn server_errors_are_not_stored(ctx: Ctx) {
    let app = app(&ctx, FakeService::default()).await;
    let call = || {
        Call::post("/v1/payments/authorize")
            .key(KEY_A)
            .idem("outage")
            .json(&authorize_body("1000", "boom"))
    };
    let first = call().send(&app.router).await;
    assert_eq!(first.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(first.code(), "chain_unavailable");
    let second = call().send(&app.router).await;
    assert_eq!(second.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(second.header("idempotent-replayed"), None);
    assert_eq!(
        app.service.calls(),
        2,
        "a 5xx releases the key: the retry runs again"
    );
}

async fn same_key_different_body_is_422(ctx: Ctx) {
    let app = app(&ctx, FakeService::default()).await;
    let _ = authorize(&app, KEY_A, "k", "1000", "r1").await;
    let reply = Call::post("/v1/payments/authorize")
        .key(KEY_A)
        .idem("k")
        .json(&authorize_body("1001", "r1"))
        .send(&app.router)
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.code(), "idempotency_key_reused");
    // a different path with the same key and body is a different request too
    let id = authorize(&app, KEY_A, "k2", "10", "r2").await;
    let reply = act(&app, KEY_A, &id, "void", "k", None).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.service.calls(), 2);
}

async fn concurrent_retry_is_409(ctx: Ctx) {
    let (service, gate) = FakeService::gated();
    let app = app(&ctx, service).await;
    let router = app.router.clone();
    let first = tokio::spawn(async move {
        Call::post("/v1/payments/authorize")
            .key(KEY_A)
            .idem("slow")
            .json(&authorize_body("1000", "r1"))
            .send(&router)
            .await
    });
    // wait until the first request is inside the service (its key is in flight)
    let entered = app.service.entered.clone();
    tokio::time::timeout(Duration::from_secs(10), entered.acquire())
        .await
        .expect("first request reached the service")
        .expect("semaphore")
        .forget();

    let retry = Call::post("/v1/payments/authorize")
        .key(KEY_A)
        .idem("slow")
        .json(&authorize_body("1000", "r1"))
        .send(&app.router)
        .await;
    assert_eq!(retry.status, StatusCode::CONFLICT);
    assert_eq!(retry.code(), "idempotency_key_in_flight");
    // a different body while in flight is still a reuse
    let other = Call::post("/v1/payments/authorize")
        .key(KEY_A)
        .idem("slow")
        .json(&authorize_body("5", "r1"))
        .send(&app.router)
        .await;
    assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY);

    gate.add_permits(1);
    let first = first.await.expect("first request");
    assert_eq!(first.status, StatusCode::CREATED);
    let after = Call::post("/v1/payments/authorize")
        .key(KEY_A)
        .idem("slow")
        .json(&authorize_body("1000", "r1"))
        .send(&app.router)
        .await;
    assert_eq!(after.body, first.body);
    assert_eq!(app.service.calls(), 1);
}

async fn missing_or_malformed_key_is_400(ctx: Ctx) {
    let app = app(&ctx, FakeService::default()).await;
    let reply = Call::post("/v1/payments/authorize")
        .key(KEY_A)
        .json(&authorize_body("1000", "r1"))
        .send(&app.router)
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.code(), "idempotency_key_missing");

    let too_long = format!("\"{}\"", "k".repeat(256));
    let max = format!("\"{}\"", "k".repeat(255));
    for bad in [
        "\"caf\u{e9}\"",
        "\"\"",
        "\"unterminated",
        "\"a\"b",
        "\"tab\there\"",
        "two words",
        "\"bad\\escape\"",
        too_long.as_str(),
        "",
    ] {
        let reply = Call::post("/v1/payments/authorize")
            .key(KEY_A)
            .header("idempotency-key", bad)
            .json(&authorize_body("1000", "r1"))
            .send(&app.router)
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "key {bad:?}");
        assert_eq!(reply.code(), "invalid_request", "key {bad:?}");
    }
    assert_eq!(app.service.calls(), 0);

    // an escaped quote and the longest key are fine
    for good in ["\"with \\\"quote\\\"\"", max.as_str()] {
        let reply = Call::post("/v1/payments/authorize")
            .key(KEY_A)
            .header("idempotency-key", good)
            .json(&authorize_body("1000", "r1"))
            .send(&app.router)
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "key {good:?}");
    }
    // GETs need no key
    let reply = Call::get("/v1/payments?request_id=r1")
        .key(KEY_A)
        .send(&app.router)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
}

async fn keys_are_scoped_per_merchant(ctx: Ctx) {
    let app = app(&ctx, FakeService::default()).await;
    let a = Call::post("/v1/payments/authorize")
        .key(KEY_A)
        .idem("same")
        .json(&authorize_body("1000", "r1"))
        .send(&app.router)
        .await;
    let b = Call::post("/v1/payments/authorize")
        .key(KEY_B)
        .idem("same")
        .json(&authorize_body("1000", "r1"))
        .send(&app.router)
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(b.status, StatusCode::CREATED);
    assert_eq!(b.header("idempotent-replayed"), None);
    assert_ne!(a.json()["id"], b.json()["id"]);
    assert_eq!(b.json()["merchantId"], app.merchant_b.id.to_string());
    // and B's different body under the same key is not a mismatch with A's
    let b2 = Call::post("/v1/payments/authorize")
        .key(KEY_B)
        .idem("other")
        .json(&authorize_body("7", "r1"))
        .send(&app.router)
        .await;
    assert_eq!(b2.status, StatusCode::CREATED);
    assert_eq!(app.service.calls(), 3);
}

async fn keys_expire_after_retention(ctx: Ctx) {
    let app = app(&ctx, FakeService::default()).await;
    let first = Call::post("/v1/payments/authorize")
        .key(KEY_A)
        .idem("old")
        .json(&authorize_body("1000", "r1"))
        .send(&app.router)
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    // just before the end of retention: still replayed
    ctx.clock.advance(RETENTION.as_millis() as i64 - 1);
    let replay = Call::post("/v1/payments/authorize")
        .key(KEY_A)
        .idem("old")
        .json(&authorize_body("1000", "r1"))
        .send(&app.router)
        .await;
    assert_eq!(replay.body, first.body);
    // after it: the key is free again, even for another body
    ctx.clock.advance(1);
    let fresh = Call::post("/v1/payments/authorize")
        .key(KEY_A)
        .idem("old")
        .json(&authorize_body("2000", "r1"))
        .send(&app.router)
        .await;
    assert_eq!(fresh.status, StatusCode::CREATED);
    assert_eq!(fresh.header("idempotent-replayed"), None);
    assert_eq!(fresh.json()["amounts"]["authorized"], "2000");
    // the expiry sweep deletes what is past retention
    ctx.clock.advance(RETENTION.as_millis() as i64);
    assert_eq!(ctx.store.idempotency_expire().await.expect("expire"), 1);
    assert_eq!(app.service.calls(), 2);
}

async fn abandoned_in_flight_key_is_taken_over(ctx: Ctx) {
    let app = app(&ctx, FakeService::default()).await;
    // a request that died mid-flight: the key is in flight with this request's fingerprint
    let body = serde_json::to_vec(&authorize_body("1000", "r1")).expect("json");
    let fingerprint =
        x402_escrow_operator::store::request_fingerprint("POST", "/v1/payments/authorize", &body);
    let begun = ctx
        .store
        .idempotency_begin(
            app.merchant_a.id,
            "crashed",
            &fingerprint,
            86_400_000,
            60_000,
        )
        .await
        .expect("begin");
    assert_eq!(
        begun,
        x402_escrow_operator::store::IdempotencyBegin::Started
    );
    let call = || {
        Call::post("/v1/payments/authorize")
            .key(KEY_A)
            .idem("crashed")
            .header("content-type", "application/json")
            .raw(body.clone())
    };
    assert_eq!(call().send(&app.router).await.status, StatusCode::CONFLICT);
    ctx.clock.advance(60_001);
    assert_eq!(call().send(&app.router).await.status, StatusCode::CREATED);
}

async fn client_disconnect_does_not_cancel_the_action(ctx: Ctx) {
    let (service, gate) = FakeService::gated();
    let app = app(&ctx, service).await;
    let router = app.router.clone();
    let call = || {
        Call::post("/v1/payments/authorize")
            .key(KEY_A)
            .idem("hangup")
            .json(&authorize_body("1000", "r1"))
    };
    let first = tokio::spawn(async move { call().send(&router).await });
    app.service
        .entered
        .acquire()
        .await
        .expect("entered")
        .forget();
    // the client hangs up: its request future is dropped
    first.abort();
    let _ = first.await;
    gate.add_permits(1);
    // the action still completes and its response is stored for the retry
    let mut reply = call().send(&app.router).await;
    for _ in 0..100 {
        if reply.status != StatusCode::CONFLICT {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        reply = call().send(&app.router).await;
    }
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.header("idempotent-replayed"), Some("true"));
    assert_eq!(app.service.calls(), 1);
}

async fn racing_identical_requests_run_once(ctx: Ctx) {
    let app = app(&ctx, FakeService::default()).await;
    let mut tasks = vec![];
    for _ in 0..8 {
        let router = app.router.clone();
        tasks.push(tokio::spawn(async move {
            Call::post("/v1/payments/authorize")
                .key(KEY_A)
                .idem("race")
                .json(&authorize_body("1000", "r1"))
                .send(&router)
                .await
        }));
    }
    let mut bodies = vec![];
    for t in tasks {
        let reply = t.await.expect("task");
        match reply.status {
            StatusCode::CREATED => bodies.push(reply.body),
            StatusCode::CONFLICT => assert_eq!(reply.code(), "idempotency_key_in_flight"),
            other => panic!("unexpected {other}: {:?}", reply.body),
        }
    }
    assert!(!bodies.is_empty());
    assert!(
        bodies.iter().all(|b| *b == bodies[0]),
        "every 201 is the same payment"
    );
    assert_eq!(app.service.calls(), 1, "exactly one request ran");
}

store_tests!(
    client_disconnect_does_not_cancel_the_action,
    racing_identical_requests_run_once,
    replay_after_completion_is_byte_identical,
    error_responses_are_replayed,
    server_errors_are_not_stored,
    same_key_different_body_is_422,
    concurrent_retry_is_409,
    missing_or_malformed_key_is_400,
    keys_are_scoped_per_merchant,
    keys_expire_after_retention,
    abandoned_in_flight_key_is_taken_over,
);
