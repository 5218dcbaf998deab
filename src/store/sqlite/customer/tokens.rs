//! Reset tokens: issue (self-service bound), find, redeem atomically.

use super::{
    AccountId, CredentialFlags, OptionalExtension, RedeemOutcome, Redemption, ResetTokenStore,
    SELF_SERVICE_LIVE, SqliteStore, StoreError, TokenPurpose, TokenRecord, be, begin, insert_token,
    params, redeem_refusal, to_i64, token_from_row, token_record,
};

impl ResetTokenStore for SqliteStore {
    fn issue_token(&self, record: &TokenRecord) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = begin(c, "begin")?;
            if record.purpose == TokenPurpose::SelfService {
                tx.prepare_cached(
                    "DELETE FROM reset_tokens WHERE account = ?1 AND purpose = 'self-service' AND used_at IS NULL
                     AND (expires_at <= ?2 OR digest NOT IN (
                         SELECT digest FROM reset_tokens WHERE account = ?1 AND purpose = 'self-service'
                         AND used_at IS NULL ORDER BY issued_at DESC, digest DESC LIMIT ?3))",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        record.account.as_str(),
                        record.issued_at.as_millis(),
                        to_i64(SELF_SERVICE_LIVE as u64 - 1)
                    ])
                })
                .map_err(be("drop old self-service tokens"))?;
            }
            insert_token(&tx, record)?;
            tx.commit().map_err(be("commit token"))
        })
    }

    fn find_token(
        &self,
        account: &AccountId,
        digest: &[u8; 32],
    ) -> Result<Option<TokenRecord>, StoreError> {
        self.with(|c| {
            c.prepare_cached(
                "SELECT account, digest, generation, purpose, issued_at, expires_at, used_at FROM reset_tokens WHERE account = ?1 AND digest = ?2",
            )
            .and_then(|mut s| s.query_row(params![account.as_str(), &digest[..]], token_from_row).optional())
            .map_err(be("find token"))?
            .map(token_record)
            .transpose()
        })
    }

    fn redeem_token(&self, r: &Redemption<'_>) -> Result<RedeemOutcome, StoreError> {
        self.with(|c| {
            let tx = begin(c, "begin redemption")?;
            let row = tx
                .prepare_cached(
                    "SELECT t.account, t.generation, t.expires_at, t.used_at, c.generation, c.phc
                     FROM reset_tokens t JOIN credentials c ON c.account = t.account WHERE t.account = ?1 AND t.digest = ?2",
                )
                .and_then(|mut s| {
                    s.query_row(params![r.account.as_str(), &r.digest[..]], |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, i64>(1)?,
                            row.get::<_, i64>(2)?,
                            row.get::<_, Option<i64>>(3)?,
                            row.get::<_, i64>(4)?,
                            row.get::<_, String>(5)?,
                        ))
                    })
                    .optional()
                })
                .map_err(be("find token"))?;
            let Some((account, token_gen, expires_at, used_at, cred_gen, old_phc)) = row else {
                return Ok(RedeemOutcome::Unknown);
            };
            if let Some(refused) = redeem_refusal(used_at, expires_at, r.now, token_gen, cred_gen) {
                return Ok(refused);
            }
            tx.execute(
                "UPDATE reset_tokens SET used_at = ?3 WHERE account = ?1 AND digest = ?2",
                params![r.account.as_str(), &r.digest[..], r.now.as_millis()],
            )
                .map_err(be("mark token used"))?;
            let keep = to_i64(r.history_keep as u64);
            if keep > 0 {
                tx.execute(
                    "INSERT INTO password_history (account, seq, phc)
                     VALUES (?1, coalesce((SELECT max(seq) FROM password_history WHERE account = ?1), 0) + 1, ?2)",
                    params![account, old_phc],
                )
                .map_err(be("record history"))?;
            }
            tx.execute(
                "DELETE FROM password_history WHERE account = ?1 AND seq <=
                   coalesce((SELECT max(seq) FROM password_history WHERE account = ?1), 0) - ?2",
                params![account, keep],
            )
            .map_err(be("trim history"))?;
            tx.execute(
                "UPDATE credentials SET phc = ?2, generation = generation + 1, set_at = ?3, stamp = ?4,
                   flags = flags & ~?5 WHERE account = ?1",
                params![
                    account,
                    r.new_hash.to_phc_string(),
                    r.now.as_millis(),
                    &r.new_stamp.as_bytes()[..],
                    i64::from(CredentialFlags::MUST_RESET.bits())
                ],
            )
            .map_err(be("write new password"))?;
            tx.commit().map_err(be("commit redemption"))?;
            Ok(RedeemOutcome::Redeemed { account: AccountId::new(account).map_err(|_| StoreError::Corrupt { what: "account id" })? })
        })
    }
}
