//! PHC strings: other implementations' hashes verify here, and the parser is total.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check panics here

use proptest::prelude::*;
use shopsafe::password::{Hasher, Params, Password, PasswordHash, Verification};

/// `tests/data/interop/foreign-hashes.tsv`: made by the reference `argon2` CLI,
/// argon2-cffi and libsodium (see `generate_foreign.py` beside it).
const FOREIGN: &str = include_str!("data/interop/foreign-hashes.tsv");

fn foreign_vectors() -> Vec<(&'static str, String, &'static str)> {
    FOREIGN
        .lines()
        .map(|line| {
            let mut cols = line.split('\t');
            let (Some(implementation), Some(password), Some(phc), None) =
                (cols.next(), cols.next(), cols.next(), cols.next())
            else {
                panic!("bad vector line: {line}");
            };
            let password: String =
                serde_json::from_str(password).expect("password column is a JSON string");
            (implementation, password, phc)
        })
        .collect()
}

#[test]
fn hashes_from_three_other_implementations_verify() {
    // Policy below every vector, so no rehash is due; default limits (64 MiB) cover them.
    let hasher = Hasher::new(Params::insecure_for_tests(64, 1, 1).expect("valid"));
    let vectors = foreign_vectors();
    for implementation in ["argon2-cli", "argon2-cffi", "libsodium"] {
        assert!(
            vectors.iter().filter(|v| v.0 == implementation).count() >= 10,
            "{implementation}"
        );
    }
    for (implementation, password, phc) in &vectors {
        let parsed =
            PasswordHash::parse(phc).unwrap_or_else(|e| panic!("{implementation} {phc}: {e}"));
        assert_eq!(
            &parsed.to_phc_string(),
            phc,
            "{implementation}: canonical form differs"
        );
        let ok = hasher
            .verify(&Password::new(password.clone()), &parsed)
            .expect("verify");
        assert!(
            matches!(ok, Verification::Match { .. }),
            "{implementation} {phc}"
        );
        let wrong = hasher
            .verify(&Password::new(format!("{password}!")), &parsed)
            .expect("verify");
        assert_eq!(wrong, Verification::Mismatch, "{implementation} {phc}");
    }
}

#[test]
fn reference_implementation_test_vector() {
    // argon2 reference implementation, src/test.c: argon2id, v=0x13, t=2, m=2^16, p=1.
    let phc =
        "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";
    let hasher = Hasher::new(Params::owasp());
    let parsed = PasswordHash::parse(phc).expect("valid");
    // Its 8-byte salt is below our 16: a rehash is due, and it must not lower m = 64 MiB
    // to the policy's 19 MiB.
    match hasher
        .verify(&Password::new("password"), &parsed)
        .expect("verify")
    {
        Verification::Match { rehash: Some(new) } => {
            assert_eq!((new.params().m_kib(), new.params().t()), (65_536, 2));
            assert!(!hasher.needs_rehash(&new));
        }
        other => panic!("expected a non-downgrading rehash, got {other:?}"),
    }
}

fn b64(bytes: &[u8]) -> String {
    use base64ct::{Base64Unpadded, Encoding};
    Base64Unpadded::encode_string(bytes)
}

proptest! {
    #[test]
    fn valid_strings_round_trip(
        m in 8u32..=(2 * 1024 * 1024), t in 1u32..=64, p in 1u32..=8,
        salt in prop::collection::vec(any::<u8>(), 8..=64),
        tag in prop::collection::vec(any::<u8>(), 16..=64),
        keyid in prop::option::of("[A-Za-z0-9._-]{1,8}"),
    ) {
        prop_assume!(m >= 8 * p);
        let keyid = keyid.map(|k| format!(",keyid={}", b64(k.as_bytes()))).unwrap_or_default();
        let s = format!("$argon2id$v=19$m={m},t={t},p={p}{keyid}${}${}", b64(&salt), b64(&tag));
        let parsed = PasswordHash::parse(&s).expect("valid by construction");
        prop_assert_eq!(parsed.to_phc_string(), s);
        prop_assert_eq!((parsed.params().m_kib(), parsed.params().t(), parsed.params().p()), (m, t, p));
    }

    #[test]
    fn arbitrary_strings_never_panic(s in any::<String>()) {
        let _ = PasswordHash::parse(&s);
    }

    #[test]
    fn phc_like_strings_never_panic(s in r"\$(argon2id(-onion)?|argon2i|x)\$v=[0-9]{1,3}\$[mtpkeyidnrsal=,0-9A-Za-z+/-]{0,60}\$[A-Za-z0-9+/]{0,90}\$[A-Za-z0-9+/]{0,90}") {
        if let Ok(parsed) = PasswordHash::parse(&s) {
            // Whatever parses must format back to a string that parses to the same value.
            prop_assert_eq!(PasswordHash::parse(&parsed.to_phc_string()).expect("own output parses"), parsed);
        }
    }

    #[test]
    fn onion_parameters_parse_or_error_and_round_trip(
        inner in prop_oneof![
            Just("md5"), Just("pbkdf2-sha1"), Just("pbkdf2-sha256"), Just("pbkdf2-sha512"),
            Just("phpass"), Just("bcrypt"), Just("wp-bcrypt"), Just("md5-crypt"),
            Just("sha256-crypt"), Just("sha512-crypt"), Just("sha256-salt-prefix"), Just("nope"),
        ],
        rounds in proptest::option::of("[0-9]{1,12}"),
        len in proptest::option::of("[0-9]{1,4}"),
        salt in proptest::option::of("[A-Za-z0-9+/]{0,70}"),
        tail in "[A-Za-z0-9+/]{0,60}",
    ) {
        let mut s = format!("$argon2id-onion$v=19$m=64,t=1,p=1,inner={inner}");
        for (name, value) in [("irounds", &rounds), ("ilen", &len), ("isalt", &salt)] {
            if let Some(v) = value {
                s.push_str(&format!(",{name}={v}"));
            }
        }
        s.push_str(&format!("$c29tZXNhbHRzb21lc2FsdA${tail}"));
        if let Ok(parsed) = PasswordHash::parse(&s) {
            prop_assert!(parsed.is_legacy());
            prop_assert_eq!(PasswordHash::parse(&parsed.to_phc_string()).expect("own output parses"), parsed);
        }
    }

    #[test]
    fn one_character_edits_of_a_valid_string_never_panic(pos in 0usize..95, c in any::<char>()) {
        let good = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$iz6R0ycPu0VtrQxCZWN6+lGSkV0fgUqLqlzshbkkfMI";
        let mut chars: Vec<char> = good.chars().collect();
        let pos = pos % chars.len();
        chars[pos] = c;
        let _ = PasswordHash::parse(&chars.into_iter().collect::<String>());
    }
}
