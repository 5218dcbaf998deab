//! The erasure ledger: every erasure, as an entry of a keyed chain kept on the customer
//! side, so that a key store restored from an older backup can be caught and brought
//! back up to date ([`Sealer::replay`](super::Sealer::replay)).
//!
//! An entry holds a keyed digest of the customer id (never the id), the time, what was
//! erased and what was retained on which ground. Each entry's MAC covers the previous
//! one's, so whoever can write the customer database cannot add, drop, edit or reorder
//! entries unseen; MAC'd checkpoints ([`ErasureLedger::checkpoint`]) shipped off the
//! machine show a ledger cut back to an earlier state.

use std::sync::Arc;

use zeroize::Zeroizing;

use super::error::Error;
use crate::audit::{AuditCheckpoint, AuditKey};
use crate::kernel::{AccountId, Timestamp, hmac_sha256};
use crate::persist::StoreError;

/// Where the ledger's entries are kept: a table of the customer database (the
/// `SqliteStore` and `PgStore` implement it), never the key store.
pub trait LedgerStore: Send + Sync {
    /// Appends the entries `make` builds from the head as it stands (the next sequence
    /// number, and the last entry's MAC, or all zeros for an empty ledger), with every
    /// other appender kept out until they are written, and returns them.
    ///
    /// # Errors
    /// A backend failure (nothing is appended).
    fn ledger_append(
        &self,
        make: &mut dyn FnMut(u64, &[u8; 32]) -> Vec<LedgerEntry>,
    ) -> Result<Vec<LedgerEntry>, StoreError>;

    /// At most `limit` entries with a sequence number above `after`, in order.
    ///
    /// # Errors
    /// A backend failure, [`StoreError::Corrupt`] for a row that does not decode.
    fn ledger_entries(&self, after: u64, limit: usize) -> Result<Vec<LedgerEntry>, StoreError>;

    /// The last entry.
    ///
    /// # Errors
    /// As [`LedgerStore::ledger_entries`].
    fn ledger_head(&self) -> Result<Option<LedgerEntry>, StoreError>;

    /// Keeps a checkpoint beside the ledger.
    ///
    /// # Errors
    /// A backend failure.
    fn ledger_checkpoint(&self, checkpoint: &AuditCheckpoint) -> Result<(), StoreError>;

    /// The checkpoints kept beside the ledger, oldest first.
    ///
    /// # Errors
    /// A backend failure.
    fn ledger_checkpoints(&self) -> Result<Vec<AuditCheckpoint>, StoreError>;

    /// The highest entry a key store was seen to have applied (with all before it), as
    /// [`LedgerStore::ledger_saw_applied`] recorded it: 0 for none. The customer side's
    /// memory of the key store, which a key store restored from an older backup cannot
    /// take back.
    ///
    /// # Errors
    /// A backend failure.
    fn ledger_applied_seen(&self) -> Result<u64, StoreError>;

    /// Records that a key store was seen to have applied every entry up to `seq`, unless
    /// a higher one is recorded.
    ///
    /// # Errors
    /// A backend failure.
    fn ledger_saw_applied(&self, seq: u64) -> Result<(), StoreError>;

    /// Sets what a key store was seen to apply to `seq`, down as well as up: only for an
    /// operator accepting a cut ledger.
    ///
    /// # Errors
    /// A backend failure.
    fn ledger_reset_applied(&self, seq: u64) -> Result<(), StoreError>;
}

