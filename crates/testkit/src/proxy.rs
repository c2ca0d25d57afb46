//! A switchable TCP proxy: an RPC endpoint or a webhook receiver that goes away or goes silent.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use crate::{Error, Result};

/// How the proxy treats traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyMode {
    /// Forward both ways.
    Up,
    /// The endpoint is gone: open connections are cut, new ones reset as soon as accepted (the
    /// listener stays bound, so nobody else can take the port meanwhile).
    Refuse,
    /// A black hole: every open connection goes silent and new ones are accepted but never
    /// answered. Connections caught in it stay silent for good, even after the proxy is up
    /// again (the peer or a middlebox lost their state without telling anyone); only new
    /// connections are forwarded.
    Blackhole,
}

/// A TCP proxy from a local port to `upstream` whose [`ProxyMode`] the test switches.
#[derive(Clone)]
pub struct Proxy {
    /// The local address to connect to instead of the upstream.
    pub addr: SocketAddr,
    mode: Arc<tokio::sync::watch::Sender<ProxyMode>>,
    /// Connections accepted while up.
    pub accepted: Arc<AtomicU64>,
    /// Connections refused while down.
    pub refused: Arc<AtomicU64>,
    /// Connections swallowed by the black hole.
    pub swallowed: Arc<AtomicU64>,
    held: Arc<Mutex<Vec<TcpStream>>>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    task: Arc<JoinHandle<()>>,
}

impl Proxy {
    /// Binds a local port and starts forwarding it to `upstream` ([`ProxyMode::Up`]).
    pub async fn start(upstream: SocketAddr) -> Result<Proxy> {
        let io = |source| Error::Io {
            what: "binding the proxy's port".into(),
            source,
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.map_err(io)?;
        let addr = listener.local_addr().map_err(io)?;
        let (mode, _) = tokio::sync::watch::channel(ProxyMode::Up);
        let mode = Arc::new(mode);
        let accepted = Arc::new(AtomicU64::new(0));
        let refused = Arc::new(AtomicU64::new(0));
        let swallowed = Arc::new(AtomicU64::new(0));
        let held: Arc<Mutex<Vec<TcpStream>>> = Arc::new(Mutex::new(Vec::new()));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::new(Mutex::new(Vec::new()));
        let task = {
            let (mode, accepted, refused, swallowed, held, conns) = (
                mode.clone(),
                accepted.clone(),
                refused.clone(),
                swallowed.clone(),
                held.clone(),
                conns.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let Ok((inbound, _)) = listener.accept().await else {
                        continue;
                    };
                    let now = *mode.borrow();
                    match now {
                        ProxyMode::Refuse => {
                            refused.fetch_add(1, Ordering::Relaxed);
                            // Reset at once (linger 0 → RST), like a dead host's port.
                            #[allow(deprecated)] // zero linger: an RST, no blocking
                            let _ = inbound.set_linger(Some(Duration::ZERO));
                            drop(inbound);
                            continue;
                        }
                        ProxyMode::Blackhole => {
                            swallowed.fetch_add(1, Ordering::Relaxed);
                            held.lock().await.push(inbound);
                            continue;
                        }
                        ProxyMode::Up => {}
                    }
                    accepted.fetch_add(1, Ordering::Relaxed);
                    let mut rx = mode.subscribe();
                    let held = held.clone();
                    let handle = tokio::spawn(async move {
                        let mut outbound = match TcpStream::connect(upstream).await {
                            Ok(s) => s,
                            Err(e) => {
                                eprintln!("proxy {upstream}: cannot connect upstream: {e}");
                                return;
                            }
                        };
                        let mut inbound = inbound;
                        let silenced = tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => false,
                            _ = rx.wait_for(|m| *m == ProxyMode::Blackhole) => true,
                        };
                        if silenced {
                            // Keep the client's socket open and never answer on it.
                            held.lock().await.push(inbound);
                        } else {
                            let _ = inbound.shutdown().await;
                        }
                    });
                    let mut all = conns.lock().await;
                    all.retain(|h| !h.is_finished());
                    all.push(handle);
                }
            })
        };
        Ok(Proxy {
            addr,
            mode,
            accepted,
            refused,
            swallowed,
            held,
            conns,
            task: Arc::new(task),
        })
    }

    /// `http://` + [`Proxy::addr`].
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Switches the mode (see [`ProxyMode`]).
    pub async fn set_mode(&self, mode: ProxyMode) {
        self.mode.send_replace(mode);
        if mode == ProxyMode::Refuse {
            for h in self.conns.lock().await.drain(..) {
                h.abort();
            }
        }
    }

    /// `Refuse` (true) or `Up` (false).
    pub async fn set_down(&self, down: bool) {
        self.set_mode(if down {
            ProxyMode::Refuse
        } else {
            ProxyMode::Up
        })
        .await;
    }

    /// Connections held silent by the black hole.
    pub async fn held(&self) -> usize {
        self.held.lock().await.len()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if Arc::strong_count(&self.task) == 1 {
            self.task.abort();
        }
    }
}
