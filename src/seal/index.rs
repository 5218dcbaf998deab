//! Blind indexes: a keyed, truncated HMAC of a normalized value, so that equal values can
//! be found without storing either in clear.
//!
//! Normalization, by the column's kind:
//! - **email**: trimmed and lower-cased (`" Jane@Example.COM "` is `jane@example.com`);
//! - **phone**: E.164 where it parses (`+`, or `00`, then 8 to 15 digits, every other
//!   character ignored: `+44 (20) 7946-0958` is `+442079460958`);
//!   a national number takes the column's
//!   [`default_calling_code`](super::Column::default_calling_code) without its trunk
//!   `0`, and without one stays as its digits;
//! - **everything else** (names, addresses, free text): Unicode NFKC, lower-cased, runs
//!   of white space as one space, trimmed.
//!
//! The index is HMAC-SHA-256 under the column's own 256-bit key (random, kept wrapped in
//! the key store), over a label, the column and the normalized value, cut to its first
//! **16 bytes** (128 bits).

use core::fmt;

use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

use super::column::Column;
use crate::kernel::hmac_sha256;
use crate::minimize::PiiKind;

/// A blind index value: store it beside the sealed value (a `BLOB`/`bytea` column with
/// an index; `UNIQUE` for a column whose values must be unique, as emails).
///
/// # Security
/// An index shows which rows hold equal values (and so how often a value occurs), never
/// the value: computing one takes the column's key. Two different values share an index
/// with probability 2⁻¹²⁸ a pair; a lookup still opens each row it finds and compares
/// ([`Sealer::same`](super::Sealer::same)), so a collision never returns the wrong
/// customer.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlindIndex([u8; 16]);

impl BlindIndex {
    /// The 16 stored bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// From 16 stored bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// Lower-case hex, for text columns.
    #[must_use]
    pub fn to_hex(&self) -> String {
        base16ct::lower::encode_string(&self.0)
    }
}

/// A mask: an index is a stable pseudonym of its value, which a log reader could link
/// to the rows that hold it.
impl fmt::Debug for BlindIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BlindIndex([REDACTED])")
    }
}

/// The index of `value` in `column` under the column's `key`.
pub(super) fn blind_index(key: &[u8; 32], column: &Column, value: &str) -> BlindIndex {
    let normalized = normalize(column, value);
    let mac = hmac_sha256(
        key,
        &[
            b"shopsafe/blind-index/v1\0",
            column.table().as_bytes(),
            b".",
            column.column().as_bytes(),
            b"\0",
            normalized.as_bytes(),
        ],
    );
    let mut out = [0u8; 16];
    out.copy_from_slice(&mac[..16]);
    BlindIndex(out)
}

/// The value as its column's index sees it.
pub(super) fn normalize(column: &Column, value: &str) -> Zeroizing<String> {
    Zeroizing::new(match column.kind() {
        PiiKind::Email => value.trim().to_lowercase(),
        PiiKind::Phone => phone(value, column.calling_code()),
        _ => {
            let lower = value.nfkc().collect::<String>().to_lowercase();
            let folded: String = lower.nfkc().collect();
            folded.split_whitespace().collect::<Vec<_>>().join(" ")
        }
    })
}

/// E.164 where the number parses; its digits otherwise. Every character but the
/// digits and a leading `+` is ignored, so that the form is a fixed point: normalizing
/// a normalized number gives it back.
fn phone(value: &str, calling_code: Option<u16>) -> String {
    let t = value.trim();
    let body = t.strip_prefix('+');
    let all: String = body
        .unwrap_or(t)
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let (international, digits) = match (body, all.strip_prefix("00")) {
        (Some(_), _) => (true, all.as_str()),
        (None, Some(rest)) => (true, rest),
        (None, None) => (false, all.as_str()),
    };
    if international && (8..=15).contains(&digits.len()) && !digits.starts_with('0') {
        return format!("+{digits}");
    }
    if let (false, Some(code)) = (international, calling_code) {
        let national = digits.strip_prefix('0').unwrap_or(digits);
        let e164 = format!("{code}{national}");
        if (8..=15).contains(&e164.len()) && !e164.starts_with('0') {
            return format!("+{e164}");
        }
    }
    // Not a number we can place: its digits (after the `+` or `00` it had).
    if international {
        return format!("+{digits}");
    }
    if all.is_empty() { t.to_owned() } else { all }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn col(kind: PiiKind) -> Column {
        Column::new("profiles", "x", kind).expect("column")
    }

    #[test]
    fn normal_forms() {
        let email = col(PiiKind::Email);
        assert_eq!(
            normalize(&email, " Jane@Example.COM ").as_str(),
            "jane@example.com"
        );
        let phone = col(PiiKind::Phone);
        for (input, out) in [
            ("+44 (20) 7946-0958", "+442079460958"),
            ("0044 20 7946 0958", "+442079460958"),
            ("+1 415.555.0132", "+14155550132"),
            ("020 7946 0958", "02079460958"),
            ("call 555", "555"),
            ("+0 123 4567 89", "+0123456789"),
        ] {
            assert_eq!(normalize(&phone, input).as_str(), out, "{input}");
        }
        let uk = col(PiiKind::Phone).default_calling_code(44);
        assert_eq!(normalize(&uk, "020 7946 0958").as_str(), "+442079460958");
        let name = col(PiiKind::PersonName);
        assert_eq!(normalize(&name, "  Zoë\tMÜLLER ").as_str(), "zoë müller");
        // NFKC: a composed and a decomposed ë are one name.
        assert_eq!(
            normalize(&name, "Zoe\u{308}").as_str(),
            normalize(&name, "Zo\u{eb}").as_str()
        );
    }

    #[test]
    fn the_index_depends_on_key_column_and_normal_form() {
        let email = col(PiiKind::Email);
        let other = Column::new("orders", "x", PiiKind::Email).expect("column");
        let a = blind_index(&[1; 32], &email, "Jane@example.com");
        assert_eq!(a, blind_index(&[1; 32], &email, " jane@EXAMPLE.com"));
        assert_ne!(a, blind_index(&[2; 32], &email, "jane@example.com"));
        assert_ne!(a, blind_index(&[1; 32], &other, "jane@example.com"));
        assert_ne!(a, blind_index(&[1; 32], &email, "jane@example.org"));
    }

    proptest! {
        #[test]
        fn normalizing_is_idempotent(value in "\\PC{0,40}", kind in 0..4u8) {
            let kind = [PiiKind::Email, PiiKind::Phone, PiiKind::PersonName, PiiKind::PostalAddress][usize::from(kind)];
            let c = col(kind).default_calling_code(44);
            let once = normalize(&c, &value);
            let twice = normalize(&c, &once);
            prop_assert_eq!(twice.as_str(), once.as_str());
        }

        #[test]
        fn a_phone_number_indexes_alike_however_it_is_written(
            digits in "[1-9][0-9]{7,13}",
            sep in prop::sample::select(vec![" ", "-", ".", ""]),
        ) {
            let c = col(PiiKind::Phone);
            let spaced: Vec<String> = digits.as_bytes().chunks(3)
                .map(|ch| String::from_utf8_lossy(ch).into_owned()).collect();
            let written = format!("+{}", spaced.join(sep));
            let a = normalize(&c, &written);
            prop_assert_eq!(a.as_str(), format!("+{digits}"));
            let zeros = format!("00{}", spaced.join(sep));
            let b = normalize(&c, &zeros);
            prop_assert_eq!(b.as_str(), format!("+{digits}"));
        }
    }
}
