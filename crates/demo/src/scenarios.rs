//! The four scenarios and their report.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256, U256};
use axum::http::HeaderMap;
use x402_escrow_sdk::Amount;
use x402_escrow_sdk::buyer::{BuyerClient, BuyerError, PaymentOutcome};
use x402_escrow_sdk::merchant::{OperatorPayment, X402Layer};

use crate::merchant::{merchant_app, serve_app};
use crate::stack::{Balances, Stack};
use crate::{DemoArgs, DemoError, FEE_BPS, Result, USDC, format_units};

/// `ensure!` for [`DemoError::Unexpected`].
macro_rules! check {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(DemoError::Unexpected(format!($($fmt)+)));
        }
    };
}

/// How a scenario ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Paid and captured.
    Captured,
    /// The hold was released.
    Voided,
    /// Captured, then `refunded` (atomic units) returned.
    Refunded {
        /// Returned to the payer.
        refunded: u64,
    },
    /// The buyer's own policy refused; nothing was signed.
    Refused {
        /// The rule (`max_per_payment`, …).
        rule: String,
        /// The refusal message.
        message: String,
    },
}

/// One scenario's result.
#[derive(Debug, Clone)]
pub struct ScenarioReport {
    /// Title.
    pub title: String,
    /// The request (`GET /weather`).
    pub request: String,
    /// The request id sent (`X-Request-Id`).
    pub request_id: String,
    /// HTTP status the buyer saw (none when refused before sending a payment).
    pub http_status: Option<u16>,
    /// What happened.
    pub outcome: Outcome,
    /// The price, atomic units.
    pub price: u64,
    /// The operator's payment id.
    pub payment_id: Option<String>,
    /// The escrow's payment hash.
    pub payment_hash: Option<B256>,
    /// The operator's final status.
    pub status: Option<String>,
    /// Captured and refunded amounts (atomic units).
    pub captured: u64,
    /// Refunded amount (atomic units).
    pub refunded: u64,
    /// The buyer ledger's status.
    pub ledger_status: Option<String>,
    /// `(kind, hash)` of every chain transaction.
    pub transactions: Vec<(String, Option<B256>)>,
    /// Balances before.
    pub before: Balances,
    /// Balances after.
    pub after: Balances,
}

/// Everything the demo did.
#[derive(Debug, Clone)]
pub struct DemoReport {
    /// Chain id.
    pub chain_id: u64,
    /// The escrow.
    pub escrow: Address,
    /// The token.
    pub token: Address,
    /// The operator's API.
    pub operator_url: String,
    /// The merchant's URL.
    pub merchant_url: String,
    /// The four scenarios, in order.
    pub scenarios: Vec<ScenarioReport>,
    /// Webhook deliveries the merchant received.
    pub webhooks: usize,
    /// Wall time.
    pub elapsed: Duration,
}

fn amount_u64(amount: Amount) -> u64 {
    amount.to_u64().unwrap_or(u64::MAX)
}

struct Paid {
    status: u16,
    payment: PaymentOutcome,
}

async fn pay(buyer: &BuyerClient, url: &str, request_id: &str) -> Result<Result<Paid, BuyerError>> {
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-request-id",
        request_id
            .parse()
            .map_err(|e| DemoError::step(format!("request id {request_id:?}"), e))?,
    );
    let request = buyer
        .http()
        .get(url)
        .headers(headers)
        .build()
        .map_err(|e| DemoError::step(format!("building GET {url}"), e))?;
    match buyer.send(request).await {
        Ok(paid) => {
            let status = paid.response.status().as_u16();
            let _ = paid.response.bytes().await;
            let payment = paid.payment.ok_or_else(|| {
                DemoError::Unexpected(format!(
                    "GET {url} answered {status} without asking for payment"
                ))
            })?;
            Ok(Ok(Paid { status, payment }))
        }
        Err(e) => Ok(Err(e)),
    }
}

