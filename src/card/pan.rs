//! Primary account numbers: parsing, Luhn, masks; card expiry dates. The brand table is
//! `brand.rs`.

use core::fmt;

use zeroize::Zeroizing;

use super::Error;
use super::brand::Brand;

/// The shortest and longest PAN (ISO/IEC 7812-1).
pub const PAN_DIGITS: core::ops::RangeInclusive<usize> = 12..=19;

/// The Luhn sum of `digits`, counting the last one as position 0 (not doubled), or
/// `None` if one is not an ASCII digit.
fn luhn_sum(digits: &[u8], last_doubled: bool) -> Option<u32> {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        if !d.is_ascii_digit() {
            return None;
        }
        let mut v = u32::from(d - b'0');
        if (i % 2 == 1) != last_doubled {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    Some(sum)
}

/// Whether a string of ASCII digits passes the Luhn (mod 10) check. Non-digits fail.
///
/// # Examples
/// ```
/// assert!(shopsafe::card::luhn_valid(b"4111111111111111"));
/// assert!(!shopsafe::card::luhn_valid(b"4111111111111112"));
/// ```
#[must_use]
pub fn luhn_valid(digits: &[u8]) -> bool {
    !digits.is_empty() && luhn_sum(digits, false).is_some_and(|s| s.is_multiple_of(10))
}

/// The Luhn check digit to append to `body` (ASCII digits), for making test numbers;
/// `None` if `body` holds anything else.
///
/// # Examples
/// ```
/// use shopsafe::card::{luhn_check_digit, luhn_valid};
///
/// assert_eq!(luhn_check_digit(b"411111111111111"), Some(b'1'));
/// let number = format!("400000000012345{}", char::from(luhn_check_digit(b"400000000012345").unwrap()));
/// assert!(luhn_valid(number.as_bytes()));
/// ```
#[must_use]
pub fn luhn_check_digit(body: &[u8]) -> Option<u8> {
    let sum = luhn_sum(body, true)?;
    // `sum % 10 < 10`, so the digit fits.
    Some(b'0' + u8::try_from((10 - sum % 10) % 10).unwrap_or(0))
}

/// A primary account number: 12–19 digits, Luhn-valid, of a known brand at a length that
/// brand issues. Wiped on drop, not `Clone`, not `Serialize`; `Debug` and `Display` show
/// the last four digits only ([`Pan::mask_bin_last4`] is the widest PCI DSS 3.4.1 mask).
///
/// # Examples
/// ```
/// use shopsafe::card::{Brand, Pan};
///
/// let pan = Pan::parse("4111 1111-1111 1111")?;
/// assert_eq!(pan.brand(), Brand::Visa);
/// assert_eq!(pan.to_string(), "Visa ••••1111");
/// assert_eq!(pan.mask_bin_last4(), "411111******1111");
/// assert!(Pan::parse("4111 1111 1111 1112").is_err()); // Luhn
/// # Ok::<(), shopsafe::card::Error>(())
/// ```
pub struct Pan {
    digits: Zeroizing<Vec<u8>>,
    brand: Brand,
}

impl Pan {
    /// Parses a card number as typed: digits with single spaces or dashes between groups.
    ///
    /// # Errors
    /// [`Error::InvalidPan`] (a character other than digits, spaces, dashes; too short,
    /// too long), [`Error::LuhnMismatch`], [`Error::UnknownBrand`],
    /// [`Error::WrongLengthForBrand`]. No error repeats the number.
    pub fn parse(input: &str) -> Result<Self, Error> {
        let mut digits = Zeroizing::new(Vec::with_capacity(19));
        let mut last_sep = true; // no separator first
        for b in input.trim().bytes() {
            match b {
                b'0'..=b'9' => {
                    if digits.len() == *PAN_DIGITS.end() {
                        return Err(Error::InvalidPan {
                            reason: "more than 19 digits",
                        });
                    }
                    digits.push(b);
                    last_sep = false;
                }
                b' ' | b'-' if !last_sep => last_sep = true,
                b' ' | b'-' => {
                    return Err(Error::InvalidPan {
                        reason: "separators must sit between digit groups",
                    });
                }
                _ => {
                    return Err(Error::InvalidPan {
                        reason: "only digits, spaces and dashes are allowed",
                    });
                }
            }
        }
        if last_sep && !digits.is_empty() {
            return Err(Error::InvalidPan {
                reason: "separators must sit between digit groups",
            });
        }
        Self::from_digits(digits)
    }

    /// From ASCII digits without separators (as the vault stores them).
    pub(crate) fn from_digits(digits: Zeroizing<Vec<u8>>) -> Result<Self, Error> {
        if !PAN_DIGITS.contains(&digits.len()) {
            return Err(Error::InvalidPan {
                reason: "a card number has 12 to 19 digits",
            });
        }
        if !luhn_valid(&digits) {
            return Err(Error::LuhnMismatch);
        }
        match Brand::detect(&digits) {
            None => Err(Error::UnknownBrand),
            Some((brand, false)) => Err(Error::WrongLengthForBrand {
                brand,
                length: digits.len(),
            }),
            Some((brand, true)) => Ok(Self { digits, brand }),
        }
    }

    /// The brand.
    #[must_use]
    pub fn brand(&self) -> Brand {
        self.brand
    }

    /// The last four digits (not secret on their own: receipts print them).
    #[must_use]
    pub fn last4(&self) -> Last4 {
        let n = self.digits.len();
        let mut out = [0u8; 4];
        out.copy_from_slice(&self.digits[n - 4..]);
        Last4(out)
    }

    /// The PCI DSS 3.4.1 maximum display: first six and last four, the rest `*`.
    #[must_use]
    pub fn mask_bin_last4(&self) -> String {
        let n = self.digits.len();
        self.digits
            .iter()
            .enumerate()
            .map(|(i, d)| {
                if i < 6 || i >= n - 4 {
                    char::from(*d)
                } else {
                    '*'
                }
            })
            .collect()
    }

    /// The digits, for the payment processor. Every call site is a place where a PAN is
    /// handled in the clear: keep them few.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        // Only ASCII digits are ever stored.
        core::str::from_utf8(&self.digits).unwrap_or_default()
    }

    pub(crate) fn digits(&self) -> &[u8] {
        &self.digits
    }
}

