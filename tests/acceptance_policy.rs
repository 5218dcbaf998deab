//! The acceptance policy on what attackers try first, and on what people should pick.
//!
//! The coverage figures against a corpus the crate does not bundle (RockYou) come from
//! `examples/password_coverage.rs` (BENCHMARKS.md); here are the properties that must hold
//! on every build.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check panics here

use proptest::prelude::*;
use shopsafe::password::{AcceptancePolicy, Password, PasswordContext, Rejection, blocklist_len};

const EFF_WORDS: &str = include_str!("data/eff_large_wordlist.txt");

fn check(policy: &AcceptancePolicy, pw: &str) -> Result<(), Rejection> {
    policy.check(&Password::new(pw), &PasswordContext::new())
}

#[test]
fn the_bundled_list_is_large_and_catches_old_truncations() {
    assert_eq!(blocklist_len(), 475_794);
    let mfa = AcceptancePolicy::multi_factor();
    // 8-character truncations old systems made, which the 0.1 list missed.
    for truncated in ["liverpoo", "basketba", "christop", "manchest", "football1"] {
        assert!(check(&mfa, truncated).is_err(), "{truncated}");
    }
    // Case and compatibility forms fold before the lookup.
    assert_eq!(check(&mfa, "LiVeRpOoL"), Err(Rejection::Blocklisted));
    assert_eq!(
        check(&mfa, "ｌｉｖｅｒｐｏｏｌ"),
        Err(Rejection::Blocklisted)
    );
}

#[test]
fn guessable_patterns_outside_the_list_are_refused() {
    let mfa = AcceptancePolicy::multi_factor();
    for weak in ["qwertzuiop1", "Jennifer1987", "zaq12wsxcde3"] {
        assert!(
            matches!(
                check(&mfa, weak),
                Err(Rejection::Guessable | Rejection::Blocklisted)
            ),
            "{weak}: {:?}",
            check(&mfa, weak)
        );
    }
    // The context words feed the estimate too.
    let ctx = PasswordContext::new().email("quimbyfamily@example.com");
    assert!(
        AcceptancePolicy::multi_factor()
            .check(&Password::new("quimbyfamily99"), &ctx)
            .is_err()
    );
}

#[test]
fn the_refusal_texts_are_for_the_customer() {
    assert_eq!(
        Rejection::Breached { times: 1 }.to_string(),
        "this password has appeared in a data breach once; choose another"
    );
    assert_eq!(
        Rejection::Breached { times: 52_256_179 }.to_string(),
        "this password has appeared in a data breach 52256179 times; choose another"
    );
    assert!(
        Rejection::Guessable
            .to_string()
            .contains("too easy to guess")
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn a_random_four_word_passphrase_is_always_accepted(
        picks in proptest::collection::vec(0usize..7776, 4),
        sep in prop_oneof![Just(" "), Just("-"), Just(".")],
    ) {
        let words: Vec<&str> = EFF_WORDS.lines().collect();
        prop_assert_eq!(words.len(), 7776);
        let phrase = picks.iter().map(|&i| words[i]).collect::<Vec<_>>().join(sep);
        prop_assert_eq!(check(&AcceptancePolicy::single_factor(), &phrase), Ok(()), "{}", phrase);
        prop_assert_eq!(check(&AcceptancePolicy::multi_factor(), &phrase), Ok(()), "{}", phrase);
    }

    #[test]
    fn a_random_twelve_character_password_is_always_accepted(pw in "[!-~]{12}") {
        prop_assert_eq!(check(&AcceptancePolicy::multi_factor(), &pw), Ok(()), "{}", pw);
    }
}
