//! The keyed chain shared by the audit file and the audit tables: the key, the record
//! MAC, checkpoints, and the check that reads a trail back.
//!
//! Every keyed record carries its sequence number (1, 2, …, counting the unkeyed records
//! of a 0.1 trail before it) and `mac = HMAC-SHA-256(key, "shopsafe-audit-record-v1" ‖
//! previous head ‖ sequence ‖ time ‖ token ‖ purpose ‖ caller)`, each field
//! length-prefixed; the record's MAC is the chain's new head. Whoever can write the trail
//! but not read the key can neither edit, reorder nor insert a record without the check
//! saying where; cutting the tail off leaves a shorter valid chain, which a
//! [`AuditCheckpoint`] (count and head, MAC'd) shipped elsewhere exposes.

use core::fmt;
use core::str::FromStr;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::error::{AuditBreak, AuditError};
use super::record::{AuditKind, AuditRecord};
use crate::kernel::Timestamp;
use crate::kernel::hmac_sha256;

/// The head before the first record.
pub(crate) const GENESIS: [u8; 32] = [0; 32];

/// The purpose of the keyed record that takes an unkeyed (0.1) prefix over: the only
/// record a keyed trail accepts right after unkeyed ones.
pub const AUDIT_MIGRATION: &str = "audit-migration";

/// The record a one-time migration writes after `unkeyed` unkeyed records.
pub(crate) fn migration_record(unkeyed: u64, at: Timestamp) -> AuditRecord {
    AuditRecord::new(
        "-".into(),
        AUDIT_MIGRATION.into(),
        format!("shopsafe: {unkeyed} unkeyed records taken over by the keyed chain"),
        at,
    )
}

/// Checkpoints written every this many records unless told otherwise.
pub const DEFAULT_CHECKPOINT_EVERY: u64 = 1_000;

/// The secret key of the audit chain (HMAC-SHA-256, 32 bytes).
///
/// Get it from the vault's key source (`card::KeySource::audit_key`), so it lives where
/// the vault keys live (a key file of its own, an HSM), not beside the trail it protects.
///
/// # Security
/// Zeroized on drop, not `Clone`, and `Debug` prints a mask. Whoever holds it can forge
/// a whole trail: keep it off the machine that ships and checks the checkpoints if you can.
///
/// # Examples
/// ```
/// use shopsafe::audit::AuditKey;
///
/// let key = AuditKey::from_bytes([7; 32]);
/// assert_eq!(format!("{key:?}"), "AuditKey(***)");
/// ```
pub struct AuditKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuditKey(***)")
    }
}

impl AuditKey {
    /// A key from its 32 bytes.
    #[must_use]
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// A fresh random key.
    ///
    /// # Errors
    /// [`AuditError::Store`] when the OS random generator fails.
    pub fn generate() -> Result<Self, AuditError> {
        let mut key = Zeroizing::new([0u8; 32]);
        crate::secret::fill_random(key.as_mut_slice())?;
        Ok(Self(key))
    }

    /// The key's bytes, for a key source that stores or wraps it.
    #[must_use]
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.0
    }

    /// The MAC of record number `seq` after head `prev`: the chain's next head.
    pub(crate) fn record_mac(&self, prev: &[u8; 32], seq: u64, r: &AuditRecord) -> [u8; 32] {
        let purpose = r.stored_purpose();
        let len = |s: &str| u64::try_from(s.len()).unwrap_or(u64::MAX).to_be_bytes();
        hmac_sha256(
            self.0.as_slice(),
            &[
                b"shopsafe-audit-record-v1",
                prev,
                &seq.to_be_bytes(),
                &r.at.as_millis().to_be_bytes(),
                &len(&r.token),
                r.token.as_bytes(),
                &len(&purpose),
                purpose.as_bytes(),
                &len(&r.caller),
                r.caller.as_bytes(),
            ],
        )
    }

    fn checkpoint_mac(&self, records: u64, at: Timestamp, head: &[u8; 32]) -> [u8; 32] {
        hmac_sha256(
            self.0.as_slice(),
            &[
                b"shopsafe-audit-checkpoint-v1",
                &records.to_be_bytes(),
                &at.as_millis().to_be_bytes(),
                head,
            ],
        )
    }

    /// A checkpoint of a trail `records` long whose head is `head`.
    pub(crate) fn checkpoint(
        &self,
        records: u64,
        head: [u8; 32],
        at: Timestamp,
    ) -> AuditCheckpoint {
        AuditCheckpoint {
            records,
            head,
            at,
            mac: self.checkpoint_mac(records, at, &head),
        }
    }
}

