//! Retention plans applied to the application's tables, and the run records.

use super::{
    Action, OptionalExtension, Planned, RetentionStore, RunReport, SqliteStore, StoreError,
    TableSpec, Timestamp, be, begin, params, to_u64,
};

impl RetentionStore for SqliteStore {
    fn resume_point(&self, run: &str, table: &TableSpec) -> Result<Option<String>, StoreError> {
        self.with(|c| {
            c.query_row(
                "SELECT last_key FROM retention_runs WHERE run = ?1 AND table_name = ?2",
                params![run, table.name()],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()
            .map(Option::flatten)
            .map_err(be("read retention run"))
        })
    }

    fn apply_batch(
        &self,
        run: &str,
        table: &TableSpec,
        batch: &[Planned],
    ) -> Result<(), StoreError> {
        // Identifiers were validated by TableSpec (letters, digits, `_`), so quoting them
        // is enough; every value is a bound parameter.
        table.check_batch(batch)?;
        let held = table.not_held_sql();
        let delete = format!(
            "DELETE FROM \"{}\" WHERE \"{}\" = ?1{held}",
            table.name(),
            table.key()
        );
        self.with(|c| {
            let tx = begin(c, "begin retention batch")?;
            tx.execute(
                "INSERT OR IGNORE INTO retention_runs (run, table_name, started_at) VALUES (?1, ?2, ?3)",
                params![run, table.name(), Timestamp::now().as_millis()],
            )
            .map_err(be("start retention run"))?;
            let (mut purged, mut stripped, mut kept) = (0i64, 0i64, 0i64);
            for p in batch {
                match &p.action {
                    Action::Purge => {
                        // A row held now (or already gone) is not deleted: counted as kept.
                        let n = tx.prepare_cached(&delete)
                            .and_then(|mut s| s.execute([&p.record.id]))
                            .map_err(be("purge record"))?;
                        if n > 0 { purged += 1 } else { kept += 1 }
                    }
                    Action::StripPii { fields } => {
                        let sets: Vec<String> = fields.iter().map(|f| format!("\"{f}\" = NULL")).collect();
                        let sql = format!("UPDATE \"{}\" SET {} WHERE \"{}\" = ?1{held}", table.name(), sets.join(", "), table.key());
                        let n = tx.prepare_cached(&sql)
                            .and_then(|mut s| s.execute([&p.record.id]))
                            .map_err(be("strip record"))?;
                        if n > 0 { stripped += 1 } else { kept += 1 }
                    }
                    _ => kept += 1,
                }
            }
            let last = batch.last().map(|p| p.record.id.as_str());
            tx.execute(
                "UPDATE retention_runs SET last_key = ?3, purged = purged + ?4, stripped = stripped + ?5,
                   kept = kept + ?6 WHERE run = ?1 AND table_name = ?2",
                params![run, table.name(), last, purged, stripped, kept],
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
        self.with(|c| {
            c.execute(
                "INSERT OR IGNORE INTO retention_runs (run, table_name, started_at) VALUES (?1, ?2, ?3)",
                params![run, table.name(), now.as_millis()],
            )
            .map_err(be("start retention run"))?;
            c.execute(
                "UPDATE retention_runs SET finished_at = coalesce(finished_at, ?3) WHERE run = ?1 AND table_name = ?2",
                params![run, table.name(), now.as_millis()],
            )
            .map_err(be("finish retention run"))?;
            c.query_row(
                "SELECT last_key, purged, stripped, kept, finished_at FROM retention_runs WHERE run = ?1 AND table_name = ?2",
                params![run, table.name()],
                |r| {
                    Ok(RunReport::new(
                        run.to_owned(),
                        table.name().to_owned(),
                        [to_u64(r.get(1)?), to_u64(r.get(2)?), to_u64(r.get(3)?)],
                        r.get(0)?,
                        r.get::<_, Option<i64>>(4)?.map(Timestamp::from_millis),
                    ))
                },
            )
            .map_err(be("read retention run"))
        })
    }
}
