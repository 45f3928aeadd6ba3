//! [`FileStore`]: the user file, a YAML mapping from user to capability names
//! (easy-oauth's `caps.yaml`), kept in memory, written atomically and reloaded
//! when edited by hand; and its sibling revocations file.
//!
//! This file holds the store and its user file; `file/revocations.rs` the
//! revocations log and one-time values; `file/atomic.rs` atomic writes.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use portcullis_core::Error;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::memory::unix_now;
use crate::store::{
    CapabilityStore, Change, ChangeCheck, Modified, RevocationStore, StoreFuture, normalize,
    validate_name, validate_update,
};

mod atomic;
mod lock;
mod revocations;

use atomic::*;
use lock::*;
use revocations::*;

/// How often, at most, `get` and `list` look at the file for hand edits by default.
pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// Names temporary files uniquely within the process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Capabilities kept in a YAML file, one mapping entry per user:
///
/// ```yaml
/// your-email@you.com:
///   - admin
/// friend@rainbows.com: [moderate, announce]
/// hateful-being@cornhole.co: []
/// ```
///
/// An empty file holds no users, and so does a missing one: it is created on
/// the first update (its directory must exist). Opening logs the file in
/// use (its absolute path) and how many users it holds, at `info`; a
/// missing file is logged at `warn`, since a mistyped path would otherwise
/// silently mean that nobody holds anything. Every value must be a list of
/// strings; a file that does not parse is refused as a whole.
///
/// - **Reads** are served from memory. At most once per reload interval
///   (default [`DEFAULT_RELOAD_INTERVAL`]), `get` and `list` compare the file's
///   modification time and length with those last loaded, and reload it when
///   they differ, so hand edits apply without a restart. A file that fails to
///   parse is logged (`tracing::warn!`, with its line and reason) and the store
///   keeps serving what it had; [`FileStore::reload`] returns that error.
/// - **Updates** are serialized within the process, and across the processes
///   of one host that share the file by an OS file lock (`flock` on Unix) on
///   a sibling lock file, the user file's path with `.lock` appended
///   (`caps.yaml.lock`, created on the first write). Under that lock each one
///   reads the file as it is now (and is refused, kind `Unavailable`, while
///   the file does not parse, so that a hand edit is never overwritten),
///   checks and applies the change, then writes a temporary file in the same
///   directory, syncs it, renames it over the file and syncs the directory:
///   readers of the file see the old content or the new one, never a mix,
///   and no process's update is lost to another's. Comments and formatting
///   are not kept.
///
/// It is also a [`RevocationStore`]. Revocations ([`revoke`](RevocationStore::revoke))
/// outlive restarts: they are kept in a sibling file, the user file's path
/// with `.revoked` appended (`caps.yaml.revoked`), one entry per line:
///
/// ```text
/// # <expires_at_unix> <id>
/// 1767225600 7f3c0d4e-jti
/// 1767229200 another token id
/// ```
///
/// The expiry (seconds since the Unix epoch) comes first; the id is the rest
/// of the line after one space, verbatim. Blank lines and lines starting with
/// `#` are skipped; an id listed twice keeps its later expiry.
///
/// - The revocations file is read when the store opens; a missing file
///   holds no revocations. A file that does not parse fails the opening with
///   an error of kind `Config` naming the file and the line: revocations are
///   never dropped silently. Like the user file, it is read again when it
///   changed (another process revoked a token), looked at at most once per
///   reload interval, under the lock file's shared lock.
/// - Checks are served from memory, and take no lock while no revocation or
///   one-time value is in force.
/// - The file is an append-only log: each new revocation appends one line
///   and syncs the file, and is in force only once that is done (a write
///   that fails is `Unavailable`, and nothing is recorded). Revocations are
///   serialized among themselves only, and across processes by the lock
///   file: each reads the file as it is under the exclusive lock before
///   appending, so a compaction never drops another process's revocations. When the lines that no longer count
///   (expired, or repeated for an id revoked again for longer) outnumber the
///   live ones by more than twice, and by more than 128 lines, the file is
///   compacted: rewritten whole, atomically as above, with the live entries
///   only.
///
/// One-time values ([`revoke_once`](RevocationStore::revoke_once): login
/// transactions, ended sessions) are kept **in memory only**: used on every
/// login, they never cost a write to disk, and a flood of them never holds up
/// a revocation. They share their namespace with revocations as the trait
/// requires, within the process: a restart forgets the values used before
/// it, whose own short expiry then bounds how long they could be used again.
///
/// A `FileStore` serves the processes of **one host** that share the file
/// (several workers of one service, or a restart overlapping the old
/// process): every grant, removal and revocation made through one is kept,
/// and the others apply it within their reload interval. It does not serve
/// replicas on several hosts (a network file system's locks are not relied
/// on), and one-time values stay per process: a login transaction could be
/// completed once per process, its own short expiry bounding it. Use
/// [`RedisStore`](crate::RedisStore) where replicas on several hosts must
/// agree at once.
///
/// ```
/// # async fn run() -> Result<(), portcullis_core::Error> {
/// use portcullis_capabilities::{CapabilityStore, Change, FileStore};
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("caps.yaml");
/// std::fs::write(&path, "alice@example.com: [write, read]\nbob@example.com: []\n").unwrap();
///
/// let store = FileStore::open(&path).await?;
/// assert_eq!(store.get("alice@example.com").await?.unwrap(), ["read", "write"]);
/// assert_eq!(store.get("bob@example.com").await?, Some(vec![]));
/// store.update("bob@example.com", Change::Add("read".into())).await?;
/// assert!(std::fs::read_to_string(&path).unwrap().contains("bob@example.com:\n- read"));
/// # Ok(()) }
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(run()).unwrap();
/// ```
pub struct FileStore {
    path: PathBuf,
    reload_interval: Duration,
    state: RwLock<Loaded>,
    /// When `get` or `list` may look at the file next.
    next_check: Mutex<Instant>,
    /// Serializes updates and reloads.
    writer: tokio::sync::Mutex<()>,
    /// The revocations file.
    revocations_path: PathBuf,
    /// Revocations and one-time values in force.
    revoked: Mutex<Revoked>,
    /// The latest expiry among the entries of `revoked` (0: none). Raised
    /// under the `revoked` lock before an entry is installed, lowered only by
    /// a sweep or compaction (under the lock) to the latest that remains:
    /// once the clock reaches it, nothing is revoked, and checks take no lock.
    revoked_until: AtomicU64,
    /// Serializes revocations (check, append, install, compaction); one-time
    /// values never take it.
    revocation_log: tokio::sync::Mutex<Log>,
    /// The lock file shared with the other processes using the user file.
    lock_path: PathBuf,
    /// The revocations file as last read; `None`: there was none.
    revocations_seen: Mutex<Option<Fingerprint>>,
    /// When `is_revoked` may look at the revocations file next, in
    /// milliseconds since `opened`.
    next_revocations_check: AtomicU64,
    /// The origin of `next_revocations_check`.
    opened: Instant,
}

