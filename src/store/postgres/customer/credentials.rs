//! Credential records: insert, load, replace a hash, flags, password history.

use super::{
    AccountId, BrandId, CredentialFlags, CredentialRecord, CredentialStore, PasswordHash, PgStore,
    SecurityStamp, StoreError, Timestamp, be, flags_from, generation_from, insert_credential_in,
    parse_phc, stamp_from, to_i64,
};

impl CredentialStore for PgStore {
    fn insert_credential(
        &self,
        account: &AccountId,
        brands: &[BrandId],
        hash: &PasswordHash,
        stamp: &SecurityStamp,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.pool.with(|c| {
            let mut tx = c.transaction().map_err(be("begin"))?;
            insert_credential_in(&mut tx, account, brands, hash, stamp, now)?;
            tx.commit().map_err(be("commit credential"))
        })
    }

    fn load_credential(&self, account: &AccountId) -> Result<Option<CredentialRecord>, StoreError> {
        self.pool.with(|c| {
            let Some(row) = c
                .query_opt(
                    "SELECT phc, generation, set_at, stamp, flags FROM credentials WHERE account = $1",
                    &[&account.as_str()],
                )
                .map_err(be("load credential"))?
            else {
                return Ok(None);
            };
            let brands = c
                .query(
                    "SELECT brand FROM account_brands WHERE account = $1 ORDER BY position",
                    &[&account.as_str()],
                )
                .map_err(be("load brands"))?
                .iter()
                .map(|r| {
                    BrandId::new(r.get::<_, String>(0))
                        .map_err(|_| StoreError::Corrupt { what: "brand id" })
                })
                .collect::<Result<_, _>>()?;
            let phc: String = row.get(0);
            let stamp: Vec<u8> = row.get(3);
            Ok(Some(CredentialRecord {
                account: account.clone(),
                hash: parse_phc(&phc)?,
                generation: generation_from(row.get(1))?,
                set_at: Timestamp::from_millis(row.get(2)),
                stamp: stamp_from(&stamp)?,
                flags: flags_from(row.get(4))?,
                brands,
            }))
        })
    }

    fn replace_hash(
        &self,
        account: &AccountId,
        generation: u64,
        hash: &PasswordHash,
    ) -> Result<bool, StoreError> {
        self.pool.with(|c| {
            c.execute(
                "UPDATE credentials SET phc = $3 WHERE account = $1 AND generation = $2",
                &[
                    &account.as_str(),
                    &to_i64(generation),
                    &hash.to_phc_string(),
                ],
            )
            .map(|n| n == 1)
            .map_err(be("replace hash"))
        })
    }

    fn set_flags(&self, account: &AccountId, flags: CredentialFlags) -> Result<bool, StoreError> {
        self.pool.with(|c| {
            c.execute(
                "UPDATE credentials SET flags = $2 WHERE account = $1",
                &[&account.as_str(), &i64::from(flags.bits())],
            )
            .map(|n| n == 1)
            .map_err(be("set flags"))
        })
    }

    fn password_history(
        &self,
        account: &AccountId,
        limit: usize,
    ) -> Result<Vec<PasswordHash>, StoreError> {
        self.pool.with(|c| {
            c.query(
                "SELECT phc FROM password_history WHERE account = $1 ORDER BY seq DESC LIMIT $2",
                &[&account.as_str(), &to_i64(limit as u64)],
            )
            .map_err(be("load history"))?
            .iter()
            .map(|r| parse_phc(r.get(0)))
            .collect()
        })
    }
}
