//! The file backend: the shared behaviour, atomic writes, hand edits and refused files.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use portcullis_capabilities::{CapabilityStore, Change, FileStore, RevocationStore};
use portcullis_core::ErrorKind;
use portcullis_testing::logs::LogCapture;
use tempfile::TempDir;

use crate::suite::{self, names, now};

/// A temporary directory and the user file's path in it.
fn user_file() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("caps.yaml");
    (dir, path)
}

/// The names of the files in `dir`.
fn files_in(dir: &Path) -> Vec<String> {
    let mut files: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    files
}

/// The file's content, parsed independently of the store.
fn on_disk(path: &Path) -> BTreeMap<String, Vec<String>> {
    serde_yaml_ng::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

async fn open(path: &Path, reload_interval: Duration) -> FileStore {
    FileStore::open_with_reload_interval(path, reload_interval)
        .await
        .unwrap()
}

const EASY_OAUTH_EXAMPLE: &str = "\
your-email@you.com:
  - admin
friend@rainbows.com:
  - moderate
  - announce
pierre-jean-jacques@youhou.fr:
  - read
hateful-being@cornhole.co: []
";

#[tokio::test]
async fn shared_behaviour_and_the_file_it_leaves() {
    let (dir, path) = user_file();
    let store = Arc::new(open(&path, Duration::from_millis(1)).await);
    assert!(!path.exists(), "opening does not create the file");
    suite::capabilities(store.clone()).await;
    // What was written is what is served, and no temporary file is left.
    assert_eq!(on_disk(&path), store.list().await.unwrap());
    assert_eq!(files_in(dir.path()), ["caps.yaml", "caps.yaml.lock"]);
    // A new store reads the same.
    let reopened = open(&path, Duration::from_secs(1)).await;
    assert_eq!(reopened.list().await.unwrap(), store.list().await.unwrap());
}

#[tokio::test]
async fn reads_the_easy_oauth_format() {
    let (_dir, path) = user_file();
    fs::write(&path, EASY_OAUTH_EXAMPLE).unwrap();
    let store = FileStore::open(&path).await.unwrap();
    assert_eq!(
        store.get("friend@rainbows.com").await.unwrap(),
        Some(names(&["announce", "moderate"]))
    );
    assert_eq!(
        store.get("hateful-being@cornhole.co").await.unwrap(),
        Some(vec![])
    );
    assert_eq!(store.get("nobody@example.com").await.unwrap(), None);
    assert_eq!(store.list().await.unwrap().len(), 4);
}

#[tokio::test]
async fn an_empty_file_holds_no_users() {
    let (_dir, path) = user_file();
    fs::write(&path, "").unwrap();
    let store = FileStore::open(&path).await.unwrap();
    assert!(store.list().await.unwrap().is_empty());
    store
        .update("a@example.com", Change::Set(vec![]))
        .await
        .unwrap();
    assert_eq!(
        on_disk(&path),
        BTreeMap::from([("a@example.com".to_owned(), vec![])])
    );
}

#[tokio::test]
async fn hand_edits_are_picked_up_after_the_interval() {
    let (_dir, path) = user_file();
    fs::write(&path, "alice@example.com: [read]\n").unwrap();
    let store = open(&path, Duration::from_millis(300)).await;
    assert_eq!(
        store.get("alice@example.com").await.unwrap(),
        Some(names(&["read"]))
    );

    fs::write(
        &path,
        "alice@example.com: [read, write]\nbob@example.com: []\n",
    )
    .unwrap();
    // Within the interval the file is not looked at.
    assert_eq!(
        store.get("alice@example.com").await.unwrap(),
        Some(names(&["read"]))
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(
        store.get("alice@example.com").await.unwrap(),
        Some(names(&["read", "write"]))
    );
    assert_eq!(store.list().await.unwrap().len(), 2);
}

#[tokio::test]
async fn updates_start_from_hand_edits() {
    let (_dir, path) = user_file();
    fs::write(&path, "alice@example.com: [read]\n").unwrap();
    let store = open(&path, Duration::from_secs(60)).await;
    fs::write(
        &path,
        "alice@example.com: [read]\nhand@example.com: [admin]\n",
    )
    .unwrap();
    // The interval has not passed, but an update reads the file first.
    store
        .update("bob@example.com", Change::Add("read".into()))
        .await
        .unwrap();
    let users = on_disk(&path);
    assert_eq!(users["hand@example.com"], ["admin"]);
    assert_eq!(users["bob@example.com"], ["read"]);
}

#[tokio::test]
async fn malformed_yaml_is_refused_and_the_previous_content_kept() {
    let (_dir, path) = user_file();
    fs::write(&path, "alice@example.com: [write]\n").unwrap();
    let store = open(&path, Duration::from_millis(20)).await;

    let broken = "bob@example.com: [write]\nalice@example.com: [read\n";
    fs::write(&path, broken).unwrap();
    let e = store.reload().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    let message = e.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(
        message.contains("line 2") || message.contains("line 3"),
        "{message}"
    );

    // Reads keep the previous content, also after the interval.
    tokio::time::sleep(Duration::from_millis(40)).await;
    assert_eq!(
        store.get("alice@example.com").await.unwrap(),
        Some(names(&["write"]))
    );
    assert_eq!(store.get("bob@example.com").await.unwrap(), None);

    // Updates are refused rather than overwrite the hand edit.
    let e = store
        .update("carol@example.com", Change::Add("read".into()))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(fs::read_to_string(&path).unwrap(), broken);

    // Once fixed, the file applies.
    fs::write(
        &path,
        "bob@example.com: [write]\nalice@example.com: [read]\n",
    )
    .unwrap();
    store.reload().await.unwrap();
    assert_eq!(
        store.get("alice@example.com").await.unwrap(),
        Some(names(&["read"]))
    );
}

#[tokio::test]
async fn values_that_are_not_lists_of_strings_are_refused() {
    let (_dir, path) = user_file();
    for bad in [
        "alice@example.com: read\n",
        "alice@example.com:\n",
        "alice@example.com: {read: true}\n",
        "alice@example.com: [[read]]\n",
    ] {
        fs::write(&path, bad).unwrap();
        let e = FileStore::open(&path).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{bad:?}");
        assert!(e.message().contains("line 1"), "{bad:?}: {e}");
    }

    fs::write(&path, "alice@example.com: [read]\n").unwrap();
    let store = open(&path, Duration::from_millis(0)).await;
    fs::write(&path, "alice@example.com: admin\n").unwrap();
    assert_eq!(store.reload().await.unwrap_err().kind(), ErrorKind::Config);
    assert_eq!(
        store.get("alice@example.com").await.unwrap(),
        Some(names(&["read"]))
    );
}

#[tokio::test]
async fn a_removed_file_holds_no_users() {
    let (_dir, path) = user_file();
    fs::write(&path, "alice@example.com: [read]\n").unwrap();
    let store = open(&path, Duration::ZERO).await;
    fs::remove_file(&path).unwrap();
    assert_eq!(store.get("alice@example.com").await.unwrap(), None);
}

#[tokio::test]
async fn write_failures_are_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("sub");
    fs::create_dir(&sub).unwrap();
    let store = open(&sub.join("caps.yaml"), Duration::from_secs(60)).await;
    fs::remove_dir(&sub).unwrap();
    let e = store
        .update("alice@example.com", Change::Add("read".into()))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(store.get("alice@example.com").await.unwrap(), None);
}

#[cfg(unix)]
#[tokio::test]
async fn the_file_mode_is_kept() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, path) = user_file();
    fs::write(&path, "").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    let store = FileStore::open(&path).await.unwrap();
    store
        .update("a@example.com", Change::Add("read".into()))
        .await
        .unwrap();
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o640
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updates_all_land() {
    let (dir, path) = user_file();
    let store = Arc::new(open(&path, Duration::from_millis(5)).await);
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .update("shared@example.com", Change::Add(format!("cap-{i:02}")))
                    .await
                    .unwrap();
                store
                    .update(
                        &format!("user-{i:02}@example.com"),
                        Change::Set(vec![format!("own-{i}")]),
                    )
                    .await
                    .unwrap();
                // Reads meanwhile see whole states.
                store.list().await.unwrap();
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let expected: Vec<String> = (0..20).map(|i| format!("cap-{i:02}")).collect();
    assert_eq!(
        store.get("shared@example.com").await.unwrap(),
        Some(expected.clone())
    );
    let users = on_disk(&path);
    assert_eq!(users.len(), 21);
    assert_eq!(users["shared@example.com"], expected);
    assert_eq!(files_in(dir.path()), ["caps.yaml", "caps.yaml.lock"]);
}

