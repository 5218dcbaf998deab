//! The kernel every other module stands on: ids ([`AccountId`], [`BrandId`]) and time
//! ([`Timestamp`]), plus two crate-private helpers (the name check of ids and keys, and
//! HMAC-SHA-256). It imports nothing of the crate, so any module may use it without
//! reaching persistence: a step-up rule or a retention policy needs a clock value and an
//! id, not a store.
//!
//! The same names are re-exported from [`store`](crate::store), where they lived before.

mod ids;
mod time;

pub use ids::{AccountId, BrandId, InvalidId};
pub use time::Timestamp;

/// HMAC-SHA-256 of the concatenation of `parts` under `key` (vault subkeys, card
/// fingerprints, pseudonyms).
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    use hmac::{Hmac, KeyInit, Mac};
    #[allow(clippy::expect_used, reason = "an invariant of HMAC, not of the input")]
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key)
        .expect("HMAC accepts keys of every length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Whether `s` is 1 to `max_len` bytes of `a-z 0-9 _`, and `-` when `dash`: the shape
/// of the crate's names (brands, key ids, categories).
pub(crate) fn is_slug(s: &str, max_len: usize, dash: bool) -> bool {
    (1..=max_len).contains(&s.len())
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || (dash && b == b'-')
        })
}
