//! The `password` module through its public API, with cheap test-only parameters.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check panics here

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use shopsafe::password::{
    Error, Hasher, KeyId, LegacyHash, Params, Password, PasswordHash, Pepper, PepperKeyring,
    SaltPosition, Verification,
};

fn weak() -> Params {
    Params::insecure_for_tests(64, 1, 1).expect("valid test params")
}

fn stronger() -> Params {
    Params::insecure_for_tests(128, 2, 1).expect("valid test params")
}

fn hasher(params: Params) -> Hasher {
    Hasher::new(params)
}

fn ring(ids: &[(&str, u8)]) -> PepperKeyring {
    let key = |(id, byte): (&str, u8)| {
        (
            KeyId::new(id).expect("valid id"),
            Pepper::new(vec![byte; 32]).expect("32 bytes"),
        )
    };
    let mut iter = ids.iter().copied().map(key);
    let (id, pepper) = iter.next().expect("at least one key");
    let mut ring = PepperKeyring::new(id, pepper);
    for (id, pepper) in iter {
        ring.rotate(id, pepper).expect("distinct ids");
    }
    ring
}

fn peppered(params: Params, keys: &[(&str, u8)]) -> Hasher {
    Hasher::builder()
        .params(params)
        .pepper(ring(keys))
        .build()
        .expect("valid hasher")
}

fn pw(s: &str) -> Password {
    Password::new(s)
}

#[test]
fn hash_then_verify_round_trips_through_the_phc_string() {
    let h = hasher(weak());
    let stored = h.hash(&pw("a long passphrase for the shop")).expect("hash");
    let parsed = PasswordHash::parse(&stored.to_phc_string()).expect("own output parses");
    assert_eq!(parsed, stored);
    assert_eq!(
        h.verify(&pw("a long passphrase for the shop"), &parsed)
            .expect("verify"),
        Verification::Match { rehash: None }
    );
    assert_eq!(
        h.verify(&pw("a long passphrase for the shoP"), &parsed)
            .expect("verify"),
        Verification::Mismatch
    );
}

#[test]
fn same_password_gets_a_fresh_salt_each_time() {
    let h = hasher(weak());
    let a = h
        .hash(&pw("same password here"))
        .expect("hash")
        .to_phc_string();
    let b = h
        .hash(&pw("same password here"))
        .expect("hash")
        .to_phc_string();
    assert_ne!(a, b);
}

#[test]
fn normalized_forms_verify_against_each_other() {
    let h = hasher(weak());
    let stored = h
        .hash(&pw("caf\u{e9} cr\u{e8}me br\u{fb}l\u{e9}e"))
        .expect("hash");
    let typed = pw("cafe\u{301} cre\u{300}me bru\u{302}le\u{301}e");
    assert!(h.verify(&typed, &stored).expect("verify").is_match());
}

#[test]
fn weaker_stored_params_are_upgraded_but_stronger_ones_are_never_downgraded() {
    let old = hasher(weak()).hash(&pw("upgrade me please")).expect("hash");
    let current = hasher(stronger());
    assert!(current.needs_rehash(&old));
    match current
        .verify(&pw("upgrade me please"), &old)
        .expect("verify")
    {
        Verification::Match { rehash: Some(new) } => {
            assert_eq!(new.params(), stronger());
            assert!(
                current
                    .verify(&pw("upgrade me please"), &new)
                    .expect("verify")
                    == Verification::Match { rehash: None }
            );
        }
        other => panic!("expected a rehash, got {other:?}"),
    }
    // A wrong password never yields a rehash.
    assert_eq!(
        current.verify(&pw("wrong"), &old).expect("verify"),
        Verification::Mismatch
    );

    let strong = hasher(stronger())
        .hash(&pw("keep me as I am"))
        .expect("hash");
    let lowered = hasher(weak());
    assert!(!lowered.needs_rehash(&strong));
    assert_eq!(
        lowered
            .verify(&pw("keep me as I am"), &strong)
            .expect("verify"),
        Verification::Match { rehash: None }
    );
}

