//! The vault: tokenize, detokenize with a grant and an audit record, rotate, rewrap, shred.

use core::fmt;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::Error;
use super::grant::{GrantPolicy, Purpose, RevealRate};
use super::keys::{KeyPair, KeySource, Keyring, VaultKey, VaultKeyId};
use super::on_file::{CardOnFile, CardToken, Fingerprint};
use super::pan::{Expiry, Pan};
use super::vault_store::{FindOrInsert, HeldCard, SealedCard, VaultStore};
use crate::audit::{AuditOutcome, AuditRecord, AuditSink};
use crate::kernel::Timestamp;
use crate::kernel::hmac_sha256;
use crate::secret::fill_random;

const AAD_LABEL: &[u8] = b"shopsafe/vault/v1";

/// The capability to reveal card numbers: made only by [`Vault::grant`], for one purpose
/// and one caller, and valid only with the vault that made it.
pub struct DetokenizeGrant {
    vault: [u8; 16],
    purpose: Purpose,
    caller: String,
}

impl DetokenizeGrant {
    /// Its purpose.
    #[must_use]
    pub fn purpose(&self) -> &Purpose {
        &self.purpose
    }

    /// Who it was granted to.
    #[must_use]
    pub fn caller(&self) -> &str {
        &self.caller
    }
}

impl fmt::Debug for DetokenizeGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DetokenizeGrant")
            .field("purpose", &self.purpose)
            .field("caller", &self.caller)
            .finish()
    }
}

/// What a rewrap did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RewrapReport {
    /// Cards re-sealed (and re-fingerprinted) under the current key.
    pub rewrapped: u64,
    /// Cards that could not be opened (sealed under a key no longer in the keyring).
    pub unreadable: u64,
}

/// The card vault: seals card numbers under the current key in its own store, hands out
/// [`CardOnFile`] values for the customer database, and reveals a number only with a
/// [`DetokenizeGrant`] and after writing an audit record.
///
/// # Security
/// The vault belongs in the payment service, with its own database file (or database and
/// role) and its own keys. The customer side holds `CardOnFile` values only; nothing in
/// them turns back into a number without this vault *and* a grant. The vault does not
/// store CVVs (PCI DSS 3.3.1: never after authorization) and has no field for one.
pub struct Vault<S> {
    store: S,
    audit: Box<dyn AuditSink>,
    source: Box<dyn KeySource>,
    keys: RwLock<Keyring>,
    id: [u8; 16],
    policy: GrantPolicy,
    reveals: RevealRate,
    /// The store's key generation when this vault's keyring was last loaded.
    generation: AtomicU64,
}

impl<S> fmt::Debug for Vault<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault").finish_non_exhaustive()
    }
}

impl<S: VaultStore> Vault<S> {
    /// A vault over `store`, with keys from `source` and the audit trail in `audit`.
    ///
    /// # Errors
    /// [`Error::NoKeys`], the source's own errors, [`Error::Store`] (reading the key
    /// generation).
    pub fn new(
        store: S,
        source: Box<dyn KeySource>,
        audit: Box<dyn AuditSink>,
    ) -> Result<Self, Error> {
        let generation = AtomicU64::new(store.key_generation()?);
        let keys = RwLock::new(Keyring::new(source.keys()?)?);
        let mut id = [0u8; 16];
        fill_random(&mut id)?;
        Ok(Self {
            store,
            audit,
            source,
            keys,
            id,
            policy: GrantPolicy::permissive(),
            reveals: RevealRate::default(),
            generation,
        })
    }

    /// Fixes the grant policy (the default, [`GrantPolicy::permissive`], lets any
    /// caller reveal for any purpose).
    #[must_use]
    pub fn with_grant_policy(mut self, policy: GrantPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The current key's id.
    #[must_use]
    pub fn current_key(&self) -> VaultKeyId {
        self.ring().current().id.clone()
    }

    fn ring(&self) -> std::sync::RwLockReadGuard<'_, Keyring> {
        self.keys.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The keyring, reloaded from the key source first if a rotation or a shred on any
    /// server sharing the store moved the key generation since this vault last looked:
    /// one small read per call, so a key rotated elsewhere is used and a key shredded
    /// elsewhere is refused from the next call on.
    fn fresh_ring(&self) -> Result<std::sync::RwLockReadGuard<'_, Keyring>, Error> {
        let now = self.store.key_generation()?;
        if now != self.generation.load(Ordering::Acquire) {
            let mut ring = self.keys.write().unwrap_or_else(PoisonError::into_inner);
            *ring = Keyring::new(self.source.keys()?)?;
            self.generation.store(now, Ordering::Release);
        }
        Ok(self.ring())
    }

