//! Runs `examples/shop_server` as a child process and talks to it over HTTP.
#![allow(dead_code)] // each test file uses some of the helpers

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub(crate) const ADMIN: &str = "test-admin-token";

/// The example's binary, built by `cargo test`; built here when it is missing or older
/// than the sources (a filtered `cargo test --test …` run does not build examples, and a
/// stale binary would test old code).
pub(crate) fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("examples").join("shop_server");
    let built = std::fs::metadata(&bin).and_then(|m| m.modified()).ok();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let newest = [root.join("src"), root.join("examples/shop_server")]
        .iter()
        .filter_map(|d| newest_mtime(d))
        .max();
    if built.is_none() || newest > built {
        let features: Vec<&str> = [
            ("tokio", cfg!(feature = "tokio")),
            ("smtp", cfg!(feature = "smtp")),
            ("sqlite", cfg!(feature = "sqlite")),
            ("postgres", cfg!(feature = "postgres")),
            ("serde", cfg!(feature = "serde")),
            ("tracing", cfg!(feature = "tracing")),
            ("conformance", cfg!(feature = "conformance")),
        ]
        .into_iter()
        .filter_map(|(f, on)| on.then_some(f))
        .collect();
        let status = Command::new(env!("CARGO"))
            .args(["build", "--example", "shop_server", "--features"])
            .arg(features.join(","))
            .current_dir(root)
            .status()
            .expect("cargo build");
        assert!(status.success(), "building the shop_server example failed");
    }
    bin
}

/// The newest modification time of a file below `dir`.
fn newest_mtime(dir: &Path) -> Option<std::time::SystemTime> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir).ok()?.filter_map(Result::ok) {
        let path = entry.path();
        let t = if path.is_dir() {
            newest_mtime(&path)
        } else {
            entry.metadata().and_then(|m| m.modified()).ok()
        };
        newest = newest.max(t);
    }
    newest
}

/// A running server; killed when dropped.
pub(crate) struct Server {
    child: Child,
    pub(crate) base: String,
}

impl Server {
    pub(crate) fn start(data: &Path, extra: &[&str]) -> Self {
        let mut child = Command::new(binary())
            .args(["--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .args(extra)
            .env("SHOPSAFE_ADMIN_TOKEN", ADMIN)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start shop_server");
        let mut first = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut first)
            .expect("first line");
        let base = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .to_owned();
        Self { child, base }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Peak resident memory of the server process (VmHWM), in bytes.
    pub(crate) fn peak_rss(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("proc status");
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM");
        kib * 1024
    }

    /// SIGTERM, then waits for a graceful exit (at most `within`).
    pub(crate) fn stop(mut self, within: Duration) -> bool {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The reset link in the newest mail of the outbox that matches `needle`.
pub(crate) fn link_in_outbox(outbox: &Path, needle: &str) -> Option<String> {
    let mut mails: Vec<_> = std::fs::read_dir(outbox)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .collect();
    mails.sort_by_key(|e| e.metadata().and_then(|m| m.modified()).ok());
    mails.iter().rev().find_map(|e| {
        let text = std::fs::read_to_string(e.path()).ok()?;
        if !text.contains(needle) {
            return None;
        }
        text.lines()
            .find(|l| l.starts_with("https://") && l.contains("/reset/"))
            .map(str::to_owned)
    })
}
