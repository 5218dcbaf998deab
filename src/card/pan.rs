//! Primary account numbers: parsing, Luhn, the brand table, masks; card expiry dates.

use core::fmt;

use zeroize::Zeroizing;

use super::Error;

/// The shortest and longest PAN (ISO/IEC 7812-1).
pub const PAN_DIGITS: core::ops::RangeInclusive<usize> = 12..=19;

/// A card brand, from the issuer identification number (the PAN's first digits).
///
/// Non-exhaustive: networks are added as they are met. A card stored under one release
/// keeps the brand it was stored with; only numbers parsed afterwards use a newer table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum Brand {
    /// Visa: 4; 13, 16 or 19 digits.
    Visa,
    /// Mastercard: 51–55 and 2221–2720; 16 digits.
    Mastercard,
    /// American Express: 34, 37; 15 digits.
    Amex,
    /// Discover: 6011, 644–649, 65, 622126–622925; 16–19 digits.
    Discover,
    /// JCB: 3528–3589; 16–19 digits.
    Jcb,
    /// Diners Club International: 300–305, 3095, 36, 38–39; 14–19 digits.
    DinersClub,
    /// UnionPay: 62 (outside Discover's co-branded range), 81; 16–19 digits.
    UnionPay,
    /// Maestro: 50, 56–69 not claimed above; 12–19 digits. The broadest range: matched last.
    Maestro,
    /// Mir (Russia, NSPK): 2200–2204; 16–19 digits.
    Mir,
    /// Troy (Turkey, BKM): 9792; 16 digits.
    Troy,
    /// UATP (airline cards, e.g. AirPlus): 1; 15 digits.
    Uatp,
    /// RuPay (India, NPCI): 508500–508999, 606985–607984, 608001–608500, 652150–653149,
    /// 82; 16 digits.
    RuPay,
    /// Verve (Nigeria, Interswitch): 506099–506198, 507865–507964, 650002–650027; 16, 18
    /// or 19 digits.
    Verve,
    /// Elo (Brazil): the IINs of its published list (some inside Visa's 4, Maestro's and
    /// Discover's ranges); 16 digits.
    Elo,
    /// Hipercard (Brazil): 384100, 384140, 384160, 606282, 637095, 637568, 637599, 637609,
    /// 637612; 16 or 19 digits.
    Hipercard,
}

/// One row of the brand table: the IIN range `[low, high]` compared on the first
/// `prefix_len` digits, and the lengths the brand issues.
struct Range {
    prefix_len: usize,
    low: u32,
    high: u32,
    brand: Brand,
    lengths: &'static [usize],
}

const VISA_LEN: &[usize] = &[13, 16, 19];
const MC_LEN: &[usize] = &[16];
const AMEX_LEN: &[usize] = &[15];
const L16: &[usize] = &[16];
const L16_19: &[usize] = &[16, 17, 18, 19];
const L14_19: &[usize] = &[14, 15, 16, 17, 18, 19];
const L12_19: &[usize] = &[12, 13, 14, 15, 16, 17, 18, 19];
const VERVE_LEN: &[usize] = &[16, 18, 19];
const HIPERCARD_LEN: &[usize] = &[16, 19];

const fn r(
    prefix_len: usize,
    low: u32,
    high: u32,
    brand: Brand,
    lengths: &'static [usize],
) -> Range {
    Range {
        prefix_len,
        low,
        high,
        brand,
        lengths,
    }
}

