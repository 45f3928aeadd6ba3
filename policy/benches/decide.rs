//! Policy decision cost on the embedded engine, against the bare capability
//! check measured in the same run.
//!
//! The policy is fastapi-opa's README policy (a user reads their own
//! salary, `finance` members read anyone's, guests read `/public`), the
//! caller alice with a handful of claims, the request `GET
//! /finance/salary/alice`:
//!
//! - `capability_check`: [`CapSet::contains`] on easy-oauth's example
//!   graph, what a capability guard costs per request: the floor;
//! - `embedded_uncached`: [`Policy::decide`] without a cache: the input
//!   built from the claims and the request, the rule evaluated by regorus;
//! - `embedded_cached`: the same with the decision cache on, the decision
//!   made once before measuring: what a repeated request costs.
//!
//! The embedded engine decides on the calling thread, so each decision's
//! future is ready at its first poll: it is polled once, with no runtime
//! around it. Decision events are off (no subscriber).
//!
//! After criterion's groups, `ratios` measures the three interleaved (a
//! batch of each in turn, many rounds) and prints the medians over the
//! rounds and each path's time divided by the capability check's: on a
//! shared, noisy machine the ratios hold where absolute times drift. Goals:
//! embedded under 10 µs, cached under 0.5 µs.
//!
//! Run with `cargo bench -p portcullis-policy --bench decide`; `cargo test
//! --benches` runs every measurement once as a smoke test.

#![allow(clippy::print_stdout, reason = "the ratios are the bench's output")]

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_core::config::{Format, load_from_str};
use portcullis_core::{
    Authenticated, CapId, CapSet, CapabilitiesConfig, CapabilityGraph, RawToken,
};
use portcullis_policy::{Decision, DecisionCacheConfig, Policy, PolicyConfig, RequestInfo};

/// fastapi-opa's README policy, in Rego v1.
const POLICY: &str = r#"package httpapi.authz

default allow := false

allow if {
    input.request_method == "GET"
    input.request_path == ["finance", "salary", input.preferred_username]
}

allow if {
    input.request_method == "GET"
    input.request_path[0] == "finance"
    "finance" in input.groups
}

allow if input.request_path == ["public"]
"#;

/// easy-oauth's README configuration, `capabilities` block.
const CAPABILITIES: &str = "\
graph:
  read: []
  write: [read]
  moderate: [read, write]
  announce: [read, write]
  user_management: []
default_capabilities: [read]
guest_capabilities: []
";

struct Fixture {
    _dir: tempfile::TempDir,
    uncached: Policy,
    cached: Policy,
    alice: Authenticated,
    user: CapSet,
    read: CapId,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::write(dir.path().join("authz.rego"), POLICY).expect("policy file");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let config = PolicyConfig::rego(dir.path()).with_reload_interval(Duration::ZERO);
    let uncached = rt
        .block_on(Policy::from_config(&config))
        .expect("the policy loads");
    let cached = rt
        .block_on(Policy::from_config(
            &config.with_cache(DecisionCacheConfig::enabled()),
        ))
        .expect("the policy loads");
    let claims = serde_json::json!({
        "iss": "https://id.example.com", "sub": "7f3c0d4e-1b2a", "aud": "api",
        "exp": 4_000_000_000u64, "iat": 1_700_000_000u64,
        "preferred_username": "alice", "email": "alice@example.com",
        "email_verified": true, "groups": ["staff", "engineering"],
        "scope": "openid email profile",
    });
    let serde_json::Value::Object(claims) = claims else {
        unreachable!()
    };
    let principal = portcullis_core::dangerous::principal_from_unverified_claims(
        "https://id.example.com",
        claims,
        RawToken::new(""),
        4_000_000_000,
    )
    .expect("principal");
    let capabilities: CapabilitiesConfig =
        load_from_str(CAPABILITIES, Format::Yaml, &[]).expect("capabilities");
    let graph = CapabilityGraph::new(&capabilities).expect("graph");
    Fixture {
        _dir: dir,
        uncached,
        cached,
        alice: portcullis_core::dangerous::authenticated_unverified(Arc::new(principal)),
        user: graph.expand(["moderate", "announce"]).set,
        read: graph.id("read").expect("read"),
    }
}

/// Polls a future once: the embedded engine decides at the first poll.
fn ready<T>(future: impl Future<Output = T>) -> T {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(value) => value,
        Poll::Pending => panic!("the embedded engine decides at the first poll"),
    }
}

fn decide(policy: &Policy, alice: &Authenticated) -> Decision {
    let request = RequestInfo::new(black_box("GET"), black_box("/finance/salary/alice"));
    ready(policy.decide(Some(alice), &request)).expect("a decision")
}

fn bench_decide(c: &mut Criterion) {
    let f = fixture();
    assert!(f.user.contains(f.read));
    assert_eq!(decide(&f.uncached, &f.alice), Decision::Allow);
    assert_eq!(decide(&f.cached, &f.alice), Decision::Allow);
    assert_eq!(f.cached.cached_decisions(), 1);

    let mut group = c.benchmark_group("policy");
    group.bench_function("capability_check", |b| {
        b.iter(|| black_box(&f.user).contains(black_box(f.read)));
    });
    group.bench_function("embedded_uncached", |b| {
        b.iter(|| decide(&f.uncached, &f.alice));
    });
    group.bench_function("embedded_cached", |b| {
        b.iter(|| decide(&f.cached, &f.alice));
    });
    group.finish();
}

/// The median of `values`.
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The three paths interleaved: medians and ratios to the capability check.
fn ratios(_c: &mut Criterion) {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not.
    let full = std::env::args().any(|a| a == "--bench");
    let (rounds, batch) = if full { (41, 2_000) } else { (1, 1) };
    let f = fixture();
    decide(&f.cached, &f.alice);
    let time = |run: &dyn Fn()| {
        let started = std::time::Instant::now();
        for _ in 0..batch {
            run();
        }
        started.elapsed().as_secs_f64() / f64::from(batch)
    };
    let check = || {
        black_box(black_box(&f.user).contains(black_box(f.read)));
    };
    let uncached = || {
        black_box(decide(&f.uncached, &f.alice));
    };
    let cached = || {
        black_box(decide(&f.cached, &f.alice));
    };
    let (mut fl, mut u, mut h, mut ur, mut hr) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        // A batch of checks is too short to time alone: ten of them.
        let base = (0..10).map(|_| time(&check)).sum::<f64>() / 10.0;
        let uncached = time(&uncached);
        let cached = time(&cached);
        fl.push(base);
        u.push(uncached);
        h.push(cached);
        ur.push(uncached / base);
        hr.push(cached / base);
    }
    println!(
        "capability check {:.2} ns; embedded uncached {:.2} µs (goal < 10), cached {:.0} ns (goal < 500); \
         uncached/check {:.0}, cached/check {:.1} (medians of {rounds} interleaved rounds)",
        median(&mut fl) * 1e9,
        median(&mut u) * 1e6,
        median(&mut h) * 1e9,
        median(&mut ur),
        median(&mut hr),
    );
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_decide, ratios
}
criterion_main!(benches);
