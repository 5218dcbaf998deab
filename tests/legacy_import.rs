//! Importing the hashes old platforms export: known answers made by the real
//! implementations (`tests/data/legacy/make_vectors.py`: passlib, pyca bcrypt, hashlib
//! with ASP.NET's and Magento's layouts), each checked with the right and a wrong password.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check panics here

use shopsafe::password::{Hasher, LegacyHash, Params, Password, PasswordHash, Verification};

const VECTORS: &str = include_str!("data/legacy/vectors.tsv");

/// Every format `make_vectors.py` writes.
const IMPORTED: &[&str] = &[
    "django-pbkdf2-sha256",
    "django-pbkdf2-sha1",
    "phpass-P",
    "phpass-H",
    "aspnet-v2",
    "aspnet-v3-sha256",
    "aspnet-v3-sha512",
    "aspnet-v3-sha1",
    "magento",
    "bcrypt-2b",
    "bcrypt-2y",
    "bcrypt-2a",
    "wordpress-bcrypt",
    "md5-crypt",
    "sha256-crypt",
    "sha512-crypt",
];

fn vectors() -> Vec<(&'static str, &'static str, &'static str)> {
    VECTORS
        .lines()
        .map(|l| {
            let mut f = l.split('\t');
            (f.next().unwrap(), f.next().unwrap(), f.next().unwrap())
        })
        .collect()
}

fn hasher() -> Hasher {
    Hasher::new(Params::insecure_for_tests(64, 1, 1).expect("test params"))
}

#[test]
fn every_imported_format_verifies_the_right_password_only_and_upgrades() {
    let hasher = hasher();
    let mut seen = std::collections::BTreeSet::new();
    for (format, password, stored) in vectors() {
        if !IMPORTED.contains(&format) {
            continue;
        }
        seen.insert(format);
        let legacy = LegacyHash::parse(stored).unwrap_or_else(|e| panic!("{format}: {e}"));
        let wrapped = hasher.wrap_legacy(&legacy).expect("wrap");
        assert!(wrapped.is_legacy());
        // Through the stored text, as a database would keep it.
        let text = wrapped.to_phc_string();
        assert!(text.starts_with("$argon2id-onion$"), "{text}");
        let reread =
            PasswordHash::parse(&text).unwrap_or_else(|e| panic!("{format}: {e} in {text}"));
        assert_eq!(reread.to_phc_string(), text);
        let Verification::Match {
            rehash: Some(plain),
        } = hasher
            .verify(&Password::new(password), &reread)
            .expect("verify")
        else {
            panic!("{format}: the right password did not match");
        };
        assert!(!plain.is_legacy());
        assert_eq!(
            hasher
                .verify(&Password::new(password), &plain)
                .expect("verify"),
            Verification::Match { rehash: None },
            "{format}: the upgraded hash needs no second rehash"
        );
        assert_eq!(
            hasher
                .verify(&Password::new(format!("{password}!")), &reread)
                .expect("verify"),
            Verification::Mismatch,
            "{format}"
        );
    }
    assert_eq!(
        seen.len(),
        IMPORTED.len(),
        "every imported format has vectors"
    );
}

#[test]
fn ten_thousand_mixed_rows_wrap_in_bulk_then_each_logs_in_once() {
    let hasher = hasher();
    let rows: Vec<(usize, &str, &str)> = vectors()
        .into_iter()
        .filter(|(f, _, _)| IMPORTED.contains(f))
        .cycle()
        .take(10_000)
        .enumerate()
        .map(|(i, (_, pw, stored))| (i, pw, stored))
        .collect();
    let mut wrapped: Vec<Option<PasswordHash>> = vec![None; rows.len()];
    let summary = hasher.upgrade_legacy(
        rows.iter()
            .map(|(i, _, s)| (*i, LegacyHash::parse(s).expect("parse"))),
        2,
        |i, res| wrapped[i] = Some(res.expect("wrap")),
    );
    assert_eq!((summary.wrapped, summary.failed), (10_000, 0));
    let expected = rows.iter().fold(
        std::collections::BTreeMap::<&str, u64>::new(),
        |mut m, (_, _, s)| {
            *m.entry(LegacyHash::parse(s).expect("parse").scheme())
                .or_default() += 1;
            m
        },
    );
    assert_eq!(summary.by_scheme, expected);
    assert_eq!(summary.by_scheme.len(), 10, "{:?}", summary.by_scheme);
    for ((_, password, _), stored) in rows.iter().zip(&wrapped) {
        let stored = stored.as_ref().expect("every row wrapped");
        let Verification::Match {
            rehash: Some(plain),
        } = hasher
            .verify(&Password::new(*password), stored)
            .expect("login")
        else {
            panic!("first login must match and upgrade");
        };
        assert_eq!(
            hasher
                .verify(&Password::new(*password), &plain)
                .expect("login"),
            Verification::Match { rehash: None }
        );
    }
}
