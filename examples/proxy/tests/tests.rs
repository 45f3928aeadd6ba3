//! The scenario with a short schedule on a clock the test moves: the access
//! token is refreshed before it expires, and the downstream service sees a
//! valid token on every call.

use std::collections::HashSet;
use std::time::Duration;

use example_proxy::demo::{self, DemoOptions};
use example_proxy::{Event, Schedule};
use portcullis_core::clock::ManualClock;
use tokio::sync::mpsc::UnboundedReceiver;

const TTL: u64 = 60;
const LEEWAY: u64 = 10;

/// The next background call, skipping other events; panics on a failed call.
async fn next_call(events: &mut UnboundedReceiver<Event>) -> Option<u32> {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("an event within 10 s")
            .expect("the app is running");
        match event {
            Event::Background {
                call,
                status,
                outcome,
                ..
            } => {
                assert_eq!(status, Some(200), "call {call}: {outcome}");
                return Some(call);
            }
            Event::Ended { calls, failed, .. } => {
                assert_eq!(failed, 0, "{calls} calls");
                return None;
            }
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_downstream_sees_valid_tokens_while_the_access_token_is_refreshed() {
    let clock = ManualClock::new(1_700_000_000);
    let (events, mut received) = tokio::sync::mpsc::unbounded_channel();
    let options = DemoOptions {
        schedule: Schedule {
            every: Duration::from_millis(30),
            duration: Duration::from_secs(3),
        },
        access_token_ttl: Duration::from_secs(TTL),
        leeway: Duration::from_secs(LEEWAY),
        clock: Some(clock.clone()),
    };
    let demo = demo::start(options, events).await.unwrap();

    let (status, body) = demo::call_app(&demo.app_url, None).await.unwrap();
    assert_eq!(
        (status, body.as_str()),
        (200, "Hello, unauthorised person!\n")
    );
    let tokens = demo::proxy_login(&demo.provider, "alice@example.com")
        .await
        .unwrap();
    let (status, body) = demo::call_app(&demo.app_url, Some(&tokens)).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("Hello, alice@example.com!"), "{body}");
    assert!(body.contains("answered: HTTP 200"), "{body}");
    assert!(body.contains("called again every"), "{body}");
    match received.recv().await.unwrap() {
        Event::Forwarded { outcome, .. } => assert!(outcome.starts_with("HTTP 200"), "{outcome}"),
        other => panic!("{other:?}"),
    }

    // Twice, the token comes within the leeway of its expiry (still valid, so
    // calls in flight keep working) and the next call refreshes it first.
    for _ in 0..2 {
        next_call(&mut received).await.unwrap();
        clock.advance_secs(TTL - LEEWAY / 2);
        next_call(&mut received).await.unwrap();
        next_call(&mut received).await.unwrap();
    }
    while next_call(&mut received).await.is_some() {}

    assert_eq!(demo.provider.refresh_count(), 2);
    let calls = demo.downstream_log.calls();
    assert!(calls.len() >= 7, "{calls:?}");
    assert!(calls.iter().all(|c| c.status == 200), "{calls:?}");
    let tokens: HashSet<_> = calls.iter().map(|c| c.token_expires_at.unwrap()).collect();
    assert_eq!(
        tokens.len(),
        3,
        "the first token and two refreshed ones: {calls:?}"
    );
}

#[tokio::test]
async fn invalid_forwarded_tokens_are_refused() {
    let (events, _received) = tokio::sync::mpsc::unbounded_channel();
    let options = DemoOptions {
        clock: Some(ManualClock::new(1_700_000_000)),
        ..DemoOptions::default()
    };
    let demo = demo::start(options, events).await.unwrap();
    let resp = portcullis_oidc::reqwest::Client::new()
        .get(&demo.app_url)
        .header("authorization", "Bearer not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().contains_key("www-authenticate"));
    assert!(demo.downstream_log.calls().is_empty());
}

#[tokio::test]
async fn the_config_file_mode_runs_against_any_provider() {
    use example_proxy::ProxyConfig;
    use portcullis_core::config::{Format, load_from_str};

    let example: ProxyConfig =
        load_from_str(include_str!("../config.example.yaml"), Format::Yaml, &[]).unwrap();
    assert_eq!(
        example.issuer().unwrap(),
        "https://id.example.com/realms/demo"
    );

    // The demo's provider and downstream service stand in for real ones.
    let (events, mut received) = tokio::sync::mpsc::unbounded_channel();
    let demo = demo::start(DemoOptions::default(), events.clone())
        .await
        .unwrap();
    let yaml = format!(
        "discovery_url: {}\nclient_id: {}\nclient_secret: {}\naudience: {}\ndownstream_url: {}\n",
        demo.provider.discovery_url(),
        demo.provider.client_id(),
        demo.provider.client_secret(),
        demo.provider.audience(),
        demo.downstream_url,
    );
    let config: ProxyConfig = load_from_str(&yaml, Format::Yaml, &[]).unwrap();
    let schedule = Schedule {
        every: Duration::from_millis(10),
        duration: Duration::from_millis(30),
    };
    let app = example_proxy::app_for(&config, schedule, events)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let tokens = demo::proxy_login(&demo.provider, "bob@example.com")
        .await
        .unwrap();
    let (status, body) = demo::call_app(&url, Some(&tokens)).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("answered: HTTP 200"), "{body}");
    let mut ended = false;
    while let Ok(Some(event)) = tokio::time::timeout(Duration::from_secs(10), received.recv()).await
    {
        if let Event::Ended { failed, .. } = event {
            assert_eq!(failed, 0);
            ended = true;
            break;
        }
    }
    assert!(ended);
}
