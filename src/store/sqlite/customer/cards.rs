//! Cards on file (the customer side: tokens, never numbers).

use super::{
    AccountId, CardOnFile, CardOnFileStore, CardRow, SqliteStore, StoreError, Timestamp, be,
    card_from_row, save_card_in,
};

impl CardOnFileStore for SqliteStore {
    fn save_card(
        &self,
        account: &AccountId,
        card: &CardOnFile,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.with(|c| save_card_in(c, account, card, now))
    }

    fn cards(&self, account: &AccountId) -> Result<Vec<CardOnFile>, StoreError> {
        self.with(|c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT token, brand, last4, exp_month, exp_year, fingerprint_key, fingerprint
                     FROM cards_on_file WHERE account = ?1 ORDER BY added_at, token",
                )
                .map_err(be("load cards on file"))?;
            let rows = stmt
                .query_map([account.as_str()], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                    ))
                })
                .and_then(Iterator::collect::<Result<Vec<CardRow>, _>>)
                .map_err(be("load cards on file"))?;
            rows.into_iter().map(card_from_row).collect()
        })
    }
}
