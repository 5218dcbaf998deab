//! Finding and redacting card numbers in text and bytes (logs, support tickets, exports).
//!
//! A candidate is a run of 12–19 digits, unbroken or in a plausible grouping (4-4-4-4,
//! 4-4-4-4-3 and other 4-groups ending in 1–4 digits, Amex 4-6-5, Diners 4-6-4) with a
//! single space or dash between groups, that is not glued to a letter, a digit or a `+`,
//! passes Luhn, and has an IIN of a known brand at a length that brand issues. Timestamps,
//! order numbers, phone numbers and UUIDs fail at least one of those (see the tests).

use std::borrow::Cow;
use std::io::{self, Write};

use crate::card::{Brand, luhn_valid};

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

/// A card number found by [`scan`]: its byte range and brand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PanMatch {
    /// Where it starts.
    pub start: usize,
    /// Where it ends (exclusive).
    pub end: usize,
    /// The brand by IIN.
    pub brand: Brand,
}

/// The longest candidate with separators: 19 digits and 18 separators.
const MAX_CANDIDATE_BYTES: usize = 37;
/// A streaming writer holds back at most this much of a trailing digit run.
const MAX_HELD: usize = 256;

fn is_sep(b: u8) -> bool {
    b == b' ' || b == b'-'
}

/// Whether `b` may stand next to a card number.
fn is_boundary(b: Option<u8>) -> bool {
    b.is_none_or(|b| !(b.is_ascii_alphanumeric() || b == b'+' || b == b'_' || b >= 0x80))
}

/// Plausible groupings, by group lengths (unbroken numbers are handled apart).
fn plausible(groups: &[usize]) -> bool {
    match groups {
        [4, 6, 5] | [4, 6, 4] => true,
        [init @ .., last] if init.len() >= 2 => {
            init.iter().all(|&g| g == 4) && (1..=4).contains(last)
        }
        _ => false,
    }
}

/// Checks one candidate: its digits (no separators) pass Luhn and the brand table.
fn card_brand(digits: &[u8]) -> Option<Brand> {
    if !(12..=19).contains(&digits.len()) || !luhn_valid(digits) {
        return None;
    }
    match Brand::detect(digits) {
        Some((brand, true)) => Some(brand),
        _ => None,
    }
}

/// Finds every card number in `bytes`, left to right, non-overlapping.
///
/// # Examples
/// ```
/// let found = shopsafe::minimize::scan(b"paid with 4111 1111 1111 1111 at 10:32");
/// assert_eq!((found[0].start, found[0].end), (10, 29));
/// assert!(shopsafe::minimize::scan(b"order 1700000000000 ok").is_empty()); // a timestamp
/// ```
#[must_use]
pub fn scan(bytes: &[u8]) -> Vec<PanMatch> {
    let mut out = Vec::new();
    scan_with(bytes, None, &[], &mut |m| out.push(m));
    out
}

/// Bytes a card number is written with: digits and the two separators.
const RUN_BYTE: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = b'0';
    while b <= b'9' {
        t[b as usize] = true;
        b += 1;
    }
    t[b' ' as usize] = true;
    t[b'-' as usize] = true;
    t
};

/// The fewest bytes a card number takes: 12 digits.
const MIN_SPAN: usize = 12;