/// What was loaded last.
#[derive(Debug, Default)]
struct Loaded {
    users: BTreeMap<String, Vec<String>>,
    /// The file the users came from; `None`: there was no file.
    fingerprint: Option<Fingerprint>,
    /// A version of the file that failed to parse, so that it is not parsed
    /// (and logged) again until it changes.
    refused: Option<Fingerprint>,
}

/// What identifies a version of the file, cheaply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    modified: Option<SystemTime>,
    len: u64,
    #[cfg(unix)]
    inode: u64,
}

impl Fingerprint {
    fn of(meta: &fs::Metadata) -> Self {
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt;
        Self {
            modified: meta.modified().ok(),
            len: meta.len(),
            #[cfg(unix)]
            inode: meta.ino(),
        }
    }
}

/// Why the file could not be loaded.
enum LoadError {
    Io(io::Error),
    Parse {
        fingerprint: Fingerprint,
        error: ParseError,
    },
}

/// A file that does not hold a mapping of users to lists of capability names.
#[derive(Debug)]
struct ParseError {
    /// 1-based line and column, when the parser knows them.
    location: Option<(usize, usize)>,
    reason: String,
}

impl ParseError {
    fn to_error(&self, path: &Path) -> Error {
        let message = match self.location {
            Some((line, column)) => format!(
                "capabilities file {}: line {line}, column {column}: {}",
                path.display(),
                self.reason
            ),
            None => format!("capabilities file {}: {}", path.display(), self.reason),
        };
        Error::config(message)
    }
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let users = self
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .users
            .len();
        let (revoked, once) = {
            let revoked = self.revoked.lock().unwrap_or_else(PoisonError::into_inner);
            (revoked.durable.len(), revoked.once.len())
        };
        // Counts only, never ids or names' contents.
        f.debug_struct("FileStore")
            .field("path", &self.path)
            .field("reload_interval", &self.reload_interval)
            .field("users", &users)
            .field("revocations_path", &self.revocations_path)
            .field("revocations", &revoked)
            .field("one_time_values", &once)
            .finish()
    }
}

