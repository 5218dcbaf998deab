//! An append-only, hash-chained audit file: the cheap [`AuditSink`].

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use sha2::{Digest, Sha256};

use super::chain::{
    AuditCheckpoint, AuditKey, AuditVerified, ChainCheck, DEFAULT_CHECKPOINT_EVERY, GENESIS, Link,
    hex32, migration_record,
};
use super::error::AuditError;
use super::record::AuditRecord;
use super::sink::AuditSink;
use crate::kernel::Timestamp;
use crate::persist::StoreError;

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
/// use shopsafe::store::{AuditLog, AuditRecord, AuditSink, Timestamp};
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

/// What [`AuditLog::repair`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditRepair {
    /// Bytes of an unterminated last line that were cut off (0: nothing to repair, and
    /// nothing was written).
    pub dropped_bytes: u64,
    /// Records in the log after the repair, the repair's own record included.
    pub records: u64,
}

fn io(operation: &'static str) -> impl FnOnce(std::io::Error) -> AuditError {
    move |e| {
        AuditError::Store(StoreError::Backend {
            operation,
            source: Box::new(e),
        })
    }
}

fn clean(field: &str) -> String {
    field
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn hash(line: &[u8]) -> [u8; 32] {
    Sha256::digest(line).into()
}

/// Opens (creating with mode 0600 if needed) for appending and reading.
fn open_file(path: &Path) -> Result<File, AuditError> {
    let mut options = OpenOptions::new();
    options.read(true).append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(io("open audit log"))
}

/// `<file>.checkpoints`.
fn checkpoint_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".checkpoints");
    PathBuf::from(name)
}

/// What a walk over the file found.
struct Walk {
    /// Bytes of complete, chained lines.
    valid: u64,
    /// Bytes after them (an unterminated last line).
    torn: u64,
    head: [u8; 32],
    records: u64,
}

/// The error for a log whose last `torn` of `len` bytes are an unterminated line.
fn torn_tail(path: &Path, len: u64, torn: u64) -> AuditError {
    AuditError::TornTail {
        path: path.display().to_string(),
        valid_bytes: len - torn,
        torn_bytes: torn,
    }
}

impl Walk {
    /// The walk as `open` and `verify` accept it: a torn tail is an error.
    fn whole(self, path: &Path) -> Result<Self, AuditError> {
        if self.torn > 0 {
            Err(torn_tail(path, self.valid + self.torn, self.torn))
        } else {
            Ok(self)
        }
    }
}

/// A line's link field.
enum LineLink {
    /// 0.1: the SHA-256 of the previous line.
    Plain([u8; 32]),
    /// Keyed: the record's sequence number and MAC.
    Keyed { seq: u64, mac: [u8; 32] },
}

fn malformed() -> AuditError {
    AuditError::Corrupt {
        what: "audit log: malformed line",
    }
}

/// One complete line (its new line included), parsed.
fn parse_line(line: &[u8]) -> Result<(AuditRecord, LineLink), AuditError> {
    let body = line.strip_suffix(b"\n").ok_or_else(malformed)?;
    let body = core::str::from_utf8(body).map_err(|_| AuditError::Corrupt {
        what: "audit log: not UTF-8",
    })?;
    let fields: Vec<&str> = body.split('\t').collect();
    let [at, token, purpose, caller, link] = fields[..] else {
        return Err(malformed());
    };
    let at = at.parse().map_err(|_| AuditError::Corrupt {
        what: "audit log: bad time",
    })?;
    let link = match link.strip_prefix("k1:") {
        Some(keyed) => {
            let (seq, mac) = keyed.split_once(':').ok_or_else(malformed)?;
            if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
                return Err(malformed());
            }
            LineLink::Keyed {
                seq: seq.parse().map_err(|_| malformed())?,
                mac: hex32(mac).ok_or_else(malformed)?,
            }
        }
        None => LineLink::Plain(hex32(link).ok_or(AuditError::Corrupt {
            what: "audit log: broken hash chain",
        })?),
    };
    let record = AuditRecord::from_stored(
        token.into(),
        purpose,
        caller.into(),
        Timestamp::from_millis(at),
    );
    Ok((record, link))
}

