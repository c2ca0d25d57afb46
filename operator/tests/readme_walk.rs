//! The README's walk, "Try it with your own API", run as a user would with default settings.
//!
//! The commands are read from README.md between `<!-- readme-walk:begin -->` and
//! `<!-- readme-walk:end -->` (```sh blocks, one command per line, `\` continuations and `#`
//! comments allowed), so the README and this test cannot drift. Each runs with `bash -c` in a
//! fresh temp dir standing in for the repository root: copies of the repository files the
//! commands name (`operator/…`), an empty `deployments/`, and the pinned toolchain (`tools/`).
//!
//! How a README line becomes an action:
//! - `export NAME=VALUE`: evaluated by bash (so `$(…)` runs), NAME and its (non-empty) value are
//!   kept in the environment of every later line;
//! - a line ending in `&`: spawned in the background in its own process group, its output into
//!   files, killed at the end (also on panic); the walk then waits until it answers: anvil's
//!   JSON-RPC, the operator's `GET /healthz`, any HTTP answer from `sample-api` and `gateway`;
//! - any other line must exit 0 (within 3 minutes); its stdout is checked: `pay` of a path the
//!   gateway's upstream serves prints `status 200` and a taken payment, the buyer's balance
//!   drops by the route's price and the merchant's receiver gets the price less the operator's
//!   fee (`fees.bps` of the `-c` file); `pay` of `/missing` prints `status 404`, and the buyer's
//!   balance comes back to what it was before that payment (the void), the receiver's does not
//!   move; `payments list` shows as many `captured` and `voided` payments as were made (the same
//!   line is re-run for up to 90 s while the relayer finishes); `reconcile` exits 0.
//!
//! The rewrites of the command text, and nothing else:
//! 1. `cargo run --release --` → the binary under test (`CARGO_BIN_EXE_x402-escrow`);
//! 2. ports, so that a developer's own anvil, operator or demo on the default ports is left
//!    alone: `127.0.0.1:8545`, `:8402`, `:8403`, `:9000` → free ports picked at start;
//!    `tools/toolchain anvil` gets ` --port P` appended (anvil has no environment variable for
//!    it); the `sample-api` and `gateway` lines get ` --listen 127.0.0.1:P` appended unless they
//!    carry a `--listen`; the operator's own commands (the `-c FILE` ones) get `X402_LISTEN` and
//!    `X402_RPC_URL` (operator/src/config.rs) in their environment, the file stays as it is.
//!
//! The environment is the test's own minus every `X402_*` variable, plus the walk's exports.
//!
//! Then the idle chain: the latest block is made ~1000 s old (anvil's `evm_setTime` to
//! now − 1000, one block, `evm_setTime` back to now: a dev chain that sat idle), and the two
//! `pay` lines, `payments list` and `reconcile` run again with the same outcomes.

#[path = "readme_walk/harness.rs"]
mod harness;

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alloy::primitives::{Address, U256};
use alloy::signers::local::PrivateKeySigner;
use harness::{Ports, Walk};
use serde_json::json;
use x402_escrow_bindings::Deployment;

const BEGIN: &str = "<!-- readme-walk:begin -->";
const END: &str = "<!-- readme-walk:end -->";
const CARGO_RUN: &str = "cargo run --release --";

// ---- parsing ---------------------------------------------------------------------------------

/// One command of the walk.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    /// README line number (1-based) where the command starts.
    line: usize,
    /// The command, continuations joined, comment and trailing `&` removed.
    text: String,
    /// It ended in `&`.
    background: bool,
}

/// The text of `line` before a shell comment (a `#` starting a word, outside quotes).
fn strip_comment(line: &str) -> &str {
    let (mut single, mut double, mut escaped) = (false, false, false);
    let mut prev_blank = true;
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' && !single {
            escaped = true;
        } else if c == '\'' && !double {
            single = !single;
        } else if c == '"' && !single {
            double = !double;
        } else if c == '#' && !single && !double && prev_blank {
            return &line[..i];
        }
        prev_blank = c.is_whitespace();
    }
    line
}