/// A fresh report for scenario `title` (`GET {path}` with `request_id`), the balances read now
/// as both before and after.
async fn scenario(
    stack: &Stack,
    title: &str,
    path: &str,
    request_id: &str,
) -> Result<ScenarioReport> {
    let before = stack.balances().await?;
    Ok(ScenarioReport {
        title: title.into(),
        request: format!("GET {path}"),
        request_id: request_id.into(),
        http_status: None,
        outcome: Outcome::Voided,
        price: 0,
        payment_id: None,
        payment_hash: None,
        status: None,
        captured: 0,
        refunded: 0,
        ledger_status: None,
        transactions: Vec::new(),
        before,
        after: before,
    })
}

fn fill(report: &mut ScenarioReport, paid: &Paid, payment: &OperatorPayment) {
    report.http_status = Some(paid.status);
    report.price = amount_u64(paid.payment.amount);
    report.payment_id = Some(payment.id.to_string());
    report.payment_hash = Some(payment.payment_hash);
    report.status = Some(payment.status.to_string());
    report.captured = amount_u64(Amount::from(payment.amounts.captured));
    report.refunded = amount_u64(Amount::from(payment.amounts.refunded));
    report.transactions = payment
        .transactions
        .iter()
        .map(|t| (t.kind.clone(), t.hash))
        .collect();
}

fn operator_id(paid: &Paid, what: &str) -> Result<String> {
    paid.payment.merchant_payment_id.clone().ok_or_else(|| {
        DemoError::Unexpected(format!("{what}: the receipt names no operator payment id"))
    })
}

fn fee(amount: u64) -> u64 {
    amount * u64::from(FEE_BPS) / 10_000
}

/// Pays `path` on the merchant as scenario `n`, checks the HTTP status, and returns the
/// response with the operator's payment id.
async fn pay_expecting(
    buyer: &BuyerClient,
    merchant_url: &str,
    report: &ScenarioReport,
    n: u8,
    path: &str,
    http: u16,
) -> Result<(Paid, String)> {
    let paid = pay(buyer, &format!("{merchant_url}{path}"), &report.request_id)
        .await?
        .map_err(|e| DemoError::step(format!("scenario {n} ({path}): the buyer failed"), e))?;
    check!(
        paid.status == http,
        "scenario {n} ({path}): HTTP {} instead of {http}",
        paid.status
    );
    let id = operator_id(&paid, &format!("scenario {n}"))?;
    Ok((paid, id))
}

/// Fills in the report of a settled payment: the operator's `payment`, the buyer's own ledger,
/// the balances after, and `outcome`.
async fn settle(
    stack: &Stack,
    buyer: &BuyerClient,
    report: &mut ScenarioReport,
    paid: &Paid,
    payment: &OperatorPayment,
    outcome: Outcome,
) -> Result<()> {
    fill(report, paid, payment);
    report.ledger_status = ledger_status(buyer, paid)?;
    report.after = stack.balances().await?;
    report.outcome = outcome;
    Ok(())
}

/// `before … / after …`: the balances of a scenario, for error messages.
fn balances(report: &ScenarioReport) -> String {
    format!(
        "before {} / after {}",
        report.before.line(),
        report.after.line()
    )
}

/// What the buyer's own ledger says about a payment.
fn ledger_status(buyer: &BuyerClient, paid: &Paid) -> Result<Option<String>> {
    Ok(Some(
        buyer
            .ledger()
            .get(&paid.payment.payment_id)
            .map_err(|e| DemoError::step("reading the buyer's ledger", e))?
            .map(|r| r.status.name().to_owned())
            .unwrap_or_default(),
    ))
}

