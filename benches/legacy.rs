//! Legacy import, per format, at the parameters the platforms write today
//! (`tests/data/legacy/realistic.tsv`, made by `make_vectors.py`), with the production
//! argon2id preset (OWASP):
//! - `login/<format>`: the first login of a wrapped row (the old function, then argon2id),
//!   beside `login/argon2id (plain)`, a row already upgraded: the difference is what the
//!   old scheme adds until the customer's first login;
//! - `wrap/<format>`: `Hasher::upgrade_legacy` with 2 workers over 16 rows (rows/s).
//!
//! ```sh
//! cargo bench --bench legacy
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check panics here

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use shopsafe::password::{Hasher, LegacyHash, Params, Password, Verification};

const ROWS: &str = include_str!("../tests/data/legacy/realistic.tsv");

fn bench(c: &mut Criterion) {
    let hasher = Hasher::new(Params::owasp());
    let rows: Vec<(&str, &str, &str)> = ROWS
        .lines()
        .map(|l| {
            let mut f = l.split('\t');
            (f.next().unwrap(), f.next().unwrap(), f.next().unwrap())
        })
        .collect();

    let mut g = c.benchmark_group("login");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let (_, password, _) = rows[0];
    let typed = Password::new(password);
    let plain = hasher.hash(&typed).unwrap();
    g.bench_function("argon2id (plain)", |b| {
        b.iter(|| assert!(hasher.verify(&typed, &plain).unwrap().is_match()));
    });
    for (format, password, stored) in &rows {
        let wrapped = hasher
            .wrap_legacy(&LegacyHash::parse(stored).unwrap())
            .unwrap();
        let typed = Password::new(*password);
        g.bench_function(BenchmarkId::new("first", format), |b| {
            b.iter(|| {
                assert!(matches!(
                    hasher.verify(&typed, &wrapped).unwrap(),
                    Verification::Match { rehash: Some(_) }
                ));
            });
        });
    }
    g.finish();

    let mut g = c.benchmark_group("wrap");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(16));
    for (format, _, stored) in &rows {
        g.bench_function(BenchmarkId::new("2 workers", format), |b| {
            b.iter(|| {
                let summary = hasher.upgrade_legacy(
                    (0..16).map(|i| (i, LegacyHash::parse(stored).unwrap())),
                    2,
                    |_, r| assert!(r.is_ok()),
                );
                assert_eq!(summary.wrapped, 16);
            });
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
