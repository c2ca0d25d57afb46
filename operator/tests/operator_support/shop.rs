//! A merchant app behind the SDK's x402 layer, paid through a started operator: the layer's
//! configuration for the test chain (the one asset, the receiver, the operator's signer as
//! captureAuthorizer, the fee bounds) and the app served on a free port.

use std::time::Duration;

use axum::Router;
use x402_escrow_operator::runtime::RunningOperator;
use x402_escrow_sdk::facilitator::SettleResponse;
use x402_escrow_sdk::merchant::{AssetConfig, OperatorClient, PaymentsConfig, X402Layer};
use x402_escrow_sdk::schemes::auth_capture;
use x402_escrow_sdk::wire::{PaymentPayload, codec};
use x402_escrow_sdk::{EscrowDeployment, EscrowRegistry, Network, random_b256};

use super::{Chain, FEE_BPS};

/// The served app; the server stops when this is dropped.
pub struct Shop {
    pub base: String,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Shop {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The chain's network.
pub fn network(chain: &Chain) -> Network {
    Network::eip155(chain.deployment.chain_id)
}

/// The escrows a buyer or the layer accepts: only the test chain's.
pub fn registry(chain: &Chain) -> EscrowRegistry {
    EscrowRegistry::only(EscrowDeployment::from(&chain.deployment))
}

/// The layer's settings on the test chain: the test token, receiver 3, the operator's signer,
/// fee receiver 4 up to [`FEE_BPS`], a two-hour capture deadline and a 10 s handler timeout.
pub fn payments_config(chain: &Chain, op: &RunningOperator) -> PaymentsConfig {
    let token = chain.deployment.token.as_ref().expect("token");
    let mut config = PaymentsConfig::new(
        network(chain),
        AssetConfig::new(
            token.address,
            token.name.clone(),
            token.version.clone(),
            token.decimals,
        ),
        chain.receiver,
        op.signer,
    );
    config.escrow = Some(chain.escrow());
    config.registry = registry(chain);
    config.fee_recipient = chain.fee_receiver;
    config.max_fee_bps = FEE_BPS as u16;
    config.capture_deadline_secs = 7200;
    config.handler_timeout = Duration::from_secs(10);
    config
}

/// The layer for `config`, talking to `op` with the merchant's API `key`.
pub fn layer(op: &RunningOperator, key: &str, config: PaymentsConfig) -> X402Layer {
    X402Layer::new(
        OperatorClient::new(format!("http://{}", op.address), key),
        config,
    )
}

/// Serves `app` on a free loopback port.
pub async fn serve(app: Router) -> Shop {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    Shop { base, server }
}

/// The payer's (key 2) signed `auth-capture` payment for `url`'s 402 challenge (its first offer).
pub async fn signed_payment(chain: &Chain, url: &str) -> String {
    let response = reqwest::get(url).await.expect("challenge");
    assert_eq!(response.status(), 402);
    let challenge = codec::decode_payment_required(
        response
            .headers()
            .get(codec::PAYMENT_REQUIRED)
            .expect("PAYMENT-REQUIRED header")
            .as_bytes(),
    )
    .expect("challenge decodes");
    let requirements = challenge.accepts[0].clone();
    let payload = auth_capture::build_payload(
        &requirements,
        &chain.payer,
        chain.now().await,
        random_b256(),
        &registry(chain),
    )
    .expect("sign");
    let payment = PaymentPayload::answering(&challenge, requirements, payload, None);
    codec::encode_payment_signature(&payment).expect("encode")
}

/// The `PAYMENT-RESPONSE` receipt of a paid response.
pub fn receipt_of(response: &reqwest::Response) -> SettleResponse {
    let header = response
        .headers()
        .get(codec::PAYMENT_RESPONSE)
        .expect("PAYMENT-RESPONSE header");
    codec::decode_payment_response(header.as_bytes()).expect("receipt")
}
