//! Runs the shop server (`examples/shop-server`) as a child process and talks to it over HTTP.
#![allow(dead_code)] // each test file uses some of the helpers

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub(crate) const ADMIN: &str = "test-admin-token";

/// The PostgreSQL connection string for a test of the server on PostgreSQL: `None` (and
/// SKIPPED on the terminal) without `SHOPSAFE_PG_URL` or without this package's
/// `postgres` feature; a failure instead where `SHOPSAFE_REQUIRE_PG` is set, as CI sets
/// it (its test command enables every feature).
pub(crate) fn postgres_url(test: &str) -> Option<String> {
    use std::io::Write as _;
    let required = std::env::var_os("SHOPSAFE_REQUIRE_PG").is_some_and(|x| !x.is_empty());
    let Some(url) = std::env::var("SHOPSAFE_PG_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        assert!(
            !required,
            "{test}: SHOPSAFE_PG_URL is unset, and CI must run it"
        );
        // Straight to the terminal: the harness does not capture this.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: set SHOPSAFE_PG_URL (bash .ci/pg-start) to run it"
        );
        return None;
    };
    if !cfg!(feature = "postgres") {
        assert!(
            !required,
            "{test}: CI must run this with the shop server's postgres feature"
        );
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: needs --features postgres"
        );
        return None;
    }
    Some(url)
}

/// The server's binary, which cargo builds for this package's tests with their profile.
pub(crate) fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_shop-server"))
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

    /// Starts with everything the server logs kept, to read back later.
    pub(crate) fn start_logged(
        data: &Path,
        extra: &[&str],
    ) -> (Self, std::sync::Arc<std::sync::Mutex<String>>) {
        let mut child = Command::new(binary())
            .args(["--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .args(extra)
            .env("SHOPSAFE_ADMIN_TOKEN", ADMIN)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start shop_server");
        let stderr = child.stderr.take().expect("stderr");
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let kept = std::sync::Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = kept.lock().expect("log");
                log.push_str(&line);
                log.push('\n');
            }
        });
        (Self::started(child), log)
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