/// The count and head of a keyed audit trail at one moment, MAC'd under the audit key:
/// ship it somewhere the vault machine cannot write (a SIEM, a ticket, object-locked
/// storage), and a later check proves the trail still holds those records unchanged.
///
/// Its text form is one line, `shopsafe-audit-checkpoint v1 <records> <ms> <head hex>
/// <mac hex>`, which [`FromStr`] reads back.
///
/// # Examples
/// ```
/// use shopsafe::audit::AuditCheckpoint;
///
/// let line = format!("shopsafe-audit-checkpoint v1 12 1700000000000 {} {}", "ab".repeat(32), "cd".repeat(32));
/// let cp: AuditCheckpoint = line.parse()?;
/// assert_eq!(cp.records, 12);
/// assert_eq!(cp.to_string(), line);
/// assert!("shopsafe-audit-checkpoint v1 x".parse::<AuditCheckpoint>().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditCheckpoint {
    /// Records in the trail when it was taken.
    pub records: u64,
    /// The chain's head after them (the last record's MAC).
    pub head: [u8; 32],
    /// When it was taken.
    pub at: Timestamp,
    mac: [u8; 32],
}

impl AuditCheckpoint {
    /// The checkpoint's MAC (for a table that stores it).
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn mac(&self) -> &[u8; 32] {
        &self.mac
    }

    /// A checkpoint read back from a table's columns.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn from_columns(
        records: i64,
        at: i64,
        head: &[u8],
        mac: &[u8],
    ) -> Result<Self, AuditError> {
        let corrupt = || AuditError::Corrupt {
            what: "audit checkpoint row",
        };
        Ok(Self {
            records: u64::try_from(records).map_err(|_| corrupt())?,
            at: Timestamp::from_millis(at),
            head: head.try_into().map_err(|_| corrupt())?,
            mac: mac.try_into().map_err(|_| corrupt())?,
        })
    }

    /// Whether `key` made it.
    #[must_use]
    pub fn is_valid(&self, key: &AuditKey) -> bool {
        bool::from(
            key.checkpoint_mac(self.records, self.at, &self.head)
                .ct_eq(&self.mac),
        )
    }
}

const CHECKPOINT_TAG: &str = "shopsafe-audit-checkpoint v1";

impl fmt::Display for AuditCheckpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{CHECKPOINT_TAG} {} {} {} {}",
            self.records,
            self.at.as_millis(),
            base16ct::lower::encode_string(&self.head),
            base16ct::lower::encode_string(&self.mac)
        )
    }
}

/// A checkpoint line that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an audit checkpoint line")]
#[non_exhaustive]
pub struct InvalidCheckpoint;

/// 64 lowercase hex digits as 32 bytes (a head or a MAC, in a checkpoint or a log line).
pub(crate) fn hex32(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    match base16ct::lower::decode(s, &mut out) {
        Ok(b) if b.len() == 32 => Some(out),
        _ => None,
    }
}

impl FromStr for AuditCheckpoint {
    type Err = InvalidCheckpoint;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s
            .trim_end_matches(['\n', '\r'])
            .strip_prefix(CHECKPOINT_TAG)
            .and_then(|r| r.strip_prefix(' '))
            .ok_or(InvalidCheckpoint)?;
        let fields: Vec<&str> = rest.split(' ').collect();
        let [records, at, head, mac] = fields[..] else {
            return Err(InvalidCheckpoint);
        };
        let digits = |v: &str| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
        if !digits(records) || !(digits(at) || at.strip_prefix('-').is_some_and(digits)) {
            return Err(InvalidCheckpoint);
        }
        Ok(Self {
            records: records.parse().map_err(|_| InvalidCheckpoint)?,
            at: Timestamp::from_millis(at.parse().map_err(|_| InvalidCheckpoint)?),
            head: hex32(head).ok_or(InvalidCheckpoint)?,
            mac: hex32(mac).ok_or(InvalidCheckpoint)?,
        })
    }
}