/// The scanner itself: calls `found` for each match. A streaming caller passes the byte
/// before `bytes` and the bytes after it (two suffice), which decide whether a run at
/// either edge is glued to a word.
///
/// A card number lies inside a span of at least [`MIN_SPAN`] bytes that are all digits,
/// spaces or dashes, and any such span covers one of the positions `MIN_SPAN - 1`,
/// `2 * MIN_SPAN - 1`, … So the scanner probes one byte in twelve; where a probe lands
/// in a run byte it widens to the span, and only a span of twelve bytes or more is
/// read, run by run, by [`scan_runs`] (a property test checks that this finds what
/// reading every span finds). Log text, full of short digit runs (times, ids, status
/// codes), is mostly skipped without being read.
fn scan_with(bytes: &[u8], before: Option<u8>, after: &[u8], found: &mut dyn FnMut(PanMatch)) {
    let n = bytes.len();
    let mut probe = MIN_SPAN - 1;
    while probe < n {
        if !RUN_BYTE[usize::from(bytes[probe])] {
            probe += MIN_SPAN;
            continue;
        }
        let mut lo = probe;
        while lo > 0 && RUN_BYTE[usize::from(bytes[lo - 1])] {
            lo -= 1;
        }
        // Most spans in logs are short (times, ids): look no further than twelve bytes.
        let mut hi = probe + 1;
        while hi < n && hi - lo < MIN_SPAN && RUN_BYTE[usize::from(bytes[hi])] {
            hi += 1;
        }
        if hi - lo >= MIN_SPAN {
            hi = scan_runs(bytes, lo, before, after, found);
        }
        // `hi` is not a run byte (or the end): spans after it start at `hi + 1` or later.
        probe = hi + MIN_SPAN;
    }
}

/// Scans the runs of the span of run bytes that starts at `from` (no run byte just before
/// it) and returns where the span ends: each run of digits with single separators is
/// checked by [`check_run`].
fn scan_runs(
    bytes: &[u8],
    from: usize,
    before: Option<u8>,
    after: &[u8],
    found: &mut dyn FnMut(PanMatch),
) -> usize {
    let n = bytes.len();
    let mut i = from;
    loop {
        // Separators between runs (`1 - 2`, a trailing dash) belong to the span.
        while i < n && is_sep(bytes[i]) {
            i += 1;
        }
        if i == n || !bytes[i].is_ascii_digit() {
            return i;
        }
        let start = i;
        // The run: digits with single separators between them, however long.
        let mut digits = 0;
        loop {
            let g = i;
            while i < n && bytes[i].is_ascii_digit() {
                i += 1;
            }
            digits += i - g;
            if i + 1 < n && is_sep(bytes[i]) && bytes[i + 1].is_ascii_digit() {
                i += 1;
            } else {
                break;
            }
        }
        if digits < 12 {
            continue;
        }
        let end = i;
        let at = |k: usize| {
            if k < n {
                Some(bytes[k])
            } else {
                after.get(k - n).copied()
            }
        };
        let prev = if start == 0 {
            before
        } else {
            Some(bytes[start - 1])
        };
        let prev2 = if start >= 2 {
            Some(bytes[start - 2])
        } else if start == 1 {
            before
        } else {
            None
        };
        let (next, next2) = (at(end), at(end + 1));
        // Glued: to a word, or by a dash to one (the last group of a UUID, `ORD-...`).
        let hyphenated =
            |dash: Option<u8>, beyond: Option<u8>| dash == Some(b'-') && !is_boundary(beyond);
        if !is_boundary(prev)
            || !is_boundary(next)
            || hyphenated(prev, prev2)
            || hyphenated(next, next2)
        {
            continue;
        }
        check_run(bytes, start, end, found);
    }
}

/// The group of digits that starts at `at` in a run ending at `end`, and where the next
/// group starts (after one separator), if there is one.
fn group_at(bytes: &[u8], at: usize, end: usize) -> ((usize, usize), Option<usize>) {
    let stop = bytes[at..end]
        .iter()
        .position(|b| !b.is_ascii_digit())
        .map_or(end, |k| at + k);
    ((at, stop), (stop < end).then_some(stop + 1))
}

