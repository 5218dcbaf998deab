//! The audit trail in a table, written once for both backends' vaults: a backend gives
//! a transaction on its `audit` and `audit_checkpoint` tables ([`AuditTx`]) and reads its
//! rows a page at a time; appending, checkpointing, the one-time migration and the
//! verification are here.

use super::chain::{
    AuditCheckpoint, AuditKey, AuditVerified, ChainCheck, DEFAULT_CHECKPOINT_EVERY, GENESIS, Link,
    migration_record,
};
use super::error::{AuditBreak, AuditError};
use super::record::AuditRecord;
use crate::kernel::Timestamp;
use crate::persist::StoreError;

/// Rows a verification reads at a time.
pub(crate) const PAGE: i64 = 10_000;

/// The audit chain's key and checkpoint interval, as a vault holds them.
#[derive(Debug)]
pub(crate) struct KeyedAudit {
    pub(crate) key: Option<AuditKey>,
    pub(crate) every: u64,
}

impl KeyedAudit {
    pub(crate) const NONE: Self = Self {
        key: None,
        every: DEFAULT_CHECKPOINT_EVERY,
    };

    /// The audit key, or [`AuditError::KeyRequired`] without one.
    pub(crate) fn key(&self) -> Result<&AuditKey, AuditError> {
        self.key.as_ref().ok_or(AuditError::KeyRequired)
    }

    /// Whether record `seq` gets a checkpoint.
    fn due(&self, seq: u64) -> bool {
        self.every > 0 && seq.is_multiple_of(self.every)
    }
}

/// One transaction on a vault's audit tables (or, for an unkeyed append, a connection).
pub(crate) trait AuditTx {
    /// The last row's `(seq, mac)`, with the trail locked against other writers (readers
    /// go on) until the transaction ends.
    fn last_row(&mut self) -> Result<LastRow, StoreError>;
    /// How many rows the table holds (`keyed_only`: rows with a sequence number).
    fn count(&mut self, keyed_only: bool) -> Result<u64, StoreError>;
    /// Appends a record, keyed (`Some((seq, mac))`) or not.
    fn insert(
        &mut self,
        entry: &AuditRecord,
        link: Option<(u64, &[u8; 32])>,
    ) -> Result<(), StoreError>;
    /// Appends a checkpoint.
    fn insert_checkpoint(&mut self, checkpoint: &AuditCheckpoint) -> Result<(), StoreError>;
}

/// An audit row as a backend reads it back, in insertion order (`id`).
pub(crate) struct StoredRow {
    pub(crate) id: i64,
    pub(crate) record: AuditRecord,
    pub(crate) seq: Option<i64>,
    pub(crate) mac: Option<Vec<u8>>,
}

/// Appends `entry`: keyed under the vault's key (and a checkpoint when one is due), or
/// unkeyed when the vault has none.
pub(crate) fn append(
    tx: &mut dyn AuditTx,
    audit: &KeyedAudit,
    entry: &AuditRecord,
) -> Result<(), AuditError> {
    let Some(key) = &audit.key else {
        return Ok(tx.insert(entry, None)?);
    };
    let (seq, prev) = next_row(tx.last_row()?)?;
    let mac = key.record_mac(&prev, seq, entry);
    tx.insert(entry, Some((seq, &mac)))?;
    if audit.due(seq) {
        tx.insert_checkpoint(&key.checkpoint(seq, mac, entry.at))?;
    }
    Ok(())
}

/// Writes a checkpoint of the trail as it stands and returns it.
pub(crate) fn checkpoint(
    tx: &mut dyn AuditTx,
    key: &AuditKey,
) -> Result<AuditCheckpoint, AuditError> {
    let (next, head) = next_row(tx.last_row()?)?;
    let cp = key.checkpoint(next - 1, head, Timestamp::now());
    tx.insert_checkpoint(&cp)?;
    Ok(cp)
}

/// The one-time migration of an unkeyed (0.1) table: a keyed record that takes the
/// unkeyed rows over. Returns how many it took over (0: nothing to migrate).
pub(crate) fn migrate(tx: &mut dyn AuditTx, key: &AuditKey) -> Result<u64, AuditError> {
    let last = tx.last_row()?;
    let Some((seq, prev)) = migration_row(last, tx)? else {
        return Ok(0);
    };
    let entry = migration_record(seq - 1, Timestamp::now());
    let mac = key.record_mac(&prev, seq, &entry);
    tx.insert(&entry, Some((seq, &mac)))?;
    Ok(seq - 1)
}

/// Checks a table under `key`, against its own checkpoints and `shipped`: every row in
/// insertion order, read by `page(from)` (the rows with an id of `from` or more, at most
/// [`PAGE`] of them, in id order), so that only one page is in memory at a time.
pub(crate) fn verify(
    key: &AuditKey,
    mut checkpoints: Vec<AuditCheckpoint>,
    shipped: &[AuditCheckpoint],
    mut page: impl FnMut(i64) -> Result<Vec<StoredRow>, AuditError>,
) -> Result<AuditVerified, AuditError> {
    checkpoints.extend_from_slice(shipped);
    let mut check = ChainCheck::new(key, &checkpoints)?;
    // From the lowest id a row can have (`i64::MIN` included: a sentinel below every
    // id would skip a row planted there), and on from one past the last id read.
    let mut from = i64::MIN;
    loop {
        let rows = page(from)?;
        for row in &rows {
            check.push(&row.record, row_link(row.seq, row.mac.as_deref())?)?;
        }
        // Done when a page is empty, or ends at the last id there is.
        match rows.last().and_then(|last| last.id.checked_add(1)) {
            Some(next) => from = next,
            None => return check.finish(),
        }
    }
}

