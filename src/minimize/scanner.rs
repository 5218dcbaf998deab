//! Finding card numbers in text and bytes (logs, support tickets, exports); `redact.rs`
//! writes over what is found here.
//!
//! A candidate is 12–19 digits, unbroken or in a plausible grouping (4-4-4-4, 4-4-4-4-3
//! and other 4-groups ending in 1–4 digits, Amex 4-6-5, Diners 4-6-4) with a single space
//! or dash between groups, that passes Luhn and has an IIN of a known brand at a length
//! that brand issues ([`Detect::AnyLuhn`] drops the IIN rule). Each candidate is judged
//! by its own neighbours: it is *glued*, and skipped, when the character just before or
//! just after it is a letter or digit (Unicode-aware), `+` or `_`, or a dash with such a
//! character beyond it (`ORD-…`, a UUID's last group). Any other character — punctuation,
//! a no-break space, a full-width colon, guillemets, a typographic apostrophe — is a
//! boundary. Timestamps, order numbers, phone numbers and UUIDs fail at least one rule
//! (see the tests).

use crate::card::{Brand, luhn_valid};

/// Which numbers count as card numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Detect {
    /// Luhn-valid, with the IIN of a brand in the crate's table at a length that brand
    /// issues: few false positives (the default).
    #[default]
    KnownBrands,
    /// Any Luhn-valid number of 12–19 digits in a card grouping, whatever its IIN: for
    /// teams that prefer over-redaction (about one random 12–19-digit number in ten, a
    /// millisecond timestamp among them, is redacted too).
    AnyLuhn,
}

/// A card number found by [`scan`]: its byte range and brand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PanMatch {
    /// Where it starts.
    pub start: usize,
    /// Where it ends (exclusive).
    pub end: usize,
    /// The brand by IIN; `None` only for a number [`Detect::AnyLuhn`] found outside the
    /// brand table.
    pub brand: Option<Brand>,
}

/// The longest candidate with separators: 19 digits and 18 separators.
pub(super) const MAX_CANDIDATE_BYTES: usize = 37;
/// A streaming writer holds at most about this much of a trailing run of digits and
/// separators before it cuts the run where the scan starts afresh.
pub(super) const MAX_HELD: usize = 256;
/// Bytes of context either side of a candidate that decide whether it is glued: a dash
/// and a character of up to four bytes beyond it, rounded up.
pub(super) const CONTEXT: usize = 8;
/// How far past a cut the scan must see for everything before the cut to be final: the
/// longest candidate and the context after it.
pub(super) const SETTLE: usize = MAX_CANDIDATE_BYTES + CONTEXT;
/// The most groups a plausible window spans: 4-4-4-4-3.
const MAX_GROUPS: usize = 5;

pub(super) fn is_sep(b: u8) -> bool {
    b == b' ' || b == b'-'
}

/// Whether a character glues a number to a word: letters and digits (any script), `+`
/// and `_`. Everything else, and the edge of the data, is a boundary.
fn glues(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || c == '+' || c == '_')
}

/// [`glues`] for an ASCII byte.
#[inline(always)]
fn ascii_glues(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'_'
}

/// Bytes to scan with the bytes around them: `before` ends where `bytes` starts (what a
/// streaming writer already wrote), `after` follows it (what it still holds).
#[derive(Clone, Copy)]
pub(super) struct Ctx<'a> {
    pub(super) before: &'a [u8],
    pub(super) bytes: &'a [u8],
    pub(super) after: &'a [u8],
}

impl<'a> Ctx<'a> {
    pub(super) fn alone(bytes: &'a [u8]) -> Self {
        Self {
            before: &[],
            bytes,
            after: &[],
        }
    }

    /// The byte at `i`, which may lie in `before` (negative) or `after` (past the end).
    fn at(&self, i: isize) -> Option<u8> {
        if i < 0 {
            let back = i.unsigned_abs();
            self.before.len().checked_sub(back).map(|k| self.before[k])
        } else {
            let i = i.unsigned_abs();
            self.bytes
                .get(i)
                .or_else(|| self.after.get(i - self.bytes.len()))
                .copied()
        }
    }

    /// The character that ends just before `pos`, and where it starts. Bytes that are not
    /// UTF-8 decode as U+FFFD (a boundary): when in doubt, redact.
    fn char_before(&self, pos: isize) -> Option<(char, isize)> {
        let last = self.at(pos - 1)?;
        if last.is_ascii() {
            return Some((char::from(last), pos - 1));
        }
        let mut start = pos - 1;
        while pos - start < 4 && self.at(start).is_some_and(|b| b & 0xC0 == 0x80) {
            start -= 1;
        }
        let mut buf = [0u8; 4];
        let mut n = 0;
        for i in start..pos {
            buf[n] = self.at(i).unwrap_or(0);
            n += 1;
        }
        let c = core::str::from_utf8(&buf[..n])
            .ok()
            .and_then(|s| s.chars().next())
            .unwrap_or(char::REPLACEMENT_CHARACTER);
        Some((c, start))
    }

