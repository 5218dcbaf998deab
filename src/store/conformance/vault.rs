//! Conformance checks of `VaultStore` and `AuditSink`: sealed rows round trip, batches
//! are all or none, lookups by fingerprint, rewrap streaming, replacement, counts.

use super::*;
use crate::store::{AuditRecord, AuditSink, SealedCard, VaultStore};

fn sealed(n: u8, key: &str) -> SealedCard {
    // Ordered by `n`; the store treats tokens as opaque text.
    let token = format!("card_{n:04}");
    SealedCard::new(
        token,
        key.to_owned(),
        [n; 24],
        vec![n; 40],
        key.to_owned(),
        [n; 32],
        t(i64::from(n)),
    )
}

pub(super) fn sealed_rows_round_trip_and_batches_are_all_or_none(s: &impl VaultStore) {
    let (a, b) = (sealed(1, "k1"), sealed(2, "k1"));
    s.insert_sealed(&[a.clone(), b.clone()]).expect("insert");
    assert_eq!(s.load_sealed(&a.token).expect("load"), Some(a.clone()));
    assert_eq!(s.load_sealed("card_nothing").expect("load"), None);
    // A batch with a token already stored fails whole.
    let c = sealed(3, "k1");
    assert!(s.insert_sealed(&[c.clone(), a.clone()]).is_err());
    assert_eq!(
        s.load_sealed(&c.token).expect("load"),
        None,
        "nothing of the batch"
    );
    assert_eq!(s.count_under("k1").expect("count"), 2);
}

pub(super) fn fingerprints_find_a_card_under_any_key_and_insert_once(s: &impl VaultStore) {
    let a = sealed(4, "k1");
    s.insert_sealed(std::slice::from_ref(&a)).expect("insert");
    let miss = ("k2".to_owned(), [9u8; 32]);
    let hit = ("k1".to_owned(), a.fingerprint);
    assert_eq!(
        s.find_card(&[miss.clone(), hit.clone()]).expect("find"),
        Some((a.token.clone(), "k1".to_owned())),
        "the key that matched is named"
    );
    assert_eq!(
        s.find_card(std::slice::from_ref(&miss)).expect("find"),
        None
    );
    // find_or_insert: the existing token for a known card, the new one otherwise.
    let b = sealed(5, "k1");
    assert_eq!(
        s.find_or_insert(&[miss.clone(), hit], &b).expect("known"),
        a.token
    );
    assert_eq!(s.load_sealed(&b.token).expect("load"), None, "not inserted");
    let fresh = ("k1".to_owned(), b.fingerprint);
    assert_eq!(s.find_or_insert(&[fresh], &b).expect("new"), b.token);
    assert_eq!(s.load_sealed(&b.token).expect("load"), Some(b));
}

pub(super) fn rewrap_streams_rows_not_under_a_key_and_replaces_them(s: &impl VaultStore) {
    let rows: Vec<SealedCard> = (10..20).map(|n| sealed(n, "k1")).collect();
    s.insert_sealed(&rows).expect("insert");
    s.insert_sealed(&[sealed(20, "k2")]).expect("insert");
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = s.sealed_not_under("k2", after.as_deref(), 3).expect("page");
        let Some(last) = page.last() else { break };
        after = Some(last.token.clone());
        seen.extend(page);
    }
    assert_eq!(seen, rows, "every row not under k2, in token order, once");
    let moved: Vec<SealedCard> = rows
        .iter()
        .map(|r| {
            let mut m = r.clone();
            m.key_id = "k2".to_owned();
            m.fingerprint_key = "k2".to_owned();
            m.ciphertext = vec![0xEE; 40];
            m
        })
        .collect();
    s.replace_sealed(&moved).expect("replace");
    assert_eq!(s.count_under("k1").expect("count"), 0);
    assert_eq!(s.count_under("k2").expect("count"), 11);
    assert_eq!(
        s.load_sealed(&moved[3].token).expect("load"),
        Some(moved[3].clone())
    );
    assert!(
        s.sealed_not_under("k2", None, 100)
            .expect("page")
            .is_empty()
    );
}

pub(super) fn audit_records_are_accepted(s: &impl AuditSink) {
    for i in 0..3 {
        s.record(&AuditRecord::new(
            format!("card_{i}"),
            "charge".into(),
            "conformance".into(),
            t(i),
        ))
        .expect("record");
    }
}