/// The revocations file beside `path`.
fn revocations_file(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap().to_os_string();
    name.push(".revoked");
    path.with_file_name(name)
}

#[tokio::test]
async fn revocations_share_the_behaviour_and_leave_one_file() {
    let (dir, path) = user_file();
    let store = Arc::new(open(&path, Duration::from_secs(1)).await);
    assert_eq!(store.revocations_path(), revocations_file(&path));
    suite::revocations(store.clone()).await;
    let (dir2, path2) = user_file();
    suite::revoke_once(Arc::new(open(&path2, Duration::from_secs(1)).await)).await;
    // No user file is created by revocations, and no temporary file is left.
    assert_eq!(
        files_in(dir.path()),
        ["caps.yaml.lock", "caps.yaml.revoked"]
    );
    assert_eq!(
        files_in(dir2.path()),
        ["caps.yaml.lock", "caps.yaml.revoked"]
    );
}

#[tokio::test]
async fn opening_creates_no_revocations_file() {
    let (dir, path) = user_file();
    fs::write(&path, EASY_OAUTH_EXAMPLE).unwrap();
    let store = open(&path, Duration::from_secs(1)).await;
    assert!(!store.is_revoked("jti").await.unwrap());
    store
        .update("a@example.com", Change::Add("read".into()))
        .await
        .unwrap();
    assert_eq!(files_in(dir.path()), ["caps.yaml", "caps.yaml.lock"]);
}

