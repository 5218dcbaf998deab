//! Card brands and the IIN table: which brand a number's first digits name, and the
//! lengths that brand issues.

use core::fmt;

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
pub(super) struct Range {
    pub(super) prefix_len: usize,
    pub(super) low: u32,
    pub(super) high: u32,
    pub(super) brand: Brand,
    pub(super) lengths: &'static [usize],
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
pub(super) const TABLE: &[Range] = &[
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
