//! `portcullis-load`: what authentication costs an HTTP service, in requests per second.
//!
//! The binary starts, in one process and on `127.0.0.1` only:
//!
//! - a mock OpenID Connect provider ([`portcullis_testing::MockProvider`]);
//! - for each framework in turn (axum 0.8, actix-web 4, poem 3), a service
//!   behind that adapter's authentication layer/middleware, whose verifier
//!   trusts that provider through its JWKS, with two routes: `GET /bare`
//!   (no extractor, answers `ok`) and `GET /protected` (the adapter's
//!   `Caller` extractor, answers the caller's email);
//! - a load generator: HTTP/1.1 over a fixed number of keep-alive connections,
//!   each sending its next request as soon as the previous answer is read.
//!
//! Each run sends a fixed number of requests to `/bare`, then the same number
//! to `/protected` with one valid bearer token, repeated. The token is the same
//! on every request, so after the first one the verifier answers from its
//! verified-token cache: the measurement is the steady-state cost of the layer,
//! the header parsing, the cache lookup and the extractor, against a route
//! that only pays for the layer finding no credentials. A third batch sends
//! `/bare` with a dummy `x-padding` header as long as the bearer header, so
//! that the cost of carrying a ~1 KB token over HTTP (sending and parsing it)
//! is told apart from the cost of authenticating it. Every response must be
//! `200 OK`, or the harness stops with an error.
//!
//! A fourth batch loads `GET /capability`, which requires the `read`
//! capability, held by the token's subject in a user file (`caps.yaml`).
//!
//! It prints the rate and p99 latency of each batch, then the median rate of
//! each route over the runs and the ratios `protected/bare`,
//! `protected/(bare+padding)` and `capability/bare` (1.0 meaning free).
//!
//! Then, in the same process:
//!
//! - policy decisions (axum): `GET /policy`, which fastapi-opa's kind of
//!   Rego policy allows for the token's subject, behind the layer built
//!   with a policy: the embedded engine without and with the decision
//!   cache, and a remote OPA (the mock OPA server on loopback, answering
//!   with the same policy); the medians' ratios against `/bare` and
//!   `/protected` of the same run;
//! - portcullis (axum) against the middleware a service would otherwise
//!   write by hand: `jsonwebtoken::decode` with a `DecodingKey` prepared
//!   once, on every request; with the repeated token (cached) and with
//!   never-seen RS256 tokens, fresh for each run (cold); the medians'
//!   ratio portcullis/hand-written for each;
//! - many distinct users at once (`--users`, ES256 tokens, each sent in
//!   turn): the first request of each misses the verified-token cache, the
//!   later ones hit it; requests per second and p99 latency;
//! - the capability check on each store (axum, `GET /capability`): the user
//!   file, a Redis server and a Redis Cluster of three masters (both
//!   started by [`portcullis_testing`] on loopback), one batch of each per
//!   run, interleaved; the medians' ratios Redis/user file and
//!   Cluster/user file;
//! - the main example's app (`examples/axum`, served in this process) sent
//!   `--memory-tokens` distinct tokens: the process's resident memory
//!   (`VmRSS`) after each quarter, flat once the cache is full.
//!
//! Each batch is bounded by a 60-second deadline, so the harness always
//! stops by itself.
//!
//! ```text
//! portcullis-load [--frameworks axum,actix,poem] [--connections 32] [--requests 100000] [--runs 5] [--warmup 2000]
//!                 [--cold 2000] [--users 10000] [--user-requests 50000] [--memory-tokens 100000] [--quick]
//!                 [--sections frameworks,stores,policies,baseline,users,memory]
//! ```
//!
//! The client and the server share the process and its cores, so the absolute
//! rates understate what the service alone would do; the ratio within one
//! framework is the figure to compare between versions. (actix-web serves
//! from threads of its own beside the client's runtime, axum and poem from
//! the client's tokio runtime: absolute rates are not comparable across
//! frameworks, their protected/bare ratios are.)

#![allow(clippy::print_stdout, reason = "the report is the binary's output")]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use axum::Router;
use axum::extract::{Extension, Request as AxumRequest, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{AUTHORIZATION, HOST, HeaderValue};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use jsonwebtoken::{DecodingKey, Validation};
use portcullis_axum::{AuthLayer, Caller, RequireCapability, capability};
use portcullis_capabilities::{
    Capabilities, CapabilityStore, Change, FileStore, RedisClusterConfig, RedisConfig, RedisStore,
};
use portcullis_core::capabilities::CapabilitiesConfig;
use portcullis_core::config::{IssuerConfig, VerifierConfig};
use portcullis_core::{Algorithm, Authenticator, CredentialsConfig, Secret, TokenVerifier};
use portcullis_oidc::RelyingParty;
use portcullis_testing::MockProvider;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinSet;

/// The email of the token's subject, which `/protected` answers with.
const EMAIL: &str = "load@example.com";

/// The longest a batch may take before it is cut short.
const DEADLINE: Duration = Duration::from_secs(60);

/// How long past the deadline requests may still be in flight before the
/// harness gives up on them.
const GRACE: Duration = Duration::from_secs(5);

const USAGE: &str = "\
usage: portcullis-load [options]

  --frameworks LIST comma-separated, of axum, actix, poem (default all three)
  --connections N   keep-alive connections (default 32)
  --requests N      requests per route and run (default 100000)
  --runs N          measured runs (default 5)
  --warmup N        unmeasured requests per route first (default 2000)
  --cold N          never-seen RS256 tokens per run against the hand-written baseline (default 2000)
  --users N         distinct users under concurrency (default 10000)
  --user-requests N requests spread over those users (default 50000)
  --memory-tokens N distinct tokens sent to the main example before reading its memory (default 100000)
  --sections LIST   comma-separated, of frameworks, stores, policies, baseline, users, memory
                    (default all)
  --quick           a tiny run: 4 connections, 500 requests, 2 runs, 100 warm-up,
                    100 cold tokens, 200 users, 1000 user requests, 2000 memory tokens
  -h, --help        this text";

/// A web framework the harness loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framework {
    Axum,
    Actix,
    Poem,
}

