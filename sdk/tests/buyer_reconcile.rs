//! Reconciliation: the status table, and a real run on anvil where a merchant authorizes the
//! buyer's payments on our escrow, then voids, captures and refunds them, and the buyer's
//! ledger learns from `paymentState` how much came back.

use std::sync::Arc;
use std::time::Duration;

use alloy::contract::{CallBuilder, CallDecoder};
use alloy::network::EthereumWallet;
use alloy::node_bindings::Anvil;
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::ext::AnvilApi;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionReceipt;
use alloy::signers::local::PrivateKeySigner;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use eyre::{Result, eyre};
use serde_json::json;
use x402_escrow_bindings::contracts::anvil_path;
use x402_escrow_bindings::deploy::DEFAULT_SALT;
use x402_escrow_bindings::{AuthCaptureEscrow, Deployment, TestUSDC, deploy_all};
use x402_escrow_sdk::buyer::{
    AssetLimits, BuyerClient, EscrowState, LedgerRecord, PaymentStatus, RetryPolicy, SpendLedger,
    SpendPolicy, reconcile, status_from_chain,
};
use x402_escrow_sdk::facilitator::SettleResponse;
use x402_escrow_sdk::schemes::auth_capture;
use x402_escrow_sdk::wire::codec;
use x402_escrow_sdk::wire::{PaymentRequired, PaymentRequirements, ResourceInfo, SchemePayload};
use x402_escrow_sdk::{Amount, EscrowDeployment, EscrowRegistry, Network};

fn record(status: PaymentStatus) -> LedgerRecord {
    LedgerRecord {
        id: "pay_x".into(),
        scheme: "auth-capture".into(),
        network: Network::ANVIL,
        asset: Address::repeat_byte(1),
        payee: Address::repeat_byte(2),
        host: "h".into(),
        resource: None,
        amount: Amount::from(100u64),
        status,
        created_at: 0,
        updated_at: 0,
        signed_at: Some(0),
        payment_hash: Some(B256::repeat_byte(3)),
        escrow: Some(Address::repeat_byte(4)),
        valid_before: Some(1_000),
        authorization_expiry: Some(5_000),
        transaction: None,
        void_expected: false,
    }
}

fn state(collected: bool, capturable: u64, refundable: u64) -> EscrowState {
    EscrowState {
        collected,
        capturable: Amount::from(capturable),
        refundable: Amount::from(refundable),
    }
}

#[test]
fn status_table() {
    use PaymentStatus::*;
    let refunded = |n: u64| Refunded {
        amount: Amount::from(n),
    };
    let cases = [
        // (ledger status, chain state, chain time, expected)
        (Reserved, state(false, 0, 0), 999, None),
        (Reserved, state(false, 0, 0), 1_000, Some(Failed)),
        (Failed, state(false, 0, 0), 2_000, None),
        (Reserved, state(true, 100, 0), 10, Some(Paid)),
        (Failed, state(true, 0, 100), 10, Some(Paid)),
        (Paid, state(true, 100, 0), 10, None),
        (Paid, state(true, 0, 0), 10, Some(Voided)),
        (Paid, state(true, 0, 70), 10, Some(refunded(30))),
        (Paid, state(true, 40, 0), 10, Some(refunded(60))),
        (refunded(30), state(true, 0, 70), 10, None),
        (refunded(30), state(true, 0, 0), 10, Some(refunded(100))),
        (Voided, state(true, 100, 0), 10, None),
        (Reclaimed, state(true, 0, 0), 10, None),
    ];
    for (from, chain, now, expected) in cases {
        assert_eq!(
            status_from_chain(&record(from), chain, now),
            expected,
            "{from:?} {chain:?} at {now}"
        );
    }
    // A void expected by the client is confirmed even without a status change.
    let mut expected_void = record(Paid);
    expected_void.void_expected = true;
    assert_eq!(
        status_from_chain(&expected_void, state(true, 100, 0), 10),
        Some(Paid)
    );
}

/// The merchant: authorizes each payment on chain, then acts by route.
struct Merchant {
    requirements: PaymentRequirements,
    registry: EscrowRegistry,
    escrow: AuthCaptureEscrow::AuthCaptureEscrowInstance<DynProvider>,
    collector: Address,
    fee_receiver: Address,
}