/// What a check of a keyed audit trail found, when it found nothing wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditVerified {
    /// Records in the trail.
    pub records: u64,
    /// How many of the first ones are unkeyed (written by 0.1, before the trail was
    /// keyed): only their order is protected, by the plain chain in a file, not at all in
    /// a table.
    pub unkeyed: u64,
    /// Checkpoints the trail was checked against.
    pub checkpoints: usize,
    /// The newest checkpoint's count (0 when none).
    pub checked_up_to: u64,
    /// The chain's head now.
    pub head: [u8; 32],
}

/// One record as a trail holds it: keyed (sequence number and MAC) or not.
pub(crate) enum Link {
    /// A 0.1 record; `head` is the chain's head after it (the file's SHA-256 of its line;
    /// a table's unkeyed rows leave it at [`GENESIS`]).
    Unkeyed { head: [u8; 32] },
    /// A keyed record.
    Keyed { seq: u64, mac: [u8; 32] },
}

/// Reads a trail back record by record, in order, and says what is wrong with it.
pub(crate) struct ChainCheck<'k> {
    key: &'k AuditKey,
    head: [u8; 32],
    records: u64,
    unkeyed: u64,
    keyed_seen: bool,
    /// Checkpoints, by count; `next` is the first not yet reached.
    checkpoints: Vec<AuditCheckpoint>,
    next: usize,
}

impl<'k> ChainCheck<'k> {
    /// A check against `checkpoints`, each first checked to be the key's.
    pub(crate) fn new(
        key: &'k AuditKey,
        checkpoints: &[AuditCheckpoint],
    ) -> Result<Self, AuditError> {
        if let Some(forged) = checkpoints.iter().find(|c| !c.is_valid(key)) {
            return Err(AuditError::Tampered(AuditBreak::ForgedCheckpoint {
                records: forged.records,
            }));
        }
        let mut checkpoints = checkpoints.to_vec();
        checkpoints.sort_by_key(|c| c.records);
        Ok(Self {
            key,
            head: GENESIS,
            records: 0,
            unkeyed: 0,
            keyed_seen: false,
            checkpoints,
            next: 0,
        })
    }

    /// Whether the records so far are unkeyed ones no migration has taken over.
    pub(crate) fn needs_migration(&self) -> bool {
        self.unkeyed > 0 && !self.keyed_seen
    }

    /// The chain's head so far.
    pub(crate) fn head(&self) -> [u8; 32] {
        self.head
    }

    /// Takes the next record.
    pub(crate) fn push(&mut self, record: &AuditRecord, link: Link) -> Result<(), AuditError> {
        let position = self.records + 1;
        let broken = |b| Err(AuditError::Tampered(b));
        match link {
            Link::Unkeyed { head } => {
                if self.keyed_seen {
                    return broken(AuditBreak::Downgraded { record: position });
                }
                self.unkeyed += 1;
                self.head = head;
            }
            Link::Keyed { seq, mac } => {
                if seq != position {
                    return broken(AuditBreak::OutOfOrder {
                        record: position,
                        sequence: seq,
                    });
                }
                let want = self.key.record_mac(&self.head, seq, record);
                if !bool::from(want.ct_eq(&mac)) {
                    return broken(AuditBreak::Edited { record: position });
                }
                // Unkeyed records are taken over by an explicit migration record, never
                // by whatever keyed record happens to follow them.
                if !self.keyed_seen
                    && self.unkeyed > 0
                    && (record.purpose != AUDIT_MIGRATION || record.kind != AuditKind::CardReveal)
                {
                    return broken(AuditBreak::Unmigrated {
                        records: self.unkeyed,
                    });
                }
                self.keyed_seen = true;
                self.head = mac;
            }
        }
        self.records = position;
        while let Some(c) = self.checkpoints.get(self.next) {
            if c.records > self.records {
                break;
            }
            if c.records == self.records && !bool::from(c.head.ct_eq(&self.head)) {
                return broken(AuditBreak::Rewritten {
                    checkpoint: c.records,
                });
            }
            self.next += 1;
        }
        Ok(())
    }