impl Framework {
    const ALL: [Framework; 3] = [Framework::Axum, Framework::Actix, Framework::Poem];

    fn name(self) -> &'static str {
        match self {
            Framework::Axum => "axum",
            Framework::Actix => "actix-web",
            Framework::Poem => "poem",
        }
    }

    fn parse_list(list: &str) -> anyhow::Result<Vec<Framework>> {
        let mut out = Vec::new();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let f = match name {
                "axum" => Framework::Axum,
                "actix" | "actix-web" => Framework::Actix,
                "poem" => Framework::Poem,
                other => bail!("unknown framework `{other}` (axum, actix, poem)"),
            };
            if !out.contains(&f) {
                out.push(f);
            }
        }
        ensure!(!out.is_empty(), "`--frameworks` names none");
        Ok(out)
    }
}

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Options {
    frameworks: Vec<Framework>,
    connections: usize,
    requests: usize,
    runs: usize,
    warmup: usize,
    cold: usize,
    users: usize,
    user_requests: usize,
    memory_tokens: usize,
    /// The sections to run (every one unless `--sections` names some).
    sections: Vec<String>,
}

/// The sections `--sections` may name, in the order they run.
const SECTIONS: [&str; 6] = [
    "frameworks",
    "stores",
    "policies",
    "baseline",
    "users",
    "memory",
];

impl Default for Options {
    fn default() -> Self {
        Self {
            frameworks: Framework::ALL.to_vec(),
            connections: 32,
            requests: 100_000,
            runs: 5,
            warmup: 2_000,
            cold: 2_000,
            users: 10_000,
            user_requests: 50_000,
            memory_tokens: 100_000,
            sections: SECTIONS.map(str::to_owned).to_vec(),
        }
    }
}

impl Options {
    fn quick() -> Self {
        Self {
            frameworks: Framework::ALL.to_vec(),
            connections: 4,
            requests: 500,
            runs: 2,
            warmup: 100,
            cold: 100,
            users: 200,
            user_requests: 1_000,
            memory_tokens: 2_000,
            sections: SECTIONS.map(str::to_owned).to_vec(),
        }
    }

    fn runs(&self, section: &str) -> bool {
        self.sections.iter().any(|s| s == section)
    }

    /// Parses the arguments (without the program name); `Ok(None)` for `--help`.
    /// `--quick` sets the tiny defaults; explicit flags override them wherever they stand.
    fn parse(args: impl IntoIterator<Item = String>) -> anyhow::Result<Option<Self>> {
        let args: Vec<String> = args.into_iter().collect();
        let mut opts = if args.iter().any(|a| a == "--quick") {
            Self::quick()
        } else {
            Self::default()
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (arg.as_str(), None),
            };
            if name == "--frameworks" {
                let value = match inline {
                    Some(v) => v,
                    None => it.next().cloned().context("`--frameworks` needs a value")?,
                };
                opts.frameworks = Framework::parse_list(&value)?;
                continue;
            }
            if name == "--sections" {
                let value = match inline {
                    Some(v) => v,
                    None => it.next().cloned().context("`--sections` needs a value")?,
                };
                opts.sections = value.split(',').map(|s| s.trim().to_owned()).collect();
                for section in &opts.sections {
                    ensure!(
                        SECTIONS.contains(&section.as_str()),
                        "unknown section `{section}` (one of {})",
                        SECTIONS.join(", ")
                    );
                }
                continue;
            }
            let slot = match name {
                "--quick" => continue,
                "-h" | "--help" => return Ok(None),
                "--connections" => &mut opts.connections,
                "--requests" => &mut opts.requests,
                "--runs" => &mut opts.runs,
                "--warmup" => &mut opts.warmup,
                "--cold" => &mut opts.cold,
                "--users" => &mut opts.users,
                "--user-requests" => &mut opts.user_requests,
                "--memory-tokens" => &mut opts.memory_tokens,
                other => bail!("unknown argument `{other}`\n\n{USAGE}"),
            };
            let value = match inline {
                Some(v) => v,
                None => it
                    .next()
                    .cloned()
                    .with_context(|| format!("`{name}` needs a value"))?,
            };
            *slot = value
                .parse()
                .with_context(|| format!("`{name}` takes a whole number, not `{value}`"))?;
        }
        ensure!(opts.connections > 0, "`--connections` must be at least 1");
        ensure!(opts.requests > 0, "`--requests` must be at least 1");
        ensure!(opts.runs > 0, "`--runs` must be at least 1");
        ensure!(opts.cold > 0, "`--cold` must be at least 1");
        ensure!(opts.users > 0, "`--users` must be at least 1");
        Ok(Some(opts))
    }
}

/// The median of `values` (the mean of the middle two for an even count).
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[mid],
        _ => (sorted[mid - 1] + sorted[mid]) / 2.0,
    }
}

async fn bare() -> &'static str {
    "ok"
}

async fn protected(Caller(caller): Caller) -> String {
    caller.principal.email().unwrap_or_default().to_owned()
}

capability!(Read = "read");

async fn with_capability(c: RequireCapability<Read>) -> String {
    c.caller()
        .and_then(|c| c.principal.email())
        .unwrap_or_default()
        .to_owned()
}

async fn actix_capability(c: portcullis_actix::RequireCapability<Read>) -> String {
    c.caller()
        .and_then(|c| c.principal.email())
        .unwrap_or_default()
        .to_owned()
}

#[poem::handler]
async fn poem_capability(c: portcullis_poem::RequireCapability<Read>) -> String {
    c.caller()
        .and_then(|c| c.principal.email())
        .unwrap_or_default()
        .to_owned()
}

async fn actix_protected(portcullis_actix::Caller(caller): portcullis_actix::Caller) -> String {
    caller.principal.email().unwrap_or_default().to_owned()
}

#[poem::handler]
async fn poem_bare() -> &'static str {
    "ok"
}

#[poem::handler]
async fn poem_protected(portcullis_poem::Caller(caller): portcullis_poem::Caller) -> String {
    caller.principal.email().unwrap_or_default().to_owned()
}

