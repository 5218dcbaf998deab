//! The offline index: Pwned Passwords' text files compiled into one sorted binary file,
//! read with positioned reads.
//!
//! Layout (all integers little-endian unless said):
//!
//! | bytes | content |
//! |---|---|
//! | 8 | magic `SSPWND01` |
//! | 8 | record count `n` |
//! | 1 + 7 | fan-out bits `b` (0 to 20), then zeros |
//! | 12 × `n` | records sorted by key: the first 8 bytes of the SHA-1 (big-endian, so bytes sort as numbers), then the count (u32, saturated) |
//! | 8 × (2^`b` + 1) | fan-out: the index of the first record whose key's top `b` bits are ≥ each value, then `n` |
//!
//! A lookup reads two fan-out entries (16 bytes), narrows a large bucket with 12-byte reads
//! and reads the last at most [`SCAN_RECORDS`] records in one read: a few positioned
//! reads, no memory map (the crate forbids `unsafe`) and no memory beyond one small buffer.
//! Truncating SHA-1 to 64 bits merges two corpus entries, or answers for a password
//! outside the corpus, with probability about `n / 2^64` (5 × 10^-11 for a billion hashes).

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::password::{BreachLookupError, BreachedPasswords, PwnedDigest};

use super::Error;

const MAGIC: &[u8; 8] = b"SSPWND01";
const HEADER_LEN: usize = 24;
const RECORD_LEN: usize = 12;
const HEADER: u64 = HEADER_LEN as u64;
const RECORD: u64 = RECORD_LEN as u64;
/// The most fan-out bits: 2^20 + 1 entries (8 MiB in the file, nothing in memory).
const MAX_BITS: u8 = 20;
/// Records per fan-out bucket the builder aims for.
const BUCKET_TARGET: u64 = 16;
/// A lookup narrows a bucket with single-record reads until at most this many remain,
/// then reads them at once (768 bytes).
pub const SCAN_RECORDS: u64 = SCAN_LEN as u64;
const SCAN_LEN: usize = 64;

/// What [`build_index`] read and wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BuildReport {
    /// Range files read (one for the single-file form).
    pub files: u64,
    /// Hash lines read, padding included.
    pub lines: u64,
    /// Lines with a count of 0 (the range API's padding), left out.
    pub padding: u64,
    /// Records in the index (entries whose first 64 bits coincide are merged, counts added).
    pub records: u64,
    /// The index file's size.
    pub bytes: u64,
    /// Fan-out bits chosen.
    pub fanout_bits: u8,
}

