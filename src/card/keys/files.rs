//! Secret files: the lock beside a key file, its mode check, and its atomic write.

use std::io::Write;
use std::path::Path;

use crate::card::Error;
use crate::secret::fill_random;

/// Holds the key file's lock until dropped.
pub(super) struct KeyFileLock(std::fs::File);

impl Drop for KeyFileLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// Locks `<file>.lock` beside `path` (exclusive for changes, shared for reads). The lock
/// file is never replaced, so every process locks the same one, unlike the key file
/// itself, which each change replaces by a rename.
pub(super) fn lock_beside(path: &Path, exclusive: bool) -> Result<KeyFileLock, Error> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options
        .open(path.with_file_name(name))
        .map_err(Error::KeyFile)?;
    if exclusive {
        file.lock().map_err(Error::KeyFile)?;
    } else {
        file.lock_shared().map_err(Error::KeyFile)?;
    }
    Ok(KeyFileLock(file))
}

/// Refuses a secret file its group or others may read or write.
pub(super) fn check_mode(path: &Path) -> Result<(), Error> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(Error::KeyFile)?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(Error::KeyFileTooOpen { mode: mode & 0o777 });
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Replaces `path` with `text` (mode 0600) through a synced temporary and a rename.
pub(super) fn write_secret_file(path: &Path, text: &str) -> Result<(), Error> {
    // A unique name, created new: never a stale or planted file (whose mode and
    // owner it would keep), never another key file's temporary.
    let mut nonce = [0u8; 12];
    fill_random(&mut nonce)?;
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(format!(".{}.tmp", base16ct::lower::encode_string(&nonce)));
    let tmp = path.with_file_name(name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp).map_err(Error::KeyFile)?;
    let written = file
        .write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::KeyFile(e));
    }
    sync_dir(path)
}

/// Syncs the directory holding `path`, so the rename survives a power loss.
fn sync_dir(path: &Path) -> Result<(), Error> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(Error::KeyFile)?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
