//! Turning stored columns back into values, for every SQL backend: the column shapes are
//! the same in SQLite and PostgreSQL (text, 64-bit integers, byte strings).

use crate::card::{
    Brand, CardOnFile, CardToken, Expiry, Fingerprint, HeldCard, Last4, SealedCard, VaultKeyId,
};
use crate::kernel::{AccountId, BrandId, Timestamp};
use crate::password::PasswordHash;
use crate::persist::StoreError;
use crate::rotation::{
    CampaignId, CampaignState, ClaimedAccount, CredentialFlags, DeviceRecord, Incident, IncidentId,
    IncidentScope, RedeemOutcome, SecurityStamp, SessionId, SessionRecord, TokenPurpose,
    TokenRecord,
};
use crate::seal::{WrappedIndexKey, WrappedKey};

/// A reset token row: account, digest, generation, purpose, issued, expires, used.
pub(crate) type TokenRow = (String, Vec<u8>, i64, String, i64, i64, Option<i64>);

/// A card-on-file row: token, brand, last four, month, year, fingerprint key, fingerprint.
pub(crate) type CardRow = (String, String, String, i64, i64, String, Vec<u8>);

pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// A stored generation: never negative. A negative one is corruption, not generation 0
/// (reading it as 0 could match a token issued for the first credential).
pub(crate) fn generation_from(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt { what: "generation" })
}

/// Stored credential flags: a value outside `u32` is corruption. Reading it as "no flags"
/// would silently drop `DISABLED` and `MUST_RESET` (fail open).
pub(crate) fn flags_from(v: i64) -> Result<CredentialFlags, StoreError> {
    u32::try_from(v)
        .map(CredentialFlags::from_bits)
        .map_err(|_| StoreError::Corrupt {
            what: "credential flags",
        })
}

pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A sealed-card row: token, key id, nonce, ciphertext, fingerprint key, fingerprint,
/// created.
pub(crate) type SealedRow = (String, String, Vec<u8>, Vec<u8>, String, Vec<u8>, i64);

pub(crate) fn sealed_card(row: SealedRow) -> Result<SealedCard, StoreError> {
    let (token, key_id, nonce, ciphertext, fingerprint_key, fingerprint, created_at) = row;
    Ok(SealedCard::new(
        token_from(&token)?,
        key_id_from(&key_id, "vault key id")?,
        nonce
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::Corrupt { what: "nonce" })?,
        ciphertext,
        fingerprint_from(&fingerprint_key, &fingerprint)?,
        Timestamp::from_millis(created_at),
    ))
}

/// A card found by one of `fingerprints`: the stored token, with the fingerprint asked for.
pub(crate) fn held_card(token: &str, fingerprint: &Fingerprint) -> Result<HeldCard, StoreError> {
    Ok(HeldCard::new(token_from(token)?, fingerprint.clone()))
}

fn token_from(token: &str) -> Result<CardToken, StoreError> {
    CardToken::parse(token).map_err(|_| StoreError::Corrupt { what: "card token" })
}

fn key_id_from(id: &str, what: &'static str) -> Result<VaultKeyId, StoreError> {
    VaultKeyId::new(id).map_err(|_| StoreError::Corrupt { what })
}

fn fingerprint_from(key_id: &str, mac: &[u8]) -> Result<Fingerprint, StoreError> {
    Ok(Fingerprint {
        key_id: key_id_from(key_id, "fingerprint key id")?,
        mac: mac.try_into().map_err(|_| StoreError::Corrupt {
            what: "fingerprint",
        })?,
    })
}

/// The vault's shared key generation, read and bumped (the same SQL on both backends).
pub(crate) const READ_KEY_GENERATION: &str = "SELECT generation FROM key_generation WHERE id = 1";
pub(crate) const BUMP_KEY_GENERATION: &str =
    "UPDATE key_generation SET generation = generation + 1 WHERE id = 1 RETURNING generation";