/// Compiles Pwned Passwords text data into an index at `output`.
///
/// `input` is either
/// - a directory of range files as the official downloader writes them (one file per
///   5-hex-digit prefix, named `XXXXX.txt`, lines `<35 hex digits>:<count>`); other file
///   names are an error, so a wrong folder is not silently half-read; or
/// - one file of whole hashes, `<40 hex digits>:<count>`, sorted by hash (the downloader's
///   single-file output, and the published "ordered by hash" file).
///
/// Lines may end in CRLF; hex digits may be either case; count-0 lines (padding) are
/// skipped. The index is written to `<output>.tmp`, synced and renamed over `output`, so a
/// crash never leaves a half-written index under the final name, and a server that has
/// the old index open keeps reading it until it reopens. Run one build per output at a
/// time (they share the temporary name). Memory: 4 MiB of counters plus one range file.
///
/// # Errors
/// [`Error::Io`] naming the file, [`Error::BadLine`] with the file and line number,
/// [`Error::NotSorted`] when the single file is out of order.
///
/// # Examples
/// ```
/// use shopsafe::pwned::{build_index, PwnedIndex};
/// use shopsafe::password::{BreachedPasswords, PwnedDigest};
///
/// let dir = tempfile::tempdir()?;
/// let ranges = dir.path().join("ranges");
/// std::fs::create_dir(&ranges)?;
/// // SHA-1("password") = 5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8
/// std::fs::write(ranges.join("5BAA6.txt"), "1E4C9B93F3F0682250B6CF8331B7EE68FD8:52256179\r\n")?;
/// let report = build_index(&ranges, &dir.path().join("pwned.idx"))?;
/// assert_eq!(report.records, 1);
/// let index = PwnedIndex::open(&dir.path().join("pwned.idx"))?;
/// assert_eq!(index.times_seen(&PwnedDigest::of(b"password"))?, 52_256_179);
/// assert_eq!(index.times_seen(&PwnedDigest::of(b"walnut cobbler lantern river"))?, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn build_index(input: &Path, output: &Path) -> Result<BuildReport, Error> {
    let tmp = {
        let mut name = output.as_os_str().to_owned();
        name.push(".tmp");
        PathBuf::from(name)
    };
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    let file = File::create(&tmp).map_err(io(&tmp))?;
    let mut writer = Writer {
        out: BufWriter::with_capacity(1 << 20, file),
        counters: vec![0u32; 1 << MAX_BITS],
        pending: None,
        records: 0,
        report: BuildReport::default(),
    };
    writer.out.write_all(&[0; HEADER_LEN]).map_err(io(&tmp))?;
    let built = if input.is_dir() {
        build_from_ranges(input, &mut writer)
    } else {
        build_from_single(input, &mut writer)
    };
    let finished = built.and_then(|()| writer.finish(&tmp));
    match finished {
        Ok(mut report) => {
            std::fs::rename(&tmp, output).map_err(io(output))?;
            // The rename itself survives a power cut only once its folder is synced.
            #[cfg(unix)]
            if let Some(dir) = output.parent().filter(|d| !d.as_os_str().is_empty()) {
                File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(io(dir))?;
            }
            report.bytes = std::fs::metadata(output).map_err(io(output))?.len();
            Ok(report)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

struct Writer {
    out: BufWriter<File>,
    counters: Vec<u32>,
    pending: Option<(u64, u64)>,
    records: u64,
    report: BuildReport,
}

impl Writer {
    /// Adds one record; keys must come in non-decreasing order (the callers check).
    fn push(&mut self, key: u64, count: u64) -> std::io::Result<()> {
        match &mut self.pending {
            Some((k, c)) if *k == key => *c = c.saturating_add(count),
            _ => {
                if let Some((k, c)) = self.pending.take() {
                    self.emit(k, c)?;
                }
                self.pending = Some((key, count));
            }
        }
        Ok(())
    }

    fn emit(&mut self, key: u64, count: u64) -> std::io::Result<()> {
        let mut record = [0u8; RECORD_LEN];
        record[..8].copy_from_slice(&key.to_be_bytes());
        let count = u32::try_from(count).unwrap_or(u32::MAX);
        record[8..].copy_from_slice(&count.to_le_bytes());
        self.out.write_all(&record)?;
        // Top 20 bits of the key: the bucket at the finest fan-out.
        let bucket = usize::try_from(key >> (64 - u32::from(MAX_BITS))).unwrap_or(0);
        self.counters[bucket] = self.counters[bucket].saturating_add(1);
        self.records += 1;
        Ok(())
    }

    fn finish(mut self, tmp: &Path) -> Result<BuildReport, Error> {
        let io = |source| Error::Io {
            path: tmp.to_path_buf(),
            source,
        };
        if let Some((k, c)) = self.pending.take() {
            self.emit(k, c).map_err(io)?;
        }
        let n = self.records;
        let mut bits = 0u8;
        while bits < MAX_BITS && (n >> bits) > BUCKET_TARGET {
            bits += 1;
        }
        // Cumulative starts at `bits` from the 20-bit counters.
        let group = 1usize << (MAX_BITS - bits);
        let mut start = 0u64;
        for chunk in self.counters.chunks(group) {
            self.out.write_all(&start.to_le_bytes()).map_err(io)?;
            start += chunk.iter().map(|&c| u64::from(c)).sum::<u64>();
        }
        self.out.write_all(&start.to_le_bytes()).map_err(io)?;
        let mut header = [0u8; HEADER_LEN];
        header[..8].copy_from_slice(MAGIC);
        header[8..16].copy_from_slice(&n.to_le_bytes());
        header[16] = bits;
        let mut file = self.out.into_inner().map_err(|e| io(e.into_error()))?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.write_all(&header).map_err(io)?;
        file.sync_all().map_err(io)?;
        let mut report = self.report;
        report.records = n;
        report.fanout_bits = bits;
        Ok(report)
    }
}

fn build_from_ranges(dir: &Path, writer: &mut Writer) -> Result<(), Error> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        let prefix = path
            .file_stem()
            .and_then(|s| s.to_str())
            .filter(|s| s.len() == 5 && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_ascii_uppercase);
        match prefix {
            Some(prefix) => files.push((prefix, path)),
            None => {
                return Err(Error::BadLine {
                    path,
                    line: 0,
                    reason: "not a range file: the name must be 5 hex digits, like 5BAA6.txt",
                });
            }
        }
    }
    files.sort();
    let mut entries: Vec<([u8; 20], u64)> = Vec::new();
    for (prefix, path) in files {
        entries.clear();
        writer.report.files += 1;
        for_each_line(&path, |line| {
            writer.report.lines += 1;
            let (digest, count) = parse_line(&prefix, line)?;
            if count == 0 {
                writer.report.padding += 1;
            } else {
                entries.push((digest, count));
            }
            Ok(())
        })?;
        entries.sort_unstable();
        for (digest, count) in &entries {
            writer.push(key_of(digest), *count).map_err(io(&path))?;
        }
    }
    Ok(())
}

