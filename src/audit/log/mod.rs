//! An append-only, hash-chained audit file: the cheap [`AuditSink`].

mod files;
mod line;
mod repair;
mod walk;

pub use repair::AuditRepair;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use super::chain::{AuditCheckpoint, AuditKey, AuditVerified, DEFAULT_CHECKPOINT_EVERY};
use super::error::AuditError;
use super::record::AuditRecord;
use super::sink::AuditSink;
use crate::kernel::Timestamp;
use files::{checkpoint_path, io, open_file, read_checkpoints, write_anchor};
use line::{LineLink, line_for, parse_line};
use walk::{last_line, walk, walk_checked};

/// Detokenize records appended to a file, one line each:
/// `<ms since epoch> TAB <token> TAB <purpose> TAB <caller> TAB <link>`, the purpose
/// followed by `!refused` or `!failed` for an attempt that revealed nothing.
///
/// **Keyed** ([`AuditLog::open_keyed`], the one to use): the link is
/// `k1:<sequence number>:<HMAC-SHA-256 of the record and the previous head, hex>`, under
/// an [`AuditKey`] from the key source. Whoever can write the file but not read the key
/// cannot edit, reorder, insert or remove a record without [`AuditLog::verify_keyed`]
/// naming it ([`AuditBreak`](super::AuditBreak)), the last record included. Every `N`
/// records (1,000 unless [`AuditLog::checkpoint_every`] says otherwise) and on demand
/// ([`AuditLog::checkpoint`]) a MAC'd [`AuditCheckpoint`] (count and head) is appended to
/// `<file>.checkpoints`: ship those lines elsewhere, and a trail cut short, or rewritten
/// by someone who has the key, no longer meets them.
///
/// **Unkeyed** ([`AuditLog::open`], the 0.1 format): the link is the SHA-256 of the
/// previous line, hex (the first, of nothing: 64 zeros), so a line edited, removed or
/// inserted anywhere but at the end breaks the chain, and [`AuditLog::verify`] says
/// where; but anyone can recompute it. A keyed log never accepts an unkeyed line: a 0.1
/// file goes on keyed only through [`AuditLog::migrate_to_keyed`], which appends one
/// keyed record (purpose [`AUDIT_MIGRATION`](super::AUDIT_MIGRATION)) chained to the
/// hash of the last 0.1 line, so the MAC covers every 0.1 line before it. Until then
/// `open_keyed` and `verify_keyed` answer
/// [`AuditBreak::Unmigrated`](super::AuditBreak::Unmigrated): an unkeyed file in place
/// of a keyed one is a forgery, not a 0.1 log. An unkeyed handle refuses a file that
/// holds keyed records ([`AuditError::KeyRequired`]).
///
/// **Anchored** ([`AuditLog::open_keyed_anchored`]): the trail's first record and its latest
/// checkpoint are also kept in a file on the key's side (beside the key file:
/// `FileKeySource::audit_anchor_path`), so that a log emptied, replaced whole, or cut
/// together with its `.checkpoints` file, is caught at open (and by `verify_keyed` given
/// [`AuditLog::anchor`]). What only a checkpoint shipped off the machine catches:
/// records cut after the anchor's latest checkpoint (the anchor moves at each
/// checkpoint, every `N` records), and a log cut together with its checkpoints *and* its
/// anchor by someone who can write both sides.
///
/// Several writers (threads, several `open`s, several processes) may share one file:
/// each append takes an exclusive lock on the file (`File::lock`), re-reads the chain's
/// head if someone else appended since, and writes its whole line before unlocking, so
/// the chain never forks. `open` streams the file once to check it and keeps only the
/// head in memory, whatever the file's size. The file is created with mode 0600.
///
/// # Security
/// A record is written before the card number is returned and survives a crash of the
/// process; it is not `fsync`ed, so a power loss can take the last records with it (the
/// same as the SQLite stores' `synchronous = NORMAL`). A crash or a full disk in the
/// middle of a line leaves an unterminated last line: `open`, `verify` and every append
/// then answer [`AuditError::TornTail`] (no number is revealed without its record),
/// and [`AuditLog::repair`] cuts the torn line off and appends a record saying so. Ship
/// the file to append-only storage (a SIEM, object lock) to keep whoever owns the vault
/// machine from rewriting the whole chain. Control characters in fields are written as
/// `?`.
///
/// # Examples
/// ```
/// use shopsafe::audit::{AuditLog, AuditRecord, AuditSink};
/// use shopsafe::kernel::Timestamp;
///
/// let dir = tempfile::tempdir()?;
/// let log = AuditLog::open(dir.path().join("vault-audit.log"))?;
/// log.record(&AuditRecord::new("card_x".into(), "charge".into(), "checkout".into(), Timestamp::now()))?;
/// assert_eq!(AuditLog::verify(dir.path().join("vault-audit.log"))?.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    key: Option<AuditKey>,
    /// The anchor file and the trail's first record's checkpoint, when anchored.
    anchor: Option<(PathBuf, Mutex<Option<AuditCheckpoint>>)>,
    /// A checkpoint every this many records (0: only on demand).
    every: u64,
    tail: Mutex<Tail>,
}

