//! The acceptance policy's cost per new password, side by side: the bundled blocklist and
//! zxcvbn alone, and with a lookup in an offline Pwned Passwords index of 1,000,000
//! generated hashes (hit and miss); beside one OWASP argon2id hash for scale.
//!
//! ```sh
//! cargo bench --bench breached
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check panics here

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use sha1::Digest as _;
use shopsafe::password::{
    AcceptancePolicy, BreachedPasswords as _, Hasher, OnLookupFailure, Params, Password,
    PasswordContext, PwnedDigest,
};
use shopsafe::pwned::{PwnedIndex, build_index};

const HASHES: u64 = 1_000_000;

fn index(dir: &std::path::Path) -> PwnedIndex {
    let mut lines: Vec<[u8; 20]> = (0..HASHES)
        .map(|i| sha1::Sha1::digest(format!("generated-{i}")).into())
        .collect();
    lines.sort_unstable();
    let input = dir.join("generated.txt");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
    for digest in lines {
        writeln!(out, "{}:7\r", base16ct::upper::encode_string(&digest)).unwrap();
    }
    drop(out);
    build_index(&input, &dir.join("generated.idx")).unwrap();
    PwnedIndex::open(&dir.join("generated.idx")).unwrap()
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let index = Arc::new(index(dir.path()));
    let ctx = PasswordContext::new();
    let plain = AcceptancePolicy::multi_factor();
    let with_index = AcceptancePolicy::multi_factor()
        .with_breached_passwords(index.clone(), OnLookupFailure::Refuse);
    let random12 = Password::new("q7#vLp2x!Mw9");
    let phrase = Password::new("walnut cobbler lantern river");

    let mut g = c.benchmark_group("acceptance");
    g.sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    g.bench_function(BenchmarkId::new("policy", "random 12 chars"), |b| {
        b.iter(|| plain.check(&random12, &ctx).unwrap());
    });
    g.bench_function(BenchmarkId::new("policy", "four-word passphrase"), |b| {
        b.iter(|| plain.check(&phrase, &ctx).unwrap());
    });
    g.bench_function(BenchmarkId::new("policy+index", "random 12 chars"), |b| {
        b.iter(|| with_index.check(&random12, &ctx).unwrap());
    });
    g.bench_function(BenchmarkId::new("index", "hit"), |b| {
        let d = PwnedDigest::of(b"generated-4242");
        b.iter(|| assert_eq!(index.times_seen(&d).unwrap(), 7));
    });
    g.bench_function(BenchmarkId::new("index", "miss"), |b| {
        let d = PwnedDigest::of(b"walnut cobbler lantern river");
        b.iter(|| assert_eq!(index.times_seen(&d).unwrap(), 0));
    });
    let hasher = Hasher::new(Params::owasp());
    g.sample_size(10);
    g.bench_function(BenchmarkId::new("argon2id", "owasp hash"), |b| {
        b.iter(|| hasher.hash(&random12).unwrap());
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