#[test]
fn pepper_key_rotation_asks_for_a_rehash_under_the_new_key() {
    let v1 = peppered(weak(), &[("k1", 1)]);
    let stored = v1.hash(&pw("peppered password")).expect("hash");
    assert_eq!(stored.key_id().map(KeyId::as_str), Some("k1"));
    assert!(stored.to_phc_string().contains(",keyid="));

    let v2 = peppered(weak(), &[("k1", 1), ("k2", 2)]);
    match v2
        .verify(&pw("peppered password"), &stored)
        .expect("verify")
    {
        Verification::Match { rehash: Some(new) } => {
            assert_eq!(new.key_id().map(KeyId::as_str), Some("k2"))
        }
        other => panic!("expected a rehash under k2, got {other:?}"),
    }
    assert_eq!(
        v1.verify(&pw("peppered password"), &stored)
            .expect("verify"),
        Verification::Match { rehash: None }
    );
}

#[test]
fn pepper_rotation_never_lowers_the_cost_of_a_stronger_hash() {
    let strong = peppered(stronger(), &[("k1", 1)])
        .hash(&pw("strong and old key"))
        .expect("hash");
    let rotated_with_lower_policy = peppered(weak(), &[("k1", 1), ("k2", 2)]);
    match rotated_with_lower_policy
        .verify(&pw("strong and old key"), &strong)
        .expect("verify")
    {
        Verification::Match { rehash: Some(new) } => {
            assert_eq!(new.params(), stronger());
            assert_eq!(new.key_id().map(KeyId::as_str), Some("k2"));
        }
        other => panic!("expected a rehash under k2, got {other:?}"),
    }
}

#[test]
fn unknown_or_missing_pepper_is_an_error_not_a_mismatch() {
    let stored = peppered(weak(), &[("k1", 1)])
        .hash(&pw("peppered password"))
        .expect("hash");
    let other_ring = peppered(weak(), &[("k9", 9)]);
    assert!(matches!(
        other_ring.verify(&pw("peppered password"), &stored),
        Err(Error::UnknownKeyId { key_id }) if key_id.as_str() == "k1"
    ));
    assert!(matches!(
        hasher(weak()).verify(&pw("peppered password"), &stored),
        Err(Error::PepperMissing { .. })
    ));
}

#[test]
fn the_pepper_really_enters_the_hash() {
    let stored = peppered(weak(), &[("k1", 1)])
        .hash(&pw("peppered password"))
        .expect("hash");
    // Same key id, different secret: the password no longer matches.
    let impostor = peppered(weak(), &[("k1", 7)]);
    assert_eq!(
        impostor
            .verify(&pw("peppered password"), &stored)
            .expect("verify"),
        Verification::Mismatch
    );
}

#[test]
fn unpeppered_hashes_are_upgraded_once_a_pepper_is_configured() {
    let stored = hasher(weak())
        .hash(&pw("no pepper yet at all"))
        .expect("hash");
    let with_pepper = peppered(weak(), &[("k1", 1)]);
    match with_pepper
        .verify(&pw("no pepper yet at all"), &stored)
        .expect("verify")
    {
        Verification::Match { rehash: Some(new) } => assert!(new.key_id().is_some()),
        other => panic!("expected a rehash, got {other:?}"),
    }
}

#[test]
fn legacy_wrappers_verify_and_turn_into_plain_argon2id_at_login() {
    let h = peppered(weak(), &[("k1", 1)]);
    for (legacy, name) in [
        (
            LegacyHash::md5_hex("5f4dcc3b5aa765d61d8327deb882cf99").expect("md5"),
            "md5",
        ),
        (
            LegacyHash::sha1_hex("5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8").expect("sha1"),
            "sha1",
        ),
    ] {
        let wrapped = h.wrap_legacy(&legacy).expect("wrap");
        let phc = wrapped.to_phc_string();
        assert!(
            phc.starts_with("$argon2id-onion$v=19$") && phc.contains(&format!("inner={name}")),
            "{phc}"
        );
        let parsed = PasswordHash::parse(&phc).expect("onion strings parse");
        assert!(parsed.is_legacy());
        assert_eq!(
            h.verify(&pw("Password"), &parsed).expect("verify"),
            Verification::Mismatch
        );
        match h.verify(&pw("password"), &parsed).expect("verify") {
            Verification::Match {
                rehash: Some(plain),
            } => {
                assert!(!plain.is_legacy());
                assert!(plain.to_phc_string().starts_with("$argon2id$v=19$"));
                assert_eq!(
                    h.verify(&pw("password"), &plain).expect("verify"),
                    Verification::Match { rehash: None }
                );
            }
            other => panic!("{name}: expected a plain rehash, got {other:?}"),
        }
    }
}