impl fmt::Debug for Pan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pan({} ••••{})", self.brand.name(), self.last4())
    }
}

impl fmt::Display for Pan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ••••{}", self.brand.name(), self.last4())
    }
}

/// The last four digits of a card: what receipts and the customer database may show.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "String", into = "String"))]
pub struct Last4([u8; 4]);

impl Last4 {
    /// The four digits as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.0).unwrap_or("????")
    }
}

impl TryFrom<String> for Last4 {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        let b: [u8; 4] = s.as_bytes().try_into().map_err(|_| Error::InvalidPan {
            reason: "last four must be 4 digits",
        })?;
        if b.iter().all(u8::is_ascii_digit) {
            Ok(Self(b))
        } else {
            Err(Error::InvalidPan {
                reason: "last four must be 4 digits",
            })
        }
    }
}

impl From<Last4> for String {
    fn from(l: Last4) -> Self {
        l.as_str().to_owned()
    }
}

impl fmt::Debug for Last4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Last4({})", self.as_str())
    }
}

impl fmt::Display for Last4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A card's expiry month and year.
///
/// # Examples
/// ```
/// use shopsafe::card::Expiry;
///
/// let e = Expiry::parse("08/29")?;
/// assert_eq!((e.month(), e.year()), (8, 2029));
/// assert_eq!(e.to_string(), "08/2029");
/// assert!(Expiry::parse("13/29").is_err());
/// # Ok::<(), shopsafe::card::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Expiry {
    year: u16,
    month: u8,
}

impl Expiry {
    /// A month (1–12) of a year (2000–2099).
    ///
    /// # Errors
    /// [`Error::InvalidExpiry`].
    pub fn new(month: u8, year: u16) -> Result<Self, Error> {
        if !(1..=12).contains(&month) || !(2000..=2099).contains(&year) {
            return Err(Error::InvalidExpiry);
        }
        Ok(Self { year, month })
    }

    /// Parses `MM/YY` or `MM/YYYY` (spaces around the slash allowed).
    ///
    /// # Errors
    /// [`Error::InvalidExpiry`].
    pub fn parse(s: &str) -> Result<Self, Error> {
        let (m, y) = s.split_once('/').ok_or(Error::InvalidExpiry)?;
        let (m, y) = (m.trim(), y.trim());
        let digits = |t: &str, lens: &[usize]| {
            lens.contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit())
        };
        if !digits(m, &[1, 2]) || !digits(y, &[2, 4]) {
            return Err(Error::InvalidExpiry);
        }
        let month: u8 = m.parse().map_err(|_| Error::InvalidExpiry)?;
        let year: u16 = y.parse().map_err(|_| Error::InvalidExpiry)?;
        Self::new(month, if y.len() == 2 { 2000 + year } else { year })
    }

    /// The month, 1–12.
    #[must_use]
    pub const fn month(&self) -> u8 {
        self.month
    }

    /// The year, four digits.
    #[must_use]
    pub const fn year(&self) -> u16 {
        self.year
    }
}