/// The service under load, running until `stop` is called.
struct Server {
    addr: SocketAddr,
    stop: Box<dyn FnOnce() + Send>,
}

/// An authenticator trusting `provider`, its keys already fetched.
async fn authenticator(provider: &MockProvider) -> anyhow::Result<Authenticator> {
    let issuer = IssuerConfig::new(provider.issuer())
        .with_jwks_url(provider.jwks_url())
        .with_algorithms([Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA])
        .with_audience(provider.audience());
    let verifier = TokenVerifier::new(VerifierConfig::new([("mock".to_owned(), issuer)]))
        .context("building the verifier")?;
    verifier
        .warm_up()
        .await
        .context("fetching the mock provider's JWKS")?;
    Ok(Authenticator::new(verifier, CredentialsConfig::default()))
}

/// A random secret key for the capabilities service (never printed).
fn random_secret() -> Secret {
    use std::hash::{BuildHasher, RandomState};
    let state = RandomState::new();
    let hex: String = (0..4u64)
        .map(|i| format!("{:016x}", state.hash_one(i)))
        .collect();
    Secret::new(hex)
}

/// Capabilities over a user file in `dir` that grants `read` to [`EMAIL`]
/// (no default capabilities: the check reads the file's assignments).
async fn capabilities(dir: &Path) -> anyhow::Result<Capabilities> {
    let path = dir.join("caps.yaml");
    std::fs::write(&path, format!("{EMAIL}:\n  - read\n")).context("writing the user file")?;
    let store = FileStore::open(path)
        .await
        .context("opening the user file")?;
    capabilities_on(Arc::new(store))
}

/// Capabilities over `store` (no default capabilities: the check reads the
/// store's assignments).
fn capabilities_on(store: Arc<dyn CapabilityStore>) -> anyhow::Result<Capabilities> {
    Capabilities::builder(
        CapabilitiesConfig::new([("read", Vec::<String>::new())]),
        store,
        random_secret(),
    )
    .build()
    .context("building the capabilities service")
}

/// The capability check on the user file, on Redis and on a Redis Cluster
/// (axum), one batch of each per run, interleaved.
async fn on_each_store(
    provider: &MockProvider,
    file_caps: &Capabilities,
    token: &str,
    opts: &Options,
) -> anyhow::Result<()> {
    let redis = portcullis_testing::RedisServer::start();
    let cluster = portcullis_testing::RedisCluster::start();
    // Each Redis store twice: the replica behind the server, and another
    // replica whose changes it must see (the invalidation delay).
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let single = RedisStore::connect(RedisConfig::new(redis.url()))
            .await
            .context("connecting to Redis")?;
        let clustered = RedisStore::connect_cluster(RedisClusterConfig::new(cluster.urls()))
            .await
            .context("connecting to the Redis Cluster")?;
        replicas.push([Arc::new(single), Arc::new(clustered)]);
    }
    let [served, writers] = [replicas.remove(0), replicas.remove(0)];
    let mut servers = vec![(
        "user file",
        start_server(Framework::Axum, provider, file_caps).await?,
    )];
    let mut delays = Vec::new();
    for (name, store) in ["Redis", "Redis Cluster"].into_iter().zip(served.iter()) {
        store
            .update(EMAIL, Change::Add("read".to_owned()))
            .await
            .with_context(|| format!("granting `read` on {name}"))?;
        delays.push(DelayProbe::new(store));
        let caps = capabilities_on(Arc::clone(store) as Arc<dyn CapabilityStore>)?;
        servers.push((name, start_server(Framework::Axum, provider, &caps).await?));
    }
    println!();
    println!("== the capability check on each store (axum, GET /capability)");
    println!(
        "(Redis stores with their local cache; meanwhile another replica changes a user \
         every {} ms, and the delay until the served replica drops it is measured)",
        DELAY_PROBE_EVERY.as_millis()
    );
    let mut targets = Vec::new();
    for (name, server) in &servers {
        check_routes(server.addr, token)
            .await
            .with_context(|| format!("{name}: the routes do not answer as expected"))?;
        let target = Target::new(server.addr, "/capability", Some(token))?;
        if opts.warmup > 0 {
            drive(&target, opts.connections, opts.warmup, DEADLINE).await?;
        }
        targets.push(target);
    }
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); targets.len()];
    let mut p99s: Vec<Vec<f64>> = vec![Vec::new(); targets.len()];
    for i in 1..=opts.runs {
        let mut line = Vec::new();
        for (k, target) in targets.iter().enumerate() {
            // Under load, another replica changes users of this one's store.
            let writer = (k > 0).then(|| delays[k - 1].start(Arc::clone(&writers[k - 1])));
            let b = drive(target, opts.connections, opts.requests, DEADLINE).await;
            if let Some(writer) = writer {
                writer.stop().await?;
            }
            let b = b?;
            line.push(format!("{} {}", servers[k].0, describe(&b)));
            rates[k].push(b.rate());
            p99s[k].push(b.p99.as_secs_f64() * 1e6);
        }
        println!("run {i}/{}: {}", opts.runs, line.join(", "));
    }
    println!(
        "{:<14} {:>12} {:>12} {:>16}",
        "store", "req/s", "p99 µs", "rate/user file"
    );
    let file_rate = median(&rates[0]);
    for (k, (name, _)) in servers.iter().enumerate() {
        println!(
            "{:<14} {:>12.0} {:>12.0} {:>16.3}",
            name,
            median(&rates[k]),
            median(&p99s[k]),
            median(&rates[k]) / file_rate
        );
    }
    println!(
        "{:<14} {:>8} {:>10} {:>10} {:>10} {:>10}   (invalidation delay: another replica's change, \
         from its call to this replica dropping the entry)",
        "store", "changes", "p50 ms", "p99 ms", "max ms", "missed"
    );
    for (k, probe) in delays.iter().enumerate() {
        let (count, p50, p99, max, missed) = probe.summary();
        println!(
            "{:<14} {:>8} {:>10.2} {:>10.2} {:>10.2} {:>10}",
            servers[k + 1].0,
            count,
            p50,
            p99,
            max,
            missed
        );
    }
    for (k, store) in served.iter().enumerate() {
        if let Some(stats) = store.cache_stats() {
            println!(
                "{:<14} cache: {} hits, {} misses, {} invalidations, {} channel losses",
                servers[k + 1].0,
                stats.hits,
                stats.misses,
                stats.invalidations,
                stats.losses
            );
        }
    }
    for (_, server) in servers {
        (server.stop)();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(())
}

