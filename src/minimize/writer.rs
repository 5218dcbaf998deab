//! The streaming redactor: an `io::Write` whose output is the one-shot output of
//! [`redact`](super::redact) on the whole text, however the text is split into writes.

use std::io::{self, Write};

use super::redact::{RedactStyle, Redactor, redact_in};
use super::scanner::{
    CONTEXT, Ctx, MAX_CANDIDATE_BYTES, MAX_HELD, RUN_BYTE, SETTLE, is_sep, scan_runs,
};

/// An `io::Write` that redacts card numbers before they reach the inner writer, also when
/// a number is split across `write` calls, with exactly the output of [`redact`](super::redact) on the
/// whole text, however the text is split.
///
/// It holds back a trailing run of digits and separators (and the few bytes after one
/// that decide whether it is glued) until what follows settles it, `flush`, or drop. A
/// run longer than about 256 bytes is cut where the scan starts afresh, so what it holds
/// stays under about 300 bytes whatever the input.
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
    pub(super) held: Vec<u8>,
    /// The last bytes written out (at most [`CONTEXT`]): what comes before `held`.
    tail: Vec<u8>,
    redactor: Redactor,
    found: u64,
}

impl Redactor {
    /// A writer that redacts with these settings.
    pub fn writer<W: Write>(self, inner: W) -> RedactingWriter<W> {
        RedactingWriter::from_redactor(self, inner)
    }
}

impl<W: Write> RedactingWriter<W> {
    fn from_redactor(redactor: Redactor, inner: W) -> Self {
        Self {
            inner: Some(inner),
            held: Vec::new(),
            tail: Vec::with_capacity(CONTEXT),
            redactor,
            found: 0,
        }
    }

    /// Wraps `inner`, writing `[PAN:…1234]`.
    pub fn new(inner: W) -> Self {
        Redactor::new().writer(inner)
    }

    /// Wraps `inner` with a redaction style.
    pub fn with_style(inner: W, style: RedactStyle) -> Self {
        Redactor::new().style(style).writer(inner)
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
        let ctx = Ctx {
            before: &self.tail,
            bytes: chunk,
            after,
        };
        let (out, found) = redact_in(&ctx, &self.redactor);
        if let Some(inner) = self.inner.as_mut() {
            inner.write_all(&out)?;
        }
        self.found += found;
        let keep = CONTEXT.min(upto);
        if keep == CONTEXT {
            self.tail.clear();
        } else {
            let excess = (self.tail.len() + keep).saturating_sub(CONTEXT);
            self.tail.drain(..excess);
        }
        self.tail.extend_from_slice(&chunk[upto - keep..]);
        self.held.drain(..upto);
        Ok(())
    }

    /// Where the part of `held` that later bytes can still change begins: the trailing
    /// span of digits and separators, when it ends less than [`CONTEXT`] bytes before the
    /// end (what follows it decides whether it is glued).
    fn unsettled(&self) -> usize {
        let n = self.held.len();
        let Some(last_run) = (n.saturating_sub(CONTEXT)..n)
            .rev()
            .find(|&i| RUN_BYTE[usize::from(self.held[i])])
        else {
            return n;
        };
        let mut from = last_run;
        while from > 0 && RUN_BYTE[usize::from(self.held[from - 1])] {
            from -= 1;
        }
        from
    }

    /// The last place in `held[from..]`, at least [`SETTLE`] bytes before its end, where
    /// the scan starts afresh: cutting there gives the same output as not cutting.
    fn cut_point(&self, from: usize) -> Option<usize> {
        let limit = self.held.len().checked_sub(SETTLE)?;
        if let Some(cut) = self.fresh_near(from, limit) {
            return Some(cut);
        }
        let ctx = Ctx {
            before: &self.tail,
            bytes: &self.held,
            after: &[],
        };
        let mut best = None;
        // Places come in increasing order: keep the last one in (from, limit].
        let mut note = |lo: usize, hi: usize| {
            let (lo, hi) = (lo.max(from + 1), hi.min(limit));
            if lo <= hi {
                best = Some(hi);
            }
        };
        scan_runs(
            &ctx,
            from,
            self.redactor.detect,
            &mut |_| {},
            &mut &mut note,
        );
        best
    }
}

impl<W: Write> RedactingWriter<W> {
    /// A place at or a little before `limit` (and after `from`) that is fresh by what is
    /// around it alone, without scanning from `from`: the start of a group with no four
    /// digits in a row in the longest candidate's length before it (no window can reach
    /// it, so the scan tries a window there), a place after two separators (no run goes
    /// on), or a digit with twenty digits before it (inside a group too long for a card).
    /// `None` where cards may be dense: then `cut_point` scans.
    fn fresh_near(&self, from: usize, limit: usize) -> Option<usize> {
        let held = &self.held;
        let lowest = from + 1 + MAX_CANDIDATE_BYTES + 1;
        let mut c = limit;
        while c >= lowest && c + 64 > limit {
            let digit = held[c].is_ascii_digit();
            if is_sep(held[c - 1]) && is_sep(held[c - 2]) {
                return Some(c);
            }
            if digit && held[c - 20..c].iter().all(u8::is_ascii_digit) {
                return Some(c);
            }
            if digit && is_sep(held[c - 1]) {
                let before = &held[c - 1 - MAX_CANDIDATE_BYTES..c - 1];
                let four = before.split(|b| !b.is_ascii_digit()).any(|g| g.len() >= 4);
                if !four {
                    return Some(c);
                }
            }
            c -= 1;
        }
        None
    }
}

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.held.extend_from_slice(buf);
        let mut upto = self.unsettled();
        if self.held.len() - upto > MAX_HELD {
            // A long run: cut it where the scan starts afresh. There is always such a
            // place within about 40 bytes (see `check_run`); if there were none, the run
            // would be held whole rather than risk printing a number.
            if let Some(cut) = self.cut_point(upto) {
                upto = cut;
            }
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
