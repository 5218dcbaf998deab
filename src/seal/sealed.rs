//! [`Sealed`]: the stored form of a personal value, and the AEAD that makes and opens it.
//!
//! Layout (version 1), 49 bytes plus the padded value:
//!
//! | bytes | what |
//! |---|---|
//! | 1 | format version, `0x01` |
//! | 4 | the key store's tag (the first 4 bytes of its id) |
//! | 4 | the data key's version, big-endian |
//! | 24 | XChaCha20 nonce, random |
//! | rest | XChaCha20-Poly1305 ciphertext of the padded value, with its 16-byte tag |
//!
//! The associated data binds the value to where it lives: the table, the column, the
//! record key, the customer, the data key's version and the key store's tag, each
//! length-prefixed, so a value copied to another row, column or customer does not open.

use core::fmt;

use base64ct::{Base64UrlUnpadded, Encoding};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use super::column::Column;
use super::error::Error;
use crate::kernel::AccountId;
use crate::secret::fill_random;

const FORMAT: u8 = 1;
const HEADER: usize = 1 + 4 + 4 + 24;
const TAG: usize = 16;
/// The longest value a field takes, in bytes (64 KiB).
pub const MAX_VALUE: usize = 64 * 1024;
/// What the text form starts with.
const TEXT_PREFIX: &str = "ss1.";

/// A personal value as stored: unreadable without its customer's data key, and bound to
/// its table, column, record and customer.
///
/// Store it as bytes ([`Sealed::as_bytes`], a `BLOB`/`bytea` column) or as text
/// ([`Sealed::to_text`], `ss1.` and unpadded URL-safe base64).
///
/// # Examples
/// ```
/// use shopsafe::seal::Sealed;
///
/// assert!(Sealed::from_bytes(b"not sealed").is_err());
/// assert!(Sealed::parse("jane@example.com").is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed(Vec<u8>);

impl Sealed {
    /// Reads the stored bytes (the format is checked; the contents when opened).
    ///
    /// # Errors
    /// [`Error::Malformed`] for bytes of no known format.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() < HEADER + TAG + 1 || bytes[0] != FORMAT {
            return Err(Error::Malformed);
        }
        Ok(Self(bytes.to_vec()))
    }

    /// Reads the text form ([`Sealed::to_text`]).
    ///
    /// # Errors
    /// [`Error::Malformed`].
    pub fn parse(text: &str) -> Result<Self, Error> {
        let b64 = text.strip_prefix(TEXT_PREFIX).ok_or(Error::Malformed)?;
        let bytes = Base64UrlUnpadded::decode_vec(b64).map_err(|_| Error::Malformed)?;
        Self::from_bytes(&bytes)
    }

    /// The stored bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The text form: `ss1.` and unpadded URL-safe base64 of the bytes.
    #[must_use]
    pub fn to_text(&self) -> String {
        format!("{TEXT_PREFIX}{}", Base64UrlUnpadded::encode_string(&self.0))
    }

    /// The version of the customer's data key it was sealed with.
    #[must_use]
    pub fn key_version(&self) -> u32 {
        u32::from_be_bytes([self.0[5], self.0[6], self.0[7], self.0[8]])
    }

    pub(super) fn store_tag(&self) -> [u8; 4] {
        [self.0[1], self.0[2], self.0[3], self.0[4]]
    }
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sealed({} bytes)", self.0.len())
    }
}

/// What a sealed value is bound to.
pub(super) struct Place<'a> {
    pub(super) column: &'a Column,
    pub(super) record: &'a str,
    pub(super) customer: &'a AccountId,
    pub(super) version: u32,
    pub(super) store_tag: [u8; 4],
}

impl Place<'_> {
    fn associated_data(&self) -> Vec<u8> {
        let mut ad = Vec::with_capacity(64 + self.record.len());
        ad.extend_from_slice(b"shopsafe/sealed/v1\0");
        for part in [
            self.column.table(),
            self.column.column(),
            self.record,
            self.customer.as_str(),
        ] {
            let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
            ad.extend_from_slice(&len.to_be_bytes());
            ad.extend_from_slice(part.as_bytes());
        }
        ad.extend_from_slice(&self.version.to_be_bytes());
        ad.extend_from_slice(&self.store_tag);
        ad
    }
}

/// Pads `value` as its column says, and seals it under `key` at `place`.
pub(super) fn seal(key: &[u8; 32], place: &Place<'_>, value: &str) -> Result<Sealed, Error> {
    let bytes = value.as_bytes();
    if bytes.len() > MAX_VALUE {
        return Err(Error::TooLong {
            len: bytes.len(),
            max: MAX_VALUE,
        });
    }
    // ISO/IEC 7816-4 padding: the value, 0x80, then zeros to the bucket.
    let mut padded = Zeroizing::new(vec![0u8; place.column.padding().padded_len(bytes.len())]);
    padded[..bytes.len()].copy_from_slice(bytes);
    padded[bytes.len()] = 0x80;
    let mut nonce = [0u8; 24];
    fill_random(&mut nonce)?;
    let cipher = XChaCha20Poly1305::new(key.into());
    let ad = place.associated_data();
    let ciphertext = cipher
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: &padded,
                aad: &ad,
            },
        )
        .map_err(|_| Error::TooLong {
            len: bytes.len(),
            max: MAX_VALUE,
        })?;
    let mut out = Vec::with_capacity(HEADER + ciphertext.len());
    out.push(FORMAT);
    out.extend_from_slice(&place.store_tag);
    out.extend_from_slice(&place.version.to_be_bytes());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    Ok(Sealed(out))
}

