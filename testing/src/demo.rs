//! The main examples' no-secrets demo mode: run without a configuration
//! file, `cargo run -p example-axum` (or `-actix`, `-poem`) calls
//! [`start_mock_provider`], which starts the embedded mock OpenID Connect
//! provider in place of a real one and points the example's own
//! configuration at it, so that the example needs no secrets and no
//! external server; [`MockDemo::instructions`] is what the example prints
//! for trying it with a browser or `curl`.
//!
//! The examples' routes, handlers and pages are their own. What they share
//! here is this mode and their tests ([`scenarios`]: easy-oauth's README,
//! run against each of them).

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use portcullis_core::clock::{Clock, SystemClock};
use portcullis_core::config::{self, Format};
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

/// The no-secrets demo mode of an example, running: the mock provider and
/// the relying party configured against it. Keep it alive while the
/// example serves: dropping it stops the provider and removes the user
/// file.
#[derive(Debug)]
pub struct MockDemo {
    /// The relying party to serve: the example's configuration pointed at
    /// [`provider`](Self::provider).
    pub rp: RelyingParty,
    /// The mock provider the example's users log in at.
    pub provider: MockProvider,
    addr: SocketAddr,
    _dir: TempDir,
}

impl MockDemo {
    /// What to try against the example: log in with a browser, switch
    /// users, call the API with `curl` and a provider access token.
    pub fn instructions(&self) -> String {
        let (provider, addr) = (&self.provider, self.addr);
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
             curl -i http://{addr}/read    # 401 with a WWW-Authenticate challenge\n\
             a command-line tool's login (headless): open the answer's login_url in a browser, then fetch its token_url once:\n  \
             curl 'http://{addr}/login?headless=true'\n\
             ops@example.com holds announce by configuration (capabilities.user_overrides), in no user file:\n  \
             curl -X POST -H 'content-type: application/json' -d '{{\"email\":\"ops@example.com\"}}' {issuer}/set_email\n"
        )
    }
}

/// Starts the no-secrets demo mode of an example that serves on `addr`
/// (already bound, so that the port is known): the embedded mock provider,
/// whose clock follows real time and which logs everyone in as
/// `admin@example.com` unless told otherwise, and a relying party built
/// from the example's configuration file `config_yaml` (easy-oauth's
/// format) pointed at it with [`point_at_mock`], its user file
/// `users_yaml` (`caps.yaml`) written to a temporary directory.
///
/// # Errors
///
/// A configuration that does not load, a provider that does not start, or
/// a relying party that does not build.
pub async fn start_mock_provider(
    addr: SocketAddr,
    config_yaml: &'static str,
    users_yaml: &'static str,
) -> io::Result<MockDemo> {
    let files = Files {
        config: config_yaml,
        users: users_yaml,
    };
    let provider = start_provider()
        .await
        .map_err(|e| io::Error::other(format!("starting the mock provider: {e}")))?;
    let dir = tempfile::tempdir()?;
    let cfg = mock_config(files, &provider, &format!("http://{addr}"), dir.path())?;
    provider.register_redirect_uri(&cfg.redirect_uri());
    provider.register_post_logout_redirect_uri(&cfg.post_logout_redirect_uri());
    let rp = RelyingParty::builder(cfg)
        .clock(Arc::new(provider.clock()))
        .build()
        .await
        .map_err(io::Error::other)?;
    Ok(MockDemo {
        rp,
        provider,
        addr,
        _dir: dir,
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

/// Starts a mock provider whose clock follows real time, so that sessions
/// and tokens age as they would, and which logs everyone in as
/// `admin@example.com` unless told otherwise.
async fn start_provider() -> io::Result<MockProvider> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A configuration file as the examples ship it: placeholders for every
    /// secret, a real provider's URL.
    const CONFIG: &str = r#"
server_metadata_url: https://accounts.google.com/.well-known/openid-configuration
secret_key: "change-me"
client_id: "<CLIENT_ID>"
client_secret: "<CLIENT_SECRET>"
client_kwargs:
  scope: openid email
  prompt: select_account
capabilities:
  graph:
    read: []
  default_capabilities: [read]
prefix: ""
base_url: http://127.0.0.1:3000
"#;

    #[tokio::test]
    async fn the_demo_mode_points_the_example_at_the_mock_provider() {
        let addr: SocketAddr = "127.0.0.1:4567".parse().unwrap();
        let demo = start_mock_provider(addr, CONFIG, "reader@example.com: [read]\n")
            .await
            .unwrap();
        let cfg = demo.rp.config();
        assert_eq!(cfg.server_metadata_url, demo.provider.discovery_url());
        assert_eq!(cfg.client_id, demo.provider.client_id());
        assert_eq!(cfg.base_url, "http://127.0.0.1:4567");
        assert_eq!(cfg.audience.as_deref(), Some(demo.provider.audience()));
        assert!(
            cfg.client_kwargs.extra.is_empty(),
            "no `prompt` for the mock"
        );
        cfg.validate().expect("placeholders replaced");
        let users = cfg.capabilities.user_file.as_ref().unwrap();
        assert_eq!(
            std::fs::read_to_string(users).unwrap(),
            "reader@example.com: [read]\n"
        );

        let text = demo.instructions();
        assert!(text.contains("http://127.0.0.1:4567/login"), "{text}");
        assert!(
            text.contains("curl -i http://127.0.0.1:4567/read"),
            "{text}"
        );
        let token = text
            .split("Bearer ")
            .nth(1)
            .and_then(|rest| rest.split('\'').next())
            .expect("a curl line with a token");
        let caller = demo
            .rp
            .authenticator()
            .authenticate(&[("authorization", format!("Bearer {token}").as_str())][..])
            .await
            .expect("the printed token is accepted")
            .expect("a caller");
        assert_eq!(caller.principal.email(), Some("friend@example.com"));
    }
}
