//! The same policies, the same requests, the same decisions: every case
//! runs against the embedded engine and against the mock OPA server.

use portcullis_core::ErrorKind;
use portcullis_policy::{Decision, Guests, InputShape, RequestInfo};

use crate::common::{Kind, Setup, bounded, caller};

/// Expands each case into one test per engine.
macro_rules! both_engines {
    ($($case:ident),* $(,)?) => {
        $(
            mod $case {
                use super::*;

                #[tokio::test]
                async fn embedded() {
                    bounded(super::$case(Kind::Embedded)).await;
                }

                #[tokio::test]
                async fn remote() {
                    bounded(super::$case(Kind::Remote)).await;
                }
            }
        )*
    };
}

both_engines!(
    allow,
    deny,
    undefined,
    guests,
    groups_and_data,
    encoded_slashes_and_dot_segments,
    other_methods,
    edits_apply_without_restart,
    broken_policies_are_refused_while_the_last_good_serves,
    native_input,
);

async fn allow(kind: Kind) {
    let s = Setup::new(kind, |c| c).await;
    let alice = caller("alice", &["staff"]);
    assert_eq!(
        s.decide(Some(&alice), "GET", "/finance/salary/alice")
            .await
            .unwrap(),
        Decision::Allow
    );
    s.authorize(Some(&alice), "GET", "/finance/salary/alice")
        .await
        .unwrap();
    if kind == Kind::Remote {
        // fastapi-opa's input: the claims at the top, the request's method
        // and path segments; nothing else, no credential.
        let inputs = s.inputs();
        assert_eq!(
            inputs[0],
            serde_json::json!({
                "sub": "sub-alice", "preferred_username": "alice", "groups": ["staff"],
                "request_method": "GET", "request_path": ["finance", "salary", "alice"],
            })
        );
    }
}

async fn deny(kind: Kind) {
    let s = Setup::new(kind, |c| c).await;
    let alice = caller("alice", &["staff"]);
    assert_eq!(
        s.decide(Some(&alice), "GET", "/finance/salary/bob")
            .await
            .unwrap(),
        Decision::Deny
    );
    // A known caller refused: 403 with a JSON body, never a pass.
    let e = s
        .authorize(Some(&alice), "GET", "/finance/salary/bob")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Forbidden);
    let reply = e.to_reply("api");
    assert_eq!(reply.status, 403);
    let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(body["error"], "forbidden", "{body}");
}

async fn undefined(kind: Kind) {
    // A rule without a default, on a request no body matches.
    let s = Setup::new(kind, |c| c.with_rule("httpapi.nodefault", "allow")).await;
    let alice = caller("alice", &[]);
    assert_eq!(
        s.decide(Some(&alice), "GET", "/public").await.unwrap(),
        Decision::Allow
    );
    assert_eq!(
        s.decide(Some(&alice), "GET", "/private").await.unwrap(),
        Decision::Undefined
    );
    let e = s
        .authorize(Some(&alice), "GET", "/private")
        .await
        .unwrap_err();
    assert_eq!(e.status(), 403);
}

async fn guests(kind: Kind) {
    // By default a guest is refused before any policy is asked.
    let s = Setup::new(kind, |c| c).await;
    let e = s.authorize(None, "GET", "/public").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::MissingCredentials);
    assert_eq!(e.status(), 401);
    if let Some(opa) = &s.opa {
        assert_eq!(opa.requests(), 0, "OPA was not asked");
    }

    // With `guests: policy`, the policy decides on an input without a caller.
    let s = Setup::new(kind, |c| c.with_guests(Guests::Policy)).await;
    s.authorize(None, "GET", "/public").await.unwrap();
    assert_eq!(
        s.decide(None, "GET", "/finance/salary/alice")
            .await
            .unwrap(),
        Decision::Deny
    );
    // A guest refused is asked to authenticate (401), not forbidden.
    for (method, path) in [("GET", "/finance/salary/alice"), ("POST", "/records")] {
        let e = s.authorize(None, method, path).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::MissingCredentials, "{method} {path}");
    }
    // Signed in, the same caller may add a record.
    let alice = caller("alice", &[]);
    s.authorize(Some(&alice), "POST", "/records").await.unwrap();
    if kind == Kind::Remote {
        assert_eq!(
            s.inputs()[0],
            serde_json::json!({"request_method": "GET", "request_path": ["public"]})
        );
    }
}

