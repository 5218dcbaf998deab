//! [`Column`]: where a sealed value lives, what kind of value it is, and how it is padded.

use super::error::Error;
use crate::minimize::PiiKind;

/// How a column's values are padded before sealing.
///
/// A ciphertext is as long as its plaintext: unpadded, a sealed name still says how long
/// the name is, and a sealed address roughly which street. [`Padding::Buckets`] (the
/// default) pads every value to the next bucket of **16, 32, 64, 128 or 256 bytes, then
/// the next multiple of 256**, counting one byte of padding marker: a name of 3 bytes and
/// one of 15 seal to the same length, and so do every two addresses of 32 to 63 bytes.
/// [`Padding::Exact`] (the opt-out, [`Column::unpadded`]) adds only the marker byte, for
/// columns whose length says nothing (a fixed-length code) or whose values are long.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Padding {
    /// To the next bucket (the default).
    Buckets,
    /// Only the marker byte: the length shows.
    Exact,
}

impl Padding {
    /// How long a value of `len` bytes is once padded (marker included).
    #[must_use]
    pub const fn padded_len(self, len: usize) -> usize {
        let with_marker = len + 1;
        match self {
            Self::Exact => with_marker,
            Self::Buckets => {
                let mut bucket = 16;
                while bucket < with_marker && bucket < 256 {
                    bucket *= 2;
                }
                if with_marker <= bucket {
                    bucket
                } else {
                    with_marker.div_ceil(256) * 256
                }
            }
        }
    }
}

/// A column that holds sealed values: its table and column names, which go into every
/// value's associated data (a value copied to another table or column does not open),
/// the kind of value (what opening gives back, how its blind index normalizes), and its
/// padding.
///
/// # Examples
/// ```
/// use shopsafe::minimize::PiiKind;
/// use shopsafe::seal::{Column, Padding};
///
/// let email = Column::new("profiles", "email", PiiKind::Email)?;
/// assert_eq!(email.padding(), Padding::Buckets);
/// let note = Column::new("orders", "gift_note", PiiKind::FreeText)?.unpadded();
/// assert_eq!(note.padding(), Padding::Exact);
/// # Ok::<(), shopsafe::seal::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Column {
    table: String,
    column: String,
    kind: PiiKind,
    padding: Padding,
    calling_code: Option<u16>,
}

impl Column {
    /// A column `table.column` of values of `kind`, padded to buckets.
    ///
    /// # Errors
    /// [`Error::InvalidName`] unless both names are 1 to 63 characters of `a-z 0-9 _`.
    pub fn new(table: &str, column: &str, kind: PiiKind) -> Result<Self, Error> {
        let ok = |s: &str| crate::kernel::is_slug(s, 63, false);
        if !ok(table) || !ok(column) {
            return Err(Error::InvalidName);
        }
        Ok(Self {
            table: table.to_owned(),
            column: column.to_owned(),
            kind,
            padding: Padding::Buckets,
            calling_code: None,
        })
    }

    /// Pads only with the marker byte ([`Padding::Exact`]): the ciphertext shows the length.
    #[must_use]
    pub fn unpadded(mut self) -> Self {
        self.padding = Padding::Exact;
        self
    }

    /// For a phone column: the country calling code (`44`, `1`) of numbers written
    /// without one, so that `020 7946 0958` and `+44 20 7946 0958` index alike. Without
    /// it, a national number indexes as its digits.
    #[must_use]
    pub fn default_calling_code(mut self, code: u16) -> Self {
        self.calling_code = Some(code);
        self
    }

    /// The table's name.
    #[must_use]
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The column's name.
    #[must_use]
    pub fn column(&self) -> &str {
        &self.column
    }

    /// The kind of value it holds.
    #[must_use]
    pub const fn kind(&self) -> PiiKind {
        self.kind
    }

    /// Its padding.
    #[must_use]
    pub const fn padding(&self) -> Padding {
        self.padding
    }

    pub(super) const fn calling_code(&self) -> Option<u16> {
        self.calling_code
    }

    /// `table.column`: the name its blind-index key is kept under.
    pub(super) fn qualified(&self) -> String {
        format!("{}.{}", self.table, self.column)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_the_documented_ones() {
        let p = Padding::Buckets;
        let cases = [
            (0, 16),
            (15, 16),
            (16, 32),
            (31, 32),
            (32, 64),
            (63, 64),
            (64, 128),
            (127, 128),
            (128, 256),
            (255, 256),
            (256, 512),
            (511, 512),
            (512, 768),
        ];
        for (len, padded) in cases {
            assert_eq!(p.padded_len(len), padded, "{len}");
        }
        assert_eq!(Padding::Exact.padded_len(5), 6);
    }

    #[test]
    fn names_are_checked() {
        assert!(Column::new("profiles", "email", PiiKind::Email).is_ok());
        for (t, c) in [("", "x"), ("a.b", "x"), ("t", "Email"), ("t", "a b")] {
            assert!(matches!(
                Column::new(t, c, PiiKind::Email),
                Err(Error::InvalidName)
            ));
        }
    }
}
