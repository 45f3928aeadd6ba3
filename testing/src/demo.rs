//! The main examples' out-of-the-box mode: the embedded mock provider stands
//! in for a real one, so `cargo run -p example-axum` (or `-actix`, `-poem`)
//! needs no secrets and no external server. The three examples share this so
//! that they behave the same: their command line ([`Args`]), their setup
//! ([`configure`]), their pages' texts ([`greeting`], ...) and their tests
//! ([`scenarios`]).

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use portcullis_core::Authenticated;
use portcullis_core::clock::{Clock, SystemClock};
use portcullis_core::config::{self, Format, Override};
use portcullis_oidc::{OidcConfig, RelyingParty};
use tempfile::TempDir;

use crate::MockProvider;

pub mod scenarios;

/// An example's own files, as it ships them.
#[derive(Debug, Clone, Copy)]
pub struct Files {
    /// The configuration file (easy-oauth's format, YAML).
    pub config: &'static str,
    /// The user file (`caps.yaml`): who holds which capabilities.
    pub users: &'static str,
}

/// An example's command line: `[--config FILE] [--addr HOST:PORT]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// The configuration file; none for the mock mode.
    pub config: Option<PathBuf>,
    /// Where to listen (`127.0.0.1:3000` unless told).
    pub addr: SocketAddr,
    /// `-h` or `--help` was given: print [`usage`] and stop.
    pub help: bool,
}

impl Args {
    /// Parses the arguments (without the program name).
    ///
    /// # Errors
    ///
    /// An unknown argument, or a missing or malformed value, as a message.
    pub fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
        let mut out = Args {
            config: None,
            addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
            help: false,
        };
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--config" => out.config = Some(args.next().ok_or("--config needs a file")?.into()),
                "--addr" => {
                    let v = args.next().ok_or("--addr needs HOST:PORT")?;
                    out.addr = v
                        .parse()
                        .map_err(|_| format!("--addr {v}: expected HOST:PORT"))?;
                }
                "-h" | "--help" => out.help = true,
                other => return Err(format!("unknown argument `{other}` (try --help)")),
            }
        }
        Ok(out)
    }
}

/// The usage line of the example `program`.
pub fn usage(program: &str) -> String {
    format!("usage: {program} [--config FILE] [--addr HOST:PORT]")
}

/// An example ready to serve: its relying party and, in mock mode, the
/// provider (and the user file's directory) it needs alive while it runs.
#[derive(Debug)]
pub struct Configured {
    /// The relying party to serve.
    pub rp: RelyingParty,
    /// The mock provider, in mock mode.
    pub provider: Option<MockProvider>,
    _dir: Option<TempDir>,
}

impl Configured {
    /// What to print once `program` listens on `addr`: where, and in mock
    /// mode the [`instructions`].
    pub fn banner(&self, program: &str, addr: SocketAddr) -> String {
        let mut out = format!("{program} listening on http://{addr}\n");
        if let Some(provider) = &self.provider {
            out.push_str(&instructions(provider, &addr.to_string()));
        }
        out
    }
}

/// Sets an example up to listen on `addr`: from `args.config` (with the
/// `env` overrides), or else in mock mode, from `files` pointed at a mock
/// provider started with [`start_provider`].
///
/// # Errors
///
/// A configuration that does not load, a provider that does not start, or
/// a relying party that does not build.
pub async fn configure(
    args: &Args,
    addr: SocketAddr,
    files: Files,
    env: &[Override],
) -> io::Result<Configured> {
    if let Some(path) = &args.config {
        let cfg: OidcConfig = config::load_file(path, env).map_err(io::Error::other)?;
        let rp = RelyingParty::builder(cfg)
            .build()
            .await
            .map_err(io::Error::other)?;
        return Ok(Configured {
            rp,
            provider: None,
            _dir: None,
        });
    }
    let base_url = format!("http://{addr}");
    let provider = start_provider(&base_url)
        .await
        .map_err(|e| io::Error::other(format!("starting the mock provider: {e}")))?;
    let dir = tempfile::tempdir()?;
    let cfg = mock_config(files, &provider, &base_url, dir.path())?;
    let rp = RelyingParty::builder(cfg)
        .clock(Arc::new(provider.clock()))
        .build()
        .await
        .map_err(io::Error::other)?;
    Ok(Configured {
        rp,
        provider: Some(provider),
        _dir: Some(dir),
    })
}