/// How often the other replica changes a user during a Redis batch.
const DELAY_PROBE_EVERY: Duration = Duration::from_millis(10);

/// Measures how long a change made through one replica takes to reach
/// another: the served replica reports each user its invalidation channel
/// drops; the writer records when it started each change.
struct DelayProbe {
    started: Arc<std::sync::Mutex<std::collections::HashMap<String, Instant>>>,
    delays: Arc<std::sync::Mutex<Vec<Duration>>>,
    changes: Arc<AtomicUsize>,
}

/// A writer running during one batch.
struct ProbeWriter {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl ProbeWriter {
    async fn stop(self) -> anyhow::Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.context("the probe writer panicked")?
    }
}

impl DelayProbe {
    fn new(served: &RedisStore) -> Self {
        let started: Arc<std::sync::Mutex<std::collections::HashMap<String, Instant>>> =
            Arc::default();
        let delays: Arc<std::sync::Mutex<Vec<Duration>>> = Arc::default();
        let (s, d) = (Arc::clone(&started), Arc::clone(&delays));
        served.observe_invalidations(Some(Arc::new(move |user: &str| {
            let at = Instant::now();
            let began = s
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(user);
            if let Some(began) = began {
                d.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(at - began);
            }
        })));
        Self {
            started,
            delays,
            changes: Arc::default(),
        }
    }

    /// Changes a fresh user through `writer` every [`DELAY_PROBE_EVERY`] until stopped.
    fn start(&self, writer: Arc<RedisStore>) -> ProbeWriter {
        let stop = Arc::new(AtomicBool::new(false));
        let (started, changes, halt) = (
            Arc::clone(&self.started),
            Arc::clone(&self.changes),
            Arc::clone(&stop),
        );
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(DELAY_PROBE_EVERY);
            while !halt.load(Ordering::Relaxed) {
                ticks.tick().await;
                let n = changes.fetch_add(1, Ordering::Relaxed);
                let user = format!("delay-{n}@example.com");
                started
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(user.clone(), Instant::now());
                writer
                    .update(&user, Change::Add("read".to_owned()))
                    .await
                    .context("the other replica's change")?;
            }
            Ok(())
        });
        ProbeWriter { stop, task }
    }

    /// Changes made, p50, p99 and max delay in ms, and changes never seen
    /// (none expected).
    fn summary(&self) -> (usize, f64, f64, f64, usize) {
        let mut delays = self
            .delays
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        delays.sort_unstable();
        let ms = |d: Option<&Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64() * 1e3);
        let at = |q: f64| {
            let i = ((delays.len() as f64 * q).ceil() as usize).saturating_sub(1);
            ms(delays.get(i))
        };
        let missed = self
            .started
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len();
        (
            self.changes.load(Ordering::Relaxed),
            at(0.5),
            at(0.99),
            ms(delays.last()),
            missed,
        )
    }
}

async fn start_server(
    framework: Framework,
    provider: &MockProvider,
    caps: &Capabilities,
) -> anyhow::Result<Server> {
    let auth = authenticator(provider).await?;
    let caps = caps.clone();
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).context("binding 127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let stop: Box<dyn FnOnce() + Send> = match framework {
        Framework::Axum => {
            let app = Router::new()
                .route("/bare", get(bare))
                .route("/protected", get(protected))
                .route("/capability", get(with_capability))
                .layer(AuthLayer::new(auth).with_capabilities(caps));
            let listener = TcpListener::from_std(listener)?;
            let (stop, stopped) = oneshot::channel::<()>();
            tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.await;
                    })
                    .await
            });
            Box::new(move || {
                let _ = stop.send(());
            })
        }
        Framework::Poem => {
            use poem::EndpointExt as _;
            let app = poem::Route::new()
                .at("/bare", poem::get(poem_bare))
                .at("/protected", poem::get(poem_protected))
                .at("/capability", poem::get(poem_capability))
                .with(portcullis_poem::AuthMiddleware::new(auth).with_capabilities(caps));
            let acceptor = poem::listener::TcpAcceptor::from_std(listener)?;
            let task = tokio::spawn(async move {
                let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
            });
            Box::new(move || task.abort())
        }
        Framework::Actix => {
            use actix_web::{App, web};
            let factory = move || {
                App::new()
                    .wrap(
                        portcullis_actix::AuthMiddleware::new(auth.clone())
                            .with_capabilities(caps.clone()),
                    )
                    .route("/bare", web::get().to(bare))
                    .route("/protected", web::get().to(actix_protected))
                    .route("/capability", web::get().to(actix_capability))
            };
            let stop = portcullis_testing::serve::actix_with_workers(listener, factory, 2)
                .context("starting actix-web")?;
            Box::new(stop)
        }
    };
    Ok(Server { addr, stop })
}

/// Bearer headers a target sends, one per request in turn (wrapping around).
#[derive(Debug, Clone)]
struct Bearers {
    values: Arc<[HeaderValue]>,
    next: Arc<AtomicUsize>,
}

impl Bearers {
    fn new<S: AsRef<str>>(tokens: &[S]) -> anyhow::Result<Self> {
        ensure!(!tokens.is_empty(), "no token to send");
        let values = tokens
            .iter()
            .map(|t| HeaderValue::from_str(&format!("Bearer {}", t.as_ref())))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            values: values.into(),
            next: Arc::new(AtomicUsize::new(0)),
        })
    }

    fn next(&self) -> HeaderValue {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.values.len();
        self.values[i].clone()
    }
}

