//! Hashing cost, side by side in one run so the figures read as ratios.
//!
//! - `preset/{hash,verify}/*`: each preset through the `Hasher`.
//! - `vs_raw/*/<params>`: the `Hasher` against the raw argon2 crate at identical
//!   parameters: `raw_fresh` allocates per hash (`hash_password_into`), `raw_reused`
//!   keeps one buffer (the best a caller can do by hand).
//! - `limiter/threads/N`: OWASP hashes per second with N threads sharing one hasher
//!   whose budget holds two hashes (the machine has two cores).
//! - `decoy/*`: real verify (wrong password) against `dummy_verify` (target: within 5%).
//!
//! `cargo bench --bench hashing`; `-- preset` (etc.) runs one group.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check panics here

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Block, Version};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use shopsafe::password::{Hasher, KeyId, Params, Password, Pepper, PepperKeyring};

const PASSWORD: &str = "a long passphrase for the shop";
const SALT: [u8; 16] = *b"0123456789abcdef";

fn label(p: Params) -> String {
    format!("m{}_t{}_p{}", p.m_kib(), p.t(), p.p())
}

fn presets(c: &mut Criterion) {
    let mut g = c.benchmark_group("preset");
    g.sample_size(10).warm_up_time(Duration::from_secs(2));
    for (name, params) in [
        ("owasp", Params::owasp()),
        ("rfc9106_low_memory", Params::rfc9106_low_memory()),
        ("rfc9106_first", Params::rfc9106_first()),
    ] {
        let hasher = Hasher::builder()
            .params(params)
            .memory_budget(params.memory_bytes())
            .timeout(Duration::from_secs(60))
            .build()
            .expect("budget fits one hash");
        let password = Password::new(PASSWORD);
        let stored = hasher.hash(&password).expect("hash");
        if params.m_kib() > 1 << 20 {
            g.measurement_time(Duration::from_secs(30));
        } else {
            g.measurement_time(Duration::from_secs(5));
        }
        g.bench_function(BenchmarkId::new("hash", name), |b| {
            b.iter(|| hasher.hash(black_box(&password)))
        });
        g.bench_function(BenchmarkId::new("verify", name), |b| {
            b.iter(|| hasher.verify(black_box(&password), black_box(&stored)))
        });
        hasher.limiter().shrink();
    }
    g.finish();
}

fn vs_raw(c: &mut Criterion) {
    let mut g = c.benchmark_group("vs_raw");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5));
    for params in [
        Params::owasp(),
        Params::builder()
            .m_kib(47_104)
            .t(1)
            .build()
            .expect("OWASP row"),
        Params::rfc9106_low_memory(),
    ] {
        let id = label(params);
        let hasher = Hasher::builder()
            .params(params)
            .memory_budget(params.memory_bytes())
            .build()
            .expect("budget fits one hash");
        let password = Password::new(PASSWORD);
        g.bench_function(BenchmarkId::new("shopsafe", &id), |b| {
            b.iter(|| hasher.hash(black_box(&password)))
        });

        let raw_params =
            argon2::Params::new(params.m_kib(), params.t(), params.p(), Some(32)).expect("valid");
        let ctx = Argon2::new(Algorithm::Argon2id, Version::V0x13, raw_params.clone());
        g.bench_function(BenchmarkId::new("raw_fresh", &id), |b| {
            b.iter(|| {
                let mut out = [0u8; 32];
                ctx.hash_password_into(black_box(PASSWORD.as_bytes()), &SALT, &mut out)
                    .expect("hash");
                out
            })
        });
        let mut blocks = vec![Block::new(); raw_params.block_count()];
        g.bench_function(BenchmarkId::new("raw_reused", &id), |b| {
            b.iter(|| {
                let mut out = [0u8; 32];
                ctx.hash_password_into_with_memory(
                    black_box(PASSWORD.as_bytes()),
                    &SALT,
                    &mut out,
                    &mut blocks,
                )
                .expect("hash");
                out
            })
        });
    }
    g.finish();
}

fn limiter_threads(c: &mut Criterion) {
    let mut g = c.benchmark_group("limiter");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    let params = Params::owasp();
    let hasher = Arc::new(
        Hasher::builder()
            .params(params)
            .memory_budget(2 * params.memory_bytes())
            .timeout(Duration::from_secs(60))
            .max_waiters(64)
            .build()
            .expect("budget fits two hashes"),
    );
    const PER_THREAD: u64 = 4;
    for threads in [1u64, 2, 4, 8] {
        g.throughput(Throughput::Elements(threads * PER_THREAD));
        g.bench_function(BenchmarkId::new("threads", threads), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    std::thread::scope(|s| {
                        for t in 0..threads {
                            let hasher = &hasher;
                            s.spawn(move || {
                                for i in 0..PER_THREAD {
                                    let pw = Password::new(format!("{PASSWORD} {t} {i}"));
                                    black_box(hasher.hash(&pw).expect("60 s timeout"));
                                }
                            });
                        }
                    });
                }
                start.elapsed()
            })
        });
    }
    let stats = hasher.limiter().stats();
    eprintln!(
        "limiter: peak {} in flight, peak {} MiB of a {} MiB budget, {} allocations for {} hashes",
        stats.peak_in_flight,
        stats.peak_bytes >> 20,
        hasher.limiter().budget_bytes() >> 20,
        stats.allocations,
        stats.granted
    );
    g.finish();
}

fn decoy(c: &mut Criterion) {
    let mut g = c.benchmark_group("decoy");
    g.sample_size(40)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8));
    let ring = PepperKeyring::new(
        KeyId::new("k1").expect("id"),
        Pepper::new(vec![7; 32]).expect("pepper"),
    );
    let hasher = Hasher::builder()
        .params(Params::owasp())
        .pepper(ring)
        .build()
        .expect("hasher");
    let stored = hasher.hash(&Password::new(PASSWORD)).expect("hash");
    let wrong = Password::new("not the password at all");
    g.bench_function("real_verify_wrong_password", |b| {
        b.iter(|| hasher.verify(black_box(&wrong), &stored))
    });
    g.bench_function("dummy_verify", |b| {
        b.iter(|| hasher.dummy_verify(black_box(&wrong)))
    });
    g.finish();
}

criterion_group!(benches, presets, vs_raw, limiter_threads, decoy);
criterion_main!(benches);
