//! Conformance checks of `CampaignStore`: claims, checkpoints, scopes, lanes.

use super::support::{FullStore, acct, brand, hashes, stamp, t};
use super::tokens::redeem;
use crate::kernel::AccountId;
use crate::persist::StoreError;
use crate::rotation::IncidentScope;
use crate::rotation::RedeemOutcome;
use crate::rotation::TokenPurpose;
use crate::rotation::TokenRecord;
use std::time::Duration;

pub(super) fn seed(s: &impl FullStore, n: usize, set_at: i64) {
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

pub(super) fn campaign_claims_in_account_order_and_resumes_from_the_checkpoint(s: &impl FullStore) {
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
    ghost.id = crate::rotation::IncidentId(9_999);
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

pub(super) fn affected_accounts_follow_the_scope(s: &impl FullStore) {
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

pub(super) fn campaigns_split_into_disjoint_lanes(s: &impl FullStore) {
    seed(s, 25, 10);
    let all = s
        .declare_incident(&IncidentScope::All, t(100), t(100), "all")
        .expect("declare");
    // A read before the campaign is opened finds nothing and creates nothing: the split
    // below is still the one asked for.
    assert_eq!(s.lanes(all.id).expect("read"), Vec::new());
    assert_eq!(s.lanes(all.id).expect("read"), Vec::new());
    let lanes = s.open_lanes(&all, 4, t(100)).expect("split");
    assert_eq!(lanes.len(), 4);
    assert_eq!(
        s.lanes(all.id).expect("read"),
        lanes,
        "the read sees the lanes"
    );
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

pub(super) fn undeliverable_notices_are_kept_per_lane_listed_in_order_and_counted(
    s: &impl FullStore,
) {
    seed(s, 6, 10);
    let incident = s
        .declare_incident(&IncidentScope::All, t(100), t(100), "all")
        .expect("declare");
    let lanes = s.open_lanes(&incident, 2, t(100)).expect("split");
    assert_eq!(lanes.len(), 2);
    let (a, b) = (lanes[0].id, lanes[1].id);
    assert_eq!(s.count_undeliverable(a).expect("count"), 0);
    for (lane, account, reason) in [
        (a, "c0002", "rejected 550"),
        (a, "c0000", "no-address"),
        (b, "c0004", "no-address"),
        // The same account again: the newer reason replaces the older.
        (a, "c0002", "rejected 551"),
    ] {
        s.record_undeliverable(
            lane,
            &crate::rotation::Undelivered::new(acct(account), reason.into(), t(200)),
        )
        .expect("record");
    }
    assert_eq!(s.count_undeliverable(a).expect("count"), 2);
    assert_eq!(s.count_undeliverable(b).expect("count"), 1);
    let listed = s.undeliverable(a, None, 10).expect("list");
    assert_eq!(
        listed
            .iter()
            .map(|u| (u.account.as_str(), u.reason.as_str()))
            .collect::<Vec<_>>(),
        [("c0000", "no-address"), ("c0002", "rejected 551")],
        "in account order"
    );
    assert_eq!(listed[0].at, t(200));
    let page = s.undeliverable(a, Some(&acct("c0000")), 1).expect("page");
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].account, acct("c0002"));
    assert!(
        s.undeliverable(a, Some(&acct("c0002")), 10)
            .expect("end")
            .is_empty()
    );
}
