//! The `x402-escrow` binary as a child process.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use crate::{Error, Result};

/// A free local port for an operator that binds it again on every restart. Picked below Linux's
/// ephemeral range (32768–60999), so that while the operator is down no outgoing connection of
/// this or another process can be given the same port.
pub fn free_port() -> Result<u16> {
    use rand::Rng;
    let mut rng = rand::rng();
    for _ in 0..200 {
        let port = rng.random_range(20_000..32_000u16);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err(Error::Operator("no free port in 20000..32000".into()))
}

/// How to run the operator binary: `exe -c config …` with `env`, output appended to `log`,
/// listening on `addr` (the config's `listen`). Every process started from it is the same
/// operator on the same database, so a restart is `spawn` again.
#[derive(Debug, Clone)]
pub struct OperatorCommand {
    /// The `x402-escrow` binary.
    pub exe: PathBuf,
    /// Its config file.
    pub config: PathBuf,
    /// Where `serve` listens (must match the config).
    pub addr: SocketAddr,
    /// The file the operator's stdout and stderr are appended to.
    pub log: PathBuf,
    /// Extra environment (the signer key, `RUST_LOG`).
    pub env: Vec<(String, String)>,
    /// Pass this process's own `X402_*` variables on (by default they are removed, so nothing of
    /// the caller's environment leaks into the operator's configuration).
    pub inherit_x402_env: bool,
}

impl OperatorCommand {
    /// `exe -c config`, listening on `addr`, logging to `log`.
    pub fn new(
        exe: impl Into<PathBuf>,
        config: impl Into<PathBuf>,
        addr: SocketAddr,
        log: impl Into<PathBuf>,
    ) -> Self {
        OperatorCommand {
            exe: exe.into(),
            config: config.into(),
            addr,
            log: log.into(),
            env: Vec::new(),
            inherit_x402_env: false,
        }
    }

    /// Adds an environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The base command: the binary on the config file with the environment set.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.exe);
        cmd.arg("-c").arg(&self.config);
        if !self.inherit_x402_env {
            for (k, _) in std::env::vars() {
                if k.starts_with("X402_") {
                    cmd.env_remove(k);
                }
            }
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Runs an admin command (`migrate`, `merchant add …`, `reconcile`) to completion without
    /// blocking the caller's runtime.
    pub async fn run(&self, args: &[&str]) -> Result<Output> {
        let mut cmd = tokio::process::Command::from(self.command());
        cmd.args(args)
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|source| Error::Io {
                what: format!("running {} {}", self.exe.display(), args.join(" ")),
                source,
            })
    }

    /// Spawns `serve` (output appended to the log file).
    pub fn spawn(&self) -> Result<OperatorProcess> {
        let io = |what: String| move |source| Error::Io { what, source };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(io(format!("opening {}", self.log.display())))?;
        let stdout = log
            .try_clone()
            .map_err(io(format!("opening {}", self.log.display())))?;
        let child = self
            .command()
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(log)
            .spawn()
            .map_err(io(format!("starting {} serve", self.exe.display())))?;
        Ok(OperatorProcess {
            pid: child.id(),
            child: Some(child),
            addr: self.addr,
            log: self.log.clone(),
        })
    }

    /// Spawns `serve` and waits (at most `timeout`) until `/healthz` answers.
    pub async fn start(&self, timeout: Duration) -> Result<OperatorProcess> {
        let mut op = self.spawn()?;
        op.wait_healthy(timeout).await?;
        Ok(op)
    }

    /// The last `n` lines of the operator's output.
    pub fn log_tail(&self, n: usize) -> String {
        tail(&self.log, n)
    }
}

fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// One running `x402-escrow serve`. Dropping it kills it (SIGKILL), so an error or a panic in
/// the caller never leaves it behind.
#[derive(Debug)]
pub struct OperatorProcess {
    child: Option<Child>,
    pid: u32,
    /// Where it listens.
    pub addr: SocketAddr,
    log: PathBuf,
}

impl OperatorProcess {
    /// `http://` + [`OperatorProcess::addr`].
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Waits until `/healthz` answers 200; an error (with the operator's output) if the process
    /// exits first or the time runs out.
    pub async fn wait_healthy(&mut self, timeout: Duration) -> Result<()> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| Error::Operator(format!("building an HTTP client: {e}")))?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                let text = std::fs::read_to_string(&self.log).unwrap_or_default();
                return Err(Error::Operator(format!(
                    "the operator exited ({status}) while starting:\n{text}"
                )));
            }
            if let Ok(r) = http.get(format!("{}/healthz", self.url())).send().await
                && r.status().as_u16() == 200
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::Operator(format!(
                    "operator not healthy within {timeout:?}; see {}",
                    self.log.display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `Some(exit status)` once the process has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    /// SIGKILL (no shutdown handling runs) and reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM (graceful shutdown) and wait for the exit; after `grace`, SIGKILL and an error.
    pub async fn terminate(&mut self, grace: Duration) -> Result<Option<ExitStatus>> {
        let Some(mut child) = self.child.take() else {
            return Ok(None);
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + grace;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Ok(Some(status));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::Operator(format!(
                    "the operator did not stop within {} s of SIGTERM",
                    grace.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The process's `/proc/<pid>/<file>`.
    fn read_proc(&self, file: &str) -> Result<String> {
        std::fs::read_to_string(format!("/proc/{}/{file}", self.pid)).map_err(|source| Error::Io {
            what: format!("reading the operator's /proc/<pid>/{file}"),
            source,
        })
    }

    /// user + system CPU seconds so far (`/proc/<pid>/stat` fields 14 and 15).
    pub fn cpu_secs(&self) -> Result<f64> {
        let bad = || Error::Operator("unexpected /proc/<pid>/stat".into());
        let stat = self.read_proc("stat")?;
        // The command name (field 2) is in parentheses and may hold spaces.
        let after = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest)
            .ok_or_else(bad)?;
        let fields: Vec<&str> = after.split_whitespace().collect();
        // `after` starts at field 3 (state): utime is field 14 → index 11.
        let ticks = |i: usize| -> Result<f64> {
            fields
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .ok_or_else(bad)
        };
        Ok((ticks(11)? + ticks(12)?) / clock_ticks())
    }

    /// (`VmHWM`, `VmRSS`) in MiB.
    pub fn memory_mib(&self) -> Result<(f64, f64)> {
        let status = self.read_proc("status")?;
        let field = |name: &str| -> Result<f64> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
                .map(|kb| kb / 1024.0)
                .ok_or_else(|| Error::Operator(format!("no {name} in /proc/<pid>/status")))
        };
        Ok((field("VmHWM:")?, field("VmRSS:")?))
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Kernel clock ticks per second (`getconf CLK_TCK`; 100 on every common Linux).
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}
