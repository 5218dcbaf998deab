//! Conformance checks of `card::CardOnFileStore`: cards on file round trip, per account,
//! oldest first, and saving one again replaces it.

use super::support::{acct, t};
use crate::card::{
    Brand, CardOnFile, CardOnFileStore, CardToken, Expiry, Fingerprint, Last4, VaultKeyId,
};

fn card(letter: char, brand: Brand, last4: &str) -> CardOnFile {
    CardOnFile::new(
        CardToken::parse(&format!("card_{}A", letter.to_string().repeat(25))).expect("a token"),
        brand,
        Last4::try_from(last4.to_owned()).expect("four digits"),
        Expiry::new(8, 2029).expect("an expiry"),
        Fingerprint {
            key_id: VaultKeyId::new("k1").expect("a key id"),
            mac: [u8::try_from(u32::from(letter) % 256).unwrap_or(0); 32],
        },
    )
}

pub(super) fn cards_on_file_round_trip_per_account(s: &impl CardOnFileStore) {
    let (jane, omar) = (acct("jane"), acct("omar"));
    let (visa, mir) = (
        card('B', Brand::Visa, "1111"),
        card('C', Brand::Mir, "0004"),
    );
    s.save_card(&jane, &visa, t(10)).expect("save");
    s.save_card(&jane, &mir, t(20)).expect("save");
    s.save_card(&omar, &card('D', Brand::Amex, "0005"), t(30))
        .expect("save");
    assert_eq!(
        s.cards(&jane).expect("cards"),
        vec![visa.clone(), mir.clone()]
    );
    assert_eq!(s.cards(&acct("nobody")).expect("cards"), vec![]);
    // Saving the same token again replaces its row (a new expiry, say).
    let mut renewed = visa;
    renewed.expiry = Expiry::new(9, 2031).expect("an expiry");
    s.save_card(&jane, &renewed, t(40)).expect("save again");
    let back = s.cards(&jane).expect("cards");
    assert_eq!(back.len(), 2);
    assert!(back.contains(&renewed) && back.contains(&mir), "{back:?}");
}
