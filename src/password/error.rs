//! The `password` module's error type.

use std::time::Duration;

use super::pepper::KeyId;

/// Everything that can go wrong hashing, verifying or parsing. No variant carries a
/// password, a pepper, a salt or a tag.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The PHC string's structure is wrong (field count, separators, missing parts).
    #[error("malformed PHC string: {reason}")]
    PhcMalformed {
        /// What is wrong.
        reason: &'static str,
    },
    /// A number in the PHC string is not a canonical decimal of at most 10 digits.
    #[error("malformed PHC string: {field} is not a canonical decimal number")]
    PhcNumber {
        /// The parameter (`v`, `m`, `t` or `p`).
        field: &'static str,
    },
    /// Not argon2id (argon2i, argon2d, bcrypt, ... are refused, not guessed at).
    #[error("unsupported algorithm `{found}`: only argon2id is accepted")]
    UnsupportedAlgorithm {
        /// The identifier found (at most 32 printable characters of it).
        found: String,
    },
    /// Not argon2 version 0x13 (`v=19`).
    #[error("unsupported argon2 version {found}: only v=19 is accepted")]
    UnsupportedVersion {
        /// The version found.
        found: u64,
    },
    /// A parameter this crate does not know, or a known one out of order or repeated.
    #[error("unexpected PHC parameter `{name}`")]
    UnknownParam {
        /// The parameter's name (at most 32 printable characters of it).
        name: String,
    },
    /// `m` above the 2 GiB cap.
    #[error("memory cost m={m_kib} KiB is above the 2 GiB cap")]
    MemoryTooMuch {
        /// The memory cost found, in KiB.
        m_kib: u64,
    },
    /// `t` above the cap of 64 passes.
    #[error("time cost t={t} is above the cap of 64")]
    TimeCostTooHigh {
        /// The time cost found.
        t: u64,
    },
    /// `p` above the cap of 64 lanes.
    #[error("parallelism p={p} is above the cap of 64")]
    ParallelismTooHigh {
        /// The parallelism found.
        p: u64,
    },
    /// Parameters argon2 cannot run (zero, or m below 8 KiB per lane).
    #[error("invalid argon2 parameters m={m_kib}, t={t}, p={p}: {reason}")]
    InvalidParams {
        /// Memory cost in KiB.
        m_kib: u32,
        /// Time cost.
        t: u32,
        /// Parallelism.
        p: u32,
        /// Which bound was broken.
        reason: &'static str,
    },
    /// Parameters weaker than every row of the OWASP argon2id table.
    #[error("parameters m={m_kib} KiB, t={t} are below the OWASP argon2id floor")]
    BelowOwaspFloor {
        /// Memory cost in KiB.
        m_kib: u32,
        /// Time cost.
        t: u32,
    },
    /// A base64 field is not canonical unpadded standard base64.
    #[error("malformed PHC string: {field} is not canonical unpadded base64")]
    InvalidBase64 {
        /// The field (`salt`, `hash`, `keyid`, `isalt`).
        field: &'static str,
    },
    /// The salt is shorter than 8 or longer than 64 bytes.
    #[error("salt length {len} is outside 8..=64 bytes")]
    SaltLength {
        /// The decoded length.
        len: usize,
    },
    /// The hash (tag) is shorter than 16 or longer than 64 bytes.
    #[error("hash length {len} is outside 16..=64 bytes")]
    OutputLength {
        /// The decoded length.
        len: usize,
    },
    /// A pepper key id is not 1 to 8 characters of `A-Z a-z 0-9 . _ -`.
    #[error("invalid pepper key id: 1 to 8 characters of A-Z a-z 0-9 . _ - expected")]
    InvalidKeyId,
    /// The stored hash names a pepper key the keyring does not hold.
    #[error("the stored hash names pepper key `{key_id}`, which is not in the keyring")]
    UnknownKeyId {
        /// The key id named by the stored hash.
        key_id: KeyId,
    },
    /// The stored hash names a pepper key but the hasher has no keyring at all.
    #[error("the stored hash names pepper key `{key_id}` but no pepper keyring is configured")]
    PepperMissing {
        /// The key id named by the stored hash.
        key_id: KeyId,
    },
    /// A key id added to a keyring twice.
    #[error("pepper key `{key_id}` is already in the keyring")]
    DuplicateKeyId {
        /// The repeated id.
        key_id: KeyId,
    },
    /// The current key cannot be removed from its keyring.
    #[error("the current pepper key cannot be removed; rotate first")]
    RemoveCurrentKey,
    /// A pepper is shorter than 32 or longer than 64 bytes.
    #[error("pepper length {len} is outside 32..=64 bytes")]
    PepperLength {
        /// The length given.
        len: usize,
    },
    /// A legacy digest that cannot be imported.
    #[error("invalid legacy {scheme} digest: {reason}")]
    LegacyDigest {
        /// The legacy scheme.
        scheme: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// The password is longer than 1 KiB after normalization (or 4 KiB before).
    #[error("password longer than {max_bytes} bytes")]
    PasswordTooLong {
        /// The cap.
        max_bytes: usize,
    },
    /// No memory came free within the limiter's timeout (or too many callers wait).
    /// Answer "try again shortly" (HTTP 503); do not count it as a failed login.
    #[error("hashing overloaded: no memory came free within {waited:?}")]
    Overloaded {
        /// How long the call waited.
        waited: Duration,
    },
    /// One hash would need more memory than this deployment allows at all.
    #[error("hash needs {needed_bytes} bytes, above the limit of {budget_bytes}")]
    TooExpensive {
        /// Memory the hash needs.
        needed_bytes: usize,
        /// The limit it exceeds.
        budget_bytes: usize,
    },
    /// The OS random generator failed.
    #[error(transparent)]
    Rng(#[from] crate::secret::RngError),
    /// argon2 refused its inputs (should not happen: inputs are validated first).
    #[error("argon2 failed")]
    Argon2(#[source] argon2::Error),
}

/// A short, printable rendering of a foreign identifier for an error message.
pub(crate) fn printable(s: &str) -> String {
    s.chars()
        .take(32)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect()
}
