//! The file log's tests.

use super::files::checkpoint_path;
use super::line::{hash, line_for};
use super::walk::walk_checked;
use super::*;
use crate::audit::chain::GENESIS;
use std::fs::OpenOptions;

#[test]
fn every_kind_reads_back_from_a_keyed_log_and_a_kind_edited_away_is_caught() {
    use super::super::{AuditBreak, AuditKind};
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("kinds.log");
    let key = || AuditKey::from_bytes([3; 32]);
    let log = AuditLog::open_keyed(&path, key()).expect("open");
    let kinds = AuditKind::every_one();
    for kind in &kinds {
        log.record(&rec("card_x", "ops").with_kind(kind.clone()))
            .expect("append");
    }
    let mut read = Vec::new();
    let file = File::open(&path).expect("open");
    walk_checked(&file, &path, Some(&key()), &[], |r| read.push(r.kind)).expect("chain");
    assert_eq!(read, kinds);
    // The operator record made to look like a card reveal: its MAC no longer holds.
    let text = std::fs::read_to_string(&path).expect("read");
    std::fs::write(&path, text.replacen("\toperator#charge\t", "\tcharge\t", 1)).expect("tamper");
    assert!(matches!(
        AuditLog::verify_keyed(&path, &key(), &[]),
        Err(AuditError::Tampered(AuditBreak::Edited { record: 2 }))
    ));
}

#[test]
fn a_log_written_by_0_1_reads_back_and_grows_with_outcomes() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("old.log");
    // A line exactly as 0.1 wrote it: no outcome.
    let old = format!(
        "1700000000000\tcard_x\tcharge\tcheckout\t{}\n",
        "0".repeat(64)
    );
    std::fs::write(&path, &old).expect("write");
    let log = AuditLog::open(&path).expect("open a 0.1 log");
    log.record(&rec("card_y", "intern").with_outcome(super::super::AuditOutcome::Refused))
        .expect("append");
    let back = AuditLog::verify(&path).expect("chain");
    let outcomes: Vec<_> = back
        .iter()
        .map(|r| (r.purpose.as_str(), r.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("charge", super::super::AuditOutcome::Revealed),
            ("charge", super::super::AuditOutcome::Refused)
        ]
    );
    assert!(
        std::fs::read_to_string(&path)
            .expect("read")
            .contains("\tcharge!refused\t")
    );
}

fn rec(token: &str, caller: &str) -> AuditRecord {
    AuditRecord::new(
        token.into(),
        "charge".into(),
        caller.into(),
        Timestamp::from_millis(1_700_000_000_000),
    )
}

#[test]
fn records_chain_across_reopen_and_edits_are_caught() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("audit.log");
    let log = AuditLog::open(&path).expect("open");
    log.record(&rec("card_a", "svc")).expect("write");
    log.record(&rec("card_b", "evil\tcaller\nforged"))
        .expect("write");
    drop(log);
    let log = AuditLog::open(&path).expect("reopen continues the chain");
    log.record(&rec("card_c", "svc")).expect("write");
    let back = AuditLog::verify(&path).expect("intact");
    assert_eq!(back.len(), 3);
    assert_eq!(
        back[1].caller, "evil?caller?forged",
        "control characters cannot forge a line"
    );
    assert_eq!(back[2].token, "card_c");

    let text = std::fs::read_to_string(&path).expect("read");
    for tampered in [
        text.replacen("card_a", "card_z", 1), // an edit
        text.lines().skip(1).map(|l| format!("{l}\n")).collect(), // the first line removed
        format!(
            "{}{}",
            text.lines()
                .next()
                .map(|l| format!("{l}\n"))
                .unwrap_or_default(),
            text
        ), // a line repeated
    ] {
        std::fs::write(&path, &tampered).expect("write");
        assert!(matches!(
            AuditLog::verify(&path),
            Err(AuditError::Corrupt { .. })
        ));
        assert!(
            AuditLog::open(&path).is_err(),
            "a broken log is not appended to"
        );
    }
}
#[test]
fn two_writers_on_one_file_keep_one_chain() {
    // Each `open` used to keep its own head in memory: two writers forked the chain
    // and the next `open` refused the file, so the vault could not start.
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("audit.log");
    let logs = [
        AuditLog::open(&path).expect("first writer"),
        AuditLog::open(&path).expect("second writer (another process, as far as the file knows)"),
    ];
    std::thread::scope(|scope| {
        for (w, log) in logs.iter().enumerate() {
            for t in 0..3 {
                scope.spawn(move || {
                    for i in 0..150 {
                        log.record(&rec(&format!("card_{w}_{t}_{i}"), "svc"))
                            .expect("append");
                    }
                });
            }
        }
    });
    let back = AuditLog::verify(&path).expect("one unbroken chain");
    assert_eq!(back.len(), 2 * 3 * 150);
    drop(logs);
    let reopened = AuditLog::open(&path).expect("the vault starts");
    reopened.record(&rec("card_last", "svc")).expect("append");
    assert_eq!(AuditLog::verify(&path).expect("intact").len(), 901);
}

