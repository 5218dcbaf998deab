//! An append-only, hash-chained audit file: the cheap [`AuditSink`].

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use sha2::{Digest, Sha256};

use super::{AuditRecord, AuditSink, StoreError, Timestamp};

/// Detokenize records appended to a file, one line each:
/// `<ms since epoch> TAB <token> TAB <purpose> TAB <caller> TAB <SHA-256 of the previous line, hex>`,
/// the purpose followed by `!refused` or `!failed` for an attempt that revealed nothing.
///
/// Each line carries the hash of the one before (the first, of nothing: 64 zeros), so a
/// line edited, removed or inserted anywhere but at the end breaks the chain, and
/// [`AuditLog::verify`] says where.
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
/// then answer [`StoreError::TornAuditTail`] (no number is revealed without its record),
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
    tail: Mutex<Tail>,
}

/// The open file and the chain's head as this handle last saw it.
#[derive(Debug)]
struct Tail {
    file: File,
    /// The file's length when `head` was read or written.
    len: u64,
    head: [u8; 32],
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

const GENESIS: [u8; 32] = [0; 32];

fn io(operation: &'static str) -> impl FnOnce(std::io::Error) -> StoreError {
    move |e| StoreError::Backend {
        operation,
        source: Box::new(e),
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
fn open_file(path: &Path) -> Result<File, StoreError> {
    let mut options = OpenOptions::new();
    options.read(true).append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(io("open audit log"))
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
fn torn_tail(path: &Path, len: u64, torn: u64) -> StoreError {
    StoreError::TornAuditTail {
        path: path.display().to_string(),
        valid_bytes: len - torn,
        torn_bytes: torn,
    }
}

impl Walk {
    /// The walk as `open` and `verify` accept it: a torn tail is an error.
    fn whole(self, path: &Path) -> Result<Self, StoreError> {
        if self.torn > 0 {
            Err(torn_tail(path, self.valid + self.torn, self.torn))
        } else {
            Ok(self)
        }
    }
}

/// Reads `file` from the start, line by line, checking the chain; hands each record to
/// `each`. Only one line is in memory at a time.
fn walk(file: &File, mut each: impl FnMut(AuditRecord)) -> Result<Walk, StoreError> {
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
        let body = core::str::from_utf8(&line[..n - 1]).map_err(|_| StoreError::Corrupt {
            what: "audit log: not UTF-8",
        })?;
        let fields: Vec<&str> = body.split('\t').collect();
        let [at, token, purpose, caller, link] = fields[..] else {
            return Err(StoreError::Corrupt {
                what: "audit log: malformed line",
            });
        };
        if link != base16ct::lower::encode_string(&w.head) {
            return Err(StoreError::Corrupt {
                what: "audit log: broken hash chain",
            });
        }
        let at = at.parse().map_err(|_| StoreError::Corrupt {
            what: "audit log: bad time",
        })?;
        each(AuditRecord::from_stored(
            token.into(),
            purpose,
            caller.into(),
            Timestamp::from_millis(at),
        ));
        w.head = hash(&line);
        w.valid += n as u64;
        w.records += 1;
    }
}

/// The hash of the last line of a file of `len` bytes, read from its end, or
/// [`StoreError::TornAuditTail`] if it does not end in a new line.
fn last_line_hash(file: &File, path: &Path, len: u64) -> Result<[u8; 32], StoreError> {
    if len == 0 {
        return Ok(GENESIS);
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
            return Ok(hash(&tail[k + 1..]));
        }
        if from == 0 {
            return Ok(hash(&tail));
        }
    }
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], at: u64) -> Result<(), StoreError> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, at).map_err(io("read audit log tail"))
}

#[cfg(not(unix))]
fn read_exact_at(file: &File, buf: &mut [u8], at: u64) -> Result<(), StoreError> {
    use std::io::Read;
    let mut f = file.try_clone().map_err(io("read audit log tail"))?;
    f.seek(SeekFrom::Start(at))
        .and_then(|_| f.read_exact(buf))
        .map_err(io("read audit log tail"))
}