async fn groups_and_data(kind: Kind) {
    let s = Setup::new(kind, |c| c).await;
    let dave = caller("dave", &["finance"]);
    let bob = caller("bob", &["staff"]);
    let cases = [
        // `finance` members read anyone's salary...
        (&dave, "/finance/salary/alice", Decision::Allow),
        (&dave, "/finance/salary/bob", Decision::Allow),
        // ...but nothing else under /finance.
        (&dave, "/finance/budget", Decision::Deny),
        // bob manages alice (data.json), not charlie.
        (&bob, "/finance/salary/alice", Decision::Allow),
        (&bob, "/finance/salary/charlie", Decision::Deny),
        (&bob, "/finance/salary/bob", Decision::Allow),
    ];
    for (who, path, expected) in cases {
        assert_eq!(
            s.decide(Some(who), "GET", path).await.unwrap(),
            expected,
            "{path}"
        );
    }
    // Claiming the group by another claim changes nothing.
    let pretender = crate::common::caller_until(
        serde_json::json!({"sub": "x", "preferred_username": "eve", "roles": ["finance"]}),
        4_000_000_000,
    );
    assert_eq!(
        s.decide(Some(&pretender), "GET", "/finance/salary/alice")
            .await
            .unwrap(),
        Decision::Deny
    );
}

async fn encoded_slashes_and_dot_segments(kind: Kind) {
    let s = Setup::new(kind, |c| c.with_guests(Guests::Policy)).await;
    let alice = caller("alice", &["staff"]);
    let cases = [
        // `%2F` stays inside its segment: ["finance", "salary", "alice/bob"].
        ("/finance/salary/alice%2Fbob", Decision::Deny),
        ("/finance%2Fsalary/alice", Decision::Deny),
        // `..` is a segment, never resolved: these are not alice's salary.
        ("/finance/salary/bob/../alice", Decision::Deny),
        ("/finance/salary/../salary/alice", Decision::Deny),
        ("/finance/salary/%2E%2E/alice", Decision::Deny),
        ("/public/../finance/salary/alice", Decision::Deny),
        // Percent-encoded letters decode: this is alice's salary.
        ("/finance/salary/%61lice", Decision::Allow),
    ];
    for (path, expected) in cases {
        assert_eq!(
            s.decide(Some(&alice), "GET", path).await.unwrap(),
            expected,
            "{path}"
        );
    }
    // A guest cannot walk out of /public.
    for path in [
        "/public/..",
        "/public/../finance/salary/alice",
        "/public%2F..",
    ] {
        assert_eq!(
            s.decide(None, "GET", path).await.unwrap(),
            Decision::Deny,
            "{path}"
        );
    }
    // A path that is not UTF-8 once decoded is a bad request, not a decision.
    let e = s
        .decide(Some(&alice), "GET", "/finance/salary/%FF")
        .await
        .unwrap_err();
    assert_eq!(e.status(), 400);
    if kind == Kind::Remote {
        let inputs = s.inputs();
        assert_eq!(
            inputs[0]["request_path"],
            serde_json::json!(["finance", "salary", "alice/bob"])
        );
        assert_eq!(
            inputs[2]["request_path"],
            serde_json::json!(["finance", "salary", "bob", "..", "alice"])
        );
        assert_eq!(
            inputs.len(),
            10,
            "the undecodable path never reached the server"
        );
    }
}

async fn other_methods(kind: Kind) {
    let s = Setup::new(kind, |c| c.with_guests(Guests::Policy)).await;
    let carol = caller("carol", &["records"]);
    let alice = caller("alice", &["staff"]);
    for method in ["PATCH", "DELETE"] {
        assert_eq!(
            s.decide(Some(&carol), method, "/records/7").await.unwrap(),
            Decision::Allow,
            "{method}"
        );
        assert_eq!(
            s.decide(Some(&alice), method, "/records/7").await.unwrap(),
            Decision::Deny,
            "{method}"
        );
    }
    // PUT is not among the allowed methods; OPTIONS and HEAD go through the
    // policy like any other and are refused where only GET is allowed.
    assert_eq!(
        s.decide(Some(&carol), "PUT", "/records/7").await.unwrap(),
        Decision::Deny
    );
    for method in ["OPTIONS", "HEAD"] {
        assert_eq!(
            s.decide(None, method, "/public").await.unwrap(),
            Decision::Deny,
            "{method}"
        );
        assert_eq!(
            s.decide(Some(&alice), method, "/finance/salary/alice")
                .await
                .unwrap(),
            Decision::Deny,
            "{method}"
        );
    }
}

