//! Builds and measures an offline Pwned Passwords index.
//!
//! ```sh
//! # From the data the official downloader wrote (one XXXXX.txt per prefix, or one file):
//! cargo run --release --example pwned_index -- build ~/pwned-ranges/ pwned.idx
//! # Generated data (no download): N whole-hash lines for "generated-0" .. "generated-N-1"
//! cargo run --release --example pwned_index -- generate 1000000 generated.txt
//! cargo run --release --example pwned_index -- build generated.txt generated.idx
//! # Lookup time: 100,000 hits and 100,000 misses against a generated index
//! cargo run --release --example pwned_index -- measure generated.idx 1000000
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check panics here

use std::io::Write as _;
use std::path::Path;
use std::time::Instant;

use sha1::Digest as _;
use shopsafe::password::{BreachedPasswords as _, PwnedDigest};
use shopsafe::pwned::{PwnedIndex, build_index};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["build", input, output] => {
            let started = Instant::now();
            let report = build_index(Path::new(input), Path::new(output))?;
            let secs = started.elapsed().as_secs_f64();
            println!(
                "{} files, {} lines ({} padding), {} records, {} bytes ({:.2} MB per million hashes), \
                 fan-out {} bits, in {secs:.1} s ({:.0} lines/s)",
                report.files,
                report.lines,
                report.padding,
                report.records,
                report.bytes,
                report.bytes as f64 / report.records.max(1) as f64,
                report.fanout_bits,
                report.lines as f64 / secs
            );
        }
        ["generate", n, output] => {
            let n: u64 = n.parse()?;
            let mut lines: Vec<([u8; 20], u64)> = (0..n)
                .map(|i| {
                    (
                        sha1::Sha1::digest(format!("generated-{i}")).into(),
                        i % 1000 + 1,
                    )
                })
                .collect();
            lines.sort_unstable();
            let mut out = std::io::BufWriter::new(std::fs::File::create(output)?);
            for (digest, count) in lines {
                writeln!(out, "{}:{count}\r", base16ct::upper::encode_string(&digest))?;
            }
            out.flush()?;
            println!("{n} lines in {output}");
        }
        ["measure", index, n] => {
            let n: u64 = n.parse()?;
            let index = PwnedIndex::open(Path::new(index))?;
            let rounds = 100_000u64;
            let step = (n / rounds).max(1);
            let started = Instant::now();
            for r in 0..rounds {
                let i = (r * step) % n;
                let seen =
                    index.times_seen(&PwnedDigest::of(format!("generated-{i}").as_bytes()))?;
                assert_eq!(seen, i % 1000 + 1);
            }
            let hit = started.elapsed() / u32::try_from(rounds)?;
            let started = Instant::now();
            for r in 0..rounds {
                let seen = index.times_seen(&PwnedDigest::of(format!("absent-{r}").as_bytes()))?;
                assert_eq!(seen, 0);
            }
            let miss = started.elapsed() / u32::try_from(rounds)?;
            println!(
                "{} records: {hit:?} per hit, {miss:?} per miss (page cache warm)",
                index.len()
            );
        }
        _ => {
            return Err(
                "usage: pwned_index build INPUT OUTPUT | generate N FILE | measure INDEX N".into(),
            );
        }
    }
    Ok(())
}
