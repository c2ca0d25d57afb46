//! The layer's offers derive from the operator's terms, and a hand-made configuration the
//! operator would refuse is caught at start-up with both settings named.

use alloy::primitives::Address;
use x402_escrow_sdk::Network;
use x402_escrow_sdk::merchant::{
    AssetConfig, DEFAULT_CAPTURE_DEADLINE_SECS, DEFAULT_EXPIRY_MARGIN_SECS, EPOCH_SECS,
    MerchantTerms, PaymentsConfig, TermsAsset, TermsError, TermsEscrow,
    capture_deadline_offer_secs,
};

fn terms() -> MerchantTerms {
    MerchantTerms {
        merchant_id: "m-1".into(),
        name: "shop".into(),
        network: Network::eip155(31337),
        receivers: vec![Address::repeat_byte(0x90), Address::repeat_byte(0x91)],
        capture_authorizer: Address::repeat_byte(0x70),
        capture_authorizers: Vec::new(),
        fee_recipient: Address::repeat_byte(0x70),
        fee_bps: 100,
        capture_deadline_seconds: DEFAULT_CAPTURE_DEADLINE_SECS,
        expiry_margin_seconds: DEFAULT_EXPIRY_MARGIN_SECS,
        clock_skew_seconds: 60,
        escrows: vec![TermsEscrow {
            label: "local".into(),
            escrow: Address::repeat_byte(0xE5),
            erc3009_collector: Address::repeat_byte(0xC0),
            refund_collector: None,
            permit2_collector: None,
        }],
        assets: vec![TermsAsset {
            address: Address::repeat_byte(0xAA),
            name: "USD Coin".into(),
            version: "2".into(),
            decimals: 6,
        }],
    }
}

#[test]
fn from_terms_offers_what_the_operator_accepts() {
    let terms = terms();
    let config = PaymentsConfig::from_terms(&terms).expect("config");
    assert_eq!(config.network, Network::eip155(31337));
    assert_eq!(config.pay_to, Address::repeat_byte(0x90));
    assert_eq!(config.capture_authorizer, Address::repeat_byte(0x70));
    assert_eq!(config.escrow, Some(Address::repeat_byte(0xE5)));
    assert_eq!(
        config.asset,
        AssetConfig::new(Address::repeat_byte(0xAA), "USD Coin", "2", 6)
    );
    assert_eq!((config.min_fee_bps, config.max_fee_bps), (100, 100));
    assert_eq!(config.fee_recipient, Address::repeat_byte(0x70));
    // 3600 s to capture + 60 s margin + 300 s to pay + two 60 s challenge epochs.
    assert_eq!(
        config.capture_deadline_secs,
        3600 + 60 + 300 + 2 * EPOCH_SECS
    );
    assert!(config.registry.get(Address::repeat_byte(0xE5)).is_some());
    assert_eq!(config.mismatches(&terms), Vec::<String>::new());
    config.check_terms(&terms).expect("agrees");
}

#[test]
fn default_config_agrees_with_the_default_operator_windows() {
    // The defaults of both sides come from the same constants.
    let config = PaymentsConfig::new(
        Network::eip155(31337),
        AssetConfig::new(Address::repeat_byte(0xAA), "USD Coin", "2", 6),
        Address::repeat_byte(0x90),
        Address::repeat_byte(0x70),
    );
    assert_eq!(
        config.capture_deadline_secs,
        capture_deadline_offer_secs(
            DEFAULT_CAPTURE_DEADLINE_SECS,
            DEFAULT_EXPIRY_MARGIN_SECS,
            config.max_timeout_seconds
        )
    );
    let mut terms = terms();
    terms.fee_bps = 0;
    config
        .check_terms(&terms)
        .expect("the default windows agree");
}

#[test]
fn the_round_one_mismatch_names_both_settings() {
    // What the README path had: the layer offered now + 3600 while the merchant's capture
    // deadline was 3600 and the operator keeps a 60 s margin.
    let mut config = PaymentsConfig::from_terms(&terms()).expect("config");
    config.capture_deadline_secs = 3600;
    let Err(TermsError::Mismatch(lines)) = config.check_terms(&terms()) else {
        panic!("a mismatch");
    };
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    for name in [
        "PaymentsConfig::capture_deadline_secs (3600 s)",
        "the merchant's capture_deadline_secs (3600 s)",
        "auto_void.expiry_margin_secs (60 s)",
        "PaymentsConfig::max_timeout_seconds (300 s)",
        "= 4080 s",
    ] {
        assert!(line.contains(name), "{name:?} in {line}");
    }
}

#[test]
fn every_disagreement_is_reported() {
    let terms = terms();
    let mut config = PaymentsConfig::from_terms(&terms).expect("config");
    config.network = Network::eip155(8453);
    config.capture_authorizer = Address::repeat_byte(0x01);
    config.pay_to = Address::repeat_byte(0x02);
    config.asset.address = Address::repeat_byte(0x03);
    config.escrow = Some(Address::repeat_byte(0x04));
    config.min_fee_bps = 0;
    config.max_fee_bps = 50;
    config.fee_recipient = Address::repeat_byte(0x05);
    config.max_timeout_seconds = 60;
    config.refund_deadline_secs = 10;
    let lines = config.mismatches(&terms);
    let expect = [
        "PaymentsConfig::network",
        "PaymentsConfig::capture_authorizer",
        "PaymentsConfig::pay_to",
        "PaymentsConfig::asset",
        "PaymentsConfig::escrow",
        "fees.bps (100)",
        "PaymentsConfig::fee_recipient",
        "PaymentsConfig::max_timeout_seconds (60 s) must exceed",
        "PaymentsConfig::refund_deadline_secs (10 s)",
    ];
    assert_eq!(lines.len(), expect.len(), "{lines:#?}");
    for (line, phrase) in lines.iter().zip(expect) {
        assert!(line.contains(phrase), "{phrase:?} in {line}");
    }
    let message = config.check_terms(&terms).expect_err("refused").to_string();
    assert!(message.starts_with("the payment settings disagree with the operator's:"));
}

#[test]
fn terms_without_receiver_asset_or_escrow_cannot_make_a_config() {
    let mut t = terms();
    t.receivers.clear();
    assert!(matches!(
        PaymentsConfig::from_terms(&t),
        Err(TermsError::NoReceiver(id)) if id == "m-1"
    ));
    let mut t = terms();
    t.assets.clear();
    assert!(matches!(
        PaymentsConfig::from_terms(&t),
        Err(TermsError::NoAsset)
    ));
    let mut t = terms();
    t.escrows.clear();
    assert!(matches!(
        PaymentsConfig::from_terms(&t),
        Err(TermsError::NoEscrow)
    ));
}

#[test]
fn terms_round_trip_as_the_operator_serves_them() {
    let json = serde_json::to_value(terms()).expect("json");
    assert_eq!(json["network"], "eip155:31337");
    assert_eq!(json["captureDeadlineSeconds"], 3600);
    assert_eq!(json["expiryMarginSeconds"], 60);
    assert_eq!(
        json["escrows"][0]["erc3009Collector"]
            .as_str()
            .map(str::to_lowercase),
        Some(format!("{:#x}", Address::repeat_byte(0xC0)))
    );
    let back: MerchantTerms = serde_json::from_value(json).expect("back");
    assert_eq!(back, terms());
}
