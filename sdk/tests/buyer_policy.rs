//! Spend policy: every rule refuses with its own typed error, the happy path passes, and the
//! file format is explicit (no silent "empty list means everything").

use alloy::primitives::{Address, address};
use x402_escrow_sdk::buyer::{
    Allowlist, AssetLimits, HostPattern, NetworkEntry, PaymentIntent, PolicyViolation, SpendPolicy,
    Usage,
};
use x402_escrow_sdk::{Amount, Network};

const USDC: Address = address!("0x036CbD53842c5426634e7929541eC2318f3dCF7e");
const OTHER_TOKEN: Address = address!("0x1111111111111111111111111111111111111111");
const SHOP: Address = address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
const STRANGER: Address = address!("0x2222222222222222222222222222222222222222");

fn amount(n: u64) -> Amount {
    Amount::from(n)
}

fn policy() -> SpendPolicy {
    SpendPolicy {
        networks: Allowlist::Only(vec![NetworkEntry(Network::BASE_SEPOLIA)]),
        payees: Allowlist::Only(vec![SHOP]),
        hosts: Allowlist::Only(vec![
            HostPattern::new("api.example.com"),
            HostPattern::new("*.shop.test"),
        ]),
        assets: vec![AssetLimits {
            label: Some("USDC".into()),
            max_per_payment: Some(amount(100)),
            daily_cap: Some(amount(250)),
            total_budget: Some(amount(1_000)),
            ..AssetLimits::new(Network::BASE_SEPOLIA, USDC)
        }],
    }
}

fn intent() -> PaymentIntent {
    PaymentIntent {
        scheme: "auth-capture".into(),
        network: Network::BASE_SEPOLIA,
        asset: USDC,
        payee: SHOP,
        host: "api.example.com".into(),
        amount: amount(100),
        resource: None,
    }
}

#[test]
fn rules_table() {
    let p = policy();
    let usage = |today: u64, total: u64| Usage {
        spent_today: amount(today),
        spent_total: amount(total),
    };
    type Case = (
        &'static str,
        PaymentIntent,
        Usage,
        Result<(), PolicyViolation>,
    );
    let cases: Vec<Case> = vec![
        ("happy path", intent(), usage(0, 0), Ok(())),
        ("exactly at every limit", intent(), usage(150, 900), Ok(())),
        (
            "subdomain wildcard, case-insensitive host",
            PaymentIntent {
                host: "API.eu.Shop.test.".into(),
                ..intent()
            },
            usage(0, 0),
            Ok(()),
        ),
        (
            "network",
            PaymentIntent {
                network: Network::BASE,
                ..intent()
            },
            usage(0, 0),
            Err(PolicyViolation::NetworkNotAllowed {
                network: Network::BASE,
            }),
        ),
        (
            "asset",
            PaymentIntent {
                asset: OTHER_TOKEN,
                ..intent()
            },
            usage(0, 0),
            Err(PolicyViolation::AssetNotAllowed {
                network: Network::BASE_SEPOLIA,
                asset: OTHER_TOKEN,
            }),
        ),
        (
            "payee",
            PaymentIntent {
                payee: STRANGER,
                ..intent()
            },
            usage(0, 0),
            Err(PolicyViolation::PayeeNotAllowed { payee: STRANGER }),
        ),
        (
            "host",
            PaymentIntent {
                host: "evil.example.com".into(),
                ..intent()
            },
            usage(0, 0),
            Err(PolicyViolation::HostNotAllowed {
                host: "evil.example.com".into(),
            }),
        ),
        (
            "wildcard does not match the apex",
            PaymentIntent {
                host: "shop.test".into(),
                ..intent()
            },
            usage(0, 0),
            Err(PolicyViolation::HostNotAllowed {
                host: "shop.test".into(),
            }),
        ),
        (
            "max per payment",
            PaymentIntent {
                amount: amount(101),
                ..intent()
            },
            usage(0, 0),
            Err(PolicyViolation::MaxPerPaymentExceeded {
                network: Network::BASE_SEPOLIA,
                asset: USDC,
                limit: amount(100),
                requested: amount(101),
            }),
        ),
        (
            "daily cap",
            intent(),
            usage(151, 151),
            Err(PolicyViolation::DailyCapExceeded {
                network: Network::BASE_SEPOLIA,
                asset: USDC,
                cap: amount(250),
                spent_today: amount(151),
                requested: amount(100),
            }),
        ),
        (
            "total budget",
            intent(),
            usage(0, 901),
            Err(PolicyViolation::BudgetExhausted {
                network: Network::BASE_SEPOLIA,
                asset: USDC,
                budget: amount(1_000),
                spent: amount(901),
                requested: amount(100),
            }),
        ),
    ];
    for (name, intent, usage, expected) in cases {
        assert_eq!(p.check(&intent, usage), expected, "{name}");
    }
}