/// The indexed part of a fingerprint: its first 8 bytes as an integer.
pub(crate) fn fingerprint8(mac: &[u8; 32]) -> i64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&mac[..8]);
    i64::from_be_bytes(b)
}

pub(crate) fn parse_phc(s: &str) -> Result<PasswordHash, StoreError> {
    PasswordHash::parse(s).map_err(|_| StoreError::Corrupt {
        what: "password hash",
    })
}

pub(crate) fn stamp_from(blob: &[u8]) -> Result<SecurityStamp, StoreError> {
    let bytes: [u8; 16] = blob.try_into().map_err(|_| StoreError::Corrupt {
        what: "security stamp",
    })?;
    Ok(SecurityStamp::from_bytes(bytes))
}

pub(crate) fn purpose_str(p: TokenPurpose) -> &'static str {
    match p {
        TokenPurpose::Incident => "incident",
        TokenPurpose::SelfService => "self-service",
    }
}

pub(crate) fn token_record(row: TokenRow) -> Result<TokenRecord, StoreError> {
    let (account, digest, generation, purpose, issued_at, expires_at, used_at) = row;
    let digest: [u8; 32] = digest
        .as_slice()
        .try_into()
        .map_err(|_| StoreError::Corrupt {
            what: "token digest",
        })?;
    let purpose = match purpose.as_str() {
        "incident" => TokenPurpose::Incident,
        "self-service" => TokenPurpose::SelfService,
        _ => {
            return Err(StoreError::Corrupt {
                what: "token purpose",
            });
        }
    };
    Ok(TokenRecord {
        digest,
        account: AccountId::new(account).map_err(|_| StoreError::Corrupt { what: "account id" })?,
        generation: generation_from(generation)?,
        purpose,
        issued_at: Timestamp::from_millis(issued_at),
        expires_at: Timestamp::from_millis(expires_at),
        used_at: used_at.map(Timestamp::from_millis),
    })
}

pub(crate) fn brand_str(b: Brand) -> &'static str {
    match b {
        Brand::Visa => "visa",
        Brand::Mastercard => "mastercard",
        Brand::Amex => "amex",
        Brand::Discover => "discover",
        Brand::Jcb => "jcb",
        Brand::DinersClub => "diners",
        Brand::UnionPay => "unionpay",
        Brand::Maestro => "maestro",
        Brand::Mir => "mir",
        Brand::Troy => "troy",
        Brand::Uatp => "uatp",
        Brand::RuPay => "rupay",
        Brand::Verve => "verve",
        Brand::Elo => "elo",
        Brand::Hipercard => "hipercard",
    }
}

pub(crate) fn brand_from(s: &str) -> Option<Brand> {
    [
        Brand::Visa,
        Brand::Mastercard,
        Brand::Amex,
        Brand::Discover,
        Brand::Jcb,
        Brand::DinersClub,
        Brand::UnionPay,
        Brand::Maestro,
        Brand::Mir,
        Brand::Troy,
        Brand::Uatp,
        Brand::RuPay,
        Brand::Verve,
        Brand::Elo,
        Brand::Hipercard,
    ]
    .into_iter()
    .find(|b| brand_str(*b) == s)
}

pub(crate) fn card_from_row(row: CardRow) -> Result<CardOnFile, StoreError> {
    let (token, brand, last4, month, year, fp_key, fp) = row;
    let expiry = u8::try_from(month)
        .ok()
        .zip(u16::try_from(year).ok())
        .and_then(|(m, y)| Expiry::new(m, y).ok())
        .ok_or(StoreError::Corrupt {
            what: "card expiry",
        })?;
    Ok(CardOnFile::new(
        token_from(&token)?,
        brand_from(&brand).ok_or(StoreError::Corrupt { what: "card brand" })?,
        Last4::try_from(last4).map_err(|_| StoreError::Corrupt {
            what: "card last four",
        })?,
        expiry,
        fingerprint_from(&fp_key, &fp)?,
    ))
}

