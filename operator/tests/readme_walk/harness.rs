//! Process management for the README walk: a temp dir standing in for the repository root,
//! foreground commands (exit status, output kept in files), background commands in their own
//! process groups (killed on drop, also on panic), readiness probes, JSON-RPC and HTTP, and a
//! dump of every command's output when the walk fails.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The walk's ports: free ones picked at start, standing in for the README's defaults.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    /// anvil (README: 8545).
    pub rpc: u16,
    /// `serve` (README: 8402).
    pub operator: u16,
    /// `gateway` (README: 8403).
    pub gateway: u16,
    /// `sample-api` (README: 9000).
    pub upstream: u16,
}

impl Ports {
    /// Four distinct free ports on 127.0.0.1 (bound together, then released).
    pub fn pick() -> Ports {
        let listeners: Vec<_> = (0..4)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port"))
            .collect();
        let port = |i: usize| listeners[i].local_addr().unwrap().port();
        Ports {
            rpc: port(0),
            operator: port(1),
            gateway: port(2),
            upstream: port(3),
        }
    }

    /// (README default, ours) for every port.
    pub fn map(&self) -> [(u16, u16); 4] {
        [
            (8545, self.rpc),
            (8402, self.operator),
            (8403, self.gateway),
            (9000, self.upstream),
        ]
    }
}

/// One command run by the walk.
struct Proc {
    name: String,
    script: String,
    env: Vec<(String, String)>,
    stdout: PathBuf,
    stderr: PathBuf,
    status: Option<ExitStatus>,
    elapsed: Option<Duration>,
    /// Background processes (own process group, pgid = pid).
    child: Option<Child>,
}

/// What a foreground command left.
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// The walk's world: its directory, accumulated environment and processes.
pub struct Walk {
    pub dir: tempfile::TempDir,
    pub ports: Ports,
    /// `export`ed by the walk so far.
    pub env: BTreeMap<String, String>,
    procs: Vec<Proc>,
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
    started: Instant,
}

