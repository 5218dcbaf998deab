//! Conformance checks of `VaultStore` and `AuditSink`: sealed rows round trip, batches
//! are all or none, lookups by fingerprint, rewrap streaming, replacement, counts.

use super::support::t;
use crate::audit::{AuditRecord, AuditSink};
use crate::card::{
    CardToken, FindOrInsert, Fingerprint, HeldCard, SealedCard, VaultKeyId, VaultStore,
};

/// A valid token ordered by `n` (the 24th and 25th letters carry it; the last is `A`).
fn token(n: u8) -> CardToken {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef";
    let hi = char::from(ALPHABET[usize::from(n / 32)]);
    let lo = char::from(ALPHABET[usize::from(n % 32)]);
    CardToken::parse(&format!("card_{}{hi}{lo}A", "A".repeat(23))).expect("a valid token")
}

fn key(id: &str) -> VaultKeyId {
    VaultKeyId::new(id).expect("a valid key id")
}

fn fp(id: &str, mac: [u8; 32]) -> Fingerprint {
    Fingerprint {
        key_id: key(id),
        mac,
    }
}

fn sealed(n: u8, id: &str) -> SealedCard {
    SealedCard::new(
        token(n),
        key(id),
        [n; 24],
        vec![n; 40],
        fp(id, [n; 32]),
        t(i64::from(n)),
    )
}

pub(super) fn sealed_rows_round_trip_and_batches_are_all_or_none(s: &impl VaultStore) {
    let (a, b) = (sealed(1, "k1"), sealed(2, "k1"));
    s.insert_sealed(&[a.clone(), b.clone()]).expect("insert");
    assert_eq!(s.load_sealed(&a.token).expect("load"), Some(a.clone()));
    assert_eq!(s.load_sealed(&token(200)).expect("load"), None);
    // A batch with a token already stored fails whole.
    let c = sealed(3, "k1");
    assert!(s.insert_sealed(&[c.clone(), a.clone()]).is_err());
    assert_eq!(
        s.load_sealed(&c.token).expect("load"),
        None,
        "nothing of the batch"
    );
    assert_eq!(s.count_under(&key("k1")).expect("count"), 2);
}

pub(super) fn fingerprints_find_a_card_under_any_key_and_insert_once(s: &impl VaultStore) {
    let a = sealed(4, "k1");
    s.insert_sealed(std::slice::from_ref(&a)).expect("insert");
    let miss = fp("k2", [9u8; 32]);
    let hit = a.fingerprint.clone();
    assert_eq!(
        s.find_card(&[miss.clone(), hit.clone()]).expect("find"),
        Some(HeldCard::new(a.token.clone(), hit.clone())),
        "the fingerprint (and so the key) that matched is named"
    );
    assert_eq!(
        s.find_card(std::slice::from_ref(&miss)).expect("find"),
        None
    );
    // find_or_insert: the existing token for a known card, the new one otherwise.
    let b = sealed(5, "k1");
    assert_eq!(
        s.find_or_insert(&[miss.clone(), hit.clone()], &b)
            .expect("known"),
        FindOrInsert::Found(HeldCard::new(a.token.clone(), hit))
    );
    assert_eq!(s.load_sealed(&b.token).expect("load"), None, "not inserted");
    let fresh = b.fingerprint.clone();
    assert_eq!(
        s.find_or_insert(&[fresh], &b).expect("new"),
        FindOrInsert::Inserted
    );
    assert_eq!(s.load_sealed(&b.token).expect("load"), Some(b));
}

pub(super) fn rewrap_streams_rows_not_under_a_key_and_replaces_them(s: &impl VaultStore) {
    let rows: Vec<SealedCard> = (10..20).map(|n| sealed(n, "k1")).collect();
    s.insert_sealed(&rows).expect("insert");
    s.insert_sealed(&[sealed(20, "k2")]).expect("insert");
    let mut seen = Vec::new();
    let mut after: Option<CardToken> = None;
    loop {
        let page = s
            .sealed_not_under(&key("k2"), after.as_ref(), 3)
            .expect("page");
        let Some(last) = page.last() else { break };
        after = Some(last.token.clone());
        seen.extend(page);
    }
    assert_eq!(seen, rows, "every row not under k2, in token order, once");
    let moved: Vec<SealedCard> = rows
        .iter()
        .map(|r| {
            let mut m = r.clone();
            m.key_id = key("k2");
            m.fingerprint.key_id = key("k2");
            m.ciphertext = vec![0xEE; 40];
            m
        })
        .collect();
    s.replace_sealed(&moved).expect("replace");
    assert_eq!(s.count_under(&key("k1")).expect("count"), 0);
    assert_eq!(s.count_under(&key("k2")).expect("count"), 11);
    assert_eq!(
        s.load_sealed(&moved[3].token).expect("load"),
        Some(moved[3].clone())
    );
    assert!(
        s.sealed_not_under(&key("k2"), None, 100)
            .expect("page")
            .is_empty()
    );
}

pub(super) fn the_key_generation_starts_at_zero_and_counts_bumps(s: &impl VaultStore) {
    assert_eq!(s.key_generation().expect("read"), 0);
    assert_eq!(s.bump_key_generation().expect("bump"), 1);
    assert_eq!(s.bump_key_generation().expect("bump"), 2);
    assert_eq!(
        s.key_generation().expect("read"),
        2,
        "every server reads the same"
    );
}

pub(super) fn audit_records_are_accepted(s: &impl AuditSink) {
    for i in 0..3 {
        s.record(&AuditRecord::new(
            token(u8::try_from(i).expect("small")).to_string(),
            "charge".into(),
            "conformance".into(),
            t(i),
        ))
        .expect("record");
    }
}
