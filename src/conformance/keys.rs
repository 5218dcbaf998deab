//! Checks of [`KeyStore`]: the customer key store.

use std::sync::{Arc, Mutex};

use crate::card::{KeySource, VaultKey, VaultKeyId};
use crate::kernel::{AccountId, Timestamp};
use crate::minimize::PiiKind;
use crate::persist::StoreError;
use crate::seal::{Column, Erasure, Error, KeyStore, Sealer, WrappedIndexKey, WrappedKey};

fn id(s: &str) -> AccountId {
    AccountId::new(s).expect("account id")
}

fn kek(s: &str) -> VaultKeyId {
    VaultKeyId::new(s).expect("kek id")
}

fn key(customer: &str, version: u32, epoch: &str, byte: u8) -> WrappedKey {
    WrappedKey::new(
        id(customer),
        version,
        kek(epoch),
        vec![byte; 72],
        Timestamp::from_millis(1_000),
    )
}

/// KEKs in memory, for the checks that go through a [`Sealer`].
struct Keks(Mutex<Vec<(VaultKeyId, [u8; 32])>>);

impl KeySource for Keks {
    fn keys(&self) -> Result<Vec<(VaultKeyId, VaultKey)>, crate::card::Error> {
        self.0
            .lock()
            .expect("lock")
            .iter()
            .map(|(id, k)| Ok((id.clone(), VaultKey::from_bytes(k)?)))
            .collect()
    }
    fn add(&self, id: &VaultKeyId, _: &VaultKey) -> Result<(), crate::card::Error> {
        // Each epoch's bytes are its number, so the test can add one by id.
        let byte = u8::try_from(self.0.lock().expect("lock").len() + 1).expect("few");
        self.0.lock().expect("lock").push((id.clone(), [byte; 32]));
        Ok(())
    }
    fn destroy(&self, id: &VaultKeyId) -> Result<(), crate::card::Error> {
        self.0.lock().expect("lock").retain(|(k, _)| k != id);
        Ok(())
    }
}

pub(super) fn the_store_id_is_stable_and_a_data_key_is_inserted_once(store: &impl KeyStore) {
    let first = store.store_id().expect("id");
    assert_eq!(store.store_id().expect("id"), first, "the id is stable");
    assert_ne!(first, [0; 16], "the id is random, not zero");
    let jane = key("jane", 1, "e1", 1);
    assert_eq!(
        store
            .insert_data_keys(std::slice::from_ref(&jane), &[])
            .expect("insert"),
        std::slice::from_ref(&jane)
    );
    // A second server's key for the same customer and version loses to the first; the
    // answer keeps the order of the batch.
    let late = key("jane", 1, "e1", 2);
    let v2 = key("jane", 2, "e1", 3);
    let omar = key("omar", 1, "e1", 4);
    assert_eq!(
        store
            .insert_data_keys(&[omar.clone(), late, v2.clone()], &[])
            .expect("insert"),
        [omar.clone(), jane.clone(), v2.clone()],
        "the first key stays and is returned"
    );
    assert!(store.insert_data_keys(&[], &[]).expect("empty").is_empty());
    let mut got = store
        .data_keys(&[id("jane"), id("omar"), id("nobody")])
        .expect("read");
    got.sort_by(|a, b| (a.customer.as_str(), a.version).cmp(&(b.customer.as_str(), b.version)));
    assert_eq!(got, [jane, v2, omar.clone()]);
    assert!(store.data_keys(&[]).expect("read").is_empty());
    // A batch larger than one query of the backend's.
    let many: Vec<AccountId> = (0..1_200).map(|i| id(&format!("c{i:05}"))).collect();
    let every_third: Vec<WrappedKey> = many
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 == 0)
        .map(|(i, c)| key(c.as_str(), 1, "e1", u8::try_from(i % 250).expect("byte")))
        .collect();
    assert_eq!(
        store
            .insert_data_keys(&every_third, &[])
            .expect("insert")
            .len(),
        400
    );
    assert_eq!(store.data_keys(&many).expect("read").len(), 400);
}

