//! The `tracing` events, as a log collector sees them: the targets and field names the
//! table in `shopsafe::events` promises, and nothing secret or personal in any line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check panics here

use std::io::Write;
use std::sync::{Arc, Mutex};

use shopsafe::kernel::{AccountId, BrandId, Timestamp};
use shopsafe::password::{Hasher, Params, Password, PasswordContext};
use shopsafe::rotation::{Authenticator, Incident, IncidentScope, Sessions};
use shopsafe::store::sqlite::SqliteStore;

#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const PASSWORD: &str = "walnut cobbler lantern river";

#[test]
fn decisions_are_events_with_stable_fields_and_no_secret() {
    let lines = Lines::default();
    let out = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || out.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("c.db")).unwrap());
    let hasher = Arc::new(Hasher::new(Params::insecure_for_tests(64, 1, 1).unwrap()));
    let auth = Authenticator::new(Arc::clone(&store), hasher);
    let sessions = Sessions::new(Arc::clone(&store));
    let jane = AccountId::new("cust-secret-id").unwrap();
    tracing::subscriber::with_default(subscriber, || {
        let brands = [BrandId::new("shoes").unwrap()];
        auth.register(
            &jane,
            &brands,
            &Password::new(PASSWORD),
            &PasswordContext::new(),
        )
        .unwrap();
        let _ = auth.login(&jane, &Password::new("not it at all")).unwrap();
        let _ = auth.login(&jane, &Password::new(PASSWORD)).unwrap();
        let incident =
            Incident::declare(&*store, IncidentScope::All, Timestamp::now(), "copied").unwrap();
        let _ = auth.login(&jane, &Password::new(PASSWORD)).unwrap();
        sessions.end_incident(incident.id).unwrap();
        shopsafe::events::include_account_ids(true);
        let _ = auth.login(&jane, &Password::new(PASSWORD)).unwrap();
        shopsafe::events::include_account_ids(false);
    });
    let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
    let of = |target: &str| {
        text.lines()
            .filter(|l| l.contains(target))
            .collect::<Vec<_>>()
    };
    let logins = of("shopsafe::login");
    assert_eq!(logins.len(), 4, "{text}");
    let outcomes: Vec<bool> = ["rejected", "accepted", "reset_required", "reset_required"]
        .iter()
        .zip(&logins)
        .map(|(o, l)| l.contains(&format!("outcome=\"{o}\"")))
        .collect();
    assert_eq!(outcomes, [true; 4], "{text}");
    assert_eq!(of("shopsafe::incident").len(), 1, "{text}");
    assert!(
        of("shopsafe::incident")[0].contains("scope=\"all\""),
        "{text}"
    );
    assert!(
        of("shopsafe::session")[0].contains("how=\"incident\""),
        "{text}"
    );
    // No password in any line; the account only where it was turned on.
    assert!(
        !text.contains(PASSWORD) && !text.contains("not it at all"),
        "{text}"
    );
    let with_id: Vec<_> = text
        .lines()
        .filter(|l| l.contains("cust-secret-id"))
        .collect();
    assert_eq!(with_id, [logins[3]], "{text}");
}
