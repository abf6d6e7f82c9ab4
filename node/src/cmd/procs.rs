//! Child `wlnode run` processes on this machine, shared by `wlnode demo` and `wlnode
//! bench federation`: start one from its scaffolded folder and wait until its API
//! answers, read its resource use from /proc, and stop them all cleanly.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use wlnode_client::Client;
use wlnode_config::Config;
use wlnode_devtools::scaffold::ScaffoldNode;

/// A started child node.
pub struct Child {
    pub agency: String,
    pub role: &'static str,
    pub config: PathBuf,
    pub log: PathBuf,
    pub token_file: PathBuf,
    pub process: tokio::process::Child,
    pub client: Client,
    pub listen: Vec<String>,
}

impl std::fmt::Debug for Child {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Child")
            .field("agency", &self.agency)
            .finish()
    }
}

/// Starts `wlnode run --config <node>` and waits until its API answers.
pub async fn start_node(node: &ScaffoldNode, role: &'static str) -> anyhow::Result<Child> {
    let exe = std::env::current_exe().context("cannot find the wlnode executable")?;
    let log = node.dir.join("node.log");
    let out =
        std::fs::File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
    let err = out.try_clone()?;
    let mut process = tokio::process::Command::new(exe)
        .arg("run")
        .arg("--config")
        .arg(&node.config)
        .env(
            "WLNODE_LOG",
            std::env::var("WLNODE_LOG").unwrap_or_else(|_| "info,sled=warn,libp2p=warn".into()),
        )
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .kill_on_drop(true)
        .spawn()
        .context("cannot start wlnode run")?;
    let cfg = Config::load(&node.config)?;
    let data = cfg.raw.data_dir.clone();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = process.try_wait()? {
            bail!(
                "{} exited during start-up ({status}); its log {} ends with:\n{}",
                node.agency,
                log.display(),
                tail(&log, 15)
            );
        }
        if data.join(wlnode_config::LISTEN_ADDRS_FILE).exists()
            && let Ok(client) = Client::from_config(&cfg)
            && client.status().await.is_ok()
        {
            let listen = std::fs::read_to_string(data.join(wlnode_config::LISTEN_ADDRS_FILE))?
                .lines()
                .filter(|l| l.contains("/ip4/127.0.0.1/"))
                .map(str::to_owned)
                .collect();
            return Ok(Child {
                agency: node.agency.to_string(),
                role,
                config: node.config.clone(),
                log,
                token_file: cfg.raw.api.token_file.clone(),
                process,
                client,
                listen,
            });
        }
        if Instant::now() > deadline {
            bail!(
                "{} did not start within 60 s; see {}",
                node.agency,
                log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines
        .get(lines.len().saturating_sub(n)..)
        .unwrap_or_default()
        .join("\n")
}

/// Asks every child to stop (SIGTERM) and waits for it.
pub async fn stop_all(children: &mut [Child]) {
    for c in children.iter() {
        if let Some(pid) = c.process.id()
            && let Ok(pid) = i32::try_from(pid)
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }
    for c in children.iter_mut() {
        match tokio::time::timeout(Duration::from_secs(30), c.process.wait()).await {
            Ok(Ok(s)) if s.success() => {}
            Ok(Ok(s)) => errln!("{} exited with {s}; see {}", c.agency, c.log.display()),
            _ => {
                errln!("{} did not stop within 30 s; killing it", c.agency);
                let _ = c.process.kill().await;
            }
        }
    }
}

impl Child {
    pub fn client_addr(&self) -> String {
        self.client.addr().to_string()
    }
}