pub(super) fn keys_not_under_an_epoch_page_in_order_and_rewrap_once(store: &impl KeyStore) {
    let mut keys: Vec<WrappedKey> = ["c", "a", "e", "b", "d"]
        .iter()
        .map(|c| key(c, 1, "old", 1))
        .collect();
    keys.push(key("a", 2, "old", 1));
    keys.push(key("f", 1, "new", 1));
    store.insert_data_keys(&keys, &[]).expect("insert");
    store
        .insert_index_key(&WrappedIndexKey::new(
            "t.email".into(),
            kek("old"),
            vec![9; 72],
        ))
        .expect("index key");
    let page = |after: Option<(&AccountId, u32)>| {
        store
            .keys_not_under(&kek("new"), after, 3)
            .expect("page")
            .into_iter()
            .map(|k| (k.customer.as_str().to_owned(), k.version))
            .collect::<Vec<_>>()
    };
    let first = page(None);
    assert_eq!(first, [("a".into(), 1), ("a".into(), 2), ("b".into(), 1)]);
    let a = id("a");
    assert_eq!(
        page(Some((&a, 2))),
        [("b".into(), 1), ("c".into(), 1), ("d".into(), 1)],
        "the cursor is exclusive and orders by (customer, version)"
    );
    let counts = store.count_by_kek().expect("count");
    assert_eq!(counts, [(kek("new"), 1), (kek("old"), 7)]);
    let moved: Vec<(VaultKeyId, WrappedKey)> = ["a", "b"]
        .iter()
        .map(|c| (kek("old"), key(c, 1, "new", 7)))
        .collect();
    assert_eq!(store.rewrap_data_keys(&moved).expect("rewrap"), 2);
    assert_eq!(
        store.rewrap_data_keys(&moved).expect("rewrap again"),
        0,
        "a row no longer under the old epoch is not changed twice"
    );
    let b = store.data_keys(&[id("b")]).expect("read");
    assert_eq!(b, [key("b", 1, "new", 7)]);
    assert_eq!(
        page(None),
        [("a".into(), 2), ("c".into(), 1), ("d".into(), 1)]
    );
    let index = WrappedIndexKey::new("t.email".into(), kek("new"), vec![8; 72]);
    assert!(store.rewrap_index_key(&kek("old"), &index).expect("rewrap"));
    assert!(!store.rewrap_index_key(&kek("old"), &index).expect("again"));
    assert_eq!(store.index_keys().expect("read"), [index]);
    assert_eq!(
        store.count_by_kek().expect("count"),
        [(kek("new"), 4), (kek("old"), 4)]
    );
}

pub(super) fn index_keys_are_inserted_once(store: &impl KeyStore) {
    let first = WrappedIndexKey::new("profiles.email".into(), kek("e1"), vec![1; 72]);
    assert_eq!(store.insert_index_key(&first).expect("insert"), first);
    let late = WrappedIndexKey::new("profiles.email".into(), kek("e1"), vec![2; 72]);
    assert_eq!(store.insert_index_key(&late).expect("insert"), first);
    let phone = WrappedIndexKey::new("profiles.phone".into(), kek("e1"), vec![3; 72]);
    store.insert_index_key(&phone).expect("insert");
    assert_eq!(store.index_keys().expect("read"), [first, phone]);
}

