//! Checks of `seal::LedgerStore` (the erasure ledger's table on the customer side).

use std::sync::{Arc, Barrier};

use crate::audit::AuditKey;
use crate::kernel::AccountId;
use crate::seal::{Erasure, ErasureLedger, LedgerStore};

fn id(s: &str) -> AccountId {
    AccountId::new(s).expect("id")
}

fn key() -> AuditKey {
    AuditKey::from_bytes([7; 32])
}

pub(super) fn entries_chain_from_the_head_and_read_back_in_order<S: LedgerStore + 'static>(
    store: S,
) {
    let store = Arc::new(store);
    assert!(
        store.ledger_head().expect("head").is_none(),
        "empty at first"
    );
    let ledger = ErasureLedger::new(Arc::clone(&store), &key()).checkpoint_every(0);
    let what = Erasure::new()
        .erased("profile")
        .and_then(|e| e.erased("adresses postales, numéros"))
        .and_then(|e| e.retained("orders without personal data", "tax law: 10 years"))
        .expect("erasure");
    let written = ledger
        .record(&[id("a"), id("b"), id("c")], &what)
        .expect("record");
    assert_eq!(written.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);
    let head = store.ledger_head().expect("head").expect("an entry");
    assert_eq!(head, written[2]);
    assert_eq!(store.ledger_entries(0, 2).expect("page"), written[..2]);
    assert_eq!(store.ledger_entries(2, 10).expect("page"), written[2..]);
    assert!(store.ledger_entries(3, 10).expect("page").is_empty());
    assert_eq!(
        head.erasure, what,
        "what was erased and retained reads back whole"
    );
    // An erasure naming nothing reads back as one.
    let bare = ledger.record(&[id("d")], &Erasure::new()).expect("record");
    assert_eq!(store.ledger_entries(3, 1).expect("page"), bare);
    // Checkpoints are kept in order.
    let one = ledger.checkpoint().expect("checkpoint");
    ledger.record(&[id("e")], &what).expect("record");
    let two = ledger.checkpoint().expect("checkpoint");
    assert_eq!(store.ledger_checkpoints().expect("read"), [one, two]);
    assert_eq!(ledger.verify(&[one, two]).expect("verify").entries, 5);
    // What a key store was seen to apply only moves up.
    assert_eq!(store.ledger_applied_seen().expect("seen"), 0);
    store.ledger_saw_applied(4).expect("saw");
    store.ledger_saw_applied(2).expect("saw less");
    assert_eq!(store.ledger_applied_seen().expect("seen"), 4);
    store.ledger_saw_applied(5).expect("saw");
    assert_eq!(store.ledger_applied_seen().expect("seen"), 5);
    store.ledger_reset_applied(1).expect("reset");
    assert_eq!(store.ledger_applied_seen().expect("seen"), 1);
}

pub(super) fn two_appenders_at_once_never_chain_from_one_head<S: LedgerStore + 'static>(store: S) {
    const EACH: usize = 40;
    let store = Arc::new(store);
    let start = Arc::new(Barrier::new(2));
    let threads: Vec<_> = ["x", "y"]
        .into_iter()
        .map(|side| {
            let (store, start) = (Arc::clone(&store), Arc::clone(&start));
            std::thread::spawn(move || {
                let ledger = ErasureLedger::new(store, &key());
                start.wait();
                for i in 0..EACH {
                    ledger
                        .record(&[id(&format!("{side}{i}"))], &Erasure::new())
                        .expect("record");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("appender");
    }
    let ledger = ErasureLedger::new(Arc::clone(&store), &key());
    assert_eq!(
        ledger.verify(&[]).expect("one chain").entries,
        2 * EACH as u64,
        "every entry, each chained from the one before"
    );
}