/// The example's configuration (`files.config`) pointed at `provider` with
/// [`point_at_mock`], its user file written into `dir`.
///
/// # Errors
///
/// A configuration that does not load, or a user file that cannot be
/// written.
pub fn mock_config(
    files: Files,
    provider: &MockProvider,
    base_url: &str,
    dir: &Path,
) -> io::Result<OidcConfig> {
    let mut cfg: OidcConfig =
        config::load_from_str(files.config, Format::Yaml, &[]).map_err(io::Error::other)?;
    let users = dir.join("caps.yaml");
    std::fs::write(&users, files.users)?;
    point_at_mock(&mut cfg, provider, base_url, &users)?;
    Ok(cfg)
}

/// How the examples name a caller: its email, else its user id.
pub fn name(caller: &Authenticated) -> &str {
    caller
        .principal
        .email()
        .unwrap_or(caller.principal.user_id())
}

/// The examples' `GET /`: greets the caller, or a guest.
pub fn greeting(caller: Option<&Authenticated>) -> String {
    match caller {
        Some(c) => format!("Hello, {}!\n", name(c)),
        None => "Hello, guest! Log in at /login\n".to_owned(),
    }
}

/// The examples' `GET /read`.
pub fn read(caller: Option<&Authenticated>) -> String {
    format!("{} reads the news\n", caller.map_or("a guest", name))
}

/// The examples' `POST /write` of a `bytes`-long body.
pub fn write(caller: Option<&Authenticated>, bytes: usize) -> String {
    format!("{} wrote {bytes} bytes\n", caller.map_or("a guest", name))
}

/// The examples' `GET /shout?message=`.
pub fn shout(caller: Option<&Authenticated>, message: &str) -> String {
    format!("{} shouts {message:?}\n", caller.map_or("a guest", name))
}

/// Starts a mock provider for an application served at `base_url` (login
/// routes at the root): its callback and post-logout page are registered,
/// everyone logs in as `admin@example.com` unless told otherwise, and its
/// clock follows real time, so sessions and tokens age as they would.
///
/// # Errors
///
/// When the provider cannot bind a loopback port.
pub async fn start_provider(base_url: &str) -> std::io::Result<MockProvider> {
    let provider = MockProvider::start().await?;
    let clock = provider.clock();
    tokio::spawn(async move {
        loop {
            let (now, at) = (SystemClock.now_millis(), clock.now_millis());
            if now > at {
                clock.advance_millis(now - at);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    provider.register_redirect_uri(&format!("{base_url}/auth"));
    provider.register_post_logout_redirect_uri(&format!("{base_url}/"));
    provider.set_email("admin@example.com");
    Ok(provider)
}

/// Points an example configuration (easy-oauth's file) at `provider`: its
/// discovery URL, client, audience, `base_url`, a fresh random secret key,
/// and `user_file` as the capability file. Authorization parameters meant
/// for a real provider (`prompt`, ...) are dropped.
///
/// # Errors
///
/// When the system random generator fails.
pub fn point_at_mock(
    config: &mut OidcConfig,
    provider: &MockProvider,
    base_url: &str,
    user_file: &Path,
) -> std::io::Result<()> {
    config.server_metadata_url = provider.discovery_url();
    config.issuer = None;
    config.client_id = provider.client_id().to_owned();
    config.client_secret = Some(provider.client_secret().into());
    config.base_url = base_url.to_owned();
    config.audience = Some(provider.audience().to_owned());
    config.capabilities.user_file = Some(user_file.to_path_buf());
    config.client_kwargs.extra.clear();
    let mut secret = [0u8; 32];
    aws_lc_rs::rand::fill(&mut secret)
        .map_err(|_| std::io::Error::other("the system random generator failed"))?;
    config.secret_key = secret
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        .into();
    Ok(())
}

/// What to try against an example served at `addr` with `provider`: log in
/// with a browser, switch users, call the API with a provider token.
pub fn instructions(provider: &MockProvider, addr: &str) -> String {
    let token = provider
        .token()
        .email("friend@example.com")
        .expires_in(3600)
        .sign();
    let issuer = provider.issuer();
    format!(
        "mock provider: {issuer} (logs everyone in as admin@example.com)\n\
         in a browser:    http://{addr}/login   then /read, /shout?message=hi, /token, /logout\n\
         as someone else: curl -X POST -H 'content-type: application/json' -d '{{\"email\":\"reader@example.com\"}}' {issuer}/set_email\n\
         with a provider access token for friend@example.com (valid one hour):\n  \
         curl -H 'Authorization: Bearer {token}' 'http://{addr}/shout?message=hello'\n  \
         curl -i http://{addr}/read    # 401 with a WWW-Authenticate challenge\n"
    )
}
