//! What the customer side keeps of a card: its token, brand, last four, expiry and keyed
//! fingerprint ([`CardOnFile`]). Nothing here turns back into a number.

use core::fmt;

use super::Error;
use super::brand::Brand;
use super::keys::VaultKeyId;
use super::pan::{Expiry, Last4};
use crate::kernel::Timestamp;
use crate::secret::fill_random;

const TOKEN_PREFIX: &str = "card_";

/// A card token: `card_` and 26 letters carrying 128 bits: a 48-bit millisecond clock
/// then 80 random bits. Not derived from the number, so it says nothing about it (only
/// roughly when the card was first stored); safe in the customer database and in logs.
///
/// The clock prefix keeps new tokens in order, so the vault's inserts append instead of
/// landing at random in a growing index (at 500,000 cards, random tokens made each insert
/// 5× slower). The alphabet has no digits, so no token can look like a card number.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "String", into = "String"))]
pub struct CardToken(String);

/// 32 letters in ASCII order, so that text order is numeric order.
const TOKEN_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef";
pub(super) const TOKEN_CHARS: usize = 26;

impl CardToken {
    pub(super) fn generate() -> Result<Self, Error> {
        let mut b = [0u8; 16];
        let ms = u64::try_from(Timestamp::now().as_millis()).unwrap_or(0);
        b[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
        fill_random(&mut b[6..])?;
        let value = u128::from_be_bytes(b);
        let mut text = String::with_capacity(TOKEN_PREFIX.len() + TOKEN_CHARS);
        text.push_str(TOKEN_PREFIX);
        // 26 five-bit digits, most significant first; the last carries 3 bits and 2 zeros.
        for i in 0..TOKEN_CHARS {
            let shift = 128 + 2 - 5 * (i + 1);
            let digit = ((value << 2) >> shift) & 0x1f;
            text.push(char::from(
                TOKEN_ALPHABET[usize::try_from(digit).unwrap_or(0)],
            ));
        }
        Ok(Self(text))
    }

    /// Parses a token as stored.
    ///
    /// # Errors
    /// [`Error::InvalidToken`] unless `card_` and 26 letters of the token alphabet in
    /// canonical form.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let body = s.strip_prefix(TOKEN_PREFIX).ok_or(Error::InvalidToken)?;
        if body.len() != TOKEN_CHARS || !body.bytes().all(|c| TOKEN_ALPHABET.contains(&c)) {
            return Err(Error::InvalidToken);
        }
        // The last letter holds 3 bits of value and 2 bits that must be zero.
        let last = body.as_bytes()[TOKEN_CHARS - 1];
        let digit = TOKEN_ALPHABET.iter().position(|&c| c == last).unwrap_or(0);
        if digit & 0b11 != 0 {
            return Err(Error::InvalidToken);
        }
        Ok(Self(s.to_owned()))
    }

    /// The token's text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CardToken {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        Self::parse(&s)
    }
}

impl From<CardToken> for String {
    fn from(t: CardToken) -> Self {
        t.0
    }
}

impl fmt::Debug for CardToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CardToken({})", self.0)
    }
}

impl fmt::Display for CardToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A keyed fingerprint of a whole card number (PCI DSS 3.5.1.1): HMAC-SHA-256 under a
/// vault key's fingerprint key, with that key's id. Recognises a card without storing it;
/// useless without the vault's key.
#[derive(Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Fingerprint {
    /// The vault key it was made under.
    pub key_id: VaultKeyId,
    /// The MAC.
    #[cfg_attr(feature = "serde", serde(with = "hex32"))]
    pub mac: [u8; 32],
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = base16ct::lower::encode_string(&self.mac[..8]);
        write!(f, "Fingerprint({}:{hex}…)", self.key_id)
    }
}

#[cfg(feature = "serde")]
mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(super) fn serialize<S: Serializer>(mac: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base16ct::lower::encode_string(mac))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        let mut out = [0u8; 32];
        let n = base16ct::lower::decode(text.as_bytes(), &mut out)
            .map_err(D::Error::custom)?
            .len();
        if n == 32 {
            Ok(out)
        } else {
            Err(D::Error::custom("a fingerprint is 32 bytes"))
        }
    }
}

/// What the customer database keeps of a card: no number, nothing to reverse.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct CardOnFile {
    /// The vault's token for the card.
    pub token: CardToken,
    /// The brand.
    pub brand: Brand,
    /// The last four digits, for "Visa ending 1111".
    pub last4: Last4,
    /// Expiry month and year.
    pub expiry: Expiry,
    /// Keyed fingerprint, to recognise the same card on another account or checkout.
    pub fingerprint: Fingerprint,
}

impl CardOnFile {
    /// Reassembles a card on file read back from a store.
    #[must_use]
    pub fn new(
        token: CardToken,
        brand: Brand,
        last4: Last4,
        expiry: Expiry,
        fingerprint: Fingerprint,
    ) -> Self {
        Self {
            token,
            brand,
            last4,
            expiry,
            fingerprint,
        }
    }
}