/// The commands between the markers, from its ```sh (or bash/shell) blocks.
fn parse_walk(readme: &str) -> Result<Vec<Line>, String> {
    let lines: Vec<&str> = readme.lines().collect();
    let marker = |m: &str| {
        let at: Vec<usize> = (0..lines.len()).filter(|&i| lines[i].trim() == m).collect();
        match at[..] {
            [i] => Ok(i),
            _ => Err(format!(
                "README.md needs exactly one `{m}` line, has {}",
                at.len()
            )),
        }
    };
    let (begin, end) = (marker(BEGIN)?, marker(END)?);
    if end < begin {
        return Err(format!("`{END}` comes before `{BEGIN}`"));
    }
    let mut out = Vec::new();
    let mut fence: Option<bool> = None; // Some(true): inside a shell block
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in lines.iter().enumerate().take(end).skip(begin + 1) {
        let number = i + 1;
        let line = raw.trim_end();
        if let Some(info) = line.trim_start().strip_prefix("```") {
            match fence {
                None => fence = Some(matches!(info.trim(), "sh" | "bash" | "shell")),
                Some(_) => {
                    if let Some((at, _)) = pending {
                        return Err(format!("README line {at}: `\\` continues past the block"));
                    }
                    fence = None;
                }
            }
            continue;
        }
        if fence != Some(true) {
            continue;
        }
        let (start, mut text) = pending.take().unwrap_or((number, String::new()));
        if let Some(body) = line.strip_suffix('\\') {
            text.push_str(body);
            text.push(' ');
            pending = Some((start, text));
            continue;
        }
        text.push_str(line);
        let code = strip_comment(&text).trim();
        if code.is_empty() {
            continue;
        }
        let (code, background) = match code.strip_suffix('&') {
            Some(rest) if !rest.ends_with('&') => (rest.trim_end(), true),
            _ => (code, false),
        };
        out.push(Line {
            line: start,
            text: code.to_owned(),
            background,
        });
    }
    if fence.is_some() {
        return Err("a ``` block inside the walk is not closed".into());
    }
    Ok(out)
}

/// What a walk line is, for readiness and assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Role {
    Export(String),
    Anvil,
    Deploy,
    Serve,
    SampleApi,
    Gateway,
    Pay { path: String },
    PaymentsList,
    Reconcile,
    Other,
}

impl Role {
    fn of(text: &str) -> Role {
        if let Some(rest) = text.strip_prefix("export ") {
            let name = rest.split('=').next().unwrap_or("").trim();
            return Role::Export(name.to_owned());
        }
        let words: Vec<&str> = text.split_whitespace().collect();
        if words.starts_with(&["tools/toolchain", "anvil"]) {
            return Role::Anvil;
        }
        let Some(rest) = text.strip_prefix(CARGO_RUN) else {
            return Role::Other;
        };
        let mut words: Vec<&str> = rest.split_whitespace().collect();
        if words.first() == Some(&"-c") {
            words.drain(..2.min(words.len()));
        }
        match (words.first().copied(), words.get(1).copied()) {
            (Some("deploy"), _) => Role::Deploy,
            (Some("serve"), _) => Role::Serve,
            (Some("sample-api"), _) => Role::SampleApi,
            (Some("gateway"), _) => Role::Gateway,
            (Some("pay"), Some(url)) => Role::Pay {
                path: url
                    .split_once("://")
                    .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_owned()))
                    .unwrap_or_else(|| "/".into()),
            },
            (Some("payments"), Some("list")) => Role::PaymentsList,
            (Some("reconcile"), _) => Role::Reconcile,
            _ => Role::Other,
        }
    }

    /// A short label for logs: `export NAME`, `pay /path`, or the subcommand.
    fn label(&self, text: &str) -> String {
        match self {
            Role::Export(name) => format!("export {name}"),
            Role::Pay { path } => format!("pay {path}"),
            Role::Anvil => "anvil".into(),
            Role::PaymentsList => "payments list".into(),
            _ => {
                let mut words = text
                    .strip_prefix(CARGO_RUN)
                    .unwrap_or(text)
                    .split_whitespace();
                let mut first = words.next().unwrap_or("");
                if first == "-c" {
                    first = words.nth(1).unwrap_or("");
                }
                first.to_owned()
            }
        }
    }
}

