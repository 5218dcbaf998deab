//! Conformance checks of `IncidentStore`.

use super::support::{FullStore, acct, brand, t};
use crate::persist::StoreError;
use crate::rotation::IncidentScope;

pub(super) fn incidents_are_listed_in_order_and_account_lists_stream(s: &impl FullStore) {
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
