//! Automation principals over the in-process secret store, on a manual clock.

use std::sync::Arc;

use super::*;
use crate::ErrorKind;
use crate::clock::ManualClock;

const TOKEN: &str = "the-reporter's-token-0123456789";

fn secret(token: &str, id: &str) -> String {
    serde_json::json!({"token": token, "id": id}).to_string()
}

fn setup(config: AutomationConfig) -> (MemorySecrets, AutomationPrincipals, ManualClock) {
    let secrets = MemorySecrets::new();
    secrets.put("svc/reporter", secret(TOKEN, "reporter@example.com"));
    let clock = ManualClock::new(1_000_000);
    let principals = AutomationPrincipals::with_clock(
        config.with_common_prefix("svc/"),
        Arc::new(secrets.clone()),
        Arc::new(clock.clone()),
    )
    .unwrap();
    (secrets, principals, clock)
}

fn is_refused(e: &Error) -> bool {
    e.status() == 401 && e.rejection() == Some(TokenRejection::InvalidPrincipal)
}

/// Lets spawned background reads run (a bounded number of turns, no clock).
async fn let_background_run(secrets: &MemorySecrets, reads_before: usize) {
    for _ in 0..1000 {
        if secrets.reads() > reads_before {
            break;
        }
        tokio::task::yield_now().await;
    }
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn a_matching_token_is_the_secrets_id_of_kind_automation() {
    let (_s, principals, _c) = setup(AutomationConfig::default());
    let caller = principals.authenticate("reporter", TOKEN).await.unwrap();
    assert_eq!(caller.user_id(), "reporter@example.com");
    assert_eq!(
        caller.principal_kind(),
        crate::principal::PrincipalKind::Automation
    );
    assert!(caller.is_automation());
    assert_eq!(caller.issuer(), "memory");
    assert_eq!(caller.email(), None);
    assert!(caller.scopes().is_empty());
    assert_eq!(
        caller.claim("principal"),
        Some(&serde_json::json!("reporter"))
    );
    assert_eq!(caller.token().expose(), TOKEN);
    assert!(!format!("{caller:?} {principals:?}").contains(TOKEN));
}

#[tokio::test]
async fn wrong_tokens_and_unknown_ids_get_the_same_refusal() {
    let (_s, principals, _c) = setup(AutomationConfig::default());
    let wrong = principals
        .authenticate("reporter", "guess")
        .await
        .unwrap_err();
    let unknown = principals.authenticate("nobody", TOKEN).await.unwrap_err();
    assert!(is_refused(&wrong), "{wrong:?}");
    assert!(is_refused(&unknown), "{unknown:?}");
    assert_eq!(wrong.to_reply("r"), unknown.to_reply("r"));
    // A prefix of the token, or the token with more, is no match either.
    for near in [&TOKEN[..TOKEN.len() - 1], &format!("{TOKEN}x")] {
        let e = principals.authenticate("reporter", near).await.unwrap_err();
        assert!(is_refused(&e));
    }
}

#[tokio::test]
async fn an_unknown_id_is_read_once_per_negative_ttl_however_often_it_comes() {
    let (secrets, principals, clock) =
        setup(AutomationConfig::default().with_negative_ttl_secs(60));
    for _ in 0..100 {
        let e = principals.authenticate("made-up", TOKEN).await.unwrap_err();
        assert!(is_refused(&e));
    }
    assert_eq!(secrets.reads(), 1);
    clock.advance_secs(61);
    principals.authenticate("made-up", TOKEN).await.unwrap_err();
    assert_eq!(secrets.reads(), 2);
    // Created meanwhile: found once the negative entry ends.
    secrets.put("svc/made-up", secret(TOKEN, "late@example.com"));
    principals.authenticate("made-up", TOKEN).await.unwrap_err();
    assert_eq!(secrets.reads(), 2);
    clock.advance_secs(61);
    let caller = principals.authenticate("made-up", TOKEN).await.unwrap();
    assert_eq!(caller.user_id(), "late@example.com");
}

#[tokio::test]
async fn a_flood_of_made_up_ids_keeps_memory_bounded() {
    let config = AutomationConfig {
        negative_capacity: 50,
        capacity: 50,
        ..AutomationConfig::default()
    };
    let (secrets, principals, _c) = setup(config);
    principals.authenticate("reporter", TOKEN).await.unwrap();
    for i in 0..2000 {
        principals
            .authenticate(&format!("made-up-{i}"), TOKEN)
            .await
            .unwrap_err();
    }
    assert!(principals.inner.unknown.len() <= 50);
    assert!(principals.inner.slots.len() <= 50);
    assert_eq!(secrets.reads(), 2001);
}

#[tokio::test]
async fn ids_that_cannot_name_a_secret_are_refused_without_a_read() {
    let (secrets, principals, _c) = setup(AutomationConfig::default());
    let long = "a".repeat(MAX_ID_BYTES + 1);
    for id in [
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:other",
        "a b",
        "caf\u{e9}",
        "",
        long.as_str(),
        "x\0",
    ] {
        let e = principals.authenticate(id, TOKEN).await.unwrap_err();
        assert!(is_refused(&e), "{id}");
    }
    assert_eq!(secrets.reads(), 0);
}

#[tokio::test]
async fn a_source_down_before_the_first_read_is_503_never_a_pass() {
    let (secrets, principals, clock) = setup(AutomationConfig::default());
    secrets.set_unreachable(true);
    let e = principals
        .authenticate("reporter", TOKEN)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(e.status(), 503);
    // A wrong token too: nothing is known, nothing is decided.
    clock.advance_secs(2);
    let e = principals
        .authenticate("reporter", "guess")
        .await
        .unwrap_err();
    assert_eq!(e.status(), 503);
    // Within a second, requests do not each ask the source again.
    let reads = secrets.reads();
    for _ in 0..20 {
        principals
            .authenticate("reporter", TOKEN)
            .await
            .unwrap_err();
    }
    assert_eq!(secrets.reads(), reads);
    secrets.set_unreachable(false);
    clock.advance_secs(2);
    principals.authenticate("reporter", TOKEN).await.unwrap();
}

#[tokio::test]
async fn the_last_good_secret_serves_while_the_source_is_down_until_the_stale_limit() {
    let config = AutomationConfig::default()
        .with_refresh_secs(300)
        .with_max_stale_secs(600);
    let (secrets, principals, clock) = setup(config);
    principals.authenticate("reporter", TOKEN).await.unwrap();
    secrets.set_unreachable(true);
    clock.advance_secs(301);
    // Due: served from memory, read again in the background (which fails).
    let reads = secrets.reads();
    principals.authenticate("reporter", TOKEN).await.unwrap();
    let_background_run(&secrets, reads).await;
    assert_eq!(secrets.reads(), reads + 1);
    clock.advance_secs(590);
    principals.authenticate("reporter", TOKEN).await.unwrap();
    clock.advance_secs(20);
    let e = principals
        .authenticate("reporter", TOKEN)
        .await
        .unwrap_err();
    assert_eq!(e.status(), 503);
    secrets.set_unreachable(false);
    clock.advance_secs(2);
    principals.authenticate("reporter", TOKEN).await.unwrap();
}

#[tokio::test]
async fn a_rotated_secret_is_in_force_within_the_refresh_time() {
    let (secrets, principals, clock) = setup(AutomationConfig::default().with_refresh_secs(300));
    principals.authenticate("reporter", TOKEN).await.unwrap();
    let new = "the-reporter's-rotated-token-42";
    secrets.put("svc/reporter", secret(new, "reporter@example.com"));
    // A caller that holds the new token makes the secret be read again
    // (at most once per `min_refetch_interval_secs`).
    clock.advance_secs(31);
    let reads = secrets.reads();
    principals.authenticate("reporter", new).await.unwrap();
    assert_eq!(secrets.reads(), reads + 1);
    let e = principals
        .authenticate("reporter", TOKEN)
        .await
        .unwrap_err();
    assert!(is_refused(&e));
    // Rotated again, nobody presenting the new token: the old one serves
    // until the refresh, the background read puts the new one in force.
    let newer = "the-reporter's-third-token-4242";
    secrets.put("svc/reporter", secret(newer, "reporter@example.com"));
    clock.advance_secs(60);
    principals.authenticate("reporter", new).await.unwrap();
    clock.advance_secs(241);
    let reads = secrets.reads();
    principals.authenticate("reporter", new).await.unwrap();
    let_background_run(&secrets, reads).await;
    let e = principals.authenticate("reporter", new).await.unwrap_err();
    assert!(is_refused(&e));
    principals.authenticate("reporter", newer).await.unwrap();
}

#[tokio::test]
async fn wrong_tokens_read_the_secret_again_at_most_once_per_interval() {
    let (secrets, principals, clock) = setup(AutomationConfig::default());
    principals.authenticate("reporter", TOKEN).await.unwrap();
    for _ in 0..5 {
        principals
            .authenticate("reporter", "guess")
            .await
            .unwrap_err();
    }
    // Just read: no second read yet.
    assert_eq!(secrets.reads(), 1);
    clock.advance_secs(31);
    for _ in 0..5 {
        principals
            .authenticate("reporter", "guess")
            .await
            .unwrap_err();
    }
    assert_eq!(secrets.reads(), 2);
}

#[tokio::test]
async fn too_many_failures_lock_the_principal_out_for_the_window() {
    let (_s, principals, clock) = setup(AutomationConfig::default().with_failure_limit(3, 60));
    principals.authenticate("reporter", TOKEN).await.unwrap();
    for _ in 0..3 {
        principals
            .authenticate("reporter", "guess")
            .await
            .unwrap_err();
    }
    // Even the right token, with the same answer as a wrong one.
    let e = principals
        .authenticate("reporter", TOKEN)
        .await
        .unwrap_err();
    assert!(is_refused(&e));
    clock.advance_secs(61);
    principals.authenticate("reporter", TOKEN).await.unwrap();
}

#[tokio::test]
async fn a_malformed_secret_is_502_naming_the_secret_not_its_content() {
    let (secrets, principals, clock) = setup(AutomationConfig::default());
    for (i, text) in [
        "not json at all: hunter2-in-plain-text",
        r#"{"token": "hunter2-in-plain-text"}"#,
        r#"{"token": 42, "id": "x"}"#,
        r#"["hunter2-in-plain-text", "x"]"#,
        r#"{"token": "", "id": "x"}"#,
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("broken-{i}");
        secrets.put(format!("svc/{id}"), text);
        let e = principals
            .authenticate(&id, "hunter2-in-plain-text")
            .await
            .unwrap_err();
        assert_eq!(e.status(), 502, "{text}");
        assert!(
            e.message().contains(&format!("svc/{id}")),
            "{}",
            e.message()
        );
        let shown = format!("{e} {e:?} {:?}", e.to_reply("r"));
        assert!(!shown.contains("hunter2"), "{shown}");
    }
    // Fixed at the source: read again within `min_refetch_interval_secs`.
    secrets.put("svc/broken-0", secret(TOKEN, "fixed@example.com"));
    clock.advance_secs(31);
    let caller = principals.authenticate("broken-0", TOKEN).await.unwrap();
    assert_eq!(caller.user_id(), "fixed@example.com");
}

#[tokio::test]
async fn a_deleted_secret_forgets_the_principal() {
    let (secrets, principals, clock) = setup(AutomationConfig::default());
    principals.authenticate("reporter", TOKEN).await.unwrap();
    secrets.delete("svc/reporter");
    clock.advance_secs(301);
    let reads = secrets.reads();
    principals.authenticate("reporter", TOKEN).await.unwrap();
    let_background_run(&secrets, reads).await;
    let e = principals
        .authenticate("reporter", TOKEN)
        .await
        .unwrap_err();
    assert!(is_refused(&e));
}

/// A source whose reads wait until released, to see concurrent requests
/// share one read.
#[derive(Debug)]
struct Gated {
    inner: MemorySecrets,
    gate: Arc<tokio::sync::Semaphore>,
}

impl SecretSource for Gated {
    fn issuer(&self) -> &str {
        "gated"
    }

    fn get_secret<'a>(&'a self, name: &'a str) -> SecretFuture<'a> {
        Box::pin(async move {
            let _permit = self.gate.acquire().await.expect("the gate stays open");
            self.inner.get_secret(name).await
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_requests_share_one_read() {
    let secrets = MemorySecrets::new();
    secrets.put("reporter", secret(TOKEN, "reporter@example.com"));
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let principals = AutomationPrincipals::new(
        AutomationConfig::default(),
        Arc::new(Gated {
            inner: secrets.clone(),
            gate: Arc::clone(&gate),
        }),
    )
    .unwrap();
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let p = principals.clone();
            tokio::spawn(async move { p.authenticate("reporter", TOKEN).await })
        })
        .collect();
    // Wait until one read is under way, then let it finish.
    while principals.reads() == 0 {
        tokio::task::yield_now().await;
    }
    gate.add_permits(1000);
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(secrets.reads(), 1);
}

#[test]
fn headers_come_in_pairs_and_names_are_checked() {
    let (_s, principals, _c) = setup(AutomationConfig::default());
    let none: &[(&str, &str)] = &[];
    assert!(principals.find(none).unwrap().is_none());
    let both: &[(&str, &str)] = &[("smac-principal", "a"), ("SMAC-TOKEN", "b")];
    let found = principals.find(both).unwrap().unwrap();
    assert_eq!((found.id, found.token), ("a", "b"));
    for one in [[("SMAC-Principal", "a")], [("SMAC-Token", "b")]] {
        let e = principals.find(&one[..]).unwrap_err();
        assert_eq!(e.status(), 400);
    }
    for bad in [
        AutomationConfig::default().with_headers("", "x"),
        AutomationConfig::default().with_headers("a b", "x"),
        AutomationConfig::default().with_headers("x-same", "X-Same"),
        AutomationConfig::default().with_common_prefix("arn:"),
        AutomationConfig::default().with_refresh_secs(0),
    ] {
        let e = AutomationPrincipals::new(bad, Arc::new(MemorySecrets::new())).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(
            e.message().contains("automation_principals."),
            "{}",
            e.message()
        );
    }
}

#[test]
fn the_configuration_loads_with_its_defaults() {
    let config: AutomationConfig =
        crate::config::load_from_str("common_prefix: team/", crate::config::Format::Yaml, &[])
            .unwrap();
    assert_eq!(config.id_header_name, "SMAC-Principal");
    assert_eq!(config.token_header_name, "SMAC-Token");
    assert_eq!(config.common_prefix, "team/");
    assert_eq!(config.refresh_secs, 300);
}