/// What a found token says before anything is written: `None` when it may be redeemed.
/// `used_at`, `expires_at` and `now` in ms; the two generations of token and credential.
pub(crate) fn redeem_refusal(
    used_at: Option<i64>,
    expires_at: i64,
    now: Timestamp,
    token_generation: i64,
    credential_generation: i64,
) -> Option<RedeemOutcome> {
    if used_at.is_some() {
        Some(RedeemOutcome::AlreadyUsed)
    } else if expires_at <= now.as_millis() {
        Some(RedeemOutcome::Expired)
    } else if token_generation != credential_generation {
        Some(RedeemOutcome::Superseded)
    } else {
        None
    }
}

/// An incident's scope from its stored `scope` and `brand` columns.
pub(crate) fn incident_scope(
    scope: &str,
    brand: Option<String>,
) -> Result<IncidentScope, StoreError> {
    match (scope, brand) {
        ("all", _) => Ok(IncidentScope::All),
        ("accounts", _) => Ok(IncidentScope::Accounts),
        ("brand", Some(b)) => BrandId::new(b)
            .map(IncidentScope::Brand)
            .map_err(|_| StoreError::Corrupt { what: "brand id" }),
        _ => Err(StoreError::Corrupt {
            what: "incident scope",
        }),
    }
}

/// The stored `scope` and `brand` columns of an incident's scope.
pub(crate) fn scope_columns(scope: &IncidentScope) -> (&'static str, Option<&str>) {
    match scope {
        IncidentScope::All => ("all", None),
        IncidentScope::Brand(b) => ("brand", Some(b.as_str())),
        IncidentScope::Accounts => ("accounts", None),
    }
}

/// An incident row read back: id, scope, brand, cutoff, declared at, reason.
pub(crate) fn incident_from(
    id: i64,
    scope: &str,
    brand: Option<String>,
    cutoff: i64,
    declared_at: i64,
    reason: String,
) -> Result<Incident, StoreError> {
    Ok(Incident {
        id: IncidentId(id),
        scope: incident_scope(scope, brand)?,
        cutoff: Timestamp::from_millis(cutoff),
        declared_at: Timestamp::from_millis(declared_at),
        reason,
    })
}

/// Accounts can be listed only on an account-list incident that exists.
pub(crate) fn ensure_account_list(
    incidents: &[Incident],
    incident: IncidentId,
) -> Result<(), StoreError> {
    if incidents
        .iter()
        .any(|i| i.id == incident && i.scope == IncidentScope::Accounts)
    {
        Ok(())
    } else {
        Err(StoreError::NoSuchIncident)
    }
}

/// An affected-account row of a campaign claim (account, generation, first brand): the
/// account as claimed, and the generation its token is bound to.
pub(crate) fn affected_row(
    account: String,
    generation: i64,
    brand: Option<String>,
) -> Result<(ClaimedAccount, u64), StoreError> {
    let account =
        AccountId::new(account).map_err(|_| StoreError::Corrupt { what: "account id" })?;
    let brand = brand
        .map(BrandId::new)
        .transpose()
        .map_err(|_| StoreError::Corrupt { what: "brand id" })?;
    Ok((
        ClaimedAccount { account, brand },
        generation_from(generation)?,
    ))
}

/// Sorts after every valid account id in byte order (SQLite's `BINARY`, PostgreSQL's
/// `COLLATE "C"`): an id has at most 128 bytes, and no UTF-8 sequence sorts above
/// U+10FFFF, of which this holds 33. The bound of a lane that runs to the end.
pub(crate) const UNBOUNDED: &str = "\u{10FFFF}\u{10FFFF}\u{10FFFF}\u{10FFFF}\u{10FFFF}\u{10FFFF}\u{10FFFF}\u{10FFFF}\u{10FFFF}\u{10FFFF}\u{10FFFF}\u{10FFFF}\u{10FFFF}\u{10FFFF}\u{10FFFF}\u{10FFFF}\u{10FFFF}\u{10FFFF}\u{10FFFF}\u{10FFFF}\u{10FFFF}\u{10FFFF}\u{10FFFF}\u{10FFFF}\u{10FFFF}\u{10FFFF}\u{10FFFF}\u{10FFFF}\u{10FFFF}\u{10FFFF}\u{10FFFF}\u{10FFFF}\u{10FFFF}";