/// The open file and the chain's head as this handle last saw it.
#[derive(Debug)]
struct Tail {
    file: File,
    /// The file's length when `head` was read or written.
    len: u64,
    head: [u8; 32],
    /// Records in the file then.
    records: u64,
}

impl AuditLog {
    /// Opens (creating with mode 0600 if needed) an unkeyed (0.1 format) log at `path`,
    /// checking the chain so far by streaming it. Prefer [`AuditLog::open_keyed`].
    ///
    /// # Errors
    /// [`AuditError::Corrupt`] when the chain is broken, [`AuditError::TornTail`]
    /// when the last line is unterminated (see [`AuditLog::repair`]),
    /// [`AuditError::KeyRequired`] when the file holds keyed records, an I/O failure.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, AuditError> {
        Self::open_with(path.as_ref(), None, None)
    }

    /// Opens (creating with mode 0600 if needed) a keyed log at `path`, checking the
    /// whole chain and the checkpoints in `<path>.checkpoints` by streaming it. A 0.1
    /// log opened this way goes on keyed.
    ///
    /// # Errors
    /// [`AuditError::Tampered`] naming what was changed, [`AuditError::Corrupt`] for
    /// a line that is not a record or a broken 0.1 chain, [`AuditError::TornTail`],
    /// an I/O failure.
    ///
    /// # Examples
    /// ```
    /// use shopsafe::audit::{AuditKey, AuditLog, AuditRecord, AuditSink};
    /// use shopsafe::kernel::Timestamp;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("vault-audit.log");
    /// let key = AuditKey::from_bytes([7; 32]); // in production: from the key source
    /// let log = AuditLog::open_keyed(&path, AuditKey::from_bytes([7; 32]))?.checkpoint_every(2);
    /// for token in ["card_a", "card_b", "card_c"] {
    ///     log.record(&AuditRecord::new(token.into(), "charge".into(), "checkout".into(), Timestamp::now()))?;
    /// }
    /// let shipped = log.checkpoint()?; // also appended to vault-audit.log.checkpoints
    /// assert_eq!(shipped.records, 3);
    /// assert_eq!(AuditLog::verify_keyed(&path, &key, &[shipped])?.records, 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_keyed(path: impl AsRef<Path>, key: AuditKey) -> Result<Self, AuditError> {
        Self::open_with(path.as_ref(), Some(key), None)
    }

    /// [`AuditLog::open_keyed`], anchored: the trail's first record and its latest
    /// checkpoint are kept in `anchor` too (two checkpoint lines; put it where the key
    /// lives, `FileKeySource::audit_anchor_path`), checked at open and written at the
    /// first record and at every checkpoint. A log emptied, replaced whole, or cut
    /// together with its `.checkpoints` file is then an error here. Without an anchor
    /// file the log as it stands is taken as the anchor's start.
    ///
    /// # Errors
    /// As [`AuditLog::open_keyed`]; [`AuditError::Tampered`] with `Truncated`
    /// (shorter than the anchor) or `Rewritten` (another trail than the anchored one);
    /// [`AuditError::Corrupt`] for an anchor that is not checkpoint lines.
    pub fn open_keyed_anchored(
        path: impl AsRef<Path>,
        key: AuditKey,
        anchor: impl AsRef<Path>,
    ) -> Result<Self, AuditError> {
        Self::open_with(path.as_ref(), Some(key), Some(anchor.as_ref()))
    }

    /// The checkpoints in an anchor file (none if there is none): pass them to
    /// [`AuditLog::verify_keyed`] as `shipped`.
    ///
    /// # Errors
    /// [`AuditError::Corrupt`] for a line that is not a checkpoint, an I/O failure.
    pub fn anchor(anchor: impl AsRef<Path>) -> Result<Vec<AuditCheckpoint>, AuditError> {
        read_checkpoints(anchor.as_ref())
    }

    fn open_with(
        path: &Path,
        key: Option<AuditKey>,
        anchor: Option<&Path>,
    ) -> Result<Self, AuditError> {
        let path = path.to_path_buf();
        let file = open_file(&path)?;
        let anchored = anchor
            .map(read_checkpoints)
            .transpose()?
            .unwrap_or_default();
        file.lock_shared().map_err(io("lock audit log"))?;
        let walked = walk_checked(&file, &path, key.as_ref(), &anchored, |_| {});
        file.unlock().map_err(io("unlock audit log"))?;
        let (w, verified) = walked?;
        let anchor = match (anchor, &key) {
            (Some(anchor), Some(key)) => {
                let genesis = anchored.iter().find(|c| c.records == 1).copied();
                if anchored.is_empty() && w.records > 0 {
                    // First anchored open of a log that exists: its state now, written
                    // under the log's lock (no writer moves the anchor meanwhile) and
                    // only if no other handle wrote one since.
                    let head = verified.as_ref().map_or(w.head, |v| v.head);
                    file.lock().map_err(io("lock audit log"))?;
                    let written = match read_checkpoints(anchor) {
                        Ok(now) if now.is_empty() => write_anchor(
                            anchor,
                            None,
                            &key.checkpoint(w.records, head, Timestamp::now()),
                        ),
                        Ok(_) => Ok(()),
                        Err(e) => Err(e),
                    };
                    file.unlock().map_err(io("unlock audit log"))?;
                    written?;
                }
                Some((anchor.to_path_buf(), Mutex::new(genesis)))
            }
            _ => None,
        };
        Ok(Self {
            path,
            key,
            anchor,
            every: DEFAULT_CHECKPOINT_EVERY,
            tail: Mutex::new(Tail {
                file,
                len: w.valid,
                head: w.head,
                records: w.records,
            }),
        })
    }

    /// Writes a checkpoint every `records` records (0: only when
    /// [`AuditLog::checkpoint`] is called). Ignored by an unkeyed log.
    #[must_use]
    pub fn checkpoint_every(mut self, records: u64) -> Self {
        self.every = records;
        self
    }

    /// The file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the whole log back, checking every link of the chain.
    ///
    /// # Errors
    /// [`AuditError::Corrupt`] naming the broken link, [`AuditError::TornTail`],
    /// [`AuditError::KeyRequired`] for a keyed log (use [`AuditLog::verify_keyed`]),
    /// an I/O failure.
    pub fn verify(path: impl AsRef<Path>) -> Result<Vec<AuditRecord>, AuditError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(io("open audit log"))?;
        let mut records = Vec::new();
        walk(&file, None, |r| records.push(r))?.whole(path)?;
        Ok(records)
    }

    /// Checks a keyed log under `key`: every record's MAC and sequence number, and the
    /// trail against the checkpoints in `<path>.checkpoints` and `shipped` (the copies
    /// kept elsewhere, which a truncation of both files does not reach). Streams the
    /// file; a 0.1 prefix is checked as the plain chain it is and counted as unkeyed.
    ///
    /// # Errors
    /// [`AuditError::Tampered`] with the [`AuditBreak`](super::AuditBreak): an edit,
    /// a reorder, a removal or insertion, a downgrade, a truncation or a rewrite past a
    /// checkpoint, a forged checkpoint; [`AuditError::Corrupt`] for a line that is not a
    /// record, [`AuditError::TornTail`], an I/O failure.
    pub fn verify_keyed(
        path: impl AsRef<Path>,
        key: &AuditKey,
        shipped: &[AuditCheckpoint],
    ) -> Result<AuditVerified, AuditError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(io("open audit log"))?;
        let (_, verified) = walk_checked(&file, path, Some(key), shipped, |_| {})?;
        verified.ok_or(AuditError::KeyRequired)
    }

    /// The checkpoints in `<path>.checkpoints`, oldest first (none if there is no such
    /// file). They are not checked here: [`AuditLog::verify_keyed`] does.
    ///
    /// # Errors
    /// [`AuditError::Corrupt`] for a line that is not a checkpoint, an I/O failure.
    pub fn checkpoints(path: impl AsRef<Path>) -> Result<Vec<AuditCheckpoint>, AuditError> {
        read_checkpoints(&checkpoint_path(path.as_ref()))
    }

    /// Takes a checkpoint of the log as it is now (other writers' records included),
    /// appends it to `<path>.checkpoints`, and returns it to be shipped elsewhere (also
    /// [`AuditSink::checkpoint`]).
    ///
    /// # Errors
    /// [`AuditError::KeyRequired`] on an unkeyed log, [`AuditError::TornTail`],
    /// an I/O failure.
    pub fn checkpoint(&self) -> Result<AuditCheckpoint, AuditError> {
        let key = self.key.as_ref().ok_or(AuditError::KeyRequired)?;
        let mut tail = self.tail.lock().unwrap_or_else(PoisonError::into_inner);
        locked(&mut tail, |tail| {
            self.catch_up(tail)?;
            if self.anchor.is_some() {
                tail.file.sync_data().map_err(io("sync audit log"))?;
            }
            let cp = key.checkpoint(tail.records, tail.head, Timestamp::now());
            self.write_checkpoint(&cp)?;
            Ok(cp)
        })
    }

    fn write_checkpoint(&self, cp: &AuditCheckpoint) -> Result<(), AuditError> {
        let mut file = open_file(&checkpoint_path(&self.path))?;
        file.write_all(format!("{cp}\n").as_bytes())
            .map_err(io("append audit checkpoint"))?;
        if self.anchor.is_some() {
            file.sync_data().map_err(io("sync audit checkpoints"))?;
        }
        self.move_anchor(cp)
    }

    /// Writes `cp` as the anchor's latest checkpoint (and as its genesis, for the first
    /// record); nothing when the log is not anchored.
    fn move_anchor(&self, cp: &AuditCheckpoint) -> Result<(), AuditError> {
        let Some((anchor, genesis)) = &self.anchor else {
            return Ok(());
        };
        let mut genesis = genesis.lock().unwrap_or_else(PoisonError::into_inner);
        if cp.records == 1 {
            *genesis = Some(*cp);
        } else if genesis.is_none() {
            // Another writer may have written the first record since this one opened.
            *genesis = read_checkpoints(anchor)?
                .into_iter()
                .find(|c| c.records == 1);
        }
        write_anchor(anchor, genesis.as_ref(), cp)
    }

    /// Brings `tail` up to the file's end (under the file's lock): other writers may
    /// have appended since this handle last did.
    fn catch_up(&self, tail: &mut Tail) -> Result<(), AuditError> {
        let len = tail
            .file
            .metadata()
            .map_err(io("read audit log length"))?
            .len();
        if len == tail.len {
            return Ok(());
        }
        // Appends and repairs only ever make the file longer than any writer left it: a
        // shorter file was cut, and a writer that carried on from its new end would
        // extend a chain with the cut records gone.
        if len < tail.len {
            return Err(AuditError::Corrupt {
                what: "audit log: shorter than this writer left it (truncated)",
            });
        }
        let Some(line) = last_line(&tail.file, &self.path, len)? else {
            return Err(AuditError::Corrupt {
                what: "audit log: shorter than when last read",
            });
        };
        match (parse_line(&line)?.1, &self.key) {
            (LineLink::Keyed { .. }, None) => return Err(AuditError::KeyRequired),
            (LineLink::Keyed { seq, mac }, Some(_)) => {
                tail.head = mac;
                tail.records = seq;
            }
            (LineLink::Plain(_), key) => {
                // A 0.1 writer appended: count the records again (rare). After keyed
                // records that is a downgrade, which the keyed walk reports.
                let (w, _) = walk_checked(&tail.file, &self.path, key.as_ref(), &[], |_| {})?;
                tail.head = w.head;
                tail.records = w.records;
            }
        }
        tail.len = len;
        Ok(())
    }
    /// The one-time migration of a 0.1 (unkeyed) log to the keyed chain: under the file's
    /// lock, checks the plain chain, then appends a keyed record (purpose
    /// [`AUDIT_MIGRATION`](crate::audit::AUDIT_MIGRATION)) whose MAC covers the hash of the last
    /// 0.1 line, and so every line before it. Returns how many unkeyed records it took
    /// over: 0 when the log is empty or keyed already (then it is checked under `key`).
    ///
    /// # Security
    /// Run it once, on the 0.1 log as the 0.1 service left it: whatever the file holds
    /// at that moment is vouched for from then on.
    ///
    /// # Errors
    /// [`AuditError::Corrupt`] for a broken 0.1 chain, [`AuditError::TornTail`],
    /// [`AuditError::Tampered`] for a keyed log that fails its check, an I/O failure.
    pub fn migrate_to_keyed(path: impl AsRef<Path>, key: &AuditKey) -> Result<u64, AuditError> {
        repair::migrate_to_keyed(path.as_ref(), key)
    }

    /// Repairs an unkeyed log whose only fault is an unterminated last line (a crash or
    /// a full disk mid-append): under the file's lock, cuts the torn line off, syncs, and
    /// appends a record that says how many bytes were dropped (purpose
    /// `audit-log-repair`), so the repair is itself in the chain. A log with nothing to
    /// repair is left as it is. A keyed log needs [`AuditLog::repair_keyed`].
    ///
    /// # Errors
    /// [`AuditError::Corrupt`] when the chain is broken before the last line (tampering
    /// is not repaired), [`AuditError::KeyRequired`], an I/O failure.
    ///
    /// # Examples
    /// ```
    /// use shopsafe::audit::{AuditError, AuditLog};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("audit.log");
    /// std::fs::write(&path, "1700000000000\tcard_x\tcha")?; // a crash mid-line
    /// assert!(matches!(AuditLog::open(&path), Err(AuditError::TornTail { .. })));
    /// let repair = AuditLog::repair(&path)?;
    /// assert_eq!((repair.dropped_bytes, repair.records), (24, 1));
    /// assert!(AuditLog::open(&path).is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn repair(path: impl AsRef<Path>) -> Result<AuditRepair, AuditError> {
        repair::repair(path.as_ref(), None)
    }

    /// [`AuditLog::repair`] for a keyed log: the chain is checked under `key` first, and
    /// the repair's record is keyed.
    ///
    /// # Errors
    /// As [`AuditLog::repair`], and [`AuditError::Tampered`] when the chain fails its
    /// check.
    pub fn repair_keyed(path: impl AsRef<Path>, key: &AuditKey) -> Result<AuditRepair, AuditError> {
        repair::repair(path.as_ref(), Some(key))
    }
}