    /// Bumps the shared key generation after this vault changed its keys; reloads them
    /// too if another server changed them in between.
    fn publish_key_change(&self, ring: &mut Keyring) -> Result<(), Error> {
        let before = self.generation.load(Ordering::Acquire);
        let now = self.store.bump_key_generation()?;
        if now != before.wrapping_add(1) && now != 0 {
            *ring = Keyring::new(self.source.keys()?)?;
        }
        self.generation.store(now, Ordering::Release);
        Ok(())
    }

    /// Tokenizes a card: the same card (by fingerprint, under any key still held) gets its
    /// existing token back; a new one is sealed under the current key.
    ///
    /// # Errors
    /// [`Error::Store`], [`Error::Rng`], the key source's errors (when a rotation or a shred
    /// elsewhere makes the vault reload its keys).
    ///
    /// # Examples
    /// See `examples/card_vault.rs` and `tests/card_vault.rs`.
    pub fn tokenize(&self, pan: &Pan, expiry: Expiry) -> Result<CardOnFile, Error> {
        let ring = self.fresh_ring()?;
        let fingerprints = fingerprints(&ring, pan);
        let known = |held: HeldCard| card_on_file(held.token, pan, expiry, held.fingerprint);
        // A card the vault holds (every checkout after the first): a lookup, no seal, no
        // token, no transaction.
        if let Some(held) = self.store.find_card(&fingerprints)? {
            return Ok(known(held));
        }
        let (sealed, card) = self.seal_new(&ring, pan, expiry, Some(fingerprints[0].mac))?;
        match self.store.find_or_insert(&fingerprints, &sealed)? {
            FindOrInsert::Inserted => Ok(card),
            // Stored by another checkout between the lookup and the insert: its token,
            // with the fingerprint it matched.
            FindOrInsert::Found(held) => Ok(known(held)),
        }
    }

    /// Tokenizes with a fresh token even for a card already in the vault (a second card
    /// on file the customer wants kept apart).
    ///
    /// # Errors
    /// [`Error::Store`], [`Error::Rng`], the key source's errors (when a rotation or a shred
    /// elsewhere makes the vault reload its keys).
    pub fn tokenize_fresh(&self, pan: &Pan, expiry: Expiry) -> Result<CardOnFile, Error> {
        let (sealed, card) = self.seal_new(&*self.fresh_ring()?, pan, expiry, None)?;
        self.store.insert_sealed(std::slice::from_ref(&sealed))?;
        Ok(card)
    }

    /// Tokenizes many new cards in one transaction (an import): each gets a fresh token,
    /// no fingerprint lookup.
    ///
    /// # Errors
    /// [`Error::Store`] (then none is stored), [`Error::Rng`].
    pub fn tokenize_batch<'p>(
        &self,
        cards: impl IntoIterator<Item = (&'p Pan, Expiry)>,
    ) -> Result<Vec<CardOnFile>, Error> {
        let ring = self.fresh_ring()?;
        let (sealed, out): (Vec<_>, Vec<_>) = cards
            .into_iter()
            .map(|(pan, expiry)| self.seal_new(&ring, pan, expiry, None))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .unzip();
        self.store.insert_sealed(&sealed)?;
        Ok(out)
    }

    /// Tokenizes many cards as [`tokenize`](Self::tokenize) does, for an import whose
    /// cards repeat (one card on several accounts): a card the vault holds gets its
    /// token back, a card repeated within the batch gets one token, and the new ones are
    /// stored in one transaction. The result is in input order, one per card.
    ///
    /// Costs one fingerprint per key and one indexed read per distinct card, then one
    /// seal per new card; [`tokenize_batch`](Self::tokenize_batch) skips the reads when
    /// the cards are known to be new.
    ///
    /// # Security
    /// The lookups and the insert are not one transaction: a checkout that stores one of
    /// the batch's new cards in between leaves that card with two tokens. Both open to
    /// the same number and later lookups find one of them; nothing is lost or revealed.
    ///
    /// # Errors
    /// [`Error::Store`] (then none of the new cards is stored), [`Error::Rng`].
    pub fn tokenize_batch_dedupe<'p>(
        &self,
        cards: impl IntoIterator<Item = (&'p Pan, Expiry)>,
    ) -> Result<Vec<CardOnFile>, Error> {
        let ring = self.fresh_ring()?;
        let mut out: Vec<CardOnFile> = Vec::new();
        let mut sealed = Vec::new();
        // The current key's MAC of each distinct card so far, to its first place in `out`.
        let mut seen: HashMap<[u8; 32], usize> = HashMap::new();
        for (pan, expiry) in cards {
            let fingerprints = fingerprints(&ring, pan);
            let mac = fingerprints[0].mac;
            let card = if let Some(&first) = seen.get(&mac) {
                let first = &out[first];
                card_on_file(first.token.clone(), pan, expiry, first.fingerprint.clone())
            } else {
                seen.insert(mac, out.len());
                match self.store.find_card(&fingerprints)? {
                    Some(held) => card_on_file(held.token, pan, expiry, held.fingerprint),
                    None => {
                        let (row, card) = self.seal_new(&ring, pan, expiry, Some(mac))?;
                        sealed.push(row);
                        card
                    }
                }
            };
            out.push(card);
        }
        if !sealed.is_empty() {
            self.store.insert_sealed(&sealed)?;
        }
        Ok(out)
    }