/// `'…'` for bash.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The command text as run (see the module docs for the rewrites).
fn rewrite(text: &str, role: &Role, ports: &Ports, bin: &str) -> String {
    let mut out = text.replace(CARGO_RUN, &shell_quote(bin));
    for (from, to) in ports.map() {
        out = out.replace(&format!("127.0.0.1:{from}"), &format!("127.0.0.1:{to}"));
    }
    match role {
        Role::Anvil => out.push_str(&format!(" --port {}", ports.rpc)),
        Role::SampleApi if !out.contains("--listen") => {
            out.push_str(&format!(" --listen 127.0.0.1:{}", ports.upstream))
        }
        Role::Gateway if !out.contains("--listen") => {
            out.push_str(&format!(" --listen 127.0.0.1:{}", ports.gateway))
        }
        _ => {}
    }
    // A port the walk does not know would reach a developer's own services.
    let ours: Vec<u16> = ports.map().iter().map(|(_, to)| *to).collect();
    for (i, _) in out.match_indices("127.0.0.1:") {
        let digits: String = out[i + 10..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        let port: u16 = digits.parse().unwrap_or(0);
        assert!(
            ours.contains(&port),
            "the README walk uses 127.0.0.1:{digits}, a port this test does not rewrite: {text}"
        );
    }
    out
}

/// Environment additions for the operator's own commands (`-c FILE`, also inside `$(…)`).
fn operator_env(text: &str, ports: &Ports) -> Vec<(String, String)> {
    if text.contains(&format!("{CARGO_RUN} -c ")) {
        vec![
            (
                "X402_LISTEN".into(),
                format!("127.0.0.1:{}", ports.operator),
            ),
            (
                "X402_RPC_URL".into(),
                format!("http://127.0.0.1:{}", ports.rpc),
            ),
        ]
    } else {
        Vec::new()
    }
}

/// `$0.50` → atomic units with `decimals`.
fn price_units(price: &str, decimals: u32) -> u128 {
    let price = price.trim().trim_start_matches('$');
    let (whole, frac) = price.split_once('.').unwrap_or((price, ""));
    assert!(frac.len() as u32 <= decimals, "price {price}");
    let frac = format!("{frac:0<width$}", width = decimals as usize);
    whole.parse::<u128>().unwrap() * 10u128.pow(decimals) + frac.parse::<u128>().unwrap_or(0)
}

/// The gateway line's `--route 'METHOD /path=PRICE'` values: (path, price).
fn routes(gateway: &str) -> Vec<(String, String)> {
    gateway
        .split("--route")
        .skip(1)
        .filter_map(|rest| {
            let rest = rest.trim_start();
            let quote = rest.chars().next()?;
            let body = if quote == '\'' || quote == '"' {
                rest[1..].split(quote).next()?
            } else {
                rest.split_whitespace().next()?
            };
            let (spec, price) = body.split_once('=')?;
            let path = spec.split_whitespace().nth(1)?;
            Some((path.to_owned(), price.to_owned()))
        })
        .collect()
}

/// (HTTP status, the payment's status, whether a void was announced) from `pay`'s output.
fn pay_output(stdout: &str) -> (Option<u16>, Option<String>, bool) {
    let statuses: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("status"))
        .map(str::trim)
        .collect();
    (
        statuses.first().and_then(|s| s.parse().ok()),
        statuses.get(1).map(|s| s.to_string()),
        stdout.contains("will be voided"),
    )
}

/// Payments by status in `payments list`'s output.
fn count_status(list: &str, status: &str) -> usize {
    list.lines()
        .skip(1)
        .filter(|l| l.split_whitespace().nth(1) == Some(status))
        .count()
}

// ---- the walk --------------------------------------------------------------------------------

const COMMAND_TIMEOUT: Duration = Duration::from_secs(180);
const READY_TIMEOUT: Duration = Duration::from_secs(180);
const SETTLE_TIMEOUT: Duration = Duration::from_secs(90);

struct Runner {
    walk: Walk,
    bin: String,
    /// path → price in atomic units, from the gateway line.
    prices: Vec<(String, u128)>,
    captured: usize,
    voided: usize,
    /// The merchant's receiver (`merchant add --receiver`) and the operator's fee (`fees.bps` of
    /// the `-c` file): a capture pays the receiver the price less the fee.
    merchant: Option<(Address, u128)>,
}

/// The word after `flag` in `text`.
fn flag_value<'a>(text: &'a str, flag: &str) -> Option<&'a str> {
    let mut words = text.split_whitespace();
    words.find(|w| *w == flag)?;
    words.next().map(|w| w.trim_end_matches(')'))
}

impl Runner {
    fn script(&self, line: &Line, role: &Role) -> String {
        rewrite(&line.text, role, &self.walk.ports, &self.bin)
    }

