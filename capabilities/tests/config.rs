//! Opening stores from configuration.

use portcullis_capabilities::{Change, StoreConfig};
use portcullis_core::ErrorKind;

#[tokio::test]
async fn memory_serves_both_traits() {
    let stores = StoreConfig::Memory.open_stores().await.unwrap();
    let revocations = stores.revocations.expect("memory keeps revocations");
    revocations
        .revoke("t", crate::suite::now() + 60)
        .await
        .unwrap();
    assert!(revocations.is_revoked("t").await.unwrap());
    stores
        .capabilities
        .update("alice", Change::Add("read".into()))
        .await
        .unwrap();
}

#[tokio::test]
async fn file_keeps_revocations_beside_the_user_file_and_sessions_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("caps.yaml");
    let yaml = format!(
        "kind: file\npath: {}\nreload_interval_ms: 0\n",
        path.display()
    );
    let config: StoreConfig = serde_yaml_ng::from_str(&yaml).unwrap();
    let stores = config.open_stores().await.unwrap();
    assert_eq!(stores.capabilities.get("alice").await.unwrap(), None);
    let revocations = stores
        .revocations
        .expect("the file store keeps revocations");
    let exp = crate::suite::now() + 60;
    revocations.revoke("t", exp).await.unwrap();
    assert!(revocations.revoke_once("login", exp).await.unwrap());
    stores.sessions.put("s", b"data", exp).await.unwrap();
    assert_eq!(
        stores.sessions.get("s").await.unwrap(),
        Some(b"data".to_vec())
    );

    // Revocations outlive a restart; sessions and one-time values do not.
    let reopened = config.open_stores().await.unwrap();
    let revocations = reopened.revocations.unwrap();
    assert!(revocations.is_revoked("t").await.unwrap());
    assert!(revocations.revoke_once("login", exp).await.unwrap());
    assert_eq!(reopened.sessions.get("s").await.unwrap(), None);
    assert!(dir.path().join("caps.yaml.revoked").exists());
}

#[tokio::test]
async fn memory_keeps_sessions_in_the_same_store() {
    let stores = StoreConfig::Memory.open_stores().await.unwrap();
    let exp = crate::suite::now() + 60;
    stores.sessions.put("s", b"\x00\xff", exp).await.unwrap();
    assert_eq!(stores.sessions.get("s").await.unwrap(), Some(vec![0, 0xff]));
    // One object serves every trait.
    assert_eq!(
        std::sync::Arc::as_ptr(&stores.sessions).cast::<()>(),
        std::sync::Arc::as_ptr(&stores.capabilities).cast::<()>()
    );
}

#[tokio::test]
async fn a_file_in_a_missing_directory_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig::File {
        path: dir.path().join("absent").join("caps.yaml"),
        reload_interval_ms: 1000,
    };
    let e = config.open().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.message().contains("does not exist"), "{e}");
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_serves_both_traits() {
    let server = crate::support::RedisServer::start();
    let yaml = format!(
        "kind: redis\nurl: {}\nprefix: 'cfg:'\ncommand_timeout_ms: 500\n",
        server.url()
    );
    let config: StoreConfig = serde_yaml_ng::from_str(&yaml).unwrap();
    let stores = config.open_stores().await.unwrap();
    let revocations = stores.revocations.expect("redis keeps revocations");
    revocations
        .revoke("t", crate::suite::now() + 60)
        .await
        .unwrap();
    assert!(revocations.is_revoked("t").await.unwrap());
    assert!(format!("{:?}", stores.capabilities).contains("cfg:"));
    stores
        .sessions
        .put("s", b"data", crate::suite::now() + 60)
        .await
        .unwrap();
    assert!(format!("{:?}", stores.sessions).contains("RedisStore"));
    // Another connection to the same Redis sees the session.
    let other = config.open_stores().await.unwrap();
    assert_eq!(
        other.sessions.get("s").await.unwrap(),
        Some(b"data".to_vec())
    );
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn a_bad_redis_url_is_a_config_error() {
    let config: StoreConfig =
        serde_yaml_ng::from_str("kind: redis\nurl: 'http://:hunter2@127.0.0.1/'\n").unwrap();
    let e = config.open().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(!e.to_string().contains("hunter2"), "{e}");
}
