//! `rotation::ThrottleStore`: values round-trip, expire and are swept; concurrent updates
//! never lose one; adjustments clear and give back.

pub(super) fn throttle_adjustments_clear_give_back_and_expire(
    s: &impl crate::rotation::ThrottleStore,
) {
    use crate::rotation::ThrottleAdjust::{Clear, GiveBack};
    let keys = [[1u8; 16], [2u8; 16], [3u8; 16], [4u8; 16]];
    s.update_throttle(&keys, 100, 0, &mut |v| {
        v.copy_from_slice(&[Some(1_000), Some(1_000), Some(1_000), Some(1_000)]);
    })
    .expect("write");
    s.adjust_throttle(
        &[
            (keys[0], Clear),
            (keys[1], GiveBack(300)),
            (keys[2], GiveBack(950)),
            ([9u8; 16], GiveBack(10)),
            ([8u8; 16], Clear),
        ],
        100,
    )
    .expect("adjust");
    let mut seen = Vec::new();
    s.update_throttle(&keys, 100, 0, &mut |v| seen = v.to_vec())
        .expect("read");
    assert_eq!(
        seen,
        [None, Some(700), None, Some(1_000)],
        "cleared; given back; given back to before now (gone); untouched"
    );
    assert_eq!(
        s.throttle_rows().expect("rows"),
        2,
        "keys that had no row get none"
    );
    s.adjust_throttle(&[], 100).expect("nothing to do");
}

pub(super) fn throttle_values_round_trip_expire_and_sweep(s: &impl crate::rotation::ThrottleStore) {
    let (a, b) = ([1u8; 16], [2u8; 16]);
    let mut seen = Vec::new();
    s.update_throttle(&[a, b], 100, 0, &mut |v| {
        seen.push(v.to_vec());
        v[0] = Some(500);
        v[1] = Some(150);
    })
    .expect("write");
    assert_eq!(seen, [vec![None, None]], "unknown keys read as None");
    assert_eq!(s.throttle_rows().expect("rows"), 2);
    s.update_throttle(&[b, a], 200, 0, &mut |v| seen.push(v.to_vec()))
        .expect("read");
    assert_eq!(
        seen[1],
        [None, Some(500)],
        "a value at or before now reads as None"
    );
    assert_eq!(
        s.throttle_rows().expect("rows"),
        1,
        "and None written back deletes it"
    );
    // Untouched, expired rows go in sweeps of at most the number asked.
    for k in 10..20u8 {
        s.update_throttle(&[[k; 16]], 1_000, 0, &mut |v| v[0] = Some(1_001))
            .expect("write");
    }
    s.update_throttle(&[[99; 16]], 5_000, 3, &mut |v| v[0] = None)
        .expect("sweep");
    let rows = s.throttle_rows().expect("rows");
    assert_eq!(rows, 8, "3 of 11 expired rows swept");
    let live = [3u8; 16];
    s.update_throttle(&[live], 5_000, 0, &mut |v| v[0] = Some(9_000))
        .expect("write");
    assert_eq!(s.throttle_rows().expect("rows"), rows + 1);
    s.update_throttle(&[live], 5_000, 0, &mut |v| v[0] = None)
        .expect("delete");
    assert_eq!(s.throttle_rows().expect("rows"), rows);
}

pub(super) fn concurrent_throttle_updates_never_lose_one(s: &impl crate::rotation::ThrottleStore) {
    let key = [7u8; 16];
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(move || {
                for _ in 0..25 {
                    s.update_throttle(&[key], 0, 0, &mut |v| {
                        v[0] = Some(v[0].unwrap_or(0) + 1);
                    })
                    .expect("update");
                }
            });
        }
    });
    let mut last = None;
    s.update_throttle(&[key], 0, 0, &mut |v| last = v[0])
        .expect("read");
    assert_eq!(last, Some(100), "every increment under the row's lock");
}
