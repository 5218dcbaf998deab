//! The session port: server-side sessions and remember-device tokens, stored by the
//! digest of their secret, and the records it carries.

use core::fmt;

use super::credentials::SecurityStamp;
use super::incidents::IncidentId;
use crate::kernel::{AccountId, Timestamp};
use crate::persist::StoreError;
use crate::secret::{RngError, fill_random};

/// A session's public id: 16 random bytes, written as 32 lower-case hex digits. It names
/// the session in the customer's list ("end the session on that laptop") and opens
/// nothing: the token is a different secret, of which only a digest is stored.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId([u8; 16]);

impl SessionId {
    /// A fresh random id.
    ///
    /// # Errors
    /// [`RngError`] when the OS generator fails.
    pub fn generate() -> Result<Self, RngError> {
        let mut b = [0u8; 16];
        fill_random(&mut b)?;
        Ok(Self(b))
    }

    /// From its 16 bytes (as stored).
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// Its 16 bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Parses the 32 lower-case hex digits [`Display`](fmt::Display) writes (one string
    /// per id: upper case is refused).
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != 32 || text.bytes().any(|b| b.is_ascii_uppercase()) {
            return None;
        }
        let mut b = [0u8; 16];
        base16ct::lower::decode(text, &mut b).ok()?;
        Some(Self(b))
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 32];
        let hex = base16ct::lower::encode_str(&self.0, &mut buf).map_err(|_| fmt::Error)?;
        f.write_str(hex)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({self})")
    }
}

/// What is stored of a session: never its token, only the SHA-256 digest of the token's
/// secret (in [`SessionStore::create_session`]'s argument), and what the customer's list
/// shows.
///
/// # Security
/// `source` and `agent` are personal data: they belong in the data map, the export and
/// the erasure. Keep them coarse (see [`coarse_agent`](super::coarse_agent)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionRecord {
    /// The public id.
    pub id: SessionId,
    /// Whose.
    pub account: AccountId,
    /// The credential's security stamp when the session began: the session is live only
    /// while the credential still has it.
    pub stamp: SecurityStamp,
    /// When it began.
    pub created_at: Timestamp,
    /// When it was last used (moved at most once a minute, see
    /// [`SessionPolicy::touch_every`](super::SessionPolicy)).
    pub last_seen: Timestamp,
    /// When it ends whatever happens (the absolute expiry).
    pub expires_at: Timestamp,
    /// Where the login came from (the client source), as the list shows it.
    pub source: String,
    /// The coarse user agent ("Firefox on Linux").
    pub agent: String,
}

impl SessionRecord {
    /// A record for a session beginning at `now`.
    #[must_use]
    pub fn new(
        id: SessionId,
        account: AccountId,
        stamp: SecurityStamp,
        now: Timestamp,
        expires_at: Timestamp,
        source: String,
        agent: String,
    ) -> Self {
        Self {
            id,
            account,
            stamp,
            created_at: now,
            last_seen: now,
            expires_at,
            source,
            agent,
        }
    }
}

/// What is stored of a remember-device token: its digest (in the call), its family (every
/// token that rotation chained from one login) and whether it was used.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeviceRecord {
    /// The family: the first token's id, kept through every rotation.
    pub family: SessionId,
    /// Whose.
    pub account: AccountId,
    /// The security stamp it was issued under (a reset ends it).
    pub stamp: SecurityStamp,
    /// When it was issued.
    pub issued_at: Timestamp,
    /// When it stops working.
    pub expires_at: Timestamp,
}

impl DeviceRecord {
    /// A record for a device token issued at `now`.
    #[must_use]
    pub fn new(
        family: SessionId,
        account: AccountId,
        stamp: SecurityStamp,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Self {
        Self {
            family,
            account,
            stamp,
            issued_at: now,
            expires_at,
        }
    }
}

/// The store's verdict on a remember-device token presented for use.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub enum DeviceUse {
    /// It was live: it is now used, and the new token (same family) replaces it.
    Rotated(DeviceRecord),
    /// It had been used before: someone holds a copy. Every token of its family is gone.
    Reused {
        /// Whose family was ended.
        account: AccountId,
    },
    /// Unknown, expired, or issued under a stamp the credential no longer has.
    Unknown,
}

