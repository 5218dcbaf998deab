//! Conformance checks of `minimize::RetentionStore` that need no table of the
//! application's: a run's bookkeeping (resume point, counts, finish) over records it
//! keeps, and refusals of batches that would purge a held record or strip a field the
//! table spec does not declare.

use super::support::t;
use crate::minimize::{
    Action, Category, KeepReason, Planned, RecordMeta, RetentionStore, TableSpec,
};
use crate::persist::StoreError;

fn kept(id: &str) -> Planned {
    Planned::new(
        RecordMeta::new(id, Category::new("profiles").expect("category"), t(1)),
        Action::Keep {
            reason: KeepReason::WithinRetention,
        },
    )
}

pub(super) fn runs_resume_count_and_finish(s: &impl RetentionStore) {
    let table = TableSpec::new("conformance_profiles", "id", &["name"]).expect("spec");
    assert_eq!(s.resume_point("r1", &table).expect("resume"), None);
    s.apply_batch("r1", &table, &[kept("a1"), kept("a2")])
        .expect("batch");
    assert_eq!(
        s.resume_point("r1", &table).expect("resume").as_deref(),
        Some("a2")
    );
    s.apply_batch("r1", &table, &[kept("a3")]).expect("batch");
    let report = s.finish_run("r1", &table, t(100)).expect("finish");
    assert_eq!((report.purged, report.stripped, report.kept), (0, 0, 3));
    assert_eq!(report.last_key.as_deref(), Some("a3"));
    assert_eq!(report.finished_at, Some(t(100)));
    // Finishing again keeps the first finish time; another run starts afresh.
    let again = s.finish_run("r1", &table, t(200)).expect("finish");
    assert_eq!(again.finished_at, Some(t(100)));
    assert_eq!(s.resume_point("r2", &table).expect("resume"), None);
}

pub(super) fn batches_that_would_touch_held_records_or_undeclared_fields_are_refused(
    s: &impl RetentionStore,
) {
    let table = TableSpec::new("conformance_profiles", "id", &["name"]).expect("spec");
    let held = Planned::new(
        RecordMeta::new("h1", Category::new("profiles").expect("category"), t(1)).legal_hold(true),
        Action::Purge,
    );
    let undeclared = Planned::new(
        RecordMeta::new("h2", Category::new("profiles").expect("category"), t(1)),
        Action::StripPii {
            fields: vec!["total_cents".into()],
        },
    );
    for bad in [held, undeclared] {
        let err = s.apply_batch("r3", &table, &[bad]).expect_err("refused");
        assert!(matches!(err, StoreError::RetentionRefused(_)), "{err:?}");
    }
    assert_eq!(
        s.resume_point("r3", &table).expect("resume"),
        None,
        "nothing recorded"
    );
}
