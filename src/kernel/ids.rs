//! Ids every module shares: the application's account id and a storefront's brand id.

use core::fmt;

use super::is_slug;

/// An id that does not meet its format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} id")]
#[non_exhaustive]
pub struct InvalidId {
    /// `account`, `brand`, ...
    pub kind: &'static str,
}

/// The application's customer id (an opaque string: a UUID, a database key, ...).
///
/// 1 to 128 bytes without control characters. Not personal data by itself: do not use the
/// email address as the account id.
///
/// # Examples
/// ```
/// use shopsafe::kernel::AccountId;
///
/// let id = AccountId::new("c-000042")?;
/// assert_eq!(id.as_str(), "c-000042");
/// assert!(AccountId::new("").is_err());
/// # Ok::<(), shopsafe::kernel::InvalidId>(())
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountId(String);

impl AccountId {
    /// Validates an account id.
    ///
    /// # Errors
    /// [`InvalidId`] when empty, longer than 128 bytes or with control characters.
    pub fn new(id: impl Into<String>) -> Result<Self, InvalidId> {
        let id = id.into();
        if id.is_empty() || id.len() > 128 || id.chars().any(char::is_control) {
            return Err(InvalidId { kind: "account" });
        }
        Ok(Self(id))
    }

    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An id no account can have (it starts with a control character, which
    /// [`AccountId::new`] refuses): the stand-in for an account name that did not parse.
    ///
    /// A login with it takes the path of an unknown account (the rate limiter, a decoy
    /// verify of the same cost, `Rejected`), so a malformed name neither answers faster
    /// nor gets around the per-source limit. It also owns the crate's decoy reset tokens,
    /// so no link can name it.
    ///
    /// # Examples
    /// ```
    /// use shopsafe::kernel::AccountId;
    ///
    /// let typed = "\u{7}not an id";
    /// let id = AccountId::new(typed).unwrap_or_else(|_| AccountId::unmatchable());
    /// assert_ne!(AccountId::new("x")?, id);
    /// # Ok::<(), shopsafe::kernel::InvalidId>(())
    /// ```
    #[must_use]
    pub fn unmatchable() -> Self {
        Self("\u{1}shopsafe-decoy".to_owned())
    }

    /// An id no account can have, one per `seed`: the stand-in for a name looked up and
    /// not found (an email no account has, by its blind index), so that each unknown
    /// name gets the rate-limit counter of its own that a real account would have. With
    /// one stand-in for all of them ([`AccountId::unmatchable`]), a few requests fill its
    /// counter and every unknown name answers "throttled" while a known one does not.
    ///
    /// # Examples
    /// ```
    /// use shopsafe::kernel::AccountId;
    ///
    /// let a = AccountId::unmatchable_for(b"index of one email");
    /// assert_ne!(a, AccountId::unmatchable_for(b"index of another"));
    /// assert_eq!(a, AccountId::unmatchable_for(b"index of one email"));
    /// assert!(AccountId::new(a.as_str()).is_err(), "no account can be named so");
    /// ```
    #[must_use]
    pub fn unmatchable_for(seed: &[u8]) -> Self {
        let mut id = String::from("\u{1}shopsafe-unknown-");
        for b in seed.iter().take(32) {
            id.push_str(&format!("{b:02x}"));
        }
        Self(id)
    }

    /// The owner of decoy reset tokens.
    pub(crate) fn decoy() -> Self {
        Self::unmatchable()
    }
}

impl fmt::Debug for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountId({})", self.0)
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A storefront (brand) of the company: 1 to 32 characters of `a-z 0-9 _ -`.
///
/// # Examples
/// ```
/// use shopsafe::kernel::BrandId;
///
/// assert!(BrandId::new("shoes").is_ok());
/// assert!(BrandId::new("Shoes & More").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BrandId(String);

impl BrandId {
    /// Validates a brand id.
    ///
    /// # Errors
    /// [`InvalidId`] unless 1 to 32 characters of `a-z 0-9 _ -`.
    pub fn new(id: impl Into<String>) -> Result<Self, InvalidId> {
        let id = id.into();
        if is_slug(&id, 32, true) {
            Ok(Self(id))
        } else {
            Err(InvalidId { kind: "brand" })
        }
    }

    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for BrandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BrandId({})", self.0)
    }
}

impl fmt::Display for BrandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
