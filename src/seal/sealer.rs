//! [`Sealer`]: seals and opens customers' personal values under their own data keys,
//! makes blind indexes, and rewraps the data keys when the KEK rotates.

use std::collections::HashMap;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::column::Column;
use super::error::Error;
use super::index::{BlindIndex, blind_index, normalize};
use super::kek::{Keks, data_key_context, index_key_context};
use super::keys::{KeyStore, WrappedIndexKey, WrappedKey};
use super::ledger::{Erasure, ErasureLedger};
use super::sealed::{Place, Sealed, open, seal};
use crate::card::{KeySource, VaultKeyId};
use crate::kernel::{AccountId, Timestamp};
use crate::minimize::Pii;
use crate::secret::fill_random;

/// What can be sealed: text, or a [`Pii`] value.
pub trait Plaintext {
    /// The text to seal.
    fn text(&self) -> &str;
}

impl Plaintext for str {
    fn text(&self) -> &str {
        self
    }
}

impl Plaintext for String {
    fn text(&self) -> &str {
        self
    }
}

impl<T: AsRef<str>> Plaintext for Pii<T> {
    fn text(&self) -> &str {
        self.expose().as_ref()
    }
}

/// Seals customers' personal values, opens them, and makes their blind indexes.
///
/// - Each customer has a **data key** of their own (256 bits, random), made the first
///   time something of theirs is sealed, kept in the [`KeyStore`] only wrapped by the
///   current **customer-data KEK**.
/// - The KEKs come from a [`KeySource`] (`FileKeySource`, `EnvKeySource`, or an
///   `EnvelopeKeySource` whose KEK stays in an HSM), read once here; the source's last
///   key is the current epoch. Use a source of its own, not the card vault's.
/// - Opening in bulk ([`Sealer::keys`], [`Sealer::open_all`]) reads the key store once
///   per batch; unwrapped data keys live in the returned [`CustomerKeys`] and are wiped
///   when it drops.
///
/// # Examples
/// ```
/// use shopsafe::card::{FileKeySource, VaultKeyId};
/// use shopsafe::kernel::AccountId;
/// use shopsafe::minimize::PiiKind;
/// use shopsafe::seal::{Column, Sealer};
/// use shopsafe::store::sqlite::SqliteKeyStore;
///
/// let dir = tempfile::tempdir()?;
/// let keks = FileKeySource::open_or_create(dir.path().join("customer.keys"), &VaultKeyId::new("2026-12")?)?;
/// let sealer = Sealer::new(SqliteKeyStore::open(dir.path().join("keys.db"))?, &keks)?;
/// let email = Column::new("profiles", "email", PiiKind::Email)?;
/// let jane = AccountId::new("jane")?;
///
/// let sealed = sealer.seal(&jane, &email, "jane", "jane@example.com")?;
/// assert_eq!(sealer.open(&jane, &email, "jane", &sealed)?.expose(), "jane@example.com");
/// // The index finds her however the address is typed.
/// assert_eq!(sealer.blind_index(&email, " Jane@Example.com")?, sealer.blind_index(&email, "jane@example.com")?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Sealer<S> {
    store: S,
    keks: Keks,
    store_id: [u8; 16],
    index_keys: RwLock<HashMap<String, Arc<Zeroizing<[u8; 32]>>>>,
    ledger: Option<Ledgered>,
}

/// The erasure ledger a sealer checks, and the entries it knows the key store applied:
/// every one up to `confirmed`, and its own erasures above that.
struct Ledgered {
    ledger: ErasureLedger,
    confirmed: AtomicU64,
    own: std::sync::Mutex<std::collections::BTreeSet<u64>>,
}

impl Ledgered {
    /// Whether the key store is known to have applied entry `seq`.
    fn known(&self, seq: u64) -> bool {
        seq <= self.confirmed.load(Ordering::Acquire)
            || self
                .own
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .contains(&seq)
    }

    /// Every entry up to `seq` is applied (checked, or replayed).
    fn confirm(&self, seq: u64) {
        self.confirmed.fetch_max(seq, Ordering::AcqRel);
        self.own
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|s| *s > seq);
    }
}

impl<S> core::fmt::Debug for Sealer<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Sealer")
            .field("kek", self.keks.current())
            .finish_non_exhaustive()
    }
}

/// A customer's unwrapped data keys, by version.
type Versions = Vec<(u32, Zeroizing<[u8; 32]>)>;

/// Customers' data keys, unwrapped for one batch (wiped on drop).
pub struct CustomerKeys {
    store_tag: [u8; 4],
    keys: HashMap<AccountId, Versions>,
    /// Customers of the batch who were erased.
    erased: HashSet<AccountId>,
}

impl core::fmt::Debug for CustomerKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "CustomerKeys({} customers, [REDACTED])", self.keys.len())
    }
}

impl CustomerKeys {
    /// Why the batch has no key for `customer`: erased, or never sealed for.
    fn missing(&self, customer: &AccountId) -> Error {
        if self.erased.contains(customer) {
            Error::Erased
        } else {
            Error::NoDataKey
        }
    }