#[test]
fn a_torn_last_line_is_a_typed_error_and_repair_records_itself() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("audit.log");
    let log = AuditLog::open(&path).expect("open");
    log.record(&rec("card_a", "svc")).expect("write");
    log.record(&rec("card_b", "svc")).expect("write");
    // A crash (or a full disk) in the middle of the third line.
    let mut f = OpenOptions::new().append(true).open(&path).expect("raw");
    f.write_all(b"1700000000000\tcard_c\tch")
        .expect("torn write");
    drop(f);
    let torn =
        |r: Result<(), AuditError>| matches!(r, Err(AuditError::TornTail { torn_bytes: 23, .. }));
    assert!(torn(AuditLog::verify(&path).map(drop)), "verify reports it");
    assert!(torn(AuditLog::open(&path).map(drop)), "open reports it");
    assert!(
        torn(log.record(&rec("card_d", "svc"))),
        "a writer does not append after a torn line"
    );
    let repair = AuditLog::repair(&path).expect("repair");
    assert_eq!(repair.dropped_bytes, 23);
    assert_eq!(repair.records, 3);
    let back = AuditLog::verify(&path).expect("intact again");
    assert_eq!(back.len(), 3);
    assert_eq!(back[2].purpose, "audit-log-repair");
    assert!(back[2].caller.contains("23 bytes"), "{}", back[2].caller);
    // The handle that was open before the repair carries on, from the new head.
    log.record(&rec("card_e", "svc")).expect("write");
    assert_eq!(AuditLog::verify(&path).expect("intact").len(), 4);
    assert_eq!(
        AuditLog::repair(&path).expect("nothing to do"),
        AuditRepair {
            dropped_bytes: 0,
            records: 4
        }
    );
}

fn key() -> AuditKey {
    AuditKey::from_bytes([42; 32])
}

fn tampered(r: Result<AuditVerified, AuditError>) -> Option<super::super::AuditBreak> {
    match r {
        Err(AuditError::Tampered(b)) => Some(b),
        Ok(_) => None,
        Err(other) => panic!("not a tamper report: {other}"),
    }
}