    /// Seals `pan` under the current key with a fresh token; `mac` is its fingerprint
    /// under that key when the caller has it already.
    fn seal_new(
        &self,
        ring: &Keyring,
        pan: &Pan,
        expiry: Expiry,
        mac: Option<[u8; 32]>,
    ) -> Result<(SealedCard, CardOnFile), Error> {
        let key = ring.current();
        let token = CardToken::generate()?;
        let (nonce, ciphertext) = seal(key, &token, pan.digits())?;
        let fingerprint = Fingerprint {
            key_id: key.id.clone(),
            mac: mac.unwrap_or_else(|| fingerprint_mac(key, pan)),
        };
        let card = card_on_file(token.clone(), pan, expiry, fingerprint.clone());
        let sealed = SealedCard::new(
            token,
            key.id.clone(),
            nonce,
            ciphertext,
            fingerprint,
            Timestamp::now(),
        );
        Ok((sealed, card))
    }

    /// The fingerprint of a card under the current key (to look for it in the customer
    /// database without tokenizing it).
    #[must_use]
    pub fn fingerprint(&self, pan: &Pan) -> Fingerprint {
        let ring = self.ring();
        let key = ring.current();
        Fingerprint {
            key_id: key.id.clone(),
            mac: fingerprint_mac(key, pan),
        }
    }

    /// A capability to reveal card numbers for `purpose`, recorded as `caller`. Only the
    /// vault's owner can make one.
    ///
    /// # Security
    /// `caller` and `purpose` are taken on trust: the vault checks nothing about who is
    /// asking, it only writes what it is told into the audit record. Whoever holds a
    /// `&Vault` can grant itself any purpose under any name, so the audit trail is only as
    /// honest as the code that calls this. Keep the `Vault` inside the payment service,
    /// make grants in one place that authenticates the caller (service identity, operator
    /// login) and passes that identity here, and never hand a `&Vault` or a grant to code
    /// that takes requests from customers. The vault's [`GrantPolicy`]
    /// ([`with_grant_policy`](Self::with_grant_policy)) then decides which of those names
    /// may reveal numbers for which purpose, and how many a minute.
    #[must_use]
    pub fn grant(&self, purpose: Purpose, caller: &str) -> DetokenizeGrant {
        DetokenizeGrant {
            vault: self.id,
            purpose,
            caller: caller.to_owned(),
        }
    }

    /// Reveals a card number: checks the grant against this vault and its
    /// [`GrantPolicy`], writes the audit record, then opens the sealed value. The
    /// returned [`Pan`] is wiped when dropped. Every attempt leaves a record: refused
    /// ones (before any lookup) and failed ones too, with their
    /// [`AuditOutcome`](crate::audit::AuditOutcome).
    ///
    /// # Errors
    /// Refused: [`Error::ForeignGrant`], [`Error::GrantNotAllowed`],
    /// [`Error::RevealRateExceeded`]. Failed: [`Error::UnknownToken`],
    /// [`Error::KeyShredded`] (its key is gone), [`Error::Tampered`] (the row was edited,
    /// swapped or damaged). [`Error::Audit`] (or [`Error::Store`] when the storage under
    /// the trail failed): an audit record could not be written (no number is returned).
    pub fn detokenize(&self, token: &CardToken, grant: &DetokenizeGrant) -> Result<Pan, Error> {
        let attempt = |outcome| {
            AuditRecord::new(
                token.as_str().to_owned(),
                grant.purpose.as_str().to_owned(),
                grant.caller.clone(),
                Timestamp::now(),
            )
            .with_outcome(outcome)
        };
        // Refusals and failures are recorded too; if that record cannot be written, the
        // trail's error is the answer (nothing is revealed either way).
        let refuse = |why: Error| -> Result<Pan, Error> {
            self.audit.record(&attempt(AuditOutcome::Refused))?;
            Err(why)
        };
        if !bool::from(grant.vault.ct_eq(&self.id)) {
            return refuse(Error::ForeignGrant);
        }
        if !self.policy.admits(&grant.caller, &grant.purpose) {
            return refuse(Error::GrantNotAllowed);
        }
        if !self
            .reveals
            .take(self.policy.per_minute(), std::time::Instant::now())
        {
            return refuse(Error::RevealRateExceeded);
        }
        let Some(sealed) = self.store.load_sealed(token)? else {
            self.audit.record(&attempt(AuditOutcome::Failed))?;
            return Err(Error::UnknownToken);
        };
        // Written before the number exists in the clear.
        self.audit.record(&attempt(AuditOutcome::Revealed))?;
        crate::events::card_revealed(&grant.caller, grant.purpose.as_str());
        self.fresh_ring()
            .and_then(|ring| self.open(&ring, &sealed))
            .or_else(|e| {
                self.audit.record(&attempt(AuditOutcome::Failed))?;
                Err(e)
            })
    }

