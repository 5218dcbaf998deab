//! Repairs and the one-time migration: the two writes that change a log other than by
//! appending a record.

use std::io::Write;
use std::path::Path;

use super::files::{checkpoint_path, io, open_file, read_checkpoints};
use super::line::line_for;
use super::walk::{walk, walk_checked};
use crate::audit::chain::{AuditKey, ChainCheck, migration_record};
use crate::audit::error::{AuditBreak, AuditError};
use crate::audit::record::AuditRecord;
use crate::kernel::Timestamp;

/// What [`AuditLog::repair`](crate::audit::AuditLog::repair) did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditRepair {
    /// Bytes of an unterminated last line that were cut off (0: nothing to repair, and
    /// nothing was written).
    pub dropped_bytes: u64,
    /// Records in the log after the repair, the repair's own record included.
    pub records: u64,
}

/// The one-time migration of a 0.1 log under `key`
/// ([`AuditLog::migrate_to_keyed`](crate::audit::AuditLog::migrate_to_keyed)).
pub(super) fn migrate_to_keyed(path: &Path, key: &AuditKey) -> Result<u64, AuditError> {
    let file = open_file(path)?;
    let f = &file;
    let result = (|| {
        f.lock().map_err(io("lock audit log"))?;
        let w = match walk(f, None, |_| {}) {
            Err(AuditError::KeyRequired) => {
                walk_checked(f, path, Some(key), &[], |_| {})?;
                return Ok(0);
            }
            other => other?.whole(path)?,
        };
        if w.records == 0 {
            return Ok(0);
        }
        // A log that was keyed under this key (its checkpoints say so) and is
        // unkeyed now was replaced: a migration would vouch for the forgery.
        if read_checkpoints(&checkpoint_path(path))?
            .iter()
            .any(|c| c.is_valid(key))
        {
            return Err(AuditError::Tampered(AuditBreak::Unmigrated {
                records: w.records,
            }));
        }
        let note = migration_record(w.records, Timestamp::now());
        let (line, _) = line_for(Some(key), &note, &w.head, w.records + 1);
        let mut out = f;
        out.write_all(line.as_bytes())
            .and_then(|()| out.sync_all())
            .map_err(io("append audit record"))?;
        Ok(w.records)
    })();
    file.unlock().map_err(io("unlock audit log"))?;
    result
}

/// Cuts an unterminated last line off and records the repair, keyed when `key` is given
/// ([`AuditLog::repair`](crate::audit::AuditLog::repair),
/// [`AuditLog::repair_keyed`](crate::audit::AuditLog::repair_keyed)).
pub(super) fn repair(path: &Path, key: Option<&AuditKey>) -> Result<AuditRepair, AuditError> {
    let mut file = open_file(path)?;
    let f = &mut file;
    let result = (|| {
        f.lock().map_err(io("lock audit log"))?;
        let mut check = key.map(|k| ChainCheck::new(k, &[])).transpose()?;
        let w = walk(f, check.as_mut(), |_| {})?;
        // A keyed repair record right after unkeyed lines would take them over
        // without a migration: repair it unkeyed, then migrate.
        if check.as_ref().is_some_and(ChainCheck::needs_migration) {
            return Err(AuditError::MigrationRequired);
        }
        if w.torn == 0 {
            return Ok(AuditRepair {
                dropped_bytes: 0,
                records: w.records,
            });
        }
        f.set_len(w.valid)
            .and_then(|()| f.sync_all())
            .map_err(io("truncate audit log"))?;
        let note = AuditRecord::new(
            "-".into(),
            "audit-log-repair".into(),
            format!(
                "shopsafe: dropped {} bytes of an unterminated last line",
                w.torn
            ),
            Timestamp::now(),
        );
        let (line, _) = line_for(key, &note, &w.head, w.records + 1);
        f.write_all(line.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(io("append audit record"))?;
        Ok(AuditRepair {
            dropped_bytes: w.torn,
            records: w.records + 1,
        })
    })();
    file.unlock().map_err(io("unlock audit log"))?;
    result
}