#[tokio::test]
async fn revocations_survive_a_reopen_and_one_time_values_do_not() {
    let (dir, path) = user_file();
    let exp = now() + 3600;
    {
        let store = open(&path, Duration::from_secs(1)).await;
        store.revoke("jti-1", exp).await.unwrap();
        assert!(store.revoke_once("login-1", exp).await.unwrap());
        assert!(store.is_revoked("login-1").await.unwrap());
    }
    let store = open(&path, Duration::from_secs(1)).await;
    assert!(store.is_revoked("jti-1").await.unwrap());
    assert!(!store.revoke_once("jti-1", exp).await.unwrap());
    assert!(!store.is_revoked("jti-2").await.unwrap());
    // One-time values live in memory only: a restart forgets them.
    assert!(!store.is_revoked("login-1").await.unwrap());
    assert!(store.revoke_once("login-1", exp).await.unwrap());
    assert!(!store.revoke_once("login-1", exp).await.unwrap());

    // The file holds one `<expires_at> <id>` line per revocation.
    let text = fs::read_to_string(revocations_file(&path)).unwrap();
    assert_eq!(text, format!("# <expires_at_unix> <id>\n{exp} jti-1\n"));
    assert_eq!(
        files_in(dir.path()),
        ["caps.yaml.lock", "caps.yaml.revoked"]
    );
}

#[tokio::test]
async fn expired_revocations_do_not_count() {
    let (_dir, path) = user_file();
    let live = now() + 3600;
    let gone = now() - 5;
    fs::write(
        revocations_file(&path),
        format!(
            "# kept by hand\n{gone} old-jti\n{live} live-jti\n\n{gone} old-login\n{live} twice\n{gone} twice"
        ),
    )
    .unwrap();
    let store = open(&path, Duration::from_secs(1)).await;
    assert!(!store.is_revoked("old-jti").await.unwrap());
    assert!(store.is_revoked("live-jti").await.unwrap());
    // An id listed twice keeps its later expiry.
    assert!(store.is_revoked("twice").await.unwrap());
    // An expired record no longer makes a value used.
    assert!(store.revoke_once("old-login", live).await.unwrap());
    assert!(!store.revoke_once("old-login", live).await.unwrap());
    // A revocation is appended, on a line of its own even after a last line
    // without a line break.
    store.revoke("new-jti", live).await.unwrap();
    let text = fs::read_to_string(revocations_file(&path)).unwrap();
    assert!(
        text.ends_with(&format!("{gone} twice\n{live} new-jti\n")),
        "{text}"
    );
    let reopened = open(&path, Duration::from_secs(1)).await;
    for id in ["live-jti", "twice", "new-jti"] {
        assert!(reopened.is_revoked(id).await.unwrap(), "{id}");
    }
}

