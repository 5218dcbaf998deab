//! Retention plans applied to the application's tables, and the run records.

use super::{
    Action, GenericClient, PgStore, Planned, RetentionStore, RunReport, StoreError, TableSpec,
    Timestamp, be, to_u64,
};

impl RetentionStore for PgStore {
    fn resume_point(&self, run: &str, table: &TableSpec) -> Result<Option<String>, StoreError> {
        self.pool.with(|c| {
            c.query_opt(
                "SELECT last_key FROM retention_runs WHERE run = $1 AND table_name = $2",
                &[&run, &table.name()],
            )
            .map(|r| r.and_then(|r| r.get::<_, Option<String>>(0)))
            .map_err(be("read retention run"))
        })
    }

    fn apply_batch(
        &self,
        run: &str,
        table: &TableSpec,
        batch: &[Planned],
    ) -> Result<(), StoreError> {
        table.check_batch(batch)?;
        // Identifiers were validated by TableSpec (letters, digits, `_`), so quoting them
        // is enough; every value is a bound parameter. The key parameter is cast to the
        // key column's own type (casting the column instead defeats its index: one
        // sequential scan per record).
        let held = table.not_held_sql();
        self.pool.with(|c| {
            let mut tx = c.transaction().map_err(be("begin retention batch"))?;
            // Only a batch that deletes or strips needs the table (a run of kept records
            // is bookkeeping alone).
            let touches = batch.iter().any(|p| !matches!(p.action, Action::Keep { .. }));
            let key_type: String = if touches {
                tx.query_one(
                    "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
                     WHERE a.attrelid = to_regclass(quote_ident($1)) AND a.attname = $2 AND NOT a.attisdropped",
                    &[&table.name(), &table.key()],
                )
                .map_err(be("read key column type"))?
                .get(0)
            } else {
                "text".to_owned()
            };
            let key = format!("\"{}\" = CAST($1::text AS {key_type})", table.key());
            let delete = format!("DELETE FROM \"{}\" WHERE {key}{held}", table.name());
            start_run(&mut tx, run, table, Timestamp::now())?;
            let (mut purged, mut stripped, mut kept) = (0i64, 0i64, 0i64);
            for p in batch {
                match &p.action {
                    Action::Purge => {
                        // A row held now (or already gone) is not deleted: counted as kept.
                        let n = tx
                            .execute(&delete, &[&p.record.id])
                            .map_err(be("purge record"))?;
                        if n > 0 {
                            purged += 1;
                        } else {
                            kept += 1;
                        }
                    }
                    Action::StripPii { fields } => {
                        let sets: Vec<String> =
                            fields.iter().map(|f| format!("\"{f}\" = NULL")).collect();
                        let sql = format!(
                            "UPDATE \"{}\" SET {} WHERE {key}{held}",
                            table.name(),
                            sets.join(", "),
                        );
                        let n = tx
                            .execute(&sql, &[&p.record.id])
                            .map_err(be("strip record"))?;
                        if n > 0 {
                            stripped += 1;
                        } else {
                            kept += 1;
                        }
                    }
                    _ => kept += 1,
                }
            }
            let last = batch.last().map(|p| p.record.id.as_str());
            tx.execute(
                "UPDATE retention_runs SET last_key = $3, purged = purged + $4,
                   stripped = stripped + $5, kept = kept + $6 WHERE run = $1 AND table_name = $2",
                &[&run, &table.name(), &last, &purged, &stripped, &kept],
            )
            .map_err(be("record retention progress"))?;
            tx.commit().map_err(be("commit retention batch"))
        })
    }

    fn finish_run(
        &self,
        run: &str,
        table: &TableSpec,
        now: Timestamp,
    ) -> Result<RunReport, StoreError> {
        self.pool.with(|c| {
            start_run(c, run, table, now)?;
            c.execute(
                "UPDATE retention_runs SET finished_at = coalesce(finished_at, $3)
                 WHERE run = $1 AND table_name = $2",
                &[&run, &table.name(), &now.as_millis()],
            )
            .map_err(be("finish retention run"))?;
            let r = c
                .query_one(
                    "SELECT last_key, purged, stripped, kept, finished_at FROM retention_runs
                     WHERE run = $1 AND table_name = $2",
                    &[&run, &table.name()],
                )
                .map_err(be("read retention run"))?;
            Ok(RunReport::new(
                run.to_owned(),
                table.name().to_owned(),
                [to_u64(r.get(1)), to_u64(r.get(2)), to_u64(r.get(3))],
                r.get(0),
                r.get::<_, Option<i64>>(4).map(Timestamp::from_millis),
            ))
        })
    }
}

fn start_run(
    c: &mut impl GenericClient,
    run: &str,
    table: &TableSpec,
    now: Timestamp,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO retention_runs (run, table_name, started_at) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
        &[&run, &table.name(), &now.as_millis()],
    )
    .map(drop)
    .map_err(be("start retention run"))
}