/// A campaign lane row: id, lane, lanes, range after, range until, cursor, sent, finished.
pub(crate) type LaneRow = (
    i64,
    i64,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
    Option<i64>,
);

/// Where to cut `total` affected accounts into `lanes` lanes of about equal size: the
/// 0-based position, in account order, of the last account of every lane but the last.
/// Fewer lanes than asked when there are fewer accounts; at least one.
pub(crate) fn lane_offsets(total: u64, lanes: usize) -> Vec<u64> {
    let n = (lanes.max(1) as u64).min(total.max(1));
    (1..n).map(|k| k * total / n - 1).collect()
}

/// The `(after, until)` ranges of the lanes cut at `bounds` (the last account of each lane
/// but the last).
pub(crate) fn lane_ranges(bounds: &[String]) -> Vec<(Option<String>, Option<String>)> {
    (0..=bounds.len())
        .map(|k| {
            (
                k.checked_sub(1).map(|p| bounds[p].clone()),
                bounds.get(k).cloned(),
            )
        })
        .collect()
}

/// A transaction that opens a campaign's lanes, as each backend runs it (under a lock
/// that serialises the workers opening the same campaign).
pub(crate) trait LaneSplit {
    /// The campaign's lanes as they stand (none before the first split).
    fn lanes(&mut self) -> Result<Vec<LaneRow>, StoreError>;
    /// How many accounts the incident affects.
    fn count_affected(&mut self) -> Result<u64, StoreError>;
    /// The affected account at `offset`, in account order.
    fn affected_at(&mut self, offset: u64) -> Result<String, StoreError>;
    /// Records lane `lane` of `lanes`, its accounts after `after` up to `until`.
    fn insert_lane(
        &mut self,
        lane: i64,
        lanes: i64,
        after: Option<&str>,
        until: Option<&str>,
    ) -> Result<(), StoreError>;
}

/// Opens a campaign's lanes once, for both backends: the first worker cuts the affected
/// accounts into `lanes` ranges of about the same size (one lane needs no cut, and so no
/// count, which is a pass over every account); every later one reads that cut.
pub(crate) fn open_lanes(tx: &mut dyn LaneSplit, lanes: usize) -> Result<Vec<LaneRow>, StoreError> {
    let rows = tx.lanes()?;
    if !rows.is_empty() {
        return Ok(rows);
    }
    let total = if lanes <= 1 { 0 } else { tx.count_affected()? };
    let mut bounds = Vec::new();
    for offset in lane_offsets(total, lanes) {
        bounds.push(tx.affected_at(offset)?);
    }
    let n = i64::try_from(bounds.len() + 1).unwrap_or(i64::MAX);
    for (lane, (after, until)) in lane_ranges(&bounds).into_iter().enumerate() {
        let lane = i64::try_from(lane).unwrap_or(i64::MAX);
        tx.insert_lane(lane, n, after.as_deref(), until.as_deref())?;
    }
    tx.lanes()
}

pub(crate) fn lane_state(incident: IncidentId, row: LaneRow) -> Result<CampaignState, StoreError> {
    let (id, lane, lanes, after, until, cursor, sent, finished_at) = row;
    let account = |s: Option<String>| {
        s.map(AccountId::new)
            .transpose()
            .map_err(|_| StoreError::Corrupt {
                what: "campaign cursor",
            })
    };
    Ok(CampaignState {
        id: CampaignId(id),
        incident,
        sent_cursor: account(cursor)?,
        sent: to_u64(sent),
        finished_at: finished_at.map(Timestamp::from_millis),
        lane: u32::try_from(lane).map_err(|_| StoreError::Corrupt {
            what: "campaign lane",
        })?,
        lanes: u32::try_from(lanes).map_err(|_| StoreError::Corrupt {
            what: "campaign lane",
        })?,
        range_after: account(after)?,
        range_until: account(until)?,
    })
}