/// Tries windows of consecutive groups of the run `bytes[start..end]`, longest first from
/// each group, left to right; a window of one group is an unbroken number. A window spans
/// at most 19 groups, so only those after the current group are cut out.
fn check_run(bytes: &[u8], start: usize, end: usize, found: &mut dyn FnMut(PanMatch)) {
    let mut digits = [0u8; 19];
    let mut next = Some(start);
    'starts: while let Some(first) = next {
        // The groups from `first` on that a window can reach.
        let mut groups = [(0usize, 0usize); 19];
        let mut count = 0;
        let mut at = Some(first);
        while let Some(g) = at {
            let (group, following) = group_at(bytes, g, end);
            if count == groups.len() || group.1 - first > MAX_CANDIDATE_BYTES {
                break;
            }
            groups[count] = group;
            count += 1;
            at = following;
        }
        next = group_at(bytes, first, end).1;
        for last in (0..count).rev() {
            let window = &groups[..=last];
            let (from, to) = (window[0].0, window[last].1);
            let mut lens = [0usize; 19];
            let mut total = 0;
            for (slot, (x, y)) in lens.iter_mut().zip(window) {
                *slot = y - x;
                total += y - x;
            }
            if !(12..=19).contains(&total) || (last > 0 && !plausible(&lens[..=last])) {
                continue;
            }
            let mut k = 0;
            for &(x, y) in window {
                digits[k..k + (y - x)].copy_from_slice(&bytes[x..y]);
                k += y - x;
            }
            if let Some(brand) = card_brand(&digits[..k]) {
                found(PanMatch {
                    start: from,
                    end: to,
                    brand,
                });
                next = (to < end).then_some(to + 1);
                continue 'starts;
            }
        }
    }
}

fn replacement(style: &RedactStyle, bytes: &[u8], m: &PanMatch, out: &mut Vec<u8>) {
    match style {
        RedactStyle::LastFour => {
            let digits: Vec<u8> = bytes[m.start..m.end]
                .iter()
                .copied()
                .filter(u8::is_ascii_digit)
                .collect();
            out.extend_from_slice("[PAN:…".as_bytes());
            out.extend_from_slice(&digits[digits.len() - 4..]);
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
    redact_bytes_between(bytes, None, &[], style).0
}

/// Redacts `bytes` (with the bytes around it, for a streaming caller) and says how many
/// numbers it replaced.
fn redact_bytes_between<'a>(
    bytes: &'a [u8],
    before: Option<u8>,
    after: &[u8],
    style: &RedactStyle,
) -> (Cow<'a, [u8]>, u64) {
    let mut out: Option<Vec<u8>> = None;
    let (mut copied, mut found) = (0, 0);
    scan_with(bytes, before, after, &mut |m| {
        let buf = out.get_or_insert_with(|| Vec::with_capacity(bytes.len()));
        buf.extend_from_slice(&bytes[copied..m.start]);
        replacement(style, bytes, &m, buf);
        copied = m.end;
        found += 1;
    });
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
/// ```
#[must_use]
pub fn redact(text: &str) -> Cow<'_, str> {
    redact_with(text, &RedactStyle::LastFour)
}

/// [`redact`] with another style.
#[must_use]
pub fn redact_with<'a>(text: &'a str, style: &RedactStyle) -> Cow<'a, str> {
    match redact_bytes(text.as_bytes(), style) {
        Cow::Borrowed(_) => Cow::Borrowed(text),
        // Only ASCII digit runs were replaced, by ASCII or by the style's own UTF-8 text.
        Cow::Owned(bytes) => Cow::Owned(
            String::from_utf8(bytes)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        ),
    }
}

/// An `io::Write` that redacts card numbers before they reach the inner writer, also when
/// a number is split across `write` calls: a trailing run of digits and separators is held
/// back (at most 256 bytes) until the next non-run byte, `flush`, or drop.
///
/// # Examples
/// ```
/// use std::io::Write;
/// use shopsafe::minimize::RedactingWriter;
///
/// let mut w = RedactingWriter::new(Vec::new());
/// w.write_all(b"pan 4111 1111 ")?;
/// w.write_all(b"1111 1111 end\n")?;
/// assert_eq!(w.into_inner()?, b"pan [PAN:\xe2\x80\xa61111] end\n");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct RedactingWriter<W: Write> {
    inner: Option<W>,
    held: Vec<u8>,
    before: Option<u8>,
    style: RedactStyle,
    found: u64,
}

