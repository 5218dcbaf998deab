//! Reading a log back: line by line from the start, the chain checked as it goes, and
//! the last line alone for a writer catching up.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;

use super::files::{checkpoint_path, io, read_checkpoints};
use super::line::{LineLink, hash, parse_line};
use crate::audit::chain::{AuditCheckpoint, AuditKey, AuditVerified, ChainCheck, GENESIS, Link};
use crate::audit::error::AuditError;
use crate::audit::record::AuditRecord;

/// What a walk over the file found.
pub(super) struct Walk {
    /// Bytes of complete, chained lines.
    pub(super) valid: u64,
    /// Bytes after them (an unterminated last line).
    pub(super) torn: u64,
    pub(super) head: [u8; 32],
    pub(super) records: u64,
}

/// The error for a log whose last `torn` of `len` bytes are an unterminated line.
pub(super) fn torn_tail(path: &Path, len: u64, torn: u64) -> AuditError {
    AuditError::TornTail {
        path: path.display().to_string(),
        valid_bytes: len - torn,
        torn_bytes: torn,
    }
}

impl Walk {
    /// The walk as `open` and `verify` accept it: a torn tail is an error.
    pub(super) fn whole(self, path: &Path) -> Result<Self, AuditError> {
        if self.torn > 0 {
            Err(torn_tail(path, self.valid + self.torn, self.torn))
        } else {
            Ok(self)
        }
    }
}

/// Reads `file` from the start, line by line, checking the chain (keyed records through
/// `keyed`; without it, a keyed record is [`AuditError::KeyRequired`]); hands each
/// record to `each`. Only one line is in memory at a time.
pub(super) fn walk(
    file: &File,
    mut keyed: Option<&mut ChainCheck<'_>>,
    mut each: impl FnMut(AuditRecord),
) -> Result<Walk, AuditError> {
    let mut reader = BufReader::new(file);
    reader
        .seek(SeekFrom::Start(0))
        .map_err(io("read audit log"))?;
    let mut line = Vec::new();
    let mut w = Walk {
        valid: 0,
        torn: 0,
        head: GENESIS,
        records: 0,
    };
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(io("read audit log"))?;
        if n == 0 {
            return Ok(w);
        }
        if line.last() != Some(&b'\n') {
            w.torn = n as u64;
            return Ok(w);
        }
        let (record, link) = parse_line(&line)?;
        match (link, keyed.as_deref_mut()) {
            (LineLink::Plain(prev), check) => {
                let head = hash(&line);
                // First the keyed check, which names a 0.1 line after keyed ones.
                if let Some(check) = check {
                    check.push(&record, Link::Unkeyed { head })?;
                }
                if prev != w.head {
                    return Err(AuditError::Corrupt {
                        what: "audit log: broken hash chain",
                    });
                }
                w.head = head;
            }
            (LineLink::Keyed { .. }, None) => return Err(AuditError::KeyRequired),
            (LineLink::Keyed { seq, mac }, Some(check)) => {
                check.push(&record, Link::Keyed { seq, mac })?;
                w.head = check.head();
            }
        }
        each(record);
        w.valid += n as u64;
        w.records += 1;
    }
}

/// The last line of a file of `len` bytes, read from its end, or
/// [`AuditError::TornTail`] if it does not end in a new line; `None` for an empty
/// file.
pub(super) fn last_line(file: &File, path: &Path, len: u64) -> Result<Option<Vec<u8>>, AuditError> {
    if len == 0 {
        return Ok(None);
    }
    let mut tail = Vec::new();
    let mut from = len;
    loop {
        let step = from.min(4096);
        from -= step;
        let mut chunk = vec![0u8; usize::try_from(step).unwrap_or(4096)];
        read_exact_at(file, &mut chunk, from)?;
        chunk.extend_from_slice(&tail);
        tail = chunk;
        if tail.last() != Some(&b'\n') {
            let torn = tail.len() - tail.iter().rposition(|&b| b == b'\n').map_or(0, |k| k + 1);
            return Err(torn_tail(path, len, torn as u64));
        }
        // The new line that ends the line before the last one, if it is in view.
        if let Some(k) = tail[..tail.len() - 1].iter().rposition(|&b| b == b'\n') {
            return Ok(Some(tail.split_off(k + 1)));
        }
        if from == 0 {
            return Ok(Some(tail));
        }
    }
}

#[cfg(unix)]
pub(super) fn read_exact_at(file: &File, buf: &mut [u8], at: u64) -> Result<(), AuditError> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, at).map_err(io("read audit log tail"))
}

#[cfg(not(unix))]
pub(super) fn read_exact_at(file: &File, buf: &mut [u8], at: u64) -> Result<(), AuditError> {
    use std::io::Read;
    let mut f = file.try_clone().map_err(io("read audit log tail"))?;
    f.seek(SeekFrom::Start(at))
        .and_then(|_| f.read_exact(buf))
        .map_err(io("read audit log tail"))
}

/// Walks the whole file under a shared lock, keyed when `key` is given, against the
/// local checkpoints and `shipped`.
pub(super) fn walk_checked(
    file: &File,
    path: &Path,
    key: Option<&AuditKey>,
    shipped: &[AuditCheckpoint],
    each: impl FnMut(AuditRecord),
) -> Result<(Walk, Option<AuditVerified>), AuditError> {
    let mut check = match key {
        Some(key) => {
            let mut all = read_checkpoints(&checkpoint_path(path))?;
            all.extend_from_slice(shipped);
            Some(ChainCheck::new(key, &all)?)
        }
        None => None,
    };
    let w = walk(file, check.as_mut(), each)?.whole(path)?;
    let verified = check.map(ChainCheck::finish).transpose()?;
    Ok((w, verified))
}
