//! The `Hasher`: hash, verify with upgrade, decoy verify, legacy wrapping, calibration.

use core::fmt;
use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Block, Version};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::Error;
use super::input::Password;
use super::legacy::LegacyHash;
use super::limiter::{DEFAULT_TIMEOUT, Limiter};
use super::params::{OUTPUT_LEN, Params, SALT_LEN, caps};
use super::pepper::{KeyId, Pepper, PepperKeyring};
use super::phc::{PasswordHash, Scheme};
use crate::secret::fill_random;

/// The outcome of [`Hasher::verify`].
#[must_use = "a verification that is not looked at lets everyone in or no one"]
#[derive(Debug, PartialEq, Eq)]
pub enum Verification {
    /// The password is right. When `rehash` is `Some`, store it in place of the old hash
    /// (weaker parameters, an older pepper key, or a legacy wrapper).
    Match {
        /// The replacement hash, already computed from the password just verified.
        rehash: Option<PasswordHash>,
    },
    /// The password is wrong (or the account does not exist: see [`Hasher::dummy_verify`]).
    Mismatch,
}

impl Verification {
    /// Whether the password matched.
    #[must_use]
    pub fn is_match(&self) -> bool {
        matches!(self, Self::Match { .. })
    }
}

/// One row of [`Hasher::upgrade_legacy`]: its key, its scheme, the wrapped hash or why not.
type Wrapped<K> = (K, &'static str, Result<PasswordHash, Error>);

/// Counts from [`Hasher::upgrade_legacy`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UpgradeSummary {
    /// Records wrapped and handed to the sink.
    pub wrapped: u64,
    /// Records that failed (handed to the sink with their error).
    pub failed: u64,
    /// Records wrapped, by scheme ([`LegacyHash::scheme`]: `bcrypt`, `phpass`,
    /// `pbkdf2-sha256`, …).
    pub by_scheme: std::collections::BTreeMap<&'static str, u64>,
}

/// argon2id password hashing with a policy, an optional pepper keyring and a memory limiter.
///
/// A `Hasher` is `Send + Sync`: build one at start-up and share it (`Arc`) across threads.
///
/// # Examples
/// ```
/// use shopsafe::password::{Hasher, Params, Password, Verification};
///
/// # let params = Params::insecure_for_tests(64, 1, 1)?; // doc tests: cheap parameters
/// let hasher = Hasher::new(params); // production: Hasher::new(Params::owasp())
/// let stored = hasher.hash(&Password::new("a long passphrase for the shop"))?.to_phc_string();
///
/// let parsed = stored.parse()?;
/// let ok = hasher.verify(&Password::new("a long passphrase for the shop"), &parsed)?;
/// assert_eq!(ok, Verification::Match { rehash: None });
/// assert!(!hasher.verify(&Password::new("wrong"), &parsed)?.is_match());
/// # Ok::<(), shopsafe::password::Error>(())
/// ```
///
/// # Security
/// - Normalizes passwords (NFKC) before hashing. A plain argon2id hash imported from a
///   system that hashed non-NFKC bytes verifies only for ASCII or already-NFKC passwords.
/// - Verifying costs what the *stored* hash says; [`HasherBuilder::max_verify`] and the
///   limiter budget refuse stored parameters beyond the deployment's limits, so a tampered
///   record cannot make a login allocate gigabytes.
pub struct Hasher {
    params: Params,
    keyring: Option<PepperKeyring>,
    limiter: Limiter,
    max_verify_m_kib: u32,
    max_verify_t: u32,
    /// A random hash at the current policy, verified against on the unknown-account path.
    decoy: PasswordHash,
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hasher")
            .field("params", &self.params)
            .field(
                "pepper_key",
                &self.keyring.as_ref().map(PepperKeyring::current_id),
            )
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}

/// Configures a [`Hasher`].
#[must_use]
#[derive(Debug)]
pub struct HasherBuilder {
    params: Params,
    keyring: Option<PepperKeyring>,
    budget_bytes: Option<usize>,
    timeout: Duration,
    max_waiters: Option<usize>,
    max_verify: Option<(u32, u32)>,
}

impl HasherBuilder {
    /// Cost parameters for new hashes, and the bar below which stored hashes are upgraded.
    pub fn params(mut self, params: Params) -> Self {
        self.params = params;
        self
    }

