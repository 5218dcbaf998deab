//! Rate-limit state shared by every server on the database: one GCRA time per hashed key.

use super::*;

impl ThrottleStore for PgStore {
    fn update_throttle(
        &self,
        keys: &[[u8; 16]],
        now: i64,
        sweep: usize,
        update: &mut dyn FnMut(&mut [Option<i64>]),
    ) -> Result<(), StoreError> {
        // Rows locked in key order: two servers touching the same keys never deadlock.
        let mut order: Vec<usize> = (0..keys.len()).collect();
        order.sort_by_key(|&i| keys[i]);
        self.pool.with(|c| {
            let mut tx = c.transaction().map_err(be("begin throttle update"))?;
            let mut values = vec![None; keys.len()];
            for &i in &order {
                let key = &keys[i][..];
                // A row for every key first (a value at `now` means "never seen"), so the
                // lock below holds for keys that had none.
                tx.execute(
                    "INSERT INTO throttle (key, tat) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                    &[&key, &now],
                )
                .map_err(be("write throttle"))?;
                let tat: i64 = tx
                    .query_one(
                        "SELECT tat FROM throttle WHERE key = $1 FOR UPDATE",
                        &[&key],
                    )
                    .map_err(be("read throttle"))?
                    .get(0);
                values[i] = Some(tat).filter(|&t| t > now);
            }
            update(&mut values);
            for (key, value) in keys.iter().zip(&values) {
                match value {
                    Some(tat) if *tat > now => tx.execute(
                        "UPDATE throttle SET tat = $2 WHERE key = $1",
                        &[&&key[..], tat],
                    ),
                    _ => tx.execute("DELETE FROM throttle WHERE key = $1", &[&&key[..]]),
                }
                .map_err(be("write throttle"))?;
            }
            if sweep > 0 {
                tx.execute(
                    "DELETE FROM throttle WHERE key IN
                       (SELECT key FROM throttle WHERE tat <= $1 ORDER BY tat LIMIT $2
                        FOR UPDATE SKIP LOCKED)",
                    &[&now, &to_i64(sweep as u64)],
                )
                .map_err(be("sweep throttle"))?;
            }
            tx.commit().map_err(be("commit throttle update"))
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
