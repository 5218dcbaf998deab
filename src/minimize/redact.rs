//! Redacting what the scanner finds: how a found number is written ([`RedactStyle`]),
//! the [`Redactor`] that holds a style and a detection rule, and the redacting calls.

use std::borrow::Cow;

use super::scanner::{Ctx, Detect, PanMatch, scan_with};

/// How a found number is written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum RedactStyle {
    /// `[PAN:…1234]`: the last four stay, for support staff.
    #[default]
    LastFour,
    /// A fixed text, e.g. `[REDACTED]`.
    Fixed(String),
}

/// What a scan looks for and how a redaction writes what it found: the settings behind
/// [`scan`](super::scan), [`redact`] and [`RedactingWriter`](super::RedactingWriter), for
/// callers who want other ones.
///
/// # Examples
/// ```
/// use shopsafe::minimize::{Detect, Redactor};
///
/// // UATP (airline) numbers are in the table; an unknown IIN needs `AnyLuhn`.
/// let text = "ticket paid with 122000000000003, voucher 9000 0000 0000 0001";
/// assert_eq!(Redactor::new().redact(text), "ticket paid with [PAN:…0003], voucher 9000 0000 0000 0001");
/// assert_eq!(
///     Redactor::new().detect(Detect::AnyLuhn).redact(text),
///     "ticket paid with [PAN:…0003], voucher [PAN:…0001]"
/// );
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct Redactor {
    pub(super) style: RedactStyle,
    pub(super) detect: Detect,
}

impl Redactor {
    /// `[PAN:…1234]`, known brands only.
    pub fn new() -> Self {
        Self::default()
    }

    /// How found numbers are written.
    pub fn style(mut self, style: RedactStyle) -> Self {
        self.style = style;
        self
    }

    /// Which numbers count.
    pub fn detect(mut self, detect: Detect) -> Self {
        self.detect = detect;
        self
    }

    /// Every card number in `bytes`, left to right, non-overlapping.
    #[must_use]
    pub fn scan(&self, bytes: &[u8]) -> Vec<PanMatch> {
        let mut out = Vec::new();
        scan_with(
            &Ctx::alone(bytes),
            self.detect,
            &mut |m| out.push(m),
            &mut (),
        );
        out
    }

    /// Redacts text; borrows when there is nothing to redact.
    #[must_use]
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match self.redact_bytes(text.as_bytes()) {
            Cow::Borrowed(_) => Cow::Borrowed(text),
            // Only ASCII digit runs were replaced, by ASCII or by the style's own UTF-8 text.
            Cow::Owned(bytes) => Cow::Owned(
                String::from_utf8(bytes)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            ),
        }
    }

    /// Redacts bytes; borrows when there is nothing to redact.
    #[must_use]
    pub fn redact_bytes<'a>(&self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        redact_in(&Ctx::alone(bytes), self).0
    }
}

pub(super) fn replacement(style: &RedactStyle, bytes: &[u8], m: &PanMatch, out: &mut Vec<u8>) {
    match style {
        RedactStyle::LastFour => {
            let mut last4 = [0u8; 4];
            let mut k = 4;
            for &b in bytes[m.start..m.end].iter().rev() {
                if b.is_ascii_digit() {
                    k -= 1;
                    last4[k] = b;
                    if k == 0 {
                        break;
                    }
                }
            }
            out.extend_from_slice("[PAN:…".as_bytes());
            out.extend_from_slice(&last4);
            out.push(b']');
        }
        RedactStyle::Fixed(text) => out.extend_from_slice(text.as_bytes()),
    }
}

/// Redacts card numbers in bytes; borrows when there are none.
///
/// # Examples
/// ```
/// use shopsafe::minimize::{RedactStyle, redact_bytes};
///
/// let out = redact_bytes(b"card=5555-5555-5555-4444;", &RedactStyle::LastFour);
/// assert_eq!(&*out, "card=[PAN:…4444];".as_bytes());
/// ```
#[must_use]
pub fn redact_bytes<'a>(bytes: &'a [u8], style: &RedactStyle) -> Cow<'a, [u8]> {
    Redactor::new().style(style.clone()).redact_bytes(bytes)
}

/// Redacts `ctx.bytes` and says how many numbers it replaced.
pub(super) fn redact_in<'a>(ctx: &Ctx<'a>, redactor: &Redactor) -> (Cow<'a, [u8]>, u64) {
    let bytes = ctx.bytes;
    let mut out: Option<Vec<u8>> = None;
    let (mut copied, mut found) = (0, 0);
    scan_with(
        ctx,
        redactor.detect,
        &mut |m| {
            let buf = out.get_or_insert_with(|| Vec::with_capacity(bytes.len()));
            buf.extend_from_slice(&bytes[copied..m.start]);
            replacement(&redactor.style, bytes, &m, buf);
            copied = m.end;
            found += 1;
        },
        &mut (),
    );
    match out {
        None => (Cow::Borrowed(bytes), 0),
        Some(mut buf) => {
            buf.extend_from_slice(&bytes[copied..]);
            (Cow::Owned(buf), found)
        }
    }
}

/// Redacts card numbers in text with `[PAN:…1234]`; borrows when there are none.
///
/// # Examples
/// ```
/// assert_eq!(
///     shopsafe::minimize::redact("refund to 3782 822463 10005 ok"),
///     "refund to [PAN:…0005] ok"
/// );
/// assert_eq!(shopsafe::minimize::redact("カード番号：4111111111111111"), "カード番号：[PAN:…1111]");
/// ```
#[must_use]
pub fn redact(text: &str) -> Cow<'_, str> {
    Redactor::new().redact(text)
}

/// [`redact`] with another style.
#[must_use]
pub fn redact_with<'a>(text: &'a str, style: &RedactStyle) -> Cow<'a, str> {
    Redactor::new().style(style.clone()).redact(text)
}