    /// Peppers: new hashes use the current key, stored hashes name theirs.
    pub fn pepper(mut self, keyring: PepperKeyring) -> Self {
        self.keyring = Some(keyring);
        self
    }

    /// Total bytes of argon2 memory in use at once. Default: the larger of
    /// `max_verify` memory and `params` memory, times the number of CPUs.
    pub fn memory_budget(mut self, bytes: usize) -> Self {
        self.budget_bytes = Some(bytes);
        self
    }

    /// How long a call waits for memory before [`Error::Overloaded`]. Default 2 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many callers may wait for memory at once. Default 256.
    pub fn max_waiters(mut self, max_waiters: usize) -> Self {
        self.max_waiters = Some(max_waiters);
        self
    }

    /// The costliest stored hash this deployment verifies: `m_kib` and `t`. Default: the
    /// larger of `params` and 64 MiB, and the larger of `params.t()` and 10.
    pub fn max_verify(mut self, m_kib: u32, t: u32) -> Self {
        self.max_verify = Some((m_kib, t));
        self
    }

    /// Builds the hasher (one decoy hash is drawn at random; no hashing happens here).
    ///
    /// # Errors
    /// [`Error::Rng`] when the OS generator fails; [`Error::TooExpensive`] when the
    /// budget cannot hold even one hash at `params`.
    pub fn build(self) -> Result<Hasher, Error> {
        let params = self.params;
        let (max_m, max_t) = self
            .max_verify
            .unwrap_or((params.m_kib().max(64 * 1024), params.t().max(10)));
        let max_m = max_m.max(params.m_kib()).min(caps::MAX_M_KIB);
        let max_t = max_t.max(params.t()).min(caps::MAX_T);
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let largest = Params::insecure_for_tests(max_m, 1, 1).map_or(0, |p| p.memory_bytes());
        let budget = self
            .budget_bytes
            .unwrap_or_else(|| largest.max(params.memory_bytes()).saturating_mul(cpus));
        if params.memory_bytes() > budget {
            return Err(Error::TooExpensive {
                needed_bytes: params.memory_bytes(),
                budget_bytes: budget,
            });
        }
        let mut limiter = Limiter::new(budget, self.timeout);
        if let Some(w) = self.max_waiters {
            limiter = limiter.with_max_waiters(w);
        }
        let mut salt = vec![0u8; SALT_LEN];
        let mut tag = vec![0u8; OUTPUT_LEN];
        fill_random(&mut salt)?;
        fill_random(&mut tag)?;
        let decoy = PasswordHash {
            scheme: Scheme::Argon2id,
            params,
            key_id: self.keyring.as_ref().map(|k| k.current_id().clone()),
            salt,
            tag,
        };
        Ok(Hasher {
            params,
            keyring: self.keyring,
            limiter,
            max_verify_m_kib: max_m,
            max_verify_t: max_t,
            decoy,
        })
    }
}

impl Hasher {
    /// A hasher with `params`, no pepper and the default limiter.
    ///
    /// # Panics
    /// Never in practice: only if the OS random generator fails while drawing the decoy
    /// hash (use [`Hasher::builder`] to get that as an error instead).
    #[must_use]
    pub fn new(params: Params) -> Self {
        #[allow(clippy::expect_used)]
        Self::builder()
            .params(params)
            .build()
            .expect("the default budget always fits params and the OS RNG is available")
    }

    /// A builder starting from [`Params::owasp`], no pepper, the default limiter.
    pub fn builder() -> HasherBuilder {
        HasherBuilder {
            params: Params::owasp(),
            keyring: None,
            budget_bytes: None,
            timeout: DEFAULT_TIMEOUT,
            max_waiters: None,
            max_verify: None,
        }
    }

    /// Allocates `count` block buffers at the policy's size now (as many as the memory
    /// budget holds), so the first logins after start-up do not pay for allocating and
    /// faulting in fresh memory. Returns how many buffers the pool holds.
    ///
    /// # Examples
    /// ```
    /// use shopsafe::password::{Hasher, Params};
    ///
    /// # let params = Params::insecure_for_tests(64, 1, 1)?;
    /// let hasher = Hasher::builder().params(params).memory_budget(2 * params.memory_bytes()).build()?;
    /// assert_eq!(hasher.preallocate(4), 2); // the budget holds two
    /// # Ok::<(), shopsafe::password::Error>(())
    /// ```
    pub fn preallocate(&self, count: usize) -> usize {
        self.limiter.preallocate(self.params.block_count(), count)
    }

