//! The file store's revocations: an append-only log beside the user file
//! (`<user_file>.revoked`, one synced line per revocation, compacted when
//! mostly dead), and one-time values kept in memory.

use super::*;

/// Below this many one-time values, expired ones are not swept.
pub(super) const ONCE_SWEEP_FLOOR: usize = 1024;

/// The revocations file is compacted when its dead lines exceed this many
/// times the live entries...
pub(super) const COMPACT_FACTOR: usize = 2;

/// ...and this many lines.
pub(super) const COMPACT_FLOOR: usize = 128;

/// The ids in force, by kind.
#[derive(Default)]
pub(super) struct Revoked {
    /// Id -> expiry (Unix seconds): revocations, as the file holds them.
    pub(super) durable: HashMap<String, u64>,
    /// Id -> expiry: one-time values, in memory only.
    pub(super) once: HashMap<String, u64>,
    /// The size of `once` at which expired values are swept next.
    pub(super) once_sweep_at: usize,
}

impl Revoked {
    /// The expiry of `id` if it is in force at `now`.
    fn until(&self, id: &str, now: u64) -> Option<u64> {
        let durable = self.durable.get(id).copied().filter(|exp| *exp > now);
        let once = self.once.get(id).copied().filter(|exp| *exp > now);
        durable.max(once)
    }

    /// The latest expiry held (0: none).
    pub(super) fn latest(&self) -> u64 {
        self.durable
            .values()
            .chain(self.once.values())
            .copied()
            .max()
            .unwrap_or(0)
    }
}

/// What the revocations file holds, as far as appending to it goes.
pub(super) struct Log {
    /// Entry lines in the file (live or not).
    pub(super) lines: usize,
    /// Whether the file exists and is not empty.
    pub(super) started: bool,
    /// Whether the file ends with a line break (or is empty).
    pub(super) ends_with_newline: bool,
}

impl FileStore {
    /// The `revoked` lock.
    pub(super) fn revoked(&self) -> std::sync::MutexGuard<'_, Revoked> {
        self.revoked.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `id` is in force now; no lock while nothing is.
    pub(super) fn is_in_force(&self, id: &str) -> bool {
        let now = unix_now();
        if self.revoked_until.load(Ordering::SeqCst) <= now {
            return false;
        }
        self.revoked().until(id, now).is_some()
    }

    /// Records a revocation: appends it to the file, then installs it.
    async fn record_revocation(&self, id: &str, expires_at_unix: u64) -> Result<(), Error> {
        let mut log = self.revocation_log.lock().await;
        let now = unix_now();
        if expires_at_unix <= now {
            // Expired: nothing left to refuse.
            return Ok(());
        }
        // Other processes may append to the file or compact it: the append
        // (and a compaction) happen under the lock file's exclusive lock,
        // after reading the file as it is now, so that no process drops
        // another's revocations.
        let _lock = lock_file(&self.lock_path, LockMode::Exclusive).await?;
        self.reload_revocations(&mut log).await.map_err(|e| {
            Error::unavailable(format!(
                "{}; the revocation was refused so as not to overwrite the file",
                e.message()
            ))
            .with_source(e)
        })?;
        if self
            .revoked()
            .durable
            .get(id)
            .is_some_and(|exp| *exp >= expires_at_unix)
        {
            // Revoking again never shortens a revocation.
            return Ok(());
        }
        let mut line = String::new();
        if !log.started {
            line.push_str(REVOCATIONS_HEADER);
        } else if !log.ends_with_newline {
            line.push('\n');
        }
        let _ = writeln!(line, "{expires_at_unix} {id}");
        let path = self.revocations_path.clone();
        let created = !log.started;
        tokio::task::spawn_blocking(move || append_synced(&path, line.as_bytes(), created))
            .await
            .map_err(|e| {
                Error::unavailable(format!(
                    "{REVOCATIONS} {}: the write did not complete",
                    self.revocations_path.display()
                ))
                .with_source(e)
            })?
            .map_err(|e| file_io_error(REVOCATIONS, &self.revocations_path, "write", e))?;
        log.lines += 1;
        log.started = true;
        log.ends_with_newline = true;

        let (live, compacted) = {
            let mut revoked = self.revoked();
            self.revoked_until
                .fetch_max(expires_at_unix, Ordering::SeqCst);
            let until = revoked.durable.entry(id.to_owned()).or_insert(0);
            *until = (*until).max(expires_at_unix);
            let dead = log.lines.saturating_sub(revoked.durable.len());
            if dead <= COMPACT_FLOOR || dead <= COMPACT_FACTOR * revoked.durable.len() {
                return Ok(());
            }
            revoked.durable.retain(|_, exp| *exp > now);
            self.revoked_until.store(revoked.latest(), Ordering::SeqCst);
            (revoked.durable.len(), format_revocations(&revoked.durable))
        };
        // The revocation is durable already: a compaction that fails is logged
        // and tried again at the next revocation.
        let path = self.revocations_path.clone();
        match tokio::task::spawn_blocking(move || write_atomically(&path, compacted.as_bytes()))
            .await
        {
            Ok(Ok(fingerprint)) => {
                tracing::debug!(path = %self.revocations_path.display(), live, dropped = log.lines - live, "revocations file compacted");
                log.lines = live;
                *self.revocations_seen() = Some(fingerprint);
            }
            Ok(Err(e)) => {
                tracing::warn!(path = %self.revocations_path.display(), error = %e, "revocations file could not be compacted");
            }
            Err(e) => {
                tracing::warn!(path = %self.revocations_path.display(), error = %e, "revocations file compaction did not complete");
            }
        }
        Ok(())
    }