impl FileStore {
    /// Opens the user file at `path`, checking for hand edits at most once per
    /// [`DEFAULT_RELOAD_INTERVAL`].
    ///
    /// A missing file is no error (it holds no users), nor is a missing
    /// revocations file. Fails with kind `Config` if the user file or the
    /// revocations file does not parse or the directory does not exist, and
    /// with kind `Unavailable` if either cannot be read.
    pub async fn open(path: impl Into<PathBuf>) -> Result<Self, Error> {
        Self::open_with_reload_interval(path, DEFAULT_RELOAD_INTERVAL).await
    }

    /// Like [`open`](Self::open), looking at the file for hand edits at most
    /// once per `reload_interval` (zero: on every `get` and `list`).
    pub async fn open_with_reload_interval(
        path: impl Into<PathBuf>,
        reload_interval: Duration,
    ) -> Result<Self, Error> {
        let path = path.into();
        let dir = parent_dir(&path).to_owned();
        if path.file_name().is_none() {
            return Err(Error::config(format!(
                "capabilities file {}: the path names no file",
                path.display()
            )));
        }
        match tokio::fs::metadata(&dir).await {
            Ok(meta) if meta.is_dir() => {}
            _ => {
                return Err(Error::config(format!(
                    "capabilities file {}: the directory {} does not exist",
                    path.display(),
                    dir.display()
                )));
            }
        }
        let shown = std::path::absolute(&path).unwrap_or_else(|_| path.clone());
        let loaded = match read_in_background(path.clone()).await? {
            Ok(Some((fingerprint, users))) => {
                tracing::info!(
                    path = %shown.display(),
                    users = users.len(),
                    "capabilities file in use"
                );
                Loaded {
                    users,
                    fingerprint: Some(fingerprint),
                    refused: None,
                }
            }
            Ok(None) => {
                tracing::warn!(
                    path = %shown.display(),
                    "the capabilities file does not exist: no user holds a stored capability \
                     until one is granted, which creates it; if users were expected, check \
                     `capabilities.user_file` (a relative path is taken beside the \
                     configuration file)"
                );
                Loaded::default()
            }
            Err(LoadError::Parse { error, .. }) => return Err(error.to_error(&path)),
            Err(LoadError::Io(e)) => return Err(io_error(&path, "read", e)),
        };
        let revocations_path = revocations_path(&path);
        let (durable, log, seen) = read_revocations_in_background(revocations_path.clone()).await?;
        let revoked = Revoked {
            durable,
            once: HashMap::new(),
            once_sweep_at: ONCE_SWEEP_FLOOR,
        };
        let revoked_until = AtomicU64::new(revoked.latest());
        Ok(Self {
            lock_path: lock_path(&path),
            path,
            reload_interval,
            state: RwLock::new(loaded),
            next_check: Mutex::new(Instant::now() + reload_interval),
            writer: tokio::sync::Mutex::new(()),
            revocations_path,
            revoked: Mutex::new(revoked),
            revoked_until,
            revocation_log: tokio::sync::Mutex::new(log),
            revocations_seen: Mutex::new(seen),
            next_revocations_check: AtomicU64::new(millis(reload_interval)),
            opened: Instant::now(),
        })
    }