    /// The parameters new hashes are made with.
    #[must_use]
    pub fn params(&self) -> Params {
        self.params
    }

    /// The limiter (for its [`stats`](Limiter::stats)).
    #[must_use]
    pub fn limiter(&self) -> &Limiter {
        &self.limiter
    }

    /// Hashes a password under the current parameters and pepper with a fresh salt.
    ///
    /// Does not apply the acceptance policy: check new passwords with
    /// [`AcceptancePolicy::check`](super::AcceptancePolicy::check) first.
    ///
    /// # Errors
    /// [`Error::PasswordTooLong`], [`Error::Overloaded`], [`Error::Rng`].
    pub fn hash(&self, password: &Password) -> Result<PasswordHash, Error> {
        let normalized = password.normalized()?;
        self.hash_bytes(normalized.as_bytes(), Scheme::Argon2id, self.params)
    }

    /// Checks `password` against `stored` in constant time and says whether to rehash.
    ///
    /// A rehash is returned on a match when the stored hash is *below* the current policy
    /// (smaller `m` or `t`), was made under a pepper key that is no longer current (or
    /// without a pepper while one is configured), has a salt under 16 or a tag under 32
    /// bytes, or is a legacy onion wrapper.
    ///
    /// Rehashing only ever goes up: the new hash takes the larger of the stored and the
    /// policy value for `m` and for `t`, so a hash stronger than the policy is never
    /// rewritten weaker (not even when a pepper rotation triggers the rehash), and a
    /// stored hash above the policy is otherwise left alone.
    ///
    /// # Errors
    /// - [`Error::UnknownKeyId`] / [`Error::PepperMissing`]: the stored hash names a pepper
    ///   this hasher does not hold. Not a mismatch: the password was never checked.
    /// - [`Error::TooExpensive`]: stored parameters beyond this deployment's limits.
    /// - [`Error::PasswordTooLong`], [`Error::Overloaded`], [`Error::Rng`].
    pub fn verify(
        &self,
        password: &Password,
        stored: &PasswordHash,
    ) -> Result<Verification, Error> {
        self.verify_then(password, stored, true)
    }

    /// [`verify`](Self::verify), with the upgraded hash computed only when `rehash`:
    /// a login whose answer must not tell a right password (a second signal is due)
    /// costs one hash whether the password is right or wrong.
    pub(crate) fn verify_then(
        &self,
        password: &Password,
        stored: &PasswordHash,
        rehash: bool,
    ) -> Result<Verification, Error> {
        let pepper = self.pepper_for(stored)?;
        self.check_verify_cost(stored)?;
        // Normalize for every scheme: the same length rule applies to all of them.
        let normalized = password.normalized()?;
        let legacy_digest;
        let input: &[u8] = match &stored.scheme {
            Scheme::Argon2id => normalized.as_bytes(),
            Scheme::Onion(inner) => {
                // The old system digested the bytes as typed, never normalized.
                legacy_digest = inner.digest(password.expose_secret().as_bytes());
                &legacy_digest
            }
        };
        let tag = self.compute(input, &stored.salt, stored.params, pepper, stored.tag.len())?;
        if !bool::from(tag.ct_eq(&stored.tag)) {
            return Ok(Verification::Mismatch);
        }
        let rehash = if rehash && self.needs_rehash(stored) {
            let params = self.upgrade_params(stored.params);
            Some(self.hash_bytes(normalized.as_bytes(), Scheme::Argon2id, params)?)
        } else {
            None
        };
        Ok(Verification::Match { rehash })
    }

    /// The unknown-account path: does the work of a real verify at the current policy and
    /// always answers [`Verification::Mismatch`].
    ///
    /// Call it when the login name matches no account, so the response takes as long as a
    /// wrong password for a real one (OWASP Authentication Cheat Sheet; a service that
    /// skips hashing answers tens of milliseconds sooner and leaks who is a customer).
    ///
    /// # Errors
    /// As [`verify`](Self::verify): [`Error::PasswordTooLong`], [`Error::Overloaded`].
    pub fn dummy_verify(&self, password: &Password) -> Result<Verification, Error> {
        // The decoy's tag is random: a match has probability 2^-256, and is ignored anyway.
        let outcome = self.verify(password, &self.decoy)?;
        drop(core::hint::black_box(outcome));
        Ok(Verification::Mismatch)
    }