    /// The result, once every record was taken.
    pub(crate) fn finish(self) -> Result<AuditVerified, AuditError> {
        if self.unkeyed > 0 && !self.keyed_seen {
            return Err(AuditError::Tampered(AuditBreak::Unmigrated {
                records: self.unkeyed,
            }));
        }
        if let Some(c) = self.checkpoints.last()
            && c.records > self.records
        {
            return Err(AuditError::Tampered(AuditBreak::Truncated {
                checkpoint: c.records,
                records: self.records,
            }));
        }
        Ok(AuditVerified {
            records: self.records,
            unkeyed: self.unkeyed,
            checkpoints: self.checkpoints.len(),
            checked_up_to: self.checkpoints.last().map_or(0, |c| c.records),
            head: self.head,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn rec(token: &str) -> AuditRecord {
        AuditRecord::new(
            token.into(),
            "charge".into(),
            "svc".into(),
            Timestamp::from_millis(1_700_000_000_000),
        )
    }

    /// A keyed chain of `n` records: (record, seq, mac).
    fn chain(key: &AuditKey, n: u64) -> Vec<(AuditRecord, u64, [u8; 32])> {
        let mut head = GENESIS;
        (1..=n)
            .map(|seq| {
                let r = rec(&format!("card_{seq}"));
                head = key.record_mac(&head, seq, &r);
                (r, seq, head)
            })
            .collect()
    }

    fn check(
        key: &AuditKey,
        rows: &[(AuditRecord, u64, [u8; 32])],
        cps: &[AuditCheckpoint],
    ) -> Result<AuditVerified, AuditError> {
        let mut c = ChainCheck::new(key, cps)?;
        for (r, seq, mac) in rows {
            c.push(
                r,
                Link::Keyed {
                    seq: *seq,
                    mac: *mac,
                },
            )?;
        }
        c.finish()
    }

    fn broke(r: Result<AuditVerified, AuditError>) -> Option<AuditBreak> {
        match r {
            Err(AuditError::Tampered(b)) => Some(b),
            _ => None,
        }
    }

    #[test]
    fn edits_reorders_truncation_and_forged_checkpoints_are_named() {
        let key = AuditKey::from_bytes([1; 32]);
        let rows = chain(&key, 10);
        let cp = key.checkpoint(10, rows[9].2, Timestamp::from_millis(5));
        assert_eq!(check(&key, &rows, &[cp]).expect("intact").checked_up_to, 10);

        let mut edited = rows.clone();
        edited[3].0.caller = "someone else".into();
        assert_eq!(
            broke(check(&key, &edited, &[])),
            Some(AuditBreak::Edited { record: 4 })
        );
        // Its time too: a record moved in time is an edit.
        let mut retimed = rows.clone();
        retimed[3].0.at = Timestamp::from_millis(retimed[3].0.at.as_millis() + 1);
        assert_eq!(
            broke(check(&key, &retimed, &[])),
            Some(AuditBreak::Edited { record: 4 })
        );
        // The last record too: each record carries its own MAC.
        let mut last = rows.clone();
        last[9].0.token = "card_x".into();
        assert_eq!(
            broke(check(&key, &last, &[])),
            Some(AuditBreak::Edited { record: 10 })
        );

        let mut swapped = rows.clone();
        swapped.swap(4, 5);
        assert_eq!(
            broke(check(&key, &swapped, &[])),
            Some(AuditBreak::OutOfOrder {
                record: 5,
                sequence: 6
            })
        );
        let mut removed = rows.clone();
        removed.remove(2);
        assert_eq!(
            broke(check(&key, &removed, &[])),
            Some(AuditBreak::OutOfOrder {
                record: 3,
                sequence: 4
            })
        );

        // Truncation leaves a valid chain: only a checkpoint shows it.
        assert!(check(&key, &rows[..7], &[]).is_ok());
        assert_eq!(
            broke(check(&key, &rows[..7], &[cp])),
            Some(AuditBreak::Truncated {
                checkpoint: 10,
                records: 7
            })
        );

        // A chain rebuilt under another key (or recomputed by someone with a copy of it)
        // does not meet the checkpoint.
        let other = AuditKey::from_bytes([2; 32]);
        assert_eq!(
            broke(check(&key, &chain(&other, 10), &[])),
            Some(AuditBreak::Edited { record: 1 })
        );
        let forged = other.checkpoint(10, rows[9].2, Timestamp::from_millis(5));
        assert_eq!(
            broke(check(&key, &rows, &[forged])),
            Some(AuditBreak::ForgedCheckpoint { records: 10 })
        );
        let mut moved = cp;
        moved.records = 9;
        assert_eq!(
            broke(check(&key, &rows, &[moved])),
            Some(AuditBreak::ForgedCheckpoint { records: 9 })
        );
    }

    #[test]
    fn a_rewritten_prefix_fails_its_checkpoint() {
        let key = AuditKey::from_bytes([1; 32]);
        let rows = chain(&key, 6);
        let cp = key.checkpoint(3, rows[2].2, Timestamp::from_millis(5));
        // Someone with the key rewrites record 2 and recomputes every MAC after it.
        let mut head = GENESIS;
        let rebuilt: Vec<_> = rows
            .iter()
            .map(|(r, seq, _)| {
                let mut r = r.clone();
                if *seq == 2 {
                    r.caller = "nobody".into();
                }
                head = key.record_mac(&head, *seq, &r);
                (r, *seq, head)
            })
            .collect();
        assert_eq!(
            broke(check(&key, &rebuilt, &[cp])),
            Some(AuditBreak::Rewritten { checkpoint: 3 })
        );
    }

    #[test]
    fn unkeyed_records_may_only_come_first_and_only_a_migration_takes_them_over() {
        let key = AuditKey::from_bytes([1; 32]);
        let unkeyed = || {
            let mut c = ChainCheck::new(&key, &[]).expect("check");
            c.push(&rec("a"), Link::Unkeyed { head: [9; 32] })
                .expect("0.1 record");
            c
        };
        // Unkeyed records alone are no keyed trail (a forgery needs no key).
        assert!(matches!(
            unkeyed().finish(),
            Err(AuditError::Tampered(AuditBreak::Unmigrated { records: 1 }))
        ));
        // An ordinary keyed record does not take them over...
        let mac = key.record_mac(&[9; 32], 2, &rec("b"));
        assert!(matches!(
            unkeyed().push(&rec("b"), Link::Keyed { seq: 2, mac }),
            Err(AuditError::Tampered(AuditBreak::Unmigrated { records: 1 }))
        ));
        // ...the migration record does.
        let mut c = unkeyed();
        let migration = migration_record(1, Timestamp::from_millis(5));
        let mac = key.record_mac(&[9; 32], 2, &migration);
        c.push(&migration, Link::Keyed { seq: 2, mac })
            .expect("migrated");
        let mac = key.record_mac(&mac, 3, &rec("b"));
        c.push(&rec("b"), Link::Keyed { seq: 3, mac })
            .expect("keyed after");
        assert!(matches!(
            c.push(&rec("c"), Link::Unkeyed { head: [0; 32] }),
            Err(AuditError::Tampered(AuditBreak::Downgraded { record: 4 }))
        ));
    }

    proptest! {
        #[test]
        fn checkpoint_lines_round_trip(records in any::<u64>(), at in any::<i64>(), head in any::<[u8; 32]>(), mac in any::<[u8; 32]>()) {
            let cp = AuditCheckpoint { records, head, at: Timestamp::from_millis(at), mac };
            prop_assert_eq!(cp.to_string().parse::<AuditCheckpoint>(), Ok(cp));
        }

        #[test]
        fn checkpoint_parser_refuses_garbage_without_panicking(s in "\\PC{0,200}") {
            let _ = s.parse::<AuditCheckpoint>();
            let with_tag = format!("{CHECKPOINT_TAG} {s}");
            let _ = with_tag.parse::<AuditCheckpoint>();
        }
    }
}