impl<W: Write> RedactingWriter<W> {
    /// Wraps `inner`, writing `[PAN:…1234]`.
    pub fn new(inner: W) -> Self {
        Self::with_style(inner, RedactStyle::LastFour)
    }

    /// Wraps `inner` with a redaction style.
    pub fn with_style(inner: W, style: RedactStyle) -> Self {
        Self {
            inner: Some(inner),
            held: Vec::new(),
            before: None,
            style,
            found: 0,
        }
    }

    /// How many card numbers were redacted so far.
    #[must_use]
    pub fn redacted(&self) -> u64 {
        self.found
    }

    /// Writes out what is held and returns the inner writer.
    ///
    /// # Errors
    /// The inner writer's.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.emit(self.held.len())?;
        self.inner
            .take()
            .ok_or_else(|| io::Error::other("writer already taken"))
    }

    /// Redacts and writes `held[..upto]`, keeping the rest.
    fn emit(&mut self, upto: usize) -> io::Result<()> {
        if upto == 0 {
            return Ok(());
        }
        let (chunk, after) = self.held.split_at(upto);
        let (out, found) = redact_bytes_between(chunk, self.before, after, &self.style);
        if let Some(inner) = self.inner.as_mut() {
            inner.write_all(&out)?;
        }
        self.found += found;
        self.before = chunk.last().copied();
        self.held.drain(..upto);
        Ok(())
    }
}

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.held.extend_from_slice(buf);
        // Hold back a trailing run (digits and separators) and the byte before it, which
        // decides whether the run is glued to a word.
        let run = self
            .held
            .iter()
            .rev()
            .take_while(|b| b.is_ascii_digit() || is_sep(**b))
            .count();
        let keep = if run == 0 {
            0
        } else {
            (run + 1).min(self.held.len())
        };
        let mut upto = self.held.len() - keep;
        if keep > MAX_HELD {
            upto = self.held.len() - MAX_HELD;
        }
        self.emit(upto)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.emit(self.held.len())?;
        self.inner.as_mut().map_or(Ok(()), Write::flush)
    }
}