#[tokio::test]
async fn the_log_is_compacted_once_dead_lines_outnumber_live_ones() {
    let (_dir, path) = user_file();
    let file = revocations_file(&path);
    let store = open(&path, Duration::from_secs(1)).await;
    let base = now() + 3600;
    store.revoke("live-1", base).await.unwrap();
    store.revoke("live-2", base).await.unwrap();
    // Revoking one id again for longer leaves a dead line behind each time.
    let mut most = 0;
    for i in 1..=300 {
        store.revoke("again", base + i).await.unwrap();
        let entries = fs::read_to_string(&file)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .count();
        most = most.max(entries);
    }
    // Compacted whenever more than 128 lines were dead: 3 live entries, so
    // never more than 128 + 3 + 1 lines.
    assert!(most <= 132, "{most} lines at most");
    let reopened = open(&path, Duration::from_secs(1)).await;
    for id in ["live-1", "live-2", "again"] {
        assert!(reopened.is_revoked(id).await.unwrap(), "{id}");
    }
    // The latest expiry was kept: revoking for less writes nothing.
    let len = fs::metadata(&file).unwrap().len();
    reopened.revoke("again", base + 300).await.unwrap();
    reopened.revoke("again", base + 1).await.unwrap();
    assert_eq!(fs::metadata(&file).unwrap().len(), len);
}

/// 2000 concurrent one-time values with 50 revocations interleaved: the
/// one-time values never touch the revocations file, and every revocation
/// made during the flood is in force, also after reopening the store.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_one_time_values_neither_writes_nor_stalls_revocations() {
    use std::os::unix::fs::MetadataExt;
    const ONCE: usize = 2000;
    const REVOKES: usize = 50;
    let (_dir, path) = user_file();
    let store = Arc::new(open(&path, Duration::from_secs(1)).await);
    let exp = now() + 3600;
    store.revoke("before-the-flood", exp).await.unwrap();
    let file = revocations_file(&path);
    let before = fs::metadata(&file).unwrap();

    let barrier = Arc::new(tokio::sync::Barrier::new(ONCE + REVOKES));
    let mut once = Vec::new();
    let mut revokes = Vec::new();
    for i in 0..ONCE + REVOKES {
        let (store, barrier) = (store.clone(), barrier.clone());
        // One revocation among every 41 tasks.
        if i % (ONCE / REVOKES + 1) == 0 && revokes.len() < REVOKES {
            let id = format!("jti-{i}");
            revokes.push((
                id.clone(),
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.revoke(&id, exp).await
                }),
            ));
        } else {
            once.push(tokio::spawn(async move {
                barrier.wait().await;
                store.revoke_once(&format!("login-{i}"), exp).await
            }));
        }
    }
    assert_eq!((once.len(), revokes.len()), (ONCE, REVOKES));
    for task in once {
        assert!(task.await.unwrap().unwrap(), "a first use answers true");
    }
    let mut revoked = Vec::new();
    for (id, task) in revokes {
        task.await.unwrap().unwrap();
        assert!(store.is_revoked(&id).await.unwrap(), "{id}");
        revoked.push(id);
    }

    // The file grew by the revocations' lines exactly, in place.
    let after = fs::metadata(&file).unwrap();
    assert_eq!(after.ino(), before.ino(), "the file was rewritten");
    let appended: usize = revoked.iter().map(|id| format!("{exp} {id}\n").len()).sum();
    assert_eq!(after.len(), before.len() + appended as u64);
    let text = fs::read_to_string(&file).unwrap();
    assert!(
        !text.contains("login-"),
        "a one-time value reached the file"
    );

    let reopened = open(&path, Duration::from_secs(1)).await;
    for id in revoked
        .iter()
        .map(String::as_str)
        .chain(["before-the-flood"])
    {
        assert!(
            reopened.is_revoked(id).await.unwrap(),
            "{id} after reopening"
        );
    }
    assert!(!reopened.is_revoked("login-1").await.unwrap());
}