/// Server-side sessions and remember-device tokens, in the customer database.
///
/// "Live" below means: the row is there, and its account's credential exists, still has
/// the row's security stamp, is neither `DISABLED` nor `MUST_RESET`, and no incident
/// compromises it (set at or before the cutoff of an incident whose scope holds the
/// account: all, one of its brands, or the incident's list). The expiries (idle and
/// absolute) are the caller's to check, from the record.
pub trait SessionStore: Send + Sync {
    /// Stores a new session under the SHA-256 `digest` of its token's secret.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`] for a digest or id already stored; a backend failure.
    fn create_session(&self, digest: &[u8; 32], record: &SessionRecord) -> Result<(), StoreError>;

    /// The session stored under `digest`, if it is live: one indexed read, on every
    /// request.
    ///
    /// # Errors
    /// A backend failure or a corrupt row.
    fn live_session(&self, digest: &[u8; 32]) -> Result<Option<SessionRecord>, StoreError>;

    /// Moves a session's `last_seen` to `now` (idle expiry counts from it).
    ///
    /// # Errors
    /// A backend failure.
    fn touch_session(&self, digest: &[u8; 32], now: Timestamp) -> Result<(), StoreError>;

    /// Replaces a live session's digest by `new_digest` (same id, same record, `last_seen`
    /// at `now`) in one statement: the old token stops working the moment the new one
    /// starts. Returns whether it did (false: no live session under `old_digest`).
    ///
    /// # Errors
    /// A backend failure.
    fn rotate_session(
        &self,
        old_digest: &[u8; 32],
        new_digest: &[u8; 32],
        now: Timestamp,
    ) -> Result<bool, StoreError>;

    /// The account's live sessions, newest first.
    ///
    /// # Errors
    /// A backend failure or a corrupt row.
    fn sessions_of(&self, account: &AccountId) -> Result<Vec<SessionRecord>, StoreError>;

    /// Ends the account's session `id` (another account's id ends nothing). Returns
    /// whether one ended.
    ///
    /// # Errors
    /// A backend failure.
    fn end_session(&self, account: &AccountId, id: &SessionId) -> Result<bool, StoreError>;

    /// Ends every session and remember-device token of the account; returns how many
    /// sessions ended.
    ///
    /// # Errors
    /// A backend failure.
    fn end_sessions_of(&self, account: &AccountId) -> Result<u64, StoreError>;

    /// Ends every session and remember-device token of every account in the incident's
    /// scope whose credential it compromises; returns how many sessions ended.
    ///
    /// # Errors
    /// [`StoreError::NoSuchIncident`]; a backend failure.
    fn end_incident_sessions(&self, incident: IncidentId) -> Result<u64, StoreError>;

    /// Ends every session and remember-device token of every account; returns how many
    /// sessions ended.
    ///
    /// # Errors
    /// A backend failure.
    fn end_all_sessions(&self) -> Result<u64, StoreError>;

    /// Drops sessions past their absolute expiry at `now` or unused since `idle_before`,
    /// and device tokens past their expiry; returns how many sessions went.
    ///
    /// # Errors
    /// A backend failure.
    fn purge_sessions(&self, now: Timestamp, idle_before: Timestamp) -> Result<u64, StoreError>;

    /// Stores a remember-device token under the SHA-256 `digest` of its secret.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`] for a digest already stored; a backend failure.
    fn issue_device(&self, digest: &[u8; 32], record: &DeviceRecord) -> Result<(), StoreError>;

    /// Uses the device token under `digest` at `now`, in one transaction: a live unused
    /// token (unexpired, its stamp still the credential's, the credential live) is
    /// marked used and its successor stored under `next_digest` (same family, account
    /// and stamp, issued at `now`, expiring at `next_expires_at`); a used one ends its
    /// whole family
    /// ([`DeviceUse::Reused`]); anything else is [`DeviceUse::Unknown`]. Two uses of one
    /// token at once: one rotates, the other is a reuse.
    ///
    /// # Errors
    /// A backend failure (then nothing changed).
    fn use_device(
        &self,
        digest: &[u8; 32],
        next_digest: &[u8; 32],
        now: Timestamp,
        next_expires_at: Timestamp,
    ) -> Result<DeviceUse, StoreError>;
}