    /// The lock file's path: the user file's with `.lock` appended. Every
    /// process using the user file takes an OS lock on it around each
    /// read-modify-write.
    pub fn lock_path(&self) -> &Path {
        &self.lock_path
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The revocations file's path: the user file's with `.revoked` appended.
    pub fn revocations_path(&self) -> &Path {
        &self.revocations_path
    }

    /// Reads the file now, whether or not it changed.
    ///
    /// On success the store serves the file's content. If the file does not
    /// parse, the store keeps what it had and this returns an error of kind
    /// `Config` naming the path, the line and the reason; if it cannot be
    /// read, an error of kind `Unavailable`. A missing file holds no users.
    pub async fn reload(&self) -> Result<(), Error> {
        let _writer = self.writer.lock().await;
        self.load().await
    }

    /// Reads and installs the file; the caller holds `writer`.
    async fn load(&self) -> Result<(), Error> {
        match read_in_background(self.path.clone()).await? {
            Ok(found) => {
                let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
                match found {
                    Some((fingerprint, users)) => {
                        tracing::debug!(path = %self.path.display(), users = users.len(), "capabilities file loaded");
                        state.users = users;
                        state.fingerprint = Some(fingerprint);
                    }
                    None => {
                        if state.fingerprint.is_some() {
                            tracing::warn!(path = %self.path.display(), "capabilities file removed; no user holds a capability now");
                        }
                        state.users = BTreeMap::new();
                        state.fingerprint = None;
                    }
                }
                state.refused = None;
                Ok(())
            }
            Err(LoadError::Parse { fingerprint, error }) => {
                let (line, column) = error.location.unwrap_or((0, 0));
                tracing::warn!(
                    path = %self.path.display(),
                    line,
                    column,
                    reason = %error.reason,
                    "capabilities file refused; keeping the previous content"
                );
                self.state
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .refused = Some(fingerprint);
                Err(error.to_error(&self.path))
            }
            Err(LoadError::Io(e)) => {
                tracing::warn!(path = %self.path.display(), error = %e, "capabilities file could not be read; keeping the previous content");
                Err(io_error(&self.path, "read", e))
            }
        }
    }

    /// The file's fingerprint on disk, `None` if it does not exist.
    async fn fingerprint_on_disk(&self) -> Result<Option<Fingerprint>, Error> {
        match tokio::fs::metadata(&self.path).await {
            Ok(meta) => Ok(Some(Fingerprint::of(&meta))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(&self.path, "inspect", e)),
        }
    }

    /// Reloads the file if the interval has passed and it changed. Failures
    /// are logged and leave the state as it was.
    async fn refresh_if_due(&self) {
        {
            let mut next = self
                .next_check
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            if now < *next {
                return;
            }
            *next = now + self.reload_interval;
        }
        // An update in progress brings the state up to date itself.
        let Ok(_writer) = self.writer.try_lock() else {
            return;
        };
        let on_disk = match self.fingerprint_on_disk().await {
            Ok(fingerprint) => fingerprint,
            Err(e) => {
                tracing::warn!(error = %e, "keeping the previous capabilities");
                return;
            }
        };
        {
            let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
            if on_disk == state.fingerprint || (on_disk.is_some() && on_disk == state.refused) {
                return;
            }
        }
        // `load` logs its own failures.
        let _ = self.load().await;
    }

    async fn apply(
        &self,
        user: &str,
        change: Change,
        check: &ChangeCheck<'_>,
    ) -> Result<Modified, Error> {
        validate_update(user, &change)?;
        let _writer = self.writer.lock().await;
        // Other processes may write the file too: the read, the check and
        // the write happen under the lock file's exclusive lock, starting
        // from the file as it is now. A hand edit that does not parse is
        // never written over.
        let _lock = lock_file(&self.lock_path, LockMode::Exclusive).await?;
        self.load().await.map_err(|e| {
            Error::unavailable(format!(
                "{}; the update was refused so as not to overwrite the file",
                e.message()
            ))
            .with_source(e)
        })?;

        let mut users = self
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .users
            .clone();
        // Checked against the file as just loaded, under the writer lock.
        let before = users.get(user).cloned();
        check(before.as_deref())?;
        let after = change.apply(before.clone());
        let Some(caps) = after.clone() else {
            return Ok(Modified { before, after });
        };
        if before.as_ref() == Some(&caps) {
            return Ok(Modified { before, after });
        }
        users.insert(user.to_owned(), caps);

        let text = serde_yaml_ng::to_string(&users).map_err(|e| {
            Error::unavailable(format!(
                "capabilities file {}: the users could not be serialized",
                self.path.display()
            ))
            .with_source(e)
        })?;
        let path = self.path.clone();
        let written = tokio::task::spawn_blocking(move || write_atomically(&path, text.as_bytes()))
            .await
            .map_err(|e| {
                Error::unavailable(format!(
                    "capabilities file {}: the write did not complete",
                    self.path.display()
                ))
                .with_source(e)
            })?
            .map_err(|e| io_error(&self.path, "write", e))?;

        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        state.users = users;
        state.fingerprint = Some(written);
        state.refused = None;
        Ok(Modified { before, after })
    }
}

impl CapabilityStore for FileStore {
    fn get<'a>(&'a self, user: &'a str) -> StoreFuture<'a, Option<Vec<String>>> {
        Box::pin(async move {
            self.refresh_if_due().await;
            let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
            Ok(state.users.get(user).cloned())
        })
    }