    fn must_run(&mut self, line: &Line, role: &Role) -> String {
        let script = self.script(line, role);
        let env = operator_env(&line.text, &self.walk.ports);
        let out = self
            .walk
            .run(&role.label(&line.text), &script, &env, COMMAND_TIMEOUT);
        assert!(
            out.status.success(),
            "README line {}: `{}` failed ({}):\n{}\n{}",
            line.line,
            line.text,
            out.status,
            out.stdout,
            out.stderr
        );
        out.stdout
    }

    fn step(&mut self, line: &Line) {
        let role = Role::of(&line.text);
        if line.text.contains(" merchant add ") {
            let receiver: Address = flag_value(&line.text, "--receiver")
                .and_then(|r| r.parse().ok())
                .expect("merchant add --receiver ADDRESS");
            let file = flag_value(&line.text, "-c").expect("merchant add with -c FILE");
            let config: toml::Table = std::fs::read_to_string(self.walk.path(file))
                .unwrap()
                .parse()
                .unwrap();
            let bps = config["fees"]["bps"].as_integer().expect("fees.bps") as u128;
            self.merchant = Some((receiver, bps));
        }
        let ports = self.walk.ports;
        if line.background {
            let script = self.script(line, &role);
            let env = operator_env(&line.text, &ports);
            let n = self.walk.spawn(&role.label(&line.text), &script, &env);
            match role {
                Role::Anvil => self
                    .walk
                    .wait_ready(n, "JSON-RPC answer", READY_TIMEOUT, |w| {
                        w.rpc("eth_chainId", json!([])).is_ok()
                    }),
                Role::Serve => {
                    let url = format!("http://127.0.0.1:{}/healthz", ports.operator);
                    self.walk
                        .wait_ready(n, "200 from /healthz", READY_TIMEOUT, |w| {
                            w.http_status(&url) == Some(200)
                        })
                }
                Role::SampleApi | Role::Gateway => {
                    let port = if role == Role::Gateway {
                        ports.gateway
                    } else {
                        ports.upstream
                    };
                    let url = format!("http://127.0.0.1:{port}/");
                    self.walk.wait_ready(n, "HTTP answer", READY_TIMEOUT, |w| {
                        w.http_status(&url).is_some()
                    })
                }
                _ => {}
            }
            if role == Role::Gateway {
                let decimals = self.deployment().token.as_ref().map_or(6, |t| t.decimals) as u32;
                self.prices = routes(&line.text)
                    .into_iter()
                    .map(|(path, price)| (path, price_units(&price, decimals)))
                    .collect();
            }
            return;
        }
        match &role {
            Role::Export(name) => {
                let script = format!("{}\nprintf '%s' \"${{{name}}}\"", self.script(line, &role));
                let env = operator_env(&line.text, &self.walk.ports);
                let out = self
                    .walk
                    .run(&role.label(&line.text), &script, &env, COMMAND_TIMEOUT);
                assert!(
                    out.status.success() && !out.stdout.is_empty(),
                    "README line {}: `{}` left {name} empty ({}):\n{}",
                    line.line,
                    line.text,
                    out.status,
                    out.stderr
                );
                self.walk.env.insert(name.clone(), out.stdout);
            }
            Role::Pay { path } => self.pay(line, &role, path),
            Role::PaymentsList => self.payments_list(line, &role),
            _ => {
                self.must_run(line, &role);
            }
        }
    }