impl<T: LedgerStore + ?Sized> LedgerStore for Arc<T> {
    fn ledger_append(
        &self,
        make: &mut dyn FnMut(u64, &[u8; 32]) -> Vec<LedgerEntry>,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        (**self).ledger_append(make)
    }
    fn ledger_entries(&self, after: u64, limit: usize) -> Result<Vec<LedgerEntry>, StoreError> {
        (**self).ledger_entries(after, limit)
    }
    fn ledger_head(&self) -> Result<Option<LedgerEntry>, StoreError> {
        (**self).ledger_head()
    }
    fn ledger_checkpoint(&self, checkpoint: &AuditCheckpoint) -> Result<(), StoreError> {
        (**self).ledger_checkpoint(checkpoint)
    }
    fn ledger_checkpoints(&self) -> Result<Vec<AuditCheckpoint>, StoreError> {
        (**self).ledger_checkpoints()
    }
    fn ledger_applied_seen(&self) -> Result<u64, StoreError> {
        (**self).ledger_applied_seen()
    }
    fn ledger_saw_applied(&self, seq: u64) -> Result<(), StoreError> {
        (**self).ledger_saw_applied(seq)
    }
    fn ledger_reset_applied(&self, seq: u64) -> Result<(), StoreError> {
        (**self).ledger_reset_applied(seq)
    }
}

/// Something kept after an erasure, and the legal ground for keeping it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Retained {
    /// What is kept ("orders without personal data").
    pub what: String,
    /// Why ("tax law: 10 years").
    pub why: String,
}

/// What an erasure removes and what it keeps: the same for every customer of a call.
///
/// # Examples
/// ```
/// use shopsafe::seal::Erasure;
///
/// let erasure = Erasure::new()
///     .erased("profile")?
///     .erased("addresses")?
///     .retained("orders without personal data", "tax law: 10 years")?;
/// assert_eq!(erasure.erased_items(), ["profile", "addresses"]);
/// assert!(Erasure::new().erased("two\nlines").is_err());
/// # Ok::<(), shopsafe::seal::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Erasure {
    erased: Vec<String>,
    retained: Vec<Retained>,
}

/// Longest item of an [`Erasure`], in bytes.
const MAX_ITEM: usize = 200;

fn item(text: &str) -> Result<String, Error> {
    if text.is_empty() || text.len() > MAX_ITEM || text.chars().any(char::is_control) {
        return Err(Error::InvalidErasure);
    }
    Ok(text.to_owned())
}

impl Erasure {
    /// An erasure that names nothing yet (the data key's destruction goes without saying).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Names something erased.
    ///
    /// # Errors
    /// [`Error::InvalidErasure`] for an empty text, one over 200 bytes, or one with a
    /// control character.
    pub fn erased(mut self, what: &str) -> Result<Self, Error> {
        self.erased.push(item(what)?);
        Ok(self)
    }

    /// Names something retained and its ground.
    ///
    /// # Errors
    /// As [`Erasure::erased`], for either text.
    pub fn retained(mut self, what: &str, why: &str) -> Result<Self, Error> {
        self.retained.push(Retained {
            what: item(what)?,
            why: item(why)?,
        });
        Ok(self)
    }

    /// What it erases.
    #[must_use]
    pub fn erased_items(&self) -> &[String] {
        &self.erased
    }

    /// What it keeps, and why.
    #[must_use]
    pub fn retained_items(&self) -> &[Retained] {
        &self.retained
    }

    fn erased_text(&self) -> String {
        self.erased.join("\n")
    }

    fn retained_text(&self) -> String {
        self.retained
            .iter()
            .map(|r| format!("{}\t{}", r.what, r.why))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// One entry of the ledger.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LedgerEntry {
    /// Its place, from 1.
    pub seq: u64,
    /// When the erasure was recorded.
    pub at: Timestamp,
    /// The keyed digest of the customer id ([`ErasureLedger::digest`]).
    pub customer: [u8; 16],
    /// What was erased and retained.
    pub erasure: Erasure,
    /// The chain MAC over this entry and the one before.
    pub mac: [u8; 32],
}

impl core::fmt::Debug for LedgerEntry {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LedgerEntry")
            .field("seq", &self.seq)
            .field("at", &self.at)
            .finish_non_exhaustive()
    }
}

