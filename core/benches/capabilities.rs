//! Capability checks on easy-oauth's example graph (`read`, `write`,
//! `moderate`, `announce`, `user_management`, and `admin` from `auto_admin`).
//!
//! - `contains_hit` / `contains_miss`: [`CapSet::contains`] on the expanded
//!   set of a user holding `moderate` and `announce`, for a capability the
//!   user holds (`read`, implied) and one it does not (`user_management`):
//!   what a per-request capability check costs;
//! - `expand_2`: [`CapabilityGraph::expand`] of that user's two stored names,
//!   what building a caller's set costs.
//!
//! Run with `cargo bench -p portcullis-core --bench capabilities`; `cargo test
//! --benches` runs every measurement once as a smoke test.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_core::config::{Format, load_from_str};
use portcullis_core::{CapSet, CapabilitiesConfig, CapabilityGraph};

/// easy-oauth's README configuration, `capabilities` block.
const EASY_OAUTH_YAML: &str = "\
graph:
  read: []
  write: [read]
  moderate: [read, write]
  announce: [read, write]
  user_management: []
auto_admin: true
user_file: caps.yaml
default_capabilities: [read]
guest_capabilities: []
";

/// The stored capabilities of `friend@rainbows.com` in easy-oauth's example user file.
const USER: [&str; 2] = ["moderate", "announce"];

fn bench_capabilities(c: &mut Criterion) {
    let config: CapabilitiesConfig =
        load_from_str(EASY_OAUTH_YAML, Format::Yaml, &[]).expect("configuration");
    let graph = CapabilityGraph::new(&config).expect("graph");
    let user: CapSet = graph.expand(USER).set;
    let read = graph.id("read").expect("read");
    let user_management = graph.user_management().expect("user_management");
    assert!(user.contains(read));
    assert!(!user.contains(user_management));

    let mut group = c.benchmark_group("capabilities");
    group.bench_function("contains_hit", |b| {
        b.iter(|| black_box(&user).contains(black_box(read)));
    });
    group.bench_function("contains_miss", |b| {
        b.iter(|| black_box(&user).contains(black_box(user_management)));
    });
    group.bench_function("expand_2", |b| {
        b.iter(|| graph.expand(black_box(USER)));
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_capabilities
}
criterion_main!(benches);