    /// The `revocations_seen` lock.
    fn revocations_seen(&self) -> std::sync::MutexGuard<'_, Option<Fingerprint>> {
        self.revocations_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the revocations file and installs what it holds, as the file is
    /// the record every process shares. The caller holds `revocation_log`
    /// and the lock file.
    async fn reload_revocations(&self, log: &mut Log) -> Result<(), Error> {
        let (durable, read, fingerprint) =
            read_revocations_in_background(self.revocations_path.clone()).await?;
        let mut revoked = self.revoked();
        self.revoked_until.fetch_max(
            durable.values().copied().max().unwrap_or(0),
            Ordering::SeqCst,
        );
        revoked.durable = durable;
        *log = read;
        *self.revocations_seen() = fingerprint;
        Ok(())
    }

    /// Whether `is_revoked` should look at the revocations file now.
    fn revocations_check_due(&self) -> bool {
        millis(self.opened.elapsed()) >= self.next_revocations_check.load(Ordering::Relaxed)
    }

    /// Reloads the revocations file if the interval has passed and it
    /// changed (another process revoked a token). Failures are logged and
    /// leave the revocations as they were.
    async fn refresh_revocations_if_due(&self) {
        if !self.revocations_check_due() {
            return;
        }
        self.next_revocations_check.store(
            millis(self.opened.elapsed()).saturating_add(millis(self.reload_interval)),
            Ordering::Relaxed,
        );
        // A revocation in progress reloads the file itself.
        let Ok(mut log) = self.revocation_log.try_lock() else {
            return;
        };
        let path = self.revocations_path.clone();
        let on_disk = match tokio::task::spawn_blocking(move || fs::metadata(path)).await {
            Ok(Ok(meta)) => Some(Fingerprint::of(&meta)),
            Ok(Err(e)) if e.kind() == io::ErrorKind::NotFound => None,
            Ok(Err(e)) => {
                tracing::warn!(path = %self.revocations_path.display(), error = %e, "revocations file could not be inspected; keeping the revocations known");
                return;
            }
            Err(e) => {
                tracing::warn!(path = %self.revocations_path.display(), error = %e, "revocations file inspection did not complete");
                return;
            }
        };
        if on_disk == *self.revocations_seen() {
            return;
        }
        // A shared lock: no append or compaction is half done while we read.
        let _lock = match lock_file(&self.lock_path, LockMode::Shared).await {
            Ok(lock) => lock,
            Err(e) => {
                tracing::warn!(error = %e, "keeping the revocations known");
                return;
            }
        };
        if let Err(e) = self.reload_revocations(&mut log).await {
            tracing::warn!(error = %e, "revocations file could not be reloaded; keeping the revocations known");
        }
    }

    /// Records a one-time value, in memory only; answers whether it was the first use.
    fn record_once(&self, id: &str, expires_at_unix: u64) -> bool {
        let mut revoked = self.revoked();
        let now = unix_now();
        if expires_at_unix <= now || revoked.until(id, now).is_some() {
            return false;
        }
        self.revoked_until
            .fetch_max(expires_at_unix, Ordering::SeqCst);
        revoked.once.insert(id.to_owned(), expires_at_unix);
        if revoked.once.len() >= revoked.once_sweep_at {
            revoked.once.retain(|_, exp| *exp > now);
            revoked.once_sweep_at = (revoked.once.len() * 2).max(ONCE_SWEEP_FLOOR);
            self.revoked_until.store(revoked.latest(), Ordering::SeqCst);
        }
        true
    }
}

impl RevocationStore for FileStore {
    fn revoke<'a>(&'a self, token_id: &'a str, expires_at_unix: u64) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            validate_name("token id", token_id)?;
            self.record_revocation(token_id, expires_at_unix).await
        })
    }

    fn is_revoked<'a>(&'a self, token_id: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            self.refresh_revocations_if_due().await;
            Ok(self.is_in_force(token_id))
        })
    }

    fn is_revoked_now(&self, token_id: &str) -> Option<bool> {
        // When the file is due a look, the caller asks `is_revoked`.
        (!self.revocations_check_due()).then(|| self.is_in_force(token_id))
    }

    fn revoke_once<'a>(&'a self, id: &'a str, expires_at_unix: u64) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            validate_name("id", id)?;
            Ok(self.record_once(id, expires_at_unix))
        })
    }
}

