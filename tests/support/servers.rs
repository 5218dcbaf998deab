//! For the tests that need a server `.ci/` starts (an SMTP relay, an HSM token): its
//! variable, or SKIPPED, or a failure where CI said the server must be there.

use std::io::Write as _;
use std::sync::atomic::{AtomicU32, Ordering};

/// The value of `var` when it is set and not empty. Otherwise the test is SKIPPED
/// (`None`), unless `require` is set, as `.ci/run` sets it: then it fails.
pub(crate) fn server_env(test: &str, var: &str, require: &str, how: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            let required = std::env::var_os(require).is_some_and(|x| !x.is_empty());
            assert!(!required, "{test}: {var} is unset, and CI must run it");
            // Straight to the terminal: the harness does not capture this.
            let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {how}");
            None
        }
    }
}

/// A name no other test (or run) uses.
pub(crate) fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}{}x{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        nanos % 100_000
    )
}