#[test]
fn rule_names_are_stable() {
    let v = PolicyViolation::DailyCapExceeded {
        network: Network::BASE,
        asset: USDC,
        cap: amount(1),
        spent_today: amount(1),
        requested: amount(1),
    };
    assert_eq!(v.rule(), "daily_cap");
    assert!(v.to_string().contains("daily_cap"), "{v}");
    assert_eq!(
        PolicyViolation::PayeeNotAllowed { payee: SHOP }.rule(),
        "payees"
    );
}

#[test]
fn absent_limits_do_not_limit() {
    let p = SpendPolicy::new(vec![AssetLimits::new(Network::BASE_SEPOLIA, USDC)]);
    let huge = PaymentIntent {
        amount: Amount::new(alloy::primitives::U256::MAX),
        host: "anything.invalid".into(),
        payee: STRANGER,
        ..intent()
    };
    assert_eq!(
        p.check(
            &huge,
            Usage {
                spent_today: Amount::new(alloy::primitives::U256::MAX),
                spent_total: Amount::new(alloy::primitives::U256::MAX),
            }
        ),
        Ok(())
    );
    // Nothing listed: nothing spendable.
    assert!(matches!(
        SpendPolicy::default().check(&intent(), Usage::default()),
        Err(PolicyViolation::AssetNotAllowed { .. })
    ));
}

#[test]
fn toml_format() {
    let text = r#"
        networks = ["base-sepolia"]
        payees = "*"
        hosts = ["api.example.com", "*.shop.test"]

        [[assets]]
        network = "eip155:84532"
        asset = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
        label = "USDC"
        max_per_payment = "100"
        daily_cap = 250
        total_budget = "1000"
    "#;
    let p = SpendPolicy::from_toml(text).expect("policy");
    assert_eq!(
        p.networks,
        Allowlist::Only(vec![NetworkEntry(Network::BASE_SEPOLIA)])
    );
    assert_eq!(p.payees, Allowlist::Any);
    assert_eq!(p.assets[0].daily_cap, Some(amount(250)));
    assert_eq!(p.assets[0].max_per_payment, Some(amount(100)));
    assert_eq!(p.check(&intent(), Usage::default()), Ok(()));

    // Omitted allowlists allow everything.
    let minimal = SpendPolicy::from_toml(
        "[[assets]]\nnetwork = \"base\"\nasset = \"0x036CbD53842c5426634e7929541eC2318f3dCF7e\"\n",
    )
    .expect("minimal");
    assert_eq!(minimal.hosts, Allowlist::Any);
    assert_eq!(minimal.assets[0].network, Network::BASE);

    // Round trip through JSON.
    let json = serde_json::to_string(&p).expect("json");
    assert_eq!(SpendPolicy::from_json(&json).expect("back"), p);

    for (bad, needle) in [
        ("payees = []", "empty allowlist"),
        ("payees = \"all\"", "\"*\""),
        ("networks = [\"solana\"]", "network"),
        ("surprise = 1", "unknown field"),
        (
            "[[assets]]\nnetwork = \"base\"\nasset = \"0x036CbD53842c5426634e7929541eC2318f3dCF7e\"\nmax_per_payment = \"1.5\"",
            "amount",
        ),
        (
            "[[assets]]\nnetwork = \"base\"\nasset = \"0x036CbD53842c5426634e7929541eC2318f3dCF7e\"\n[[assets]]\nnetwork = \"eip155:8453\"\nasset = \"0x036CbD53842c5426634e7929541eC2318f3dCF7e\"",
            "listed twice",
        ),
    ] {
        let err = SpendPolicy::from_toml(bad).expect_err(bad);
        assert!(err.to_string().contains(needle), "{bad}: {err}");
    }
}
