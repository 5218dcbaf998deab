//! Reset tokens: issue (self-service bound), find, redeem atomically.

use super::{
    AccountId, CredentialFlags, PgStore, RedeemOutcome, Redemption, ResetTokenStore,
    SELF_SERVICE_LIVE, StoreError, TokenPurpose, TokenRecord, be, corrupt_account, insert_token,
    to_i64, token_record, token_row,
};
use crate::store::rows::redeem_refusal;

impl ResetTokenStore for PgStore {
    fn issue_token(&self, record: &TokenRecord) -> Result<(), StoreError> {
        self.pool.with(|c| {
            let mut tx = c.transaction().map_err(be("begin"))?;
            if record.purpose == TokenPurpose::SelfService {
                tx.execute(
                    "DELETE FROM reset_tokens WHERE account = $1 AND purpose = 'self-service' AND used_at IS NULL
                     AND (expires_at <= $2 OR digest NOT IN (
                         SELECT digest FROM reset_tokens WHERE account = $1 AND purpose = 'self-service'
                         AND used_at IS NULL ORDER BY issued_at DESC, digest DESC LIMIT $3))",
                    &[
                        &record.account.as_str(),
                        &record.issued_at.as_millis(),
                        &to_i64(SELF_SERVICE_LIVE as u64 - 1),
                    ],
                )
                .map_err(be("drop old self-service tokens"))?;
            }
            insert_token(&mut tx, record)?;
            tx.commit().map_err(be("commit token"))
        })
    }

    fn find_token(
        &self,
        account: &AccountId,
        digest: &[u8; 32],
    ) -> Result<Option<TokenRecord>, StoreError> {
        self.pool.with(|c| {
            c.query_opt(
                "SELECT account, digest, generation, purpose, issued_at, expires_at, used_at
                 FROM reset_tokens WHERE account = $1 AND digest = $2",
                &[&account.as_str(), &&digest[..]],
            )
            .map_err(be("find token"))?
            .map(|r| token_record(token_row(&r)))
            .transpose()
        })
    }

    fn redeem_token(&self, r: &Redemption<'_>) -> Result<RedeemOutcome, StoreError> {
        self.pool.with(|c| {
            let mut tx = c.transaction().map_err(be("begin redemption"))?;
            // Both rows locked: a second server redeeming the same token waits here, then
            // reads `used_at` as the first one left it.
            let row = tx
                .query_opt(
                    "SELECT t.account, t.generation, t.expires_at, t.used_at, c.generation, c.phc
                     FROM reset_tokens t JOIN credentials c ON c.account = t.account
                     WHERE t.account = $1 AND t.digest = $2 FOR UPDATE",
                    &[&r.account.as_str(), &&r.digest[..]],
                )
                .map_err(be("find token"))?;
            let Some(row) = row else {
                return Ok(RedeemOutcome::Unknown);
            };
            let account: String = row.get(0);
            let (token_gen, expires_at): (i64, i64) = (row.get(1), row.get(2));
            let (used_at, cred_gen): (Option<i64>, i64) = (row.get(3), row.get(4));
            let old_phc: String = row.get(5);
            if let Some(refused) = redeem_refusal(used_at, expires_at, r.now, token_gen, cred_gen) {
                return Ok(refused);
            }
            tx.execute(
                "UPDATE reset_tokens SET used_at = $3 WHERE account = $1 AND digest = $2",
                &[&r.account.as_str(), &&r.digest[..], &r.now.as_millis()],
            )
            .map_err(be("mark token used"))?;
            let keep = to_i64(r.history_keep as u64);
            if keep > 0 {
                tx.execute(
                    "INSERT INTO password_history (account, seq, phc)
                     VALUES ($1, coalesce((SELECT max(seq) FROM password_history WHERE account = $1), 0) + 1, $2)",
                    &[&account, &old_phc],
                )
                .map_err(be("record history"))?;
            }
            tx.execute(
                "DELETE FROM password_history WHERE account = $1 AND seq <=
                   coalesce((SELECT max(seq) FROM password_history WHERE account = $1), 0) - $2",
                &[&account, &keep],
            )
            .map_err(be("trim history"))?;
            tx.execute(
                "UPDATE credentials SET phc = $2, generation = generation + 1, set_at = $3, stamp = $4,
                   flags = flags & ~$5::bigint WHERE account = $1",
                &[
                    &account,
                    &r.new_hash.to_phc_string(),
                    &r.now.as_millis(),
                    &&r.new_stamp.as_bytes()[..],
                    &i64::from(CredentialFlags::MUST_RESET.bits()),
                ],
            )
            .map_err(be("write new password"))?;
            tx.commit().map_err(be("commit redemption"))?;
            Ok(RedeemOutcome::Redeemed {
                account: AccountId::new(account).map_err(corrupt_account)?,
            })
        })
    }
}