/// Reads `file` from the start, line by line, checking the chain (keyed records through
/// `keyed`; without it, a keyed record is [`AuditError::KeyRequired`]); hands each
/// record to `each`. Only one line is in memory at a time.
fn walk(
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
fn last_line(file: &File, path: &Path, len: u64) -> Result<Option<Vec<u8>>, AuditError> {
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
fn read_exact_at(file: &File, buf: &mut [u8], at: u64) -> Result<(), AuditError> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, at).map_err(io("read audit log tail"))
}

#[cfg(not(unix))]
fn read_exact_at(file: &File, buf: &mut [u8], at: u64) -> Result<(), AuditError> {
    use std::io::Read;
    let mut f = file.try_clone().map_err(io("read audit log tail"))?;
    f.seek(SeekFrom::Start(at))
        .and_then(|_| f.read_exact(buf))
        .map_err(io("read audit log tail"))
}

/// Checkpoint lines from `file` (none if there is no such file).
fn read_checkpoints(file: &Path) -> Result<Vec<AuditCheckpoint>, AuditError> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io("read audit checkpoints")(e)),
    };
    text.lines()
        .map(|l| {
            l.parse().map_err(|_| AuditError::Corrupt {
                what: "audit checkpoint line",
            })
        })
        .collect()
}

