//! `Pii<T>`: personal data that never prints, and the masks it prints instead.

use core::fmt;

/// What kind of personal data a value is (decides its mask and its pseudonym domain).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum PiiKind {
    /// An email address.
    Email,
    /// A phone number.
    Phone,
    /// A person's name.
    PersonName,
    /// A postal address.
    PostalAddress,
    /// A date of birth.
    DateOfBirth,
    /// Free text (notes, messages): may hold anything.
    FreeText,
}

impl PiiKind {
    /// The kind's name (also the pseudonym domain label).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Phone => "phone",
            Self::PersonName => "person_name",
            Self::PostalAddress => "postal_address",
            Self::DateOfBirth => "date_of_birth",
            Self::FreeText => "free_text",
        }
    }
}

/// Personal data: `Debug` and `Display` print a mask for its kind, reading it takes
/// [`Pii::expose`], and with the `serde` feature it serializes only through
/// `Pii::serialize_exposed` (a `#[serde(serialize_with = ...)]` a reviewer can see).
///
/// # Examples
/// ```
/// use shopsafe::minimize::{Pii, PiiKind};
///
/// let email = Pii::new(PiiKind::Email, "jane.doe@example.com".to_owned());
/// assert_eq!(format!("{email}"), "j***@example.com");
/// assert_eq!(format!("{email:?}"), "Pii<email>(j***@example.com)");
/// assert_eq!(email.expose(), "jane.doe@example.com");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Pii<T: AsRef<str>> {
    kind: PiiKind,
    value: T,
}

impl<T: AsRef<str>> Pii<T> {
    /// Wraps a value of a kind.
    pub const fn new(kind: PiiKind, value: T) -> Self {
        Self { kind, value }
    }

    /// The kind.
    #[must_use]
    pub const fn kind(&self) -> PiiKind {
        self.kind
    }

    /// The value itself. Every call site handles personal data in the clear.
    #[must_use]
    pub fn expose(&self) -> &T {
        &self.value
    }

    /// The mask for its kind (what `Display` prints).
    #[must_use]
    pub fn masked(&self) -> String {
        let v = self.value.as_ref();
        match self.kind {
            PiiKind::Email => super::mask::email(v),
            PiiKind::Phone => super::mask::phone(v, 2),
            PiiKind::PersonName => super::mask::name(v),
            PiiKind::PostalAddress => super::mask::address(v),
            PiiKind::DateOfBirth | PiiKind::FreeText => "[REDACTED]".to_owned(),
        }
    }

    /// Serializes the value itself: name it in `#[serde(serialize_with =
    /// "Pii::serialize_exposed")]` where sending the value is intended.
    ///
    /// # Errors
    /// The serializer's.
    #[cfg(feature = "serde")]
    pub fn serialize_exposed<S: serde::Serializer>(pii: &Self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(pii.value.as_ref())
    }
}

impl<T: AsRef<str>> fmt::Debug for Pii<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pii<{}>({})", self.kind.as_str(), self.masked())
    }
}

impl<T: AsRef<str>> fmt::Display for Pii<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// Without an explicit `serialize_with`, a `Pii` serializes as its mask.
#[cfg(feature = "serde")]
impl<T: AsRef<str>> serde::Serialize for Pii<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_prints_a_mask() {
        let cases = [
            (PiiKind::Email, "jane@example.com", "j***@example.com"),
            (PiiKind::Phone, "+1 415 555 0132", "***32"),
            (PiiKind::PersonName, "Jane Q. Doe", "J. Q. D."),
            (
                PiiKind::PostalAddress,
                "12 Main St\nSpringfield\n12345\nUS",
                "***, Springfield, 12345, US",
            ),
            (PiiKind::DateOfBirth, "1980-02-29", "[REDACTED]"),
            (PiiKind::FreeText, "call me at 555", "[REDACTED]"),
        ];
        for (kind, value, mask) in cases {
            let p = Pii::new(kind, value);
            assert_eq!(p.to_string(), mask, "{kind:?}");
            assert!(!format!("{p:?}").contains(value), "{kind:?}");
        }
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_sends_the_mask_unless_told_otherwise() {
        #[derive(serde::Serialize)]
        struct Row<'a> {
            masked: Pii<&'a str>,
            #[serde(serialize_with = "Pii::serialize_exposed")]
            exposed: Pii<&'a str>,
        }
        let row = Row {
            masked: Pii::new(PiiKind::Email, "jane@example.com"),
            exposed: Pii::new(PiiKind::Email, "jane@example.com"),
        };
        let json = serde_json::to_string(&row).expect("serialize");
        assert_eq!(
            json,
            r#"{"masked":"j***@example.com","exposed":"jane@example.com"}"#
        );
    }
}
