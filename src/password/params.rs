//! argon2id cost parameters: presets, the OWASP floor, and a validating builder.

use core::fmt;

use super::Error;

/// Bytes in one argon2 memory block (`m` counts these, in KiB).
pub(crate) const BLOCK_BYTES: usize = argon2::Block::SIZE;

/// Salt length for new hashes: 16 bytes, RFC 9106 §3.1 recommends 128 bits.
pub const SALT_LEN: usize = 16;

/// Output (tag) length for new hashes: 32 bytes, RFC 9106 §3.1 and every common library's default.
pub const OUTPUT_LEN: usize = 32;

/// The OWASP Password Storage Cheat Sheet's argon2id minimums: `(m KiB, t)` pairs with p = 1,
/// each of equal strength. A configuration meets the floor when it is at least one row.
const OWASP_FLOOR: [(u32, u32); 5] = [
    (47_104, 1),
    (19_456, 2),
    (12_288, 3),
    (9_216, 4),
    (7_168, 5),
];

/// Hard caps a stored PHC string must respect before any work is done.
///
/// They are far above every preset and refuse only what is absurd (m = 4 TiB, t = 10^9);
/// the [`Hasher`](super::Hasher) applies its own, tighter per-deployment limit after parsing.
pub(crate) mod caps {
    /// 2 GiB, the largest preset ([`Params::rfc9106_first`](super::Params::rfc9106_first)).
    pub(crate) const MAX_M_KIB: u32 = 2 * 1024 * 1024;
    /// Above RFC 9106's largest suggestion by an order of magnitude.
    pub(crate) const MAX_T: u32 = 64;
    /// RFC 9106 suggests p = 4; 64 lanes covers any real machine.
    pub(crate) const MAX_P: u32 = 64;
    /// argon2's own minimum salt length (RFC 9106 §3.1: at least 8 bytes).
    pub(crate) const MIN_SALT: usize = 8;
    /// libsodium and the reference implementation cap salts well below this.
    pub(crate) const MAX_SALT: usize = 64;
    /// Shorter tags than 16 bytes are not password hashes.
    pub(crate) const MIN_OUTPUT: usize = 16;
    /// 64 bytes is already twice what any library emits by default.
    pub(crate) const MAX_OUTPUT: usize = 64;
}

/// argon2id cost parameters for new hashes: memory `m` (KiB), passes `t`, lanes `p`.
///
/// Construct them with a preset, with [`Params::builder`] (which refuses anything below
/// the OWASP floor), or, in tests only, with [`Params::insecure_for_tests`].
///
/// # Examples
/// ```
/// use shopsafe::password::Params;
///
/// let p = Params::owasp();
/// assert_eq!((p.m_kib(), p.t(), p.p()), (19_456, 2, 1));
/// assert!(Params::builder().m_kib(8_192).t(1).build().is_err()); // below the floor
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Params {
    m_kib: u32,
    t: u32,
    p: u32,
}

impl Params {
    /// OWASP's recommended argon2id configuration: m = 19 MiB (19456 KiB), t = 2, p = 1.
    ///
    /// The default. About 20 ms per hash on a current server core.
    #[must_use]
    pub const fn owasp() -> Self {
        Self {
            m_kib: 19_456,
            t: 2,
            p: 1,
        }
    }

    /// RFC 9106 §4 second recommended option, for memory-constrained settings:
    /// m = 64 MiB, t = 3, p = 4.
    #[must_use]
    pub const fn rfc9106_low_memory() -> Self {
        Self {
            m_kib: 64 * 1024,
            t: 3,
            p: 4,
        }
    }

    /// RFC 9106 §4 first recommended option: m = 2 GiB, t = 1, p = 4.
    ///
    /// # Security
    /// Each concurrent login holds 2 GiB: size the limiter budget for it, or logins queue.
    #[must_use]
    pub const fn rfc9106_first() -> Self {
        Self {
            m_kib: 2 * 1024 * 1024,
            t: 1,
            p: 4,
        }
    }

    /// Parameters below the OWASP floor, for tests that hash many times.
    ///
    /// Named so that it stands out in a review: production code must never call it.
    /// Values must still satisfy argon2 itself (m ≥ 8·p, t ≥ 1, p ≥ 1) and the parse caps.
    ///
    /// # Errors
    /// [`Error::InvalidParams`] when argon2 would refuse the values.
    pub fn insecure_for_tests(m_kib: u32, t: u32, p: u32) -> Result<Self, Error> {
        check_bounds(m_kib, t, p)?;
        Ok(Self { m_kib, t, p })
    }

    /// A builder starting from [`Params::owasp`].
    pub const fn builder() -> ParamsBuilder {
        ParamsBuilder {
            inner: Self::owasp(),
        }
    }

    /// Memory cost in KiB (1 KiB argon2 blocks).
    #[must_use]
    pub const fn m_kib(&self) -> u32 {
        self.m_kib
    }

    /// Time cost: passes over memory.
    #[must_use]
    pub const fn t(&self) -> u32 {
        self.t
    }

    /// Parallelism: lanes.
    #[must_use]
    pub const fn p(&self) -> u32 {
        self.p
    }

    /// Bytes of memory one hash with these parameters holds.
    #[must_use]
    pub fn memory_bytes(&self) -> usize {
        self.block_count() * BLOCK_BYTES
    }

    /// Whether these parameters are at least one row of the OWASP argon2id table.
    #[must_use]
    pub fn meets_owasp_floor(&self) -> bool {
        meets_floor(self.m_kib, self.t)
    }

