//! Redacts card numbers from a log: reads standard input, writes it redacted to standard
//! output, and prints what it did to standard error.
//!
//! ```sh
//! printf 'paid with 4111 1111 1111 1111\nts=1732530721123 ok\n' | cargo run --release --example redact_logs
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check panics here

use std::io::{self, BufRead, Write};
use std::time::Instant;

use shopsafe::minimize::RedactingWriter;

fn main() -> io::Result<()> {
    let started = Instant::now();
    let stdin = io::stdin();
    let mut input = stdin.lock();
    let mut out = RedactingWriter::new(io::BufWriter::new(io::stdout().lock()));
    let (mut bytes, mut lines) = (0u64, 0u64);
    let mut buf = Vec::with_capacity(64 * 1024);
    loop {
        buf.clear();
        let n = input.read_until(b'\n', &mut buf)?;
        if n == 0 {
            break;
        }
        out.write_all(&buf)?;
        bytes += n as u64;
        lines += 1;
    }
    out.flush()?;
    let redacted = out.redacted();
    out.into_inner()?.flush()?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "{lines} lines, {bytes} bytes, {redacted} card number(s) redacted, {:.0} MB/s",
        bytes as f64 / 1e6 / secs.max(1e-9)
    );
    Ok(())
}