impl Walk {
    /// A temp dir with `files` (paths relative to `root`) copied, an empty `deployments/`, and
    /// the pinned toolchain reachable as `tools/toolchain`.
    pub fn new(root: &Path, files: &[String]) -> Walk {
        let dir = tempfile::Builder::new()
            .prefix("readme-walk-")
            .tempdir()
            .expect("temp dir");
        for file in files {
            let to = dir.path().join(file);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(root.join(file), &to)
                .unwrap_or_else(|e| panic!("copying {file} (named by the README walk): {e}"));
        }
        std::fs::create_dir_all(dir.path().join("deployments")).unwrap();
        std::fs::create_dir_all(dir.path().join("logs")).unwrap();
        // `tools/toolchain` finds its root as `cd "$(dirname $0)/.."`, which through a `tools`
        // symlink is this temp dir: so the files its "already installed" check reads are
        // linked too (the lock file, node_modules with the stamp, target/toolchain/bin).
        let toolchain = PathBuf::from(x402_escrow_bindings::contracts::TOOLCHAIN_BIN);
        assert!(
            toolchain.join("anvil").exists(),
            "the pinned toolchain is not installed ({}): run tools/toolchain",
            toolchain.display()
        );
        std::fs::create_dir_all(dir.path().join("target")).unwrap();
        for (link, target) in [
            ("tools", root.join("tools")),
            ("package-lock.json", root.join("package-lock.json")),
            ("node_modules", root.join("node_modules")),
            ("target/toolchain", toolchain.parent().unwrap().to_owned()),
        ] {
            std::os::unix::fs::symlink(&target, dir.path().join(link)).unwrap();
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        Walk {
            dir,
            ports: Ports::pick(),
            env: BTreeMap::new(),
            procs: Vec::new(),
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            http,
            started: Instant::now(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn command(
        &mut self,
        name: &str,
        script: &str,
        extra: &[(String, String)],
    ) -> (Command, usize) {
        let n = self.procs.len();
        let slug: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let stdout = self.path(&format!("logs/{n:02}-{slug}.out"));
        let stderr = self.path(&format!("logs/{n:02}-{slug}.err"));
        let mut cmd = Command::new("bash");
        cmd.arg("-c")
            .arg(script)
            .current_dir(self.dir.path())
            .env_clear()
            // Default settings: none of the developer's own X402_* variables.
            .envs(std::env::vars().filter(|(k, _)| !k.starts_with("X402_")))
            .envs(&self.env)
            .envs(extra.iter().cloned())
            .stdin(Stdio::null())
            .stdout(File::create(&stdout).unwrap())
            .stderr(File::create(&stderr).unwrap())
            .process_group(0);
        self.procs.push(Proc {
            name: name.to_owned(),
            script: script.to_owned(),
            env: extra.to_vec(),
            stdout,
            stderr,
            status: None,
            elapsed: None,
            child: None,
        });
        (cmd, n)
    }

    /// Runs `script` with `bash -c` and waits for it (at most `timeout`).
    pub fn run(
        &mut self,
        name: &str,
        script: &str,
        extra: &[(String, String)],
        timeout: Duration,
    ) -> Output {
        let (mut cmd, n) = self.command(name, script, extra);
        let start = Instant::now();
        let mut child = cmd.spawn().expect("spawn bash");
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > timeout {
                kill_group(&mut child);
                panic!("`{name}` did not finish within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let proc = &mut self.procs[n];
        proc.status = Some(status);
        proc.elapsed = Some(start.elapsed());
        Output {
            status,
            stdout: std::fs::read_to_string(&proc.stdout).unwrap_or_default(),
            stderr: std::fs::read_to_string(&proc.stderr).unwrap_or_default(),
        }
    }

    /// Starts `script` in the background (`bash -c 'exec …'` in its own process group).
    pub fn spawn(&mut self, name: &str, script: &str, extra: &[(String, String)]) -> usize {
        let (mut cmd, n) = self.command(name, &format!("exec {script}"), extra);
        self.procs[n].child = Some(cmd.spawn().expect("spawn bash"));
        n
    }

    /// Waits until `ready` holds, failing if the background process `n` exits first.
    pub fn wait_ready(
        &mut self,
        n: usize,
        what: &str,
        timeout: Duration,
        ready: impl Fn(&Walk) -> bool,
    ) {
        let start = Instant::now();
        loop {
            if ready(self) {
                self.procs[n].elapsed = Some(start.elapsed());
                return;
            }
            let proc = &mut self.procs[n];
            if let Some(status) = proc.child.as_mut().unwrap().try_wait().unwrap() {
                proc.status = Some(status);
                panic!("`{}` exited ({status}) before {what}", proc.name);
            }
            assert!(
                start.elapsed() < timeout,
                "`{}`: no {what} within {timeout:?}",
                self.procs[n].name
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The HTTP status of `GET url`, `None` when nothing answers.
    pub fn http_status(&self, url: &str) -> Option<u16> {
        self.rt
            .block_on(async { self.http.get(url).send().await })
            .ok()
            .map(|r| r.status().as_u16())
    }

    /// A JSON-RPC call to the walk's anvil.
    pub fn rpc(&self, method: &str, params: Value) -> Result<Value, String> {
        let url = format!("http://127.0.0.1:{}", self.ports.rpc);
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let answer: Value = self
            .rt
            .block_on(async {
                self.http
                    .post(&url)
                    .json(&body)
                    .send()
                    .await?
                    .json::<Value>()
                    .await
            })
            .map_err(|e| format!("{method}: {e}"))?;
        match answer.get("result") {
            Some(result) => Ok(result.clone()),
            None => Err(format!("{method}: {answer}")),
        }
    }

    /// Seconds since the walk started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// A line per command: name, status and time.
    pub fn summary(&self) -> String {
        let mut text = String::new();
        for p in &self.procs {
            let status = match (&p.status, &p.child) {
                (Some(s), _) => s.to_string(),
                (None, Some(_)) => "running".into(),
                (None, None) => "?".into(),
            };
            let took = p
                .elapsed
                .map(|d| format!("{:.2}s", d.as_secs_f64()))
                .unwrap_or_default();
            text.push_str(&format!("  {:<24} {:<22} {took}\n", p.name, status));
        }
        text
    }

    /// Every command with its environment additions, status, stdout and stderr.
    pub fn dump(&self) {
        eprintln!("==== README walk in {} ====", self.dir.path().display());
        eprintln!("walk env: {:?}", self.env);
        for p in &self.procs {
            eprintln!(
                "---- [{}] {} (status {:?}, extra env {:?})",
                p.name, p.script, p.status, p.env
            );
            for (label, path) in [("stdout", &p.stdout), ("stderr", &p.stderr)] {
                let text = std::fs::read_to_string(path).unwrap_or_default();
                if !text.is_empty() {
                    eprintln!("-- {label}:\n{}", tail(&text, 200));
                }
            }
        }
        eprintln!("==== end of the README walk ====");
    }
}

/// The last `lines` lines of `text`.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    let skip = all.len().saturating_sub(lines);
    let mut out = String::new();
    if skip > 0 {
        out.push_str(&format!("[… {skip} lines]\n"));
    }
    out.push_str(&all[skip..].join("\n"));
    out
}

/// SIGTERM to the child's process group, SIGKILL if it is still there after 5 s.
fn kill_group(child: &mut Child) {
    let pgid = format!("-{}", child.id());
    let signal = |sig: &str| {
        let _ = Command::new("kill")
            .args([sig, "--", &pgid])
            .stderr(Stdio::null())
            .status();
    };
    signal("-TERM");
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if let Ok(Some(_)) = child.try_wait() {
            // The leader is gone; make sure nothing else of its group lingers.
            signal("-KILL");
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    signal("-KILL");
    let _ = child.wait();
}

impl Drop for Walk {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump();
        }
        for p in self.procs.iter_mut().rev() {
            if let Some(child) = p.child.as_mut() {
                kill_group(child);
            }
        }
    }
}
