//! The files: the log opened for appending, its lock, the `.checkpoints` beside it and
//! the anchor.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::audit::chain::AuditCheckpoint;
use crate::audit::error::AuditError;
use crate::persist::StoreError;

pub(super) fn io(operation: &'static str) -> impl FnOnce(std::io::Error) -> AuditError {
    move |e| {
        AuditError::Store(StoreError::Backend {
            operation,
            source: Box::new(e),
        })
    }
}

/// Opens (creating with mode 0600 if needed) for appending and reading.
pub(super) fn open_file(path: &Path) -> Result<File, AuditError> {
    let mut options = OpenOptions::new();
    options.read(true).append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(io("open audit log"))
}

/// `<file>.checkpoints`.
pub(super) fn checkpoint_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".checkpoints");
    PathBuf::from(name)
}

/// Checkpoint lines from `file` (none if there is no such file).
pub(super) fn read_checkpoints(file: &Path) -> Result<Vec<AuditCheckpoint>, AuditError> {
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
pub(super) fn write_anchor(
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