    /// Seals `value` for `customer` in `column` of the row `record` (the row's key, as
    /// the application names it), under the customer's newest data key.
    ///
    /// # Errors
    /// [`Error::NoDataKey`] for a customer not in this batch, [`Error::TooLong`],
    /// [`Error::Rng`].
    pub fn seal<V: Plaintext + ?Sized>(
        &self,
        customer: &AccountId,
        column: &Column,
        record: &str,
        value: &V,
    ) -> Result<Sealed, Error> {
        let Some((version, key)) = self
            .keys
            .get(customer)
            .and_then(|v| v.iter().max_by_key(|(version, _)| *version))
        else {
            return Err(self.missing(customer));
        };
        let place = Place {
            column,
            record,
            customer,
            version: *version,
            store_tag: self.store_tag,
        };
        seal(key, &place, value.text())
    }

    /// Opens what [`CustomerKeys::seal`] made at the same place.
    ///
    /// # Errors
    /// [`Error::WrongKeyStore`], [`Error::NoDataKey`], [`Error::Tampered`] (changed, or
    /// moved from another row, column or customer).
    pub fn open(
        &self,
        customer: &AccountId,
        column: &Column,
        record: &str,
        sealed: &Sealed,
    ) -> Result<Pii<String>, Error> {
        if sealed.store_tag() != self.store_tag {
            return Err(Error::WrongKeyStore);
        }
        let version = sealed.key_version();
        let Some(key) = self
            .keys
            .get(customer)
            .and_then(|v| v.iter().find(|(v, _)| *v == version))
            .map(|(_, k)| k)
        else {
            return Err(self.missing(customer));
        };
        let place = Place {
            column,
            record,
            customer,
            version,
            store_tag: self.store_tag,
        };
        let mut text = open(key, &place, sealed)?;
        Ok(Pii::new(column.kind(), core::mem::take(&mut *text)))
    }

    /// How many customers' keys the batch holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether it holds none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// A customer's erasure tombstone: HMAC-SHA-256 of the id (exactly as given: ids are
/// case-sensitive) under the tombstone key, cut to 16 bytes.
fn tombstone(key: &[u8; 32], customer: &AccountId) -> [u8; 16] {
    let mac = crate::kernel::hmac_sha256(
        key,
        &[b"shopsafe/erased/v1\0", customer.as_str().as_bytes()],
    );
    let mut out = [0u8; 16];
    out.copy_from_slice(&mac[..16]);
    out
}

/// What a ledger replay did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Replay {
    /// Ledger entries after the key store's mark, applied again (the mark stops at the
    /// first entry not applied, so some after it may have been applied already).
    pub entries: u64,
    /// Data keys destroyed again.
    pub destroyed: u64,
}

/// Where a KEK rotation's rewrap stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rewrap {
    /// Keys this run moved under the current KEK.
    pub rewrapped: u64,
    /// Keys under an older KEK when the run started (data and index keys).
    pub to_do: u64,
    /// Keys that did not unwrap, passed over (they stay under their epoch).
    pub failed: u64,
}

impl<S: KeyStore> Sealer<S> {
    /// A sealer over `store`, with the KEKs of `keks` (read once, now).
    ///
    /// # Errors
    /// [`Error::NoKek`], the source's or the store's failure.
    pub fn new(store: S, keks: &dyn KeySource) -> Result<Self, Error> {
        let keks = Keks::load(keks)?;
        let store_id = store.store_id()?;
        Ok(Self {
            store,
            keks,
            store_id,
            index_keys: RwLock::new(HashMap::new()),
            ledger: None,
        })
    }

    /// The same sealer, recording every erasure in `ledger` (kept on the customer side)
    /// and checking the key store against it before every batch: while the key store
    /// lacks an erasure the ledger lists (it was restored from an older backup, or an
    /// erasure was cut off before it destroyed the keys), it opens nothing and seals
    /// nothing ([`Error::BehindLedger`]) until [`Sealer::replay`] has destroyed the
    /// listed keys again.
    ///
    /// Which entries count: every one a key store was seen to apply (the customer side
    /// records the key store's mark as it moves, so a restored key store cannot take it
    /// back), this sealer's own, and any older than the ledger's in-flight window
    /// ([`ErasureLedger::in_flight`], five minutes): a younger one is taken for an
    /// erasure under way on another server. Run [`Sealer::replay`] at start and every
    /// minute or so, so that one cut off by a crash is finished.
    ///
    /// # Errors
    /// None yet (the ledger is read at the first batch); kept for a check at start.
    pub fn with_ledger(mut self, ledger: ErasureLedger) -> Result<Self, Error> {
        self.ledger = Some(Ledgered {
            ledger,
            confirmed: AtomicU64::new(0),
            own: std::sync::Mutex::new(std::collections::BTreeSet::new()),
        });
        Ok(self)
    }

    /// The erasure ledger, when the sealer has one.
    #[must_use]
    pub fn ledger(&self) -> Option<&ErasureLedger> {
        self.ledger.as_ref().map(|l| &l.ledger)
    }