impl LedgerEntry {
    /// An entry as a store reads it back: the erased items one a line, the retained ones
    /// `what<TAB>why` one a line, as [`LedgerEntry::erased_text`] and
    /// [`LedgerEntry::retained_text`] wrote them.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when a field does not decode.
    pub fn from_stored(
        seq: u64,
        at: Timestamp,
        customer: &[u8],
        erased: &str,
        retained: &str,
        mac: &[u8],
    ) -> Result<Self, StoreError> {
        let corrupt = || StoreError::Corrupt {
            what: "erasure ledger entry",
        };
        let erased = if erased.is_empty() {
            Vec::new()
        } else {
            erased.split('\n').map(str::to_owned).collect()
        };
        let retained = if retained.is_empty() {
            Vec::new()
        } else {
            retained
                .split('\n')
                .map(|line| {
                    line.split_once('\t').map(|(what, why)| Retained {
                        what: what.to_owned(),
                        why: why.to_owned(),
                    })
                })
                .collect::<Option<Vec<_>>>()
                .ok_or_else(corrupt)?
        };
        Ok(Self {
            seq,
            at,
            customer: customer.try_into().map_err(|_| corrupt())?,
            erasure: Erasure { erased, retained },
            mac: mac.try_into().map_err(|_| corrupt())?,
        })
    }

    /// The erased items as stored: one a line.
    #[must_use]
    pub fn erased_text(&self) -> String {
        self.erasure.erased_text()
    }

    /// The retained items as stored: `what<TAB>why`, one a line.
    #[must_use]
    pub fn retained_text(&self) -> String {
        self.erasure.retained_text()
    }
}

/// What [`ErasureLedger::verify`] found: every entry's MAC and place checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LedgerVerified {
    /// Entries in the ledger.
    pub entries: u64,
    /// Checkpoints (kept and shipped) it matched.
    pub checkpoints: u64,
}

/// Entries read at a time.
pub(super) const PAGE: usize = 10_000;

/// The erasure ledger over a [`LedgerStore`], keyed by a key of its own.
///
/// # Security
/// The key must not be kept in the customer database: with it, whoever writes that
/// database could rewrite the ledger unseen. Its digests of customer ids can be checked
/// against a guessed id by whoever holds it.
pub struct ErasureLedger {
    store: Arc<dyn LedgerStore>,
    digest_key: Zeroizing<[u8; 32]>,
    chain_key: Zeroizing<[u8; 32]>,
    checkpoint_key: AuditKey,
    every: u64,
    in_flight_ms: i64,
}

impl core::fmt::Debug for ErasureLedger {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("ErasureLedger([REDACTED])")
    }
}

fn subkey(key: &AuditKey, label: &[u8]) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(hmac_sha256(
        key.expose_secret(),
        &[b"shopsafe/erasure-ledger/v1\0", label],
    ))
}

impl ErasureLedger {
    /// The ledger in `store`, keyed by `key` (digests, chain MACs and checkpoints each
    /// under a key derived from it, so that an audit trail under the same key cannot
    /// pass for it). A checkpoint is kept every 1,000 entries.
    pub fn new(store: impl LedgerStore + 'static, key: &AuditKey) -> Self {
        Self {
            store: Arc::new(store),
            digest_key: subkey(key, b"customer"),
            chain_key: subkey(key, b"chain"),
            checkpoint_key: AuditKey::from_bytes(*subkey(key, b"checkpoint")),
            every: 1_000,
            in_flight_ms: 5 * 60 * 1_000,
        }
    }

    /// How long an entry no key store was seen to apply counts as an erasure under way
    /// on another server (its keys not destroyed yet) rather than one cut off: five
    /// minutes unless set. After that a sealer that finds it unapplied refuses, until a
    /// replay. An entry at or below what a key store was seen to apply
    /// ([`LedgerStore::ledger_applied_seen`]) is never taken for one under way.
    #[must_use]
    pub fn in_flight(mut self, window: std::time::Duration) -> Self {
        self.in_flight_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        self
    }

    /// Whether `entry`, unapplied at `now_ms`, is past the in-flight window.
    pub(super) fn overdue(&self, entry: &LedgerEntry, now_ms: i64) -> bool {
        now_ms.saturating_sub(entry.at.as_millis()) >= self.in_flight_ms
    }

    /// The highest entry a key store was seen to apply.
    pub(super) fn applied_seen(&self) -> Result<u64, Error> {
        Ok(self.store.ledger_applied_seen()?)
    }