async fn edits_apply_without_restart(kind: Kind) {
    let s = Setup::new(kind, |c| c.with_guests(Guests::Policy)).await;
    assert_eq!(
        s.decide(None, "GET", "/news").await.unwrap(),
        Decision::Deny
    );
    let policy = std::fs::read_to_string(s.dir.path().join("authz.rego")).unwrap();
    s.write(
        "authz.rego",
        &format!(
            "{policy}\nallow if {{\n\tinput.request_method == \"GET\"\n\tinput.request_path == [\"news\"]\n}}\n"
        ),
    );
    s.until(None, "GET", "/news", Decision::Allow).await;
    // Data edits too.
    let bob = caller("bob", &[]);
    assert_eq!(
        s.decide(Some(&bob), "GET", "/finance/salary/charlie")
            .await
            .unwrap(),
        Decision::Deny
    );
    s.write(
        "data.json",
        r#"{"subordinates": {"bob": ["alice", "charlie"]}}"#,
    );
    s.until(
        Some(&bob),
        "GET",
        "/finance/salary/charlie",
        Decision::Allow,
    )
    .await;
}

async fn broken_policies_are_refused_while_the_last_good_serves(kind: Kind) {
    let s = Setup::new(kind, |c| c).await;
    let alice = caller("alice", &["staff"]);
    let engine = match (&s.opa, s.policy.embedded()) {
        (Some(opa), _) => opa.engine().clone(),
        (None, Some(embedded)) => embedded.clone(),
        (None, None) => unreachable!(),
    };
    let generation = engine.generation();
    s.write(
        "authz.rego",
        "package httpapi.authz\n\ndefault allow := false\n\nallow if {\n\tinput.request_method ==\n}\n",
    );
    // Asked now, the engine names the file, the line and the reason...
    let e = engine.reload().await.unwrap_err();
    assert!(
        e.message()
            .contains("authz.rego: line 7, column 1: expecting expression"),
        "{}",
        e.message()
    );
    // ...and, as after the watcher's own look, the last good set serves.
    tokio::time::sleep(crate::common::RELOAD * 4).await;
    assert_eq!(engine.generation(), generation);
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
    // Bad data is refused the same way.
    s.write(
        "authz.rego",
        "package httpapi.authz\n\nallow if input.request_path[0] == \"finance\"\n",
    );
    s.write("data.json", "{\"subordinates\": ");
    let e = engine.reload().await.unwrap_err();
    assert!(
        e.message().contains("data.json: line 1, column 17"),
        "{}",
        e.message()
    );
    assert_eq!(engine.generation(), generation);
    s.write("data.json", "{}");
    // Fixed, it is picked up.
    s.write(
        "authz.rego",
        "package httpapi.authz\n\nallow if input.request_path[0] == \"finance\"\n",
    );
    s.until(Some(&alice), "GET", "/finance/salary/bob", Decision::Allow)
        .await;
    assert!(engine.generation() > generation);
}

async fn native_input(kind: Kind) {
    let s = Setup::new(kind, |c| {
        c.with_input(portcullis_policy::InputShape::Native)
            .with_rule("httpapi.native", "allow")
            .with_headers(["x-tenant"])
    })
    .await;
    assert_eq!(s.policy.input_shape(), InputShape::Native);
    let carol = caller("carol", &["records"]);
    let headers = [
        ("X-Tenant", "acme"),
        ("authorization", "Bearer the-session-access-token"),
        ("cookie", "session=secret"),
    ];
    let request = RequestInfo::new("PATCH", "/records/7")
        .with_route("/records/{id}", &[("id", "7")])
        .with_query("view=full")
        .with_header_pairs(&headers);
    assert_eq!(
        s.policy.decide(Some(&carol), &request).await.unwrap(),
        Decision::Allow
    );
    let other_tenant = [("x-tenant", "globex")];
    let request = request.with_header_pairs(&other_tenant);
    assert_eq!(
        s.policy.decide(Some(&carol), &request).await.unwrap(),
        Decision::Deny
    );
    if kind == Kind::Remote {
        let input = &s.inputs()[0];
        assert_eq!(input["headers"], serde_json::json!({"x-tenant": "acme"}));
        assert_eq!(input["caller"]["preferred_username"], "carol");
        let text = input.to_string();
        assert!(
            !text.contains("the-session-access-token") && !text.contains("secret"),
            "{text}"
        );
    }
}