#[test]
fn salted_sha256_legacy_uses_the_salt_where_the_old_system_put_it() {
    let h = hasher(weak());
    let prefix = sha256_hex(b"s4ltpassword");
    let suffix = sha256_hex(b"passwords4lt");
    for (position, digest) in [
        (SaltPosition::Prefix, &prefix),
        (SaltPosition::Suffix, &suffix),
    ] {
        let wrapped = h
            .wrap_legacy(&LegacyHash::sha256_salted_hex(b"s4lt", position, digest).expect("valid"))
            .expect("wrap");
        let parsed = PasswordHash::parse(&wrapped.to_phc_string()).expect("parses");
        assert!(
            h.verify(&pw("password"), &parsed)
                .expect("verify")
                .is_match(),
            "{position:?}"
        );
    }
    // The wrong position does not match.
    let swapped = h
        .wrap_legacy(
            &LegacyHash::sha256_salted_hex(b"s4lt", SaltPosition::Suffix, &prefix).expect("valid"),
        )
        .expect("wrap");
    assert_eq!(
        h.verify(&pw("password"), &swapped).expect("verify"),
        Verification::Mismatch
    );
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    base16ct::lower::encode_string(&Sha256::digest(data))
}

#[test]
fn legacy_digest_is_of_the_raw_input_not_the_normalized_one() {
    // md5("ＡＢＣ" in full-width UTF-8) differs from md5("ABC"); the old system never normalized.
    use md5::{Digest, Md5};
    let raw = "ＡＢＣ full width";
    let h = hasher(weak());
    let wrapped = h
        .wrap_legacy(
            &LegacyHash::md5_hex(&base16ct::lower::encode_string(&Md5::digest(
                raw.as_bytes(),
            )))
            .expect("md5"),
        )
        .expect("wrap");
    assert!(h.verify(&pw(raw), &wrapped).expect("verify").is_match());
    assert_eq!(
        h.verify(&pw("ABC full width"), &wrapped).expect("verify"),
        Verification::Mismatch
    );
}

#[test]
fn bulk_upgrade_streams_in_order_and_counts() {
    let h = hasher(weak());
    let md5 = |i: u32| {
        use md5::{Digest, Md5};
        LegacyHash::md5_hex(&base16ct::lower::encode_string(&Md5::digest(
            format!("pw-{i}").as_bytes(),
        )))
        .expect("md5")
    };
    let mut seen = Vec::new();
    let summary = h.upgrade_legacy((0..203u32).map(|i| (i, md5(i))), 3, |id, res| {
        seen.push((id, res.expect("wrap succeeds")));
    });
    assert_eq!(summary.wrapped, 203);
    assert_eq!(summary.failed, 0);
    assert_eq!(
        seen.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        (0..203).collect::<Vec<_>>()
    );
    for (i, wrapped) in seen.iter().step_by(50) {
        assert!(
            h.verify(&pw(&format!("pw-{i}")), wrapped)
                .expect("verify")
                .is_match()
        );
    }
}

#[test]
fn dummy_verify_always_mismatches() {
    let h = peppered(weak(), &[("k1", 1)]);
    for p in ["", "password", "a long passphrase for the shop"] {
        assert_eq!(
            h.dummy_verify(&pw(p)).expect("dummy"),
            Verification::Mismatch
        );
    }
    // It does the work: the limiter granted a permit per call.
    assert_eq!(h.limiter().stats().granted, 3);
}

#[test]
fn stored_params_beyond_the_deployment_limit_are_refused_before_work() {
    let h = Hasher::builder()
        .params(weak())
        .max_verify(1024, 4)
        .build()
        .expect("valid");
    let costly = "$argon2id$v=19$m=2097152,t=1,p=4$c29tZXNhbHRzb21lc2FsdA$iz6R0ycPu0VtrQxCZWN6+lGSkV0fgUqLqlzshbkkfMI";
    let parsed = PasswordHash::parse(costly).expect("within the parse caps");
    assert!(matches!(
        h.verify(&pw("x"), &parsed),
        Err(Error::TooExpensive { .. })
    ));
    let slow = costly.replace("m=2097152,t=1,p=4", "m=64,t=40,p=1");
    assert!(matches!(
        h.verify(&pw("x"), &PasswordHash::parse(&slow).expect("parses")),
        Err(Error::TooExpensive { .. })
    ));
    assert_eq!(h.limiter().stats().granted, 0, "no hashing happened");
}