    /// The character that starts at `pos`, and where the next one starts.
    fn char_at(&self, pos: isize) -> Option<(char, isize)> {
        let first = self.at(pos)?;
        if first.is_ascii() {
            return Some((char::from(first), pos + 1));
        }
        let width = match first {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => 1,
        };
        let mut buf = [0u8; 4];
        for (k, slot) in buf.iter_mut().enumerate().take(width) {
            *slot = self.at(pos + k as isize).unwrap_or(0);
        }
        let c = core::str::from_utf8(&buf[..width])
            .ok()
            .and_then(|s| s.chars().next())
            .unwrap_or(char::REPLACEMENT_CHARACTER);
        Some((c, pos + width as isize))
    }

    /// Whether a candidate starting at `start` is glued to what precedes it.
    fn glued_before(&self, start: usize) -> bool {
        if start >= 2
            && let Some(glued) = ascii_glue(self.bytes[start - 1], self.bytes[start - 2])
        {
            return glued;
        }
        glued_by(|pos| self.char_before(pos), start as isize)
    }

    /// Whether a candidate ending at `end` (exclusive) is glued to what follows it.
    fn glued_after(&self, end: usize) -> bool {
        if end + 1 < self.bytes.len()
            && let Some(glued) = ascii_glue(self.bytes[end], self.bytes[end + 1])
        {
            return glued;
        }
        glued_by(|pos| self.char_at(pos), end as isize)
    }
}

/// The glue decision from the byte beside a candidate and the one beyond it, when ASCII
/// settles it without decoding (the common case).
#[inline(always)]
fn ascii_glue(beside: u8, beyond: u8) -> Option<bool> {
    if beside.is_ascii() && beside != b'-' {
        Some(ascii_glues(beside))
    } else if beside == b'-' && beyond.is_ascii() {
        Some(ascii_glues(beyond))
    } else {
        None
    }
}

