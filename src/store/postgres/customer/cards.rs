//! Cards on file (the customer side: tokens, never numbers).

use super::{
    AccountId, CardOnFile, CardOnFileStore, CardRow, PgStore, StoreError, Timestamp, be,
    card_from_row, save_card_in,
};

impl CardOnFileStore for PgStore {
    fn save_card(
        &self,
        account: &AccountId,
        card: &CardOnFile,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.pool.with(|c| save_card_in(c, account, card, now))
    }

    fn cards(&self, account: &AccountId) -> Result<Vec<CardOnFile>, StoreError> {
        self.pool.with(|c| {
            c.query(
                "SELECT token, brand, last4, exp_month, exp_year, fingerprint_key, fingerprint
                 FROM cards_on_file WHERE account = $1 ORDER BY added_at, token",
                &[&account.as_str()],
            )
            .map_err(be("load cards on file"))?
            .iter()
            .map(|r| {
                let row: CardRow = (
                    r.get(0),
                    r.get(1),
                    r.get(2),
                    r.get(3),
                    r.get(4),
                    r.get(5),
                    r.get(6),
                );
                card_from_row(row)
            })
            .collect()
        })
    }
}
