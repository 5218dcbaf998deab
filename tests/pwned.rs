//! The breached-password check: the offline index built from Pwned Passwords data in its
//! published forms (made by `tests/data/pwned/make.py` with Python's hashlib), and, with
//! `pwned-api`, the range API client against a local HTTP server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check panics here

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use proptest::prelude::*;
use shopsafe::password::{
    AcceptancePolicy, BreachLookupError, BreachedPasswords, OnLookupFailure, Password,
    PasswordContext, PwnedDigest, Rejection,
};
use shopsafe::pwned::{Error, PwnedIndex, build_index};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/pwned");

fn known() -> Vec<(String, u64)> {
    std::fs::read_to_string(Path::new(DATA).join("passwords.tsv"))
        .expect("passwords.tsv")
        .lines()
        .map(|l| {
            let (p, c) = l.split_once('\t').expect("tab");
            (p.to_owned(), c.parse().expect("count"))
        })
        .collect()
}

/// `ordered-by-hash.txt` split into range files as the downloader writes them: one
/// `XXXXX.txt` per prefix, `<35 hex>:<count>` lines, CRLF.
fn write_ranges(dir: &Path) -> BTreeMap<String, String> {
    let whole = std::fs::read_to_string(Path::new(DATA).join("ordered-by-hash.txt"))
        .expect("ordered-by-hash.txt");
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    for line in whole.lines() {
        let (prefix, rest) = line.split_at(5);
        files
            .entry(prefix.to_owned())
            .or_default()
            .push_str(&format!("{rest}\r\n"));
    }
    std::fs::create_dir_all(dir).expect("mkdir");
    for (prefix, body) in &files {
        std::fs::write(dir.join(format!("{prefix}.txt")), body).expect("write");
    }
    files
}

fn built(dir: &Path) -> PathBuf {
    let ranges = dir.join("ranges");
    write_ranges(&ranges);
    let out = dir.join("pwned.idx");
    let report = build_index(&ranges, &out).expect("build");
    assert_eq!(report.lines, 6300);
    assert_eq!(report.padding, 300);
    assert_eq!(report.records, 6000);
    out
}

#[test]
fn both_published_forms_give_every_count_computed_by_python() {
    let dir = tempfile::tempdir().expect("tempdir");
    let from_ranges = PwnedIndex::open(&built(dir.path())).expect("open");
    let single = dir.path().join("single.idx");
    let report =
        build_index(&Path::new(DATA).join("ordered-by-hash.txt"), &single).expect("build single");
    assert_eq!((report.files, report.records), (1, 6000));
    let from_single = PwnedIndex::open(&single).expect("open single");
    assert_eq!(
        std::fs::read(&single).expect("read"),
        std::fs::read(dir.path().join("pwned.idx")).expect("read"),
        "the two forms of the same data build the same index"
    );
    let known = known();
    assert_eq!(known.len(), 3000);
    for (password, count) in &known {
        let digest = PwnedDigest::of(password.as_bytes());
        assert_eq!(
            from_ranges.times_seen(&digest).expect("lookup"),
            *count,
            "{password}"
        );
        assert_eq!(from_single.times_seen(&digest).expect("lookup"), *count);
    }
    for i in 0..3000 {
        let digest = PwnedDigest::of(format!("never-breached-{i}").as_bytes());
        assert_eq!(from_ranges.times_seen(&digest).expect("lookup"), 0);
    }
}

#[test]
fn the_policy_refuses_a_breached_password_with_its_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = Arc::new(PwnedIndex::open(&built(dir.path())).expect("open"));
    let policy = AcceptancePolicy::multi_factor()
        .with_breached_passwords(index.clone(), OnLookupFailure::Refuse);
    let (password, count) = known()
        .into_iter()
        .find(|(p, _)| p.starts_with("shopsafe-breached"))
        .expect("one");
    let refused = policy
        .check(&Password::new(password), &PasswordContext::new())
        .expect_err("breached");
    assert_eq!(refused, Rejection::Breached { times: count });
    assert_eq!(
        refused.to_string(),
        format!("this password has appeared in a data breach {count} times; choose another")
    );
    assert_eq!(
        policy.assess(
            &Password::new("walnut cobbler lantern river"),
            &PasswordContext::new()
        ),
        Ok(shopsafe::password::BreachCheck::NotFound)
    );
}