    /// Whether a stored hash would be replaced on its next successful verify.
    #[must_use]
    pub fn needs_rehash(&self, stored: &PasswordHash) -> bool {
        let weaker =
            stored.params.m_kib() < self.params.m_kib() || stored.params.t() < self.params.t();
        let stale_pepper = match (&self.keyring, &stored.key_id) {
            (Some(ring), Some(id)) => ring.current_id() != id,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let short = stored.salt.len() < SALT_LEN || stored.tag.len() < OUTPUT_LEN;
        weaker || stale_pepper || short || stored.is_legacy()
    }

    /// Wraps an old system's digest as `argon2id(digest)` under the current policy and pepper.
    ///
    /// # Errors
    /// [`Error::Overloaded`], [`Error::Rng`].
    pub fn wrap_legacy(&self, legacy: &LegacyHash) -> Result<PasswordHash, Error> {
        self.hash_bytes(
            &legacy.digest,
            Scheme::Onion(legacy.inner.clone()),
            self.params,
        )
    }

    /// Wraps a whole table of legacy digests in one streaming pass on `workers` threads.
    ///
    /// Reads `records` lazily in chunks, so memory stays bounded whatever their number;
    /// calls `sink(key, result)` on the calling thread in input order, so the sink can
    /// write each result and checkpoint the last key it saw to resume after a crash.
    ///
    /// # Examples
    /// ```
    /// use shopsafe::password::{Hasher, LegacyHash, Params};
    ///
    /// # let hasher = Hasher::new(Params::insecure_for_tests(64, 1, 1)?);
    /// let old = vec![
    ///     (1u64, LegacyHash::md5_hex("5f4dcc3b5aa765d61d8327deb882cf99")?),
    ///     (2u64, LegacyHash::sha1_hex("5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8")?),
    /// ];
    /// let mut wrapped = Vec::new();
    /// let summary = hasher.upgrade_legacy(old, 2, |id, res| wrapped.push((id, res)));
    /// assert_eq!(summary.wrapped, 2);
    /// assert_eq!(summary.by_scheme.get("md5"), Some(&1));
    /// assert!(wrapped.iter().all(|(_, r)| r.as_ref().is_ok_and(|h| h.is_legacy())));
    /// # Ok::<(), shopsafe::password::Error>(())
    /// ```
    pub fn upgrade_legacy<K, I, F>(&self, records: I, workers: usize, mut sink: F) -> UpgradeSummary
    where
        K: Send,
        I: IntoIterator<Item = (K, LegacyHash)>,
        F: FnMut(K, Result<PasswordHash, Error>),
    {
        let workers = workers.max(1);
        let chunk_len = workers * 16;
        let mut records = records.into_iter();
        let mut summary = UpgradeSummary::default();
        loop {
            let chunk: Vec<(K, LegacyHash)> = records.by_ref().take(chunk_len).collect();
            if chunk.is_empty() {
                return summary;
            }
            let per_worker = chunk.len().div_ceil(workers);
            let mut results: Vec<Vec<Wrapped<K>>> = Vec::new();
            std::thread::scope(|scope| {
                let mut chunk = chunk;
                let mut handles = Vec::new();
                while !chunk.is_empty() {
                    let rest = chunk.split_off(per_worker.min(chunk.len()));
                    let part = core::mem::replace(&mut chunk, rest);
                    handles.push(scope.spawn(move || {
                        part.into_iter()
                            .map(|(k, legacy)| (k, legacy.scheme(), self.wrap_legacy(&legacy)))
                            .collect::<Vec<_>>()
                    }));
                }
                for h in handles {
                    // A worker only panics if argon2 does; re-raise it on this thread.
                    results.push(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
                }
            });
            for (k, scheme, res) in results.into_iter().flatten() {
                if res.is_ok() {
                    summary.wrapped += 1;
                    *summary.by_scheme.entry(scheme).or_default() += 1;
                } else {
                    summary.failed += 1;
                }
                sink(k, res);
            }
        }
    }

    /// Measures this machine and returns parameters whose hash takes about `target_time`,
    /// using at most `max_memory_bytes` (RFC 9106 §4: take all the memory you can afford,
    /// then as many passes as the time allows). p = 1.
    ///
    /// Never returns less than the OWASP floor: if the floor alone is slower than
    /// `target_time`, the floor is returned. Warms up first (a new process's first hashes
    /// run about 50% slower) and takes the median of several runs.
    ///
    /// # Errors
    /// [`Error::BelowOwaspFloor`] when `max_memory_bytes` is under 7 MiB (no OWASP row fits).
    pub fn calibrate(target_time: Duration, max_memory_bytes: usize) -> Result<Params, Error> {
        let m_kib = u32::try_from(max_memory_bytes / 1024)
            .unwrap_or(u32::MAX)
            .min(caps::MAX_M_KIB);
        let floor_t = (1..=caps::MAX_T)
            .find(|&t| Params::builder().m_kib(m_kib).t(t).build().is_ok())
            .ok_or(Error::BelowOwaspFloor {
                m_kib,
                t: caps::MAX_T,
            })?;
        let one = Params::insecure_for_tests(m_kib, 1, 1)?;
        let two = Params::insecure_for_tests(m_kib, 2, 1)?;
        let mut blocks = vec![Block::new(); one.block_count()];
        let mut time = |params: Params, runs: usize| -> Result<Duration, Error> {
            let ctx = context(None, params.to_argon2())?;
            let mut out = [0u8; OUTPUT_LEN];
            let mut samples: Vec<Duration> = (0..runs)
                .map(|_| {
                    let start = Instant::now();
                    ctx.hash_password_into_with_memory(
                        b"calibration",
                        &[0u8; SALT_LEN],
                        &mut out,
                        &mut blocks,
                    )
                    .map(|()| start.elapsed())
                    .map_err(Error::Argon2)
                })
                .collect::<Result<_, _>>()?;
            samples.sort();
            Ok(samples[samples.len() / 2])
        };
        time(one, 3)?; // warm-up, discarded
        let t1 = time(one, 5)?;
        let t2 = time(two, 5)?;
        let per_pass = t2.saturating_sub(t1).max(Duration::from_micros(1));
        let fixed = t1.saturating_sub(per_pass);
        let passes = target_time.saturating_sub(fixed).as_nanos() / per_pass.as_nanos();
        let t = u32::try_from(passes)
            .unwrap_or(u32::MAX)
            .clamp(floor_t, caps::MAX_T);
        Params::builder().m_kib(m_kib).t(t).p(1).build()
    }

    fn pepper_for(&self, stored: &PasswordHash) -> Result<Option<&Pepper>, Error> {
        match (&stored.key_id, &self.keyring) {
            (None, _) => Ok(None),
            (Some(id), Some(ring)) => ring
                .get(id)
                .map(Some)
                .ok_or_else(|| Error::UnknownKeyId { key_id: id.clone() }),
            (Some(id), None) => Err(Error::PepperMissing { key_id: id.clone() }),
        }
    }

    fn check_verify_cost(&self, stored: &PasswordHash) -> Result<(), Error> {
        let p = stored.params;
        if p.m_kib() > self.max_verify_m_kib || p.t() > self.max_verify_t {
            return Err(Error::TooExpensive {
                needed_bytes: p.memory_bytes(),
                budget_bytes: self.max_verify_m_kib as usize * 1024,
            });
        }
        Ok(())
    }

    /// The parameters a rehash of `stored` uses: never below the stored ones nor the policy.
    fn upgrade_params(&self, stored: Params) -> Params {
        let m = stored.m_kib().max(self.params.m_kib());
        let t = stored.t().max(self.params.t());
        // Both inputs passed the bounds check, so their maxima do as well (p is the policy's).
        Params::from_stored(m, t, self.params.p()).unwrap_or(self.params)
    }

    fn hash_bytes(
        &self,
        input: &[u8],
        scheme: Scheme,
        params: Params,
    ) -> Result<PasswordHash, Error> {
        let mut salt = vec![0u8; SALT_LEN];
        fill_random(&mut salt)?;
        self.hash_bytes_with_salt(input, scheme, params, salt)
    }

    /// A plain argon2id hash of `password` with the caller's salt (for the
    /// `password-hash` traits, which hand one in), at this hasher's policy and pepper.
    #[cfg(feature = "password-hash")]
    pub(crate) fn hash_with_salt(
        &self,
        password: &Password,
        salt: Vec<u8>,
    ) -> Result<PasswordHash, Error> {
        let normalized = password.normalized()?;
        self.hash_bytes_with_salt(normalized.as_bytes(), Scheme::Argon2id, self.params, salt)
    }

    fn hash_bytes_with_salt(
        &self,
        input: &[u8],
        scheme: Scheme,
        params: Params,
        salt: Vec<u8>,
    ) -> Result<PasswordHash, Error> {
        let (key_id, pepper): (Option<KeyId>, Option<&Pepper>) = match &self.keyring {
            Some(ring) => {
                let (id, pepper) = ring.current();
                (Some(id.clone()), Some(pepper))
            }
            None => (None, None),
        };
        let tag = self.compute(input, &salt, params, pepper, OUTPUT_LEN)?;
        Ok(PasswordHash {
            scheme,
            params,
            key_id,
            salt,
            tag: tag.to_vec(),
        })
    }

    /// argon2id into a pooled buffer held under a limiter permit.
    fn compute(
        &self,
        input: &[u8],
        salt: &[u8],
        params: Params,
        pepper: Option<&Pepper>,
        out_len: usize,
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let ctx = context(pepper.map(Pepper::expose_secret), params.to_argon2())?;
        let mut permit = self.limiter.acquire(params.block_count())?;
        let mut out = Zeroizing::new(vec![0u8; out_len]);
        ctx.hash_password_into_with_memory(input, salt, &mut out, permit.blocks())
            .map_err(Error::Argon2)?;
        Ok(out)
    }
}

/// The one place an argon2 context is made: argon2id, version 0x13, the pepper as the
/// secret input `K` (RFC 9106 §3.1).
fn context(secret: Option<&[u8]>, params: argon2::Params) -> Result<Argon2<'_>, Error> {
    match secret {
        Some(k) => Argon2::new_with_secret(k, Algorithm::Argon2id, Version::V0x13, params)
            .map_err(Error::Argon2),
        None => Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_decoy_verify_runs_at_the_current_params_and_pepper() {
        use super::super::pepper::{KeyId, Pepper, PepperKeyring};
        let params = Params::insecure_for_tests(512, 2, 1).expect("params");
        let keyring = PepperKeyring::new(
            KeyId::new("k2").expect("id"),
            Pepper::new(vec![7; 32]).expect("pepper"),
        );
        let hasher = Hasher::builder()
            .params(params)
            .pepper(keyring)
            .build()
            .expect("hasher");
        // The decoy is a hash of the current policy: same parameters, current pepper id.
        assert_eq!(hasher.decoy.params, hasher.params);
        assert_eq!(hasher.decoy.key_id.as_ref().map(KeyId::as_str), Some("k2"));
        // And verifying it costs a real verify: one permit of the current `m`, through
        // the pepper path (a decoy under a missing pepper would fail, not hash).
        let before = hasher.limiter.stats();
        let answer = hasher
            .dummy_verify(&Password::new("any password at all"))
            .expect("decoy verify");
        assert_eq!(answer, Verification::Mismatch);
        let after = hasher.limiter.stats();
        assert_eq!(after.granted, before.granted + 1);
        assert_eq!(after.peak_bytes, params.memory_bytes());
        // A real wrong-password verify takes the same path and the same permit.
        let real = hasher.hash(&Password::new("the real one")).expect("hash");
        assert_eq!(real.params, hasher.decoy.params);
        assert_eq!(real.key_id, hasher.decoy.key_id);
    }

    /// RFC 9106 §5.3, the Argon2id test vector: password 32 × 0x01, salt 16 × 0x02,
    /// secret 8 × 0x03, associated data 12 × 0x04, m = 32, t = 3, p = 4, tag 32 bytes.
    #[test]
    fn rfc9106_argon2id_known_answer() {
        let params = argon2::ParamsBuilder::new()
            .m_cost(32)
            .t_cost(3)
            .p_cost(4)
            .data(argon2::AssociatedData::new(&[0x04; 12]).expect("12 bytes fit"))
            .build()
            .expect("RFC parameters are valid");
        let secret = [0x03u8; 8];
        let ctx = context(Some(&secret), params).expect("8-byte secret is accepted");
        let mut blocks = vec![Block::new(); 32];
        let mut tag = [0u8; 32];
        ctx.hash_password_into_with_memory(&[0x01; 32], &[0x02; 16], &mut tag, &mut blocks)
            .expect("valid inputs");
        assert_eq!(
            base16ct::lower::encode_string(&tag),
            "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659"
        );
    }
}
