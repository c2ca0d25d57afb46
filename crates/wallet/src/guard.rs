//! Hostile input: the SSRF guard (private and loopback addresses), the request headers a
//! caller may set, and body sizes.
//!
//! The wallet requests only URLs its key's `hosts` rule allows (see [`rules`](crate::rules)),
//! over `http` or `https`, never following redirects (a 3xx goes back to the caller). A host
//! that is, or resolves to, a non-public address (loopback, private, link-local, CGNAT,
//! unique-local, multicast, unspecified, IPv4-mapped forms of these) is refused unless an
//! entry of `hosts` names that host exactly: tests and local services are an explicit opt-in.
//!
//! **DNS rebinding.** The check above resolves the host; the connection resolves it again. A
//! name that answered with a public address to the check and with a private one to the
//! connection would slip through, so the wallet's HTTP client resolves through
//! [`PublicOnlyResolver`]: at connection time it drops every non-public address of a name that
//! no key has opted into ([`HostPins::opt_in`], recorded when [`check_destination`] lets a
//! non-public host through because a key names it exactly), and fails the connection when none
//! is left.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, RwLock};

use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use x402_escrow_sdk::types::wallet::KeyRules;

use crate::error::WalletError;
use crate::rules::{Refusal, names_host_exactly};

/// Headers a caller may not set: hop-by-hop, framing, `Host`, and the payment headers the
/// wallet itself writes.
pub const FORBIDDEN_HEADERS: &[&str] = &[
    "host",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "expect",
    "x-payment",
    "payment-signature",
    "idempotency-key",
];

/// At most this many request headers.
pub const MAX_HEADERS: usize = 64;

/// Parses and checks a request URL: absolute `http(s)`, with a host, no credentials.
pub fn parse_url(url: &str) -> Result<Url, WalletError> {
    let parsed =
        Url::parse(url).map_err(|e| WalletError::invalid("invalid_url", format!("url: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(WalletError::invalid(
            "invalid_url",
            format!("url scheme {:?} is not http or https", parsed.scheme()),
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(WalletError::invalid(
            "invalid_url",
            "url has no host".to_owned(),
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(WalletError::invalid(
            "invalid_url",
            "url carries credentials".to_owned(),
        ));
    }
    Ok(parsed)
}

/// Whether an address is not on the public internet.
pub fn is_non_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return non_public_v4(v4);
            }
            non_public_v6(v6)
        }
    }
}

fn non_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240
}

fn non_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || ip.to_ipv4().is_some_and(non_public_v4)
}

/// The host names a key has opted into although they resolve to non-public addresses (shared
/// by the wallet's [`check_destination`] calls and its [`PublicOnlyResolver`]).
#[derive(Debug, Clone, Default)]
pub struct HostPins {
    opted_in: Arc<RwLock<HashSet<String>>>,
}

impl HostPins {
    /// Lets connections to `host` use its non-public addresses.
    pub fn opt_in(&self, host: &str) {
        if let Ok(mut set) = self.opted_in.write() {
            set.insert(host.to_ascii_lowercase());
        }
    }

    /// Whether `host` was opted into.
    pub fn allows(&self, host: &str) -> bool {
        self.opted_in
            .read()
            .map(|set| set.contains(&host.to_ascii_lowercase()))
            .unwrap_or(false)
    }
}

/// The wallet HTTP client's resolver: the system resolver, minus the non-public addresses of
/// names no key opted into (see the module's "DNS rebinding").
#[derive(Debug, Clone, Default)]
pub struct PublicOnlyResolver {
    pins: HostPins,
}

impl PublicOnlyResolver {
    /// A resolver consulting `pins`.
    pub fn new(pins: HostPins) -> Self {
        PublicOnlyResolver { pins }
    }

    /// The addresses a connection to `host` may use.
    pub async fn addresses(&self, host: &str) -> std::io::Result<Vec<SocketAddr>> {
        let all: Vec<SocketAddr> = tokio::net::lookup_host((host, 0)).await?.collect();
        if self.pins.allows(host) {
            return Ok(all);
        }
        let public: Vec<SocketAddr> = all.into_iter().filter(|a| !is_non_public(a.ip())).collect();
        if public.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!("{host} resolves only to non-public addresses, which no key names exactly"),
            ));
        }
        Ok(public)
    }
}

impl reqwest::dns::Resolve for PublicOnlyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let resolver = self.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses = resolver.addresses(&host).await?;
            let addresses: reqwest::dns::Addrs = Box::new(addresses.into_iter());
            Ok(addresses)
        })
    }
}

/// The SSRF guard: resolves the URL's host and refuses non-public addresses unless the key's
/// `hosts` names the host exactly (then the host is opted into `pins`, so connections may use
/// its non-public addresses).
pub async fn check_destination(
    rules: &KeyRules,
    url: &Url,
    pins: &HostPins,
) -> Result<(), WalletError> {
    let host = url.host_str().unwrap_or_default();
    let port = url.port_or_known_default().unwrap_or(80);
    let bare = host.trim_matches(['[', ']']);
    let addresses: Vec<IpAddr> = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => tokio::net::lookup_host((bare, port))
            .await
            .map_err(|e| WalletError::Upstream {
                message: format!("cannot resolve {host}: {e}"),
                payment_id: None,
            })?
            .map(|a| a.ip())
            .collect(),
    };
    if let Some(ip) = addresses.iter().find(|ip| is_non_public(**ip)) {
        if names_host_exactly(rules, url) {
            pins.opt_in(bare);
            return Ok(());
        }
        return Err(WalletError::refused(Refusal {
            rule: "hosts",
            code: "private_address",
            message: format!(
                "{host} is (or resolves to) the non-public address {ip}; list it exactly in the \
                 key's hosts to allow it"
            ),
        }));
    }
    Ok(())
}

