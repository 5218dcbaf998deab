//! Pick argon2id parameters for this machine: the most memory you allow, then as many
//! passes as fit in the time target, never below the OWASP floor.
//!
//! ```sh
//! cargo run --release --example calibrate -- 250 64    # 250 ms target, 64 MiB max
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check panics here

use std::time::{Duration, Instant};

use shopsafe::password::{Hasher, Password};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let target_ms: u64 = args.next().map_or(Ok(100), |a| a.parse())?;
    let max_mib: usize = args.next().map_or(Ok(64), |a| a.parse())?;
    let target = Duration::from_millis(target_ms);
    println!("calibrating for about {target_ms} ms per hash with at most {max_mib} MiB...");
    let params = Hasher::calibrate(target, max_mib << 20)?;
    println!(
        "chosen: argon2id {params} (meets the OWASP floor: {})",
        params.meets_owasp_floor()
    );

    let hasher = Hasher::new(params);
    let password = Password::new("calibration check password");
    hasher.hash(&password)?; // warm the buffer pool
    let runs = 5u32;
    let start = Instant::now();
    for _ in 0..runs {
        hasher.hash(&password)?;
    }
    println!(
        "measured: {:.1?} per hash over {runs} hashes",
        start.elapsed() / runs
    );
    println!(
        "use it: Hasher::builder().params(Params::builder().m_kib({}).t({}).p({}).build()?)",
        params.m_kib(),
        params.t(),
        params.p()
    );
    Ok(())
}
