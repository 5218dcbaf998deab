//! The card-number scanner on synthetic log text, beside a straightforward `regex` + Luhn
//! baseline in the same run.
//!
//! Corpora (100 MB each): `clean` (log lines with timestamps, ids, amounts, no card),
//! `one_percent` (1% of lines carry a card number), `dense` (every line does).
//! `scanner_crafted` (10 MB each, beside 10 MB of the clean corpus): inputs made to slow a
//! scanner down — `1 1 1 …`, `1-1-1-…`, `4444 4444 …` (every group a possible card
//! start), and a long list of cards — through `scan` and through `RedactingWriter` in 8 KiB
//! writes; compare each per byte with `clean`.
//! `retention/plan_1m`: `RetentionPolicy::plan` over a million records (cloned from
//! memory, so the figure includes one clone of each).
//!
//! `cargo bench --bench scanner`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check panics here

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use regex::bytes::Regex;
use shopsafe::card::{Brand, luhn_valid};
use shopsafe::minimize::{RedactingWriter, scan};

const SIZE: usize = 100 * 1024 * 1024;

fn corpus(every: usize) -> Vec<u8> {
    let cards = [
        "4111 1111 1111 1111",
        "5555-5555-5555-4444",
        "378282246310005",
        "6011000990139424",
    ];
    let mut out = Vec::with_capacity(SIZE + 256);
    let mut i = 0usize;
    while out.len() < SIZE {
        let line = if every > 0 && i.is_multiple_of(every) {
            format!(
                "2026-11-25T10:{:02}:{:02}.{:03}Z INFO checkout order=ORD-{:08} card={} amount={}.{:02}\n",
                i % 60,
                (i / 60) % 60,
                i % 1000,
                i,
                cards[i % cards.len()],
                i % 500,
                i % 100
            )
        } else {
            format!(
                "2026-11-25T10:{:02}:{:02}.{:03}Z INFO request id=req-{:012} user=cust-{:06} path=/api/cart/items status=200 ms={}\n",
                i % 60,
                (i / 60) % 60,
                i % 1000,
                i * 7919,
                i % 1_000_000,
                i % 250
            )
        };
        out.extend_from_slice(line.as_bytes());
        i += 1;
    }
    out
}

/// The baseline a team would write first: a regex for digit runs with optional single
/// separators, then Luhn and the brand table on each match.
fn baseline(re: &Regex, bytes: &[u8]) -> usize {
    re.find_iter(bytes)
        .filter(|m| {
            let digits: Vec<u8> = m
                .as_bytes()
                .iter()
                .copied()
                .filter(u8::is_ascii_digit)
                .collect();
            luhn_valid(&digits) && matches!(Brand::detect(&digits), Some((_, true)))
        })
        .count()
}

fn bench(c: &mut Criterion) {
    let re = Regex::new(r"\b(?:\d[ -]?){11,18}\d\b").expect("valid regex");
    let mut g = c.benchmark_group("scanner");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Bytes(SIZE as u64));
    for (name, every) in [("clean", 0), ("one_percent", 100), ("dense", 1)] {
        let text = corpus(every);
        let (ours, theirs) = (scan(&text).len(), baseline(&re, &text));
        assert_eq!(ours, theirs, "{name}: both find the same cards");
        g.bench_with_input(BenchmarkId::new("shopsafe", name), &text, |b, t| {
            b.iter(|| scan(black_box(t)).len())
        });
        g.bench_with_input(BenchmarkId::new("regex_luhn", name), &text, |b, t| {
            b.iter(|| baseline(&re, black_box(t)))
        });
    }
    g.finish();
}

const CRAFTED: usize = 10 * 1024 * 1024;

fn repeat_to(unit: &str, size: usize) -> Vec<u8> {
    unit.as_bytes().iter().copied().cycle().take(size).collect()
}

fn write_through(text: &[u8]) -> u64 {
    let mut w = RedactingWriter::new(std::io::sink());
    for chunk in text.chunks(8192) {
        std::io::Write::write_all(&mut w, chunk).expect("sink");
    }
    w.redacted()
}

fn crafted(c: &mut Criterion) {
    let mut g = c.benchmark_group("scanner_crafted");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Bytes(CRAFTED as u64));
    let mut clean = corpus(0);
    clean.truncate(CRAFTED);
    for (name, text) in [
        ("clean", clean),
        ("ones_spaced", repeat_to("1 ", CRAFTED)),
        ("ones_dashed", repeat_to("1-", CRAFTED)),
        ("fours_spaced", repeat_to("4444 ", CRAFTED)),
        ("card_list", repeat_to("4111111111111111 ", CRAFTED)),
    ] {
        g.bench_with_input(BenchmarkId::new("scan", name), &text, |b, t| {
            b.iter(|| scan(black_box(t)).len())
        });
        g.bench_with_input(BenchmarkId::new("writer", name), &text, |b, t| {
            b.iter(|| write_through(black_box(t)))
        });
    }
    g.finish();
}

fn retention(c: &mut Criterion) {
    use shopsafe::minimize::{Category, CategoryRule, RecordMeta, RetentionPolicy, Summary};
    use shopsafe::store::Timestamp;
    const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);
    let cat = |s: &str| Category::new(s).expect("category");
    let policy = RetentionPolicy::new()
        .rule(
            cat("account_profile"),
            CategoryRule::purge_when_dormant(3 * YEAR),
        )
        .and_then(|p| {
            p.rule(
                cat("order_records"),
                CategoryRule::strip_after(10 * YEAR, &["name", "address"]),
            )
        })
        .expect("policy");
    let now = Timestamp::from_millis(1_795_000_000_000);
    let records: Vec<RecordMeta> = (0..1_000_000i64)
        .map(|i| {
            let category = if i % 3 == 0 {
                cat("order_records")
            } else {
                cat("account_profile")
            };
            let created = Timestamp::from_millis(1_480_000_000_000 + i * 300_000);
            RecordMeta::new(format!("r{i}"), category, created)
                .last_activity(created)
                .legal_hold(i % 997 == 0)
        })
        .collect();
    let mut g = c.benchmark_group("retention");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Elements(records.len() as u64));
    g.bench_function("plan_1m", |b| {
        b.iter(|| {
            let mut summary = Summary::default();
            policy
                .plan(records.iter().cloned(), now, &mut summary)
                .count()
        })
    });
    g.finish();
}

criterion_group!(benches, bench, crafted, retention);
criterion_main!(benches);
