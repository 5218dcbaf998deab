//! Rate-limit state shared by every server on the database: one GCRA time per hashed key.

use super::{PgStore, StoreError, ThrottleAdjust, ThrottleStore, be, to_u64};

impl ThrottleStore for PgStore {
    fn update_throttle(
        &self,
        keys: &[[u8; 16]],
        now: i64,
        sweep: usize,
        update: &mut dyn FnMut(&mut [Option<i64>]),
    ) -> Result<(), StoreError> {
        // Two round trips per update, whatever the number of keys: a login (reserve,
        // then settle) costs four. Each batch is one simple-query message; the values in
        // it are hex digests and integers this function formats itself, never text from
        // outside. Rows are locked in key order: two servers never deadlock.
        let mut sorted: Vec<&[u8; 16]> = keys.iter().collect();
        sorted.sort_unstable();
        sorted.dedup();
        let rows = sorted
            .iter()
            .map(|k| format!("({},{now})", bytea(k)))
            .collect::<Vec<_>>()
            .join(",");
        self.pool.with(|c| {
            let mut open = OpenTransaction(c, false);
            // Throttle state is advisory: a database crash may forget its last moments
            // (the WAL writer flushes within three `wal_writer_delay`s), never more. Not
            // waiting for the WAL flush at each commit is most of the cost on a disk that
            // syncs. Every key gets a row (a value at `now` means "never seen") and is
            // locked by the same statement, which returns the stored values.
            let read = open
                .0
                .simple_query(&format!(
                    "BEGIN; SET LOCAL synchronous_commit = off;
                     INSERT INTO throttle AS t (key, tat) VALUES {rows}
                       ON CONFLICT (key) DO UPDATE SET tat = t.tat
                       RETURNING encode(key, 'hex'), tat"
                ))
                .map_err(be("read throttle"))?;
            let mut found: Vec<([u8; 16], i64)> = Vec::with_capacity(sorted.len());
            for message in &read {
                if let postgres::SimpleQueryMessage::Row(row) = message {
                    let parsed = row
                        .get(0)
                        .and_then(unhex16)
                        .zip(row.get(1).and_then(|t| t.parse::<i64>().ok()));
                    found.push(parsed.ok_or(StoreError::Corrupt {
                        what: "throttle row",
                    })?);
                }
            }
            let mut values: Vec<Option<i64>> = keys
                .iter()
                .map(|k| {
                    found
                        .iter()
                        .find(|(key, _)| key == k)
                        .map(|&(_, tat)| tat)
                        .filter(|&t| t > now)
                })
                .collect();
            update(&mut values);
            let mut kept = Vec::new();
            let mut dropped = Vec::new();
            for (key, value) in keys.iter().zip(&values) {
                match value {
                    Some(tat) if *tat > now => kept.push(format!("({},{tat})", bytea(key))),
                    _ => dropped.push(bytea(key)),
                }
            }
            let mut write = String::new();
            if !kept.is_empty() {
                write.push_str(&format!(
                    "UPDATE throttle AS t SET tat = v.tat FROM (VALUES {}) AS v(key, tat)
                     WHERE t.key = v.key;",
                    kept.join(",")
                ));
            }
            if !dropped.is_empty() || sweep > 0 {
                let dropped = if dropped.is_empty() {
                    "NULL".to_owned()
                } else {
                    dropped.join(",")
                };
                write.push_str(&format!(
                    "DELETE FROM throttle WHERE key IN ({dropped}) OR key IN
                       (SELECT key FROM throttle WHERE tat <= {now} ORDER BY tat LIMIT {sweep}
                        FOR UPDATE SKIP LOCKED);"
                ));
            }
            write.push_str("COMMIT");
            open.0.batch_execute(&write).map_err(be("write throttle"))?;
            open.1 = true;
            Ok(())
        })
    }

    /// One round trip: lock the rows in key order (as `update_throttle` does, so the two
    /// never deadlock), change them in SQL, delete what reached `now`, commit.
    fn adjust_throttle(
        &self,
        adjustments: &[([u8; 16], ThrottleAdjust)],
        now: i64,
    ) -> Result<(), StoreError> {
        let mut all: Vec<&[u8; 16]> = adjustments.iter().map(|(k, _)| k).collect();
        all.sort_unstable();
        all.dedup();
        if all.is_empty() {
            return Ok(());
        }
        let list = |keys: &[&[u8; 16]]| keys.iter().map(|k| bytea(k)).collect::<Vec<_>>();
        let mut cleared = Vec::new();
        let mut cases = Vec::new();
        let mut given = Vec::new();
        for (key, adjust) in adjustments {
            match adjust {
                ThrottleAdjust::GiveBack(ns) => {
                    cases.push(format!("WHEN {} THEN {ns}", bytea(key)));
                    given.push(key);
                }
                ThrottleAdjust::Clear => cleared.push(key),
            }
        }
        let mut batch = format!(
            "BEGIN; SET LOCAL synchronous_commit = off;
             SELECT 1 FROM throttle WHERE key IN ({}) ORDER BY key FOR UPDATE;",
            list(&all).join(",")
        );
        if !given.is_empty() {
            batch.push_str(&format!(
                "UPDATE throttle SET tat = tat - CASE key {} END WHERE key IN ({});",
                cases.join(" "),
                list(&given).join(",")
            ));
        }
        batch.push_str(&format!(
            "DELETE FROM throttle WHERE key IN ({}) AND ({} OR tat <= {now}); COMMIT",
            list(&all).join(","),
            if cleared.is_empty() {
                "false".to_owned()
            } else {
                format!("key IN ({})", list(&cleared).join(","))
            }
        ));
        self.pool.with(|c| {
            let mut open = OpenTransaction(c, false);
            open.0
                .batch_execute(&batch)
                .map_err(be("adjust throttle"))?;
            open.1 = true;
            Ok(())
        })
    }

    fn throttle_rows(&self) -> Result<u64, StoreError> {
        self.pool.with(|c| {
            c.query_one("SELECT count(*) FROM throttle", &[])
                .map(|r| to_u64(r.get(0)))
                .map_err(be("count throttle rows"))
        })
    }
}

/// A transaction opened with a simple-query `BEGIN`: rolled back when dropped before its
/// `COMMIT` went through (an error, a panic in the update), so the pooled connection
/// never goes back inside a transaction.
struct OpenTransaction<'a>(&'a mut postgres::Client, bool);

impl Drop for OpenTransaction<'_> {
    fn drop(&mut self) {
        if !self.1 {
            let _ = self.0.batch_execute("ROLLBACK");
        }
    }
}

/// A 16-byte digest as a bytea literal.
fn bytea(key: &[u8; 16]) -> String {
    format!("'\\x{}'::bytea", base16ct::lower::encode_string(key))
}

fn unhex16(hex: &str) -> Option<[u8; 16]> {
    let mut out = [0u8; 16];
    (hex.len() == 32)
        .then(|| base16ct::mixed::decode(hex, &mut out).ok())
        .flatten()?;
    Some(out)
}
