//! Conformance checks of `SessionStore`: liveness bound to the credential, listing and
//! ending per account and per incident, rotation, and remember-device families.

use std::sync::{Arc, Barrier};

use super::support::{FullStore, acct, brand, hashes, stamp, t, token};
use crate::kernel::AccountId;
use crate::persist::StoreError;
use crate::rotation::{
    CredentialFlags, DeviceRecord, DeviceUse, IncidentScope, Redemption, SecurityStamp, SessionId,
    SessionRecord, SessionStore,
};

/// Every store [`run_sessions`](super::run_sessions) exercises.
pub trait SessionsStore: FullStore + SessionStore {}
impl<T: FullStore + SessionStore> SessionsStore for T {}

fn session(id: u8, account: &str, stamp: &SecurityStamp, at: i64) -> SessionRecord {
    SessionRecord::new(
        SessionId::from_bytes([id; 16]),
        acct(account),
        stamp.clone(),
        t(at),
        t(at + 1_000_000),
        "203.0.113.7".into(),
        "Firefox on Linux".into(),
    )
}

/// An account with a credential set at `set_at`, its stamp, and brands.
fn customer(s: &impl SessionsStore, account: &str, brands: &[&str], set_at: i64) -> SecurityStamp {
    let st = stamp();
    let brands: Vec<_> = brands.iter().map(|b| brand(b)).collect();
    s.insert_credential(&acct(account), &brands, &hashes()[0], &st, t(set_at))
        .expect("insert credential");
    st
}

fn live(s: &impl SessionsStore, digest: u8) -> bool {
    s.live_session(&[digest; 32]).expect("live").is_some()
}

pub(super) fn a_session_lives_only_while_its_credential_does(s: &impl SessionsStore) {
    let st = customer(s, "a1", &["shoes"], 10);
    let rec = session(1, "a1", &st, 20);
    s.create_session(&[1; 32], &rec).expect("create");
    assert_eq!(s.live_session(&[1; 32]).expect("live"), Some(rec.clone()));
    assert!(!live(s, 2), "an unknown digest opens nothing");
    assert!(matches!(
        s.create_session(&[1; 32], &session(9, "a1", &st, 20)),
        Err(StoreError::AlreadyExists)
    ));
    assert!(matches!(
        s.create_session(&[9; 32], &session(1, "a1", &st, 20)),
        Err(StoreError::AlreadyExists)
    ));
    // A session under another stamp (from before a reset) is not live.
    s.create_session(&[3; 32], &session(3, "a1", &stamp(), 20))
        .expect("create");
    assert!(!live(s, 3), "a stale stamp opens nothing");
    // last_seen only moves forward.
    s.touch_session(&[1; 32], t(500)).expect("touch");
    s.touch_session(&[1; 32], t(400)).expect("touch");
    let seen = s.live_session(&[1; 32]).expect("live").expect("there");
    assert_eq!(seen.last_seen, t(500));
    // Flags end it, and lifting them brings it back (the row is still there).
    for flag in [CredentialFlags::DISABLED, CredentialFlags::MUST_RESET] {
        s.set_flags(&acct("a1"), flag).expect("flag");
        assert!(!live(s, 1), "{flag:?} ends the session");
        s.set_flags(&acct("a1"), CredentialFlags::NONE)
            .expect("unflag");
        assert!(live(s, 1));
    }
    // A reset changes the stamp: the session is dead for good.
    s.issue_token(&token(7, "a1", 0, 30)).expect("issue");
    let outcome = s
        .redeem_token(&Redemption::new(
            &acct("a1"),
            [7; 32],
            t(40),
            &hashes()[1],
            &stamp(),
            3,
        ))
        .expect("redeem");
    assert!(matches!(
        outcome,
        crate::rotation::RedeemOutcome::Redeemed { .. }
    ));
    assert!(!live(s, 1), "a reset ends every session");
    assert!(s.sessions_of(&acct("a1")).expect("list").is_empty());
}