#[tokio::test]
async fn a_corrupt_revocations_file_is_refused_with_its_line() {
    let (_dir, path) = user_file();
    fs::write(&path, "alice@example.com: [read]\n").unwrap();
    let revoked = revocations_file(&path);
    let live = now() + 3600;
    for (text, line) in [
        (format!("{live} jti-1\n{live}jti-2\n"), 2),
        (format!("# header\n\n{live} jti-1\nsoon jti-2\n"), 4),
        (format!("{live} \n"), 1),
        (format!("{live} jti-1\n-{live} jti-2\n{live} jti-3\n"), 2),
    ] {
        fs::write(&revoked, &text).unwrap();
        let e = FileStore::open(&path).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{text:?}: {e}");
        let message = e.to_string();
        assert!(
            message.contains(&revoked.display().to_string()),
            "{text:?}: {message}"
        );
        assert!(
            message.contains(&format!("line {line}:")),
            "{text:?}: {message}"
        );
    }

    // Through the configuration too; and the file is left as it was.
    let config = portcullis_capabilities::StoreConfig::File {
        path: path.clone(),
        reload_interval_ms: 1000,
    };
    let e = config.open_stores().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert_eq!(
        fs::read_to_string(&revoked).unwrap(),
        format!("{live} jti-1\n-{live} jti-2\n{live} jti-3\n")
    );
}

