//! The erasure ledger's table on the customer side ([`LedgerStore`]).

use super::{OptionalExtension, SqliteStore, StoreError, be, begin, params, to_i64};
use crate::audit::AuditCheckpoint;
use crate::seal::{LedgerEntry, LedgerStore};
use crate::store::rows::{LedgerRow, ledger_checkpoint, ledger_entry};

const SELECT: &str = "SELECT seq, at, customer, erased, retained, mac FROM erasure_ledger";

fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<LedgerRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

/// The append's transaction.
fn append_in(
    c: &mut rusqlite::Connection,
    make: &mut dyn FnMut(u64, &[u8; 32]) -> Vec<LedgerEntry>,
) -> Result<Vec<LedgerEntry>, StoreError> {
    // IMMEDIATE: the write lock before the head is read, so two appenders never
    // chain from the same head.
    let tx = begin(c, "begin ledger append")?;
    let head: Option<(i64, Vec<u8>)> = tx
        .prepare_cached("SELECT seq, mac FROM erasure_ledger ORDER BY seq DESC LIMIT 1")
        .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .map_err(be("read ledger head"))?;
    let (next, prev) = match crate::store::rows::ledger_mark(head)? {
        Some((seq, mac)) => (seq + 1, mac),
        None => (1, [0; 32]),
    };
    let entries = make(next, &prev);
    {
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO erasure_ledger (seq, at, customer, erased, retained, mac)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(be("append to ledger"))?;
        for e in &entries {
            insert
                .execute(params![
                    to_i64(e.seq),
                    e.at.as_millis(),
                    &e.customer[..],
                    e.erased_text(),
                    e.retained_text(),
                    &e.mac[..]
                ])
                .map_err(be("append to ledger"))?;
        }
    }
    tx.commit().map_err(be("commit ledger append"))?;
    Ok(entries)
}

impl LedgerStore for SqliteStore {
    fn ledger_append(
        &self,
        make: &mut dyn FnMut(u64, &[u8; 32]) -> Vec<LedgerEntry>,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        self.with(|c| {
            // Durable at commit (the WAL synced): the entry is what survives a power loss
            // to say the erasure is owed.
            c.pragma_update(None, "synchronous", "FULL")
                .map_err(be("set synchronous"))?;
            let done = append_in(c, make);
            // After the commit: a failure here leaves the connection syncing every
            // commit (slower, not wrong), and must not report the entry as unwritten.
            let _ = c.pragma_update(None, "synchronous", "NORMAL");
            done
        })
    }

    fn ledger_entries(&self, after: u64, limit: usize) -> Result<Vec<LedgerEntry>, StoreError> {
        self.with(|c| {
            let rows: Vec<LedgerRow> = c
                .prepare_cached(&format!("{SELECT} WHERE seq > ?1 ORDER BY seq LIMIT ?2"))
                .and_then(|mut s| {
                    s.query_map(params![to_i64(after), to_i64(limit as u64)], read)?
                        .collect()
                })
                .map_err(be("read ledger"))?;
            rows.into_iter().map(ledger_entry).collect()
        })
    }

    fn ledger_head(&self) -> Result<Option<LedgerEntry>, StoreError> {
        self.with(|c| {
            let row: Option<LedgerRow> = c
                .prepare_cached(&format!("{SELECT} ORDER BY seq DESC LIMIT 1"))
                .and_then(|mut s| s.query_row([], read).optional())
                .map_err(be("read ledger head"))?;
            row.map(ledger_entry).transpose()
        })
    }

    fn ledger_checkpoint(&self, checkpoint: &AuditCheckpoint) -> Result<(), StoreError> {
        self.with(|c| {
            c.prepare_cached("INSERT INTO erasure_ledger_checkpoints (line) VALUES (?1)")
                .and_then(|mut s| s.execute([checkpoint.to_string()]))
                .map_err(be("keep ledger checkpoint"))?;
            Ok(())
        })
    }

    fn ledger_applied_seen(&self) -> Result<u64, StoreError> {
        self.with(|c| {
            let seq: Option<i64> = c
                .prepare_cached("SELECT seq FROM erasure_ledger_applied")
                .and_then(|mut s| s.query_row([], |r| r.get(0)).optional())
                .map_err(be("read ledger applied"))?;
            Ok(seq.map_or(0, crate::store::rows::to_u64))
        })
    }

    fn ledger_saw_applied(&self, seq: u64) -> Result<(), StoreError> {
        self.with(|c| {
            c.prepare_cached(
                "INSERT INTO erasure_ledger_applied (one, seq) VALUES (1, ?1)
                 ON CONFLICT (one) DO UPDATE SET seq = excluded.seq
                 WHERE excluded.seq > erasure_ledger_applied.seq",
            )
            .and_then(|mut s| s.execute([to_i64(seq)]))
            .map_err(be("record ledger applied"))?;
            Ok(())
        })
    }

    fn ledger_reset_applied(&self, seq: u64) -> Result<(), StoreError> {
        self.with(|c| {
            c.prepare_cached(
                "INSERT INTO erasure_ledger_applied (one, seq) VALUES (1, ?1)
                 ON CONFLICT (one) DO UPDATE SET seq = excluded.seq",
            )
            .and_then(|mut s| s.execute([to_i64(seq)]))
            .map_err(be("reset ledger applied"))?;
            Ok(())
        })
    }

    fn ledger_checkpoints(&self) -> Result<Vec<AuditCheckpoint>, StoreError> {
        self.with(|c| {
            let lines: Vec<String> = c
                .prepare_cached("SELECT line FROM erasure_ledger_checkpoints ORDER BY id")
                .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
                .map_err(be("read ledger checkpoints"))?;
            lines.iter().map(|l| ledger_checkpoint(l)).collect()
        })
    }
}