#[test]
fn huge_passwords_get_a_typed_error() {
    let h = hasher(weak());
    assert!(matches!(
        h.hash(&pw(&"x".repeat(5000))),
        Err(Error::PasswordTooLong { max_bytes: 1024 })
    ));
    let stored = h.hash(&pw("fine")).expect("hash");
    assert!(matches!(
        h.verify(&pw(&"x".repeat(5000)), &stored),
        Err(Error::PasswordTooLong { .. })
    ));
}

#[test]
fn hasher_limiter_never_runs_more_than_its_budget() {
    let params = Params::insecure_for_tests(2048, 1, 1).expect("valid");
    let h = Arc::new(
        Hasher::builder()
            .params(params)
            .memory_budget(2 * params.memory_bytes())
            .max_verify(2048, 1)
            .timeout(Duration::from_secs(60))
            .build()
            .expect("valid"),
    );
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let h = h.clone();
            std::thread::spawn(move || {
                for j in 0..5 {
                    h.hash(&Password::new(format!("thread {i} round {j}")))
                        .expect("60 s is ample");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("worker");
    }
    let stats = h.limiter().stats();
    assert!(stats.peak_in_flight <= 2, "{stats:?}");
    assert!(stats.peak_bytes <= 2 * params.memory_bytes(), "{stats:?}");
    assert_eq!(stats.granted, 40);
    assert!(stats.allocations <= 2, "{stats:?}");
}

#[test]
fn a_login_past_the_timeout_gets_overloaded_not_mismatch() {
    let params = Params::insecure_for_tests(4096, 1, 1).expect("valid");
    let h = Arc::new(
        Hasher::builder()
            .params(params)
            .memory_budget(params.memory_bytes())
            .max_verify(4096, 64)
            .timeout(Duration::from_millis(10))
            .build()
            .expect("valid"),
    );
    // A stored hash with t = 64 holds the only permit for a long while.
    let slow = Hasher::builder()
        .params(Params::insecure_for_tests(4096, 64, 1).expect("valid"))
        .build()
        .expect("valid")
        .hash(&pw("slow"))
        .expect("hash");
    let holder = {
        let h = h.clone();
        std::thread::spawn(move || {
            h.verify(&Password::new("slow"), &slow)
                .map(|v| v.is_match())
        })
    };
    while h.limiter().stats().in_flight == 0 {
        std::thread::yield_now();
    }
    let err = h.hash(&pw("meanwhile")).expect_err("the budget is held");
    assert!(
        matches!(err, Error::Overloaded { waited } if waited >= Duration::from_millis(10)),
        "{err:?}"
    );
    assert!(holder.join().expect("holder").expect("verify"));
    assert_eq!(h.limiter().stats().overloaded, 1);
}

#[test]
fn a_budget_smaller_than_one_hash_is_refused_at_build() {
    assert!(matches!(
        Hasher::builder()
            .params(Params::owasp())
            .memory_budget(1 << 20)
            .build(),
        Err(Error::TooExpensive { .. })
    ));
}

#[test]
fn calibrate_never_goes_below_the_owasp_floor() {
    // 8 MiB allows only the (7168 KiB, t = 5) row; a 1 µs target still gets t = 5.
    let p = Hasher::calibrate(Duration::from_micros(1), 8 << 20).expect("8 MiB fits a row");
    assert_eq!((p.m_kib(), p.t(), p.p()), (8192, 5, 1));
    assert!(p.meets_owasp_floor());
    assert!(matches!(
        Hasher::calibrate(Duration::from_secs(1), 4 << 20),
        Err(Error::BelowOwaspFloor { .. })
    ));
}

#[test]
fn calibrate_adds_passes_for_a_longer_target() {
    let quick = Hasher::calibrate(Duration::from_millis(1), 8 << 20).expect("fits");
    let slow = Hasher::calibrate(Duration::from_millis(400), 8 << 20).expect("fits");
    assert!(slow.t() > quick.t(), "{quick:?} vs {slow:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn any_password_round_trips(s in "\\PC{0,80}") {
        let h = hasher(weak());
        let stored = h.hash(&Password::new(s.clone())).expect("short enough");
        let parsed = PasswordHash::parse(&stored.to_phc_string()).expect("own output parses");
        prop_assert!(h.verify(&Password::new(s.clone()), &parsed).expect("verify").is_match());
        let other = format!("{s}x");
        prop_assert_eq!(h.verify(&Password::new(other), &parsed).expect("verify"), Verification::Mismatch);
    }
}