/// Runs `f` with an exclusive lock on the tail's file, unlocking whatever `f` returned.
fn locked<T>(
    tail: &mut Tail,
    f: impl FnOnce(&mut Tail) -> Result<T, AuditError>,
) -> Result<T, AuditError> {
    tail.file.lock().map_err(io("lock audit log"))?;
    let result = f(tail);
    tail.file.unlock().map_err(io("unlock audit log"))?;
    result
}

impl AuditSink for AuditLog {
    fn record(&self, entry: &AuditRecord) -> Result<(), AuditError> {
        let mut tail = self.tail.lock().unwrap_or_else(PoisonError::into_inner);
        // Across processes: one appender at a time, and the head as the file has it now.
        locked(&mut tail, |tail| {
            self.catch_up(tail)?;
            let seq = tail.records + 1;
            let (line, head) = line_for(self.key.as_ref(), entry, &tail.head, seq);
            // One write of the whole line, at the end (append mode), under the lock.
            (&tail.file)
                .write_all(line.as_bytes())
                .map_err(io("append audit record"))?;
            tail.len += line.len() as u64;
            tail.head = head;
            tail.records = seq;
            if let Some(key) = &self.key {
                let due = self.every > 0 && seq.is_multiple_of(self.every);
                // The anchor never runs ahead of what is on disk: a power loss must not
                // leave it counting records the log lost (a log refused for ever).
                if self.anchor.is_some() && (seq == 1 || due) {
                    tail.file.sync_data().map_err(io("sync audit log"))?;
                }
                if due {
                    self.write_checkpoint(&key.checkpoint(seq, head, entry.at))?;
                } else if seq == 1 {
                    // The trail's first record: its genesis, on the key's side.
                    self.move_anchor(&key.checkpoint(seq, head, entry.at))?;
                }
            }
            Ok(())
        })
    }

    fn checkpoint(&self) -> Result<AuditCheckpoint, AuditError> {
        AuditLog::checkpoint(self)
    }
}

#[cfg(test)]
mod tests;