    fn open(&self, ring: &Keyring, sealed: &SealedCard) -> Result<Pan, Error> {
        let key = ring.get(&sealed.key_id).ok_or_else(|| Error::KeyShredded {
            id: sealed.key_id.clone(),
        })?;
        let digits = open(key, &sealed.token, &sealed.nonce, &sealed.ciphertext)?;
        // A number that opened but does not parse was sealed by no vault of ours.
        Pan::from_digits(digits).map_err(|_| Error::Tampered)
    }

    /// Adds a fresh random key under `id` (through the key source) and makes it current.
    /// New cards are sealed under it; run [`rewrap`](Self::rewrap) to move the old ones.
    ///
    /// # Errors
    /// [`Error::DuplicateKeyId`], the source's errors, [`Error::Rng`], [`Error::Store`] (the
    /// shared key generation could not be read or bumped; the key is in the source).
    pub fn rotate(&self, id: VaultKeyId) -> Result<(), Error> {
        let key = VaultKey::generate()?;
        drop(self.fresh_ring()?);
        let mut ring = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        if ring.get(&id).is_some() {
            return Err(Error::DuplicateKeyId { id });
        }
        self.source.add(&id, &key)?;
        ring.push(id, &key)?;
        self.publish_key_change(&mut ring)
    }