/// Checks and converts caller headers (no CR/LF or control bytes, no forbidden names).
pub fn request_headers<'a>(
    headers: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Result<HeaderMap, WalletError> {
    let mut map = HeaderMap::new();
    for (count, (name, value)) in headers.into_iter().enumerate() {
        if count >= MAX_HEADERS {
            return Err(WalletError::invalid(
                "invalid_header",
                format!("more than {MAX_HEADERS} headers"),
            ));
        }
        if name
            .bytes()
            .chain(value.bytes())
            .any(|b| b == b'\r' || b == b'\n' || b == 0)
        {
            return Err(WalletError::invalid(
                "invalid_header",
                format!("header {name:?} contains CR, LF or NUL"),
            ));
        }
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            WalletError::invalid("invalid_header", format!("{name:?} is not a header name"))
        })?;
        if FORBIDDEN_HEADERS.contains(&header.as_str()) || header.as_str().starts_with("proxy-") {
            return Err(WalletError::invalid(
                "header_not_allowed",
                format!("header {name:?} may not be set by the caller"),
            ));
        }
        let value = HeaderValue::from_str(value).map_err(|_| {
            WalletError::invalid(
                "invalid_header",
                format!("header {name:?} has an invalid value"),
            )
        })?;
        map.append(header, value);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_public_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "255.255.255.255",
            "224.0.0.1",
        ] {
            assert!(is_non_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "1.1.1.1", "2606:4700::1111"] {
            assert!(!is_non_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn urls_and_headers() {
        assert!(parse_url("file:///etc/passwd").is_err());
        assert!(parse_url("http://user:pw@example.com/").is_err());
        assert!(parse_url("https://example.com/x").is_ok());
        let one = |n: &str, v: &str| {
            let (n, v) = (n.to_owned(), v.to_owned());
            request_headers([(&n, &v)]).map(drop).map_err(|e| e.code())
        };
        assert_eq!(one("X-A", "a\r\nX-PAYMENT: x"), Err("invalid_header"));
        assert_eq!(one("Host", "evil"), Err("header_not_allowed"));
        assert_eq!(one("x-payment", "x"), Err("header_not_allowed"));
        assert_eq!(
            one("Transfer-Encoding", "chunked"),
            Err("header_not_allowed")
        );
        assert_eq!(one("Proxy-Foo", "x"), Err("header_not_allowed"));
        assert_eq!(one("Bad Name", "x"), Err("invalid_header"));
        assert_eq!(one("Accept", "application/json"), Ok(()));
    }

    #[tokio::test]
    async fn ssrf_guard_needs_an_exact_entry() {
        let pins = HostPins::default();
        let any = KeyRules::default();
        let url = parse_url("http://127.0.0.1:9/x").unwrap();
        let err = check_destination(&any, &url, &pins).await.unwrap_err();
        assert_eq!(err.code(), "private_address");
        let wildcard: KeyRules =
            serde_json::from_str(r#"{"hosts": ["*.0.0.1", "127.0.0.1"]}"#).unwrap();
        assert!(check_destination(&wildcard, &url, &pins).await.is_ok());
        let v6 = parse_url("http://[::1]:9/x").unwrap();
        assert_eq!(
            check_destination(&wildcard, &v6, &pins)
                .await
                .unwrap_err()
                .code(),
            "private_address"
        );
        let metadata = parse_url("http://169.254.169.254/latest/meta-data").unwrap();
        assert_eq!(
            check_destination(&any, &metadata, &pins)
                .await
                .unwrap_err()
                .code(),
            "private_address"
        );
    }

    /// A name that resolves to a loopback address: what a rebinding name answers to the
    /// connection after answering the check with a public address.
    #[tokio::test]
    async fn connections_never_reach_a_private_address_no_key_named() {
        let pins = HostPins::default();
        let resolver = PublicOnlyResolver::new(pins.clone());
        let err = resolver.addresses("localhost").await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
        // A key that names it exactly opts it in (through the check), for connections too.
        let named: KeyRules = serde_json::from_str(r#"{"hosts": ["localhost"]}"#).unwrap();
        let url = parse_url("http://localhost:9/x").unwrap();
        assert!(!pins.allows("localhost"));
        check_destination(&named, &url, &pins).await.unwrap();
        assert!(pins.allows("LOCALHOST"));
        let addresses = resolver.addresses("localhost").await.unwrap();
        assert!(
            addresses.iter().all(|a| a.ip().is_loopback()),
            "{addresses:?}"
        );
        // The client refuses the connection before any byte is sent.
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(PublicOnlyResolver::default()))
            .build()
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let sent = client.get(format!("http://localhost:{port}/")).send().await;
        assert!(sent.is_err(), "connected to a private address: {sent:?}");
    }
}
