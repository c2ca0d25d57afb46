//! `auth-capture` v1.1, `operatorType: "delegated"`: the facilitator relays a merchant's
//! lifecycle calls (and relayed charges) only with its receiver authorizer's EIP-712 consent to
//! exactly the call that executes, checks the balances the authorizer signed against
//! `paymentState`, and names every refusal with the scheme's reason — with nothing moved on
//! chain. The merchant's authorizer is dev key 6 (an EOA), a contract (ERC-1271) or a contract
//! not deployed yet (ERC-6492).

mod facilitator_support;
mod operator_support;
mod store_support;

use std::time::Duration;

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::ext::AnvilApi;
use alloy::signers::local::PrivateKeySigner;
use facilitator_support::{Env, assert_success, complete_charge, set_expected};
use operator_support::TestEscrow;
use operator_support::USDC;
use serde_json::{Value, json};
use x402_escrow_sdk::escrows::FeeArgument;
use x402_escrow_sdk::facilitator::{VerifyRequest, reasons};
use x402_escrow_sdk::schemes::auth_capture::{
    self, AuthorizerMessage, DerivedPayment, ExpectedState, LifecycleRequest, SubmittedFee,
    sign_authorizer, signed_lifecycle_payload,
};
use x402_escrow_sdk::wire::{PaymentPayload, SchemePayload};

/// The operator's fee in these tests (`fees.bps`), inside the requirements' [0, 500].
const FEE_BPS: u16 = 100;

/// An environment whose merchant signs its own consent with `authorizer` (dev key 6), a held
/// payment of `amount` under requirements naming it, settled (authorized).
struct Delegated {
    env: Env,
    authorizer: PrivateKeySigner,
    forger: PrivateKeySigner,
    requirements: Value,
    held: VerifyRequest,
}

impl Delegated {
    async fn new(amount: u64) -> Delegated {
        Delegated::on(Env::new(Duration::from_secs(20)).await, amount).await
    }

    async fn on(env: Env, amount: u64) -> Delegated {
        let authorizer = env.key(6).expect("key 6").address();
        Delegated::with_authorizer(env, amount, authorizer).await
    }

    /// [`Delegated::on`] with `receiver_authorizer` in the requirements (a contract whose owner
    /// is key 6, say); `authorizer` stays key 6, the key that signs.
    async fn with_authorizer(env: Env, amount: u64, receiver_authorizer: Address) -> Delegated {
        let authorizer = env.key(6).expect("key 6");
        let forger = env.key(7).expect("key 7");
        let mut requirements = env.requirements(amount).await;
        requirements["extra"]["receiverAuthorizer"] = json!(receiver_authorizer);
        let held = env.pay(&requirements, &env.payer).await;
        assert_success(&env.settle(&held).await);
        Delegated {
            env,
            authorizer,
            forger,
            requirements,
            held,
        }
    }

    fn derived(&self, req: &VerifyRequest) -> DerivedPayment {
        auth_capture::derive_from_payment_payload(
            &req.payment_requirements,
            &req.payment_payload,
            &self.env.registry(),
        )
        .unwrap()
    }

    /// The held payment's lifecycle body for `request`, signed by `signer`.
    async fn signed(&self, signer: &PrivateKeySigner, request: &LifecycleRequest) -> VerifyRequest {
        let derived = self.derived(&self.held);
        let payload = signed_lifecycle_payload(
            signer,
            derived.chain_id,
            derived.payment_info_json(),
            derived.payment_info_hash,
            derived.salt_nonce,
            request,
        )
        .await
        .unwrap();
        let requirements = self.held.payment_requirements.clone();
        VerifyRequest::new(
            PaymentPayload::new(requirements.clone(), payload),
            requirements,
        )
    }

    /// A capture of `amount` with the operator's fee (in the escrow's fee argument: basis
    /// points on v1.0, the amount on v1.1), expecting the balances on chain now.
    async fn capture(&self, amount: u64, void_rest: bool) -> LifecycleRequest {
        let fee = match self.env.registry().deployments()[0].fee_argument {
            FeeArgument::Bps => SubmittedFee::Bps(FEE_BPS),
            FeeArgument::Amount => {
                SubmittedFee::Amount(U256::from(amount * u64::from(FEE_BPS) / 10_000))
            }
        };
        LifecycleRequest::Capture {
            amount: U256::from(amount),
            fee,
            fee_receiver: self.env.fee_receiver,
            expected: self.expected_now().await,
            void_rest,
        }
    }