#[tokio::test]
async fn a_failed_revocation_write_records_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("sub");
    fs::create_dir(&sub).unwrap();
    let store = open(&sub.join("caps.yaml"), Duration::from_secs(60)).await;
    fs::remove_dir(&sub).unwrap();
    let exp = now() + 600;
    let e = store.revoke("jti", exp).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(!store.is_revoked("jti").await.unwrap());
    // One-time values need no disk.
    assert!(store.revoke_once("login", exp).await.unwrap());
    assert!(!store.revoke_once("login", exp).await.unwrap());
    // Once the directory is back, revocations are recorded again.
    fs::create_dir(&sub).unwrap();
    store.revoke("jti", exp).await.unwrap();
    assert!(store.is_revoked("jti").await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_revoke_once_has_one_winner() {
    let (_dir, path) = user_file();
    suite::concurrent_revoke_once(vec![Arc::new(open(&path, Duration::from_secs(1)).await)]).await;
}

/// Set (to `a` or `b`) in the environment of the processes that
/// `two_processes_share_one_user_file` starts: the test then plays one of them.
const PROCESS_ROLE: &str = "PORTCULLIS_TEST_FILE_PROCESS";
/// The directory the two processes share.
const PROCESS_DIR: &str = "PORTCULLIS_TEST_FILE_DIR";
/// Grants each process makes at once.
const GRANTS_PER_PROCESS: usize = 25;
/// Revocations each process makes.
const REVOCATIONS_PER_PROCESS: usize = 5;

/// Two OS processes (this test binary started twice) use one user file at
/// once: each makes 25 concurrent grants to one shared user and revokes 5
/// tokens. No grant is lost, every revocation is in the file, and each
/// process sees the other's revocations while it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_one_user_file() {
    if let (Some(role), Some(dir)) = (
        std::env::var_os(PROCESS_ROLE),
        std::env::var_os(PROCESS_DIR),
    ) {
        let role = role.to_string_lossy().into_owned();
        one_of_two_processes(&role, Path::new(&dir)).await;
        return;
    }
    let (dir, path) = user_file();
    fs::write(&path, "admin@example.com: [admin]\n").unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|role| {
            std::process::Command::new(&exe)
                .args([
                    "file::two_processes_share_one_user_file",
                    "--exact",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(PROCESS_ROLE, role)
                .env(PROCESS_DIR, dir.path())
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let output = tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "a process failed:\n{stdout}\n{stderr}"
        );
    }
    for role in ["a", "b"] {
        assert!(
            dir.path().join(format!("saw-{role}")).exists(),
            "process {role} did not see the other's revocations"
        );
    }

    // Every grant of both processes is in the file, and so is every revocation.
    let mut expected: Vec<String> = ["a", "b"]
        .into_iter()
        .flat_map(|role| (0..GRANTS_PER_PROCESS).map(move |i| format!("{role}-{i:02}")))
        .collect();
    expected.sort();
    let users = on_disk(&path);
    assert_eq!(users["shared@example.com"], expected);
    assert_eq!(users["admin@example.com"], ["admin"]);
    let reopened = open(&path, Duration::from_secs(1)).await;
    for role in ["a", "b"] {
        for k in 0..REVOCATIONS_PER_PROCESS {
            assert!(
                reopened
                    .is_revoked(&format!("jti-{role}-{k}"))
                    .await
                    .unwrap(),
                "jti-{role}-{k}"
            );
        }
    }
    let files: Vec<String> = files_in(dir.path())
        .into_iter()
        .filter(|f| !["ready-", "done-", "saw-"].iter().any(|p| f.starts_with(p)))
        .collect();
    assert_eq!(files, ["caps.yaml", "caps.yaml.lock", "caps.yaml.revoked"]);
}

/// Waits (at most 20 s: the other process may still be starting) for a file.
async fn wait_for_file(path: &Path) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !path.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One of the two processes of `two_processes_share_one_user_file`.
async fn one_of_two_processes(role: &str, dir: &Path) {
    let other = if role == "a" { "b" } else { "a" };
    let store = Arc::new(open(&dir.join("caps.yaml"), Duration::from_millis(20)).await);
    // Start the grants together.
    fs::write(dir.join(format!("ready-{role}")), "").unwrap();
    wait_for_file(&dir.join(format!("ready-{other}"))).await;

    let grants: Vec<_> = (0..GRANTS_PER_PROCESS)
        .map(|i| {
            let store = store.clone();
            let cap = format!("{role}-{i:02}");
            tokio::spawn(async move {
                let after = store
                    .update("shared@example.com", Change::Add(cap.clone()))
                    .await
                    .unwrap();
                assert!(after.contains(&cap), "{cap} missing from {after:?}");
            })
        })
        .collect();
    let revocations: Vec<_> = (0..REVOCATIONS_PER_PROCESS)
        .map(|k| {
            let store = store.clone();
            let id = format!("jti-{role}-{k}");
            tokio::spawn(async move { store.revoke(&id, now() + 600).await.unwrap() })
        })
        .collect();
    for task in grants.into_iter().chain(revocations) {
        task.await.unwrap();
    }
    fs::write(dir.join(format!("done-{role}")), "").unwrap();
    wait_for_file(&dir.join(format!("done-{other}"))).await;

    // The other process's revocations reach this one within the reload interval.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    for k in 0..REVOCATIONS_PER_PROCESS {
        let id = format!("jti-{other}-{k}");
        while !store.is_revoked(&id).await.unwrap() {
            assert!(std::time::Instant::now() < deadline, "{id} never seen");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    // And its own are still in force.
    for k in 0..REVOCATIONS_PER_PROCESS {
        assert!(store.is_revoked(&format!("jti-{role}-{k}")).await.unwrap());
    }
    fs::write(dir.join(format!("saw-{role}")), "").unwrap();
}

/// Two stores on one user file in one process (and so under its lock file)
/// apply hundreds of interleaved changes to the same users: the end state is
/// one a serial order of the acknowledged changes gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interleaved_changes_on_one_user_file_serialize() {
    let (_dir, path) = user_file();
    // Checked on every read, so that the end state is read as it is.
    let a: Arc<dyn CapabilityStore> = Arc::new(open(&path, Duration::ZERO).await);
    let b: Arc<dyn CapabilityStore> = Arc::new(open(&path, Duration::ZERO).await);
    suite::interleaved_changes_serialize(vec![a, b]).await;
    // The file holds what the stores serve.
    let reopened = open(&path, Duration::from_secs(1)).await;
    assert_eq!(on_disk(&path), reopened.list().await.unwrap());
}

#[tokio::test]
async fn opening_says_which_file_is_in_use_and_how_many_users_it_holds() {
    let (_dir, path) = user_file();
    fs::write(&path, EASY_OAUTH_EXAMPLE).unwrap();
    let (store, log) = LogCapture::during_async(FileStore::open(&path)).await;
    store.unwrap();
    assert!(log.contains("INFO"), "{log}");
    assert!(log.contains("capabilities file in use"), "{log}");
    assert!(log.contains(&format!("path={}", path.display())), "{log}");
    assert!(log.contains("users=4"), "{log}");

    // A missing file is said loudly: nobody holds anything until a grant creates it.
    let (_dir, missing) = user_file();
    let (store, log) = LogCapture::during_async(FileStore::open(&missing)).await;
    store.unwrap();
    assert!(log.contains("WARN"), "{log}");
    assert!(log.contains("does not exist"), "{log}");
    assert!(
        log.contains(&format!("path={}", missing.display())),
        "{log}"
    );
    assert!(
        !missing.exists(),
        "created by the first grant, not by opening"
    );
}