    fn list(&self) -> StoreFuture<'_, BTreeMap<String, Vec<String>>> {
        Box::pin(async move {
            self.refresh_if_due().await;
            let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
            Ok(state.users.clone())
        })
    }

    fn modify<'a>(
        &'a self,
        user: &'a str,
        change: Change,
        check: &'a ChangeCheck<'a>,
    ) -> StoreFuture<'a, Modified> {
        Box::pin(self.apply(user, change, check))
    }
}

/// A duration in whole milliseconds, saturated.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// An I/O failure on the user file, as a 503.
fn io_error(path: &Path, doing: &str, e: io::Error) -> Error {
    file_io_error("capabilities file", path, doing, e)
}

/// The directory holding `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// The users of the user file at `path` (none if it does not exist); kind
/// `Config` if it does not parse, `Unavailable` if it cannot be read.
/// Read to seed an empty Redis store.
#[cfg(feature = "redis")]
pub(crate) async fn read_user_file(path: &Path) -> Result<BTreeMap<String, Vec<String>>, Error> {
    match read_in_background(path.to_owned()).await? {
        Ok(Some((_, users))) => Ok(users),
        Ok(None) => Ok(BTreeMap::new()),
        Err(LoadError::Parse { error, .. }) => Err(error.to_error(path)),
        Err(LoadError::Io(e)) => Err(io_error(path, "read", e)),
    }
}

type ReadOutcome = Result<Option<(Fingerprint, BTreeMap<String, Vec<String>>)>, LoadError>;

/// Reads and parses the file on the blocking pool.
async fn read_in_background(path: PathBuf) -> Result<ReadOutcome, Error> {
    let shown = path.display().to_string();
    tokio::task::spawn_blocking(move || read_file(&path))
        .await
        .map_err(|e| {
            Error::unavailable(format!(
                "capabilities file {shown}: the read did not complete"
            ))
            .with_source(e)
        })
}

/// Reads and parses the file; `Ok(None)` if it does not exist.
fn read_file(path: &Path) -> ReadOutcome {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LoadError::Io(e)),
    };
    // The fingerprint of the open file is that of the content read from it.
    let fingerprint = Fingerprint::of(&file.metadata().map_err(LoadError::Io)?);
    let mut text = String::new();
    if let Err(e) = file.read_to_string(&mut text) {
        if e.kind() != io::ErrorKind::InvalidData {
            return Err(LoadError::Io(e));
        }
        let error = ParseError {
            location: None,
            reason: "the file is not UTF-8 text".to_owned(),
        };
        return Err(LoadError::Parse { fingerprint, error });
    }
    match parse(&text) {
        Ok(users) => Ok(Some((fingerprint, users))),
        Err(error) => Err(LoadError::Parse { fingerprint, error }),
    }
}

/// Parses the user file: a mapping from user to a list of capability names.
fn parse(text: &str) -> Result<BTreeMap<String, Vec<String>>, ParseError> {
    let parsed = if text.trim().is_empty() {
        BTreeMap::new()
    } else {
        serde_yaml_ng::from_str::<UserFile>(text)
            .map_err(|e| {
                let location = e.location().map(|l| (l.line(), l.column()));
                let mut reason = e.to_string();
                // The location is reported apart; drop its first repetition.
                if let Some((line, column)) = location {
                    reason = reason.replacen(&format!(" at line {line} column {column}"), "", 1);
                }
                ParseError { location, reason }
            })?
            .0
    };
    let mut users = BTreeMap::new();
    for (user, caps) in parsed {
        let invalid = |e: Error| ParseError {
            location: None,
            reason: format!("user `{user}`: {}", e.message()),
        };
        validate_name("user name", &user).map_err(invalid)?;
        for cap in &caps {
            validate_name("capability name", cap).map_err(invalid)?;
        }
        users.insert(user, normalize(caps));
    }
    Ok(users)
}