pub(super) fn two_servers_sealing_a_new_customer_at_once_share_one_key<S: KeyStore + 'static>(
    store: Arc<S>,
) {
    let keks = Arc::new(Keks(Mutex::new(vec![(kek("e1"), [1; 32])])));
    let email = Column::new("profiles", "email", PiiKind::Email).expect("column");
    let sealed: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let (store, keks, email) = (Arc::clone(&store), Arc::clone(&keks), email.clone());
                scope.spawn(move || {
                    let sealer = Sealer::new(store, &*keks).expect("sealer");
                    sealer
                        .seal(&id("new"), &email, "r", &format!("n{i}@example.com"))
                        .expect("seal")
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    assert_eq!(store.data_keys(&[id("new")]).expect("read").len(), 1);
    let sealer = Sealer::new(Arc::clone(&store), &*keks).expect("sealer");
    for (i, s) in sealed.iter().enumerate() {
        let opened = sealer
            .open(&id("new"), &email, "r", s)
            .expect("every value opens");
        assert_eq!(opened.expose(), &format!("n{i}@example.com"));
    }
}

pub(super) fn a_kek_rotation_rewraps_every_key_and_opens_every_value<S: KeyStore>(store: S) {
    let store = Arc::new(store);
    let keks = Keks(Mutex::new(vec![(kek("e1"), [1; 32])]));
    let name = Column::new("profiles", "name", PiiKind::PersonName).expect("column");
    let email = Column::new("profiles", "email", PiiKind::Email).expect("column");
    let customers: Vec<AccountId> = (0..25).map(|i| id(&format!("c{i:02}"))).collect();
    // A process started before the rotation: e1 is its current epoch, for its life.
    let old = Sealer::new(Arc::clone(&store), &keks).expect("sealer");
    let sealed: Vec<_> = customers
        .iter()
        .map(|c| {
            old.seal(c, &name, c.as_str(), &format!("Name {c:?}"))
                .expect("seal")
        })
        .collect();
    let index = old.blind_index(&email, "jane@example.com").expect("index");
    // A new epoch, and a sealer over it.
    keks.add(&kek("e2"), &VaultKey::from_bytes(&[0; 32]).expect("key"))
        .expect("add");
    let sealer = Sealer::new(Arc::clone(&store), &keks).expect("sealer");
    assert_eq!(sealer.current_kek(), &kek("e2"));
    assert!(
        matches!(
            sealer.retire_kek(&keks, &kek("e1")),
            Err(Error::KekInUse { keys: 27, .. })
        ),
        "not while keys are under it"
    );
    // A run cut off after its first batch (a crash: here a panic in the progress
    // callback) leaves every key under one epoch or the other; the next run does the rest.
    let cut = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        sealer.rewrap(10, |_| panic!("cut off"))
    }));
    assert!(cut.is_err());
    let counts = store.count_by_kek().expect("count");
    assert_eq!(
        counts,
        [(kek("e1"), 15), (kek("e2"), 12)],
        "one batch, the email index key and the tombstone key"
    );
    let mut seen = Vec::new();
    let report = sealer
        .rewrap(10, |p| seen.push(p.rewrapped))
        .expect("rewrap");
    assert_eq!(report.to_do, 15, "what the cut-off run left");
    assert_eq!((report.rewrapped, report.failed), (15, 0));
    assert_eq!(seen, [10, 15], "progress after each batch");
    assert_eq!(
        sealer.rewrap(10, |_| {}).expect("again").rewrapped,
        0,
        "a second run finds nothing to do"
    );
    sealer
        .retire_kek(&keks, &kek("e1"))
        .expect("retire the old epoch");
    assert_eq!(keks.keys().expect("keys").len(), 1, "e1 is destroyed");
    // The old process still wraps new keys under e1, from memory: refused, not lost.
    let late = id("late");
    assert!(
        matches!(
            old.seal(&late, &name, "late", "Late Comer"),
            Err(Error::KekRetired { kek: k }) if k == kek("e1")
        ),
        "a key under a retired epoch would be lost with it"
    );
    assert!(store.data_keys(&[late]).expect("read").is_empty());
    let new_column = Column::new("profiles", "phone", PiiKind::Phone).expect("column");
    assert!(matches!(
        old.blind_index(&new_column, "+44 20 7946 0000"),
        Err(Error::KekRetired { .. })
    ));
    drop(old);
    let sealer = Sealer::new(Arc::clone(&store), &keks).expect("sealer");
    let rows: Vec<_> = customers
        .iter()
        .zip(sealed)
        .map(|(c, s)| (c.clone(), c.as_str().to_owned(), s))
        .collect();
    let opened = sealer.open_all(&name, &rows).expect("batch");
    assert_eq!(opened.len(), 25);
    for ((c, _, _), o) in rows.iter().zip(opened) {
        assert_eq!(o.expect("opens").expose(), &format!("Name {c:?}"));
    }
    assert_eq!(
        sealer
            .blind_index(&email, "JANE@example.com")
            .expect("index"),
        index,
        "the index key survived the rotation"
    );
}

