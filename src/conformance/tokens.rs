//! Conformance checks of `ResetTokenStore`: issuing, redemption, races.

use super::support::{FullStore, acct, hashes, stamp, t, token};
use crate::password::PasswordHash;
use crate::rotation::CredentialFlags;
use crate::rotation::RedeemOutcome;
use crate::rotation::Redemption;
use crate::rotation::SELF_SERVICE_LIVE;
use crate::rotation::TokenPurpose;
use std::sync::Arc;
use std::sync::Barrier;

pub(super) fn self_service_tokens_keep_the_newest_and_never_touch_incident_tokens(
    s: &impl FullStore,
) {
    let [h0, ..] = hashes();
    s.insert_credential(&acct("a1"), &[], h0, &stamp(), t(10))
        .expect("insert");
    let mut incident = token(200, "a1", 0, 15);
    incident.purpose = TokenPurpose::Incident;
    s.issue_token(&incident).expect("issue incident token");
    let first = token(1, "a1", 0, 20);
    s.issue_token(&first).expect("issue");
    assert_eq!(
        s.find_token(&acct("a1"), &[1; 32]).expect("find"),
        Some(first)
    );
    // Twenty more requests: the newest SELF_SERVICE_LIVE stay, older ones go, and the
    // breach notice's incident token survives every one of them.
    for k in 2..=21u8 {
        s.issue_token(&token(k, "a1", 0, 20 + i64::from(k)))
            .expect("issue");
    }
    let live: Vec<u8> = (1..=21u8)
        .filter(|k| {
            s.find_token(&acct("a1"), &[*k; 32])
                .expect("find")
                .is_some()
        })
        .collect();
    let newest = u8::try_from(21 - SELF_SERVICE_LIVE + 1).expect("small");
    assert_eq!(live, (newest..=21).collect::<Vec<u8>>(), "the newest stay");
    assert_eq!(
        s.find_token(&acct("a1"), &[200; 32]).expect("find"),
        Some(incident),
        "a self-service request never voids an incident token"
    );
    // Expired ones go first, whatever their age.
    s.issue_token(&token(100, "a1", 0, 50 + 3_600_000))
        .expect("issue");
    assert!(
        s.find_token(&acct("a1"), &[21; 32])
            .expect("find")
            .is_none(),
        "expired tokens are dropped"
    );
    assert!(
        s.find_token(&acct("a1"), &[100; 32])
            .expect("find")
            .is_some()
    );
    assert!(
        s.find_token(&acct("a1"), &[200; 32])
            .expect("find")
            .is_some()
    );
}

pub(super) fn redeem(
    s: &impl FullStore,
    account: &str,
    digest: u8,
    now: i64,
    new_hash: &PasswordHash,
    keep: usize,
) -> RedeemOutcome {
    s.redeem_token(&Redemption::new(
        &acct(account),
        [digest; 32],
        t(now),
        new_hash,
        &stamp(),
        keep,
    ))
    .expect("redeem")
}

pub(super) fn redemption_outcomes_are_precise(s: &impl FullStore) {
    let [h0, h1, _] = hashes();
    s.insert_credential(&acct("a1"), &[], h0, &stamp(), t(10))
        .expect("insert");
    s.insert_credential(&acct("a2"), &[], h0, &stamp(), t(10))
        .expect("insert");
    assert_eq!(redeem(s, "a1", 9, 20, h1, 5), RedeemOutcome::Unknown);

    s.issue_token(&token(1, "a1", 0, 20)).expect("issue");
    assert_eq!(
        redeem(s, "a1", 1, 20 + 3_600_000, h1, 5),
        RedeemOutcome::Expired,
        "expiry is inclusive"
    );
    assert_eq!(
        s.load_credential(&acct("a1"))
            .expect("load")
            .expect("present")
            .hash,
        *h0,
        "nothing changed"
    );

    s.issue_token(&token(2, "a2", 7, 20)).expect("issue");
    assert_eq!(
        redeem(s, "a2", 2, 30, h1, 5),
        RedeemOutcome::Superseded,
        "issued for another generation"
    );

    s.issue_token(&token(3, "a1", 0, 20)).expect("issue");
    assert_eq!(
        redeem(s, "a2", 3, 30, h1, 5),
        RedeemOutcome::Unknown,
        "a token belongs to its account"
    );
    assert_eq!(
        redeem(s, "a1", 3, 30, h1, 5),
        RedeemOutcome::Redeemed {
            account: acct("a1")
        }
    );
    assert_eq!(redeem(s, "a1", 3, 31, h0, 5), RedeemOutcome::AlreadyUsed);
    let used = s
        .find_token(&acct("a1"), &[3; 32])
        .expect("find")
        .expect("kept for audit");
    assert_eq!(used.used_at, Some(t(30)));
}