#[test]
fn a_keyed_log_names_edits_reorders_removals_and_truncation() {
    use super::super::AuditBreak;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("audit.log");
    let log = AuditLog::open_keyed(&path, key())
        .expect("open")
        .checkpoint_every(4);
    for i in 0..10 {
        log.record(&rec(&format!("card_{i}"), "svc"))
            .expect("write");
    }
    let shipped = log.checkpoint().expect("on demand");
    drop(log);
    assert_eq!(shipped.records, 10);
    let local = AuditLog::checkpoints(&path).expect("local checkpoints");
    assert_eq!(
        local.iter().map(|c| c.records).collect::<Vec<_>>(),
        [4, 8, 10],
        "every 4 records and on demand"
    );
    let ok = AuditLog::verify_keyed(&path, &key(), &[shipped]).expect("intact");
    assert_eq!((ok.records, ok.unkeyed, ok.checked_up_to), (10, 0, 10));
    assert!(matches!(
        AuditLog::verify(&path),
        Err(AuditError::KeyRequired)
    ));
    assert!(matches!(
        AuditLog::open(&path),
        Err(AuditError::KeyRequired)
    ));

    let text = std::fs::read_to_string(&path).expect("read");
    let lines: Vec<String> = text.lines().map(|l| format!("{l}\n")).collect();
    let cps = std::fs::read_to_string(checkpoint_path(&path)).expect("read");
    let check = |log: String, cps: &str| {
        std::fs::write(&path, log).expect("write");
        std::fs::write(checkpoint_path(&path), cps).expect("write");
        tampered(AuditLog::verify_keyed(&path, &key(), &[shipped]))
    };
    // The last record edited: caught although no record follows it.
    let mut edited = lines.clone();
    edited[9] = edited[9].replacen("card_9", "card_x", 1);
    assert_eq!(
        check(edited.concat(), &cps),
        Some(AuditBreak::Edited { record: 10 })
    );
    // A record's time changed (the first field): an edit.
    let mut retimed = lines.clone();
    let (at, rest) = retimed[4].split_once('\t').expect("fields");
    let later: i64 = at.parse::<i64>().expect("time") + 1;
    retimed[4] = format!("{later}\t{rest}");
    assert_eq!(
        check(retimed.concat(), &cps),
        Some(AuditBreak::Edited { record: 5 })
    );
    let mut swapped = lines.clone();
    swapped.swap(2, 3);
    assert_eq!(
        check(swapped.concat(), &cps),
        Some(AuditBreak::OutOfOrder {
            record: 3,
            sequence: 4
        })
    );
    let mut removed = lines.clone();
    removed.remove(5);
    assert_eq!(
        check(removed.concat(), &cps),
        Some(AuditBreak::OutOfOrder {
            record: 6,
            sequence: 7
        })
    );
    // The tail cut off, and the local checkpoints with it: the shipped one tells.
    assert_eq!(
        check(
            lines[..7].concat(),
            &cps.lines()
                .next()
                .map(|l| format!("{l}\n"))
                .unwrap_or_default()
        ),
        Some(AuditBreak::Truncated {
            checkpoint: 10,
            records: 7
        })
    );
    // The whole file rewritten as a 0.1 chain that anyone can compute.
    let mut prev = GENESIS;
    let downgraded: String = (0..10)
        .map(|i| {
            let (line, head) = line_for(None, &rec(&format!("card_{i}"), "svc"), &prev, 0);
            prev = head;
            line
        })
        .collect();
    assert_eq!(
        check(downgraded, ""),
        Some(AuditBreak::Rewritten { checkpoint: 10 })
    );
    // Intact again.
    assert_eq!(check(lines.concat(), &cps), None);
}

#[test]
fn a_0_1_log_goes_on_keyed_and_two_keyed_writers_share_one_chain() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("audit.log");
    let old = AuditLog::open(&path).expect("0.1 writer");
    old.record(&rec("card_old1", "svc")).expect("write");
    old.record(&rec("card_old2", "svc")).expect("write");
    // Not taken over by merely opening it keyed: that needs the explicit migration.
    assert!(matches!(
        AuditLog::open_keyed(&path, key()),
        Err(AuditError::Tampered(super::super::AuditBreak::Unmigrated {
            records: 2
        }))
    ));
    assert_eq!(
        AuditLog::migrate_to_keyed(&path, &key()).expect("migrate"),
        2
    );
    assert_eq!(
        AuditLog::migrate_to_keyed(&path, &key()).expect("once"),
        0,
        "a keyed log has nothing to migrate"
    );
    let logs = [
        AuditLog::open_keyed(&path, key())
            .expect("first")
            .checkpoint_every(50),
        AuditLog::open_keyed(&path, key())
            .expect("second")
            .checkpoint_every(50),
    ];
    std::thread::scope(|scope| {
        for (w, log) in logs.iter().enumerate() {
            scope.spawn(move || {
                for i in 0..100 {
                    log.record(&rec(&format!("card_{w}_{i}"), "svc"))
                        .expect("append");
                }
            });
        }
    });
    let ok = AuditLog::verify_keyed(&path, &key(), &[]).expect("one chain");
    assert_eq!((ok.records, ok.unkeyed), (203, 2));
    assert_eq!(ok.checkpoints, 4, "at 50, 100, 150 and 200");
    assert!(
        matches!(
            old.record(&rec("card_old3", "svc")),
            Err(AuditError::KeyRequired)
        ),
        "a 0.1 writer does not append to a keyed log"
    );
    assert!(
        tampered(AuditLog::verify_keyed(
            &path,
            &AuditKey::from_bytes([1; 32]),
            &[]
        ))
        .is_some(),
        "another key does not verify it"
    );
}