    /// Refuses while the key store lacks an erasure of the ledger (one a key store was
    /// seen to apply, one of this sealer's, or one past the in-flight window); moves the
    /// key store's mark up over the entries it has applied, and records on the customer
    /// side that it did. Two reads when nothing changed: the key store's mark and the
    /// ledger's head.
    fn check_ledger(&self) -> Result<(), Error> {
        let Some(l) = &self.ledger else {
            return Ok(());
        };
        // In this order (what was confirmed, the mark, then the head): each is at most the
        // next, however other servers append and apply meanwhile, unless something was
        // cut or restored.
        let confirmed = l.confirmed.load(Ordering::Acquire);
        let mark = self.store.ledger_applied()?;
        let head = l.ledger.head()?;
        let (mark_seq, mut head_seq) =
            (mark.map_or(0, |m| m.0), head.as_ref().map_or(0, |e| e.seq));
        if mark_seq > head_seq || head_seq < confirmed {
            // The ledger is shorter than what was applied or seen: the customer database
            // was restored from before the key store, or the ledger was cut.
            return Err(Error::LedgerCut {
                checkpoint: mark_seq.max(confirmed),
                entries: head_seq,
            });
        }
        if mark_seq == head_seq {
            if let (Some((seq, mac)), Some(h)) = (mark, &head)
                && !bool::from(mac.ct_eq(&h.mac))
            {
                return Err(Error::LedgerBroken { seq });
            }
            l.confirm(head_seq);
            return Ok(());
        }
        // An entry is applied when its digest is among the key store's tombstones (they
        // are written in the transaction that destroys the keys).
        // A record that lagged behind the mark (cut off between the two writes) counts as
        // the mark, and is caught up once the walk has checked the mark is the ledger's.
        let recorded = l.ledger.applied_seen()?;
        let seen = recorded.max(mark_seq);
        if head_seq < seen {
            // Read after the head: another server may have appended and applied since.
            head_seq = l.ledger.head()?.map_or(0, |e| e.seq);
        }
        if head_seq < seen {
            return Err(Error::LedgerCut {
                checkpoint: seen,
                entries: head_seq,
            });
        }
        let now = Timestamp::now().as_millis();
        let (mut missing, mut applied, mut prefix) = (0u64, None, true);
        let mut digests: Vec<[u8; 16]> = Vec::new();
        l.ledger.walk(mark, |page| {
            let asked: Vec<[u8; 16]> = page.iter().map(|e| e.customer).collect();
            let present: HashSet<[u8; 16]> = self.store.erased(&asked)?.into_iter().collect();
            for e in page {
                if present.contains(&e.customer) {
                    if prefix {
                        applied = Some((e.seq, e.mac));
                        digests.push(e.customer);
                    }
                } else {
                    prefix = false;
                    if e.seq <= seen || l.known(e.seq) || l.ledger.overdue(e, now) {
                        missing += 1;
                    }
                }
            }
            Ok(())
        })?;
        if recorded < mark_seq {
            l.ledger.saw_applied(mark_seq)?;
        }
        // The mark moves in one transaction with the check that those tombstones are
        // still there (not in a key store restored between the read and the write).
        if let Some((seq, mac)) = applied
            && self.store.advance_ledger(mark_seq, seq, &mac, &digests)?
        {
            l.ledger.saw_applied(seq)?;
            l.confirm(seq);
        }
        if missing > 0 {
            return Err(Error::BehindLedger { entries: missing });
        }
        Ok(())
    }

    /// The key store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The key store back (the unwrapped keys this sealer held are wiped).
    pub fn into_store(self) -> S {
        self.store
    }

    /// The current KEK epoch: the one new keys are wrapped under.
    #[must_use]
    pub fn current_kek(&self) -> &VaultKeyId {
        self.keks.current()
    }

    fn tag(&self) -> [u8; 4] {
        [
            self.store_id[0],
            self.store_id[1],
            self.store_id[2],
            self.store_id[3],
        ]
    }

    /// The data keys of `customers`, unwrapped, in one key-store read. A customer with
    /// no key yet is left out (opening their values answers [`Error::NoDataKey`]).
    ///
    /// # Errors
    /// [`Error::UnknownKek`], [`Error::UnwrapFailed`], a store failure.
    pub fn keys(&self, customers: &[AccountId]) -> Result<CustomerKeys, Error> {
        self.check_ledger()?;
        let mut out = CustomerKeys {
            store_tag: self.tag(),
            keys: HashMap::with_capacity(customers.len()),
            erased: HashSet::new(),
        };
        for wrapped in self.store.data_keys(customers)? {
            let key = self.unwrap_data_key(&wrapped)?;
            out.keys
                .entry(wrapped.customer)
                .or_default()
                .push((wrapped.version, key));
        }
        // Customers without a key: erased, or never sealed for (one more read, only
        // when some are missing).
        let missing: Vec<&AccountId> = customers
            .iter()
            .filter(|c| !out.keys.contains_key(*c))
            .collect();
        if !missing.is_empty() {
            // A tombstone is the ledger's digest of the id, or (erased without a ledger)
            // its digest under the tombstone key.
            let key = self.tombstone_key()?;
            let asks: Vec<([u8; 16], Option<[u8; 16]>)> = missing
                .iter()
                .map(|c| (tombstone(&key, c), self.ledger().map(|l| l.digest(c))))
                .collect();
            let all: Vec<[u8; 16]> = asks
                .iter()
                .flat_map(|(t, d)| core::iter::once(*t).chain(*d))
                .collect();
            let erased: HashSet<[u8; 16]> = self.store.erased(&all)?.into_iter().collect();
            for (c, (t, d)) in missing.into_iter().zip(&asks) {
                if erased.contains(t) || d.is_some_and(|d| erased.contains(&d)) {
                    out.erased.insert(c.clone());
                }
            }
        }
        Ok(out)
    }