impl<W: Write> Drop for RedactingWriter<W> {
    fn drop(&mut self) {
        // Best effort, as `BufWriter` does: call `flush` to see errors.
        let _ = self.emit(self.held.len());
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn formats_people_write_are_found() {
        for (line, expected) in [
            ("4111111111111111", "[PAN:…1111]"),
            ("card 4111 1111 1111 1111.", "card [PAN:…1111]."),
            ("card 4111-1111-1111-1111,", "card [PAN:…1111],"),
            ("amex 3782 822463 10005", "amex [PAN:…0005]"),
            ("diners 3056 930902 5904", "diners [PAN:…5904]"),
            ("visa 4917 6100 0000 0000 003", "visa [PAN:…0003]"),
            ("visa 4222 2222 2222 2", "visa [PAN:…2222]"),
            ("\"pan\":\"5105105105105100\"", "\"pan\":\"[PAN:…5100]\""),
            ("pan=6011000990139424&x=1", "pan=[PAN:…9424]&x=1"),
            (
                "two 4242424242424242 and 5555 5555 5555 4444",
                "two [PAN:…4242] and [PAN:…4444]",
            ),
            ("ref 1234 4111 1111 1111 1111", "ref 1234 [PAN:…1111]"),
        ] {
            assert_eq!(redact(line), expected, "{line}");
        }
    }

    #[test]
    fn near_misses_are_left_alone() {
        for line in [
            "4111111111111112",                     // Luhn
            "order 1700000000000",                  // a 13-digit timestamp, IIN 1
            "2024-01-15 10:23:45.123Z",             // ISO time
            "+44 20 7946 0958",                     // phone
            "+1 415-555-0132",                      // phone
            "550e8400-e29b-41d4-a716-446655440000", // UUID
            "9e2b41d4-e29b-41d4-a716-500000000009", // a UUID ending in a Luhn-valid Maestro
            "ORD-6011111111111117",                 // an id that happens to be a card number
            "id=a4111111111111111",                 // glued to a word
            "41111111111111111111",                 // 20 digits
            "4111 11111 1111 1111",                 // implausible grouping
            "41111 1111 1111 111",                  // implausible grouping
            "v1.2.3 build 20241115123045",          // build stamp
        ] {
            assert_eq!(redact(line), line, "{line}");
        }
    }

    #[test]
    fn the_writer_matches_the_function_at_every_split() {
        let text =
            "a 4111 1111 1111 1111 b 378282246310005\nc 5555-5555-5555-4444 d 2024-01-15 e 1234\n";
        let want = redact(text).into_owned();
        for split in 0..=text.len() {
            let mut w = RedactingWriter::new(Vec::new());
            w.write_all(&text.as_bytes()[..split]).expect("write");
            w.write_all(&text.as_bytes()[split..]).expect("write");
            let got = w.into_inner().expect("inner");
            assert_eq!(
                String::from_utf8(got).expect("utf8"),
                want,
                "split at {split}"
            );
        }
        let mut w = RedactingWriter::new(Vec::new());
        for b in text.bytes() {
            w.write_all(&[b]).expect("write");
        }
        w.flush().expect("flush");
        assert_eq!(w.redacted(), 3);
        assert_eq!(
            String::from_utf8(w.into_inner().expect("inner")).expect("utf8"),
            want,
            "byte by byte"
        );
    }

    #[test]
    fn a_card_at_the_end_of_a_long_list_of_numbers_is_found() {
        // Runs used to be cut after 64 groups, which split a card in this position.
        for before in [0, 1, 62, 63, 64, 65, 200] {
            let list = "7 ".repeat(before);
            let line = format!("ids {list}4111 1111 1111 1111 end");
            assert_eq!(
                redact(&line),
                format!("ids {list}[PAN:…1111] end"),
                "{before} numbers before it"
            );
        }
    }

    #[test]
    fn fixed_style_replaces_the_whole_number() {
        let style = RedactStyle::Fixed("[REDACTED]".into());
        assert_eq!(
            redact_with("x 4111111111111111 y", &style),
            "x [REDACTED] y"
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_and_writer_agrees(
            bytes in prop::collection::vec(prop::sample::select(b"0123456789 -a+4".to_vec()), 0..120),
            split in any::<prop::sample::Index>(),
        ) {
            let one = redact_bytes(&bytes, &RedactStyle::LastFour).into_owned();
            let at = split.index(bytes.len() + 1);
            let mut w = RedactingWriter::new(Vec::new());
            w.write_all(&bytes[..at]).expect("write");
            w.write_all(&bytes[at..]).expect("write");
            prop_assert_eq!(w.into_inner().expect("inner"), one);
        }

        #[test]
        fn probing_finds_what_a_full_scan_finds(
            bytes in prop::collection::vec(
                prop::sample::select(b"0123456789012345678901234567890123456789 -a+4_\n".to_vec()),
                0..400,
            ),
            before in prop::option::of(prop::sample::select(b"a 1-".to_vec())),
            after in prop::collection::vec(prop::sample::select(b"a 1-".to_vec()), 0..3),
        ) {
            let (mut probed, mut full) = (Vec::new(), Vec::new());
            scan_with(&bytes, before, &after, &mut |m| probed.push(m));
            // Every span, without probing.
            let mut i = 0;
            while i < bytes.len() {
                if RUN_BYTE[usize::from(bytes[i])] {
                    i = scan_runs(&bytes, i, before, &after, &mut |m| full.push(m));
                } else {
                    i += 1;
                }
            }
            prop_assert_eq!(probed, full);
        }

        #[test]
        fn redacted_text_holds_no_number_that_scans(s in "[0-9 -]{0,60}") {
            let out = redact(&s);
            prop_assert!(scan(out.as_bytes()).is_empty(), "{}", out);
        }
    }
}