/// An audit table's last row: `(seq, mac)`, both NULL on an unkeyed row; `None` for an
/// empty table.
pub(crate) type LastRow = Option<(Option<i64>, Option<Vec<u8>>)>;

/// The sequence number and previous head of the next keyed row of an audit table, from
/// the last row's `(seq, mac)` (both NULL on an unkeyed 0.1 row; `None` for an empty
/// table). After an unkeyed row only [`migration_row`] goes on.
fn next_row(last: LastRow) -> Result<(u64, [u8; 32]), AuditError> {
    match last {
        None => Ok((1, GENESIS)),
        Some((Some(seq), Some(mac))) => Ok((
            u64::try_from(seq)
                .ok()
                .and_then(|s| s.checked_add(1))
                .ok_or(AuditError::Corrupt {
                    what: "audit sequence number",
                })?,
            mac.as_slice().try_into().map_err(|_| AuditError::Corrupt {
                what: "audit record MAC",
            })?,
        )),
        // Unkeyed rows last: only the migration may go on from them (a keyed writer that
        // carried on would take over whatever someone without the key wrote there).
        Some((None, None)) => Err(AuditError::MigrationRequired),
        Some(_) => Err(AuditError::Corrupt {
            what: "audit row: a sequence number without a MAC",
        }),
    }
}

/// Where a table's migration record goes, from its last row's `(seq, mac)` as in
/// [`next_row`]: `None` when there is nothing to migrate (an empty or keyed table), the
/// sequence number and previous head when the table is unkeyed rows only. Unkeyed rows
/// after keyed ones are a downgrade, never migrated.
fn migration_row(
    last: LastRow,
    tx: &mut dyn AuditTx,
) -> Result<Option<(u64, [u8; 32])>, AuditError> {
    if !matches!(last, Some((None, None))) {
        return Ok(None);
    }
    let keyed = tx.count(true)?;
    if keyed > 0 {
        return Err(AuditError::Tampered(AuditBreak::Downgraded {
            record: keyed + 1,
        }));
    }
    Ok(Some((tx.count(false)? + 1, GENESIS)))
}

/// An audit table row's chain columns as a [`Link`]: unkeyed rows of a table carry no
/// chain at all, so they leave the head at [`GENESIS`].
fn row_link(seq: Option<i64>, mac: Option<&[u8]>) -> Result<Link, AuditError> {
    match (seq, mac) {
        (None, None) => Ok(Link::Unkeyed { head: GENESIS }),
        (Some(seq), Some(mac)) => Ok(Link::Keyed {
            // A negative number cannot be in sequence: it is reported as out of order.
            seq: u64::try_from(seq).unwrap_or(u64::MAX),
            mac: mac.try_into().map_err(|_| AuditError::Corrupt {
                what: "audit record MAC",
            })?,
        }),
        _ => Err(AuditError::Corrupt {
            what: "audit row: a sequence number without a MAC",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::{StoredRow, verify};
    use crate::audit::chain::{AuditKey, GENESIS};
    use crate::audit::record::AuditRecord;
    use crate::kernel::Timestamp;

    /// A keyed chain of `n` rows, ids `first`, `first + 7`, ...
    fn chain(key: &AuditKey, n: u64, first: i64) -> Vec<StoredRow> {
        let mut head = GENESIS;
        (1..=n)
            .map(|seq| {
                let record = AuditRecord::new(
                    format!("card_{seq}"),
                    "charge".into(),
                    "svc".into(),
                    Timestamp::from_millis(1),
                );
                let mac = key.record_mac(&head, seq, &record);
                head = mac;
                StoredRow {
                    id: first + 7 * (i64::try_from(seq).expect("small") - 1),
                    record,
                    seq: Some(i64::try_from(seq).expect("small")),
                    mac: Some(mac.to_vec()),
                }
            })
            .collect()
    }

    #[test]
    fn the_check_reads_every_row_once_across_pages() {
        let key = AuditKey::from_bytes([6; 32]);
        for (n, page_size, first) in [
            (10, 3, 0),
            (9, 3, 0),
            (1, 3, i64::MIN),
            (7, 1, -100),
            (2, 5, i64::MAX - 7),
        ] {
            let rows = chain(&key, n, first);
            let (mut pages, mut served) = (0, 0);
            let ok = verify(&key, Vec::new(), &[], |from| {
                pages += 1;
                let page: Vec<StoredRow> = rows
                    .iter()
                    .filter(|r| r.id >= from)
                    .take(page_size)
                    .map(|r| StoredRow {
                        id: r.id,
                        record: r.record.clone(),
                        seq: r.seq,
                        mac: r.mac.clone(),
                    })
                    .collect();
                served += page.len();
                Ok(page)
            })
            .expect("an intact chain");
            assert_eq!(ok.records, n, "{n} rows, {page_size} a page");
            assert_eq!(served, usize::try_from(n).expect("small"));
            // Then one empty page says the end, unless the last id is the last there is.
            let at_max = rows.last().is_some_and(|r| r.id == i64::MAX);
            let full = usize::try_from(n).expect("small").div_ceil(page_size);
            assert_eq!(pages, full + usize::from(!at_max));
        }
    }
}