fn build_from_single(path: &Path, writer: &mut Writer) -> Result<(), Error> {
    writer.report.files = 1;
    let mut last: Option<[u8; 20]> = None;
    for_each_line(path, |line| {
        writer.report.lines += 1;
        let (digest, count) = parse_line("", line)?;
        if last.is_some_and(|l| l > digest) {
            return Err(LineError::NotSorted);
        }
        last = Some(digest);
        if count == 0 {
            writer.report.padding += 1;
            Ok(())
        } else {
            writer.push(key_of(&digest), count).map_err(LineError::Io)
        }
    })
}

enum LineError {
    Bad(&'static str),
    NotSorted,
    Io(std::io::Error),
}

/// Calls `f(line without its end)` for each non-empty line; `f`'s error becomes an
/// [`Error`] naming the file and line.
fn for_each_line(
    path: &Path,
    mut f: impl FnMut(&str) -> Result<(), LineError>,
) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = BufReader::with_capacity(1 << 16, File::open(path).map_err(io)?);
    let mut line = String::new();
    let mut line_no = 0u64;
    loop {
        line.clear();
        // A line longer than any valid one is cut by `take` and refused as malformed.
        let read = (&mut reader).take(256).read_line(&mut line).map_err(io)?;
        if read == 0 {
            return Ok(());
        }
        line_no += 1;
        let trimmed = line.trim_end_matches(['\r', '\n']);
        if trimmed.is_empty() {
            continue;
        }
        f(trimmed).map_err(|e| match e {
            LineError::Bad(reason) => Error::BadLine {
                path: path.to_path_buf(),
                line: line_no,
                reason,
            },
            LineError::NotSorted => Error::NotSorted {
                path: path.to_path_buf(),
                line: line_no,
            },
            LineError::Io(source) => io(source),
        })?;
    }
}

/// One line `<hex>:<count>` after `prefix` (the range file's name, or nothing): the
/// whole digest and the count (saturated past u64: the corpus says "very often").
fn parse_line(prefix: &str, line: &str) -> Result<([u8; 20], u64), LineError> {
    let (hex, count) = line
        .split_once(':')
        .ok_or(LineError::Bad("expected <hex>:<count>"))?;
    let count = count.trim();
    if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
        return Err(LineError::Bad("the count is not a decimal number"));
    }
    if prefix.len() + hex.len() != 40 {
        return Err(LineError::Bad(if prefix.is_empty() {
            "a whole-hash line has 40 hex digits before the colon"
        } else {
            "a range file line has 35 hex digits before the colon"
        }));
    }
    let mut full = [0u8; 40];
    full[..prefix.len()].copy_from_slice(prefix.as_bytes());
    full[prefix.len()..].copy_from_slice(hex.as_bytes());
    let mut digest = [0u8; 20];
    base16ct::mixed::decode(full, &mut digest).map_err(|_| LineError::Bad("not hex"))?;
    Ok((digest, count.parse().unwrap_or(u64::MAX)))
}

fn key_of(digest: &[u8; 20]) -> u64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// An index built by [`build_index`], opened for lookups.
///
/// Lookups take `&self` and may run from many threads at once (positioned reads share
/// the file handle). Memory: the handle and three numbers.
///
/// # Examples
/// See [`build_index`].
#[derive(Debug)]
pub struct PwnedIndex {
    file: File,
    records: u64,
    bits: u8,
}