/// Runs the four scenarios on `stack`; fails on the first unexpected outcome.
pub async fn scenarios(stack: &Stack, merchant_url: &str) -> Result<Vec<ScenarioReport>> {
    let ledger = stack.dir().join("buyer-ledger.json");
    let thrifty = stack.buyer(stack.policy(USDC), &ledger)?;
    let generous = stack.buyer(stack.policy(5 * USDC), &ledger)?;
    let mut out = Vec::new();

    // 1. Success → captured.
    let title = "pay for a resource that succeeds";
    let mut s = scenario(stack, title, "/weather", "demo-1-weather").await?;
    let before = s.before;
    let (paid, id) = pay_expecting(&thrifty, merchant_url, &s, 1, "/weather", 200).await?;
    let payment = stack.wait_for(&id, "captured").await?;
    settle(stack, &thrifty, &mut s, &paid, &payment, Outcome::Captured).await?;
    let price = s.price;
    check!(
        price == USDC / 100,
        "scenario 1: price {price}, expected 10000"
    );
    check!(
        s.after.payer == before.payer - U256::from(price)
            && s.after.merchant == before.merchant + U256::from(price - fee(price))
            && s.after.fee_receiver == before.fee_receiver + U256::from(fee(price)),
        "scenario 1: balances moved unexpectedly: {}",
        balances(&s)
    );
    out.push(s);

    // 2. Handler fails → voided, the payer is whole.
    let title = "pay for a resource whose handler fails";
    let mut s = scenario(stack, title, "/flaky", "demo-2-flaky").await?;
    let before = s.before;
    let (paid, id) = pay_expecting(&thrifty, merchant_url, &s, 2, "/flaky", 500).await?;
    let payment = stack.wait_for(&id, "voided").await?;
    settle(stack, &thrifty, &mut s, &paid, &payment, Outcome::Voided).await?;
    check!(
        s.after.payer == before.payer && s.after.merchant == before.merchant,
        "scenario 2: the payer was not made whole: {}",
        balances(&s)
    );
    out.push(s);

    // 3. $2.00 under a policy allowing it → captured → merchant refunds half.
    let title = "captured, then half refunded by the merchant";
    let mut s = scenario(stack, title, "/report", "demo-3-report").await?;
    let before = s.before;
    let (paid, id) = pay_expecting(&generous, merchant_url, &s, 3, "/report", 200).await?;
    stack.wait_for(&id, "captured").await?;
    let price = amount_u64(paid.payment.amount);
    let half = price / 2;
    stack
        .operator_client()
        .refund(&id, Amount::from(half))
        .await
        .map_err(|e| DemoError::step("scenario 3: the refund was refused", e))?;
    let payment = stack.wait_for(&id, "partially_refunded").await?;
    let _ = generous.ledger().record_refund(
        &paid.payment.payment_id,
        Amount::from(half),
        x402_escrow_sdk::buyer::unix_now(),
    );
    let refunded = Outcome::Refunded { refunded: half };
    settle(stack, &generous, &mut s, &paid, &payment, refunded).await?;
    check!(
        s.refunded == half && s.after.payer == before.payer - U256::from(price - half),
        "scenario 3: expected {half} back: {}",
        balances(&s)
    );
    out.push(s);

    // 4. Over the buyer's own max per payment → refused before signing.
    let title = "refused by the buyer's own spend policy ($1 max per payment)";
    let mut s = scenario(stack, title, "/report", "demo-4-report").await?;
    let before = s.before;
    let records = |buyer: &BuyerClient| {
        buyer
            .ledger()
            .records()
            .map(|r| r.len())
            .map_err(|e| DemoError::step("reading the buyer's ledger", e))
    };
    let records_before = records(&thrifty)?;
    match pay(&thrifty, &format!("{merchant_url}/report"), &s.request_id).await? {
        Err(BuyerError::Policy(violation)) => {
            s.outcome = Outcome::Refused {
                rule: violation.rule().to_owned(),
                message: violation.to_string(),
            };
        }
        Err(e) => {
            return Err(DemoError::step(
                "scenario 4: expected a policy refusal, got",
                e,
            ));
        }
        Ok(paid) => {
            return Err(DemoError::Unexpected(format!(
                "scenario 4: expected a policy refusal, but the buyer paid (HTTP {})",
                paid.status
            )));
        }
    }
    s.price = 2 * USDC;
    s.after = stack.balances().await?;
    check!(
        s.after == before && records(&thrifty)? == records_before,
        "scenario 4: a refused payment moved money or was recorded"
    );
    out.push(s);
    Ok(out)
}