pub(super) fn a_retired_epoch_takes_no_more_keys(store: &impl KeyStore) {
    store
        .insert_data_keys(&[key("a", 1, "e1", 1)], &[])
        .expect("insert");
    assert_eq!(store.retire_kek(&kek("e1")).expect("retire"), 1, "in use");
    store
        .insert_data_keys(&[key("b", 1, "e1", 1)], &[])
        .expect("not retired while in use");
    let moved = [
        (kek("e1"), key("a", 1, "e2", 2)),
        (kek("e1"), key("b", 1, "e2", 2)),
    ];
    assert_eq!(store.rewrap_data_keys(&moved).expect("rewrap"), 2);
    assert_eq!(store.retire_kek(&kek("e1")).expect("retire"), 0);
    assert_eq!(store.retire_kek(&kek("e1")).expect("again"), 0);
    let refused = |r: Result<_, StoreError>| matches!(r, Err(StoreError::Retired { .. }));
    assert!(refused(
        store
            .insert_data_keys(&[key("c", 1, "e1", 1)], &[])
            .map(drop)
    ));
    assert!(refused(
        store
            .insert_index_key(&WrappedIndexKey::new("t.x".into(), kek("e1"), vec![1; 72]))
            .map(drop)
    ));
    assert!(refused(
        store
            .rewrap_data_keys(&[(kek("e2"), key("a", 1, "e1", 3))])
            .map(drop)
    ));
    assert!(store.data_keys(&[id("c")]).expect("read").is_empty());
    assert_eq!(
        store.data_keys(&[id("a")]).expect("read"),
        [key("a", 1, "e2", 2)]
    );
    // Other epochs are untouched.
    store
        .insert_data_keys(&[key("c", 1, "e2", 1)], &[])
        .expect("insert under e2");
}

pub(super) fn retiring_an_epoch_while_another_process_writes_under_it_loses_no_key<
    S: KeyStore + 'static,
>(
    store: Arc<S>,
) {
    // One process keeps making keys under e1 (it started before the rotation); another
    // rewraps what it finds under e1 and retires e1 as soon as nothing is left. Whatever
    // the interleaving, no key may stay under the retired epoch.
    let written = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            // Until refused: the writer must meet the retirement, not finish first.
            for i in 0..1_000_000 {
                match store.insert_data_keys(&[key(&format!("w{i:07}"), 1, "e1", 1)], &[]) {
                    Ok(_) => {
                        written.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        // A new customer now and then, as a web tier makes them: leaves
                        // the retirement a moment to find nothing under the epoch.
                        std::thread::sleep(std::time::Duration::from_millis(2));
                    }
                    Err(StoreError::Retired { .. }) => return true,
                    Err(e) => panic!("insert: {e}"),
                }
            }
            false
        });
        let mut retired = false;
        for _ in 0..10_000 {
            let under = store.keys_not_under(&kek("e2"), None, 1_000).expect("read");
            let moved: Vec<_> = under
                .into_iter()
                .map(|k| {
                    (
                        k.kek.clone(),
                        WrappedKey {
                            kek: kek("e2"),
                            ..k
                        },
                    )
                })
                .collect();
            store.rewrap_data_keys(&moved).expect("rewrap");
            if store.retire_kek(&kek("e1")).expect("retire") == 0 {
                retired = true;
                break;
            }
        }
        assert!(retired, "the epoch was retired at last");
        let stopped = writer.join().expect("writer");
        let counts = store.count_by_kek().expect("count");
        assert!(
            counts.iter().all(|(k, _)| *k != kek("e1")),
            "a key was left under the retired epoch: {counts:?}"
        );
        let total: u64 = counts.iter().map(|(_, n)| n).sum();
        assert_eq!(
            total,
            written.load(std::sync::atomic::Ordering::SeqCst),
            "every key written is there"
        );
        assert!(stopped, "the writer was refused once the epoch was retired");
    });
}