impl AuditLog {
    /// Opens (creating with mode 0600 if needed) the log at `path`, checking the chain
    /// so far by streaming it.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when the chain is broken, [`StoreError::TornAuditTail`]
    /// when the last line is unterminated (see [`AuditLog::repair`]), an I/O failure.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let file = open_file(&path)?;
        file.lock_shared().map_err(io("lock audit log"))?;
        let walked = walk(&file, |_| {});
        file.unlock().map_err(io("unlock audit log"))?;
        let w = walked?.whole(&path)?;
        Ok(Self {
            path,
            tail: Mutex::new(Tail {
                file,
                len: w.valid,
                head: w.head,
            }),
        })
    }

    /// The file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the whole log back, checking every link of the chain.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] naming the broken link, [`StoreError::TornAuditTail`], an
    /// I/O failure.
    pub fn verify(path: impl AsRef<Path>) -> Result<Vec<AuditRecord>, StoreError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(io("open audit log"))?;
        let mut records = Vec::new();
        walk(&file, |r| records.push(r))?.whole(path)?;
        Ok(records)
    }

    /// Repairs a log whose only fault is an unterminated last line (a crash or a full
    /// disk mid-append): under the file's lock, cuts the torn line off, syncs, and
    /// appends a record that says how many bytes were dropped (purpose
    /// `audit-log-repair`), so the repair is itself in the chain. A log with nothing to
    /// repair is left as it is.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when the chain is broken before the last line (tampering
    /// is not repaired), an I/O failure.
    ///
    /// # Examples
    /// ```
    /// use shopsafe::store::{AuditLog, StoreError};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("audit.log");
    /// std::fs::write(&path, "1700000000000\tcard_x\tcha")?; // a crash mid-line
    /// assert!(matches!(AuditLog::open(&path), Err(StoreError::TornAuditTail { .. })));
    /// let repair = AuditLog::repair(&path)?;
    /// assert_eq!((repair.dropped_bytes, repair.records), (24, 1));
    /// assert!(AuditLog::open(&path).is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn repair(path: impl AsRef<Path>) -> Result<AuditRepair, StoreError> {
        let path = path.as_ref();
        let mut file = open_file(path)?;
        file.lock().map_err(io("lock audit log"))?;
        let result = (|| {
            let w = walk(&file, |_| {})?;
            if w.torn == 0 {
                return Ok(AuditRepair {
                    dropped_bytes: 0,
                    records: w.records,
                });
            }
            file.set_len(w.valid)
                .and_then(|()| file.sync_all())
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
            let line = line_for(&note, &w.head);
            file.write_all(line.as_bytes())
                .and_then(|()| file.sync_all())
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

fn line_for(entry: &AuditRecord, prev: &[u8; 32]) -> String {
    format!(
        "{}\t{}\t{}\t{}\t{}\n",
        entry.at.as_millis(),
        clean(&entry.token),
        clean(&entry.stored_purpose()),
        clean(&entry.caller),
        base16ct::lower::encode_string(prev)
    )
}

impl AuditSink for AuditLog {
    fn record(&self, entry: &AuditRecord) -> Result<(), StoreError> {
        let mut tail = self.tail.lock().unwrap_or_else(PoisonError::into_inner);
        let tail = &mut *tail;
        // Across processes: one appender at a time, and the head as the file has it now.
        tail.file.lock().map_err(io("lock audit log"))?;
        let appended = (|| {
            let len = tail
                .file
                .metadata()
                .map_err(io("read audit log length"))?
                .len();
            let head = if len == tail.len {
                tail.head
            } else {
                last_line_hash(&tail.file, &self.path, len)?
            };
            let line = line_for(entry, &head);
            // One write of the whole line, at the end (append mode), under the lock.
            (&tail.file)
                .write_all(line.as_bytes())
                .map_err(io("append audit record"))?;
            tail.len = len + line.len() as u64;
            tail.head = hash(line.as_bytes());
            Ok(())
        })();
        tail.file.unlock().map_err(io("unlock audit log"))?;
        appended
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
                Err(StoreError::Corrupt { .. })
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
        let torn = |r: Result<(), StoreError>| {
            matches!(r, Err(StoreError::TornAuditTail { torn_bytes: 23, .. }))
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
}