    /// Records that a key store applied every entry up to `seq`.
    pub(super) fn saw_applied(&self, seq: u64) -> Result<(), Error> {
        Ok(self.store.ledger_saw_applied(seq)?)
    }

    /// Sets what a key store was seen to apply, down as well as up.
    pub(super) fn reset_applied(&self, seq: u64) -> Result<(), Error> {
        Ok(self.store.ledger_reset_applied(seq)?)
    }

    /// The "being erased" tombstone a replay writes for `digest` before it destroys
    /// keys: it keeps new keys out (a key insert checks it) without saying "applied".
    #[must_use]
    pub fn pending_digest(&self, digest: &[u8; 16]) -> [u8; 16] {
        let mac = hmac_sha256(&self.digest_key[..], &[b"pending\0", digest]);
        let mut out = [0u8; 16];
        out.copy_from_slice(&mac[..16]);
        out
    }

    /// Keeps a checkpoint every `entries` entries (0: only when asked).
    #[must_use]
    pub fn checkpoint_every(mut self, entries: u64) -> Self {
        self.every = entries;
        self
    }

    /// The keyed digest of `customer`'s id, as entries hold it: HMAC-SHA-256 under the
    /// ledger's digest key, cut to 16 bytes.
    #[must_use]
    pub fn digest(&self, customer: &AccountId) -> [u8; 16] {
        let mac = hmac_sha256(&self.digest_key[..], &[customer.as_str().as_bytes()]);
        let mut out = [0u8; 16];
        out.copy_from_slice(&mac[..16]);
        out
    }

    fn mac(&self, prev: &[u8; 32], e: &LedgerEntry) -> [u8; 32] {
        let (erased, retained) = (e.erased_text(), e.retained_text());
        hmac_sha256(
            &self.chain_key[..],
            &[
                prev,
                &e.seq.to_be_bytes(),
                &e.at.as_millis().to_be_bytes(),
                &e.customer,
                &(erased.len() as u64).to_be_bytes(),
                erased.as_bytes(),
                &(retained.len() as u64).to_be_bytes(),
                retained.as_bytes(),
            ],
        )
    }

