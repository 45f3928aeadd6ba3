//! Atomic replacement of a file: written beside it, synced, renamed over
//! it, the directory synced.

use super::*;

/// Replaces `path` with `contents` atomically: a temporary file in the same
/// directory, synced, renamed over `path`, then the directory synced.
/// Returns the fingerprint of the new file.
pub(super) fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<Fingerprint> {
    let dir = parent_dir(path);
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?;
    let temp = dir.join(format!(
        ".{}.{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        // Keep the mode of the file being replaced.
        if let Ok(meta) = fs::metadata(path) {
            file.set_permissions(meta.permissions())?;
        }
        file.write_all(contents)?;
        file.sync_all()?;
        let fingerprint = Fingerprint::of(&file.metadata()?);
        drop(file);
        fs::rename(&temp, path)?;
        sync_dir(dir)?;
        Ok(fingerprint)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Makes a rename in `dir` durable.
#[cfg(unix)]
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Directories cannot be opened for syncing here; the rename is still atomic.
#[cfg(not(unix))]
pub(super) fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}