pub(super) fn incidents_end_the_sessions_they_compromise(s: &impl SessionsStore) {
    let early = customer(s, "early", &["shoes"], 10);
    let boots = customer(s, "boots", &["boots"], 10);
    let late = customer(s, "late", &["shoes"], 100);
    let listed = customer(s, "listed", &["other"], 10);
    s.create_session(&[1; 32], &session(1, "early", &early, 110))
        .expect("create");
    s.create_session(&[2; 32], &session(2, "boots", &boots, 110))
        .expect("create");
    s.create_session(&[3; 32], &session(3, "late", &late, 110))
        .expect("create");
    s.create_session(&[4; 32], &session(4, "listed", &listed, 110))
        .expect("create");
    // A brand incident with a cutoff between the two credentials: only "early".
    let shoes = s
        .declare_incident(&IncidentScope::Brand(brand("shoes")), t(50), t(120), "r")
        .expect("declare");
    assert!(!live(s, 1), "compromised by the brand incident");
    assert!(live(s, 2) && live(s, 3) && live(s, 4), "out of its scope");
    // A listed incident: only "listed".
    let list = s
        .declare_incident(&IncidentScope::Accounts, t(50), t(120), "r")
        .expect("declare");
    s.add_incident_accounts(list.id, &mut [acct("listed")].into_iter())
        .expect("list");
    assert!(!live(s, 4) && live(s, 2) && live(s, 3));
    // Ending an incident's sessions deletes exactly the compromised ones.
    assert_eq!(s.end_incident_sessions(shoes.id).expect("end"), 1);
    assert_eq!(s.end_incident_sessions(shoes.id).expect("end again"), 0);
    assert_eq!(s.end_incident_sessions(list.id).expect("end"), 1);
    assert!(matches!(
        s.end_incident_sessions(crate::rotation::IncidentId(9_999)),
        Err(StoreError::NoSuchIncident)
    ));
    // Everyone, with a cutoff before "late" was set: "boots" goes, "late" stays.
    let all = s
        .declare_incident(&IncidentScope::All, t(50), t(130), "r")
        .expect("declare");
    assert!(!live(s, 2) && live(s, 3));
    assert_eq!(s.end_incident_sessions(all.id).expect("end"), 1);
    assert!(
        live(s, 3),
        "a credential set after the cutoff keeps its session"
    );
    assert_eq!(s.end_all_sessions().expect("end all"), 1);
    assert!(!live(s, 3));
}

pub(super) fn sessions_list_and_end_per_account(s: &impl SessionsStore) {
    let a = customer(s, "a1", &[], 10);
    let b = customer(s, "b1", &[], 10);
    for (k, at) in [(1u8, 20), (2, 40), (3, 30)] {
        s.create_session(&[k; 32], &session(k, "a1", &a, at))
            .expect("create");
    }
    s.create_session(&[9; 32], &session(9, "b1", &b, 20))
        .expect("create");
    let ids: Vec<SessionId> = s
        .sessions_of(&acct("a1"))
        .expect("list")
        .into_iter()
        .map(|r| r.id)
        .collect();
    let id = |k: u8| SessionId::from_bytes([k; 16]);
    assert_eq!(ids, vec![id(2), id(3), id(1)], "newest first");
    // Another account's id ends nothing.
    assert!(!s.end_session(&acct("a1"), &id(9)).expect("end"));
    assert!(live(s, 9));
    assert!(s.end_session(&acct("a1"), &id(3)).expect("end"));
    assert!(!s.end_session(&acct("a1"), &id(3)).expect("end twice"));
    assert!(!live(s, 3) && live(s, 1) && live(s, 2));
    assert_eq!(s.end_sessions_of(&acct("a1")).expect("end all of"), 2);
    assert!(s.sessions_of(&acct("a1")).expect("list").is_empty());
    assert!(live(s, 9), "another account's sessions stay");
    // Rotation: the old digest dies as the new one starts, same id.
    assert!(
        s.rotate_session(&[9; 32], &[10; 32], t(60))
            .expect("rotate")
    );
    assert!(!live(s, 9));
    let rotated = s.live_session(&[10; 32]).expect("live").expect("there");
    assert_eq!((rotated.id, rotated.last_seen), (id(9), t(60)));
    assert!(
        !s.rotate_session(&[9; 32], &[11; 32], t(70))
            .expect("rotate"),
        "a dead token rotates into nothing"
    );
    assert!(!live(s, 11));
    // Purge: past the absolute expiry, or idle.
    s.create_session(&[12; 32], &session(12, "b1", &b, 5_000_000))
        .expect("create");
    assert_eq!(s.purge_sessions(t(1_000_100), t(0)).expect("purge"), 1);
    assert!(!live(s, 10) && live(s, 12));
    assert_eq!(s.purge_sessions(t(0), t(5_000_001)).expect("purge idle"), 1);
    assert!(!live(s, 12));
}

