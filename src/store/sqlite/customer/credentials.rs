//! Credential records: insert, load, replace a hash, flags, password history.

use super::{
    AccountId, BrandId, CredentialFlags, CredentialRecord, CredentialStore, OptionalExtension,
    PasswordHash, SecurityStamp, SqliteStore, StoreError, Timestamp, be, begin, flags_from,
    generation_from, insert_credential_in, params, parse_phc, stamp_from, to_i64,
};

impl CredentialStore for SqliteStore {
    fn insert_credential(
        &self,
        account: &AccountId,
        brands: &[BrandId],
        hash: &PasswordHash,
        stamp: &SecurityStamp,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = begin(c, "begin")?;
            insert_credential_in(&tx, account, brands, hash, stamp, now)?;
            tx.commit().map_err(be("commit credential"))
        })
    }

    fn load_credential(&self, account: &AccountId) -> Result<Option<CredentialRecord>, StoreError> {
        self.with(|c| {
            let row = c
                .prepare_cached("SELECT phc, generation, set_at, stamp, flags FROM credentials WHERE account = ?1")
                .and_then(|mut s| {
                    s.query_row([account.as_str()], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?, r.get::<_, Vec<u8>>(3)?, r.get::<_, i64>(4)?))
                    })
                    .optional()
                })
                .map_err(be("load credential"))?;
            let Some((phc, generation, set_at, stamp, flags)) = row else { return Ok(None) };
            let mut stmt = c
                .prepare_cached("SELECT brand FROM account_brands WHERE account = ?1 ORDER BY position")
                .map_err(be("load brands"))?;
            let brands = stmt
                .query_map([account.as_str()], |r| r.get::<_, String>(0))
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                .map_err(be("load brands"))?
                .into_iter()
                .map(|b| BrandId::new(b).map_err(|_| StoreError::Corrupt { what: "brand id" }))
                .collect::<Result<_, _>>()?;
            Ok(Some(CredentialRecord {
                account: account.clone(),
                hash: parse_phc(&phc)?,
                generation: generation_from(generation)?,
                set_at: Timestamp::from_millis(set_at),
                stamp: stamp_from(&stamp)?,
                flags: flags_from(flags)?,
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
        self.with(|c| {
            c.prepare_cached(
                "UPDATE credentials SET phc = ?3 WHERE account = ?1 AND generation = ?2",
            )
            .and_then(|mut s| {
                s.execute(params![
                    account.as_str(),
                    to_i64(generation),
                    hash.to_phc_string()
                ])
            })
            .map(|n| n == 1)
            .map_err(be("replace hash"))
        })
    }

    fn set_flags(&self, account: &AccountId, flags: CredentialFlags) -> Result<bool, StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE credentials SET flags = ?2 WHERE account = ?1",
                params![account.as_str(), i64::from(flags.bits())],
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
        self.with(|c| {
            let mut stmt = c
                .prepare_cached("SELECT phc FROM password_history WHERE account = ?1 ORDER BY seq DESC LIMIT ?2")
                .map_err(be("load history"))?;
            let rows = stmt
                .query_map(params![account.as_str(), to_i64(limit as u64)], |r| r.get::<_, String>(0))
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                .map_err(be("load history"))?;
            rows.iter().map(|s| parse_phc(s)).collect()
        })
    }
}
