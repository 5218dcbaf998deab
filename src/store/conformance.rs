//! The store conformance suite: written once against the traits, run for every backend.
//!
//! Each check takes a fresh, empty store. A backend's test module calls [`run_all`] with
//! a constructor (see `sqlite.rs`); the PostgreSQL backend will call the same function.

use std::sync::{Arc, Barrier, OnceLock};
use std::time::Duration;

use super::{
    AccountId, BrandId, CampaignStore, CredentialFlags, CredentialStore, IncidentScope,
    IncidentStore, RedeemOutcome, Redemption, ResetTokenStore, SELF_SERVICE_LIVE, SecurityStamp,
    StoreError, Timestamp, TokenPurpose, TokenRecord,
};
use crate::password::{Hasher, Params, Password, PasswordHash};

/// Every trait the suite exercises.
pub(crate) trait FullStore:
    CredentialStore + IncidentStore + ResetTokenStore + CampaignStore + 'static
{
}
impl<T: CredentialStore + IncidentStore + ResetTokenStore + CampaignStore + 'static> FullStore
    for T
{
}

/// Runs every check, each on a fresh store from `fresh`.
pub(crate) fn run_all<S: FullStore>(fresh: &dyn Fn() -> S) {
    credentials_round_trip(&fresh());
    replace_hash_needs_the_current_generation(&fresh());
    flags_are_stored(&fresh());
    incidents_are_listed_in_order_and_account_lists_stream(&fresh());
    self_service_tokens_keep_the_newest_and_never_touch_incident_tokens(&fresh());
    redemption_outcomes_are_precise(&fresh());
    redemption_bumps_generation_stamp_and_keeps_history(&fresh());
    concurrent_redemption_has_one_winner(Arc::new(fresh()));
    campaign_claims_in_account_order_and_resumes_from_the_checkpoint(&fresh());
    affected_accounts_follow_the_scope(&fresh());
    campaigns_split_into_disjoint_lanes(&fresh());
}

fn t(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn acct(s: &str) -> AccountId {
    AccountId::new(s).expect("valid account id")
}

fn brand(s: &str) -> BrandId {
    BrandId::new(s).expect("valid brand id")
}

fn stamp() -> SecurityStamp {
    SecurityStamp::generate().expect("os rng")
}

/// Three distinct hashes, made once (hashing is the slow part of the suite).
fn hashes() -> &'static [PasswordHash; 3] {
    static HASHES: OnceLock<[PasswordHash; 3]> = OnceLock::new();
    HASHES.get_or_init(|| {
        let h = Hasher::new(Params::insecure_for_tests(64, 1, 1).expect("valid test params"));
        let mk = |s: &str| h.hash(&Password::new(s)).expect("hash");
        [
            mk("first password for tests"),
            mk("second password for tests"),
            mk("third password for tests"),
        ]
    })
}

fn token(digest_byte: u8, account: &str, generation: u64, issued: i64) -> TokenRecord {
    TokenRecord::new(
        [digest_byte; 32],
        acct(account),
        generation,
        TokenPurpose::SelfService,
        t(issued),
        Duration::from_secs(3600),
    )
}

