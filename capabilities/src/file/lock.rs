//! The lock that serializes the processes sharing one user file: an OS file
//! lock (`flock` on Unix, `LockFileEx` on Windows) on a sibling lock file,
//! `<user_file>.lock`, taken around every read-modify-write of the user file
//! and of the revocations file, and shared around a reload of the revocations.
//!
//! The lock is on a file of its own because the user file is replaced by a
//! rename at every write: a lock on the user file would be a lock on an
//! inode that the next write unlinks.

use super::*;

/// The lock file of the user file at `path`: `.lock` appended.
pub(super) fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    path.with_file_name(name)
}

/// How the lock is held.
#[derive(Debug, Clone, Copy)]
pub(super) enum LockMode {
    /// For a read-modify-write: no other holder.
    Exclusive,
    /// For a read: no exclusive holder.
    Shared,
}

/// A held lock, released when dropped (closing the file releases it).
#[derive(Debug)]
pub(super) struct FileLock {
    _file: File,
}

/// Opens (creating it if needed) and locks the lock file, waiting on the
/// blocking pool for other holders to release it.
pub(super) async fn lock_file(path: &Path, mode: LockMode) -> Result<FileLock, Error> {
    let owned = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&owned)?;
        match mode {
            LockMode::Exclusive => file.lock()?,
            LockMode::Shared => file.lock_shared()?,
        }
        Ok(FileLock { _file: file })
    })
    .await
    .map_err(|e| {
        Error::unavailable(format!(
            "lock file {}: the lock was not taken",
            path.display()
        ))
        .with_source(e)
    })?
    .map_err(|e| file_io_error("lock file", path, "lock", e))
}
