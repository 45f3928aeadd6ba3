//! What only the remote engine does: an OPA server that fails, hangs,
//! talks nonsense or is not there is *unavailable* (503), in time, and
//! never a pass.

use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis_core::config::{IssuerConfig, VerifierConfig};
use portcullis_core::{Algorithm, ErrorKind, TokenVerifier};
use portcullis_policy::{
    Decision, DecisionLog, EmbeddedRego, InputShape, Policy, PolicyConfig, RegoOptions, RequestInfo,
};
use portcullis_testing::{MockOpa, MockProvider, OpaFault, free_port};

use crate::common::{Capture, Kind, Setup, bounded, caller, policy_dir};

/// The decision timeout of these tests.
const TIMEOUT: Duration = Duration::from_millis(300);

async fn setup() -> Setup {
    Setup::new(Kind::Remote, |c| c.with_timeout(TIMEOUT)).await
}

/// Asserts that alice's request is unavailable (503), within the timeout.
async fn unavailable(s: &Setup) -> portcullis_core::Error {
    let alice = caller("alice", &["staff"]);
    let started = Instant::now();
    let e = s
        .decide(Some(&alice), "GET", "/finance/salary/alice")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{}", e.message());
    assert_eq!(e.status(), 503);
    assert!(
        started.elapsed() < TIMEOUT + Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    // What a middleware answers is the same 503, never a pass.
    let e = s
        .authorize(Some(&alice), "GET", "/finance/salary/alice")
        .await
        .unwrap_err();
    assert_eq!(e.status(), 503);
    // The answer says what happened, never where.
    let reply = e.to_reply("api");
    let body = String::from_utf8(reply.body.to_vec()).unwrap();
    assert!(!body.contains("127.0.0.1"), "{body}");
    e
}

#[tokio::test]
async fn server_errors_are_unavailable() {
    bounded(async {
        let s = setup().await;
        let opa = s.opa.as_ref().unwrap();
        for status in [500, 502, 503, 400, 404, 401, 204, 301] {
            opa.set_fault(Some(OpaFault::Status(status)));
            let e = unavailable(&s).await;
            assert!(e.message().contains(&status.to_string()), "{}", e.message());
        }
        opa.set_fault(None);
        let alice = caller("alice", &["staff"]);
        assert_eq!(
            s.decide(Some(&alice), "GET", "/finance/salary/alice")
                .await
                .unwrap(),
            Decision::Allow
        );
    })
    .await;
}

#[tokio::test]
async fn a_hanging_server_is_unavailable_within_the_timeout() {
    bounded(async {
        let s = setup().await;
        let opa = s.opa.as_ref().unwrap();
        opa.set_fault(Some(OpaFault::Hang));
        let e = unavailable(&s).await;
        assert!(e.message().contains("in time"), "{}", e.message());
        // Many at once: none hangs.
        let started = Instant::now();
        let mut decisions = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let policy = s.policy.clone();
            decisions.spawn(async move {
                let alice = caller("alice", &["staff"]);
                policy
                    .decide(Some(&alice), &RequestInfo::new("GET", "/public"))
                    .await
            });
        }
        while let Some(result) = decisions.join_next().await {
            assert_eq!(result.unwrap().unwrap_err().status(), 503);
        }
        assert!(started.elapsed() < TIMEOUT * 3, "{:?}", started.elapsed());
        opa.shutdown();
    })
    .await;
}

#[tokio::test]
async fn garbage_is_unavailable() {
    bounded(async {
        let s = setup().await;
        let opa = s.opa.as_ref().unwrap();
        opa.set_fault(Some(OpaFault::Garbage));
        unavailable(&s).await;
        // Results that are not a decision: a string, null, a package's
        // document (fastapi-opa's own query shape), a number, not an object.
        for body in [
            r#"{"result": "true"}"#,
            r#"{"result": null}"#,
            r#"{"result": {"allow": true}}"#,
            r#"{"result": 1}"#,
            r#"[{"result": true}]"#,
            "",
        ] {
            opa.set_fault(Some(OpaFault::Body(body.to_owned())));
            unavailable(&s).await;
        }
        // An answer past the cap is not read.
        let huge = format!(
            r#"{{"result": true, "pad": "{}"}}"#,
            "x".repeat(portcullis_policy::MAX_OPA_ANSWER_BYTES)
        );
        opa.set_fault(Some(OpaFault::Body(huge)));
        unavailable(&s).await;
    })
    .await;
}

#[tokio::test]
async fn an_empty_answer_is_undefined_and_refused() {
    bounded(async {
        let s = setup().await;
        let opa = s.opa.as_ref().unwrap();
        opa.set_fault(Some(OpaFault::Empty));
        let alice = caller("alice", &["staff"]);
        assert_eq!(
            s.decide(Some(&alice), "GET", "/finance/salary/alice")
                .await
                .unwrap(),
            Decision::Undefined
        );
        let e = s
            .authorize(Some(&alice), "GET", "/finance/salary/alice")
            .await
            .unwrap_err();
        assert_eq!(e.status(), 403);
    })
    .await;
}