/// One route to load, with the headers every request carries.
#[derive(Debug, Clone)]
struct Target {
    addr: SocketAddr,
    path: &'static str,
    host: HeaderValue,
    authorization: Option<Bearers>,
    padding: Option<HeaderValue>,
}

impl Target {
    fn new(addr: SocketAddr, path: &'static str, token: Option<&str>) -> anyhow::Result<Self> {
        let authorization = token.map(|t| Bearers::new(&[t])).transpose()?;
        Ok(Self {
            addr,
            path,
            host: HeaderValue::from_str(&addr.to_string())?,
            authorization,
            padding: None,
        })
    }

    /// A route sent each of `tokens` in turn.
    fn with_tokens<S: AsRef<str>>(
        addr: SocketAddr,
        path: &'static str,
        tokens: &[S],
    ) -> anyhow::Result<Self> {
        let mut target = Self::new(addr, path, None)?;
        target.authorization = Some(Bearers::new(tokens)?);
        Ok(target)
    }

    /// A route with a dummy `x-padding` header as long as a bearer header for
    /// `token`, so the request costs the same to send and parse as an
    /// authenticated one, minus authentication.
    fn padded(addr: SocketAddr, path: &'static str, token: &str) -> anyhow::Result<Self> {
        let mut target = Self::new(addr, path, None)?;
        target.padding = Some(HeaderValue::from_str(&"p".repeat(token.len() + 7))?);
        Ok(target)
    }

    fn request(&self) -> anyhow::Result<Request<Empty<Bytes>>> {
        let mut req = Request::get(self.path).header(HOST, self.host.clone());
        if let Some(auth) = &self.authorization {
            req = req.header(AUTHORIZATION, auth.next());
        }
        if let Some(padding) = &self.padding {
            req = req.header("x-padding", padding.clone());
        }
        Ok(req.body(Empty::new())?)
    }
}