/// In order: the first matching row decides. Narrow ranges come before the wide ones
/// they sit in (Elo's and Hipercard's six-digit IINs before Visa, Diners, Discover and
/// Maestro; Discover's 622126–622925 before UnionPay's 62; everything before Maestro).
///
/// Where the rows come from: the networks' own published ranges as collected in ISO/IEC
/// 7812 registrations and the networks' acceptance guides (Visa, Mastercard incl. the
/// 2-series bulletin of 2016, Amex, Discover/Diners "IIN ranges" acceptance table, JCB,
/// UnionPay); Mir from NSPK's rules (2200–2204, 16–19); Troy from BKM (9792, 16); UATP
/// from its card specification (MII 1, 15 digits); RuPay from NPCI's BIN list (the 60,
/// 65, 508 and the newer 82 ranges, 16 digits); Verve from Interswitch (16, 18, 19); Elo
/// and Hipercard from their acquirer BIN tables as republished by Brazilian acquirers.
/// Mastercard's 2-series is exactly 2221–2720: 2721 and up match nothing.
const TABLE: &[Range] = &[
    r(2, 34, 34, Brand::Amex, AMEX_LEN),
    r(2, 37, 37, Brand::Amex, AMEX_LEN),
    // Elo IINs inside Visa's 4.
    r(6, 401_178, 401_179, Brand::Elo, L16),
    r(6, 431_274, 431_274, Brand::Elo, L16),
    r(6, 438_935, 438_935, Brand::Elo, L16),
    r(6, 451_416, 451_416, Brand::Elo, L16),
    r(6, 457_393, 457_393, Brand::Elo, L16),
    r(6, 457_631, 457_632, Brand::Elo, L16),
    r(1, 4, 4, Brand::Visa, VISA_LEN),
    r(2, 51, 55, Brand::Mastercard, MC_LEN),
    r(4, 2221, 2720, Brand::Mastercard, MC_LEN),
    r(4, 2200, 2204, Brand::Mir, L16_19),
    r(4, 9792, 9792, Brand::Troy, L16),
    r(1, 1, 1, Brand::Uatp, AMEX_LEN),
    // Verve, RuPay, Elo and Hipercard inside Maestro's 50 and 60, Discover's 65.
    r(6, 506_099, 506_198, Brand::Verve, VERVE_LEN),
    r(6, 507_865, 507_964, Brand::Verve, VERVE_LEN),
    r(6, 650_002, 650_027, Brand::Verve, VERVE_LEN),
    r(6, 508_500, 508_999, Brand::RuPay, L16),
    r(6, 606_985, 607_984, Brand::RuPay, L16),
    r(6, 608_001, 608_500, Brand::RuPay, L16),
    r(6, 652_150, 653_149, Brand::RuPay, L16),
    r(2, 82, 82, Brand::RuPay, L16),
    r(6, 504_175, 504_175, Brand::Elo, L16),
    r(6, 506_699, 506_778, Brand::Elo, L16),
    r(6, 509_000, 509_999, Brand::Elo, L16),
    r(6, 627_780, 627_780, Brand::Elo, L16),
    r(6, 636_297, 636_297, Brand::Elo, L16),
    r(6, 636_368, 636_368, Brand::Elo, L16),
    r(6, 650_031, 650_033, Brand::Elo, L16),
    r(6, 650_035, 650_051, Brand::Elo, L16),
    r(6, 650_405, 650_439, Brand::Elo, L16),
    r(6, 650_485, 650_538, Brand::Elo, L16),
    r(6, 650_541, 650_598, Brand::Elo, L16),
    r(6, 650_700, 650_718, Brand::Elo, L16),
    r(6, 650_720, 650_727, Brand::Elo, L16),
    r(6, 650_901, 650_978, Brand::Elo, L16),
    r(6, 651_652, 651_679, Brand::Elo, L16),
    r(6, 655_000, 655_019, Brand::Elo, L16),
    r(6, 655_021, 655_058, Brand::Elo, L16),
    r(6, 384_100, 384_100, Brand::Hipercard, HIPERCARD_LEN),
    r(6, 384_140, 384_140, Brand::Hipercard, HIPERCARD_LEN),
    r(6, 384_160, 384_160, Brand::Hipercard, HIPERCARD_LEN),
    r(6, 606_282, 606_282, Brand::Hipercard, HIPERCARD_LEN),
    r(6, 637_095, 637_095, Brand::Hipercard, HIPERCARD_LEN),
    r(6, 637_568, 637_568, Brand::Hipercard, HIPERCARD_LEN),
    r(6, 637_599, 637_599, Brand::Hipercard, HIPERCARD_LEN),
    r(6, 637_609, 637_609, Brand::Hipercard, HIPERCARD_LEN),
    r(6, 637_612, 637_612, Brand::Hipercard, HIPERCARD_LEN),
    r(4, 6011, 6011, Brand::Discover, L16_19),
    r(3, 644, 649, Brand::Discover, L16_19),
    r(2, 65, 65, Brand::Discover, L16_19),
    r(6, 622_126, 622_925, Brand::Discover, L16_19),
    r(2, 62, 62, Brand::UnionPay, L16_19),
    r(2, 81, 81, Brand::UnionPay, L16_19),
    r(4, 3528, 3589, Brand::Jcb, L16_19),
    r(3, 300, 305, Brand::DinersClub, L14_19),
    r(4, 3095, 3095, Brand::DinersClub, L14_19),
    r(2, 36, 36, Brand::DinersClub, L14_19),
    r(2, 38, 39, Brand::DinersClub, L14_19),
    r(2, 50, 50, Brand::Maestro, L12_19),
    r(2, 56, 69, Brand::Maestro, L12_19),
];

impl Brand {
    /// The brand of a digit string by its IIN, and whether its length is one the brand
    /// issues: `None` when no range matches.
    #[must_use]
    pub fn detect(digits: &[u8]) -> Option<(Self, bool)> {
        TABLE.iter().find_map(|row| {
            let prefix = digits.get(..row.prefix_len)?;
            let value = prefix.iter().try_fold(0u32, |acc, d| {
                d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
            })?;
            (row.low..=row.high)
                .contains(&value)
                .then(|| (row.brand, row.lengths.contains(&digits.len())))
        })
    }

    /// The brand's name as printed on receipts.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Visa => "Visa",
            Self::Mastercard => "Mastercard",
            Self::Amex => "American Express",
            Self::Discover => "Discover",
            Self::Jcb => "JCB",
            Self::DinersClub => "Diners Club",
            Self::UnionPay => "UnionPay",
            Self::Maestro => "Maestro",
            Self::Mir => "Mir",
            Self::Troy => "Troy",
            Self::Uatp => "UATP",
            Self::RuPay => "RuPay",
            Self::Verve => "Verve",
            Self::Elo => "Elo",
            Self::Hipercard => "Hipercard",
        }
    }
}

impl fmt::Display for Brand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

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