fn device(s: &impl SessionsStore, digest: u8, account: &str, st: &SecurityStamp) {
    s.issue_device(
        &[digest; 32],
        &DeviceRecord::new(
            SessionId::from_bytes([digest; 16]),
            acct(account),
            st.clone(),
            t(10),
            t(1_000),
        ),
    )
    .expect("issue device");
}

fn rotated_account(u: &DeviceUse) -> Option<&AccountId> {
    match u {
        DeviceUse::Rotated(r) => Some(&r.account),
        _ => None,
    }
}

pub(super) fn device_tokens_rotate_once_and_a_reuse_ends_the_family(s: &impl SessionsStore) {
    let st = customer(s, "a1", &[], 5);
    device(s, 1, "a1", &st);
    let first = s
        .use_device(&[1; 32], &[2; 32], t(20), t(2_000))
        .expect("use");
    assert_eq!(rotated_account(&first), Some(&acct("a1")));
    let DeviceUse::Rotated(next) = first else {
        unreachable!()
    };
    assert_eq!(next.family, SessionId::from_bytes([1; 16]), "same family");
    assert_eq!(next.expires_at, t(2_000));
    // The successor works once too.
    let second = s
        .use_device(&[2; 32], &[3; 32], t(30), t(2_000))
        .expect("use");
    assert!(rotated_account(&second).is_some());
    // The first token again: a copy. The whole family (the live successor too) ends.
    assert_eq!(
        s.use_device(&[1; 32], &[4; 32], t(40), t(2_000))
            .expect("reuse"),
        DeviceUse::Reused {
            account: acct("a1")
        }
    );
    assert_eq!(
        s.use_device(&[3; 32], &[5; 32], t(50), t(2_000))
            .expect("use"),
        DeviceUse::Unknown,
        "the family is gone"
    );
    assert_eq!(
        s.use_device(&[4; 32], &[6; 32], t(50), t(2_000))
            .expect("use"),
        DeviceUse::Unknown,
        "a reuse hands out nothing"
    );
    // Expired, and ended with the account's sessions.
    device(s, 20, "a1", &st);
    assert_eq!(
        s.use_device(&[20; 32], &[21; 32], t(1_000), t(2_000))
            .expect("use"),
        DeviceUse::Unknown
    );
    device(s, 30, "a1", &st);
    s.end_sessions_of(&acct("a1")).expect("end");
    assert_eq!(
        s.use_device(&[30; 32], &[31; 32], t(50), t(2_000))
            .expect("use"),
        DeviceUse::Unknown
    );
    // Under a stale stamp, or a disabled account: nothing.
    device(s, 40, "a1", &stamp());
    assert_eq!(
        s.use_device(&[40; 32], &[41; 32], t(50), t(2_000))
            .expect("use"),
        DeviceUse::Unknown
    );
    device(s, 50, "a1", &st);
    s.set_flags(&acct("a1"), CredentialFlags::DISABLED)
        .expect("flag");
    assert_eq!(
        s.use_device(&[50; 32], &[51; 32], t(50), t(2_000))
            .expect("use"),
        DeviceUse::Unknown
    );
}

pub(super) fn two_uses_of_one_device_token_at_once_rotate_once(s: Arc<impl SessionsStore>) {
    let st = customer(&*s, "a1", &[], 5);
    for round in 0..8u8 {
        let base = round * 3 + 1;
        device(&*s, base, "a1", &st);
        let barrier = Arc::new(Barrier::new(2));
        let outcomes: Vec<DeviceUse> = (0..2u8)
            .map(|k| {
                let (s, barrier) = (Arc::clone(&s), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    s.use_device(&[base; 32], &[base + 1 + k; 32], t(20), t(2_000))
                        .expect("use")
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect();
        let rotated = outcomes
            .iter()
            .filter(|u| rotated_account(u).is_some())
            .count();
        let reused = outcomes
            .iter()
            .filter(|u| matches!(u, DeviceUse::Reused { .. }))
            .count();
        assert_eq!((rotated, reused), (1, 1), "round {round}: {outcomes:?}");
        for k in 0..2u8 {
            assert_eq!(
                s.use_device(&[base + 1 + k; 32], &[250; 32], t(30), t(2_000))
                    .expect("use"),
                DeviceUse::Unknown,
                "the family ended with the reuse"
            );
        }
    }
}
