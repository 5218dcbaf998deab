//! Rate-limit state shared by every process on the file: one GCRA time per hashed key.

use super::{
    OptionalExtension, SqliteStore, StoreError, ThrottleStore, be, begin, params, to_i64, to_u64,
};

impl ThrottleStore for SqliteStore {
    fn update_throttle(
        &self,
        keys: &[[u8; 16]],
        now: i64,
        sweep: usize,
        update: &mut dyn FnMut(&mut [Option<i64>]),
    ) -> Result<(), StoreError> {
        self.with(|c| {
            // IMMEDIATE: the write lock first, so two processes never read the same
            // value and both count from it.
            let tx = begin(c, "begin throttle update")?;
            let mut values = Vec::with_capacity(keys.len());
            for key in keys {
                let tat: Option<i64> = tx
                    .prepare_cached("SELECT tat FROM throttle WHERE key = ?1")
                    .and_then(|mut s| s.query_row([&key[..]], |r| r.get(0)).optional())
                    .map_err(be("read throttle"))?;
                values.push(tat.filter(|&t| t > now));
            }
            update(&mut values);
            if sweep > 0 {
                tx.prepare_cached(
                    "DELETE FROM throttle WHERE key IN
                       (SELECT key FROM throttle WHERE tat <= ?1 ORDER BY tat LIMIT ?2)",
                )
                .and_then(|mut s| s.execute(params![now, to_i64(sweep as u64)]))
                .map_err(be("sweep throttle"))?;
            }
            for (key, value) in keys.iter().zip(&values) {
                match value {
                    Some(tat) if *tat > now => tx
                        .prepare_cached(
                            "INSERT INTO throttle (key, tat) VALUES (?1, ?2)
                             ON CONFLICT (key) DO UPDATE SET tat = excluded.tat",
                        )
                        .and_then(|mut s| s.execute(params![&key[..], tat])),
                    _ => tx
                        .prepare_cached("DELETE FROM throttle WHERE key = ?1")
                        .and_then(|mut s| s.execute([&key[..]])),
                }
                .map_err(be("write throttle"))?;
            }
            tx.commit().map_err(be("commit throttle update"))
        })
    }

    fn throttle_rows(&self) -> Result<u64, StoreError> {
        self.with(|c| {
            c.query_row("SELECT count(*) FROM throttle", [], |r| r.get::<_, i64>(0))
                .map(to_u64)
                .map_err(be("count throttle rows"))
        })
    }
}