impl fmt::Display for Expiry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}/{}", self.month, self.year)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::card::brand::TABLE;

    #[test]
    fn mastercard_two_series_is_exactly_2221_to_2720() {
        let brand = |prefix: &str| {
            let mut d: Vec<u8> = prefix.bytes().collect();
            d.resize(16, b'0');
            Brand::detect(&d).map(|(b, _)| b)
        };
        assert_eq!(brand("2220"), None);
        assert_eq!(brand("2221"), Some(Brand::Mastercard));
        assert_eq!(brand("2720"), Some(Brand::Mastercard));
        assert_eq!(brand("2721"), None);
        assert_eq!(brand("2200"), Some(Brand::Mir), "MIR is not Mastercard");
        assert_eq!(brand("2204"), Some(Brand::Mir));
        assert_eq!(brand("2205"), None);
        assert_eq!(brand("2219"), None);
        assert_eq!(brand("622126"), Some(Brand::Discover));
        assert_eq!(brand("622925"), Some(Brand::Discover));
        assert_eq!(brand("622125"), Some(Brand::UnionPay));
        assert_eq!(brand("622926"), Some(Brand::UnionPay));
        assert_eq!(brand("6011"), Some(Brand::Discover));
        assert_eq!(brand("6012"), Some(Brand::Maestro));
        assert_eq!(brand("3095"), Some(Brand::DinersClub));
        assert_eq!(brand("3096"), None);
        assert_eq!(brand("3527"), None);
        assert_eq!(brand("3528"), Some(Brand::Jcb));
    }

    #[test]
    fn regional_networks_have_their_own_rows() {
        let brand = |prefix: &str, len: usize| {
            let mut d: Vec<u8> = prefix.bytes().collect();
            d.resize(len - 1, b'0');
            d.push(luhn_check_digit(&d).expect("digits"));
            Brand::detect(&d)
        };
        assert_eq!(brand("2200", 16), Some((Brand::Mir, true)));
        assert_eq!(brand("2204", 19), Some((Brand::Mir, true)));
        assert_eq!(brand("9792", 16), Some((Brand::Troy, true)));
        assert_eq!(brand("9792", 19), Some((Brand::Troy, false)));
        assert_eq!(brand("12", 15), Some((Brand::Uatp, true)));
        assert_eq!(
            brand("1", 13),
            Some((Brand::Uatp, false)),
            "a 13-digit timestamp"
        );
        assert_eq!(brand("508500", 16), Some((Brand::RuPay, true)));
        assert_eq!(brand("607984", 16), Some((Brand::RuPay, true)));
        assert_eq!(brand("652150", 16), Some((Brand::RuPay, true)));
        assert_eq!(brand("82", 16), Some((Brand::RuPay, true)));
        assert_eq!(brand("506099", 19), Some((Brand::Verve, true)));
        assert_eq!(brand("650027", 18), Some((Brand::Verve, true)));
        assert_eq!(brand("507964", 16), Some((Brand::Verve, true)));
        assert_eq!(brand("401178", 16), Some((Brand::Elo, true)));
        assert_eq!(brand("509999", 16), Some((Brand::Elo, true)));
        assert_eq!(brand("650485", 16), Some((Brand::Elo, true)));
        assert_eq!(brand("384100", 16), Some((Brand::Hipercard, true)));
        assert_eq!(brand("606282", 16), Some((Brand::Hipercard, true)));
        // Just outside the narrow rows: the wide row again.
        assert_eq!(brand("401180", 16), Some((Brand::Visa, true)));
        assert_eq!(brand("508499", 16), Some((Brand::Maestro, true)));
        assert_eq!(brand("650028", 16), Some((Brand::Discover, true)));
        assert_eq!(brand("384101", 16), Some((Brand::DinersClub, true)));
        assert_eq!(brand("2721", 16), None, "2721 is not Mastercard");
    }

    #[test]
    fn separators_only_between_groups() {
        assert!(Pan::parse("4111-1111-1111-1111").is_ok());
        assert!(
            Pan::parse(" 4111 1111 1111 1111 ").is_ok(),
            "surrounding space is trimmed"
        );
        for bad in [
            "4111  1111 1111 1111",
            "-4111111111111111",
            "4111111111111111-",
            "4111 1111 1111 111a",
            "４111111111111111",
        ] {
            assert!(
                matches!(Pan::parse(bad), Err(Error::InvalidPan { .. })),
                "{bad}"
            );
        }
        assert!(
            matches!(
                Pan::parse("41111111111111111111"),
                Err(Error::InvalidPan { .. })
            ),
            "20 digits"
        );
        assert!(
            matches!(Pan::parse("4111111111"), Err(Error::InvalidPan { .. })),
            "10 digits"
        );
    }

    #[test]
    fn errors_are_precise_and_never_hold_the_number() {
        assert!(matches!(
            Pan::parse("4111111111111112"),
            Err(Error::LuhnMismatch)
        ));
        assert!(matches!(
            Pan::parse("9111111111111110"),
            Err(Error::UnknownBrand)
        ));
        // A Luhn-valid 15-digit Visa: Visa issues 13, 16 and 19.
        let e = Pan::parse("411111111111116").expect_err("wrong length");
        assert!(
            matches!(
                e,
                Error::WrongLengthForBrand {
                    brand: Brand::Visa,
                    length: 15
                }
            ),
            "{e:?}"
        );
        assert!(!e.to_string().contains("4111"));
    }

    #[test]
    fn masks_show_at_most_bin_and_last_four() {
        let pan = Pan::parse("378282246310005").expect("amex");
        assert_eq!(format!("{pan:?}"), "Pan(American Express ••••0005)");
        assert_eq!(pan.mask_bin_last4(), "378282*****0005");
        assert_eq!(pan.last4().as_str(), "0005");
    }

    #[test]
    fn expiry_parses_both_year_forms_and_refuses_nonsense() {
        assert_eq!(
            Expiry::parse("1/2031").expect("valid"),
            Expiry::new(1, 2031).expect("valid")
        );
        assert_eq!(
            Expiry::parse(" 12 / 30 ").expect("valid"),
            Expiry::new(12, 2030).expect("valid")
        );
        for bad in [
            "00/30", "13/30", "12/3", "12/203", "1230", "ab/cd", "12/2100", "+1/30",
        ] {
            assert!(Expiry::parse(bad).is_err(), "{bad}");
        }
    }

    fn with_check_digit(mut body: Vec<u8>) -> Vec<u8> {
        body.push(b'0');
        for c in b'0'..=b'9' {
            *body.last_mut().expect("pushed") = c;
            if luhn_valid(&body) {
                break;
            }
        }
        body
    }

    proptest! {
        #[test]
        fn the_check_digit_is_the_one_luhn_accepts(body in prop::collection::vec(0u8..10, 1..19)) {
            let body: Vec<u8> = body.iter().map(|d| b'0' + d).collect();
            let brute = with_check_digit(body.clone());
            prop_assert_eq!(luhn_check_digit(&body), brute.last().copied());
            prop_assert_eq!(luhn_check_digit(b"12a"), None);
        }

        #[test]
        fn arbitrary_input_never_panics(s in any::<String>()) {
            let _ = Pan::parse(&s);
            let _ = Expiry::parse(&s);
        }

        #[test]
        fn valid_pans_of_every_brand_parse(
            row in 0..TABLE.len(),
            pick in any::<prop::sample::Index>(),
            len_pick in any::<prop::sample::Index>(),
            rest in prop::collection::vec(0u8..10, 19),
        ) {
            let range = &TABLE[row];
            let value = range.low + u32::try_from(pick.index(usize::try_from(range.high - range.low + 1).expect("small"))).expect("small");
            let len = range.lengths[len_pick.index(range.lengths.len())];
            let mut body: Vec<u8> = format!("{value:0width$}", width = range.prefix_len).into_bytes();
            body.extend(rest.iter().map(|d| b'0' + d).take(len - 1 - body.len()));
            let digits = with_check_digit(body);
            // Numbers an earlier, narrower row claims belong to that row's own cases: the
            // expected brand comes from this row of the data, not from `detect`.
            let claimed_earlier = TABLE[..row].iter().any(|earlier| {
                let prefix = core::str::from_utf8(&digits[..earlier.prefix_len]).expect("ascii");
                prefix.parse::<u32>().is_ok_and(|v| (earlier.low..=earlier.high).contains(&v))
            });
            prop_assume!(!claimed_earlier);
            prop_assert_eq!(digits.len(), len);
            prop_assert_eq!(Brand::detect(&digits), Some((range.brand, true)));
            let pan = Pan::parse(core::str::from_utf8(&digits).expect("ascii")).expect("valid pan parses");
            prop_assert_eq!(pan.brand(), range.brand);
            prop_assert_eq!(pan.expose_secret().as_bytes(), &digits[..]);
        }

        #[test]
        fn changing_one_digit_breaks_luhn(rest in prop::collection::vec(0u8..10, 15), pos in 0usize..16, delta in 1u8..10) {
            let mut body = vec![b'4'];
            body.extend(rest.iter().map(|d| b'0' + d));
            let mut digits = with_check_digit(body);
            prop_assert!(luhn_valid(&digits));
            digits[pos] = b'0' + (digits[pos] - b'0' + delta) % 10;
            prop_assert!(!luhn_valid(&digits));
        }
    }
}