/// A data-key row: customer, version, KEK epoch, wrapped bytes, created.
pub(crate) type KeyRow = (String, i64, String, Vec<u8>, i64);

pub(crate) fn wrapped_key(row: KeyRow) -> Result<WrappedKey, StoreError> {
    let (customer, version, kek, wrapped, created) = row;
    Ok(WrappedKey::new(
        AccountId::new(customer)?,
        u32::try_from(version).map_err(|_| StoreError::Corrupt {
            what: "data key version",
        })?,
        VaultKeyId::new(&kek).map_err(|_| StoreError::Corrupt {
            what: "key-encryption key id",
        })?,
        wrapped,
        Timestamp::from_millis(created),
    ))
}

/// An index-key row: column, KEK epoch, wrapped bytes.
pub(crate) fn wrapped_index_key(
    row: (String, String, Vec<u8>),
) -> Result<WrappedIndexKey, StoreError> {
    let (column, kek, wrapped) = row;
    Ok(WrappedIndexKey::new(
        column,
        VaultKeyId::new(&kek).map_err(|_| StoreError::Corrupt {
            what: "key-encryption key id",
        })?,
        wrapped,
    ))
}

/// The KEK epoch counts, from (epoch, count) rows.
pub(crate) fn kek_counts(rows: Vec<(String, i64)>) -> Result<Vec<(VaultKeyId, u64)>, StoreError> {
    rows.into_iter()
        .map(|(kek, n)| {
            VaultKeyId::new(&kek)
                .map(|k| (k, to_u64(n)))
                .map_err(|_| StoreError::Corrupt {
                    what: "key-encryption key id",
                })
        })
        .collect()
}

/// The key store's ledger mark, from its (seq, mac) row.
pub(crate) fn ledger_mark(
    row: Option<(i64, Vec<u8>)>,
) -> Result<Option<(u64, [u8; 32])>, StoreError> {
    row.map(|(seq, mac)| {
        let corrupt = || StoreError::Corrupt {
            what: "erasure ledger mark",
        };
        Ok((
            u64::try_from(seq).map_err(|_| corrupt())?,
            mac.try_into().map_err(|_| corrupt())?,
        ))
    })
    .transpose()
}

/// An erasure-ledger row: seq, at, customer digest, erased, retained, mac.
pub(crate) type LedgerRow = (i64, i64, Vec<u8>, String, String, Vec<u8>);

/// An erasure-ledger entry from its row.
pub(crate) fn ledger_entry(row: LedgerRow) -> Result<crate::seal::LedgerEntry, StoreError> {
    let (seq, at, customer, erased, retained, mac) = row;
    let seq = u64::try_from(seq).map_err(|_| StoreError::Corrupt {
        what: "erasure ledger entry",
    })?;
    crate::seal::LedgerEntry::from_stored(
        seq,
        Timestamp::from_millis(at),
        &customer,
        &erased,
        &retained,
        &mac,
    )
}

/// A checkpoint kept beside the erasure ledger, from its text line.
pub(crate) fn ledger_checkpoint(line: &str) -> Result<crate::audit::AuditCheckpoint, StoreError> {
    line.parse().map_err(|_| StoreError::Corrupt {
        what: "erasure ledger checkpoint",
    })
}

/// Whether the incident `i` compromises the credential `c`: set at or before its
/// cutoff, and in its scope (all, one of the account's brands, or its list). The same
/// rule as `Authenticator`'s, in SQL, so that a session check is one statement.
macro_rules! incident_compromises {
    () => {
        "c.set_at <= i.cutoff AND (
        i.scope = 'all'
        OR (i.scope = 'brand' AND EXISTS (SELECT 1 FROM account_brands b
            WHERE b.account = c.account AND b.brand = i.brand))
        OR (i.scope = 'accounts' AND EXISTS (SELECT 1 FROM incident_accounts a
            WHERE a.incident = i.id AND a.account = c.account)))"
    };
}