    /// [`Sealer::keys`], making a data key for each customer who has none (one more
    /// transaction for all of those; two servers making one at once end up with the
    /// same key).
    ///
    /// # Errors
    /// As [`Sealer::keys`], and [`Error::Rng`].
    pub fn keys_for_sealing(&self, customers: &[AccountId]) -> Result<CustomerKeys, Error> {
        let mut out = self.keys(customers)?;
        // An erased account id gets no new key: what is sealed for it stays noise.
        if !out.erased.is_empty() {
            return Err(Error::Erased);
        }
        let mut fresh = Vec::new();
        let mut pending = HashSet::new();
        for customer in customers {
            if out.keys.contains_key(customer) || !pending.insert(customer) {
                continue;
            }
            let mut key = Zeroizing::new([0u8; 32]);
            fill_random(key.as_mut())?;
            let context = data_key_context(&self.store_id, customer.as_str(), 1);
            let (kek, wrapped) = self.keks.wrap(&context, &key)?;
            fresh.push(WrappedKey::new(
                customer.clone(),
                1,
                kek,
                wrapped,
                Timestamp::now(),
            ));
        }
        if fresh.is_empty() {
            return Ok(out);
        }
        // Refused if one of them was erased since the read above (an erasure racing
        // this sign-up): both digests of each id.
        let key = self.tombstone_key()?;
        let unless: Vec<[u8; 16]> = fresh
            .iter()
            .flat_map(|k| {
                let ledger = self.ledger().map(|l| {
                    let d = l.digest(&k.customer);
                    [d, l.pending_digest(&d)]
                });
                core::iter::once(tombstone(&key, &k.customer)).chain(ledger.into_iter().flatten())
            })
            .collect();
        // What was stored may be another server's key for the same customer: unwrap that.
        let stored = self
            .store
            .insert_data_keys(&fresh, &unless)
            .map_err(|e| self.retired(e))?;
        for stored in stored {
            let key = self.unwrap_data_key(&stored)?;
            out.keys
                .insert(stored.customer.clone(), vec![(stored.version, key)]);
        }
        Ok(out)
    }

    /// A refused write under a retired epoch, as the sealer's error.
    fn retired(&self, e: crate::persist::StoreError) -> Error {
        match e {
            crate::persist::StoreError::Retired {
                what: "erased customer",
            } => Error::Erased,
            crate::persist::StoreError::Retired { .. } => Error::KekRetired {
                kek: self.keks.current().clone(),
            },
            other => Error::Store(other),
        }
    }

    fn unwrap_data_key(&self, w: &WrappedKey) -> Result<Zeroizing<[u8; 32]>, Error> {
        let context = data_key_context(&self.store_id, w.customer.as_str(), w.version);
        self.keks.unwrap(&w.kek, &context, &w.wrapped)
    }

    /// Seals one value (reads, and if needed makes, the customer's key). To seal many,
    /// take [`Sealer::keys_for_sealing`] once and call [`CustomerKeys::seal`].
    ///
    /// # Errors
    /// As [`Sealer::keys_for_sealing`] and [`CustomerKeys::seal`].
    pub fn seal<V: Plaintext + ?Sized>(
        &self,
        customer: &AccountId,
        column: &Column,
        record: &str,
        value: &V,
    ) -> Result<Sealed, Error> {
        self.keys_for_sealing(core::slice::from_ref(customer))?
            .seal(customer, column, record, value)
    }

    /// Opens one value.
    ///
    /// # Errors
    /// As [`CustomerKeys::open`], a store failure.
    pub fn open(
        &self,
        customer: &AccountId,
        column: &Column,
        record: &str,
        sealed: &Sealed,
    ) -> Result<Pii<String>, Error> {
        if sealed.store_tag() != self.tag() {
            return Err(Error::WrongKeyStore);
        }
        self.keys(core::slice::from_ref(customer))?
            .open(customer, column, record, sealed)
    }

    /// Opens a batch of values of one column, with one key-store read for the batch:
    /// one outcome per row, in order. `rows` are (customer, record key, sealed value).
    ///
    /// # Errors
    /// The outer error is the key store's or a key's (nothing opened); a row that does
    /// not open has its own error in its place.
    pub fn open_all(
        &self,
        column: &Column,
        rows: &[(AccountId, String, Sealed)],
    ) -> Result<Vec<Result<Pii<String>, Error>>, Error> {
        let mut customers: Vec<AccountId> = rows.iter().map(|(c, _, _)| c.clone()).collect();
        customers.sort();
        customers.dedup();
        let keys = self.keys(&customers)?;
        Ok(rows
            .iter()
            .map(|(customer, record, sealed)| keys.open(customer, column, record, sealed))
            .collect())
    }