/// Opens `sealed` under `key` at `place` and takes the padding off.
pub(super) fn open(
    key: &[u8; 32],
    place: &Place<'_>,
    sealed: &Sealed,
) -> Result<Zeroizing<String>, Error> {
    let bytes = sealed.as_bytes();
    let nonce: [u8; 24] = bytes[9..HEADER].try_into().map_err(|_| Error::Malformed)?;
    let cipher = XChaCha20Poly1305::new(key.into());
    let ad = place.associated_data();
    let mut padded = Zeroizing::new(
        cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &bytes[HEADER..],
                    aad: &ad,
                },
            )
            .map_err(|_| Error::Tampered)?,
    );
    let end = padded
        .iter()
        .rposition(|b| *b != 0)
        .filter(|i| padded[*i] == 0x80)
        .ok_or(Error::Tampered)?;
    padded.truncate(end);
    let text = String::from_utf8(core::mem::take(&mut *padded)).map_err(|e| {
        // Wipe the bytes the error hands back before dropping them.
        drop(Zeroizing::new(e.into_bytes()));
        Error::Tampered
    })?;
    Ok(Zeroizing::new(text))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::minimize::PiiKind;

    fn column(name: &str) -> Column {
        Column::new("profiles", name, PiiKind::PersonName).expect("column")
    }

    fn place<'a>(column: &'a Column, record: &'a str, customer: &'a AccountId) -> Place<'a> {
        Place {
            column,
            record,
            customer,
            version: 1,
            store_tag: [1, 2, 3, 4],
        }
    }

    #[test]
    fn a_value_opens_only_where_it_was_sealed() {
        let key = [7u8; 32];
        let (name, nick) = (column("name"), column("nickname"));
        let (jane, omar) = (
            AccountId::new("jane").expect("id"),
            AccountId::new("omar").expect("id"),
        );
        let sealed = seal(&key, &place(&name, "r1", &jane), "Jane Doe").expect("seal");
        let opened = open(&key, &place(&name, "r1", &jane), &sealed).expect("open");
        assert_eq!(opened.as_str(), "Jane Doe");
        for other in [
            place(&nick, "r1", &jane),
            place(&name, "r2", &jane),
            place(&name, "r1", &omar),
            Place {
                version: 2,
                ..place(&name, "r1", &jane)
            },
            Place {
                store_tag: [0; 4],
                ..place(&name, "r1", &jane)
            },
        ] {
            assert!(matches!(open(&key, &other, &sealed), Err(Error::Tampered)));
        }
        assert!(matches!(
            open(&[8u8; 32], &place(&name, "r1", &jane), &sealed),
            Err(Error::Tampered)
        ));
        // The lengths of a 3- and a 15-byte name are one bucket.
        let short = seal(&key, &place(&name, "r1", &jane), "Bo").expect("seal");
        assert_eq!(short.as_bytes().len(), sealed.as_bytes().len());
        assert_eq!(sealed.as_bytes().len(), HEADER + 16 + TAG);
    }

    #[test]
    fn every_flipped_bit_is_tampering() {
        let key = [7u8; 32];
        let name = column("name");
        let jane = AccountId::new("jane").expect("id");
        let at = place(&name, "r1", &jane);
        let sealed = seal(&key, &at, "Jane").expect("seal");
        for i in 9..sealed.as_bytes().len() {
            let mut bytes = sealed.as_bytes().to_vec();
            bytes[i] ^= 1;
            let changed = Sealed::from_bytes(&bytes).expect("format");
            assert!(
                matches!(open(&key, &at, &changed), Err(Error::Tampered)),
                "{i}"
            );
        }
    }

    proptest! {
        #[test]
        fn round_trips_and_pads_to_its_bucket(value in "\\PC{0,300}", exact in any::<bool>()) {
            let key = [9u8; 32];
            let mut col = column("name");
            if exact {
                col = col.unpadded();
            }
            let jane = AccountId::new("jane").expect("id");
            let at = place(&col, "r", &jane);
            let sealed = seal(&key, &at, &value).expect("seal");
            prop_assert_eq!(
                sealed.as_bytes().len(),
                HEADER + TAG + col.padding().padded_len(value.len())
            );
            let text = sealed.to_text();
            let back = Sealed::parse(&text).expect("parse");
            let opened = open(&key, &at, &back).expect("open");
            prop_assert_eq!(opened.as_str(), value.as_str());
        }

        #[test]
        fn no_input_makes_the_reader_panic(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
            let key = [9u8; 32];
            let col = column("name");
            let jane = AccountId::new("jane").expect("id");
            if let Ok(s) = Sealed::from_bytes(&bytes) {
                prop_assert!(open(&key, &place(&col, "r", &jane), &s).is_err());
            }
            let _ = Sealed::parse(&String::from_utf8_lossy(&bytes));
        }
    }
}