/// Whether the incident `i` compromises the credential `c`.
pub(crate) const INCIDENT_COMPROMISES: &str = incident_compromises!();

/// Whether the credential `c` (the `credentials` row of the session or device row `s`)
/// still carries the row's stamp and is live: neither disabled nor flagged (bits 1 and
/// 2), and no incident compromises it.
pub(crate) const LIVE_CREDENTIAL: &str = concat!(
    "c.stamp = s.stamp AND (c.flags & 3) = 0 AND NOT EXISTS (SELECT 1 FROM incidents i WHERE ",
    incident_compromises!(),
    ")"
);

/// The columns of a session row, in [`SessionRow`]'s order (table alias `s`).
pub(crate) const SESSION_COLUMNS: &str =
    "s.id, s.account, s.stamp, s.created_at, s.last_seen, s.expires_at, s.source, s.agent";

/// A session row: id, account, stamp, created, last seen, expires, source, agent.
pub(crate) type SessionRow = (Vec<u8>, String, Vec<u8>, i64, i64, i64, String, String);

pub(crate) fn session_record(row: SessionRow) -> Result<SessionRecord, StoreError> {
    let (id, account, stamp, created, seen, expires, source, agent) = row;
    let id: [u8; 16] = id
        .try_into()
        .map_err(|_| StoreError::Corrupt { what: "session id" })?;
    let mut record = SessionRecord::new(
        SessionId::from_bytes(id),
        AccountId::new(account).map_err(|_| StoreError::Corrupt {
            what: "session account",
        })?,
        stamp_from(&stamp)?,
        Timestamp::from_millis(created),
        Timestamp::from_millis(expires),
        source,
        agent,
    );
    record.last_seen = Timestamp::from_millis(seen);
    Ok(record)
}

/// A device row: family, account, stamp, issued, expires.
pub(crate) type DeviceRow = (Vec<u8>, String, Vec<u8>, i64, i64);

pub(crate) fn device_record(row: DeviceRow) -> Result<DeviceRecord, StoreError> {
    let (family, account, stamp, issued, expires) = row;
    let family: [u8; 16] = family.try_into().map_err(|_| StoreError::Corrupt {
        what: "device family",
    })?;
    Ok(DeviceRecord::new(
        SessionId::from_bytes(family),
        AccountId::new(account).map_err(|_| StoreError::Corrupt {
            what: "device account",
        })?,
        stamp_from(&stamp)?,
        Timestamp::from_millis(issued),
        Timestamp::from_millis(expires),
    ))
}

// `LIVE_CREDENTIAL` tests bits 1 and 2 of the flags.
const _: () = assert!(
    CredentialFlags::DISABLED
        .union(CredentialFlags::MUST_RESET)
        .bits()
        == 3
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_cut_evenly_and_never_empty() {
        assert_eq!(lane_offsets(10, 3), [2, 5]);
        assert_eq!(lane_offsets(10, 1), Vec::<u64>::new());
        assert_eq!(lane_offsets(2, 4), [0]);
        assert_eq!(lane_offsets(0, 4), Vec::<u64>::new());
        assert_eq!(lane_offsets(1_000_000, 4), [249_999, 499_999, 749_999]);
        let ranges = lane_ranges(&["c3".into(), "c6".into()]);
        assert_eq!(
            ranges,
            [
                (None, Some("c3".into())),
                (Some("c3".into()), Some("c6".into())),
                (Some("c6".into()), None)
            ]
        );
    }

    #[test]
    fn unbounded_sorts_after_every_account_id() {
        let max_id = AccountId::new("\u{10FFFF}".repeat(32)).expect("128 bytes");
        assert!(max_id.as_str().as_bytes() < UNBOUNDED.as_bytes());
        assert!(
            AccountId::new("\u{10FFFF}".repeat(33)).is_err(),
            "132 bytes is too long"
        );
        assert!("zzzz".as_bytes() < UNBOUNDED.as_bytes());
    }
}