    /// Appends one entry for each of `customers`, in one transaction, and keeps a
    /// checkpoint when one falls due (at most one a call: at the last entry due).
    /// Returns the entries.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub fn record(
        &self,
        customers: &[AccountId],
        erasure: &Erasure,
    ) -> Result<Vec<LedgerEntry>, Error> {
        if customers.is_empty() {
            return Ok(Vec::new());
        }
        let at = Timestamp::now();
        let digests: Vec<[u8; 16]> = customers.iter().map(|c| self.digest(c)).collect();
        let entries = self.store.ledger_append(&mut |next, prev| {
            let mut prev = *prev;
            let mut out = Vec::with_capacity(digests.len());
            for (i, digest) in digests.iter().enumerate() {
                let mut e = LedgerEntry {
                    seq: next + i as u64,
                    at,
                    customer: *digest,
                    erasure: erasure.clone(),
                    mac: [0; 32],
                };
                e.mac = self.mac(&prev, &e);
                prev = e.mac;
                out.push(e);
            }
            out
        })?;
        if self.every > 0 {
            let due = entries
                .iter()
                .rev()
                .find(|e| e.seq.is_multiple_of(self.every));
            if let Some(e) = due {
                let cp = self.checkpoint_key.checkpoint(e.seq, e.mac, e.at);
                self.store.ledger_checkpoint(&cp)?;
            }
        }
        Ok(entries)
    }

    /// The last entry.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub fn head(&self) -> Result<Option<LedgerEntry>, Error> {
        Ok(self.store.ledger_head()?)
    }

    /// Takes a MAC'd checkpoint of the ledger as it is now (count and head), keeps it
    /// beside the ledger and returns it, to be shipped somewhere the application server
    /// cannot write.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub fn checkpoint(&self) -> Result<AuditCheckpoint, Error> {
        let (seq, head) = self
            .store
            .ledger_head()?
            .map_or((0, [0; 32]), |e| (e.seq, e.mac));
        let cp = self.checkpoint_key.checkpoint(seq, head, Timestamp::now());
        self.store.ledger_checkpoint(&cp)?;
        Ok(cp)
    }

    /// The entries after `from` (a sequence number and the MAC the caller trusts for it;
    /// `None` for the start), every one checked against the one before, `PAGE` at a
    /// time: `each` gets each page.
    ///
    /// # Errors
    /// [`Error::LedgerBroken`] at the first entry whose MAC or place is wrong (or when
    /// entry `from` is not the one the caller trusts), [`Error::Store`].
    pub(super) fn walk(
        &self,
        from: Option<(u64, [u8; 32])>,
        mut each: impl FnMut(&[LedgerEntry]) -> Result<(), Error>,
    ) -> Result<Option<(u64, [u8; 32])>, Error> {
        let (mut seq, mut prev) = match from {
            None | Some((0, _)) => (0, [0u8; 32]),
            Some((seq, mac)) => {
                let found = self.store.ledger_entries(seq - 1, 1)?;
                let Some(e) = found.first().filter(|e| e.seq == seq) else {
                    return Err(Error::LedgerBroken { seq });
                };
                if !bool::from(subtle::ConstantTimeEq::ct_eq(&e.mac[..], &mac[..])) {
                    return Err(Error::LedgerBroken { seq });
                }
                (seq, mac)
            }
        };
        loop {
            let page = self.store.ledger_entries(seq, PAGE)?;
            if page.is_empty() {
                break;
            }
            for e in &page {
                let want = self.mac(&prev, e);
                if e.seq != seq + 1
                    || !bool::from(subtle::ConstantTimeEq::ct_eq(&want[..], &e.mac[..]))
                {
                    return Err(Error::LedgerBroken { seq: seq + 1 });
                }
                seq = e.seq;
                prev = e.mac;
            }
            each(&page)?;
        }
        Ok((seq > 0).then_some((seq, prev)))
    }

    /// Checks the whole ledger: every entry's MAC and place, and that it reaches each
    /// checkpoint kept beside it and each one in `shipped` (checkpoints shipped off the
    /// machine) with the same head.
    ///
    /// # Errors
    /// [`Error::LedgerBroken`] for an entry changed, dropped or moved, or a checkpoint
    /// that does not match; [`Error::LedgerCut`] when the ledger ends before a
    /// checkpoint (cut back, or restored from an older backup); [`Error::Store`].
    pub fn verify(&self, shipped: &[AuditCheckpoint]) -> Result<LedgerVerified, Error> {
        let mut checkpoints = self.store.ledger_checkpoints()?;
        checkpoints.extend_from_slice(shipped);
        for cp in &checkpoints {
            if !cp.is_valid(&self.checkpoint_key) {
                return Err(Error::LedgerBroken { seq: cp.records });
            }
        }
        let mut want: Vec<(u64, [u8; 32])> =
            checkpoints.iter().map(|c| (c.records, c.head)).collect();
        want.sort_unstable();
        want.dedup();
        let mut matched = 0u64;
        let mut next = want.iter().peekable();
        while let Some((0, head)) = next.peek() {
            if *head != [0; 32] {
                return Err(Error::LedgerBroken { seq: 0 });
            }
            matched += 1;
            next.next();
        }
        let end = self.walk(None, |page| {
            for e in page {
                while let Some((seq, head)) = next.peek() {
                    if *seq != e.seq {
                        break;
                    }
                    if *head != e.mac {
                        return Err(Error::LedgerBroken { seq: e.seq });
                    }
                    matched += 1;
                    next.next();
                }
            }
            Ok(())
        })?;
        let entries = end.map_or(0, |(seq, _)| seq);
        if let Some((seq, _)) = next.next() {
            return Err(Error::LedgerCut {
                checkpoint: *seq,
                entries,
            });
        }
        Ok(LedgerVerified {
            entries,
            checkpoints: matched,
        })
    }
}