/// The user file, read strictly: a mapping (or nothing) whose keys are
/// strings, each once, and whose values are lists of strings. YAML's other
/// scalars (`1`, `true`, `null`) are refused rather than turned into names.
struct UserFile(BTreeMap<String, Vec<String>>);

/// A name: a YAML string, nothing else.
struct Name(String);

/// A list of names.
struct Names(Vec<String>);

impl<'de> Deserialize<'de> for UserFile {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Users;
        impl<'de> Visitor<'de> for Users {
            type Value = UserFile;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping from user to a list of capability names")
            }
            fn visit_unit<E: de::Error>(self) -> Result<UserFile, E> {
                Ok(UserFile(BTreeMap::new()))
            }
            fn visit_none<E: de::Error>(self) -> Result<UserFile, E> {
                Ok(UserFile(BTreeMap::new()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UserFile, A::Error> {
                let mut users = BTreeMap::new();
                while let Some(Name(user)) = map.next_key()? {
                    let Names(caps) = map.next_value()?;
                    if users.contains_key(&user) {
                        return Err(de::Error::custom(format_args!(
                            "user `{user}` appears twice"
                        )));
                    }
                    users.insert(user, caps);
                }
                Ok(UserFile(users))
            }
        }
        deserializer.deserialize_any(Users)
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Str;
        impl Visitor<'_> for Str {
            type Value = Name;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Name, E> {
                Ok(Name(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Name, E> {
                Ok(Name(v))
            }
        }
        deserializer.deserialize_any(Str)
    }
}

impl<'de> Deserialize<'de> for Names {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct List;
        impl<'de> Visitor<'de> for List {
            type Value = Names;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of capability names")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Names, A::Error> {
                let mut names = Vec::new();
                while let Some(Name(name)) = seq.next_element()? {
                    names.push(name);
                }
                Ok(Names(names))
            }
        }
        deserializer.deserialize_any(List)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> BTreeMap<String, Vec<String>> {
        parse(text).unwrap_or_else(|e| panic!("{text:?}: {e:?}"))
    }

    fn refused(text: &str) -> ParseError {
        parse(text).expect_err(text)
    }

    #[test]
    fn the_easy_oauth_example_parses() {
        let users = parsed(
            "your-email@you.com:\n  - admin\nfriend@rainbows.com:\n  - moderate\n  - announce\n\
             pierre-jean-jacques@youhou.fr:\n  - read\nhateful-being@cornhole.co: []\n",
        );
        assert_eq!(users["friend@rainbows.com"], ["announce", "moderate"]);
        assert_eq!(users["hateful-being@cornhole.co"], Vec::<String>::new());
        assert_eq!(users.len(), 4);
    }

    #[test]
    fn empty_files_hold_no_users() {
        assert!(parsed("").is_empty());
        assert!(parsed("\n  \n").is_empty());
        assert!(parsed("# no users yet\n").is_empty());
        assert!(parsed("{}\n").is_empty());
        assert!(parsed("~\n").is_empty());
    }

    #[test]
    fn lists_are_sorted_and_deduplicated() {
        assert_eq!(parsed("a: [b, a, b]")["a"], ["a", "b"]);
    }

    #[test]
    fn values_must_be_lists_of_strings() {
        for text in [
            "alice: read\n",
            "alice:\n",
            "alice: {read: true}\n",
            "alice: [[read]]\n",
            "alice: [read, null]\n",
            "alice: [1]\n",
            "alice: [true]\n",
            "- alice\n",
            "just text\n",
            "alice: [read]\nalice: [write]\n",
            "alice: ['']\n",
            "'': [read]\n",
        ] {
            let e = refused(text);
            assert!(!e.reason.is_empty(), "{text:?}");
        }
    }

    #[test]
    fn syntax_errors_carry_their_line() {
        let e = refused("bob: [write]\nalice: [read\n");
        let (line, _) = e.location.expect("a location");
        assert!(line >= 2, "{e:?}");
        let message = e.to_error(Path::new("caps.yaml")).to_string();
        assert!(
            message.starts_with("capabilities file caps.yaml: line "),
            "{message}"
        );
        // The location is not repeated.
        assert_eq!(
            message.matches(&format!("line {line}")).count(),
            1,
            "{message}"
        );
    }

    #[test]
    fn revocations_round_trip() {
        let revoked = HashMap::from([
            ("jti-1".to_owned(), 1_700_000_000),
            ("with spaces and # inside ".to_owned(), 42),
            ("#leading".to_owned(), 7),
        ]);
        let text = format_revocations(&revoked);
        assert!(text.contains("\n1700000000 jti-1\n"), "{text}");
        assert_eq!(parse_revocations(text.as_bytes()).unwrap(), revoked);
    }

    #[test]
    fn revocations_files_are_read_leniently_where_unambiguous() {
        let parsed = parse_revocations(b"\n# comment\n5 a\r\n9 a\n3 a\n  \n").unwrap();
        assert_eq!(parsed, HashMap::from([("a".to_owned(), 9)]));
        assert!(parse_revocations(b"").unwrap().is_empty());
    }

    #[test]
    fn bad_revocation_lines_are_located() {
        for (text, line) in [
            (&b"5 a\njti-2\n"[..], 2),
            (b"5 a\n\n-5 b\n", 3),
            (b"x5 a\n", 1),
            (b" 5 a\n", 1),
            (b"5 a\n99999999999999999999999 b\n", 2),
            (b"5 \n", 1),
            (b"5 a\tb\n", 1),
            (b"5 a\n6 \xff\n", 2),
        ] {
            let (at, reason) = parse_revocations(text).expect_err(&format!("{text:?}"));
            assert_eq!(at, line, "{text:?}: {reason}");
            assert!(!reason.is_empty());
        }
    }

    #[test]
    fn the_revocations_file_sits_beside_the_user_file() {
        assert_eq!(
            revocations_path(Path::new("/etc/svc/caps.yaml")),
            Path::new("/etc/svc/caps.yaml.revoked")
        );
        assert_eq!(
            revocations_path(Path::new("caps.yaml")),
            Path::new("caps.yaml.revoked")
        );
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn debug_shows_counts_never_ids() {
        let rt = runtime();
        let dir = tempfile::tempdir().unwrap();
        let store = rt
            .block_on(FileStore::open(dir.path().join("caps.yaml")))
            .unwrap();
        let exp = unix_now() + 600;
        rt.block_on(store.revoke("jti-hidden", exp)).unwrap();
        assert!(rt.block_on(store.revoke_once("login-hidden", exp)).unwrap());
        rt.block_on(store.update("alice@example.com", Change::Add("cap-hidden".into())))
            .unwrap();
        let shown = format!("{store:?}");
        for hidden in ["jti-hidden", "login-hidden", "alice", "cap-hidden"] {
            assert!(!shown.contains(hidden), "{hidden} in {shown}");
        }
        assert!(shown.contains("revocations: 1"), "{shown}");
        assert!(shown.contains("one_time_values: 1"), "{shown}");
        assert!(shown.contains("users: 1"), "{shown}");
    }

    #[test]
    fn checks_take_no_lock_while_nothing_is_in_force() {
        let rt = runtime();
        let dir = tempfile::tempdir().unwrap();
        let store = rt
            .block_on(FileStore::open(dir.path().join("caps.yaml")))
            .unwrap();
        {
            // With the lock held, a check still answers: it does not take it.
            let _held = store.revoked();
            assert!(!store.is_in_force("jti"));
        }
        rt.block_on(store.revoke("jti", unix_now() + 600)).unwrap();
        assert!(store.is_in_force("jti"));
        assert!(!store.is_in_force("other"));
        assert!(store.revoked_until.load(Ordering::SeqCst) > unix_now());
    }

    #[test]
    fn writes_round_trip() {
        let users = parsed("b: [x]\na: []\n'c: d': ['e f']\n");
        let text = serde_yaml_ng::to_string(&users).unwrap();
        assert_eq!(parsed(&text), users);
    }
}