/// Runs the whole demo and returns what happened.
///
/// `operator_exe` is the `x402-escrow` binary (the operator runs as its child process).
pub async fn run(operator_exe: &Path, args: DemoArgs) -> Result<DemoReport> {
    let started = Instant::now();
    let bind = |source| DemoError::Io {
        what: "binding the demo merchant".into(),
        source,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(bind)?;
    let merchant_url = format!("http://{}", listener.local_addr().map_err(bind)?);
    let stack = Stack::start(
        operator_exe,
        args.anvil,
        Some(format!("{merchant_url}/webhooks")),
    )
    .await?;
    let payments = X402Layer::new(stack.operator_client(), stack.payments_config());
    let webhooks = Arc::new(AtomicUsize::new(0));
    let stop_merchant = serve_app(listener, merchant_app(&payments, webhooks.clone()));
    let result = scenarios(&stack, &merchant_url).await;
    // Let the webhook worker deliver the last events.
    let deadline = Instant::now() + Duration::from_secs(3);
    while webhooks.load(Ordering::SeqCst) < 7 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop_merchant.send(());
    let report = result.map(|scenarios| DemoReport {
        chain_id: stack.deployment.chain_id,
        escrow: stack.deployment.auth_capture_escrow,
        token: stack.token.address,
        operator_url: stack.operator_url(),
        merchant_url: merchant_url.clone(),
        scenarios,
        webhooks: webhooks.load(Ordering::SeqCst),
        elapsed: Duration::ZERO,
    });
    stack.shutdown().await;
    let mut report = report?;
    report.elapsed = started.elapsed();
    Ok(report)
}

impl DemoReport {
    /// The readable summary.
    pub fn render(&self) -> String {
        let usd = |units: u64| format!("${}", format_units(U256::from(units), 6));
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        line("x402-escrow demo: refundable x402 payments, end to end".into());
        line(format!("chain        {} (local anvil)", self.chain_id));
        line(format!("escrow       {}", self.escrow));
        line(format!("token        {}", self.token));
        line(format!("operator     {}", self.operator_url));
        line(format!("merchant     {}", self.merchant_url));
        for (i, s) in self.scenarios.iter().enumerate() {
            line(String::new());
            line(format!("[{}] {} — {}", i + 1, s.title, s.request));
            line(format!("    request id   {}", s.request_id));
            let outcome = match &s.outcome {
                Outcome::Captured => format!(
                    "CAPTURED {} (fee {})",
                    usd(s.captured),
                    usd(fee(s.captured))
                ),
                Outcome::Voided => format!(
                    "VOIDED: the hold of {} went back to the payer",
                    usd(s.price)
                ),
                Outcome::Refunded { refunded } => format!(
                    "CAPTURED {} then REFUNDED {} to the payer",
                    usd(s.captured),
                    usd(*refunded)
                ),
                Outcome::Refused { rule, message } => {
                    format!("REFUSED by rule `{rule}` before signing: {message}")
                }
            };
            line(format!("    outcome      {outcome}"));
            if let Some(status) = s.http_status {
                line(format!("    http         {status}"));
            }
            line(format!("    price        {}", usd(s.price)));
            if let Some(id) = &s.payment_id {
                line(format!(
                    "    payment      {id} (operator status {})",
                    s.status.as_deref().unwrap_or("-")
                ));
            }
            if let Some(hash) = s.payment_hash {
                line(format!("    payment hash {hash}"));
            }
            if let Outcome::Refunded { .. } = s.outcome {
                line("    refund       charged to the merchant's refund reserve (credited with 2 USDC at start-up), paid from the operator's refund account (OperatorRefundCollector), through POST /v1/payments/{id}/refund".into());
            }
            if let Some(status) = &s.ledger_status {
                line(format!("    buyer ledger {status}"));
            }
            for (kind, hash) in &s.transactions {
                line(format!(
                    "    tx {kind:<9} {}",
                    hash.map(|h| h.to_string()).unwrap_or_else(|| "-".into())
                ));
            }
            if s.transactions.is_empty() && matches!(s.outcome, Outcome::Refused { .. }) {
                line("    tx           none (nothing signed, nothing sent)".into());
            }
            line(format!("    before       {}", s.before.line()));
            line(format!("    after        {}", s.after.line()));
        }
        line(String::new());
        line(format!(
            "webhooks     {} events delivered to the merchant",
            self.webhooks
        ));
        line(format!(
            "All four outcomes as expected ({:.1} s).",
            self.elapsed.as_secs_f64()
        ));
        out
    }
}