#[test]
fn a_writer_refuses_to_extend_a_log_cut_short_or_downgraded_under_it() {
    use super::super::AuditBreak;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("audit.log");
    let log = AuditLog::open_keyed(&path, key())
        .expect("open")
        .checkpoint_every(0);
    for i in 0..4 {
        log.record(&rec(&format!("card_{i}"), "svc"))
            .expect("write");
    }
    let text = std::fs::read_to_string(&path).expect("read");
    // The last two records cut off while the vault runs.
    let kept: String = text.lines().take(2).map(|l| format!("{l}\n")).collect();
    std::fs::write(&path, &kept).expect("cut");
    assert!(
        matches!(
            log.record(&rec("card_4", "svc")),
            Err(AuditError::Corrupt { .. })
        ),
        "no record appended after the cut"
    );
    // A line in the 0.1 format appended after keyed ones (by an old writer).
    std::fs::write(&path, &text).expect("restore");
    let log = AuditLog::open_keyed(&path, key()).expect("reopen");
    // An old writer links it to the SHA-256 of the last line, as 0.1 did.
    let last = format!("{}\n", text.lines().last().expect("a line"));
    let (plain, _) = line_for(None, &rec("card_old", "svc"), &hash(last.as_bytes()), 0);
    OpenOptions::new()
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(plain.as_bytes()))
        .expect("append");
    assert!(matches!(
        log.record(&rec("card_5", "svc")),
        Err(AuditError::Tampered(AuditBreak::Downgraded { record: 5 }))
    ));
}

#[test]
fn a_torn_keyed_log_is_repaired_with_its_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("audit.log");
    let log = AuditLog::open_keyed(&path, key()).expect("open");
    log.record(&rec("card_a", "svc")).expect("write");
    let mut f = OpenOptions::new().append(true).open(&path).expect("raw");
    f.write_all(b"1700000000000\tcard_b").expect("torn write");
    drop(f);
    assert!(matches!(
        AuditLog::repair(&path),
        Err(AuditError::KeyRequired)
    ));
    let repair = AuditLog::repair_keyed(&path, &key()).expect("repair");
    assert_eq!((repair.dropped_bytes, repair.records), (20, 2));
    log.record(&rec("card_c", "svc"))
        .expect("the open handle carries on");
    assert_eq!(
        AuditLog::verify_keyed(&path, &key(), &[])
            .expect("intact")
            .records,
        3
    );
}

#[cfg(unix)]
#[test]
fn the_log_is_created_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("audit.log");
    drop(AuditLog::open(&path).expect("open"));
    let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}
#[test]
fn a_keyed_log_replaced_by_a_forged_unkeyed_one_is_refused() {
    use super::super::AuditBreak;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("audit.log");
    let log = AuditLog::open_keyed(&path, key()).expect("open");
    for i in 0..5 {
        log.record(&rec(&format!("card_{i}"), "svc"))
            .expect("write");
    }
    drop(log);
    // Someone who can write the log, not read the key: a made-up 0.1 chain in its
    // place, and the checkpoints file gone.
    let mut prev = GENESIS;
    let forged: String = (0..3)
        .map(|i| {
            let (line, head) = line_for(None, &rec(&format!("made_up_{i}"), "svc"), &prev, 0);
            prev = head;
            line
        })
        .collect();
    std::fs::write(&path, &forged).expect("forge");
    // While the keyed log's checkpoints are there, no migration vouches for it.
    let log = AuditLog::open_keyed(&path, key());
    assert!(log.is_err());
    let cp = key().checkpoint(5, [0; 32], Timestamp::from_millis(1));
    std::fs::write(checkpoint_path(&path), format!("{cp}\n")).expect("checkpoint");
    assert!(matches!(
        AuditLog::migrate_to_keyed(&path, &key()),
        Err(AuditError::Tampered(AuditBreak::Unmigrated { records: 3 }))
    ));
    let _ = std::fs::remove_file(checkpoint_path(&path));
    let unmigrated = |r: Result<AuditVerified, AuditError>| {
        matches!(
            r,
            Err(AuditError::Tampered(AuditBreak::Unmigrated { records: 3 }))
        )
    };
    assert!(unmigrated(AuditLog::verify_keyed(&path, &key(), &[])));
    assert!(matches!(
        AuditLog::open_keyed(&path, key()),
        Err(AuditError::Tampered(AuditBreak::Unmigrated { records: 3 }))
    ));
}