pub(super) fn erasure_destroys_every_version_and_keeps_only_a_tombstone<S: KeyStore>(store: S) {
    store
        .insert_data_keys(
            &[
                key("a", 1, "e1", 1),
                key("a", 2, "e1", 2),
                key("b", 1, "e1", 3),
            ],
            &[],
        )
        .expect("insert");
    let (ta, tb, tc) = ([1u8; 16], [2u8; 16], [3u8; 16]);
    assert_eq!(store.erase_customers(&[id("a")], &[ta]).expect("erase"), 2);
    assert!(store.data_keys(&[id("a")]).expect("read").is_empty());
    assert_eq!(
        store.data_keys(&[id("b")]).expect("read").len(),
        1,
        "b untouched"
    );
    assert_eq!(store.erased(&[ta, tb]).expect("erased"), [ta]);
    assert_eq!(store.erase_customers(&[id("a")], &[ta]).expect("again"), 0);
    assert_eq!(
        store.erase_customers(&[id("c")], &[tc]).expect("no keys"),
        0
    );
    let mut both = store.erased(&[tb, tc, ta]).expect("erased");
    both.sort_unstable();
    assert_eq!(both, [ta, tc]);
    assert_eq!(store.count_by_kek().expect("count"), [(kek("e1"), 1)]);
    // Through a sealer: erased is `Erased`, not noise, and gets no new key.
    let keks = Keks(Mutex::new(vec![(kek("e1"), [1; 32])]));
    let sealer = Sealer::new(store, &keks).expect("sealer");
    let email = Column::new("profiles", "email", PiiKind::Email).expect("column");
    let (jane, omar) = (id("jane"), id("omar"));
    let sealed = sealer
        .seal(&jane, &email, "1", "jane@example.com")
        .expect("seal");
    let kept = sealer
        .seal(&omar, &email, "2", "omar@example.com")
        .expect("seal");
    let mut seen = Vec::new();
    let destroyed = sealer
        .erase(
            &[jane.clone(), id("never-sealed")],
            &Erasure::new(),
            1,
            |n| seen.push(n),
        )
        .expect("erase");
    assert_eq!((destroyed, seen), (1, vec![1, 2]));
    assert!(matches!(
        sealer.open(&jane, &email, "1", &sealed),
        Err(Error::Erased)
    ));
    assert!(matches!(
        sealer.seal(&jane, &email, "1", "jane@example.com"),
        Err(Error::Erased)
    ));
    assert!(matches!(
        sealer.open(&id("stranger"), &email, "1", &sealed),
        Err(Error::NoDataKey)
    ));
    assert_eq!(
        sealer
            .open(&omar, &email, "2", &kept)
            .expect("open")
            .expose(),
        "omar@example.com"
    );
    let batch = sealer
        .open_all(
            &email,
            &[(jane, "1".into(), sealed), (omar, "2".into(), kept)],
        )
        .expect("batch");
    assert!(matches!(batch[0], Err(Error::Erased)));
    assert!(batch[1].is_ok());
}