/// Writes the anchor file anew (a temporary file, synced, renamed): the genesis line
/// (when known) and `latest`.
fn write_anchor(
    anchor: &Path,
    genesis: Option<&AuditCheckpoint>,
    latest: &AuditCheckpoint,
) -> Result<(), AuditError> {
    let mut text = String::new();
    if let Some(g) = genesis.filter(|g| g.records != latest.records) {
        text.push_str(&format!("{g}\n"));
    }
    text.push_str(&format!("{latest}\n"));
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut name = anchor.file_name().unwrap_or_default().to_os_string();
    // A name of this process and write alone: two writers never share a temporary.
    name.push(format!(
        ".tmp.{}.{}",
        std::process::id(),
        WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let tmp = anchor.with_file_name(name);
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(&tmp).map_err(io("write audit anchor"))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(io("write audit anchor"))?;
    std::fs::rename(&tmp, anchor).map_err(io("write audit anchor"))?;
    if let Some(dir) = anchor.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
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

/// Walks the whole file under a shared lock, keyed when `key` is given, against the
/// local checkpoints and `shipped`.
fn walk_checked(
    file: &File,
    path: &Path,
    key: Option<&AuditKey>,
    shipped: &[AuditCheckpoint],
    each: impl FnMut(AuditRecord),
) -> Result<(Walk, Option<AuditVerified>), AuditError> {
    let mut check = match key {
        Some(key) => {
            let mut all = AuditLog::checkpoints(path)?;
            all.extend_from_slice(shipped);
            Some(ChainCheck::new(key, &all)?)
        }
        None => None,
    };
    let w = walk(file, check.as_mut(), each)?.whole(path)?;
    let verified = check.map(ChainCheck::finish).transpose()?;
    Ok((w, verified))
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
    /// use shopsafe::store::{AuditKey, AuditLog, AuditRecord, AuditSink, Timestamp};
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
    /// [`AUDIT_MIGRATION`](super::AUDIT_MIGRATION)) whose MAC covers the hash of the last
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
        let path = path.as_ref();
        let file = open_file(path)?;
        let f = &file;
        let result = (|| {
            f.lock().map_err(io("lock audit log"))?;
            let w = match walk(f, None, |_| {}) {
                Err(AuditError::KeyRequired) => {
                    walk_checked(f, path, Some(key), &[], |_| {})?;
                    return Ok(0);
                }
                other => other?.whole(path)?,
            };
            if w.records == 0 {
                return Ok(0);
            }
            // A log that was keyed under this key (its checkpoints say so) and is
            // unkeyed now was replaced: a migration would vouch for the forgery.
            if AuditLog::checkpoints(path)?.iter().any(|c| c.is_valid(key)) {
                return Err(AuditError::Tampered(super::AuditBreak::Unmigrated {
                    records: w.records,
                }));
            }
            let note = migration_record(w.records, Timestamp::now());
            let (line, _) = line_for(Some(key), &note, &w.head, w.records + 1);
            let mut out = f;
            out.write_all(line.as_bytes())
                .and_then(|()| out.sync_all())
                .map_err(io("append audit record"))?;
            Ok(w.records)
        })();
        file.unlock().map_err(io("unlock audit log"))?;
        result
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
        Self::repair_with(path.as_ref(), None)
    }

    /// [`AuditLog::repair`] for a keyed log: the chain is checked under `key` first, and
    /// the repair's record is keyed.
    ///
    /// # Errors
    /// As [`AuditLog::repair`], and [`AuditError::Tampered`] when the chain fails its
    /// check.
    pub fn repair_keyed(path: impl AsRef<Path>, key: &AuditKey) -> Result<AuditRepair, AuditError> {
        Self::repair_with(path.as_ref(), Some(key))
    }

    fn repair_with(path: &Path, key: Option<&AuditKey>) -> Result<AuditRepair, AuditError> {
        let mut file = open_file(path)?;
        let f = &mut file;
        let result = (|| {
            f.lock().map_err(io("lock audit log"))?;
            let mut check = key.map(|k| ChainCheck::new(k, &[])).transpose()?;
            let w = walk(f, check.as_mut(), |_| {})?;
            // A keyed repair record right after unkeyed lines would take them over
            // without a migration: repair it unkeyed, then migrate.
            if check.as_ref().is_some_and(ChainCheck::needs_migration) {
                return Err(AuditError::MigrationRequired);
            }
            if w.torn == 0 {
                return Ok(AuditRepair {
                    dropped_bytes: 0,
                    records: w.records,
                });
            }
            f.set_len(w.valid)
                .and_then(|()| f.sync_all())
                .map_err(io("truncate audit log"))?;
            let note = AuditRecord::new(
                "-".into(),
                "audit-log-repair".into(),
                format!(
                    "shopsafe: dropped {} bytes of an unterminated last line",
                    w.torn
                ),
                Timestamp::now(),
            );
            let (line, _) = line_for(key, &note, &w.head, w.records + 1);
            f.write_all(line.as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(io("append audit record"))?;
            Ok(AuditRepair {
                dropped_bytes: w.torn,
                records: w.records + 1,
            })
        })();
        file.unlock().map_err(io("unlock audit log"))?;
        result
    }
}

/// The line for record number `seq` after head `prev`, and the chain's head after it:
/// keyed when `key` is given.
fn line_for(
    key: Option<&AuditKey>,
    entry: &AuditRecord,
    prev: &[u8; 32],
    seq: u64,
) -> (String, [u8; 32]) {
    let entry = AuditRecord::new(
        clean(&entry.token),
        clean(&entry.purpose),
        clean(&entry.caller),
        entry.at,
    )
    .with_outcome(entry.outcome)
    .with_kind(entry.kind.clone());
    let fields = format!(
        "{}\t{}\t{}\t{}",
        entry.at.as_millis(),
        entry.token,
        entry.stored_purpose(),
        entry.caller,
    );
    match key {
        Some(key) => {
            let mac = key.record_mac(prev, seq, &entry);
            let line = format!(
                "{fields}\tk1:{seq}:{}\n",
                base16ct::lower::encode_string(&mac)
            );
            (line, mac)
        }
        None => {
            let line = format!("{fields}\t{}\n", base16ct::lower::encode_string(prev));
            let head = hash(line.as_bytes());
            (line, head)
        }
    }
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
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_from_a_keyed_log_and_a_kind_edited_away_is_caught() {
        use super::super::{AuditBreak, AuditKind};
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("kinds.log");
        let key = || AuditKey::from_bytes([3; 32]);
        let log = AuditLog::open_keyed(&path, key()).expect("open");
        let kinds = [
            AuditKind::CardReveal,
            AuditKind::OperatorAction,
            AuditKind::KeyChange,
            AuditKind::Erasure,
            AuditKind::Other("a-later-kind".into()),
        ];
        for kind in &kinds {
            log.record(&rec("card_x", "ops").with_kind(kind.clone()))
                .expect("append");
        }
        let mut read = Vec::new();
        let file = File::open(&path).expect("open");
        walk_checked(&file, &path, Some(&key()), &[], |r| read.push(r.kind)).expect("chain");
        assert_eq!(read, kinds);
        // The operator record made to look like a card reveal: its MAC no longer holds.
        let text = std::fs::read_to_string(&path).expect("read");
        std::fs::write(&path, text.replacen("\toperator#charge\t", "\tcharge\t", 1))
            .expect("tamper");
        assert!(matches!(
            AuditLog::verify_keyed(&path, &key(), &[]),
            Err(AuditError::Tampered(AuditBreak::Edited { record: 2 }))
        ));
    }

    #[test]
    fn a_log_written_by_0_1_reads_back_and_grows_with_outcomes() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("old.log");
        // A line exactly as 0.1 wrote it: no outcome.
        let old = format!(
            "1700000000000\tcard_x\tcharge\tcheckout\t{}\n",
            "0".repeat(64)
        );
        std::fs::write(&path, &old).expect("write");
        let log = AuditLog::open(&path).expect("open a 0.1 log");
        log.record(&rec("card_y", "intern").with_outcome(super::super::AuditOutcome::Refused))
            .expect("append");
        let back = AuditLog::verify(&path).expect("chain");
        let outcomes: Vec<_> = back
            .iter()
            .map(|r| (r.purpose.as_str(), r.outcome))
            .collect();
        assert_eq!(
            outcomes,
            [
                ("charge", super::super::AuditOutcome::Revealed),
                ("charge", super::super::AuditOutcome::Refused)
            ]
        );
        assert!(
            std::fs::read_to_string(&path)
                .expect("read")
                .contains("\tcharge!refused\t")
        );
    }

    fn rec(token: &str, caller: &str) -> AuditRecord {
        AuditRecord::new(
            token.into(),
            "charge".into(),
            caller.into(),
            Timestamp::from_millis(1_700_000_000_000),
        )
    }

    #[test]
    fn records_chain_across_reopen_and_edits_are_caught() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("audit.log");
        let log = AuditLog::open(&path).expect("open");
        log.record(&rec("card_a", "svc")).expect("write");
        log.record(&rec("card_b", "evil\tcaller\nforged"))
            .expect("write");
        drop(log);
        let log = AuditLog::open(&path).expect("reopen continues the chain");
        log.record(&rec("card_c", "svc")).expect("write");
        let back = AuditLog::verify(&path).expect("intact");
        assert_eq!(back.len(), 3);
        assert_eq!(
            back[1].caller, "evil?caller?forged",
            "control characters cannot forge a line"
        );
        assert_eq!(back[2].token, "card_c");

        let text = std::fs::read_to_string(&path).expect("read");
        for tampered in [
            text.replacen("card_a", "card_z", 1), // an edit
            text.lines().skip(1).map(|l| format!("{l}\n")).collect(), // the first line removed
            format!(
                "{}{}",
                text.lines()
                    .next()
                    .map(|l| format!("{l}\n"))
                    .unwrap_or_default(),
                text
            ), // a line repeated
        ] {
            std::fs::write(&path, &tampered).expect("write");
            assert!(matches!(
                AuditLog::verify(&path),
                Err(AuditError::Corrupt { .. })
            ));
            assert!(
                AuditLog::open(&path).is_err(),
                "a broken log is not appended to"
            );
        }
    }
    #[test]
    fn two_writers_on_one_file_keep_one_chain() {
        // Each `open` used to keep its own head in memory: two writers forked the chain
        // and the next `open` refused the file, so the vault could not start.
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("audit.log");
        let logs = [
            AuditLog::open(&path).expect("first writer"),
            AuditLog::open(&path)
                .expect("second writer (another process, as far as the file knows)"),
        ];
        std::thread::scope(|scope| {
            for (w, log) in logs.iter().enumerate() {
                for t in 0..3 {
                    scope.spawn(move || {
                        for i in 0..150 {
                            log.record(&rec(&format!("card_{w}_{t}_{i}"), "svc"))
                                .expect("append");
                        }
                    });
                }
            }
        });
        let back = AuditLog::verify(&path).expect("one unbroken chain");
        assert_eq!(back.len(), 2 * 3 * 150);
        drop(logs);
        let reopened = AuditLog::open(&path).expect("the vault starts");
        reopened.record(&rec("card_last", "svc")).expect("append");
        assert_eq!(AuditLog::verify(&path).expect("intact").len(), 901);
    }

    #[test]
    fn a_torn_last_line_is_a_typed_error_and_repair_records_itself() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("audit.log");
        let log = AuditLog::open(&path).expect("open");
        log.record(&rec("card_a", "svc")).expect("write");
        log.record(&rec("card_b", "svc")).expect("write");
        // A crash (or a full disk) in the middle of the third line.
        let mut f = OpenOptions::new().append(true).open(&path).expect("raw");
        f.write_all(b"1700000000000\tcard_c\tch")
            .expect("torn write");
        drop(f);
        let torn = |r: Result<(), AuditError>| {
            matches!(r, Err(AuditError::TornTail { torn_bytes: 23, .. }))
        };
        assert!(torn(AuditLog::verify(&path).map(drop)), "verify reports it");
        assert!(torn(AuditLog::open(&path).map(drop)), "open reports it");
        assert!(
            torn(log.record(&rec("card_d", "svc"))),
            "a writer does not append after a torn line"
        );
        let repair = AuditLog::repair(&path).expect("repair");
        assert_eq!(repair.dropped_bytes, 23);
        assert_eq!(repair.records, 3);
        let back = AuditLog::verify(&path).expect("intact again");
        assert_eq!(back.len(), 3);
        assert_eq!(back[2].purpose, "audit-log-repair");
        assert!(back[2].caller.contains("23 bytes"), "{}", back[2].caller);
        // The handle that was open before the repair carries on, from the new head.
        log.record(&rec("card_e", "svc")).expect("write");
        assert_eq!(AuditLog::verify(&path).expect("intact").len(), 4);
        assert_eq!(
            AuditLog::repair(&path).expect("nothing to do"),
            AuditRepair {
                dropped_bytes: 0,
                records: 4
            }
        );
    }

    fn key() -> AuditKey {
        AuditKey::from_bytes([42; 32])
    }

    fn tampered(r: Result<AuditVerified, AuditError>) -> Option<super::super::AuditBreak> {
        match r {
            Err(AuditError::Tampered(b)) => Some(b),
            Ok(_) => None,
            Err(other) => panic!("not a tamper report: {other}"),
        }
    }

    #[test]
    fn a_keyed_log_names_edits_reorders_removals_and_truncation() {
        use super::super::AuditBreak;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("audit.log");
        let log = AuditLog::open_keyed(&path, key())
            .expect("open")
            .checkpoint_every(4);
        for i in 0..10 {
            log.record(&rec(&format!("card_{i}"), "svc"))
                .expect("write");
        }
        let shipped = log.checkpoint().expect("on demand");
        drop(log);
        assert_eq!(shipped.records, 10);
        let local = AuditLog::checkpoints(&path).expect("local checkpoints");
        assert_eq!(
            local.iter().map(|c| c.records).collect::<Vec<_>>(),
            [4, 8, 10],
            "every 4 records and on demand"
        );
        let ok = AuditLog::verify_keyed(&path, &key(), &[shipped]).expect("intact");
        assert_eq!((ok.records, ok.unkeyed, ok.checked_up_to), (10, 0, 10));
        assert!(matches!(
            AuditLog::verify(&path),
            Err(AuditError::KeyRequired)
        ));
        assert!(matches!(
            AuditLog::open(&path),
            Err(AuditError::KeyRequired)
        ));

        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<String> = text.lines().map(|l| format!("{l}\n")).collect();
        let cps = std::fs::read_to_string(checkpoint_path(&path)).expect("read");
        let check = |log: String, cps: &str| {
            std::fs::write(&path, log).expect("write");
            std::fs::write(checkpoint_path(&path), cps).expect("write");
            tampered(AuditLog::verify_keyed(&path, &key(), &[shipped]))
        };
        // The last record edited: caught although no record follows it.
        let mut edited = lines.clone();
        edited[9] = edited[9].replacen("card_9", "card_x", 1);
        assert_eq!(
            check(edited.concat(), &cps),
            Some(AuditBreak::Edited { record: 10 })
        );
        // A record's time changed (the first field): an edit.
        let mut retimed = lines.clone();
        let (at, rest) = retimed[4].split_once('\t').expect("fields");
        let later: i64 = at.parse::<i64>().expect("time") + 1;
        retimed[4] = format!("{later}\t{rest}");
        assert_eq!(
            check(retimed.concat(), &cps),
            Some(AuditBreak::Edited { record: 5 })
        );
        let mut swapped = lines.clone();
        swapped.swap(2, 3);
        assert_eq!(
            check(swapped.concat(), &cps),
            Some(AuditBreak::OutOfOrder {
                record: 3,
                sequence: 4
            })
        );
        let mut removed = lines.clone();
        removed.remove(5);
        assert_eq!(
            check(removed.concat(), &cps),
            Some(AuditBreak::OutOfOrder {
                record: 6,
                sequence: 7
            })
        );
        // The tail cut off, and the local checkpoints with it: the shipped one tells.
        assert_eq!(
            check(
                lines[..7].concat(),
                &cps.lines()
                    .next()
                    .map(|l| format!("{l}\n"))
                    .unwrap_or_default()
            ),
            Some(AuditBreak::Truncated {
                checkpoint: 10,
                records: 7
            })
        );
        // The whole file rewritten as a 0.1 chain that anyone can compute.
        let mut prev = GENESIS;
        let downgraded: String = (0..10)
            .map(|i| {
                let (line, head) = line_for(None, &rec(&format!("card_{i}"), "svc"), &prev, 0);
                prev = head;
                line
            })
            .collect();
        assert_eq!(
            check(downgraded, ""),
            Some(AuditBreak::Rewritten { checkpoint: 10 })
        );
        // Intact again.
        assert_eq!(check(lines.concat(), &cps), None);
    }

    #[test]
    fn a_0_1_log_goes_on_keyed_and_two_keyed_writers_share_one_chain() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("audit.log");
        let old = AuditLog::open(&path).expect("0.1 writer");
        old.record(&rec("card_old1", "svc")).expect("write");
        old.record(&rec("card_old2", "svc")).expect("write");
        // Not taken over by merely opening it keyed: that needs the explicit migration.
        assert!(matches!(
            AuditLog::open_keyed(&path, key()),
            Err(AuditError::Tampered(super::super::AuditBreak::Unmigrated {
                records: 2
            }))
        ));
        assert_eq!(
            AuditLog::migrate_to_keyed(&path, &key()).expect("migrate"),
            2
        );
        assert_eq!(
            AuditLog::migrate_to_keyed(&path, &key()).expect("once"),
            0,
            "a keyed log has nothing to migrate"
        );
        let logs = [
            AuditLog::open_keyed(&path, key())
                .expect("first")
                .checkpoint_every(50),
            AuditLog::open_keyed(&path, key())
                .expect("second")
                .checkpoint_every(50),
        ];
        std::thread::scope(|scope| {
            for (w, log) in logs.iter().enumerate() {
                scope.spawn(move || {
                    for i in 0..100 {
                        log.record(&rec(&format!("card_{w}_{i}"), "svc"))
                            .expect("append");
                    }
                });
            }
        });
        let ok = AuditLog::verify_keyed(&path, &key(), &[]).expect("one chain");
        assert_eq!((ok.records, ok.unkeyed), (203, 2));
        assert_eq!(ok.checkpoints, 4, "at 50, 100, 150 and 200");
        assert!(
            matches!(
                old.record(&rec("card_old3", "svc")),
                Err(AuditError::KeyRequired)
            ),
            "a 0.1 writer does not append to a keyed log"
        );
        assert!(
            tampered(AuditLog::verify_keyed(
                &path,
                &AuditKey::from_bytes([1; 32]),
                &[]
            ))
            .is_some(),
            "another key does not verify it"
        );
    }

    #[test]
    fn a_writer_refuses_to_extend_a_log_cut_short_or_downgraded_under_it() {
        use super::super::AuditBreak;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("audit.log");
        let log = AuditLog::open_keyed(&path, key())
            .expect("open")
            .checkpoint_every(0);
        for i in 0..4 {
            log.record(&rec(&format!("card_{i}"), "svc"))
                .expect("write");
        }
        let text = std::fs::read_to_string(&path).expect("read");
        // The last two records cut off while the vault runs.
        let kept: String = text.lines().take(2).map(|l| format!("{l}\n")).collect();
        std::fs::write(&path, &kept).expect("cut");
        assert!(
            matches!(
                log.record(&rec("card_4", "svc")),
                Err(AuditError::Corrupt { .. })
            ),
            "no record appended after the cut"
        );
        // A line in the 0.1 format appended after keyed ones (by an old writer).
        std::fs::write(&path, &text).expect("restore");
        let log = AuditLog::open_keyed(&path, key()).expect("reopen");
        // An old writer links it to the SHA-256 of the last line, as 0.1 did.
        let last = format!("{}\n", text.lines().last().expect("a line"));
        let (plain, _) = line_for(None, &rec("card_old", "svc"), &hash(last.as_bytes()), 0);
        OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(plain.as_bytes()))
            .expect("append");
        assert!(matches!(
            log.record(&rec("card_5", "svc")),
            Err(AuditError::Tampered(AuditBreak::Downgraded { record: 5 }))
        ));
    }

    #[test]
    fn a_torn_keyed_log_is_repaired_with_its_key() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("audit.log");
        let log = AuditLog::open_keyed(&path, key()).expect("open");
        log.record(&rec("card_a", "svc")).expect("write");
        let mut f = OpenOptions::new().append(true).open(&path).expect("raw");
        f.write_all(b"1700000000000\tcard_b").expect("torn write");
        drop(f);
        assert!(matches!(
            AuditLog::repair(&path),
            Err(AuditError::KeyRequired)
        ));
        let repair = AuditLog::repair_keyed(&path, &key()).expect("repair");
        assert_eq!((repair.dropped_bytes, repair.records), (20, 2));
        log.record(&rec("card_c", "svc"))
            .expect("the open handle carries on");
        assert_eq!(
            AuditLog::verify_keyed(&path, &key(), &[])
                .expect("intact")
                .records,
            3
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_log_is_created_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("audit.log");
        drop(AuditLog::open(&path).expect("open"));
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    #[test]
    fn a_keyed_log_replaced_by_a_forged_unkeyed_one_is_refused() {
        use super::super::AuditBreak;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("audit.log");
        let log = AuditLog::open_keyed(&path, key()).expect("open");
        for i in 0..5 {
            log.record(&rec(&format!("card_{i}"), "svc"))
                .expect("write");
        }
        drop(log);
        // Someone who can write the log, not read the key: a made-up 0.1 chain in its
        // place, and the checkpoints file gone.
        let mut prev = GENESIS;
        let forged: String = (0..3)
            .map(|i| {
                let (line, head) = line_for(None, &rec(&format!("made_up_{i}"), "svc"), &prev, 0);
                prev = head;
                line
            })
            .collect();
        std::fs::write(&path, &forged).expect("forge");
        // While the keyed log's checkpoints are there, no migration vouches for it.
        let log = AuditLog::open_keyed(&path, key());
        assert!(log.is_err());
        let cp = key().checkpoint(5, [0; 32], Timestamp::from_millis(1));
        std::fs::write(checkpoint_path(&path), format!("{cp}\n")).expect("checkpoint");
        assert!(matches!(
            AuditLog::migrate_to_keyed(&path, &key()),
            Err(AuditError::Tampered(AuditBreak::Unmigrated { records: 3 }))
        ));
        let _ = std::fs::remove_file(checkpoint_path(&path));
        let unmigrated = |r: Result<AuditVerified, AuditError>| {
            matches!(
                r,
                Err(AuditError::Tampered(AuditBreak::Unmigrated { records: 3 }))
            )
        };
        assert!(unmigrated(AuditLog::verify_keyed(&path, &key(), &[])));
        assert!(matches!(
            AuditLog::open_keyed(&path, key()),
            Err(AuditError::Tampered(AuditBreak::Unmigrated { records: 3 }))
        ));
    }

    #[test]
    fn an_anchored_log_emptied_replaced_or_cut_with_its_checkpoints_is_refused() {
        use super::super::AuditBreak;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("audit.log");
        let anchor = dir.path().join("keys.audit-anchor");
        let log = AuditLog::open_keyed_anchored(&path, key(), &anchor)
            .expect("open")
            .checkpoint_every(4);
        for i in 0..10 {
            log.record(&rec(&format!("card_{i}"), "svc"))
                .expect("write");
        }
        drop(log);
        let anchored = AuditLog::anchor(&anchor).expect("anchor");
        assert_eq!(
            anchored.iter().map(|c| c.records).collect::<Vec<_>>(),
            [1, 8],
            "the first record and the latest checkpoint"
        );
        let intact = std::fs::read(&path).expect("read");
        let reopen = || AuditLog::open_keyed_anchored(&path, key(), &anchor).map(drop);
        reopen().expect("intact");
        let broke = |r: Result<(), AuditError>| match r {
            Err(AuditError::Tampered(b)) => Some(b),
            other => panic!("not a tamper report: {other:?}"),
        };
        // Emptied (and its checkpoints gone): the anchor still counts 8.
        std::fs::write(&path, b"").expect("empty");
        let _ = std::fs::remove_file(checkpoint_path(&path));
        assert_eq!(
            broke(reopen()),
            Some(AuditBreak::Truncated {
                checkpoint: 8,
                records: 0
            })
        );
        // Cut to 6 records with the checkpoints: still short of the anchor.
        let lines: Vec<&[u8]> = intact.split_inclusive(|&b| b == b'\n').collect();
        std::fs::write(&path, lines[..6].concat()).expect("cut");
        assert_eq!(
            broke(reopen()),
            Some(AuditBreak::Truncated {
                checkpoint: 8,
                records: 6
            })
        );
        // Replaced whole by another keyed trail (an old copy of another log under the
        // same key): its first record is not the anchored one.
        let other = dir.path().join("other.log");
        let o = AuditLog::open_keyed(&other, key()).expect("other");
        for i in 0..10 {
            o.record(&rec(&format!("other_{i}"), "svc")).expect("write");
        }
        std::fs::copy(&other, &path).expect("replace");
        assert_eq!(
            broke(reopen()),
            Some(AuditBreak::Rewritten { checkpoint: 1 })
        );
        // Put back: fine; what came after the anchor's checkpoint (records 9 and 10) only
        // a shipped checkpoint protects.
        std::fs::write(&path, &intact).expect("restore");
        reopen().expect("intact again");
        std::fs::write(&path, lines[..9].concat()).expect("cut after the anchor");
        reopen().expect("a cut past the anchor's checkpoint is not seen here");
        assert!(
            AuditLog::verify_keyed(&path, &key(), &anchored).is_ok(),
            "the anchor's checkpoints verify as shipped ones"
        );
    }

    #[test]
    fn a_torn_0_1_log_is_repaired_unkeyed_before_its_migration() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("audit.log");
        let old = AuditLog::open(&path).expect("0.1 writer");
        old.record(&rec("card_old", "svc")).expect("write");
        drop(old);
        let mut f = OpenOptions::new().append(true).open(&path).expect("open");
        f.write_all(b"1700000000000\tcard_x\tcha").expect("torn");
        drop(f);
        // A keyed repair record would take the 0.1 line over without a migration.
        assert!(matches!(
            AuditLog::repair_keyed(&path, &key()),
            Err(AuditError::MigrationRequired)
        ));
        AuditLog::repair(&path).expect("repaired unkeyed");
        assert_eq!(
            AuditLog::migrate_to_keyed(&path, &key()).expect("migrate"),
            2
        );
        assert_eq!(
            AuditLog::verify_keyed(&path, &key(), &[])
                .expect("keyed")
                .records,
            3
        );
    }
}