#[tokio::test]
async fn a_server_down_at_start_is_unavailable_until_it_comes() {
    bounded(async {
        let port = free_port();
        let config = PolicyConfig::opa(format!("http://127.0.0.1:{port}")).with_timeout(TIMEOUT);
        // Starting does not need the server.
        let policy = Policy::from_config(&config).await.unwrap();
        let alice = caller("alice", &["staff"]);
        let request = RequestInfo::new("GET", "/finance/salary/alice");
        let started = Instant::now();
        let e = policy.decide(Some(&alice), &request).await.unwrap_err();
        assert_eq!(e.status(), 503);
        assert!(
            e.message().contains("could not be reached"),
            "{}",
            e.message()
        );
        assert!(started.elapsed() < TIMEOUT + Duration::from_secs(1));
        // The server comes up: decisions follow, no restart.
        let dir = policy_dir();
        let engine = EmbeddedRego::open(dir.path(), RegoOptions::default())
            .await
            .unwrap();
        let opa = MockOpa::serve(engine, port).await.unwrap();
        assert_eq!(
            policy.decide(Some(&alice), &request).await.unwrap(),
            Decision::Allow
        );
        // And goes away again.
        opa.shutdown();
        tokio::time::timeout(Duration::from_secs(10), async {
            while policy.decide(Some(&alice), &request).await.is_ok() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("decisions become unavailable");
    })
    .await;
}

#[tokio::test]
async fn connections_are_reused() {
    bounded(async {
        let s = setup().await;
        let alice = caller("alice", &["staff"]);
        for _ in 0..20 {
            s.decide(Some(&alice), "GET", "/public").await.unwrap();
        }
        let opa = s.opa.as_ref().unwrap();
        assert_eq!(opa.requests(), 20);
        // One kept-alive connection served them all.
        assert_eq!(opa.connections(), 1);
    })
    .await;
}

#[tokio::test]
async fn bearer_token_claims_reach_the_input_and_the_token_does_not() {
    bounded(async {
        let provider = MockProvider::start().await.unwrap();
        let issuer = IssuerConfig::new(provider.issuer())
            .with_algorithms([Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA])
            .with_audience(provider.audience())
            .with_client_id(provider.client_id());
        let verifier =
            TokenVerifier::new(VerifierConfig::new([("mock".to_owned(), issuer)])).unwrap();
        let token = provider
            .token()
            .subject("u-alice")
            .claim("preferred_username", serde_json::json!("alice"))
            .claim("groups", serde_json::json!(["staff"]))
            .sign();
        let principal = verifier.verify(&token).await.unwrap();
        let alice = portcullis_core::dangerous::authenticated_unverified(principal);

        let s = Setup::new(Kind::Remote, |c| {
            c.with_input(InputShape::Native)
                .with_rule("httpapi.native", "allow")
                .with_headers(["x-tenant"])
                .with_body_limit(1024)
        })
        .await;
        let bearer = format!("Bearer {token}");
        let headers = [
            ("authorization", bearer.as_str()),
            ("x-tenant", "acme"),
            ("cookie", "portcullis_session=sealed"),
        ];
        let query = format!("access_token={token}&view=full");
        let request = RequestInfo::new("POST", "/records")
            .with_query(&query)
            .with_header_pairs(&headers)
            .with_body(b"{}");
        s.policy.decide(Some(&alice), &request).await.unwrap();

        let inputs = s.inputs();
        let input = &inputs[0];
        assert_eq!(input["caller"]["sub"], "u-alice");
        assert_eq!(input["caller"]["preferred_username"], "alice");
        assert_eq!(input["caller"]["iss"], provider.issuer());
        assert_eq!(input["headers"], serde_json::json!({"x-tenant": "acme"}));
        // The policy sees what the request says (a query parameter is the
        // request's own), but never the Authorization header or a cookie.
        let text = input.to_string();
        assert!(!text.contains("Bearer"), "{text}");
        assert!(!text.contains("portcullis_session"), "{text}");
        assert_eq!(
            text.matches(token.as_str()).count(),
            1,
            "only the query's copy"
        );
    })
    .await;
}

#[tokio::test]
async fn decision_events_carry_the_servers_decision_id_and_no_secret() {
    let capture = Capture::start();
    bounded(async {
        let s = Setup::new(Kind::Remote, |c| {
            c.with_decision_log(DecisionLog::Info).with_timeout(TIMEOUT)
        })
        .await;
        let alice = portcullis_core::dangerous::authenticated_unverified(Arc::clone(
            &crate::common::caller_until(
                serde_json::json!({
                    "sub": "sub-alice", "preferred_username": "alice",
                    "access_token": "claim-secret", "groups": ["staff"],
                }),
                4_000_000_000,
            )
            .principal,
        ));
        assert_eq!(
            s.decide(Some(&alice), "GET", "/finance/salary/alice")
                .await
                .unwrap(),
            Decision::Allow
        );
        s.opa
            .as_ref()
            .unwrap()
            .set_fault(Some(OpaFault::Status(500)));
        s.decide(Some(&alice), "GET", "/finance/salary/alice")
            .await
            .unwrap_err();
    })
    .await;
    let lines = capture.lines();
    let decisions: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("portcullis_policy::decision INFO"))
        .collect();
    assert_eq!(decisions.len(), 2, "{lines:#?}");
    let allowed = decisions[0];
    for field in [
        "engine=opa",
        "rule=data.httpapi.authz.allow",
        "result=allow",
        "opa_decision_id=mock-00000001",
        "cached=false",
        "\"preferred_username\":\"alice\"",
        "\"request_path\":[\"finance\",\"salary\",\"alice\"]",
        "\"access_token\":\"[masked]\"",
    ] {
        assert!(allowed.contains(field), "{field}: {allowed}");
    }
    assert!(allowed.contains("decision_id="), "{allowed}");
    assert!(
        decisions[1].contains("result=unavailable"),
        "{}",
        decisions[1]
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("claim-secret") || l.contains("the-session-access-token")),
        "{lines:#?}"
    );
}