    fn deployment(&self) -> Deployment {
        let path = self.walk.path("deployments/31337.json");
        Deployment::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn buyer(&self) -> Address {
        let key = self
            .walk
            .env
            .get("X402_BUYER_KEY")
            .expect("the walk exports X402_BUYER_KEY");
        key.trim()
            .parse::<PrivateKeySigner>()
            .expect("buyer key")
            .address()
    }

    fn balance(&self, who: Address) -> u128 {
        let token = self
            .deployment()
            .token
            .expect("deploy --test-token records the token")
            .address;
        let data = format!("0x70a08231{:0>64}", hex::encode(who));
        let answer = self
            .walk
            .rpc("eth_call", json!([{"to": token, "data": data}, "latest"]))
            .expect("balanceOf");
        answer
            .as_str()
            .unwrap()
            .parse::<U256>()
            .unwrap()
            .to::<u128>()
    }

    /// Polls `who`'s balance until it is `want`.
    fn wait_balance(&self, who: Address, want: u128, what: &str) {
        let start = Instant::now();
        loop {
            let now = self.balance(who);
            if now == want {
                return;
            }
            assert!(
                start.elapsed() < SETTLE_TIMEOUT,
                "{what}: the balance of {who} is {now}, expected {want}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn pay(&mut self, line: &Line, role: &Role, path: &str) {
        let price = self
            .prices
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, price)| *price)
            .unwrap_or_else(|| panic!("README line {}: {path} is not a gateway route", line.line));
        let buyer = self.buyer();
        let (receiver, bps) = self.merchant.expect("merchant add comes before pay");
        let before = self.balance(buyer);
        let receiver_before = self.balance(receiver);
        let stdout = self.must_run(line, role);
        let (http, payment, void_note) = pay_output(&stdout);
        let context = format!("README line {} ({}):\n{stdout}", line.line, line.text);
        println!("{context}");
        if path == "/missing" {
            assert_eq!(http, Some(404), "{context}");
            assert!(
                payment.as_deref() == Some("voided") || void_note,
                "the payment is not voided: {context}"
            );
            self.wait_balance(buyer, before, "the buyer, after the void: money back");
            self.wait_balance(receiver, receiver_before, "the receiver, after the void");
            self.voided += 1;
        } else {
            assert_eq!(http, Some(200), "{context}");
            assert!(
                matches!(payment.as_deref(), Some("paid" | "captured")),
                "no taken payment: {context}"
            );
            self.wait_balance(buyer, before - price, "the buyer, after the capture");
            let net = price - price * bps / 10_000;
            self.wait_balance(
                receiver,
                receiver_before + net,
                &format!("the receiver, after the capture (price less {bps} bps)"),
            );
            self.captured += 1;
        }
    }

    fn payments_list(&mut self, line: &Line, role: &Role) {
        let start = Instant::now();
        loop {
            let list = self.must_run(line, role);
            let (c, v) = (
                count_status(&list, "captured"),
                count_status(&list, "voided"),
            );
            if (c, v) == (self.captured, self.voided) {
                println!("{list}");
                return;
            }
            assert!(
                start.elapsed() < SETTLE_TIMEOUT,
                "`payments list`: {c} captured and {v} voided, expected {} and {}:\n{list}",
                self.captured,
                self.voided
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// The latest block ~1000 s old, the next one mined at wall-clock time.
    fn idle_chain(&self) {
        let now = || {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs()
        };
        let w = &self.walk;
        w.rpc("evm_setTime", json!([now() - 1000]))
            .expect("evm_setTime");
        w.rpc("evm_mine", json!([])).expect("evm_mine");
        w.rpc("evm_setTime", json!([now()])).expect("evm_setTime");
        let block = w
            .rpc("eth_getBlockByNumber", json!(["latest", false]))
            .expect("latest block");
        let ts = u64::from_str_radix(
            block["timestamp"]
                .as_str()
                .unwrap()
                .trim_start_matches("0x"),
            16,
        )
        .unwrap();
        let age = now().saturating_sub(ts);
        assert!(age > 900, "the latest block is only {age} s old");
        println!("idle chain: the latest block is {age} s old");
    }
}

#[test]
fn walk_is_read_from_readme_fragments() {
    let fragment = "\
intro
```sh
not-in-walk
```
<!-- readme-walk:begin -->
Prose with a `code` # not a comment
```sh
tools/toolchain anvil &        # a chain
export K=0xabc   # key
# a whole-line comment

cargo run --release -- gateway --upstream http://127.0.0.1:9000 \\
  --route 'GET /report=$0.50' --route \"GET /a#b=$1\" &
echo 'a # b' && true   # done
```
```text
ignored output
```
```sh
cargo run --release -- -c operator/x402-escrow.example.toml payments list
```
<!-- readme-walk:end -->
after
";
    let walk = parse_walk(fragment).unwrap();
    let texts: Vec<(usize, &str, bool)> = walk
        .iter()
        .map(|l| (l.line, l.text.as_str(), l.background))
        .collect();
    assert_eq!(
        texts,
        vec![
            (8, "tools/toolchain anvil", true),
            (9, "export K=0xabc", false),
            (
                12,
                "cargo run --release -- gateway --upstream http://127.0.0.1:9000    --route 'GET /report=$0.50' --route \"GET /a#b=$1\"",
                true
            ),
            (14, "echo 'a # b' && true", false),
            (
                20,
                "cargo run --release -- -c operator/x402-escrow.example.toml payments list",
                false
            ),
        ]
    );
    assert_eq!(Role::of(&walk[0].text), Role::Anvil);
    assert_eq!(Role::of(&walk[1].text), Role::Export("K".into()));
    assert_eq!(Role::of(&walk[2].text), Role::Gateway);
    assert_eq!(Role::of(&walk[4].text), Role::PaymentsList);
    assert_eq!(
        routes(&walk[2].text),
        vec![
            ("/report".into(), "$0.50".into()),
            ("/a#b".into(), "$1".into())
        ]
    );
    assert_eq!(price_units("$0.50", 6), 500_000);
    assert_eq!(price_units("2", 6), 2_000_000);

    let ports = Ports {
        rpc: 1,
        operator: 2,
        gateway: 3,
        upstream: 4,
    };
    assert_eq!(
        rewrite(&walk[0].text, &Role::Anvil, &ports, "/b/x"),
        "tools/toolchain anvil --port 1"
    );
    assert_eq!(
        rewrite(
            "cargo run --release -- pay http://127.0.0.1:8403/report --policy p.toml",
            &Role::Other,
            &ports,
            "/b/x"
        ),
        "'/b/x' pay http://127.0.0.1:3/report --policy p.toml"
    );
    assert!(rewrite(&walk[2].text, &Role::Gateway, &ports, "/b/x").ends_with(
        "--upstream http://127.0.0.1:4    --route 'GET /report=$0.50' --route \"GET /a#b=$1\" --listen 127.0.0.1:3"
    ));
    assert_eq!(operator_env(&walk[4].text, &ports).len(), 2);
    assert!(operator_env(&walk[2].text, &ports).is_empty());
    assert_eq!(
        operator_env(
            "export K=$(cargo run --release -- -c f.toml merchant add)",
            &ports
        )
        .len(),
        2
    );

    assert!(parse_walk("no markers").is_err());
    assert!(
        parse_walk("<!-- readme-walk:begin -->\n```sh\nx \\\n```\n<!-- readme-walk:end -->")
            .is_err()
    );
    assert!(parse_walk("<!-- readme-walk:begin -->\n```sh\nx\n<!-- readme-walk:end -->").is_err());
}

#[test]
fn readme_walk_runs_with_default_settings() {
    let root = Path::new(x402_escrow_bindings::contracts::WORKSPACE_ROOT);
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let walk = parse_walk(&readme).expect("the walk in README.md");
    let roles: Vec<Role> = walk.iter().map(|l| Role::of(&l.text)).collect();
    for (want, what) in [
        (Role::Anvil, "tools/toolchain anvil &"),
        (Role::Deploy, "deploy"),
        (Role::Serve, "serve &"),
        (Role::SampleApi, "sample-api &"),
        (Role::Gateway, "gateway &"),
        (
            Role::Pay {
                path: "/report".into(),
            },
            "pay …/report",
        ),
        (
            Role::Pay {
                path: "/missing".into(),
            },
            "pay …/missing",
        ),
        (Role::PaymentsList, "payments list"),
        (Role::Reconcile, "reconcile"),
    ] {
        assert!(
            roles.contains(&want),
            "the README walk has no `{what}` line"
        );
    }

    // The repository files the commands name, copied into the walk's directory.
    let mut files: Vec<String> = walk
        .iter()
        .flat_map(|l| l.text.split_whitespace())
        .map(|w| w.trim_matches(|c| c == '\'' || c == '"' || c == ')'))
        .filter(|w| w.starts_with("operator/") && root.join(w).is_file())
        .map(str::to_owned)
        .collect();
    files.sort();
    files.dedup();

    let mut run = Runner {
        walk: Walk::new(root, &files),
        bin: env!("CARGO_BIN_EXE_x402-escrow").to_owned(),
        prices: Vec::new(),
        captured: 0,
        voided: 0,
        merchant: None,
    };
    println!(
        "README walk in {}, ports {:?}",
        run.walk.dir.path().display(),
        run.walk.ports
    );
    for line in &walk {
        run.step(line);
    }
    let first = run.walk.elapsed();

    // A dev chain that sat idle: the same payments again.
    run.idle_chain();
    for (line, role) in walk.iter().zip(&roles) {
        if matches!(
            role,
            Role::Pay { .. } | Role::PaymentsList | Role::Reconcile
        ) {
            run.step(line);
        }
    }
    assert_eq!((run.captured, run.voided), (2, 2));
    println!(
        "README walk: {:.1}s, then {:.1}s on the idle chain\n{}",
        first.as_secs_f64(),
        (run.walk.elapsed() - first).as_secs_f64(),
        run.walk.summary()
    );
}
