//! The erasure ledger's table on the customer side ([`LedgerStore`]).

use super::{PgStore, StoreError, be, to_i64};
use crate::audit::AuditCheckpoint;
use crate::seal::{LedgerEntry, LedgerStore};
use crate::store::rows::{ledger_checkpoint, ledger_entry};

const SELECT: &str = "SELECT seq, at, customer, erased, retained, mac FROM erasure_ledger";

fn entry(r: &postgres::Row) -> Result<LedgerEntry, StoreError> {
    ledger_entry((r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
}

impl LedgerStore for PgStore {
    fn ledger_append(
        &self,
        make: &mut dyn FnMut(u64, &[u8; 32]) -> Vec<LedgerEntry>,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        self.pool.with(|c| {
            let mut tx = c.transaction().map_err(be("begin ledger append"))?;
            // One appender at a time (readers go on): two servers never chain from the
            // same head.
            tx.batch_execute("LOCK TABLE erasure_ledger IN SHARE ROW EXCLUSIVE MODE")
                .map_err(be("lock ledger"))?;
            let head = tx
                .query_opt(
                    "SELECT seq, mac FROM erasure_ledger ORDER BY seq DESC LIMIT 1",
                    &[],
                )
                .map_err(be("read ledger head"))?;
            let (next, prev) =
                match crate::store::rows::ledger_mark(head.map(|r| (r.get(0), r.get(1))))? {
                    Some((seq, mac)) => (seq + 1, mac),
                    None => (1, [0; 32]),
                };
            let entries = make(next, &prev);
            let seqs: Vec<i64> = entries.iter().map(|e| to_i64(e.seq)).collect();
            let ats: Vec<i64> = entries.iter().map(|e| e.at.as_millis()).collect();
            let customers: Vec<&[u8]> = entries.iter().map(|e| &e.customer[..]).collect();
            let erased: Vec<String> = entries.iter().map(LedgerEntry::erased_text).collect();
            let retained: Vec<String> = entries.iter().map(LedgerEntry::retained_text).collect();
            let macs: Vec<&[u8]> = entries.iter().map(|e| &e.mac[..]).collect();
            tx.execute(
                "INSERT INTO erasure_ledger (seq, at, customer, erased, retained, mac)
                 SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bytea[], $4::text[],
                                      $5::text[], $6::bytea[])",
                &[&seqs, &ats, &customers, &erased, &retained, &macs],
            )
            .map_err(be("append to ledger"))?;
            tx.commit().map_err(be("commit ledger append"))?;
            Ok(entries)
        })
    }

    fn ledger_entries(&self, after: u64, limit: usize) -> Result<Vec<LedgerEntry>, StoreError> {
        let (after, limit) = (to_i64(after), to_i64(limit as u64));
        self.pool.with(|c| {
            c.query(
                &format!("{SELECT} WHERE seq > $1 ORDER BY seq LIMIT $2"),
                &[&after, &limit],
            )
            .map_err(be("read ledger"))?
            .iter()
            .map(entry)
            .collect()
        })
    }

    fn ledger_head(&self) -> Result<Option<LedgerEntry>, StoreError> {
        self.pool.with(|c| {
            c.query_opt(&format!("{SELECT} ORDER BY seq DESC LIMIT 1"), &[])
                .map_err(be("read ledger head"))?
                .as_ref()
                .map(entry)
                .transpose()
        })
    }

    fn ledger_checkpoint(&self, checkpoint: &AuditCheckpoint) -> Result<(), StoreError> {
        let line = checkpoint.to_string();
        self.pool.with(|c| {
            c.execute(
                "INSERT INTO erasure_ledger_checkpoints (line) VALUES ($1)",
                &[&line],
            )
            .map_err(be("keep ledger checkpoint"))?;
            Ok(())
        })
    }

    fn ledger_applied_seen(&self) -> Result<u64, StoreError> {
        self.pool.with(|c| {
            let row = c
                .query_opt("SELECT seq FROM erasure_ledger_applied", &[])
                .map_err(be("read ledger applied"))?;
            Ok(row.map_or(0, |r| crate::store::rows::to_u64(r.get(0))))
        })
    }

    fn ledger_saw_applied(&self, seq: u64) -> Result<(), StoreError> {
        let seq = to_i64(seq);
        self.pool.with(|c| {
            c.execute(
                "INSERT INTO erasure_ledger_applied (one, seq) VALUES (TRUE, $1)
                 ON CONFLICT (one) DO UPDATE SET seq = excluded.seq
                 WHERE excluded.seq > erasure_ledger_applied.seq",
                &[&seq],
            )
            .map_err(be("record ledger applied"))?;
            Ok(())
        })
    }

    fn ledger_reset_applied(&self, seq: u64) -> Result<(), StoreError> {
        let seq = to_i64(seq);
        self.pool.with(|c| {
            c.execute(
                "INSERT INTO erasure_ledger_applied (one, seq) VALUES (TRUE, $1)
                 ON CONFLICT (one) DO UPDATE SET seq = excluded.seq",
                &[&seq],
            )
            .map_err(be("reset ledger applied"))?;
            Ok(())
        })
    }

    fn ledger_checkpoints(&self) -> Result<Vec<AuditCheckpoint>, StoreError> {
        self.pool.with(|c| {
            c.query(
                "SELECT line FROM erasure_ledger_checkpoints ORDER BY id",
                &[],
            )
            .map_err(be("read ledger checkpoints"))?
            .iter()
            .map(|r| ledger_checkpoint(r.get::<_, &str>(0)))
            .collect()
        })
    }
}