    /// The blind index of `value` in `column` (its index key is made on first use and
    /// kept in memory from then on).
    ///
    /// # Errors
    /// A store or key failure on the column's first use.
    pub fn blind_index<V: Plaintext + ?Sized>(
        &self,
        column: &Column,
        value: &V,
    ) -> Result<BlindIndex, Error> {
        let key = self.index_key(column)?;
        Ok(blind_index(&key, column, value.text()))
    }

    /// Whether two values of `column` are the same once normalized as its index is
    /// (constant time in their contents): how a lookup tells a match from a collision.
    #[must_use]
    pub fn same(column: &Column, a: &str, b: &str) -> bool {
        let (a, b) = (normalize(column, a), normalize(column, b));
        a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
    }

    fn index_key(&self, column: &Column) -> Result<Arc<Zeroizing<[u8; 32]>>, Error> {
        let name = column.qualified();
        if let Some(k) = self
            .index_keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&name)
        {
            return Ok(Arc::clone(k));
        }
        let context = index_key_context(&self.store_id, &name);
        let stored = match self
            .store
            .index_keys()?
            .into_iter()
            .find(|k| k.column == name)
        {
            Some(k) => k,
            None => {
                let mut key = Zeroizing::new([0u8; 32]);
                fill_random(key.as_mut())?;
                let (kek, wrapped) = self.keks.wrap(&context, &key)?;
                self.store
                    .insert_index_key(&WrappedIndexKey::new(name.clone(), kek, wrapped))
                    .map_err(|e| self.retired(e))?
            }
        };
        let key = Arc::new(self.keks.unwrap(&stored.kek, &context, &stored.wrapped)?);
        self.index_keys
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name, Arc::clone(&key));
        Ok(key)
    }

    /// After a KEK rotation: moves every data key and index key still wrapped under an
    /// older epoch under the current one, `batch` keys a transaction, and calls
    /// `progress` after each. No sealed value is touched. Resumable: a run cut off
    /// leaves every key wrapped under one epoch or the other, and the next run does the
    /// rest. A key that does not unwrap (an epoch the source lost, a changed row) is
    /// counted in [`Rewrap::failed`] and passed over, so one bad row does not stop the
    /// others; the old epoch then cannot be retired until it is dealt with.
    ///
    /// The rotation: add the new epoch to the key source; restart every process (each
    /// reads the source once, at start, and from then on wraps new keys under the new
    /// epoch, which a process still on the old source could not read); run this; then
    /// [`Sealer::retire_kek`] the old epoch.
    ///
    /// # Errors
    /// [`Error::BehindLedger`] (replay first), [`Error::KekRetired`] when this sealer's
    /// current epoch was retired, a store failure (the run stops there; what it did
    /// stays done).
    pub fn rewrap(&self, batch: usize, mut progress: impl FnMut(Rewrap)) -> Result<Rewrap, Error> {
        // Not over a key store behind its ledger: the keys of erased customers would be
        // carried under the new epoch (a replay would still destroy them, but the
        // rotation would no longer be what makes old backups harmless).
        self.check_ledger()?;
        let current = self.keks.current().clone();
        let to_do = self
            .store
            .count_by_kek()?
            .into_iter()
            .filter(|(k, _)| *k != current)
            .map(|(_, n)| n)
            .sum();
        let mut report = Rewrap {
            rewrapped: 0,
            to_do,
            failed: 0,
        };
        for key in self.store.index_keys()? {
            if key.kek == current {
                continue;
            }
            let context = index_key_context(&self.store_id, &key.column);
            let Ok(plain) = self.keks.unwrap(&key.kek, &context, &key.wrapped) else {
                report.failed += 1;
                continue;
            };
            let (kek, wrapped) = self.keks.wrap(&context, &plain)?;
            let new = WrappedIndexKey::new(key.column.clone(), kek, wrapped);
            if self
                .store
                .rewrap_index_key(&key.kek, &new)
                .map_err(|e| self.retired(e))?
            {
                report.rewrapped += 1;
            }
        }
        let mut after: Option<(AccountId, u32)> = None;
        loop {
            let rows = self.store.keys_not_under(
                &current,
                after.as_ref().map(|(c, v)| (c, *v)),
                batch.max(1),
            )?;
            let Some(last) = rows.last() else {
                break;
            };
            after = Some((last.customer.clone(), last.version));
            let mut changes = Vec::with_capacity(rows.len());
            for row in rows {
                let Ok(plain) = self.unwrap_data_key(&row) else {
                    report.failed += 1;
                    continue;
                };
                let context = data_key_context(&self.store_id, row.customer.as_str(), row.version);
                let (kek, wrapped) = self.keks.wrap(&context, &plain)?;
                let old = row.kek.clone();
                changes.push((
                    old,
                    WrappedKey {
                        kek,
                        wrapped,
                        ..row
                    },
                ));
            }
            report.rewrapped += self
                .store
                .rewrap_data_keys(&changes)
                .map_err(|e| self.retired(e))?;
            progress(report);
        }
        Ok(report)
    }

    /// Destroys the KEK of epoch `kek` in `source`, once no key is wrapped under it
    /// (after [`Sealer::rewrap`]): a key-store backup from before then no longer opens
    /// with the keys that remain.
    ///
    /// The key store first retires the epoch ([`KeyStore::retire_kek`]), counting and
    /// marking in one transaction, and refuses every later write under it: a process
    /// started before the rotation, which still wraps new keys under the old epoch,
    /// gets [`Error::KekRetired`] (restart it) instead of a key that would be lost.
    ///
    /// # Errors
    /// [`Error::KekInUse`] while keys remain under it; the source's refusal (the current
    /// key, an unknown id, a read-only source).
    pub fn retire_kek(&self, source: &dyn KeySource, kek: &VaultKeyId) -> Result<(), Error> {
        if kek == self.keks.current() {
            return Err(Error::Keys(crate::card::Error::ShredCurrentKey));
        }
        // Counted and marked in one transaction of the key store's: from here on no
        // process can wrap a key under it, so nothing can be lost with it.
        let keys = self.store.retire_kek(kek)?;
        if keys > 0 {
            return Err(Error::KekInUse {
                kek: kek.clone(),
                keys,
            });
        }
        source.destroy(kek)?;
        Ok(())
    }

    /// The key of the erasure tombstones: a keyed digest of each erased id is all the key
    /// store keeps of it.
    fn tombstone_key(&self) -> Result<Arc<Zeroizing<[u8; 32]>>, Error> {
        let column = Column::new("shopsafe", "erased", crate::minimize::PiiKind::FreeText)?;
        self.index_key(&column)
    }

    /// Erases customers by destroying their data keys (every version), `batch` a
    /// transaction, calling `progress` with how many are done after each: from then on
    /// nothing sealed for them opens, here or in any copy of the customer database, and
    /// opening answers [`Error::Erased`]. The key store keeps only a keyed digest of each
    /// id (to answer `Erased`, and to give the id no new key). Resumable and idempotent:
    /// a list cut off is run again whole. Returns how many keys were destroyed.
    ///
    /// With a ledger ([`Sealer::with_ledger`]), each customer's entry (with `erasure`:
    /// what the application erased and retained) is appended first, in the customer
    /// database, so that an erasure cut off between the two, or undone by a restore of
    /// the key store, is caught and replayed.
    ///
    /// # Security
    /// A backup of the key store from before the erasure, with the live KEK, still
    /// opens the customer: the erasure is final once the KEK epoch of that backup is
    /// rotated out and destroyed ([`Sealer::rewrap`], [`Sealer::retire_kek`]), so the
    /// retention of key-store backups is the erasure's real delay. Blind indexes of the
    /// customer's values in old backups of the customer database still match a guess
    /// made with the index key.
    ///
    /// # Errors
    /// A store failure (what was erased before it stays erased).
    pub fn erase(
        &self,
        customers: &[AccountId],
        erasure: &Erasure,
        batch: usize,
        mut progress: impl FnMut(u64),
    ) -> Result<u64, Error> {
        // Both digests of each id are kept: the tombstone key's (so that a sealer without
        // the ledger answers `Erased` too) and the ledger's (what a replay writes).
        let key = self.tombstone_key()?;
        let (mut destroyed, mut done) = (0u64, 0u64);
        for chunk in customers.chunks(batch.max(1)) {
            let mut tombstones: Vec<[u8; 16]> = chunk.iter().map(|c| tombstone(&key, c)).collect();
            let mut seqs = Vec::new();
            if let Some(l) = &self.ledger {
                let entries = l.ledger.record(chunk, erasure)?;
                seqs.extend(entries.iter().map(|e| e.seq));
                tombstones.extend(entries.iter().map(|e| e.customer));
            }
            destroyed += self.store.erase_customers(chunk, &tombstones)?;
            // Known applied only once done: an erasure that failed here is the replay's.
            if let Some(l) = &self.ledger {
                l.own
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .extend(seqs);
            }
            done += chunk.len() as u64;
            progress(done);
        }
        crate::events::erased(done, destroyed);
        // Moves the key store's mark up; another server's erasure half done is its own.
        match self.check_ledger() {
            Ok(()) | Err(Error::BehindLedger { .. }) => Ok(destroyed),
            Err(e) => Err(e),
        }
    }

    /// Brings a key store that is behind the erasure ledger up to date: every entry it
    /// has not applied is applied again (the tombstones of every listed id written
    /// first, so that no key can be made for one meanwhile, then the keys of each listed
    /// customer still in the store destroyed), then the store is marked as caught up. It
    /// reads the ledger from the store's mark on, checking each entry's MAC, and scans
    /// the store's customers `batch` at a time, calling `progress` with how many it has
    /// looked at. Safe to run at any time, on several servers at once, and again.
    ///
    /// # Errors
    /// [`Error::LedgerCut`] when the key store's mark is past the ledger's end (the
    /// customer database restored from before the key store:
    /// [`Sealer::accept_ledger_cut`]); [`Error::LedgerBroken`] when the ledger does not
    /// check from the store's mark; a store failure.
    pub fn replay(&self, batch: usize, mut progress: impl FnMut(u64)) -> Result<Replay, Error> {
        let mut report = Replay::default();
        let Some(l) = &self.ledger else {
            return Ok(report);
        };
        let mark = self.store.ledger_applied()?;
        let head_seq = l.ledger.head()?.map_or(0, |e| e.seq);
        let mark_seq = mark.map_or(0, |m| m.0);
        if mark_seq > head_seq {
            return Err(Error::LedgerCut {
                checkpoint: mark_seq,
                entries: head_seq,
            });
        }
        let mut pending: HashSet<[u8; 16]> = HashSet::new();
        let end = l.ledger.walk(mark, |page| {
            pending.extend(page.iter().map(|e| e.customer));
            report.entries += page.len() as u64;
            Ok(())
        })?;
        let Some((seq, mac)) = end.filter(|_| report.entries > 0) else {
            return Ok(report);
        };
        // A "being erased" mark of every listed id first (the ids this store never had
        // a key for too), in order (two servers replaying at once take the same rows in
        // the same order): from here on no key can be made for them. Not the ledger's
        // digest itself, which says "applied": a replay cut off during its scan must
        // leave the entries unapplied.
        let mut all: Vec<[u8; 16]> = pending.iter().copied().collect();
        all.sort_unstable();
        let mut marks: Vec<[u8; 16]> = all.iter().map(|d| l.ledger.pending_digest(d)).collect();
        marks.sort_unstable();
        for chunk in marks.chunks(10_000) {
            self.store.erase_customers(&[], chunk)?;
        }
        let key = self.tombstone_key()?;
        let (mut after, mut scanned): (Option<AccountId>, u64) = (None, 0);
        loop {
            let page = self
                .store
                .data_key_customers(after.as_ref(), batch.max(1))?;
            let Some(last) = page.last() else {
                break;
            };
            after = Some(last.clone());
            scanned += page.len() as u64;
            let (hits, digests): (Vec<AccountId>, Vec<[u8; 16]>) = page
                .into_iter()
                .map(|c| {
                    let d = l.ledger.digest(&c);
                    (c, d)
                })
                .filter(|(_, d)| pending.contains(d))
                .unzip();
            if !hits.is_empty() {
                let mut tombstones: Vec<[u8; 16]> = hits
                    .iter()
                    .map(|c| tombstone(&key, c))
                    .chain(digests)
                    .collect();
                tombstones.sort_unstable();
                report.destroyed += self.store.erase_customers(&hits, &tombstones)?;
            }
            progress(scanned);
        }
        // Now every listed id is applied: the ledger's digests, and the mark.
        for chunk in all.chunks(10_000) {
            self.store.erase_customers(&[], chunk)?;
        }
        if self.store.advance_ledger(mark_seq, seq, &mac, &all)? {
            l.ledger.saw_applied(seq)?;
            l.confirm(seq);
        }
        Ok(report)
    }

    /// After the customer database was restored from a backup older than the key store
    /// (so its ledger ends before the key store's mark: [`Error::LedgerCut`]), accepts
    /// the ledger as it is now: the ledger is checked whole, and the key store's mark set
    /// to its end. The erasures after the ledger's end stay done in the key store (their
    /// keys are gone), but their entries are lost: record them again from your own
    /// records of the requests. Returns the ledger's length.
    ///
    /// # Errors
    /// [`Error::LedgerBroken`] when the ledger does not check, a store failure.
    pub fn accept_ledger_cut(&self) -> Result<u64, Error> {
        let Some(l) = &self.ledger else {
            return Ok(0);
        };
        let verified = l.ledger.verify(&[])?;
        let head = l.ledger.head()?;
        self.store
            .reset_ledger_mark(head.as_ref().map(|e| (e.seq, e.mac)))?;
        l.ledger.reset_applied(verified.entries)?;
        l.confirmed.store(verified.entries, Ordering::Release);
        l.own.lock().unwrap_or_else(PoisonError::into_inner).clear();
        Ok(verified.entries)
    }

    /// The KEK epochs this sealer holds, oldest first.
    pub fn kek_epochs(&self) -> impl Iterator<Item = &VaultKeyId> {
        self.keks.ids()
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;
    use crate::card::{FileKeySource, KeySource};
    use crate::minimize::PiiKind;
    use crate::store::sqlite::SqliteKeyStore;

    fn epoch(s: &str) -> VaultKeyId {
        VaultKeyId::new(s).expect("id")
    }

    #[test]
    fn every_way_a_value_fails_to_open_has_its_own_error() {
        let dir = tempfile::tempdir().expect("dir");
        let keks =
            FileKeySource::open_or_create(dir.path().join("c.keys"), &epoch("e1")).expect("keks");
        let store = SqliteKeyStore::open(dir.path().join("keys.db")).expect("store");
        let sealer = Sealer::new(store, &keks).expect("sealer");
        let email = Column::new("profiles", "email", PiiKind::Email).expect("column");
        let (jane, omar, ivan) = (
            AccountId::new("jane").expect("id"),
            AccountId::new("omar").expect("id"),
            AccountId::new("ivan").expect("id"),
        );
        let sealed = sealer
            .seal(&jane, &email, "1", "jane@example.com")
            .expect("seal");
        sealer
            .seal(&omar, &email, "2", "omar@example.com")
            .expect("seal");
        // Moved to a customer who has a key: tampered. To one who has none: no key.
        assert!(matches!(
            sealer.open(&omar, &email, "1", &sealed),
            Err(Error::Tampered)
        ));
        assert!(matches!(
            sealer.open(&ivan, &email, "1", &sealed),
            Err(Error::NoDataKey)
        ));
        // A key store made afresh (a lost file, recreated): not noise, a typed refusal.
        let fresh = SqliteKeyStore::open(dir.path().join("other.db")).expect("store");
        let other = Sealer::new(fresh, &keks).expect("sealer");
        assert!(matches!(
            other.open(&jane, &email, "1", &sealed),
            Err(Error::WrongKeyStore)
        ));
        // The right store with a KEK source that lacks the epoch, or holds another key
        // under its name.
        let store = sealer.into_store();
        let wrong_epoch =
            FileKeySource::open_or_create(dir.path().join("x.keys"), &epoch("e9")).expect("keks");
        let sealer = Sealer::new(store, &wrong_epoch).expect("sealer");
        assert!(matches!(
            sealer.open(&jane, &email, "1", &sealed),
            Err(Error::UnknownKek { kek }) if kek == epoch("e1")
        ));
        let impostor =
            FileKeySource::open_or_create(dir.path().join("y.keys"), &epoch("e1")).expect("keks");
        let sealer = Sealer::new(sealer.into_store(), &impostor).expect("sealer");
        assert!(matches!(
            sealer.open(&jane, &email, "1", &sealed),
            Err(Error::UnwrapFailed { kek }) if kek == epoch("e1")
        ));
        // Back with the right KEK, it opens; nothing was lost on the way.
        let sealer = Sealer::new(sealer.into_store(), &keks).expect("sealer");
        let opened = sealer.open(&jane, &email, "1", &sealed).expect("open");
        assert_eq!(opened.expose(), "jane@example.com");
        assert_eq!(opened.kind(), PiiKind::Email);
        assert!(!format!("{sealer:?} {sealed:?} {opened:?}").contains("jane@"));
    }

    #[test]
    fn a_rewrap_passes_over_a_key_it_cannot_unwrap_and_the_epoch_stays() {
        use crate::card::VaultKey;
        let dir = tempfile::tempdir().expect("dir");
        let keks =
            FileKeySource::open_or_create(dir.path().join("c.keys"), &epoch("e1")).expect("keks");
        let store = SqliteKeyStore::open(dir.path().join("keys.db")).expect("store");
        let sealer = Sealer::new(store, &keks).expect("sealer");
        let name = Column::new("profiles", "name", PiiKind::PersonName).expect("column");
        for c in ["a", "b", "c"] {
            let id = AccountId::new(c).expect("id");
            sealer.seal(&id, &name, c, "Jane Doe").expect("seal");
        }
        // A row under e1 that does not unwrap (changed bytes).
        let bad = WrappedKey::new(
            AccountId::new("bad").expect("id"),
            1,
            epoch("e1"),
            vec![0; 72],
            Timestamp::from_millis(1),
        );
        let store = sealer.into_store();
        store.insert_data_keys(&[bad], &[]).expect("plant");
        keks.add(&epoch("e2"), &VaultKey::generate().expect("key"))
            .expect("add");
        let sealer = Sealer::new(store, &keks).expect("sealer");
        let report = sealer.rewrap(2, |_| {}).expect("rewrap");
        assert_eq!(
            (report.to_do, report.rewrapped, report.failed),
            (5, 4, 1),
            "the good keys (and the tombstone key) moved past the bad one"
        );
        assert!(matches!(
            sealer.retire_kek(&keks, &epoch("e1")),
            Err(Error::KekInUse { keys: 1, .. })
        ));
    }

    #[test]
    fn a_batch_reads_the_key_store_once_and_answers_per_row() {
        let dir = tempfile::tempdir().expect("dir");
        let keks =
            FileKeySource::open_or_create(dir.path().join("c.keys"), &epoch("e1")).expect("keks");
        let store = SqliteKeyStore::open(dir.path().join("keys.db")).expect("store");
        let sealer = Sealer::new(store, &keks).expect("sealer");
        let addr = Column::new("profiles", "address", PiiKind::PostalAddress).expect("column");
        let customers: Vec<AccountId> = (0..10)
            .map(|i| AccountId::new(format!("c{i}")).expect("id"))
            .collect();
        let keys = sealer.keys_for_sealing(&customers).expect("keys");
        assert_eq!(keys.len(), 10);
        let mut rows: Vec<(AccountId, String, Sealed)> = customers
            .iter()
            .map(|c| {
                let s = keys
                    .seal(c, &addr, c.as_str(), &format!("{c:?} Main St"))
                    .expect("seal");
                (c.clone(), c.as_str().to_owned(), s)
            })
            .collect();
        drop(keys);
        // One row moved to another record.
        rows[3].1 = "elsewhere".into();
        let out = sealer.open_all(&addr, &rows).expect("batch");
        assert_eq!(out.len(), 10);
        for (i, o) in out.iter().enumerate() {
            assert_eq!(o.is_ok(), i != 3, "{i}");
        }
        assert!(matches!(out[3], Err(Error::Tampered)));
    }
}
