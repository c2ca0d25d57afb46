//! `--anvil-ceiling`: the node's own rate for the operator's transactions.

use std::time::{Duration, Instant};

use alloy::consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy::eips::eip2718::Encodable2718;
use alloy::network::TxSignerSync;
use alloy::primitives::aliases::{U48, U120};
use alloy::primitives::{Address, Bytes, TxKind, U256, keccak256};
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use x402_escrow_bindings::eip3009::{Authorization, ReceiveWithAuthorization};
use x402_escrow_bindings::{AuthCaptureEscrow, Deployment, PaymentInfo};

use crate::{BenchError, CeilingReport, PRICE, Result, Step, check};
use x402_escrow_demo::FEE_BPS;
use x402_escrow_testkit::Chain;

// ------------------------------------------------------------------------- anvil ceiling

/// Signs `count` authorize calls (then as many captures) with consecutive nonces from a dev
/// key of its own, sends each phase as fast as the node takes them and times until the last
/// receipt: what anvil alone sustains for the operator's transactions.
pub(crate) async fn anvil_ceiling(
    chain: &Chain,
    deployment: &Deployment,
    token_domain: &alloy::sol_types::Eip712Domain,
    payer: &PrivateKeySigner,
    count: u64,
) -> Result<CeilingReport> {
    let (operator, provider) = chain.wallet(5)?;
    let chain_id = deployment.chain_id;
    let escrow = deployment.auth_capture_escrow;
    let collector = deployment.erc3009_payment_collector;
    let now = provider
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .step("reading the latest block")?
        .ok_or_else(|| BenchError::Unexpected("no latest block".into()))?
        .header
        .timestamp;
    let base_fee = provider
        .get_gas_price()
        .await
        .step("reading the gas price")?;
    let mut infos = Vec::new();
    let mut authorize = Vec::new();
    for i in 0..count {
        let info = PaymentInfo {
            operator: operator.address(),
            payer: payer.address(),
            receiver: Address::repeat_byte(0x55),
            token: deployment
                .token
                .as_ref()
                .map(|t| t.address)
                .ok_or_else(|| BenchError::Unexpected("no test token".into()))?,
            maxAmount: U120::from(PRICE),
            preApprovalExpiry: U48::from(now + 3600),
            authorizationExpiry: U48::from(now + 7200),
            refundExpiry: U48::from(now + 86400),
            minFeeBps: 0,
            maxFeeBps: FEE_BPS,
            feeReceiver: Address::repeat_byte(0x66),
            salt: U256::from(i) + U256::from(1u64 << 40),
        };
        let signature = ReceiveWithAuthorization::for_payment(&info, collector, chain_id, escrow)
            .sign(payer, token_domain)
            .step("signing an authorization")?;
        authorize.push(
            AuthCaptureEscrow::authorizeCall {
                paymentInfo: info.clone(),
                amount: U256::from(PRICE),
                tokenCollector: collector,
                collectorData: signature,
            }
            .abi_encode(),
        );
        infos.push(info);
    }
    let capture: Vec<Vec<u8>> = infos
        .iter()
        .map(|info| {
            AuthCaptureEscrow::captureCall {
                paymentInfo: info.clone(),
                amount: U256::from(PRICE),
                feeBps: FEE_BPS,
                feeReceiver: Address::repeat_byte(0x66),
            }
            .abi_encode()
        })
        .collect();
    let mut nonce = provider
        .get_transaction_count(operator.address())
        .await
        .step("reading the nonce")?;
    let mut rate = |calls: &[Vec<u8>], gas: u64| -> Result<Vec<Bytes>> {
        calls
            .iter()
            .map(|input| {
                let mut tx = TxEip1559 {
                    chain_id,
                    nonce,
                    gas_limit: gas,
                    max_fee_per_gas: base_fee * 3,
                    max_priority_fee_per_gas: 1,
                    to: TxKind::Call(escrow),
                    value: U256::ZERO,
                    access_list: Default::default(),
                    input: Bytes::from(input.clone()),
                };
                nonce += 1;
                let signature = operator
                    .sign_transaction_sync(&mut tx)
                    .step("signing a transaction")?;
                Ok(TxEnvelope::from(tx.into_signed(signature))
                    .encoded_2718()
                    .into())
            })
            .collect()
    };
    let raw_authorize = rate(&authorize, 400_000)?;
    let raw_capture = rate(&capture, 200_000)?;
    let send_all = |raw: Vec<Bytes>| {
        let provider = provider.clone();
        async move {
            let started = Instant::now();
            let last = raw.last().map(keccak256).unwrap_or_default();
            // Eight sends in flight, in nonce order: what a pipelining relayer could do.
            let mut in_flight = std::collections::VecDeque::new();
            for bytes in raw {
                let provider = provider.clone();
                in_flight.push_back(tokio::spawn(async move {
                    provider.send_raw_transaction(&bytes).await.map(|_| ())
                }));
                if in_flight.len() >= 8
                    && let Some(sent) = in_flight.pop_front()
                {
                    sent.await
                        .step("sending a transaction")?
                        .step("sending a transaction")?;
                }
            }
            for sent in in_flight {
                sent.await
                    .step("sending a transaction")?
                    .step("sending a transaction")?;
            }
            let deadline = Instant::now() + Duration::from_secs(300);
            loop {
                if let Some(receipt) = provider
                    .get_transaction_receipt(last)
                    .await
                    .step("reading a receipt")?
                {
                    check!(receipt.status(), "a ceiling transaction reverted");
                    break;
                }
                check!(Instant::now() < deadline, "ceiling transactions not mined");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok::<_, BenchError>(started.elapsed())
        }
    };
    let a = send_all(raw_authorize).await?;
    let c = send_all(raw_capture).await?;
    let per_sec = |d: Duration| count as f64 / d.as_secs_f64().max(1e-9);
    Ok(CeilingReport {
        count,
        authorize_tx_per_sec: per_sec(a),
        capture_tx_per_sec: per_sec(c),
        pairs_per_sec: per_sec(a + c),
    })
}
