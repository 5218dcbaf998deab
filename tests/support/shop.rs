//! Runs `examples/shop_server` as a child process and talks to it over HTTP.
#![allow(dead_code)] // each test file uses some of the helpers

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub(crate) const ADMIN: &str = "test-admin-token";

/// The example's binary, built by `cargo test`; built here when it is missing or older
/// than the sources (a filtered `cargo test --test …` run does not build examples, and a
/// stale binary would test old code), with the profile the test itself was built with
/// (the folder the test runs from), so that the binary beside the test is the one built.
/// Once built, the binary is asked which profile it is, and must answer the test's.
pub(crate) fn binary() -> PathBuf {
    static CHECKED: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);
    let mut checked = CHECKED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(bin) = &*checked {
        return bin.clone();
    }
    let exe = std::env::current_exe().expect("test exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let profile_dir = dir.file_name().and_then(|n| n.to_str()).unwrap_or("debug");
    // `target/debug` holds the dev and test profiles, `target/release` the release and
    // bench ones, any other folder the custom profile of its name.
    let profile = match profile_dir {
        "debug" => "dev",
        other => other,
    };
    let bin = dir.join("examples").join("shop_server");
    let built = std::fs::metadata(&bin).and_then(|m| m.modified()).ok();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let newest = [
        root.join("src"),
        root.join("examples/shop_server"),
        root.join("Cargo.toml"),
        root.join("Cargo.lock"),
    ]
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
            .args([
                "build",
                "--example",
                "shop_server",
                "--profile",
                profile,
                "--features",
            ])
            .arg(features.join(","))
            .current_dir(root)
            .status()
            .expect("cargo build");
        assert!(status.success(), "building the shop_server example failed");
    }
    let out = Command::new(&bin)
        .arg("--build-profile")
        .output()
        .expect("shop_server --build-profile");
    let theirs = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let ours = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    assert_eq!(
        theirs, ours,
        "the shop_server beside the test was built with another profile than the test"
    );
    *checked = Some(bin.clone());
    bin
}

/// The newest modification time of a file below `dir`.
fn newest_mtime(dir: &Path) -> Option<std::time::SystemTime> {
    if dir.is_file() {
        return std::fs::metadata(dir).and_then(|m| m.modified()).ok();
    }
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
        let child = Command::new(binary())
            .args(["--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .args(extra)
            .env("SHOPSAFE_ADMIN_TOKEN", ADMIN)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start shop_server");
        Self::started(child)
    }

    /// Starts without `SHOPSAFE_ADMIN_TOKEN`, and returns what the server logged up to
    /// the line about its hashing pool (the rest of its log is drained and dropped).
    pub(crate) fn start_without_admin(data: &Path) -> (Self, Vec<String>) {
        let mut child = Command::new(binary())
            .args(["--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .env_remove("SHOPSAFE_ADMIN_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start shop_server");
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
        let server = Self::started(child);
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            if stderr.read_line(&mut line).expect("log line") == 0 {
                break;
            }
            let last = line.starts_with("pool of");
            lines.push(line.trim_end().to_owned());
            if last {
                break;
            }
        }
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        (server, lines)
    }

    fn started(mut child: Child) -> Self {
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