impl PwnedIndex {
    /// Opens an index and checks its header and size.
    ///
    /// # Errors
    /// [`Error::Io`], or [`Error::BadIndex`] when the file is not an index of this version
    /// or its size does not match its header (a truncated copy).
    pub fn open(path: &Path) -> Result<Self, Error> {
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let mut header = [0u8; HEADER_LEN];
        if len < HEADER {
            return Err(Error::BadIndex("shorter than its header".into()));
        }
        read_at(&file, &mut header, 0).map_err(io)?;
        if &header[..8] != MAGIC {
            return Err(Error::BadIndex(
                "not a shopsafe Pwned Passwords index (magic)".into(),
            ));
        }
        let mut n = [0u8; 8];
        n.copy_from_slice(&header[8..16]);
        let records = u64::from_le_bytes(n);
        let bits = header[16];
        if bits > MAX_BITS || header[17..].iter().any(|&b| b != 0) {
            return Err(Error::BadIndex("unknown header fields".into()));
        }
        let expected = records
            .checked_mul(RECORD)
            .and_then(|r| r.checked_add(HEADER))
            .and_then(|r| r.checked_add(8 * ((1u64 << bits) + 1)));
        if expected != Some(len) {
            return Err(Error::BadIndex(format!(
                "size {len} does not match {records} records (truncated or damaged)"
            )));
        }
        let index = Self {
            file,
            records,
            bits,
        };
        let (first, _) = index
            .bucket(0)
            .map_err(|e| Error::BadIndex(e.to_string()))?;
        if first != 0 {
            return Err(Error::BadIndex("fan-out does not start at 0".into()));
        }
        Ok(index)
    }

    /// Records in the index.
    #[must_use]
    pub const fn len(&self) -> u64 {
        self.records
    }

    /// Whether the index has no records.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.records == 0
    }

    fn fanout_offset(&self) -> u64 {
        HEADER + self.records * RECORD
    }

    /// The record range `[lo, hi)` of a fan-out bucket, checked.
    fn bucket(&self, bucket: u64) -> Result<(u64, u64), BreachLookupError> {
        let mut pair = [0u8; 16];
        read_at(&self.file, &mut pair, self.fanout_offset() + 8 * bucket)?;
        let mut lo = [0u8; 8];
        let mut hi = [0u8; 8];
        lo.copy_from_slice(&pair[..8]);
        hi.copy_from_slice(&pair[8..]);
        let (lo, hi) = (u64::from_le_bytes(lo), u64::from_le_bytes(hi));
        if lo > hi || hi > self.records {
            return Err(BreachLookupError::Corrupt(
                "fan-out entry out of range".into(),
            ));
        }
        Ok((lo, hi))
    }

    fn record(&self, at: u64) -> Result<(u64, u32), BreachLookupError> {
        let mut buf = [0u8; RECORD_LEN];
        read_at(&self.file, &mut buf, HEADER + at * RECORD)?;
        Ok(parse_record(&buf))
    }
}

fn parse_record(buf: &[u8]) -> (u64, u32) {
    let mut key = [0u8; 8];
    let mut count = [0u8; 4];
    key.copy_from_slice(&buf[..8]);
    count.copy_from_slice(&buf[8..12]);
    (u64::from_be_bytes(key), u32::from_le_bytes(count))
}

impl BreachedPasswords for PwnedIndex {
    /// A few positioned reads (BENCHMARKS.md, for the time).
    fn times_seen(&self, digest: &PwnedDigest) -> Result<u64, BreachLookupError> {
        let key = key_of(digest.as_bytes());
        let bucket = if self.bits == 0 {
            0
        } else {
            key >> (64 - u32::from(self.bits))
        };
        let (mut lo, mut hi) = self.bucket(bucket)?;
        while hi - lo > SCAN_RECORDS {
            let mid = lo + (hi - lo) / 2;
            let (at, count) = self.record(mid)?;
            match at.cmp(&key) {
                core::cmp::Ordering::Less => lo = mid + 1,
                core::cmp::Ordering::Greater => hi = mid,
                core::cmp::Ordering::Equal => return Ok(u64::from(count)),
            }
        }
        let mut buf = [0u8; SCAN_LEN * RECORD_LEN];
        let len = usize::try_from((hi - lo) * RECORD).unwrap_or(0);
        read_at(&self.file, &mut buf[..len], HEADER + lo * RECORD)?;
        let mut previous = None;
        for chunk in buf[..len].chunks_exact(RECORD_LEN) {
            let (at, count) = parse_record(chunk);
            if previous.is_some_and(|p| p > at) {
                return Err(BreachLookupError::Corrupt("records out of order".into()));
            }
            previous = Some(at);
            if at == key {
                return Ok(u64::from(count));
            }
        }
        Ok(0)
    }
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    while !buf.is_empty() {
        match std::os::windows::fs::FileExt::seek_read(file, buf, offset)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}