/// How messages name the revocations file.
pub(super) const REVOCATIONS: &str = "revocations file";

/// An I/O failure on the file `what`, as a 503.
pub(super) fn file_io_error(what: &str, path: &Path, doing: &str, e: io::Error) -> Error {
    Error::unavailable(format!("{what} {}: could not {doing} it", path.display())).with_source(e)
}

/// The revocations file of the user file at `path`: `.revoked` appended.
pub(super) fn revocations_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".revoked");
    path.with_file_name(name)
}

/// Reads the revocations file on the blocking pool, keeping the entries not
/// yet expired (an id listed twice keeps its later expiry), and describes the
/// file for appending, with the fingerprint of what was read; a missing file
/// holds none.
pub(super) async fn read_revocations_in_background(
    path: PathBuf,
) -> Result<(HashMap<String, u64>, Log, Option<Fingerprint>), Error> {
    let shown = path.clone();
    let read = tokio::task::spawn_blocking(move || {
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let fingerprint = Fingerprint::of(&file.metadata()?);
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(Some((bytes, fingerprint)))
    })
    .await
    .map_err(|e| {
        Error::unavailable(format!(
            "{REVOCATIONS} {}: the read did not complete",
            shown.display()
        ))
        .with_source(e)
    })?
    .map_err(|e| file_io_error(REVOCATIONS, &shown, "read", e))?;
    let (bytes, fingerprint) = match read {
        Some((bytes, fingerprint)) => (bytes, Some(fingerprint)),
        None => (Vec::new(), None),
    };
    let mut revoked = parse_revocations(&bytes).map_err(|(line, reason)| {
        Error::config(format!(
            "{REVOCATIONS} {}: line {line}: {reason}",
            shown.display()
        ))
    })?;
    let log = Log {
        lines: count_entry_lines(&bytes),
        started: !bytes.is_empty(),
        ends_with_newline: bytes.last().is_none_or(|b| *b == b'\n'),
    };
    let now = unix_now();
    revoked.retain(|_, exp| *exp > now);
    Ok((revoked, log, fingerprint))
}

/// The number of entry lines (neither blank nor comments) in a revocations
/// file that parsed.
pub(super) fn count_entry_lines(bytes: &[u8]) -> usize {
    bytes
        .split(|b| *b == b'\n')
        .filter(|line| !line.trim_ascii().is_empty() && !line.starts_with(b"#"))
        .count()
}

/// Appends `bytes` to the file at `path` (created if missing) and syncs it;
/// `created`: also sync the directory, so that the new file's name is durable.
pub(super) fn append_synced(path: &Path, bytes: &[u8], created: bool) -> io::Result<()> {
    let mut file = OpenOptions::new().append(true).create(true).open(path)?;
    file.write_all(bytes)?;
    file.sync_data()?;
    if created {
        sync_dir(parent_dir(path))?;
    }
    Ok(())
}

/// Parses the revocations file: `<expires_at_unix> <id>` per line, blank
/// lines and `#` comments skipped. A failure gives the 1-based line and why.
pub(super) fn parse_revocations(bytes: &[u8]) -> Result<HashMap<String, u64>, (usize, String)> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        (line, "the line is not UTF-8 text".to_owned())
    })?;
    let mut revoked = HashMap::new();
    for (index, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let fail = |reason: String| (index + 1, reason);
        let (expiry, id) = line
            .split_once(' ')
            .ok_or_else(|| fail("expected `<expires_at_unix> <id>`".to_owned()))?;
        if expiry.is_empty() || !expiry.bytes().all(|b| b.is_ascii_digit()) {
            return Err(fail(
                "the expiry is not a whole number of seconds since the Unix epoch".to_owned(),
            ));
        }
        let expiry: u64 = expiry
            .parse()
            .map_err(|_| fail("the expiry is out of range".to_owned()))?;
        validate_name("id", id).map_err(|e| fail(e.message().to_owned()))?;
        let until = revoked.entry(id.to_owned()).or_insert(expiry);
        *until = (*until).max(expiry);
    }
    Ok(revoked)
}

/// The first line of a revocations file this store starts.
pub(super) const REVOCATIONS_HEADER: &str = "# <expires_at_unix> <id>\n";

/// The revocations file's text, sorted by id.
pub(super) fn format_revocations(revoked: &HashMap<String, u64>) -> String {
    let mut entries: Vec<(&String, &u64)> = revoked.iter().collect();
    entries.sort_unstable();
    let mut text = String::from(REVOCATIONS_HEADER);
    for (id, expiry) in entries {
        let _ = writeln!(text, "{expiry} {id}");
    }
    text
}
