//! The out-of-the-box scenario: the embedded mock provider, the protected
//! [`downstream`] service and the app, all on 127.0.0.1,
//! and a stand-in for the auth proxy that logs a user in and forwards their
//! tokens.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_core::clock::{Clock, ManualClock, SystemClock};
use portcullis_core::{Algorithm, Authenticator, CredentialsConfig};
use portcullis_oidc::reqwest;
use portcullis_oidc::{ForwardingClient, TokenEndpoint};
use portcullis_testing::{MockOptions, MockProvider};
use url::form_urlencoded;

use crate::downstream::{self, CallLog};
use crate::{AppState, Events, ID_TOKEN_HEADER, REFRESH_TOKEN_HEADER, Schedule};

/// The callback of the stand-in proxy, registered at the mock provider.
const PROXY_CALLBACK: &str = "http://127.0.0.1:9/callback";

/// How the scenario runs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The background calls' schedule.
    pub schedule: Schedule,
    /// How long the provider's access tokens live.
    pub access_token_ttl: Duration,
    /// How long before expiry the app refreshes them.
    pub leeway: Duration,
    /// The provider's clock: by default a fresh one that follows real time;
    /// a test passes one it moves itself.
    pub clock: Option<ManualClock>,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            schedule: Schedule {
                every: Duration::from_secs(2),
                duration: Duration::from_secs(60),
            },
            access_token_ttl: Duration::from_secs(20),
            leeway: Duration::from_secs(5),
            clock: None,
        }
    }
}

/// The running scenario.
#[derive(Debug)]
pub struct Demo {
    /// The mock provider.
    pub provider: MockProvider,
    /// The app's URL (`GET /`).
    pub app_url: String,
    /// The downstream endpoint the app calls.
    pub downstream_url: String,
    /// What the downstream service received.
    pub downstream_log: CallLog,
}

async fn serve(app: axum::Router) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "a server stopped");
        }
    });
    Ok(format!("http://{addr}"))
}

/// Starts the provider, the downstream service and the app; the app's events
/// go to `events`.
///
/// # Errors
///
/// When a port cannot be bound or the provider cannot be discovered.
pub async fn start(options: DemoOptions, events: Events) -> anyhow::Result<Demo> {
    let follow_real_time = options.clock.is_none();
    let clock = options.clock.unwrap_or_else(ManualClock::starting_now);
    let provider = MockProvider::start_with(
        MockOptions::default()
            .algorithms(vec![Algorithm::ES256])
            .clock(clock.clone())
            .access_token_ttl(options.access_token_ttl)
            .redirect_uri(PROXY_CALLBACK),
    )
    .await
    .context("starting the mock provider")?;
    if follow_real_time {
        // Tokens then age as they would at a real provider.
        let clock = clock.clone();
        tokio::spawn(async move {
            loop {
                let (now, at) = (SystemClock.now_millis(), clock.now_millis());
                if now > at {
                    clock.advance_millis(now - at);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
    }
    let shared: portcullis_core::clock::SharedClock = Arc::new(clock);
    let verifier = || {
        crate::verifier(
            &provider.issuer(),
            &provider.discovery_url(),
            provider.audience(),
            provider.client_id(),
            Arc::clone(&shared),
        )
    };

    let downstream_log = CallLog::default();
    let downstream_origin = serve(downstream::app(
        Authenticator::new(verifier()?, CredentialsConfig::default()),
        downstream_log.clone(),
    ))
    .await?;

    let endpoint = TokenEndpoint::discover(
        &provider.discovery_url(),
        provider.client_id(),
        Some(provider.client_secret().into()),
    )
    .await?;
    let state = AppState {
        downstream: ForwardingClient::builder()
            .allow_origin(&downstream_origin)
            .build()?,
        downstream_url: format!("{downstream_origin}/protected"),
        endpoint,
        schedule: options.schedule,
        leeway: options.leeway,
        clock: Arc::clone(&shared),
        events,
    };
    let downstream_url = state.downstream_url.clone();
    let app_url = serve(crate::app(
        Authenticator::new(verifier()?, crate::forwarded_credentials()),
        state,
    ))
    .await?;
    Ok(Demo {
        provider,
        app_url,
        downstream_url,
        downstream_log,
    })
}

/// The tokens an auth proxy forwards for a logged-in user.
pub struct ForwardedTokens {
    access_token: String,
    id_token: String,
    refresh_token: String,
}

impl std::fmt::Debug for ForwardedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ForwardedTokens([redacted])")
    }
}

impl ForwardedTokens {
    /// The headers the proxy adds to a request.
    pub fn headers(&self) -> [(&'static str, String); 3] {
        [
            ("authorization", format!("Bearer {}", self.access_token)),
            (ID_TOKEN_HEADER, self.id_token.clone()),
            (REFRESH_TOKEN_HEADER, self.refresh_token.clone()),
        ]
    }
}

fn no_redirects() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

/// Does what the auth proxy does when `email` logs in: the authorization
/// code flow at `provider` (PKCE, `offline_access` for a refresh token).
///
/// # Errors
///
/// When the provider refuses or cannot be reached.
pub async fn proxy_login(provider: &MockProvider, email: &str) -> anyhow::Result<ForwardedTokens> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| anyhow::anyhow!("no randomness"))?;
    let verifier = URL_SAFE_NO_PAD.encode(bytes);
    let challenge = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()));
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", provider.client_id()),
            ("redirect_uri", PROXY_CALLBACK),
            ("scope", "openid email offline_access"),
            ("state", "demo"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("login_hint", email),
        ])
        .finish();
    let http = no_redirects()?;
    let resp = http
        .get(format!("{}?{query}", provider.authorize_url()))
        .send()
        .await?;
    let location = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .context("the provider did not redirect back")?;
    let location = url::Url::parse(location)?;
    let Some(code) = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
    else {
        bail!("the provider refused the login: {location}");
    };
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", PROXY_CALLBACK),
            ("code_verifier", &verifier),
        ])
        .finish();
    let answer = http
        .post(provider.token_url())
        .basic_auth(provider.client_id(), Some(provider.client_secret()))
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body)
        .send()
        .await?
        .bytes()
        .await?;
    let answer: serde_json::Value = serde_json::from_slice(&answer)?;
    let text = |name: &str| {
        answer[name]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("the token answer has no {name}"))
    };
    Ok(ForwardedTokens {
        access_token: text("access_token")?,
        id_token: text("id_token")?,
        refresh_token: text("refresh_token")?,
    })
}

/// Sends `GET /` to the app as the proxy would, with `tokens` (or none): the
/// status and the body.
///
/// # Errors
///
/// When the app cannot be reached.
pub async fn call_app(
    app_url: &str,
    tokens: Option<&ForwardedTokens>,
) -> anyhow::Result<(u16, String)> {
    let mut req = no_redirects()?.get(format!("{app_url}/"));
    if let Some(tokens) = tokens {
        for (name, value) in tokens.headers() {
            req = req.header(name, value);
        }
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    Ok((status, resp.text().await?))
}