    async fn expected_now(&self) -> ExpectedState {
        let (capturable, refundable) = self.env.chain_state(&self.held).await;
        ExpectedState {
            capturable: U256::from(capturable),
            refundable: U256::from(refundable),
        }
    }

    /// Settles `req`, which must be refused with `reason`, and checks nothing moved.
    async fn refused(&self, req: &VerifyRequest, reason: &str) {
        let before = self.env.chain_state(&self.held).await;
        let body = self.env.settle(req).await;
        assert_eq!(body["success"], false, "{body}");
        assert_eq!(body["errorReason"], reason, "{body}");
        assert_eq!(body["transaction"], "", "{body}");
        assert_eq!(self.env.chain_state(&self.held).await, before);
    }

    /// Waits (up to 20 s) until the held payment's balances on chain are `expected`.
    async fn wait_state(&self, expected: (u128, u128)) {
        for _ in 0..200 {
            if self.env.chain_state(&self.held).await == expected {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(self.env.chain_state(&self.held).await, expected);
    }
}

fn lifecycle_mut(req: &mut VerifyRequest) -> &mut auth_capture::LifecyclePayload {
    match &mut req.payment_payload.payload {
        SchemePayload::AuthCaptureLifecycle(p) => p,
        _ => panic!("not a lifecycle body"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_lifecycle_calls_move_exactly_what_was_signed() {
    signed_lifecycle(Delegated::new(10 * USDC).await).await;
}

/// The same on the public Commerce Payments v1.0 contracts themselves, and on an escrow with
/// the v1.1 interface (the authorizer signs `feeAmount` there, as the escrow takes it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_lifecycle_on_the_reference_and_v1_1_escrows() {
    for escrow in [TestEscrow::ReferenceV1_0, TestEscrow::OursV1_1] {
        let env = Env::with_escrow(escrow).await;
        signed_lifecycle(Delegated::on(env, 10 * USDC).await).await;
    }
}

/// Capture-and-void signed by the merchant's authorizer, its retry, a signed refund and its
/// retry: exact balances and token movements.
async fn signed_lifecycle(t: Delegated) {
    let env = &t.env;
    let receiver0 = env.balance(env.receiver).await;
    let payer0 = env.balance(env.payer.address()).await;

    // Capture 3 and void the rest in one settle (capture-and-void).
    let capture = t
        .signed(&t.authorizer, &t.capture(3 * USDC, true).await)
        .await;
    let body = env.settle(&capture).await;
    let capture_tx = assert_success(&body);
    assert_eq!(body["amount"], (3 * USDC).to_string(), "{body}");
    t.wait_state((0, 3 * USDC as u128)).await;
    let fee = u128::from(3 * USDC) * u128::from(FEE_BPS) / 10_000;
    assert_eq!(
        env.balance(env.receiver).await,
        receiver0 + u128::from(3 * USDC) - fee
    );
    assert_eq!(
        env.balance(env.payer.address()).await,
        payer0 + u128::from(7 * USDC)
    );
    // Retried: answered with the same capture, nothing moves.
    assert_eq!(assert_success(&env.settle(&capture).await), capture_tx);
    assert_eq!(env.chain_state(&t.held).await, (0, 3 * USDC as u128));

    // Refund 1, signed against (0, 3).
    let refund = t
        .signed(
            &t.authorizer,
            &LifecycleRequest::Refund {
                amount: U256::from(USDC),
                token_collector: env.deployment.operator_refund_collector,
                expected: t.expected_now().await,
            },
        )
        .await;
    let refund_tx = assert_success(&env.settle(&refund).await);
    assert_eq!(env.chain_state(&t.held).await, (0, 2 * USDC as u128));
    assert_eq!(
        env.balance(env.payer.address()).await,
        payer0 + u128::from(8 * USDC)
    );
    // The same signature again: its balances cannot recur, so it is the original refund.
    assert_eq!(assert_success(&env.settle(&refund).await), refund_tx);
    assert_eq!(env.chain_state(&t.held).await, (0, 2 * USDC as u128));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_consent_is_refused_with_the_schemes_reasons_and_moves_nothing() {
    let t = Delegated::new(10 * USDC).await;
    let env = &t.env;

    // Signed by someone else.
    let forged = t.signed(&t.forger, &t.capture(3 * USDC, false).await).await;
    t.refused(&forged, reasons::AUTH_CAPTURE_AUTHORIZER_SIGNATURE)
        .await;

    // Signed for 3, asking for 4.
    let mut more = t
        .signed(&t.authorizer, &t.capture(3 * USDC, false).await)
        .await;
    lifecycle_mut(&mut more).settle.amount = Some(x402_escrow_sdk::Amount::from(4 * USDC));
    t.refused(&more, reasons::AUTH_CAPTURE_AUTHORIZER_SIGNATURE)
        .await;

    // Signed over a fee this operator does not capture with (the signature covers the call
    // that executes: 100 bps to the fee receiver).
    let other_fee = LifecycleRequest::Capture {
        amount: U256::from(3 * USDC),
        fee: SubmittedFee::Bps(200),
        fee_receiver: env.fee_receiver,
        expected: t.expected_now().await,
        void_rest: false,
    };
    let mut req = t.signed(&t.authorizer, &other_fee).await;
    lifecycle_mut(&mut req).settle.fee_bps = None;
    t.refused(&req, reasons::AUTH_CAPTURE_AUTHORIZER_SIGNATURE)
        .await;

    // No signature, and consent is not delegated to us (receiverAuthorizer is the merchant's).
    let mut unsigned = t
        .signed(&t.authorizer, &t.capture(3 * USDC, false).await)
        .await;
    lifecycle_mut(&mut unsigned).authorizer_signature = None;
    t.refused(&unsigned, reasons::AUTH_CAPTURE_AUTHORIZER_SIGNATURE)
        .await;

    // Balances changed after signing: the signature no longer covers the payload.
    let mut altered = t
        .signed(&t.authorizer, &t.capture(3 * USDC, false).await)
        .await;
    set_expected(&mut altered, 9 * USDC as u128, USDC as u128);
    t.refused(&altered, reasons::AUTH_CAPTURE_AUTHORIZER_SIGNATURE)
        .await;
    // Signed against balances the payment does not have: the consent is right, the state not.
    let stale = LifecycleRequest::Capture {
        amount: U256::from(3 * USDC),
        fee: SubmittedFee::Bps(FEE_BPS),
        fee_receiver: env.fee_receiver,
        expected: ExpectedState {
            capturable: U256::from(9 * USDC),
            refundable: U256::from(USDC),
        },
        void_rest: false,
    };
    t.refused(
        &t.signed(&t.authorizer, &stale).await,
        reasons::AUTH_CAPTURE_UNEXPECTED_PAYMENT_STATE,
    )
    .await;

    // Capture-and-void: the void signed by someone else; a capture of everything with a void.
    let mut bad_void = t
        .signed(&t.authorizer, &t.capture(3 * USDC, true).await)
        .await;
    let mut forged_void = t.signed(&t.forger, &t.capture(3 * USDC, true).await).await;
    let forged_signature = lifecycle_mut(&mut forged_void)
        .void_authorizer_signature
        .clone();
    lifecycle_mut(&mut bad_void).void_authorizer_signature = forged_signature;
    t.refused(&bad_void, reasons::AUTH_CAPTURE_VOID_AUTHORIZER_SIGNATURE)
        .await;
    let everything = t
        .signed(&t.authorizer, &t.capture(10 * USDC, true).await)
        .await;
    t.refused(
        &everything,
        reasons::AUTH_CAPTURE_VOID_REMAINDER_FULL_CAPTURE,
    )
    .await;

    // The payload's paymentInfo does not open: another saltNonce, another operator, another
    // receiver than the requirements dictate.
    let mut salt = t.signed(&t.authorizer, &LifecycleRequest::Void).await;
    lifecycle_mut(&mut salt).salt_nonce = Some(B256::repeat_byte(0x42));
    t.refused(&salt, reasons::AUTH_CAPTURE_SALT_BINDING_MISMATCH)
        .await;
    let mut operator = t.signed(&t.authorizer, &LifecycleRequest::Void).await;
    lifecycle_mut(&mut operator).payment_info.operator = env.fee_receiver;
    t.refused(&operator, reasons::AUTH_CAPTURE_OPERATOR_MISMATCH)
        .await;
    let mut receiver = t.signed(&t.authorizer, &LifecycleRequest::Void).await;
    lifecycle_mut(&mut receiver).payment_info.receiver = env.fee_receiver;
    t.refused(&receiver, reasons::REQUIREMENTS_MISMATCH).await;

    // After all of that the hold is whole, and a properly signed void releases it.
    assert_eq!(env.chain_state(&t.held).await, (10 * USDC as u128, 0));
    let void = t.signed(&t.authorizer, &LifecycleRequest::Void).await;
    assert_success(&env.settle(&void).await);
    assert_eq!(env.chain_state(&t.held).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_types_and_policies_get_the_schemes_reasons() {
    let t = Delegated::new(USDC).await;
    let env = &t.env;

    // /supported announces the delegated operator's terms and admits no contract operator.
    let (status, supported) = env.call(reqwest::Method::GET, "/supported", None).await;
    assert_eq!(status, 200, "{supported}");
    let extra = &supported["kinds"][0]["extra"];
    assert_eq!(
        extra["receiverAuthorizer"],
        env.signer.to_checksum(None),
        "{extra}"
    );
    assert_eq!(
        extra["captureAuthorizer"],
        env.signer.to_checksum(None),
        "{extra}"
    );
    assert_eq!(extra["operators"], json!([]), "{extra}");
    assert_eq!(extra["minFeeBps"], extra["maxFeeBps"], "{extra}");
    // Every test chain has Permit2 and our escrow's Permit2 collector.
    assert_eq!(
        extra["assetTransferMethods"],
        json!(["eip3009", "permit2"]),
        "{extra}"
    );

    let verify_reason = |extra_key: &'static str, value: Value| {
        let mut requirements = t.requirements.clone();
        requirements["extra"][extra_key] = value;
        async move {
            let req = env.pay(&requirements, &env.payer).await;
            let body = env.verify(&req).await;
            assert_eq!(body["isValid"], false, "{body}");
            body["invalidReason"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        }
    };
    assert_eq!(
        verify_reason("operatorType", json!("custom")).await,
        reasons::AUTH_CAPTURE_OPERATOR_NOT_ADMITTED
    );
    assert_eq!(
        verify_reason("operatorType", json!("policy")).await,
        reasons::AUTH_CAPTURE_UNSUPPORTED_OPERATOR_TYPE
    );
    assert_eq!(
        verify_reason("policy", json!(Address::repeat_byte(0x99))).await,
        reasons::AUTH_CAPTURE_POLICY
    );
    // operatorType "delegated" written out is the default.
    let mut explicit = t.requirements.clone();
    explicit["extra"]["operatorType"] = json!("delegated");
    let req = env.pay(&explicit, &env.payer).await;
    assert_eq!(env.verify(&req).await["isValid"], true);

    // A lifecycle payload for a custom operator is not relayed.
    let mut custom = t.signed(&t.authorizer, &LifecycleRequest::Void).await;
    let mut requirements = custom.payment_requirements.clone();
    if let Some(x402_escrow_sdk::wire::Extra::AuthCapture(extra)) = requirements.extra.as_mut() {
        extra.other.insert("operatorType".into(), json!("custom"));
    }
    custom.payment_requirements = requirements;
    t.refused(&custom, reasons::AUTH_CAPTURE_LIFECYCLE_NOT_RELAYED)
        .await;
}

/// A receiver authorizer that is a contract: the facilitator asks it (ERC-1271).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_authorizers_are_asked_with_erc1271() {
    let env = Env::new(Duration::from_secs(20)).await;
    let owner = env.key(6).expect("key 6");
    // The hand-assembled ERC-1271 wallet (`WALLET_RUNTIME`), owned by key 6.
    let wallet = Address::repeat_byte(0x71);
    let code = hex_code(WALLET_RUNTIME);
    env.plain.anvil_set_code(wallet, code).await.unwrap();
    env.plain
        .anvil_set_storage_at(
            wallet,
            U256::ZERO,
            B256::left_padding_from(owner.address().as_slice()),
        )
        .await
        .unwrap();

    let t = Delegated::with_authorizer(env, 5 * USDC, wallet).await;
    let forged = t.signed(&t.forger, &LifecycleRequest::Void).await;
    t.refused(&forged, reasons::AUTH_CAPTURE_AUTHORIZER_SIGNATURE)
        .await;
    let owners = t.signed(&t.authorizer, &LifecycleRequest::Void).await;
    assert_success(&t.env.settle(&owners).await);
    assert_eq!(t.env.chain_state(&t.held).await, (0, 0));
}

/// A relayed charge (flow `authorization`) carries the authorizer's `Charge` consent over the
/// completed values; without a receiver authorizer it is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relayed_charges_need_the_authorizers_consent() {
    let env = Env::new(Duration::from_secs(20)).await;
    let authorizer = env.key(6).expect("key 6");
    let amount = 4 * USDC;
    let payer0 = env.balance(env.payer.address()).await;

    let mut plain = env.requirements(amount).await;
    plain["extra"]["paymentFlow"] = json!("authorization");
    let mut req = env.pay(&plain, &env.payer).await;
    complete_charge(&mut req, amount, FEE_BPS, env.fee_receiver);
    let body = env.settle(&req).await;
    assert_eq!(
        body["errorReason"],
        reasons::AUTH_CAPTURE_MISSING_RECEIVER_AUTHORIZER,
        "{body}"
    );

    // The client authorized 4; the server charges 3 (charge is terminal: the rest never leaves
    // the payer).
    let charged = 3 * USDC;
    let mut requirements = plain.clone();
    requirements["extra"]["receiverAuthorizer"] = json!(authorizer.address());
    let mut req = env.pay(&requirements, &env.payer).await;
    let mut too_much = req.clone();
    complete_charge(&mut too_much, amount + 1, FEE_BPS, env.fee_receiver);
    let body = env.settle(&too_much).await;
    assert_eq!(
        body["errorReason"],
        reasons::AUTH_CAPTURE_AMOUNT_MISMATCH,
        "{body}"
    );
    complete_charge(&mut req, charged, FEE_BPS, env.fee_receiver);
    let derived = auth_capture::derive_from_payment_payload(
        &req.payment_requirements,
        &req.payment_payload,
        &env.registry(),
    )
    .unwrap();
    let client_signature = match &req.payment_payload.payload {
        SchemePayload::AuthCapture(p) => p.signature.clone(),
        _ => panic!("an ERC-3009 payload"),
    };
    let charge = |fee_bps: u16| AuthorizerMessage::Charge {
        amount: U256::from(charged),
        token_collector: derived.token_collector,
        collector_data: client_signature.clone(),
        fee: SubmittedFee::Bps(fee_bps),
        fee_receiver: env.fee_receiver,
    };
    let sign = |message: AuthorizerMessage| {
        let authorizer = &authorizer;
        let derived = &derived;
        async move {
            sign_authorizer(
                authorizer,
                derived.chain_id,
                env.signer,
                derived.payment_info_hash,
                &message,
            )
            .await
            .unwrap()
        }
    };
    let with_signature = |signature: Bytes| {
        let mut req = req.clone();
        if let SchemePayload::AuthCapture(p) = &mut req.payment_payload.payload {
            p.authorizer_signature = Some(signature);
        }
        req
    };

    // Consent to another fee than the one that executes: refused, nothing charged.
    let body = env.settle(&with_signature(sign(charge(200)).await)).await;
    assert_eq!(
        body["errorReason"],
        reasons::AUTH_CAPTURE_AUTHORIZER_SIGNATURE,
        "{body}"
    );
    assert_eq!(env.balance(env.payer.address()).await, payer0);

    // Consent to the charge that executes: charged.
    let signed = with_signature(sign(charge(FEE_BPS)).await);
    assert_success(&env.settle(&signed).await);
    assert_eq!(env.chain_state(&signed).await, (0, charged as u128));
    assert_eq!(
        env.balance(env.payer.address()).await,
        payer0 - u128::from(charged)
    );
}

/// A minimal ERC-1271 wallet, hand-assembled: `isValidSignature(hash, sig)` recovers the
/// 65-byte signature with the ecrecover precompile and answers 0x1626ba7e when it is the owner
/// kept in storage slot 0, 0xffffffff otherwise (83 bytes).
const WALLET_RUNTIME: &str = concat!(
    "600435600052",                       // mstore(0x00, hash)
    "60a43560f81c602052",                 // mstore(0x20, v: the signature's 65th byte)
    "606435604052",                       // mstore(0x40, r)
    "608435606052",                       // mstore(0x60, s)
    "602060806080600060015afa50",         // staticcall(gas, 1, 0, 0x80, 0x80, 0x20)
    "608051600054146042",                 // mload(0x80) == sload(0) ...
    "57",                                 // ... jumps to 0x42
    "63ffffffff60e01b60005260206000f3",   // return 0xffffffff
    "5b631626ba7e60e01b60005260206000f3", // 0x42: return 0x1626ba7e
);

/// The wallet's creation code for `owner`: `sstore(0, owner)`, then return [`WALLET_RUNTIME`]
/// (copied from offset 0x23, 0x53 bytes).
fn wallet_init_code(owner: Address) -> Bytes {
    hex_code(&format!(
        concat!(
            "73{}600055",       // sstore(0, owner)
            "6053806023600039", // codecopy(0, 0x23, 0x53)
            "6000f3",           // return(0, 0x53)
            "{}",               // the runtime
        ),
        alloy::primitives::hex::encode(owner),
        WALLET_RUNTIME
    ))
}

/// A factory, hand-assembled: `CREATE2` of its calldata as creation code, salt 0.
const FACTORY_RUNTIME: &str = "36600060003760003660006000f500";

fn hex_code(hex: &str) -> Bytes {
    Bytes::from(alloy::primitives::hex::decode(hex).expect("hex"))
}

/// A receiver authorizer that is a contract not deployed yet signs with an ERC-6492 envelope:
/// the facilitator runs the preparation and `isValidSignature` together in one `eth_call`
/// (nothing is deployed by the check).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counterfactual_authorizers_sign_with_erc6492() {
    use alloy::primitives::keccak256;
    use alloy::providers::Provider;
    use alloy::sol_types::SolValue;

    let env = Env::new(Duration::from_secs(20)).await;
    let owner = env.key(6).expect("key 6");
    let factory = Address::repeat_byte(0x72);
    env.plain
        .anvil_set_code(factory, hex_code(FACTORY_RUNTIME))
        .await
        .unwrap();
    let init_code = wallet_init_code(owner.address());
    let wallet = factory.create2(B256::ZERO, keccak256(&init_code));

    let t = Delegated::with_authorizer(env, 5 * USDC, wallet).await;
    let wrapped = |mut req: VerifyRequest| {
        let payload = lifecycle_mut(&mut req);
        let inner = payload.authorizer_signature.take().expect("signed");
        let mut envelope = (factory, init_code.clone(), inner).abi_encode_params();
        envelope.extend_from_slice(&[0x64, 0x92].repeat(16));
        payload.authorizer_signature = Some(Bytes::from(envelope));
        req
    };
    // Wrapped but by someone else; the owner's signature without the envelope (nothing is
    // deployed there to ask).
    let forged = wrapped(t.signed(&t.forger, &LifecycleRequest::Void).await);
    t.refused(&forged, reasons::AUTH_CAPTURE_AUTHORIZER_SIGNATURE)
        .await;
    let bare = t.signed(&t.authorizer, &LifecycleRequest::Void).await;
    t.refused(&bare, reasons::AUTH_CAPTURE_AUTHORIZER_SIGNATURE)
        .await;
    let owners = wrapped(t.signed(&t.authorizer, &LifecycleRequest::Void).await);
    assert_success(&t.env.settle(&owners).await);
    assert_eq!(t.env.chain_state(&t.held).await, (0, 0));
    assert!(
        t.env.plain.get_code_at(wallet).await.unwrap().is_empty(),
        "the check deployed nothing"
    );
}