    /// Re-seals and re-fingerprints, under the current key, every card sealed under
    /// another, `batch` cards per transaction. The numbers never leave this function.
    /// Resumable: stopped at any point, a second call carries on (each batch commits).
    ///
    /// The keyring is read-locked for one batch at a time, never for the whole run, so a
    /// `rotate` or `shred` waits at most one batch and `tokenize`/`detokenize` keep
    /// answering. A rotation that lands mid-run becomes the target from the next batch
    /// on, and the run goes over the vault again from the start, so when it returns every
    /// readable card is under the key that was current at its end.
    ///
    /// # Errors
    /// [`Error::Store`], [`Error::Rng`], [`Error::Tampered`] for a row that fails to open.
    pub fn rewrap(&self, batch: usize) -> Result<RewrapReport, Error> {
        let mut report = RewrapReport::default();
        let mut after: Option<CardToken> = None;
        let mut target: Option<VaultKeyId> = None;
        loop {
            let ring = self.fresh_ring()?;
            let current = ring.current();
            if target.as_ref() != Some(&current.id) {
                // First batch, or the key was rotated since the last one: start over.
                target = Some(current.id.clone());
                after = None;
            }
            let rows = self
                .store
                .sealed_not_under(&current.id, after.as_ref(), batch.max(1))?;
            let Some(last) = rows.last() else {
                return Ok(report);
            };
            after = Some(last.token.clone());
            let mut resealed = Vec::with_capacity(rows.len());
            for row in rows {
                let pan = match self.open(&ring, &row) {
                    Ok(pan) => pan,
                    Err(Error::KeyShredded { .. }) => {
                        report.unreadable += 1;
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                let (nonce, ciphertext) = seal(current, &row.token, pan.digits())?;
                let fingerprint = Fingerprint {
                    key_id: current.id.clone(),
                    mac: fingerprint_mac(current, &pan),
                };
                resealed.push(SealedCard::new(
                    row.token,
                    current.id.clone(),
                    nonce,
                    ciphertext,
                    fingerprint,
                    row.created_at,
                ));
            }
            self.store.replace_sealed(&resealed)?;
            report.rewrapped += resealed.len() as u64;
            // The lock goes here, between batches: a waiting rotate or shred gets in.
            drop(ring);
        }
    }

    /// Destroys a key (in the key source and in memory): every card still sealed under it
    /// becomes unreadable for good. Returns how many. The current key cannot be shredded.
    ///
    /// # Errors
    /// [`Error::ShredCurrentKey`], [`Error::UnknownKeyId`], the source's errors, [`Error::Store`].
    pub fn shred(&self, id: &VaultKeyId) -> Result<u64, Error> {
        drop(self.fresh_ring()?);
        let mut ring = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        if ring.current().id == *id {
            return Err(Error::ShredCurrentKey);
        }
        if ring.get(id).is_none() {
            return Err(Error::UnknownKeyId { id: id.clone() });
        }
        let lost = self.store.count_under(id)?;
        self.source.destroy(id)?;
        ring.remove(id)?;
        self.publish_key_change(&mut ring)?;
        Ok(lost)
    }
}

fn card_on_file(
    token: CardToken,
    pan: &Pan,
    expiry: Expiry,
    fingerprint: Fingerprint,
) -> CardOnFile {
    CardOnFile {
        token,
        brand: pan.brand(),
        last4: pan.last4(),
        expiry,
        fingerprint,
    }
}

/// A card's fingerprint under every key held, newest (current) first.
fn fingerprints(ring: &Keyring, pan: &Pan) -> Vec<Fingerprint> {
    ring.newest_first()
        .map(|key| Fingerprint {
            key_id: key.id.clone(),
            mac: fingerprint_mac(key, pan),
        })
        .collect()
}

fn fingerprint_mac(key: &KeyPair, pan: &Pan) -> [u8; 32] {
    hmac_sha256(key.fingerprint.as_ref(), &[pan.digits()])
}

/// Associated data: the label, the token and the key id, so a row moved to another token
/// or relabelled with another key fails to open.
fn aad(token: &CardToken, key_id: &VaultKeyId) -> Vec<u8> {
    let mut aad = Vec::with_capacity(64);
    aad.extend_from_slice(AAD_LABEL);
    aad.push(0);
    aad.extend_from_slice(token.as_str().as_bytes());
    aad.push(0);
    aad.extend_from_slice(key_id.as_str().as_bytes());
    aad
}

fn seal(key: &KeyPair, token: &CardToken, digits: &[u8]) -> Result<([u8; 24], Vec<u8>), Error> {
    let mut nonce = [0u8; 24];
    fill_random(&mut nonce)?;
    let cipher = XChaCha20Poly1305::new((&*key.seal).into());
    let ciphertext = cipher
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: digits,
                aad: &aad(token, &key.id),
            },
        )
        .map_err(|_| Error::Tampered)?;
    Ok((nonce, ciphertext))
}

fn open(
    key: &KeyPair,
    token: &CardToken,
    nonce: &[u8; 24],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let cipher = XChaCha20Poly1305::new((&*key.seal).into());
    cipher
        .decrypt(
            &XNonce::from(*nonce),
            Payload {
                msg: ciphertext,
                aad: &aad(token, &key.id),
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| Error::Tampered)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::card::on_file::TOKEN_CHARS;

    #[test]
    fn tokens_parse_back_sort_by_time_and_hold_no_digit() {
        let a = CardToken::generate().expect("rng");
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = CardToken::generate().expect("rng");
        assert!(a < b, "{a} then {b}");
        for t in [&a, &b] {
            assert_eq!(CardToken::parse(t.as_str()).expect("own output parses"), *t);
            assert_eq!(t.as_str().len(), 5 + TOKEN_CHARS);
            assert!(!t.as_str().bytes().any(|c| c.is_ascii_digit()), "{t}");
        }
        assert_ne!(
            CardToken::generate().expect("rng"),
            CardToken::generate().expect("rng")
        );
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let ok = format!("card_{}", "A".repeat(26));
        assert!(CardToken::parse(&ok).is_ok());
        for bad in [
            format!("card_{}", "A".repeat(25)),
            format!("card_{}B", "A".repeat(25)), // non-zero padding bits
            format!("card_{}g", "A".repeat(25)), // outside the alphabet
            format!("card_{}1", "A".repeat(25)),
            format!("tok_{}", "A".repeat(26)),
        ] {
            assert!(
                matches!(CardToken::parse(&bad), Err(Error::InvalidToken)),
                "{bad}"
            );
        }
    }

    proptest! {
        #[test]
        fn arbitrary_token_text_never_panics(s in any::<String>()) {
            let _ = CardToken::parse(&s);
        }
    }
}
