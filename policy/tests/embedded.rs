//! What only the embedded engine does: the decision cache, its refusal of
//! non-deterministic policies, and configuration errors at start-up.

use std::sync::Arc;
use std::time::Duration;

use portcullis_core::ErrorKind;
use portcullis_core::clock::ManualClock;
use portcullis_policy::{
    Decision, DecisionCacheConfig, DecisionLog, Guests, Policy, PolicyConfig, RequestInfo,
};

use crate::common::{Capture, Kind, Setup, bounded, caller, caller_until, policy_dir};

fn cached(config: PolicyConfig) -> PolicyConfig {
    config.with_cache(DecisionCacheConfig::enabled())
}

#[tokio::test]
async fn cached_decisions_are_reused_and_die_with_a_reload() {
    bounded(async {
        let s = Setup::new(Kind::Embedded, |c| {
            cached(c).with_reload_interval(Duration::ZERO)
        })
        .await;
        let alice = caller("alice", &["staff"]);
        let own = RequestInfo::new("GET", "/finance/salary/alice");
        let other = RequestInfo::new("GET", "/finance/salary/bob");
        assert_eq!(s.policy.decide(Some(&alice), &own).await.unwrap(), Decision::Allow);
        assert_eq!(s.policy.decide(Some(&alice), &other).await.unwrap(), Decision::Deny);
        assert_eq!(s.policy.cached_decisions(), 2);
        assert_eq!(s.policy.decide(Some(&alice), &own).await.unwrap(), Decision::Allow);
        assert_eq!(s.policy.cached_decisions(), 2, "a hit adds nothing");

        // The policy changes: no decision of the old set is used again.
        s.write(
            "authz.rego",
            "package httpapi.authz\n\ndefault allow := false\n\nallow if input.request_path == [\"finance\", \"salary\", \"bob\"]\n",
        );
        s.policy.reload().await.unwrap();
        assert_eq!(s.policy.decide(Some(&alice), &own).await.unwrap(), Decision::Deny);
        assert_eq!(s.policy.decide(Some(&alice), &other).await.unwrap(), Decision::Allow);
        // Data too.
        s.write("authz.rego", "package httpapi.authz\n\nallow if data.open\n");
        s.write("data.json", r#"{"open": false}"#);
        s.policy.reload().await.unwrap();
        assert_eq!(s.policy.decide(Some(&alice), &own).await.unwrap(), Decision::Undefined);
        s.write("data.json", r#"{"open": true}"#);
        s.policy.reload().await.unwrap();
        assert_eq!(s.policy.decide(Some(&alice), &own).await.unwrap(), Decision::Allow);
    })
    .await;
}

/// Whether the last decision event came from the cache.
fn last_was_cached(capture: &Capture) -> bool {
    let lines = capture.lines();
    let last = lines
        .iter()
        .rev()
        .find(|l| l.starts_with("portcullis_policy::decision"))
        .expect("a decision event");
    last.contains("cached=true")
}

#[tokio::test]
async fn cached_decisions_die_with_the_callers_token() {
    let capture = Capture::start();
    bounded(async {
        let clock = ManualClock::new(1_000_000);
        let dir = policy_dir();
        let config = cached(PolicyConfig::rego(dir.path()))
            .with_reload_interval(Duration::ZERO)
            .with_guests(Guests::Policy);
        let policy = Policy::builder(config)
            .clock(Arc::new(clock.clone()))
            .build()
            .await
            .unwrap();
        let claims = serde_json::json!({"sub": "a", "preferred_username": "alice"});
        let alice = caller_until(claims.clone(), 1_000_060);
        let own = RequestInfo::new("GET", "/finance/salary/alice");
        policy.decide(Some(&alice), &own).await.unwrap();
        assert!(!last_was_cached(&capture));
        policy.decide(Some(&alice), &own).await.unwrap();
        assert!(last_was_cached(&capture));
        // Another token with the same claims does not share alice's entries.
        let twin = caller_until(claims, 1_000_060);
        policy.decide(Some(&twin), &own).await.unwrap();
        assert!(!last_was_cached(&capture));
        // At the token's expiry the entry is dead: decided again, and not
        // kept, since the token cannot be cached for any more.
        clock.set_secs(1_000_059);
        policy.decide(Some(&alice), &own).await.unwrap();
        assert!(last_was_cached(&capture));
        clock.set_secs(1_000_060);
        for _ in 0..2 {
            assert_eq!(
                policy.decide(Some(&alice), &own).await.unwrap(),
                Decision::Allow
            );
            assert!(!last_was_cached(&capture));
        }
        // Guests' decisions live up to the maximum lifetime (300 s).
        let public = RequestInfo::new("GET", "/public");
        policy.decide(None, &public).await.unwrap();
        clock.advance_secs(299);
        policy.decide(None, &public).await.unwrap();
        assert!(last_was_cached(&capture));
        clock.advance_secs(1);
        policy.decide(None, &public).await.unwrap();
        assert!(!last_was_cached(&capture));
    })
    .await;
}

#[tokio::test]
async fn the_cache_refuses_policies_that_are_not_deterministic() {
    bounded(async {
        let dir = policy_dir();
        std::fs::write(
            dir.path().join("lottery.rego"),
            "package lottery\n\n# time.now_ns() in a comment is not a call\nwin if {\n\trand.intn(\"draw\", 10) == 7\n}\n",
        )
        .unwrap();
        // Without the cache the set loads.
        Policy::from_config(&PolicyConfig::rego(dir.path()))
            .await
            .unwrap();
        // With it, start-up fails naming the file, line and function.
        let e = Policy::from_config(&cached(PolicyConfig::rego(dir.path())))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(
            e.message().contains("lottery.rego: line 5: `rand.intn`")
                && e.message().contains("policy.cache.enabled"),
            "{}",
            e.message()
        );
        // A reload that brings such a call is refused; the last set serves.
        std::fs::remove_file(dir.path().join("lottery.rego")).unwrap();
        let policy = Policy::from_config(
            &cached(PolicyConfig::rego(dir.path())).with_reload_interval(Duration::ZERO),
        )
        .await
        .unwrap();
        let alice = caller("alice", &[]);
        let own = RequestInfo::new("GET", "/finance/salary/alice");
        assert_eq!(
            policy.decide(Some(&alice), &own).await.unwrap(),
            Decision::Allow
        );
        std::fs::write(
            dir.path().join("clock.rego"),
            "package clock\n\nlate if time.now_ns() > 0\n",
        )
        .unwrap();
        let e = policy.reload().await.unwrap_err();
        assert!(e.message().contains("`time.now_ns`"), "{}", e.message());
        assert_eq!(
            policy.decide(Some(&alice), &own).await.unwrap(),
            Decision::Allow
        );
    })
    .await;
}

#[tokio::test]
async fn a_missing_or_broken_policy_set_fails_start_up() {
    bounded(async {
        let dir = policy_dir();
        // The decision rule must exist.
        let e = Policy::from_config(
            &PolicyConfig::rego(dir.path()).with_rule("httpapi.missing", "allow"),
        )
        .await
        .unwrap_err();
        assert!(
            e.message()
                .contains("no policy defines the decision rule `data.httpapi.missing.allow`"),
            "{}",
            e.message()
        );
        std::fs::write(
            dir.path().join("authz.rego"),
            "package httpapi.authz\nallow {\n",
        )
        .unwrap();
        let e = Policy::from_config(&PolicyConfig::rego(dir.path()))
            .await
            .unwrap_err();
        assert!(
            e.message().contains("authz.rego: line 2"),
            "{}",
            e.message()
        );
        let e = Policy::from_config(&PolicyConfig::rego(dir.path().join("nowhere")))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
    })
    .await;
}

#[tokio::test]
async fn isolated_evaluations_decide_alike() {
    bounded(async {
        let s = Setup::new(Kind::Embedded, |c| c.with_isolate(true)).await;
        let alice = caller("alice", &["staff"]);
        assert_eq!(
            s.decide(Some(&alice), "GET", "/finance/salary/alice")
                .await
                .unwrap(),
            Decision::Allow
        );
        assert_eq!(
            s.decide(Some(&alice), "GET", "/finance/salary/bob")
                .await
                .unwrap(),
            Decision::Deny
        );
    })
    .await;
}

#[tokio::test]
async fn decision_events_show_the_masked_input() {
    let capture = Capture::start();
    bounded(async {
        let s = Setup::new(Kind::Embedded, |c| {
            c.with_input(portcullis_policy::InputShape::Native)
                .with_rule("httpapi.native", "allow")
                .with_body_limit(64)
        })
        .await;
        let carol = caller_until(
            serde_json::json!({"sub": "c", "groups": ["records"], "refresh_token": "claim-secret"}),
            4_000_000_000,
        );
        let request = RequestInfo::new("POST", "/records")
            .with_query("access_token=query-secret&view=full")
            .with_body(b"password=body-secret");
        assert_eq!(
            s.policy.decide(Some(&carol), &request).await.unwrap(),
            Decision::Deny
        );
    })
    .await;
    let lines = capture.lines();
    let event = lines
        .iter()
        .find(|l| l.starts_with("portcullis_policy::decision DEBUG"))
        .unwrap_or_else(|| panic!("{lines:#?}"));
    for field in [
        "engine=rego",
        "result=deny",
        "\"view\":[\"full\"]",
        "\"access_token\":[\"[masked]\"]",
        "\"refresh_token\":\"[masked]\"",
        "\"body\":\"[20 bytes]\"",
    ] {
        assert!(event.contains(field), "{field}: {event}");
    }
    assert!(!lines.iter().any(|l| l.contains("secret")), "{lines:#?}");
}

#[tokio::test]
async fn decision_logs_at_info_on_request() {
    let capture = Capture::start();
    bounded(async {
        let s = Setup::new(Kind::Embedded, |c| c.with_decision_log(DecisionLog::Info)).await;
        let alice = caller("alice", &[]);
        s.decide(Some(&alice), "GET", "/public").await.unwrap();
    })
    .await;
    assert!(
        capture.lines().iter().any(
            |l| l.starts_with("portcullis_policy::decision INFO") && l.contains("result=allow")
        ),
        "{:#?}",
        capture.lines()
    );
}