async fn route(
    State(m): State<Arc<Merchant>>,
    Path(mode): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(header) = headers.get(codec::PAYMENT_SIGNATURE) else {
        let challenge = PaymentRequired::new(
            ResourceInfo::new(format!("http://merchant.test/{mode}")),
            vec![m.requirements.clone()],
        );
        let encoded = codec::encode_payment_required(&challenge).expect("encode");
        return (
            StatusCode::PAYMENT_REQUIRED,
            [(codec::PAYMENT_REQUIRED, encoded)],
        )
            .into_response();
    };
    if mode == "ignore" {
        // Takes the signature and does nothing with it.
        return (StatusCode::NOT_FOUND, "gone").into_response();
    }
    let payment = codec::decode_payment_signature(header.as_bytes()).expect("payment");
    let derived = auth_capture::derive_from_payment_payload(&m.requirements, &payment, &m.registry)
        .expect("derive");
    let SchemePayload::AuthCapture(payload) = &payment.payload else {
        panic!("auth-capture payload expected");
    };
    let info = derived.payment_info.clone();
    let amount = m.requirements.amount.get();
    let authorize =
        m.escrow
            .authorize(info.clone(), amount, m.collector, payload.signature.clone());
    let authorized = mined(authorize).await.expect("authorize mined");
    assert!(authorized.status(), "authorize reverted");
    let tx = authorized.transaction_hash;
    let receipt = SettleResponse::success(
        tx,
        Network::ANVIL,
        derived.payer,
        Some(m.requirements.amount),
    );
    let encoded = codec::encode_payment_response(&receipt).expect("receipt");
    let (status, body) = match mode.as_str() {
        "void" => {
            mined(m.escrow.void(info)).await.expect("void mined");
            (StatusCode::INTERNAL_SERVER_ERROR, "handler failed")
        }
        _ => {
            mined(m.escrow.capture(info, amount, 100, m.fee_receiver))
                .await
                .expect("capture mined");
            (StatusCode::OK, "content")
        }
    };
    (status, [(codec::PAYMENT_RESPONSE, encoded)], body).into_response()
}

/// Sends `call` and waits for its receipt.
async fn mined<P: Provider, D: CallDecoder>(call: CallBuilder<P, D>) -> Result<TransactionReceipt> {
    Ok(call.send().await?.get_receipt().await?)
}

