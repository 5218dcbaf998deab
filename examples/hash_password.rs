//! Hash passwords read from standard input, one per line, with the production default
//! (argon2id, OWASP parameters: m = 19 MiB, t = 2, p = 1), print each PHC string, then
//! verify it the way a login would.
//!
//! ```sh
//! echo 'correct horse battery staple' | cargo run --release --example hash_password
//! ```
//!
//! Standard output gets only the PHC strings (one per line), so the output can be fed to
//! other implementations (`tests/data/interop/verify_ours.py` does that); the narration
//! goes to standard error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check panics here

use std::io::{BufRead, Write};
use std::time::Instant;

use shopsafe::password::{
    AcceptancePolicy, Hasher, Params, Password, PasswordContext, Verification,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let hasher = Hasher::new(Params::owasp());
    let policy = AcceptancePolicy::single_factor();
    eprintln!(
        "hashing with argon2id {} (OWASP); one password per line",
        hasher.params()
    );
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for line in std::io::stdin().lock().lines() {
        let password = Password::new(line?);
        if let Err(why) = policy.check(&password, &PasswordContext::new()) {
            eprintln!("note: a sign-up form would refuse this password: {why}");
        }
        let start = Instant::now();
        let hash = hasher.hash(&password)?;
        let hashed_in = start.elapsed();
        writeln!(out, "{}", hash.to_phc_string())?;
        out.flush()?;

        let parsed = hash.to_phc_string().parse()?;
        let start = Instant::now();
        let verdict = hasher.verify(&password, &parsed)?;
        let verified_in = start.elapsed();
        let wrong = hasher.verify(
            &Password::new(format!("{}x", password.expose_secret())),
            &parsed,
        )?;
        eprintln!(
            "hashed in {hashed_in:.1?}, verified in {verified_in:.1?}: right password {}, wrong password {}",
            if verdict == (Verification::Match { rehash: None }) {
                "accepted"
            } else {
                "REFUSED"
            },
            if wrong.is_match() {
                "ACCEPTED"
            } else {
                "refused"
            },
        );
    }
    Ok(())
}