#[test]
fn lookups_from_many_threads_share_one_handle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = Arc::new(PwnedIndex::open(&built(dir.path())).expect("open"));
    let known = Arc::new(known());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (index, known) = (index.clone(), known.clone());
            std::thread::spawn(move || {
                for (p, c) in known.iter().skip(t).step_by(4) {
                    assert_eq!(
                        index.times_seen(&PwnedDigest::of(p.as_bytes())).unwrap(),
                        *c
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
}

#[test]
fn bad_input_is_a_typed_error_naming_file_and_line_and_leaves_no_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("x.idx");
    let single = dir.path().join("single.txt");
    std::fs::write(
        &single,
        "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8:3\r\n0000000000000000000000000000000000000000:1\r\n",
    )
    .unwrap();
    assert!(matches!(
        build_index(&single, &out),
        Err(Error::NotSorted { line: 2, .. })
    ));
    std::fs::write(&single, "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8:many\r\n").unwrap();
    assert!(matches!(
        build_index(&single, &out),
        Err(Error::BadLine { line: 1, .. })
    ));
    std::fs::write(&single, "ZZAA61E4C9B93F3F0682250B6CF8331B7EE68FD8:1\r\n").unwrap();
    assert!(matches!(
        build_index(&single, &out),
        Err(Error::BadLine { line: 1, .. })
    ));
    let ranges = dir.path().join("ranges");
    std::fs::create_dir(&ranges).unwrap();
    std::fs::write(ranges.join("notes.txt"), "hello").unwrap();
    assert!(matches!(
        build_index(&ranges, &out),
        Err(Error::BadLine { line: 0, .. })
    ));
    std::fs::remove_file(ranges.join("notes.txt")).unwrap();
    // 40 digits where 35 belong.
    std::fs::write(
        ranges.join("5BAA6.txt"),
        "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8:1\r\n",
    )
    .unwrap();
    let e = build_index(&ranges, &out).expect_err("40 digits in a range file");
    assert!(e.to_string().contains("5BAA6.txt, line 1"), "{e}");
    assert!(!out.exists());
    assert!(
        !dir.path().join("x.idx.tmp").exists(),
        "the temporary file is removed"
    );
}

#[test]
fn a_failed_rebuild_keeps_the_index_in_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = built(dir.path());
    let before = std::fs::read(&out).unwrap();
    let broken = dir.path().join("broken.txt");
    std::fs::write(&broken, "garbage\r\n").unwrap();
    assert!(build_index(&broken, &out).is_err());
    assert_eq!(std::fs::read(&out).unwrap(), before);
    assert!(PwnedIndex::open(&out).is_ok());
}

#[test]
fn a_truncated_or_foreign_index_is_refused_at_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = built(dir.path());
    let bytes = std::fs::read(&out).unwrap();
    let cut = dir.path().join("cut.idx");
    std::fs::write(&cut, &bytes[..bytes.len() - 1]).unwrap();
    assert!(matches!(PwnedIndex::open(&cut), Err(Error::BadIndex(_))));
    std::fs::write(&cut, b"SQLite format 3\0").unwrap();
    assert!(matches!(PwnedIndex::open(&cut), Err(Error::BadIndex(_))));
    // A fan-out entry pointing past the records: a typed lookup error, not a panic.
    let mut bad = bytes.clone();
    let n = bad.len();
    bad[n - 16..n - 8].copy_from_slice(&u64::MAX.to_le_bytes());
    std::fs::write(&cut, &bad).unwrap();
    if let Ok(index) = PwnedIndex::open(&cut) {
        let mut corrupt = 0;
        for i in 0..2000 {
            match index.times_seen(&PwnedDigest::of(format!("p{i}").as_bytes())) {
                Err(BreachLookupError::Corrupt(_)) => corrupt += 1,
                Ok(_) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert!(corrupt > 0, "the damaged bucket is noticed");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_text_builds_or_errors_and_never_panics(text in "[0-9A-Fa-f:\\r\\n xz]{0,300}") {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.txt");
        std::fs::write(&input, &text).unwrap();
        let _ = build_index(&input, &dir.path().join("o.idx"));
    }

    #[test]
    fn arbitrary_bytes_open_or_error_and_lookups_never_panic(
        mut bytes in proptest::collection::vec(any::<u8>(), 0..400),
        magic in any::<bool>(),
        bits in 0u8..4,
    ) {
        if magic && bytes.len() >= 24 {
            bytes[..8].copy_from_slice(b"SSPWND01");
            bytes[16] = bits;
            bytes[17..24].fill(0);
            // Make the size consistent with some record count so `open` gets past it.
            let fan = 8 * ((1usize << bits) + 1);
            let n = bytes.len().saturating_sub(24 + fan) / 12;
            bytes.truncate(24 + 12 * n + fan);
            if bytes.len() >= 24 {
                bytes[8..16].copy_from_slice(&(n as u64).to_le_bytes());
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.idx");
        std::fs::write(&path, &bytes).unwrap();
        if let Ok(index) = PwnedIndex::open(&path) {
            for i in 0..16 {
                let _ = index.times_seen(&PwnedDigest::of(&[i]));
            }
        }
    }
}

#[cfg(feature = "pwned-api")]
mod online {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    use shopsafe::pwned::RangeClient;

    use super::*;

    #[derive(Clone, Copy)]
    enum Mode {
        Serve,
        Stall,
        Fail,
    }

    /// A one-thread HTTP/1.1 server on 127.0.0.1 answering `/range/XXXXX` from the test
    /// range files, with padding lines (count 0) when asked; records each request line
    /// and whether `Add-Padding: true` came with it.
    /// Each request line, and whether `Add-Padding: true` came with it.
    type Requests = Arc<Mutex<Vec<(String, bool)>>>;

    fn server(mode: Mode) -> (String, Requests) {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = write_ranges(dir.path());
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!("http://{}/range/", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request = String::new();
                let _ = reader.read_line(&mut request);
                let mut padding = false;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                    padding |= h.to_ascii_lowercase().trim() == "add-padding: true";
                }
                log.lock()
                    .unwrap()
                    .push((request.trim().to_owned(), padding));
                match mode {
                    Mode::Stall => {
                        std::thread::sleep(Duration::from_secs(3));
                        continue;
                    }
                    Mode::Fail => {
                        let _ = stream.write_all(
                            b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        );
                        continue;
                    }
                    Mode::Serve => {}
                }
                let prefix = request
                    .split_whitespace()
                    .nth(1)
                    .and_then(|p| p.strip_prefix("/range/"))
                    .unwrap_or_default()
                    .to_owned();
                let mut body = files.get(&prefix).cloned().unwrap_or_default();
                if padding {
                    for i in 0..40 {
                        body.push_str(&format!("{:035X}:0\r\n", 0xABCDEF_u64 + i));
                    }
                }
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        std::mem::forget(dir);
        (base, seen)
    }

    #[test]
    fn only_the_prefix_leaves_with_padding_asked_and_counts_come_back() {
        let (base, seen) = server(Mode::Serve);
        let client = RangeClient::new()
            .with_base_url(&base)
            .expect("loopback http");
        for (password, count) in known().iter().take(50) {
            let digest = PwnedDigest::of(password.as_bytes());
            assert_eq!(client.times_seen(&digest).expect("lookup"), *count);
        }
        assert_eq!(
            client
                .times_seen(&PwnedDigest::of(b"walnut cobbler lantern river"))
                .unwrap(),
            0
        );
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 51);
        for (request, padding) in seen.iter() {
            assert!(*padding, "Add-Padding: true on every request");
            let path = request.split_whitespace().nth(1).unwrap();
            let prefix = path.strip_prefix("/range/").unwrap();
            assert_eq!(prefix.len(), 5, "{request}");
            assert!(prefix.bytes().all(|b| b.is_ascii_hexdigit()));
        }
    }

    #[test]
    fn a_stalled_or_failing_service_is_an_error_and_the_policy_decides() {
        let (stalled, _) = server(Mode::Stall);
        let client = RangeClient::new()
            .with_base_url(&stalled)
            .unwrap()
            .with_timeout(Duration::from_millis(300));
        let started = Instant::now();
        let e = client
            .times_seen(&PwnedDigest::of(b"x"))
            .expect_err("timeout");
        assert!(matches!(e, BreachLookupError::Timeout(_)), "{e}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );

        let (failing, _) = server(Mode::Fail);
        let client = Arc::new(RangeClient::new().with_base_url(&failing).unwrap());
        assert!(matches!(
            client.times_seen(&PwnedDigest::of(b"x")),
            Err(BreachLookupError::Service(_))
        ));
        let pw = Password::new("walnut cobbler lantern river");
        let ctx = PasswordContext::new();
        let refuse = AcceptancePolicy::single_factor()
            .with_breached_passwords(client.clone(), OnLookupFailure::Refuse);
        assert_eq!(
            refuse.check(&pw, &ctx),
            Err(Rejection::BreachCheckUnavailable)
        );
        let accept = AcceptancePolicy::single_factor()
            .with_breached_passwords(client, OnLookupFailure::Accept);
        assert!(accept.check(&pw, &ctx).is_ok());
        assert_eq!(
            accept.assess(&pw, &ctx),
            Ok(shopsafe::password::BreachCheck::Unavailable),
            "the acceptance says the check was skipped"
        );
    }
}