/// Opens a keep-alive HTTP/1.1 connection to `addr`.
async fn connect(addr: SocketAddr) -> anyhow::Result<SendRequest<Empty<Bytes>>> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    // Ends when the sender is dropped or the server closes the connection.
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Sends one request and reads the whole answer (so the connection can be reused).
async fn send(
    sender: &mut SendRequest<Empty<Bytes>>,
    target: &Target,
) -> anyhow::Result<(StatusCode, Bytes)> {
    sender.ready().await.context("the connection closed")?;
    let resp = sender.send_request(target.request()?).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// Checks, before measuring, that both routes answer as they should.
async fn check_routes(addr: SocketAddr, token: &str) -> anyhow::Result<()> {
    let mut sender = connect(addr).await?;
    let expect = [
        (
            Target::new(addr, "/bare", None)?,
            StatusCode::OK,
            Some("ok"),
        ),
        (
            Target::new(addr, "/protected", Some(token))?,
            StatusCode::OK,
            Some(EMAIL),
        ),
        (
            Target::new(addr, "/protected", None)?,
            StatusCode::UNAUTHORIZED,
            None,
        ),
    ];
    let expect: Vec<_> = expect
        .into_iter()
        .chain(capability_checks(addr, token)?)
        .collect();
    for (target, status, body) in expect {
        let (got, got_body) = send(&mut sender, &target).await?;
        let auth = if target.authorization.is_some() {
            "with"
        } else {
            "without"
        };
        ensure!(
            got == status,
            "GET {} {auth} a token answered {got}, expected {status}",
            target.path
        );
        if let Some(body) = body {
            ensure!(
                got_body == body.as_bytes(),
                "GET {} answered {:?}, expected {body:?}",
                target.path,
                got_body
            );
        }
    }
    Ok(())
}

/// What `/capability` answers with and without a token; empty for servers without it.
fn capability_checks(
    addr: SocketAddr,
    token: &str,
) -> anyhow::Result<Vec<(Target, StatusCode, Option<&'static str>)>> {
    Ok(vec![
        (
            Target::new(addr, "/capability", Some(token))?,
            StatusCode::OK,
            Some(EMAIL),
        ),
        (
            Target::new(addr, "/capability", None)?,
            StatusCode::UNAUTHORIZED,
            None,
        ),
    ])
}

/// The outcome of one batch.
#[derive(Debug, Clone, Copy)]
struct Batch {
    completed: u64,
    elapsed: Duration,
    cut_short: bool,
    /// The 99th percentile of the requests' latencies.
    p99: Duration,
}

impl Batch {
    fn rate(&self) -> f64 {
        self.completed as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Sends `requests` requests to `target` over `connections` keep-alive
/// connections, stopping early at `deadline` or at the first answer that is not 200.
async fn drive(
    target: &Target,
    connections: usize,
    requests: usize,
    deadline: Duration,
) -> anyhow::Result<Batch> {
    let mut senders = Vec::with_capacity(connections);
    for _ in 0..connections {
        senders.push(connect(target.addr).await?);
    }
    let remaining = Arc::new(AtomicI64::new(i64::try_from(requests).unwrap_or(i64::MAX)));
    let failed = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let end = started + deadline;
    let mut workers = JoinSet::new();
    for mut sender in senders {
        let target = target.clone();
        let remaining = Arc::clone(&remaining);
        let failed = Arc::clone(&failed);
        workers.spawn(async move {
            let mut done = 0u64;
            let mut latencies = Vec::new();
            while !failed.load(Ordering::Relaxed) && remaining.fetch_sub(1, Ordering::Relaxed) > 0 {
                if Instant::now() >= end {
                    break;
                }
                let sent = Instant::now();
                match send(&mut sender, &target).await {
                    Ok((StatusCode::OK, _)) => {
                        latencies.push(sent.elapsed());
                        done += 1;
                    }
                    Ok((status, body)) => {
                        failed.store(true, Ordering::Relaxed);
                        bail!(
                            "GET {} answered {status}: {}",
                            target.path,
                            String::from_utf8_lossy(&body)
                        );
                    }
                    Err(e) => {
                        failed.store(true, Ordering::Relaxed);
                        return Err(e.context(format!("GET {}", target.path)));
                    }
                }
            }
            Ok((done, latencies))
        });
    }
    let mut completed = 0;
    let mut latencies = Vec::with_capacity(requests);
    let collect = async {
        while let Some(joined) = workers.join_next().await {
            let (done, mut lat) = joined.context("a load worker panicked")??;
            completed += done;
            latencies.append(&mut lat);
        }
        anyhow::Ok(())
    };
    match tokio::time::timeout_at((end + GRACE).into(), collect).await {
        Ok(result) => result?,
        Err(_) => bail!(
            "GET {}: requests still unanswered {} s after the deadline",
            target.path,
            GRACE.as_secs()
        ),
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let p99 = latencies
        .get((latencies.len() * 99).div_ceil(100).saturating_sub(1))
        .copied()
        .unwrap_or_default();
    Ok(Batch {
        completed,
        elapsed,
        cut_short: completed < requests as u64,
        p99,
    })
}

fn describe(b: &Batch) -> String {
    let mut s = format!(
        "{:>7.0} req/s (p99 {} µs, {} in {:.2} s",
        b.rate(),
        b.p99.as_micros(),
        b.completed,
        b.elapsed.as_secs_f64()
    );
    if b.cut_short {
        s.push_str(&format!(
            ", cut short at the {} s deadline",
            DEADLINE.as_secs()
        ));
    }
    s.push(')');
    s
}

/// The medians of one framework's runs.
struct Medians {
    framework: Framework,
    bare: f64,
    padded: f64,
    protected: f64,
    capability: f64,
}

async fn run_framework(
    framework: Framework,
    provider: &MockProvider,
    caps: &Capabilities,
    token: &str,
    opts: &Options,
) -> anyhow::Result<Medians> {
    let server = start_server(framework, provider, caps).await?;
    let addr = server.addr;
    check_routes(addr, token)
        .await
        .with_context(|| format!("{}: the routes do not answer as expected", framework.name()))?;
    let targets = [
        Target::new(addr, "/bare", None)?,
        Target::padded(addr, "/bare", token)?,
        Target::new(addr, "/protected", Some(token))?,
        Target::new(addr, "/capability", Some(token))?,
    ];
    println!("== {}", framework.name());
    if opts.warmup > 0 {
        for t in &targets {
            drive(t, opts.connections, opts.warmup, DEADLINE).await?;
        }
    }
    let mut rates: [Vec<f64>; 4] = Default::default();
    for i in 1..=opts.runs {
        let mut line = Vec::new();
        for (t, rates) in targets.iter().zip(&mut rates) {
            let b = drive(t, opts.connections, opts.requests, DEADLINE).await?;
            line.push(describe(&b));
            rates.push(b.rate());
        }
        println!(
            "run {i}/{}: bare {}, bare+padding {}, protected {}, capability {}",
            opts.runs, line[0], line[1], line[2], line[3]
        );
    }
    (server.stop)();
    // Let in-flight connections wind down before the next framework starts.
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(Medians {
        framework,
        bare: median(&rates[0]),
        padded: median(&rates[1]),
        protected: median(&rates[2]),
        capability: median(&rates[3]),
    })
}

/// The claims the hand-written middleware keeps.
#[derive(Debug, Clone, serde::Deserialize)]
struct HandClaims {
    email: Option<String>,
}

/// What a hand-written middleware holds: the provider's key, decoded once.
#[derive(Clone)]
struct HandWritten {
    key: Arc<DecodingKey>,
    validation: Arc<Validation>,
}

/// The middleware a service would otherwise write: `jsonwebtoken::decode`
/// with a prepared `DecodingKey` on every request, the claims in the
/// request's extensions.
async fn hand_auth(State(hw): State<HandWritten>, mut req: AxumRequest, next: Next) -> Response {
    let token = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(token) = token else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    match jsonwebtoken::decode::<HandClaims>(token, &hw.key, &hw.validation) {
        Ok(data) => {
            req.extensions_mut().insert(data.claims);
            next.run(req).await
        }
        Err(_) => StatusCode::UNAUTHORIZED.into_response(),
    }
}

async fn hand_protected(Extension(claims): Extension<HandClaims>) -> String {
    claims.email.unwrap_or_default()
}

/// The hand-written baseline on axum: `/protected` behind [`hand_auth`],
/// with the provider's RS256 key from its JWKS.
async fn start_hand_written(provider: &MockProvider) -> anyhow::Result<Server> {
    let jwks = provider.jwks();
    let jwk = jwks["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kty"] == "RSA"))
        .context("the provider publishes no RSA key")?;
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone())?;
    let mut validation = Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_issuer(&[provider.issuer()]);
    validation.set_audience(&[provider.audience()]);
    let state = HandWritten {
        key: Arc::new(DecodingKey::from_jwk(&jwk)?),
        validation: Arc::new(validation),
    };
    let app = Router::new()
        .route("/protected", get(hand_protected))
        .layer(axum::middleware::from_fn_with_state(state, hand_auth));
    serve_axum(app).await
}

/// Serves `app` on a free loopback port until stopped.
async fn serve_axum(app: Router) -> anyhow::Result<Server> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    Ok(Server {
        addr,
        stop: Box::new(move || {
            let _ = stop.send(());
        }),
    })
}

/// The policy of the policy routes: `GET /policy` for the token's subject.
const LOAD_POLICY: &str = "package httpapi.authz\n\ndefault allow := false\n\n\
    allow if {\n\tinput.request_method == \"GET\"\n\tinput.request_path == [\"policy\"]\n\
    \tinput.email == \"load@example.com\"\n}\n";

