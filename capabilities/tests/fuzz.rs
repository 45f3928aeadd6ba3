//! Property harness over the management bodies (`add`, `remove`, `set`,
//! `revoke`): whatever the body, the answer is a 2xx or a 4xx, never a
//! server error, and no sequence of changes gives anyone a capability the
//! manager does not hold.
//!
//! Fixed seed, bounded cases. To search longer:
//! `PROPTEST_CASES=100000 cargo test -p portcullis-capabilities --test tests fuzz`;
//! `PORTCULLIS_FUZZ_REPORT=1` prints executions per second.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use portcullis_capabilities::{Capabilities, MemoryStore};
use portcullis_core::Secret;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{Value, json};

use crate::service::{SECRET, config, user};

const MANAGER: &str = "boss@example.com";

/// What the manager holds: `moderate` (and `admin`) are beyond it.
const HELD: [&str; 3] = ["user_management", "write", "read"];

fn name() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!("read")),
        Just(json!("write")),
        Just(json!("moderate")),
        Just(json!("user_management")),
        Just(json!("admin")),
        Just(json!("unknown")),
        Just(json!("")),
        Just(json!(1)),
        Just(Value::Null),
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    let email = prop_oneof![
        Just(json!("a@example.com")),
        Just(json!(MANAGER)),
        Just(json!("")),
        Just(json!(7)),
        Just(Value::Null),
    ];
    let shaped = (
        prop::option::of(email),
        prop::option::of(name()),
        prop::option::of(prop_oneof![
            prop::collection::vec(name(), 0..4).prop_map(Value::from),
            name(),
        ]),
        prop::option::of(prop_oneof![
            Just(json!("x.y.z")),
            Just(json!("id-1")),
            name()
        ]),
        prop::option::of("[a-z]{1,6}"),
    )
        .prop_map(|(email, cap, caps, id, extra)| {
            let mut o = serde_json::Map::new();
            for (k, v) in [
                ("email", email),
                ("capability", cap),
                ("capabilities", caps),
                ("id", id),
            ] {
                if let Some(v) = v {
                    o.insert(k.to_owned(), v);
                }
            }
            if let Some(extra) = extra {
                o.insert(extra, json!(true));
            }
            serde_json::to_vec(&Value::Object(o)).expect("json")
        });
    prop_oneof![
        4 => shaped,
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ]
}

#[test]
fn management_bodies_never_grant_beyond_the_manager() {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(1500);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let ops = prop::collection::vec((0u8..4, body()), 1..6);
    let changed = AtomicUsize::new(0);
    let start = Instant::now();
    let result = runner.run(&ops, |ops| {
        let store = Arc::new(MemoryStore::with_users([(MANAGER, HELD)]));
        let caps = Capabilities::builder(config(), store, Secret::new(SECRET))
            .revocations(Arc::new(MemoryStore::new()))
            .build()
            .expect("service");
        let boss = user(MANAGER);
        for (op, body) in ops {
            let answer = rt.block_on(async {
                match op {
                    0 => caps.add(Some(&boss), &body).await,
                    1 => caps.remove(Some(&boss), &body).await,
                    2 => caps.set(Some(&boss), &body).await,
                    _ => caps.revoke(Some(&boss), &body).await,
                }
            });
            match answer {
                Ok(reply) => {
                    changed.fetch_add(1, Ordering::Relaxed);
                    prop_assert_eq!(reply.status, 200);
                }
                Err(e) => {
                    let status = e.to_reply("portcullis").status;
                    prop_assert!((400..500).contains(&status), "{}: {}", status, e);
                }
            }
            let stored = rt.block_on(caps.stored()).expect("stored");
            for (who, held) in &stored {
                for cap in held {
                    prop_assert!(
                        HELD.contains(&cap.as_str()),
                        "{} holds {} after op {}",
                        who,
                        cap,
                        op
                    );
                }
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("management bodies: {e}");
    }
    assert!(changed.into_inner() > 0, "some bodies are accepted");
    if std::env::var_os("PORTCULLIS_FUZZ_REPORT").is_some() {
        let secs = start.elapsed().as_secs_f64();
        #[allow(clippy::print_stderr)]
        {
            eprintln!(
                "management: {cases} cases in {secs:.2} s, {:.0}/s",
                f64::from(cases) / secs
            );
        }
    }
}