#[test]
fn an_anchored_log_emptied_replaced_or_cut_with_its_checkpoints_is_refused() {
    use super::super::AuditBreak;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("audit.log");
    let anchor = dir.path().join("keys.audit-anchor");
    let log = AuditLog::open_keyed_anchored(&path, key(), &anchor)
        .expect("open")
        .checkpoint_every(4);
    for i in 0..10 {
        log.record(&rec(&format!("card_{i}"), "svc"))
            .expect("write");
    }
    drop(log);
    let anchored = AuditLog::anchor(&anchor).expect("anchor");
    assert_eq!(
        anchored.iter().map(|c| c.records).collect::<Vec<_>>(),
        [1, 8],
        "the first record and the latest checkpoint"
    );
    let intact = std::fs::read(&path).expect("read");
    let reopen = || AuditLog::open_keyed_anchored(&path, key(), &anchor).map(drop);
    reopen().expect("intact");
    let broke = |r: Result<(), AuditError>| match r {
        Err(AuditError::Tampered(b)) => Some(b),
        other => panic!("not a tamper report: {other:?}"),
    };
    // Emptied (and its checkpoints gone): the anchor still counts 8.
    std::fs::write(&path, b"").expect("empty");
    let _ = std::fs::remove_file(checkpoint_path(&path));
    assert_eq!(
        broke(reopen()),
        Some(AuditBreak::Truncated {
            checkpoint: 8,
            records: 0
        })
    );
    // Cut to 6 records with the checkpoints: still short of the anchor.
    let lines: Vec<&[u8]> = intact.split_inclusive(|&b| b == b'\n').collect();
    std::fs::write(&path, lines[..6].concat()).expect("cut");
    assert_eq!(
        broke(reopen()),
        Some(AuditBreak::Truncated {
            checkpoint: 8,
            records: 6
        })
    );
    // Replaced whole by another keyed trail (an old copy of another log under the
    // same key): its first record is not the anchored one.
    let other = dir.path().join("other.log");
    let o = AuditLog::open_keyed(&other, key()).expect("other");
    for i in 0..10 {
        o.record(&rec(&format!("other_{i}"), "svc")).expect("write");
    }
    std::fs::copy(&other, &path).expect("replace");
    assert_eq!(
        broke(reopen()),
        Some(AuditBreak::Rewritten { checkpoint: 1 })
    );
    // Put back: fine; what came after the anchor's checkpoint (records 9 and 10) only
    // a shipped checkpoint protects.
    std::fs::write(&path, &intact).expect("restore");
    reopen().expect("intact again");
    std::fs::write(&path, lines[..9].concat()).expect("cut after the anchor");
    reopen().expect("a cut past the anchor's checkpoint is not seen here");
    assert!(
        AuditLog::verify_keyed(&path, &key(), &anchored).is_ok(),
        "the anchor's checkpoints verify as shipped ones"
    );
}

#[test]
fn a_torn_0_1_log_is_repaired_unkeyed_before_its_migration() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("audit.log");
    let old = AuditLog::open(&path).expect("0.1 writer");
    old.record(&rec("card_old", "svc")).expect("write");
    drop(old);
    let mut f = OpenOptions::new().append(true).open(&path).expect("open");
    f.write_all(b"1700000000000\tcard_x\tcha").expect("torn");
    drop(f);
    // A keyed repair record would take the 0.1 line over without a migration.
    assert!(matches!(
        AuditLog::repair_keyed(&path, &key()),
        Err(AuditError::MigrationRequired)
    ));
    AuditLog::repair(&path).expect("repaired unkeyed");
    assert_eq!(
        AuditLog::migrate_to_keyed(&path, &key()).expect("migrate"),
        2
    );
    assert_eq!(
        AuditLog::verify_keyed(&path, &key(), &[])
            .expect("keyed")
            .records,
        3
    );
}