/// `/bare` and `/protected` without a policy, and `/policy` behind the
/// embedded engine (cache off, cache on) and a remote OPA server, on axum.
async fn against_policies(
    provider: &MockProvider,
    token: &str,
    opts: &Options,
) -> anyhow::Result<()> {
    use portcullis_axum::portcullis_policy::{DecisionCacheConfig, Policy, PolicyConfig};
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("authz.rego"), LOAD_POLICY)?;
    let opa = portcullis_testing::MockOpa::start(dir.path())
        .await
        .context("starting the mock OPA server")?;
    let configs = [
        ("embedded", PolicyConfig::rego(dir.path())),
        (
            "embedded+cache",
            PolicyConfig::rego(dir.path()).with_cache(DecisionCacheConfig::enabled()),
        ),
        ("remote OPA", PolicyConfig::opa(opa.url())),
    ];
    let plain = serve_axum(
        Router::new()
            .route("/bare", get(bare))
            .route("/protected", get(protected))
            .layer(AuthLayer::new(authenticator(provider).await?)),
    )
    .await?;
    let mut servers = vec![plain];
    let mut targets = vec![
        Target::new(servers[0].addr, "/bare", None)?,
        Target::new(servers[0].addr, "/protected", Some(token))?,
    ];
    for (_, config) in &configs {
        let policy = Policy::from_config(config).await?;
        let layer = AuthLayer::new(authenticator(provider).await?).with_policy(policy)?;
        let server =
            serve_axum(Router::new().route("/policy", get(protected)).layer(layer)).await?;
        targets.push(Target::new(server.addr, "/policy", Some(token))?);
        servers.push(server);
    }
    println!();
    println!("== policy decisions (axum)");
    for t in &targets {
        let b = drive(t, opts.connections, opts.warmup.max(1), DEADLINE).await?;
        ensure!(b.completed > 0, "GET {}: no answer", t.path);
    }
    let names = [
        "bare",
        "protected",
        configs[0].0,
        configs[1].0,
        configs[2].0,
    ];
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); targets.len()];
    for i in 1..=opts.runs {
        let mut line = Vec::new();
        for ((t, rates), name) in targets.iter().zip(&mut rates).zip(names) {
            let b = drive(t, opts.connections, opts.requests, DEADLINE).await?;
            line.push(format!("{name} {}", describe(&b)));
            rates.push(b.rate());
        }
        println!("run {i}/{}: {}", opts.runs, line.join(", "));
    }
    for server in servers {
        (server.stop)();
    }
    opa.shutdown();
    let medians: Vec<f64> = rates.iter().map(|r| median(r)).collect();
    println!(
        "{:<16} {:>12} {:>16} {:>20}",
        "route", "req/s", "ratio to bare", "ratio to protected"
    );
    for (name, m) in names.iter().zip(&medians) {
        println!(
            "{:<16} {:>12.0} {:>16.3} {:>20.3}",
            name,
            m,
            m / medians[0],
            m / medians[1]
        );
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(())
}

/// `count` distinct tokens (subject and email `user-<first + i>`), signed with `alg`.
fn mint(provider: &MockProvider, alg: Algorithm, first: usize, count: usize) -> Vec<String> {
    (first..first + count)
        .map(|i| {
            provider
                .token()
                .algorithm(alg)
                .subject(format!("user-{i}"))
                .email(format!("user-{i}@example.com"))
                .expires_in(3_600)
                .sign()
        })
        .collect()
}

/// portcullis against the hand-written middleware, on axum, with a repeated
/// token (cached) and with never-seen RS256 tokens (cold).
async fn against_hand_written(
    provider: &MockProvider,
    caps: &Capabilities,
    token: &str,
    opts: &Options,
) -> anyhow::Result<()> {
    let ours = start_server(Framework::Axum, provider, caps).await?;
    let hand = start_hand_written(provider).await?;
    let mut sender = connect(hand.addr).await?;
    let (status, body) = send(
        &mut sender,
        &Target::new(hand.addr, "/protected", Some(token))?,
    )
    .await?;
    ensure!(
        status == StatusCode::OK && body == EMAIL.as_bytes(),
        "the hand-written middleware answered {status}"
    );
    drop(sender);
    println!();
    println!("== portcullis vs hand-written jsonwebtoken middleware (axum, RS256)");
    let ours_cached = Target::new(ours.addr, "/protected", Some(token))?;
    let hand_cached = Target::new(hand.addr, "/protected", Some(token))?;
    if opts.warmup > 0 {
        drive(&ours_cached, opts.connections, opts.warmup, DEADLINE).await?;
        drive(&hand_cached, opts.connections, opts.warmup, DEADLINE).await?;
    }
    let mut rates: [Vec<f64>; 4] = Default::default();
    for i in 0..opts.runs {
        let a = drive(&ours_cached, opts.connections, opts.requests, DEADLINE).await?;
        let b = drive(&hand_cached, opts.connections, opts.requests, DEADLINE).await?;
        // Fresh tokens each run: neither side has seen them.
        let cold = mint(
            provider,
            Algorithm::RS256,
            1_000_000 + i * opts.cold,
            opts.cold,
        );
        let ours_cold = Target::with_tokens(ours.addr, "/protected", &cold)?;
        let hand_cold = Target::with_tokens(hand.addr, "/protected", &cold)?;
        // Each side goes first every other run: neither gets the quieter slot.
        let (c, d) = if i % 2 == 0 {
            let c = drive(&ours_cold, opts.connections, opts.cold, DEADLINE).await?;
            (
                c,
                drive(&hand_cold, opts.connections, opts.cold, DEADLINE).await?,
            )
        } else {
            let d = drive(&hand_cold, opts.connections, opts.cold, DEADLINE).await?;
            (
                drive(&ours_cold, opts.connections, opts.cold, DEADLINE).await?,
                d,
            )
        };
        println!(
            "run {}/{}: cached: portcullis {}, hand-written {}; cold: portcullis {}, hand-written {}",
            i + 1,
            opts.runs,
            describe(&a),
            describe(&b),
            describe(&c),
            describe(&d)
        );
        for (rates, batch) in rates.iter_mut().zip([a, b, c, d]) {
            rates.push(batch.rate());
        }
    }
    (ours.stop)();
    (hand.stop)();
    let m: Vec<f64> = rates.iter().map(|r| median(r)).collect();
    println!(
        "portcullis/hand-written: cached {:.3} ({:.0} vs {:.0} req/s), cold {:.3} ({:.0} vs {:.0} req/s)",
        m[0] / m[1],
        m[0],
        m[1],
        m[2] / m[3],
        m[2],
        m[3]
    );
    Ok(())
}