pub(super) fn the_ledger_mark_only_moves_up_and_customers_page_in_order<S: KeyStore>(store: &S) {
    assert_eq!(store.ledger_applied().expect("mark"), None);
    assert!(store.advance_ledger(0, 5, &[5; 32], &[]).expect("advance"));
    assert!(!store.advance_ledger(0, 3, &[3; 32], &[]).expect("behind"));
    assert_eq!(store.ledger_applied().expect("mark"), Some((5, [5; 32])));
    // Only over tombstones that are there.
    store.erase_customers(&[], &[[8; 16]]).expect("tombstone");
    assert!(
        !store
            .advance_ledger(5, 6, &[6; 32], &[[8; 16], [7; 16]])
            .expect("not applied")
    );
    assert_eq!(store.ledger_applied().expect("mark"), Some((5, [5; 32])));
    assert!(
        store
            .advance_ledger(5, 6, &[6; 32], &[[8; 16], [8; 16]])
            .expect("advance")
    );
    assert_eq!(store.ledger_applied().expect("mark"), Some((6, [6; 32])));
    // Down only by an operator's reset.
    store.reset_ledger_mark(Some((2, [2; 32]))).expect("reset");
    assert_eq!(store.ledger_applied().expect("mark"), Some((2, [2; 32])));
    // Not from a mark the store no longer has (restored between the read and the write).
    assert!(
        !store
            .advance_ledger(3, 6, &[6; 32], &[])
            .expect("went back")
    );
    assert_eq!(store.ledger_applied().expect("mark"), Some((2, [2; 32])));
    store.reset_ledger_mark(None).expect("reset");
    assert_eq!(store.ledger_applied().expect("mark"), None);
    assert!(store.advance_ledger(0, 6, &[6; 32], &[]).expect("advance"));
    store
        .insert_data_keys(
            &[
                key("b", 1, "e1", 1),
                key("b", 2, "e1", 2),
                key("a", 1, "e1", 3),
                key("c", 1, "e1", 4),
            ],
            &[],
        )
        .expect("insert");
    let first = store.data_key_customers(None, 2).expect("page");
    assert_eq!(first, [id("a"), id("b")], "each customer once, in id order");
    let rest = store.data_key_customers(Some(&id("b")), 2).expect("page");
    assert_eq!(rest, [id("c")]);
    // Tombstones alone (a replay's, for ids the store never had a key for).
    assert_eq!(store.erase_customers(&[], &[[9; 16]]).expect("mark"), 0);
    assert_eq!(store.erased(&[[9; 16]]).expect("erased"), [[9; 16]]);
}

pub(super) fn an_erasure_racing_a_first_key_never_leaves_the_key<S: KeyStore + 'static>(
    store: Arc<S>,
) {
    use std::sync::Barrier;
    let mut refused = 0;
    for round in 0..40u8 {
        let who = id(&format!("race{round:02}"));
        let tombstone = [round; 16];
        let start = Arc::new(Barrier::new(2));
        let inserter = {
            let (store, start, k) = (
                Arc::clone(&store),
                Arc::clone(&start),
                key(who.as_str(), 1, "e1", 1),
            );
            std::thread::spawn(move || {
                start.wait();
                store.insert_data_keys(&[k], &[tombstone])
            })
        };
        let eraser = {
            let (store, start, who) = (Arc::clone(&store), Arc::clone(&start), who.clone());
            std::thread::spawn(move || {
                start.wait();
                store.erase_customers(&[who], &[tombstone])
            })
        };
        match inserter.join().expect("inserter") {
            Ok(_) => {}
            Err(StoreError::Retired {
                what: "erased customer",
            }) => refused += 1,
            Err(e) => panic!("round {round}: {e}"),
        }
        eraser.join().expect("eraser").expect("erase");
        assert!(
            store.data_keys(&[who]).expect("read").is_empty(),
            "round {round}: a key made at the moment of the erasure outlived it"
        );
    }
    // After the erasure, a key for the id is always refused.
    assert!(matches!(
        store.insert_data_keys(&[key("race00", 1, "e1", 2)], &[[0; 16]]),
        Err(StoreError::Retired { .. })
    ));
    let _ = refused;
}
