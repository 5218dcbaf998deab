//! Turning stored columns back into values, for every SQL backend: the column shapes are
//! the same in SQLite and PostgreSQL (text, 64-bit integers, byte strings).

use crate::card::{Brand, CardOnFile, CardToken, Expiry, Fingerprint, Last4, VaultKeyId};
use crate::password::PasswordHash;
use crate::store::{AccountId, SecurityStamp, StoreError, Timestamp, TokenPurpose, TokenRecord};

/// A reset token row: account, digest, generation, purpose, issued, expires, used.
pub(crate) type TokenRow = (String, Vec<u8>, i64, String, i64, i64, Option<i64>);

/// A card-on-file row: token, brand, last four, month, year, fingerprint key, fingerprint.
pub(crate) type CardRow = (String, String, String, i64, i64, String, Vec<u8>);

pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
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
        generation: to_u64(generation),
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
    ]
    .into_iter()
    .find(|b| brand_str(*b) == s)
}

pub(crate) fn card_from_row(row: CardRow) -> Result<CardOnFile, StoreError> {
    let (token, brand, last4, month, year, fp_key, fp) = row;
    let corrupt = |what| move |_| StoreError::Corrupt { what };
    let expiry = u8::try_from(month)
        .ok()
        .zip(u16::try_from(year).ok())
        .and_then(|(m, y)| Expiry::new(m, y).ok())
        .ok_or(StoreError::Corrupt {
            what: "card expiry",
        })?;
    Ok(CardOnFile::new(
        CardToken::parse(&token).map_err(corrupt("card token"))?,
        brand_from(&brand).ok_or(StoreError::Corrupt { what: "card brand" })?,
        Last4::try_from(last4).map_err(corrupt("card last four"))?,
        expiry,
        Fingerprint {
            key_id: VaultKeyId::new(&fp_key).map_err(corrupt("fingerprint key id"))?,
            mac: fp.as_slice().try_into().map_err(|_| StoreError::Corrupt {
                what: "fingerprint",
            })?,
        },
    ))
}
