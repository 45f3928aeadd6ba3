//! The refresh attack suite, on the embedded store and on a real Redis.

use std::sync::Arc;

use portcullis_capabilities::RedisConfig;
use portcullis_core::Algorithm;
use portcullis_issuer::refresh::{RedisRefreshStore, RefreshStore};
use portcullis_testing::RedisServer;

use crate::common::*;

async fn stores() -> (
    Vec<(&'static str, Option<Arc<dyn RefreshStore>>)>,
    RedisServer,
) {
    let redis = RedisServer::start();
    let store = RedisRefreshStore::connect(RedisConfig::new(redis.url()).with_prefix("test:"))
        .await
        .unwrap();
    (
        vec![("memory", None), ("redis", Some(Arc::new(store)))],
        redis,
    )
}

fn on(store: &Option<Arc<dyn RefreshStore>>) -> Setup {
    setup_with(
        config("https://auth.example.com"),
        store.clone(),
        Algorithm::ES256,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replay_after_rotation_revokes_the_whole_family() {
    let (stores, _redis) = stores().await;
    for (name, store) in &stores {
        let s = on(store);
        let first = login(&s.issuer).await;
        let rotated = refresh(&s.issuer, &first, "web").await;
        assert_eq!(rotated.reply.status, 200, "{name}");
        let second = rotated.json["refresh_token"].as_str().unwrap().to_owned();
        assert_ne!(second, first);
        // Past the retry window, the used token is a replay...
        s.clock.advance_secs(11);
        let replay = refresh(&s.issuer, &first, "web").await;
        assert_eq!(
            (replay.reply.status, replay.error()),
            (400, "invalid_grant"),
            "{name}"
        );
        // ...and the family is over: the current token too.
        let after = refresh(&s.issuer, &second, "web").await;
        assert_eq!(after.error(), "invalid_grant", "{name}");
        // Another login is unaffected.
        let other = login(&s.issuer).await;
        assert_eq!(
            refresh(&s.issuer, &other, "web").await.reply.status,
            200,
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_within_the_window_gets_the_same_successor() {
    let (stores, _redis) = stores().await;
    for (name, store) in &stores {
        let s = on(store);
        let first = login(&s.issuer).await;
        // The answer to this refresh is lost on the way back.
        let lost = refresh(&s.issuer, &first, "web").await;
        assert_eq!(lost.reply.status, 200, "{name}");
        s.clock.advance_secs(9);
        let retry = refresh(&s.issuer, &first, "web").await;
        assert_eq!(retry.reply.status, 200, "{name}");
        assert_eq!(
            retry.json["refresh_token"], lost.json["refresh_token"],
            "{name}"
        );
        assert_ne!(
            retry.json["access_token"], lost.json["access_token"],
            "{name}"
        );
        // The successor works, and the family goes on.
        let next = refresh(
            &s.issuer,
            retry.json["refresh_token"].as_str().unwrap(),
            "web",
        )
        .await;
        assert_eq!(next.reply.status, 200, "{name}");
        // Another client retrying the used token inside the window is refused
        // and changes nothing.
        let foreign = refresh(&s.issuer, &first, "mobile").await;
        assert_eq!(foreign.error(), "invalid_grant", "{name}");
        let next2 = refresh(
            &s.issuer,
            next.json["refresh_token"].as_str().unwrap(),
            "web",
        )
        .await;
        assert_eq!(next2.reply.status, 200, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_tabs_refreshing_at_once_both_get_the_one_successor() {
    let (stores, _redis) = stores().await;
    for (name, store) in &stores {
        let s = on(store);
        let first = login(&s.issuer).await;
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let issuer = s.issuer.clone();
                let first = first.clone();
                tokio::spawn(async move { refresh(&issuer, &first, "web").await })
            })
            .collect();
        let mut successors = Vec::new();
        for task in tasks {
            let answer = task.await.unwrap();
            assert_eq!(answer.reply.status, 200, "{name}: {}", answer.json);
            successors.push(answer.json["refresh_token"].as_str().unwrap().to_owned());
        }
        successors.dedup();
        assert_eq!(successors.len(), 1, "{name}");
        assert_eq!(
            refresh(&s.issuer, &successors[0], "web").await.reply.status,
            200,
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn another_clients_token_is_refused_and_changes_nothing() {
    let (stores, _redis) = stores().await;
    for (name, store) in &stores {
        let s = on(store);
        let first = login(&s.issuer).await;
        let stolen = refresh(&s.issuer, &first, "mobile").await;
        assert_eq!(
            (stolen.reply.status, stolen.error()),
            (400, "invalid_grant"),
            "{name}"
        );
        // A confidential client presenting it: refused too.
        let machine = crate::common::call(
            &s.issuer,
            portcullis_issuer::Endpoint::Token,
            None,
            &format!(
                "grant_type=refresh_token&refresh_token={first}&client_id=reports&client_secret={}",
                url::form_urlencoded::byte_serialize(MACHINE_SECRET.as_bytes()).collect::<String>()
            ),
        )
        .await;
        assert_eq!(machine.error(), "unauthorized_client", "{name}");
        // The owner's token still works.
        assert_eq!(
            refresh(&s.issuer, &first, "web").await.reply.status,
            200,
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn families_end_after_their_idle_and_absolute_lifetimes() {
    let (stores, _redis) = stores().await;
    for (name, store) in &stores {
        let s = on(store);
        let policy = s.issuer.config().refresh;
        // Idle: the current token unused for the idle lifetime.
        let first = login(&s.issuer).await;
        s.clock.advance_secs(policy.idle_lifetime.as_secs());
        assert_eq!(
            refresh(&s.issuer, &first, "web").await.error(),
            "invalid_grant",
            "{name}"
        );
        // Absolute: refreshed within the idle lifetime, yet too old.
        let mut current = login(&s.issuer).await;
        let step = policy.idle_lifetime.as_secs() - 60;
        let mut elapsed = 0;
        while elapsed + step < policy.absolute_lifetime.as_secs() {
            s.clock.advance_secs(step);
            elapsed += step;
            let answer = refresh(&s.issuer, &current, "web").await;
            assert_eq!(answer.reply.status, 200, "{name} at {elapsed}s");
            current = answer.json["refresh_token"].as_str().unwrap().to_owned();
        }
        s.clock
            .advance_secs(policy.absolute_lifetime.as_secs() - elapsed);
        assert_eq!(
            refresh(&s.issuer, &current, "web").await.error(),
            "invalid_grant",
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_never_widens_the_scope_and_a_refused_one_changes_nothing() {
    let (stores, _redis) = stores().await;
    for (name, store) in &stores {
        let s = on(store);
        let answer = token(
            &s.issuer,
            "grant_type=password&username=bob&password=bob-password",
        )
        .await;
        assert_eq!(answer.json["scope"], "user:read", "{name}");
        let first = answer.json["refresh_token"].as_str().unwrap();
        let wider = token(
            &s.issuer,
            &format!("grant_type=refresh_token&refresh_token={first}&scope=user:write"),
        )
        .await;
        assert_eq!(wider.error(), "invalid_scope", "{name}");
        // Refused: the token was not used, so no replay either.
        s.clock.advance_secs(60);
        let ok = refresh(&s.issuer, first, "web").await;
        assert_eq!(ok.reply.status, 200, "{name}");
        for bad in ["", "x.y", "not-a-token"] {
            let answer = refresh(&s.issuer, bad, "web").await;
            assert_eq!(answer.reply.status, 400, "{name} {bad:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_down_is_503_and_issues_nothing() {
    let mut redis = RedisServer::start();
    let store = RedisRefreshStore::connect(
        RedisConfig::new(redis.url()).with_command_timeout(std::time::Duration::from_millis(300)),
    )
    .await
    .unwrap();
    let s = on(&Some(Arc::new(store)));
    let first = login(&s.issuer).await;
    redis.kill();
    let answer = refresh(&s.issuer, &first, "web").await;
    assert_eq!(
        (answer.reply.status, answer.error()),
        (503, "temporarily_unavailable")
    );
    assert!(answer.json.get("access_token").is_none());
    let login = token(
        &s.issuer,
        "grant_type=password&username=alice&password=alice-password",
    )
    .await;
    assert_eq!(login.reply.status, 503);
}
