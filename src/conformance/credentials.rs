//! Conformance checks of `CredentialStore`.

use super::support::{FullStore, acct, brand, hashes, stamp, t};
use crate::persist::StoreError;
use crate::rotation::CredentialFlags;

pub(super) fn credentials_round_trip(s: &impl FullStore) {
    let [h0, ..] = hashes();
    let st = stamp();
    s.insert_credential(
        &acct("a1"),
        &[brand("shoes"), brand("boots")],
        h0,
        &st,
        t(10),
    )
    .expect("insert");
    let r = s
        .load_credential(&acct("a1"))
        .expect("load")
        .expect("present");
    assert_eq!(r.account, acct("a1"));
    assert_eq!(r.hash, *h0);
    assert_eq!(r.generation, 0);
    assert_eq!(r.set_at, t(10));
    assert_eq!(r.stamp, st);
    assert_eq!(r.flags, CredentialFlags::NONE);
    assert_eq!(
        r.brands,
        vec![brand("shoes"), brand("boots")],
        "brand order is kept"
    );
    assert!(s.load_credential(&acct("nobody")).expect("load").is_none());
    let again = s.insert_credential(&acct("a1"), &[], h0, &st, t(11));
    assert!(matches!(again, Err(StoreError::AlreadyExists)), "{again:?}");
    assert_eq!(
        s.load_credential(&acct("a1"))
            .expect("load")
            .expect("present")
            .set_at,
        t(10),
        "unchanged"
    );
}

pub(super) fn replace_hash_needs_the_current_generation(s: &impl FullStore) {
    let [h0, h1, h2] = hashes();
    s.insert_credential(&acct("a1"), &[], h0, &stamp(), t(10))
        .expect("insert");
    assert!(
        !s.replace_hash(&acct("a1"), 1, h1).expect("replace"),
        "stale generation"
    );
    assert!(!s.replace_hash(&acct("nobody"), 0, h1).expect("replace"));
    assert!(s.replace_hash(&acct("a1"), 0, h2).expect("replace"));
    let r = s
        .load_credential(&acct("a1"))
        .expect("load")
        .expect("present");
    assert_eq!(r.hash, *h2);
    assert_eq!(
        (r.generation, r.set_at),
        (0, t(10)),
        "a rehash is not a password change"
    );
}

pub(super) fn flags_are_stored(s: &impl FullStore) {
    let [h0, ..] = hashes();
    s.insert_credential(&acct("a1"), &[], h0, &stamp(), t(10))
        .expect("insert");
    let both = CredentialFlags::DISABLED.union(CredentialFlags::MUST_RESET);
    assert!(s.set_flags(&acct("a1"), both).expect("set"));
    assert_eq!(
        s.load_credential(&acct("a1"))
            .expect("load")
            .expect("present")
            .flags,
        both
    );
    assert!(!s.set_flags(&acct("nobody"), both).expect("set"));
}