fn credentials_round_trip(s: &impl FullStore) {
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

fn replace_hash_needs_the_current_generation(s: &impl FullStore) {
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

fn flags_are_stored(s: &impl FullStore) {
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

fn incidents_are_listed_in_order_and_account_lists_stream(s: &impl FullStore) {
    let all = s
        .declare_incident(&IncidentScope::All, t(100), t(200), "db copied")
        .expect("declare");
    let by_brand = s
        .declare_incident(
            &IncidentScope::Brand(brand("boots")),
            t(150),
            t(250),
            "boots",
        )
        .expect("declare");
    let listed = s
        .declare_incident(&IncidentScope::Accounts, t(300), t(300), "list")
        .expect("declare");
    assert!(all.id < by_brand.id && by_brand.id < listed.id);
    assert_eq!(
        s.incidents().expect("list"),
        vec![all.clone(), by_brand.clone(), listed.clone()]
    );
    assert_eq!(by_brand.scope, IncidentScope::Brand(brand("boots")));
    assert_eq!(
        (all.cutoff, all.declared_at, all.reason.as_str()),
        (t(100), t(200), "db copied")
    );

    // 25,000 ids with repeats, streamed (more than one internal batch).
    let mut ids = (0..25_000).map(|i| acct(&format!("c{:06}", i % 20_000)));
    assert_eq!(
        s.add_incident_accounts(listed.id, &mut ids).expect("add"),
        20_000,
        "repeats count once"
    );
    assert!(s.is_listed(listed.id, &acct("c019999")).expect("check"));
    assert!(!s.is_listed(listed.id, &acct("c020000")).expect("check"));
    assert!(!s.is_listed(all.id, &acct("c000001")).expect("check"));
    let wrong = s.add_incident_accounts(all.id, &mut std::iter::once(acct("x")));
    assert!(
        matches!(wrong, Err(StoreError::NoSuchIncident)),
        "{wrong:?}"
    );
}

fn self_service_tokens_keep_the_newest_and_never_touch_incident_tokens(s: &impl FullStore) {
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

fn redeem(
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

fn redemption_outcomes_are_precise(s: &impl FullStore) {
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

fn redemption_bumps_generation_stamp_and_keeps_history(s: &impl FullStore) {
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

fn concurrent_redemption_has_one_winner<S: FullStore>(s: Arc<S>) {
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

fn seed(s: &impl FullStore, n: usize, set_at: i64) {
    let [h0, ..] = hashes();
    for i in 0..n {
        let brands = if i % 3 == 0 {
            vec![brand("boots"), brand("shoes")]
        } else {
            vec![brand("shoes")]
        };
        s.insert_credential(&acct(&format!("c{i:04}")), &brands, h0, &stamp(), t(set_at))
            .expect("insert");
    }
}

fn campaign_claims_in_account_order_and_resumes_from_the_checkpoint(s: &impl FullStore) {
    seed(s, 25, 10);
    let incident = s
        .declare_incident(&IncidentScope::All, t(100), t(100), "all")
        .expect("declare");
    let open = |now| {
        let mut lanes = s.open_lanes(&incident, 1, t(now)).expect("open");
        assert_eq!(lanes.len(), 1);
        lanes.remove(0)
    };
    let state = open(100);
    assert_eq!(
        (state.sent, state.sent_cursor.as_ref(), state.finished_at),
        (0, None, None)
    );
    assert_eq!(
        (
            state.lane,
            state.lanes,
            &state.range_after,
            &state.range_until
        ),
        (0, 1, &None, &None)
    );
    assert_eq!(open(200), state, "one campaign per incident");
    let mut ghost = incident.clone();
    ghost.id = super::IncidentId(9_999);
    let missing = s.open_lanes(&ghost, 1, t(100));
    assert!(
        matches!(missing, Err(StoreError::NoSuchIncident)),
        "{missing:?}"
    );

    let mut issued = Vec::new();
    let mut issue = |a: &AccountId, generation: u64| {
        issued.push(a.clone());
        let digest = u8::try_from(issued.len()).expect("small");
        Ok(TokenRecord::new(
            [digest; 32],
            a.clone(),
            generation,
            TokenPurpose::Incident,
            t(100),
            Duration::from_secs(60),
        ))
    };
    let batch = s
        .claim_batch(&incident, None, None, 10, &mut issue)
        .expect("claim");
    let names: Vec<_> = batch
        .iter()
        .map(|c| c.account.as_str().to_owned())
        .collect();
    assert_eq!(
        names,
        (0..10).map(|i| format!("c{i:04}")).collect::<Vec<_>>()
    );
    assert_eq!(
        batch[0].brand,
        Some(brand("boots")),
        "the account's first brand"
    );
    assert_eq!(batch[1].brand, Some(brand("shoes")));
    assert_eq!(
        s.find_token(&acct("c0000"), &[1; 32])
            .expect("find")
            .map(|r| r.account),
        Some(acct("c0000")),
        "token stored"
    );

    s.checkpoint(state.id, &acct("c0009"), 10)
        .expect("checkpoint");
    let resumed = open(300);
    assert_eq!(
        (resumed.sent, resumed.sent_cursor.clone()),
        (10, Some(acct("c0009")))
    );
    assert_eq!(s.count_affected(&incident, None, None).expect("count"), 25);
    assert_eq!(
        s.count_affected(&incident, resumed.sent_cursor.as_ref(), None)
            .expect("count"),
        15
    );
    let rest = s
        .claim_batch(
            &incident,
            resumed.sent_cursor.as_ref(),
            None,
            100,
            &mut issue,
        )
        .expect("claim");
    assert_eq!(rest.len(), 15);
    assert_eq!(rest[0].account, acct("c0010"));
    assert!(
        s.claim_batch(&incident, Some(&acct("c0024")), None, 100, &mut issue)
            .expect("claim")
            .is_empty()
    );

    // An issuer failing on its third account stores nothing of its batch: the first two
    // tokens it did issue are rolled back with it.
    let mut calls = 0u8;
    let mut failing = |a: &AccountId, generation: u64| {
        calls += 1;
        if calls == 3 {
            return Err(StoreError::Corrupt { what: "test" });
        }
        Ok(TokenRecord::new(
            [0xE0 + calls; 32],
            a.clone(),
            generation,
            TokenPurpose::Incident,
            t(400),
            Duration::from_secs(3600),
        ))
    };
    assert!(
        s.claim_batch(&incident, Some(&acct("c0019")), None, 5, &mut failing)
            .is_err()
    );
    assert_eq!(calls, 3, "the issuer was called until it failed");
    for (account, digest) in [("c0020", 0xE1), ("c0021", 0xE2)] {
        assert_eq!(
            s.find_token(&acct(account), &[digest; 32]).expect("find"),
            None,
            "{account}'s token of the failed batch was not kept"
        );
    }
    assert_eq!(
        s.find_token(&acct("c0020"), &[21; 32])
            .expect("find")
            .map(|r| r.account),
        Some(acct("c0020")),
        "earlier token kept"
    );

    // Claimed again (a resume after a crash that followed a delivery): both tokens work
    // until either is redeemed.
    let again = s
        .claim_batch(&incident, None, None, 1, &mut issue)
        .expect("claim");
    assert_eq!(again[0].account, acct("c0000"));
    let newest = u8::try_from(issued.len()).expect("small");
    assert!(
        s.find_token(&acct("c0000"), &[1; 32])
            .expect("find")
            .is_some(),
        "the delivered token still works"
    );
    let [_, h1, _] = hashes();
    assert_eq!(
        redeem(s, "c0000", 1, 150, h1, 2),
        RedeemOutcome::Redeemed {
            account: acct("c0000")
        }
    );
    assert_eq!(
        redeem(s, "c0000", newest, 151, h1, 2),
        RedeemOutcome::Superseded,
        "one redemption ends the others"
    );

    s.finish_campaign(state.id, t(400)).expect("finish");
    assert_eq!(open(500).finished_at, Some(t(400)));
}

fn affected_accounts_follow_the_scope(s: &impl FullStore) {
    seed(s, 30, 10);
    // c0000..c0029 set at 10; c0099 at the cutoff itself (compromised, as
    // Incident::compromises_set_at says); c0100 set after every cutoff.
    let [h0, ..] = hashes();
    s.insert_credential(&acct("c0099"), &[brand("boots")], h0, &stamp(), t(100))
        .expect("insert");
    s.insert_credential(&acct("c0100"), &[brand("boots")], h0, &stamp(), t(1_000))
        .expect("insert");
    let all = s
        .declare_incident(&IncidentScope::All, t(100), t(100), "all")
        .expect("declare");
    let boots = s
        .declare_incident(
            &IncidentScope::Brand(brand("boots")),
            t(100),
            t(100),
            "boots",
        )
        .expect("declare");
    let listed = s
        .declare_incident(&IncidentScope::Accounts, t(100), t(100), "list")
        .expect("declare");
    let mut list = ["c0003", "c0004", "c0099", "c0100", "ghost"]
        .into_iter()
        .map(acct);
    s.add_incident_accounts(listed.id, &mut list).expect("add");

    assert_eq!(
        s.count_affected(&all, None, None).expect("count"),
        31,
        "c0099 at the cutoff counts, c0100 after it does not"
    );
    assert_eq!(
        s.count_affected(&boots, None, None).expect("count"),
        11,
        "every third account, and c0099, is on boots"
    );
    assert_eq!(
        s.count_affected(&listed, None, None).expect("count"),
        3,
        "listed, known and set at or before the cutoff"
    );

    let mut n = 0u8;
    let mut issue = |a: &AccountId, generation: u64| {
        n += 1;
        Ok(TokenRecord::new(
            [n; 32],
            a.clone(),
            generation,
            TokenPurpose::Incident,
            t(100),
            Duration::from_secs(60),
        ))
    };
    let claimed = s
        .claim_batch(&boots, None, None, 100, &mut issue)
        .expect("claim");
    assert_eq!(claimed.len(), 11);
    assert!(
        claimed.iter().all(|c| c.brand == Some(brand("boots"))),
        "the incident's brand"
    );
    let claimed = s
        .claim_batch(&listed, None, None, 100, &mut issue)
        .expect("claim");
    let names: Vec<_> = claimed.iter().map(|c| c.account.as_str()).collect();
    assert_eq!(names, ["c0003", "c0004", "c0099"]);
}

fn campaigns_split_into_disjoint_lanes(s: &impl FullStore) {
    seed(s, 25, 10);
    let all = s
        .declare_incident(&IncidentScope::All, t(100), t(100), "all")
        .expect("declare");
    let lanes = s.open_lanes(&all, 4, t(100)).expect("split");
    assert_eq!(lanes.len(), 4);
    assert!(
        lanes
            .iter()
            .enumerate()
            .all(|(k, l)| l.lane as usize == k && l.lanes == 4 && l.sent == 0)
    );
    assert_eq!(
        s.open_lanes(&all, 2, t(200)).expect("reopen"),
        lanes,
        "the first split stands"
    );
    let mut n = 0u32;
    let mut issue = |a: &AccountId, generation: u64| {
        n += 1;
        let mut digest = [0u8; 32];
        digest[..4].copy_from_slice(&n.to_le_bytes());
        Ok(TokenRecord::new(
            digest,
            a.clone(),
            generation,
            TokenPurpose::Incident,
            t(100),
            Duration::from_secs(60),
        ))
    };
    let mut everyone = Vec::new();
    let mut sizes = Vec::new();
    for lane in &lanes {
        let (after, until) = (lane.range_after.as_ref(), lane.range_until.as_ref());
        let claimed = s
            .claim_batch(&all, after, until, 100, &mut issue)
            .expect("claim");
        assert_eq!(
            s.count_affected(&all, after, until).expect("count"),
            claimed.len() as u64
        );
        sizes.push(claimed.len());
        everyone.extend(claimed.into_iter().map(|c| c.account));
    }
    assert_eq!(sizes, [6, 6, 6, 7]);
    let expected: Vec<AccountId> = (0..25).map(|i| acct(&format!("c{i:04}"))).collect();
    assert_eq!(
        everyone, expected,
        "every account in exactly one lane, in order"
    );

    // A lane's checkpoint is its own.
    s.checkpoint(lanes[2].id, &acct("c0013"), 2)
        .expect("checkpoint");
    let reopened = s.open_lanes(&all, 4, t(300)).expect("reopen");
    assert_eq!(reopened[2].sent_cursor, Some(acct("c0013")));
    assert_eq!((reopened[1].sent, reopened[3].sent), (0, 0));

    // Fewer accounts than lanes: fewer lanes. A brand's campaign splits its own accounts.
    let boots = s
        .declare_incident(
            &IncidentScope::Brand(brand("boots")),
            t(100),
            t(100),
            "boots",
        )
        .expect("declare");
    let boot_lanes = s.open_lanes(&boots, 20, t(100)).expect("split");
    assert_eq!(boot_lanes.len(), 9, "nine accounts are on boots");
    assert!(boot_lanes.iter().all(|l| {
        s.count_affected(&boots, l.range_after.as_ref(), l.range_until.as_ref())
            .expect("count")
            == 1
    }));
}
