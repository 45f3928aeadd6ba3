//! `portcullis-load`: what authentication costs an HTTP service, in requests per second.
//!
//! The binary starts, in one process and on `127.0.0.1` only:
//!
//! - a mock OpenID Connect provider ([`portcullis_testing::MockProvider`]);
//! - an axum 0.8 service behind [`portcullis_axum::AuthLayer`], whose verifier
//!   trusts that provider through its JWKS, with two routes: `GET /bare`
//!   (no extractor, answers `ok`) and `GET /protected` (the
//!   [`portcullis_axum::Caller`] extractor, answers the caller's email);
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
//! It prints the rate of each batch, then the median rate of each route over
//! the runs and the ratios `protected/bare` and `protected/(bare+padding)`
//! (1.0 meaning free). Each batch
//! is also bounded by a 60-second deadline, so the harness always stops by
//! itself.
//!
//! ```text
//! portcullis-load [--connections 32] [--requests 100000] [--runs 5] [--warmup 2000] [--quick]
//! ```
//!
//! The client and the server share the process and its cores, so the absolute
//! rates understate what the service alone would do; the ratio is the figure
//! to compare between versions.

#![allow(clippy::print_stdout, reason = "the report is the binary's output")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use axum::Router;
use axum::routing::get;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{AUTHORIZATION, HOST, HeaderValue};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use portcullis_axum::{AuthLayer, Caller};
use portcullis_core::config::{IssuerConfig, VerifierConfig};
use portcullis_core::{Authenticator, CredentialsConfig, TokenVerifier};
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

  --connections N   keep-alive connections (default 32)
  --requests N      requests per route and run (default 100000)
  --runs N          measured runs (default 5)
  --warmup N        unmeasured requests per route first (default 2000)
  --quick           a tiny run: 4 connections, 500 requests, 2 runs, 100 warm-up
  -h, --help        this text";

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Options {
    connections: usize,
    requests: usize,
    runs: usize,
    warmup: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            connections: 32,
            requests: 100_000,
            runs: 5,
            warmup: 2_000,
        }
    }
}

