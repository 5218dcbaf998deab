//! The breach drill end to end on 5,000 customers (the same code as
//! `shopsafe drill`), checked against the data rather than against its own output:
//! no card number in the customer file, its WAL or the application log; every account
//! notified exactly once; old passwords refused, new ones accepted; the exposure report
//! equal to what the database holds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check panics here

#[path = "../src/drill.rs"]
mod drill;

use std::path::Path;

use drill::{Config, Synthetic};
use regex::bytes::Regex;
use rusqlite::Connection;
use shopsafe::minimize::{Form, scan};
use shopsafe::password::Password;

const CUSTOMERS: usize = 5_000;
const FOLLOWED: usize = 6;

fn count(db: &Connection, sql: &str) -> u64 {
    let n: i64 = db.query_row(sql, [], |r| r.get(0)).expect(sql);
    u64::try_from(n).expect("a count")
}

fn cards_in(path: &Path) -> usize {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(!bytes.is_empty(), "{} is empty", path.display());
    scan(&bytes).len()
}

#[test]
fn breach_day_on_five_thousand_customers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = Config {
        customers: CUSTOMERS,
        brands: 2,
        dir: dir.path().to_path_buf(),
        progress: false,
        keep_links: FOLLOWED,
    };
    let shop = drill::seed(&cfg).expect("seed");
    let db = Connection::open(shop.store.path()).expect("open the customer db");
    assert_eq!(
        count(&db, "SELECT count(*) FROM profiles"),
        CUSTOMERS as u64
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM credentials"),
        CUSTOMERS as u64
    );
    let with_card = count(&db, "SELECT count(DISTINCT account) FROM cards_on_file");
    assert_eq!(with_card, shop.cards);
    assert!(with_card > 3_000, "{with_card} cards on file");

    // The intruder's copy holds neither card numbers nor passwords in clear.
    let loot = drill::intrude(&shop).expect("intrude");
    assert_eq!((loot.card_numbers, loot.plaintext_passwords), (0, 0));
    // Nor any seeded name, email, phone or address (all of them were looked for).
    assert_eq!(loot.personal_values, 0);
    // Distinct values: every email, most addresses and phones, 256 names.
    assert!(loot.personal_searched > 2 * CUSTOMERS as u64, "{loot:?}");
    // The search is not blind: a customer's name and email written back in clear into
    // the copy (a careless column) are found, glued as SQLite stores them.
    {
        let copy = dir.path().join("attacker").join("customers.db");
        let cols = drill::columns();
        let one = Synthetic(1).account();
        let intruder = Connection::open(&copy).expect("open the copy");
        let (name, email): (Vec<u8>, Vec<u8>) = intruder
            .query_row(
                "SELECT name, email FROM profiles WHERE id = ?1",
                [one.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("row");
        let open = |col, bytes: &[u8]| {
            let sealed = shopsafe::seal::Sealed::from_bytes(bytes).expect("sealed");
            shop.sealer
                .open(&one, col, one.as_str(), &sealed)
                .expect("opens")
                .expose()
                .clone()
        };
        let (name, email) = (open(&cols.name, &name), open(&cols.email, &email));
        intruder
            .execute_batch("PRAGMA journal_mode = DELETE")
            .expect("fold the WAL in");
        intruder
            .execute(
                "UPDATE profiles SET name = ?1, email = ?2 WHERE id = ?3",
                [name.as_str(), email.as_str(), one.as_str()],
            )
            .expect("plant");
        drop(intruder);
        let anchors = drill::personal_anchors().expect("anchors");
        assert_eq!(
            drill::personal_in_file(&copy, &shop.seeded, &anchors).expect("search"),
            2,
            "{name:?} and {email:?} are found"
        );
    }
    assert!(
        loot.sample_hash
            .starts_with("$argon2id$v=19$m=19456,t=2,p=1$")
    );
    // ... and the same search does find both where they are.
    // The controls are glued the way SQLite stores values (back to back): a log scanner
    // passes over `visa4111111111111111`, this search must not.
    let planted = dir.path().join("planted.txt");
    let text = format!("x{}yvisa4111111111111111cust0042", drill::pool_password(3));
    std::fs::write(&planted, text).expect("write");
    let alternatives: Vec<String> = (0..drill::POOL)
        .map(|k| regex::escape(&drill::pool_password(k)))
        .collect();
    let clear = Regex::new(&alternatives.join("|")).expect("regex");
    assert_eq!(
        drill::search_file(&planted, &clear).expect("search"),
        (1, 1)
    );

    // Old passwords before and after the incident; the campaign.
    let rot = drill::rotate(&shop, &cfg).expect("rotate");
    assert_eq!(
        (
            rot.old_password_before.as_str(),
            rot.old_password_after.as_str()
        ),
        ("Accepted", "ResetRequired")
    );
    assert_eq!(
        (rot.affected, rot.sent),
        (CUSTOMERS as u64, CUSTOMERS as u64)
    );
    let not_once: Vec<usize> = (0..CUSTOMERS).filter(|&k| rot.notices[k] != 1).collect();
    assert!(
        not_once.is_empty(),
        "not notified exactly once: {not_once:?}"
    );
    assert_eq!(rot.per_brand.values().sum::<u64>(), CUSTOMERS as u64);
    assert_eq!(
        rot.addresses_opened, CUSTOMERS as u64,
        "every notice's address was opened from its sealed row"
    );
    assert_eq!(rot.per_brand.len(), 2, "{:?}", rot.per_brand);
    assert_eq!(
        count(&db, "SELECT count(DISTINCT account) FROM reset_tokens"),
        CUSTOMERS as u64
    );

    // Customers follow their links: the stolen password cannot come back, the new one works,
    // the old one is refused; a customer who has not reset yet still gets ResetRequired.
    assert_eq!(rot.links.len(), FOLLOWED);
    for (k, link) in rot.links.iter().enumerate() {
        let new = format!("fresh passphrase number {k} for the drill");
        let reset = drill::follow_link(&shop, link, Synthetic(k), &new).expect("reset");
        assert!(reset.stolen_as_new.starts_with("refused"), "{reset:?}");
        assert_eq!(
            (reset.new_login.as_str(), reset.old_login.as_str()),
            ("Accepted", "Rejected")
        );
    }
    let last = Synthetic(CUSTOMERS - 1);
    let waiting = shop
        .auth
        .login(&last.account(), &Password::new(last.password()))
        .expect("login");
    assert_eq!(drill::decision(&waiting), "ResetRequired");

    // The exposure report says what the database holds, field by field.
    let exposure = drill::exposure(&shop).expect("exposure");
    let n = CUSTOMERS as u64;
    let phones = count(&db, "SELECT count(*) FROM profiles WHERE phone IS NOT NULL");
    let expected = [
        ("name", Form::Sealed, n),
        ("email address", Form::Sealed, n),
        ("postal address", Form::Sealed, n),
        ("order history", Form::Plain, n),
        ("phone number", Form::Sealed, phones),
        ("password", Form::HashedArgon2id, n),
        ("card number", Form::Masked, with_card),
    ];
    assert_eq!(
        exposure.counts.len(),
        expected.len(),
        "{:?}",
        exposure.counts
    );
    for (field, form, want) in expected {
        assert_eq!(
            exposure.counts.get(&(field.to_owned(), form)),
            Some(&want),
            "{field}"
        );
    }
    assert_eq!(exposure.not_exposed, ["card number"]);
    assert!(
        exposure
            .sample_notice
            .contains("Not included: your full card number"),
        "{}",
        exposure.sample_notice
    );

    // Retention, as a dry run: dormant buyers purged, old orders stripped, holds kept.
    let summary = drill::retention(&shop).expect("retention");
    let three_years_ago = shopsafe::kernel::Timestamp::now().as_millis() - 3 * 365 * 86_400_000;
    let dormant = count(
        &db,
        &format!(
            "SELECT count(*) FROM profiles WHERE legal_hold = 0 AND last_activity_ms < {three_years_ago}"
        ),
    );
    assert_eq!(summary.get("profiles", "purge"), dormant);
    // Five customers are under a hold; those of them who are dormant are kept for it.
    let held_dormant = count(
        &db,
        &format!(
            "SELECT count(*) FROM profiles WHERE legal_hold = 1 AND last_activity_ms < {three_years_ago}"
        ),
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM profiles WHERE legal_hold = 1"),
        5
    );
    assert!(held_dormant > 0);
    assert_eq!(summary.get("profiles", "keep:LegalHold"), held_dormant);
    assert!(summary.get("orders", "strip_pii") > 0);
    assert_eq!(
        count(&db, "SELECT count(*) FROM profiles"),
        n,
        "a dry run deletes nothing"
    );

    // No card number anywhere on the customer side, though the log was handed some.
    std::io::Write::flush(&mut *shop.log.borrow_mut()).expect("flush the log");
    assert!(shop.log.borrow().redacted() > 0);
    let customer = shop.store.path().to_path_buf();
    let wal = customer.with_extension("db-wal");
    assert!(wal.exists(), "the WAL is still there to be read");
    for path in [customer.clone(), wal] {
        let (cards, _) = drill::search_file(&path, &clear).expect("search");
        assert_eq!(cards, 0, "{}", path.display());
    }
    assert_eq!(cards_in(&dir.path().join("app.log")), 0, "the log");
}

#[test]
fn the_one_pass_search_counts_the_same_whatever_the_piece_size_and_copies_exactly() {
    // 40 of each kind of value in 40 KiB of bytes that match nothing, at offsets that
    // put many of them across the boundaries of small pieces.
    let dir = tempfile::tempdir().expect("dir");
    let (name, email) = ("Jane Doe", "jane.doe7@example.com");
    let password = drill::pool_password(2);
    let mut bytes: Vec<u8> = (0..40_960u32).map(|i| (i % 31) as u8).collect();
    let items: [&[u8]; 4] = [
        b"4111111111111111",
        password.as_bytes(),
        name.as_bytes(),
        email.as_bytes(),
    ];
    let mut r = 0x5eed_u64;
    for slot in 0..160 {
        r = r.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let at = slot * 256 + usize::try_from(r >> 59).expect("small") * 6;
        let item = items[slot % 4];
        bytes[at..at + item.len()].copy_from_slice(item);
    }
    let from = dir.path().join("source.db");
    std::fs::write(&from, &bytes).expect("write");
    let clear = Regex::new(&regex::escape(&password)).expect("regex");
    let anchors = drill::personal_anchors().expect("anchors");
    let mut seeded = vec![
        drill::value_hash(name.as_bytes()),
        drill::value_hash(email.as_bytes()),
    ];
    seeded.sort_unstable();
    let needles = drill::Needles {
        clear: &clear,
        personal: Some((&anchors, &seeded)),
    };
    let whole = drill::copy_and_search_in(&from, None, &needles, 1 << 20).expect("search");
    assert!(whole.cards >= 40, "{whole:?}");
    assert_eq!((whole.passwords, whole.personal), (40, 80), "{whole:?}");
    for piece in [512, 600, 777, 1_000, 4_096] {
        let to = dir.path().join(format!("copy-{piece}.db"));
        let found = drill::copy_and_search_in(&from, Some(&to), &needles, piece).expect("search");
        assert_eq!(found, whole, "pieces of {piece} bytes");
        assert_eq!(
            std::fs::read(&to).expect("copy"),
            bytes,
            "the copy is exact"
        );
    }
}