pub(super) fn redemption_bumps_generation_stamp_and_keeps_history(s: &impl FullStore) {
    let [h0, h1, h2] = hashes();
    let first_stamp = stamp();
    s.insert_credential(&acct("a1"), &[], h0, &first_stamp, t(10))
        .expect("insert");
    s.set_flags(
        &acct("a1"),
        CredentialFlags::MUST_RESET.union(CredentialFlags::DISABLED),
    )
    .expect("flag");
    let order = [h1, h2, h0, h1, h2];
    for (i, new_hash) in order.iter().enumerate() {
        let generation = i as u64;
        let digest = u8::try_from(10 + i).expect("small");
        s.issue_token(&token(digest, "a1", generation, 20))
            .expect("issue");
        let new_stamp = stamp();
        let outcome = s
            .redeem_token(&Redemption::new(
                &acct("a1"),
                [digest; 32],
                t(100 + i as i64),
                new_hash,
                &new_stamp,
                3,
            ))
            .expect("redeem");
        assert_eq!(
            outcome,
            RedeemOutcome::Redeemed {
                account: acct("a1")
            }
        );
        let r = s
            .load_credential(&acct("a1"))
            .expect("load")
            .expect("present");
        assert_eq!(
            (r.generation, r.set_at, &r.hash),
            (generation + 1, t(100 + i as i64), *new_hash)
        );
        assert_eq!(r.stamp, new_stamp);
        assert_ne!(r.stamp, first_stamp);
        assert_eq!(
            r.flags,
            CredentialFlags::DISABLED,
            "a reset clears MUST_RESET only"
        );
    }
    // Previous hashes, newest first: h1 (before h2), h0, h2; the oldest (h0, h1) trimmed.
    let history = s.password_history(&acct("a1"), 10).expect("history");
    assert_eq!(
        history,
        vec![h1.clone(), h0.clone(), h2.clone()],
        "kept 3, newest first"
    );
    assert_eq!(
        s.password_history(&acct("a1"), 1).expect("history"),
        vec![h1.clone()]
    );
    assert!(
        s.password_history(&acct("nobody"), 5)
            .expect("history")
            .is_empty()
    );

    // A history of 0 keeps nothing.
    s.issue_token(&token(99, "a1", 5, 20)).expect("issue");
    assert!(matches!(
        redeem(s, "a1", 99, 200, h0, 0),
        RedeemOutcome::Redeemed { .. }
    ));
    assert!(
        s.password_history(&acct("a1"), 10)
            .expect("history")
            .is_empty()
    );
}

pub(super) fn concurrent_redemption_has_one_winner<S: FullStore>(s: Arc<S>) {
    let [h0, h1, h2] = hashes();
    s.insert_credential(&acct("a1"), &[], h0, &stamp(), t(10))
        .expect("insert");
    for round in 0..200u64 {
        let digest = u8::try_from(round % 200).expect("small");
        s.issue_token(&token(digest, "a1", round, 20))
            .expect("issue");
        let barrier = Arc::new(Barrier::new(2));
        let racers: Vec<_> = [h1, h2]
            .into_iter()
            .map(|h| {
                let (s, barrier, h) = (Arc::clone(&s), Arc::clone(&barrier), h.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    s.redeem_token(&Redemption::new(
                        &acct("a1"),
                        [digest; 32],
                        t(30),
                        &h,
                        &stamp(),
                        2,
                    ))
                    .expect("redeem")
                })
            })
            .collect();
        let outcomes: Vec<_> = racers
            .into_iter()
            .map(|r| r.join().expect("no panic"))
            .collect();
        let wins = outcomes
            .iter()
            .filter(|o| matches!(o, RedeemOutcome::Redeemed { .. }))
            .count();
        assert_eq!(wins, 1, "round {round}: {outcomes:?}");
        assert!(
            outcomes.contains(&RedeemOutcome::AlreadyUsed),
            "round {round}: {outcomes:?}"
        );
        assert_eq!(
            s.load_credential(&acct("a1"))
                .expect("load")
                .expect("present")
                .generation,
            round + 1
        );
    }
}