impl Options {
    fn quick() -> Self {
        Self {
            connections: 4,
            requests: 500,
            runs: 2,
            warmup: 100,
        }
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
            let slot = match name {
                "--quick" => continue,
                "-h" | "--help" => return Ok(None),
                "--connections" => &mut opts.connections,
                "--requests" => &mut opts.requests,
                "--runs" => &mut opts.runs,
                "--warmup" => &mut opts.warmup,
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

/// The service under load, running until `stop` fires.
struct Server {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start_server(provider: &MockProvider) -> anyhow::Result<Server> {
    let issuer = IssuerConfig::new(provider.issuer())
        .with_jwks_url(provider.jwks_url())
        .with_audience(provider.audience());
    let verifier = TokenVerifier::new(VerifierConfig::new([("mock".to_owned(), issuer)]))
        .context("building the verifier")?;
    verifier
        .warm_up()
        .await
        .context("fetching the mock provider's JWKS")?;
    let auth = Authenticator::new(
        verifier,
        CredentialsConfig::default().with_auto_error(false),
    );
    let app = Router::new()
        .route("/bare", get(bare))
        .route("/protected", get(protected))
        .layer(AuthLayer::new(auth));
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .context("binding 127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    Ok(Server { addr, stop, task })
}

/// One route to load, with the headers every request carries.
#[derive(Debug, Clone)]
struct Target {
    addr: SocketAddr,
    path: &'static str,
    host: HeaderValue,
    authorization: Option<HeaderValue>,
    padding: Option<HeaderValue>,
}

impl Target {
    fn new(addr: SocketAddr, path: &'static str, token: Option<&str>) -> anyhow::Result<Self> {
        let authorization = token
            .map(|t| HeaderValue::from_str(&format!("Bearer {t}")))
            .transpose()?;
        Ok(Self {
            addr,
            path,
            host: HeaderValue::from_str(&addr.to_string())?,
            authorization,
            padding: None,
        })
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
            req = req.header(AUTHORIZATION, auth.clone());
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

/// The outcome of one batch.
#[derive(Debug, Clone, Copy)]
struct Batch {
    completed: u64,
    elapsed: Duration,
    cut_short: bool,
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
            while !failed.load(Ordering::Relaxed) && remaining.fetch_sub(1, Ordering::Relaxed) > 0 {
                if Instant::now() >= end {
                    break;
                }
                match send(&mut sender, &target).await {
                    Ok((StatusCode::OK, _)) => done += 1,
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
            Ok(done)
        });
    }
    let mut completed = 0;
    let collect = async {
        while let Some(joined) = workers.join_next().await {
            completed += joined.context("a load worker panicked")??;
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
    Ok(Batch {
        completed,
        elapsed,
        cut_short: completed < requests as u64,
    })
}

fn describe(b: &Batch) -> String {
    let mut s = format!(
        "{:>7.0} req/s ({} in {:.2} s",
        b.rate(),
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

async fn run(opts: Options) -> anyhow::Result<()> {
    let provider = MockProvider::start()
        .await
        .context("starting the mock provider")?;
    // Longer than any run can last: the token must stay valid throughout.
    let token = provider.token().email(EMAIL).expires_in(3_600).sign();
    let server = start_server(&provider).await?;
    let addr = server.addr;
    check_routes(addr, &token).await?;

    let bare = Target::new(addr, "/bare", None)?;
    let padded = Target::padded(addr, "/bare", &token)?;
    let protected = Target::new(addr, "/protected", Some(&token))?;
    println!(
        "portcullis-load: {} connections, {} requests per route and run, {} runs, {} warm-up requests",
        opts.connections, opts.requests, opts.runs, opts.warmup
    );
    if opts.warmup > 0 {
        drive(&bare, opts.connections, opts.warmup, DEADLINE).await?;
        drive(&padded, opts.connections, opts.warmup, DEADLINE).await?;
        drive(&protected, opts.connections, opts.warmup, DEADLINE).await?;
    }

    let mut bare_rates = Vec::with_capacity(opts.runs);
    let mut padded_rates = Vec::with_capacity(opts.runs);
    let mut protected_rates = Vec::with_capacity(opts.runs);
    for i in 1..=opts.runs {
        let b = drive(&bare, opts.connections, opts.requests, DEADLINE).await?;
        let d = drive(&padded, opts.connections, opts.requests, DEADLINE).await?;
        let p = drive(&protected, opts.connections, opts.requests, DEADLINE).await?;
        println!(
            "run {i}/{}: bare {}, bare+padding {}, protected {}",
            opts.runs,
            describe(&b),
            describe(&d),
            describe(&p)
        );
        bare_rates.push(b.rate());
        padded_rates.push(d.rate());
        protected_rates.push(p.rate());
    }

    let bare_median = median(&bare_rates);
    let padded_median = median(&padded_rates);
    let protected_median = median(&protected_rates);
    println!(
        "bare: median {bare_median:.0} req/s over {} runs",
        opts.runs
    );
    println!(
        "bare+padding (same request size as protected): median {padded_median:.0} req/s over {} runs",
        opts.runs
    );
    println!(
        "protected: median {protected_median:.0} req/s over {} runs",
        opts.runs
    );
    println!(
        "ratio protected/bare: {:.3}",
        protected_median / bare_median
    );
    println!(
        "ratio protected/(bare+padding): {:.3}",
        protected_median / padded_median
    );

    let _ = server.stop.send(());
    // Connections still open past the grace period are ended by the runtime's shutdown.
    if let Ok(joined) = tokio::time::timeout(GRACE, server.task).await {
        joined
            .context("the server panicked")?
            .context("the server failed")?;
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
        assert!(parse(&["--runs"]).is_err());
        assert!(parse(&["--runs", "x"]).is_err());
        assert!(parse(&["--runs", "0"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }
}