/// Many distinct users at once (ES256 tokens): the first request of each
/// misses the verified-token cache, the later ones hit it.
async fn many_users(
    provider: &MockProvider,
    caps: &Capabilities,
    opts: &Options,
) -> anyhow::Result<()> {
    let server = start_server(Framework::Axum, provider, caps).await?;
    let tokens = mint(provider, Algorithm::ES256, 0, opts.users);
    let target = Target::with_tokens(server.addr, "/protected", &tokens)?;
    println!();
    println!(
        "== {} users, {} requests over {} connections (axum, ES256)",
        opts.users, opts.user_requests, opts.connections
    );
    for i in 1..=opts.runs {
        let b = drive(&target, opts.connections, opts.user_requests, DEADLINE).await?;
        println!("run {i}/{}: {}", opts.runs, describe(&b));
    }
    (server.stop)();
    Ok(())
}

/// The process's resident memory, in KiB (Linux), if it can be read.
fn resident_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The main example's app (easy-oauth's README app on axum, in this
/// process) sent `--memory-tokens` distinct tokens on `GET /read`: the
/// process's resident memory after each quarter, to show that the
/// verified-token cache stays within its bound.
async fn example_memory(provider: &MockProvider, opts: &Options) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let files = portcullis_testing::demo::Files {
        config: example_axum::CONFIG_FILE,
        users: example_axum::USER_FILE,
    };
    let cfg = portcullis_testing::demo::mock_config(
        files,
        provider,
        &format!("http://{addr}"),
        dir.path(),
    )?;
    let rp = RelyingParty::builder(cfg)
        .build()
        .await
        .context("building the example's relying party")?;
    let app = example_axum::app(rp);
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    println!();
    println!(
        "== main example (examples/axum), {} distinct tokens on GET /read",
        opts.memory_tokens
    );
    println!(
        "resident memory before: {} KiB",
        resident_kib().unwrap_or(0)
    );
    let quarter = opts.memory_tokens.div_ceil(4);
    let chunk = 5_000.min(quarter);
    let mut sent = 0;
    while sent < opts.memory_tokens {
        let stop_at = (sent + quarter).min(opts.memory_tokens);
        while sent < stop_at {
            let n = chunk.min(stop_at - sent);
            let tokens = mint(provider, Algorithm::ES256, 2_000_000 + sent, n);
            let target = Target::with_tokens(addr, "/read", &tokens)?;
            drive(&target, opts.connections, n, DEADLINE).await?;
            sent += n;
        }
        println!(
            "after {sent} tokens: resident memory {} KiB",
            resident_kib().unwrap_or(0)
        );
    }
    let _ = stop.send(());
    Ok(())
}

async fn run(opts: Options) -> anyhow::Result<()> {
    let provider = MockProvider::start()
        .await
        .context("starting the mock provider")?;
    // Longer than any run can last: the token must stay valid throughout.
    let token = provider.token().email(EMAIL).expires_in(3_600).sign();
    let dir = tempfile::tempdir()?;
    let caps = capabilities(dir.path()).await?;
    println!(
        "portcullis-load: {} connections, {} requests per route and run, {} runs, {} warm-up requests",
        opts.connections, opts.requests, opts.runs, opts.warmup
    );
    let mut all = Vec::new();
    if opts.runs("frameworks") {
        for &framework in &opts.frameworks {
            all.push(run_framework(framework, &provider, &caps, &token, &opts).await?);
        }
        println!();
    }
    if !all.is_empty() {
        println!(
            "{:<10} {:>12} {:>14} {:>12} {:>12} {:>16} {:>26} {:>17}",
            "framework",
            "bare req/s",
            "+padding req/s",
            "protected",
            "capability",
            "protected/bare",
            "protected/(bare+padding)",
            "capability/bare"
        );
        for m in &all {
            println!(
                "{:<10} {:>12.0} {:>14.0} {:>12.0} {:>12.0} {:>16.3} {:>26.3} {:>17.3}",
                m.framework.name(),
                m.bare,
                m.padded,
                m.protected,
                m.capability,
                m.protected / m.bare,
                m.protected / m.padded,
                m.capability / m.bare
            );
        }
    }
    if opts.runs("stores") {
        on_each_store(&provider, &caps, &token, &opts).await?;
    }
    if opts.runs("policies") {
        against_policies(&provider, &token, &opts).await?;
    }
    if opts.runs("baseline") {
        against_hand_written(&provider, &caps, &token, &opts).await?;
    }
    if opts.runs("users") {
        many_users(&provider, &caps, &opts).await?;
    }
    if opts.runs("memory") {
        example_memory(&provider, &opts).await?;
    }
    provider.shutdown();
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let Some(opts) = Options::parse(std::env::args().skip(1))? else {
        println!("{USAGE}");
        return Ok(());
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(run(opts));
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> anyhow::Result<Option<Options>> {
        Options::parse(args.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn arguments() {
        assert_eq!(parse(&[]).unwrap(), Some(Options::default()));
        assert_eq!(parse(&["--quick"]).unwrap(), Some(Options::quick()));
        let o = parse(&[
            "--connections",
            "8",
            "--requests=100",
            "--quick",
            "--runs",
            "3",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            (o.connections, o.requests, o.runs, o.warmup),
            (8, 100, 3, Options::quick().warmup)
        );
        assert_eq!(parse(&["--help"]).unwrap(), None);
        let f = parse(&["--frameworks", "poem,axum,poem"]).unwrap().unwrap();
        assert_eq!(f.frameworks, [Framework::Poem, Framework::Axum]);
        assert!(parse(&["--frameworks", "rocket"]).is_err());
        assert!(parse(&["--frameworks="]).is_err());
        assert!(parse(&["--runs"]).is_err());
        assert!(parse(&["--runs", "x"]).is_err());
        assert!(parse(&["--runs", "0"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
        let s = parse(&["--sections", "stores,memory"]).unwrap().unwrap();
        assert!(s.runs("stores") && s.runs("memory") && !s.runs("frameworks"));
        assert!(Options::default().runs("frameworks"));
        assert!(parse(&["--sections", "stores,cache"]).is_err());
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }
}