fn wallet_provider(signer: PrivateKeySigner, url: reqwest::Url) -> DynProvider {
    ProviderBuilder::new()
        .wallet(EthereumWallet::from(signer))
        .connect_http(url)
        .erased()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_against_the_escrow_on_anvil() -> Result<()> {
    let anvil = Anvil::at(anvil_path()).try_spawn()?;
    let key = |i: usize| -> PrivateKeySigner { anvil.keys()[i].clone().into() };
    let deployer = wallet_provider(key(0), anvil.endpoint_url());
    let operator = wallet_provider(key(1), anvil.endpoint_url());
    let payer = key(2);
    let receiver = anvil.addresses()[3];
    let fee_receiver = anvil.addresses()[4];

    let deployment: Deployment =
        deploy_all(&deployer, anvil.addresses()[0], DEFAULT_SALT, true).await?;
    let token_info = deployment.token.clone().ok_or_else(|| eyre!("dev token"))?;
    let token = TestUSDC::new(token_info.address, &deployer);
    mined(token.mint(payer.address(), U256::from(1_000u64))).await?;

    let registry = EscrowRegistry::only(EscrowDeployment::from(&deployment));
    let chain_now = operator
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await?
        .ok_or_else(|| eyre!("block"))?
        .header
        .timestamp;
    let requirements: PaymentRequirements = serde_json::from_value(json!({
        "scheme": "auth-capture",
        "network": Network::ANVIL.caip2(),
        "amount": "100",
        "asset": token_info.address.to_checksum(None),
        "payTo": receiver.to_checksum(None),
        "maxTimeoutSeconds": 120,
        "extra": {
            "name": token_info.name,
            "version": token_info.version,
            "captureAuthorizer": anvil.addresses()[1].to_checksum(None),
            "captureDeadline": chain_now + 3600,
            "refundDeadline": chain_now + 86_400,
            "feeRecipient": fee_receiver.to_checksum(None),
            "minFeeBps": 0,
            "maxFeeBps": 100,
            "authCaptureEscrow": deployment.auth_capture_escrow.to_checksum(None)
        }
    }))?;
    let merchant = Arc::new(Merchant {
        requirements,
        registry: registry.clone(),
        escrow: AuthCaptureEscrow::new(deployment.auth_capture_escrow, operator.clone()),
        collector: deployment.erc3009_payment_collector,
        fee_receiver,
    });
    let app = Router::new()
        .route("/{mode}", axum::routing::get(route))
        .with_state(Arc::clone(&merchant));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir()?;
    let ledger = SpendLedger::open(dir.path().join("ledger.json"))?;
    let policy = SpendPolicy::new(vec![AssetLimits {
        total_budget: Some(Amount::from(1_000u64)),
        ..AssetLimits::new(Network::ANVIL, token_info.address)
    }]);
    let client = BuyerClient::new(
        reqwest::Client::new(),
        payer.clone(),
        policy,
        ledger.clone(),
    )
    .with_registry(registry)
    .with_retry(RetryPolicy {
        max_retries: 0,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(1),
    });

    let mut ids = std::collections::HashMap::new();
    for mode in ["keep", "void", "refund", "ignore"] {
        let paid = client.get(format!("{base}/{mode}")).await?;
        let payment = paid.payment.ok_or_else(|| eyre!("{mode}: no payment"))?;
        ids.insert(mode, payment.payment_id.clone());
        let expected = match mode {
            "ignore" => PaymentStatus::Reserved,
            _ => PaymentStatus::Paid,
        };
        assert_eq!(payment.status, expected, "{mode}");
        assert_eq!(payment.void_expected, mode == "void", "{mode}");
    }
    let usage = |l: &SpendLedger| {
        l.usage(
            Network::ANVIL,
            token_info.address,
            x402_escrow_sdk::buyer::unix_now(),
        )
    };
    assert_eq!(usage(&ledger)?.spent_total, Amount::from(400u64));

    // The operator refunds 30 of the captured "refund" payment from its own funds.
    let refund_record = ledger.get(&ids["refund"])?.ok_or_else(|| eyre!("record"))?;
    let refund_hash = refund_record.payment_hash.ok_or_else(|| eyre!("hash"))?;
    mined(token.mint(anvil.addresses()[1], U256::from(30u64))).await?;
    mined(
        TestUSDC::new(token_info.address, &operator)
            .approve(deployment.operator_refund_collector, U256::from(30u64)),
    )
    .await?;
    let escrow = AuthCaptureEscrow::new(deployment.auth_capture_escrow, &operator);
    // Recover the PaymentInfo from the authorize event to call refund.
    let logs = operator
        .get_logs(
            &alloy::rpc::types::Filter::new()
                .address(deployment.auth_capture_escrow)
                .event_signature(
                    <AuthCaptureEscrow::PaymentAuthorized as alloy::sol_types::SolEvent>::SIGNATURE_HASH,
                )
                .topic1(refund_hash)
                .from_block(0),
        )
        .await?;
    let event = logs
        .first()
        .ok_or_else(|| eyre!("no PaymentAuthorized"))?
        .log_decode::<AuthCaptureEscrow::PaymentAuthorized>()?;
    mined(escrow.refund(
        event.inner.data.paymentInfo.clone(),
        U256::from(30u64),
        deployment.operator_refund_collector,
        Bytes::new(),
    ))
    .await?;

    // Before the ignored signature expires, reconcile leaves it reserved.
    let report = reconcile(&ledger, &operator).await?;
    assert_eq!(report.chain_id, Network::ANVIL.chain_id());
    assert_eq!(report.checked, 4);
    let changed: std::collections::HashMap<String, PaymentStatus> = report
        .changes
        .iter()
        .map(|c| (c.id.clone(), c.to))
        .collect();
    assert_eq!(changed.get(&ids["void"]), Some(&PaymentStatus::Voided));
    assert_eq!(
        changed.get(&ids["refund"]),
        Some(&PaymentStatus::Refunded {
            amount: Amount::from(30u64)
        })
    );
    assert_eq!(changed.get(&ids["keep"]), None);
    assert_eq!(changed.get(&ids["ignore"]), None);
    assert_eq!(usage(&ledger)?.spent_total, Amount::from(270u64));

    // After validBefore, the never-used signature is released.
    operator.anvil_increase_time(600).await?;
    operator.evm_mine(None).await?;
    let report = reconcile(&ledger, &operator).await?;
    assert_eq!(report.checked, 3, "voided records are final");
    assert_eq!(report.changes.len(), 1);
    assert_eq!(report.changes[0].id, ids["ignore"]);
    assert_eq!(report.changes[0].to, PaymentStatus::Failed);
    assert_eq!(usage(&ledger)?.spent_total, Amount::from(170u64));

    // Idempotent.
    assert!(reconcile(&ledger, &operator).await?.changes.is_empty());
    Ok(())
}