/// The glue decision by characters, stepping away from the candidate with `step` (which
/// gives the next character outward and where the one after it is).
fn glued_by(step: impl Fn(isize) -> Option<(char, isize)>, from: isize) -> bool {
    match step(from) {
        Some(('-', further)) => glues(step(further).map(|(c, _)| c)),
        other => glues(other.map(|(c, _)| c)),
    }
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

/// Checks one candidate: its digits (no separators) pass Luhn and, for known brands, the
/// brand table. `Some(None)` is a card of no known brand ([`Detect::AnyLuhn`]).
fn card_brand(digits: &[u8], detect: Detect) -> Option<Option<Brand>> {
    if !(12..=19).contains(&digits.len()) || !luhn_valid(digits) {
        return None;
    }
    match (Brand::detect(digits), detect) {
        (Some((brand, true)), _) => Some(Some(brand)),
        (_, Detect::AnyLuhn) => Some(None),
        (_, Detect::KnownBrands) => None,
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
    scan_with(
        &Ctx::alone(bytes),
        Detect::default(),
        &mut |m| out.push(m),
        &mut (),
    );
    out
}

/// Bytes a card number is written with: digits and the two separators.
pub(super) const RUN_BYTE: [bool; 256] = {
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

/// Where a streaming writer may cut: told as inclusive ranges `(lo, hi)` of positions,
/// in increasing order. The one-shot scan passes `()`, which the compiler removes.
pub(super) trait CutSink {
    fn cut(&mut self, lo: usize, hi: usize);
}

impl CutSink for () {
    #[inline(always)]
    fn cut(&mut self, _: usize, _: usize) {}
}

impl<F: FnMut(usize, usize)> CutSink for &mut F {
    fn cut(&mut self, lo: usize, hi: usize) {
        self(lo, hi);
    }
}

/// The scanner itself: calls `found` for each match.
///
/// A card number lies inside a span of at least [`MIN_SPAN`] bytes that are all digits,
/// spaces or dashes, and any such span covers one of the positions `MIN_SPAN - 1`,
/// `2 * MIN_SPAN - 1`, … So the scanner probes one byte in twelve; where a probe lands
/// in a run byte it widens to the span, and only a span of twelve bytes or more is
/// read, run by run, by [`scan_runs`] (a property test checks that this finds what
/// reading every span finds). Log text, full of short digit runs (times, ids, status
/// codes), is mostly skipped without being read.
pub(super) fn scan_with(
    ctx: &Ctx<'_>,
    detect: Detect,
    found: &mut impl FnMut(PanMatch),
    cuts: &mut impl CutSink,
) {
    let bytes = ctx.bytes;
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
            hi = scan_runs(ctx, lo, detect, found, cuts);
        }
        // `hi` is not a run byte (or the end): spans after it start at `hi + 1` or later.
        probe = hi + MIN_SPAN;
    }
}

/// Scans the runs of the span of run bytes that starts at `from` (no run byte just before
/// it) and returns where the span ends: each run of digits with single separators is
/// checked by [`check_run`]. Tells `cuts` where the scan starts afresh: at the span's
/// start, inside two or more separators (no run goes on there), and wherever
/// [`check_run`] does.
pub(super) fn scan_runs(
    ctx: &Ctx<'_>,
    from: usize,
    detect: Detect,
    found: &mut impl FnMut(PanMatch),
    cuts: &mut impl CutSink,
) -> usize {
    let bytes = ctx.bytes;
    let n = bytes.len();
    let mut i = from;
    loop {
        // Separators between runs (`1 - 2`, a trailing dash) belong to the span.
        let seps = i;
        while i < n && is_sep(bytes[i]) {
            i += 1;
        }
        if seps == from {
            cuts.cut(from, i);
        } else if i - seps >= 2 {
            cuts.cut(seps + 1, i);
        }
        if i == n || !bytes[i].is_ascii_digit() {
            return i;
        }
        i = check_run(ctx, i, detect, found, cuts);
    }
}

/// The group of digits that starts at `at`: where it ends, and where the next group of
/// its run starts (after one separator), if the run goes on.
#[inline(always)]
fn group(bytes: &[u8], at: usize) -> (usize, Option<usize>) {
    let n = bytes.len();
    let mut i = at;
    while i < n && bytes[i].is_ascii_digit() {
        i += 1;
    }
    (i, next_group(bytes, i))
}

/// Where the next group of a run starts when a group ends at `end`: after exactly one
/// separator followed by a digit, or `None` where the run ends.
#[inline(always)]
fn next_group(bytes: &[u8], end: usize) -> Option<usize> {
    let goes_on = end + 1 < bytes.len() && is_sep(bytes[end]) && bytes[end + 1].is_ascii_digit();
    goes_on.then_some(end + 1)
}

/// Where the group of digits starting at `at` ends, if it has fewer than four digits.
#[inline(always)]
fn short_group_end(bytes: &[u8], at: usize) -> Option<usize> {
    let digit = |k: usize| bytes.get(k).is_some_and(u8::is_ascii_digit);
    if !digit(at + 1) {
        Some(at + 1)
    } else if !digit(at + 2) {
        Some(at + 2)
    } else if !digit(at + 3) {
        Some(at + 3)
    } else {
        None
    }
}

/// Tries the windows of consecutive groups that start at each group of the run starting
/// at `start`, longest first, left to right, and takes the first that is a card number
/// glued to nothing; the next try starts after it. Returns where the run ends.
///
/// Only a window that starts with a 4-digit group can span several groups (every
/// plausible grouping does), and a single group must hold 12–19 digits: any other group
/// is passed over at the cost of reading it, so a crafted run (`1 1 1 …`) costs one pass.
///
/// Every try starts afresh (nothing before it matters but its neighbours): those places
/// are told to `cuts`, and so are the digits of a group too long to be in any card, from
/// its twentieth on.
fn check_run(
    ctx: &Ctx<'_>,
    start: usize,
    detect: Detect,
    found: &mut impl FnMut(PanMatch),
    cuts: &mut impl CutSink,
) -> usize {
    let bytes = ctx.bytes;
    let mut digits = [0u8; 19];
    let mut next = Some(start);
    let mut run_end = start;
    'starts: while let Some(mut first) = next {
        // Groups of fewer than four digits start nothing: pass them with as few reads
        // as possible (a crafted `1 1 1 …` is nothing else).
        loop {
            cuts.cut(first, first);
            let Some(end) = short_group_end(bytes, first) else {
                break;
            };
            match next_group(bytes, end) {
                Some(g) => first = g,
                None => return end,
            }
        }
        let (first_end, following) = group(bytes, first);
        next = following;
        run_end = first_end;
        let first_len = first_end - first;
        if first_len != 4 && !(12..=19).contains(&first_len) {
            if first_len > 19 {
                cuts.cut(first + 20, first_end - 1);
            }
            continue;
        }
        if ctx.glued_before(first) {
            continue;
        }
        // The groups a window from `first` can reach: (start, end, next group).
        let mut groups = [(0usize, 0usize, None::<usize>); MAX_GROUPS];
        groups[0] = (first, first_end, following);
        let mut count = 1;
        if first_len == 4 {
            let mut at = following;
            while let Some(g) = at {
                if count == MAX_GROUPS {
                    break;
                }
                let (stop, after) = group(bytes, g);
                if stop - first > MAX_CANDIDATE_BYTES {
                    break;
                }
                groups[count] = (g, stop, after);
                count += 1;
                at = after;
            }
        }
        for last in (0..count).rev() {
            let window = &groups[..=last];
            let mut lens = [0usize; MAX_GROUPS];
            let mut total = 0;
            for (slot, (x, y, _)) in lens.iter_mut().zip(window) {
                *slot = y - x;
                total += y - x;
            }
            if !(12..=19).contains(&total) || (last > 0 && !plausible(&lens[..=last])) {
                continue;
            }
            let (to, after) = (window[last].1, window[last].2);
            if ctx.glued_after(to) {
                continue;
            }
            let mut k = 0;
            for &(x, y, _) in window {
                digits[k..k + (y - x)].copy_from_slice(&bytes[x..y]);
                k += y - x;
            }
            if let Some(brand) = card_brand(&digits[..k], detect) {
                found(PanMatch {
                    start: first,
                    end: to,
                    brand,
                });
                next = after;
                run_end = to;
                continue 'starts;
            }
        }
    }
    run_end
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::redact::{RedactStyle, Redactor, redact, redact_bytes, redact_with};
    use super::*;
    use std::io::Write as _;

    use crate::minimize::writer::RedactingWriter;

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
            before in prop::collection::vec(prop::sample::select(b"a 1-".to_vec()), 0..3),
            after in prop::collection::vec(prop::sample::select(b"a 1-".to_vec()), 0..3),
        ) {
            let ctx = Ctx { before: &before, bytes: &bytes, after: &after };
            let (mut probed, mut full) = (Vec::new(), Vec::new());
            scan_with(&ctx, Detect::KnownBrands, &mut |m| probed.push(m), &mut ());
            // Every span, without probing.
            let mut i = 0;
            while i < bytes.len() {
                if RUN_BYTE[usize::from(bytes[i])] {
                    i = scan_runs(&ctx, i, Detect::KnownBrands, &mut |m| full.push(m), &mut ());
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

        /// Long runs of cards, digits and separators, several times the writer's hold,
        /// written in pieces cut anywhere (inside numbers too): the writer's output is the
        /// one-shot output, and what it holds stays bounded.
        #[test]
        fn the_writer_matches_the_function_on_long_runs(
            pieces in prop::collection::vec(
                prop_oneof![
                    // Mostly run bytes, so that runs grow far past the writer's hold.
                    30 => prop::sample::select(vec![
                        "4111 1111 1111 1111", "4111-1111-1111-1111", "4111111111111111",
                        "3782 822463 10005", "5555 5555 5555 4444 ", "1", "12", "4111", " ",
                        "-", "  ", "7 ", "1-", "12345678901234567890123", "6011111111111117",
                    ]),
                    1 => prop::sample::select(vec![
                        "a", "é", "\u{a0}", "：", "«", "»", "’", "_", "+", "\n",
                    ]),
                ],
                0..300,
            ),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
            any_luhn in any::<bool>(),
        ) {
            let text: String = pieces.concat();
            let redactor = Redactor::new().detect(if any_luhn { Detect::AnyLuhn } else { Detect::KnownBrands });
            let want = redactor.redact_bytes(text.as_bytes()).into_owned();
            let mut at: Vec<usize> = cuts.iter().map(|c| c.index(text.len() + 1)).collect();
            at.push(0);
            at.push(text.len());
            at.sort_unstable();
            let mut w = redactor.writer(Vec::new());
            for pair in at.windows(2) {
                w.write_all(&text.as_bytes()[pair[0]..pair[1]]).expect("write");
                prop_assert!(w.held.len() <= MAX_HELD + SETTLE + 40 || pair[1] - pair[0] > MAX_HELD, "held {}", w.held.len());
            }
            prop_assert_eq!(w.into_inner().expect("inner"), want);
        }

        #[test]
        fn the_writer_matches_the_function_written_byte_by_byte(
            pieces in prop::collection::vec(
                prop::sample::select(vec![
                    "4111 1111 1111 1111", "4111-1111-1111-1111", "5555555555554444", "1 ", "1-",
                    "4444 ", "a", "\u{a0}", "：", "-x",
                ]),
                0..120,
            ),
        ) {
            let text: String = pieces.concat();
            let want = redact(&text).into_owned();
            let mut w = RedactingWriter::new(Vec::new());
            for b in text.bytes() {
                w.write_all(&[b]).expect("write");
                prop_assert!(w.held.len() <= MAX_HELD + SETTLE + 40, "held {}", w.held.len());
            }
            prop_assert_eq!(String::from_utf8(w.into_inner().expect("inner")).expect("utf8"), want);
        }
    }

    #[test]
    fn writeln_of_a_long_list_of_cards_is_redacted_whole() {
        let cards: Vec<&str> = std::iter::repeat_n("4111111111111111", 17).collect();
        let mut w = RedactingWriter::new(Vec::new());
        writeln!(w, "cards: {}", cards.join(" ")).expect("write");
        let out = String::from_utf8(w.into_inner().expect("inner")).expect("utf8");
        assert!(!out.contains("4111111111111111"), "{out}");
        assert_eq!(out.matches("[PAN:…1111]").count(), 17, "{out}");
        assert_eq!(out, redact(&format!("cards: {}\n", cards.join(" "))));
    }

    #[test]
    fn a_word_at_the_far_end_of_a_run_spares_only_its_own_neighbour() {
        // The old rule judged glue for the whole run: `x` at its end cancelled every card.
        assert_eq!(
            redact("4111 1111 1111 1111 5555 5555 5555 4444 7x"),
            "[PAN:…1111] [PAN:…4444] 7x"
        );
        assert_eq!(
            redact("4111111111111111 4111111111111111x"),
            "[PAN:…1111] 4111111111111111x"
        );
    }

    #[test]
    fn non_ascii_punctuation_is_a_boundary_letters_of_any_script_glue() {
        for (line, expected) in [
            ("card:\u{a0}4111 1111 1111 1111", "card:\u{a0}[PAN:…1111]"),
            ("カード番号：4111111111111111", "カード番号：[PAN:…1111]"),
            ("«4111111111111111»", "«[PAN:…1111]»"),
            ("4111111111111111’s", "[PAN:…1111]’s"),
            ("„4111111111111111“", "„[PAN:…1111]“"),
            ("4111111111111111\u{2009}ok", "[PAN:…1111]\u{2009}ok"),
            ("—4111111111111111—", "—[PAN:…1111]—"),
        ] {
            assert_eq!(redact(line), expected, "{line}");
        }
        for line in [
            "é4111111111111111",
            "4111111111111111ж",
            "号4111111111111111",
            "ключ-4111111111111111",
            "4111111111111111-ж",
            "٣4111111111111111",
        ] {
            assert_eq!(redact(line), line, "{line}");
        }
    }

    #[test]
    fn invalid_utf8_beside_a_number_is_a_boundary() {
        assert_eq!(
            &*redact_bytes(b"\xff4111111111111111\xc3", &RedactStyle::LastFour),
            "\u{FFFD}".as_bytes()[..0]
                .iter()
                .copied()
                .chain(*b"\xff[PAN:\xe2\x80\xa61111]\xc3")
                .collect::<Vec<u8>>()
                .as_slice()
        );
    }

    #[test]
    fn crafted_runs_find_nothing_but_the_card_at_their_end() {
        for unit in ["1 ", "1-", "4444 ", "1111-", "12345 "] {
            let line = format!("{}4111 1111 1111 1111", unit.repeat(5_000));
            let found = scan(line.as_bytes());
            let want = usize::from(!unit.ends_with('-'));
            assert_eq!(found.len(), want, "{unit:?}: {found:?}");
        }
    }

    #[test]
    fn any_luhn_mode_finds_unknown_iins_and_known_mode_does_not() {
        let line = "voucher 9000 0000 0000 0001 card 4111111111111111";
        let any = Redactor::new().detect(Detect::AnyLuhn);
        assert_eq!(any.redact(line), "voucher [PAN:…0001] card [PAN:…1111]");
        assert_eq!(redact(line), "voucher 9000 0000 0000 0001 card [PAN:…1111]");
        let found = any.scan(line.as_bytes());
        assert_eq!(found[0].brand, None);
        assert_eq!(found[1].brand, Some(Brand::Visa));
        // Glue and grouping rules still hold.
        assert_eq!(any.redact("ORD-6011111111111117"), "ORD-6011111111111117");
        assert_eq!(any.redact("4111 11111 1111 1111"), "4111 11111 1111 1111");
    }
}