    /// Number of 1 KiB blocks argon2 fills (m rounded down to a multiple of 4·p).
    pub(crate) fn block_count(&self) -> usize {
        self.to_argon2().block_count()
    }

    #[allow(
        clippy::expect_used,
        reason = "every constructor runs check_bounds, a superset of argon2's"
    )]
    pub(crate) fn to_argon2(self) -> argon2::Params {
        argon2::Params::new(self.m_kib, self.t, self.p, None)
            .expect("Params are validated against argon2's bounds at construction")
    }

    /// Parameters read back from a stored hash (already checked against the parse caps).
    pub(crate) fn from_stored(m_kib: u32, t: u32, p: u32) -> Result<Self, Error> {
        check_bounds(m_kib, t, p)?;
        Ok(Self { m_kib, t, p })
    }
}

impl Default for Params {
    fn default() -> Self {
        Self::owasp()
    }
}

impl fmt::Debug for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Params(m={},t={},p={})", self.m_kib, self.t, self.p)
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m={},t={},p={}", self.m_kib, self.t, self.p)
    }
}

/// Builds [`Params`], refusing anything below the OWASP floor.
///
/// # Examples
/// ```
/// use shopsafe::password::Params;
///
/// let p = Params::builder().m_kib(47_104).t(1).p(1).build()?;
/// assert!(p.meets_owasp_floor());
/// # Ok::<(), shopsafe::password::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
#[must_use]
pub struct ParamsBuilder {
    inner: Params,
}

impl ParamsBuilder {
    /// Memory cost in KiB.
    pub const fn m_kib(mut self, m_kib: u32) -> Self {
        self.inner.m_kib = m_kib;
        self
    }

    /// Time cost (passes).
    pub const fn t(mut self, t: u32) -> Self {
        self.inner.t = t;
        self
    }

    /// Parallelism (lanes).
    pub const fn p(mut self, p: u32) -> Self {
        self.inner.p = p;
        self
    }

    /// Validates and returns the parameters.
    ///
    /// # Errors
    /// [`Error::BelowOwaspFloor`] when (m, t) is weaker than every OWASP row;
    /// [`Error::InvalidParams`] when argon2 or the parse caps would refuse the values.
    pub fn build(self) -> Result<Params, Error> {
        let Params { m_kib, t, p } = self.inner;
        check_bounds(m_kib, t, p)?;
        if !meets_floor(m_kib, t) {
            return Err(Error::BelowOwaspFloor { m_kib, t });
        }
        Ok(self.inner)
    }
}

fn meets_floor(m_kib: u32, t: u32) -> bool {
    OWASP_FLOOR.iter().any(|&(fm, ft)| m_kib >= fm && t >= ft)
}

/// argon2's own bounds plus the crate's parse caps, so that every `Params` value can be
/// written as a PHC string that this crate parses back.
fn check_bounds(m_kib: u32, t: u32, p: u32) -> Result<(), Error> {
    let reason = if !(1..=caps::MAX_P).contains(&p) {
        "p must be between 1 and 64"
    } else if !(1..=caps::MAX_T).contains(&t) {
        "t must be between 1 and 64"
    } else if m_kib < 8 * p {
        "m must be at least 8 KiB per lane"
    } else if m_kib > caps::MAX_M_KIB {
        "m must be at most 2 GiB"
    } else {
        return Ok(());
    };
    Err(Error::InvalidParams {
        m_kib,
        t,
        p,
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_have_the_documented_values() {
        let cases = [
            (Params::owasp(), (19_456, 2, 1)),
            (Params::rfc9106_low_memory(), (65_536, 3, 4)),
            (Params::rfc9106_first(), (2_097_152, 1, 4)),
        ];
        for (params, (m, t, p)) in cases {
            assert_eq!((params.m_kib(), params.t(), params.p()), (m, t, p));
            assert!(params.meets_owasp_floor());
        }
        assert_eq!(Params::default(), Params::owasp());
    }

    #[test]
    fn builder_refuses_below_each_owasp_row() {
        for (m, t) in OWASP_FLOOR {
            assert!(Params::builder().m_kib(m).t(t).build().is_ok());
            let below = Params::builder().m_kib(m - 1).t(t).build();
            // m-1 with the same t can still meet a row with a larger t only if t grows: it must not here.
            assert!(
                matches!(below, Err(Error::BelowOwaspFloor { .. })),
                "m={} t={t} accepted",
                m - 1
            );
        }
        assert!(matches!(
            Params::builder().m_kib(19_456).t(1).build(),
            Err(Error::BelowOwaspFloor {
                m_kib: 19_456,
                t: 1
            })
        ));
    }

    #[test]
    fn builder_refuses_values_argon2_cannot_run() {
        for (m, t, p) in [
            (64, 0, 1),
            (64, 1, 0),
            (31, 1, 4),
            (u32::MAX, 1, 1),
            (64, 65, 1),
        ] {
            assert!(matches!(
                Params::insecure_for_tests(m, t, p),
                Err(Error::InvalidParams { .. })
            ));
        }
        assert!(Params::insecure_for_tests(64, 1, 1).is_ok());
    }

    #[test]
    fn memory_bytes_follow_block_rounding() {
        assert_eq!(Params::owasp().memory_bytes(), 19_456 * 1024);
        // m is rounded down to a multiple of 4 * p blocks by argon2.
        let p = Params::insecure_for_tests(70, 1, 4).expect("valid test params");
        assert_eq!(p.memory_bytes(), 64 * 1024);
    }
}
