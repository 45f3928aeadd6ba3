//! A service behind an auth proxy that calls another service for its
//! callers, and keeps doing so after their access tokens expired.
//!
//! The auth proxy (APISIX's `openid-connect` plugin, oauth2-proxy, ...)
//! logs users in and forwards each request with the caller's access token in
//! `Authorization`, the ID token in `x-id-token` and the refresh token in
//! `x-refresh-token`. The app still verifies them (portcullis-core, through
//! the axum [`AuthLayer`]) and treats a request without tokens as a guest's.
//! On `GET /` it:
//!
//! 1. greets the caller (a guest is an "unauthorised person");
//! 2. calls the downstream service once with the forwarded access token;
//! 3. starts a background task that calls it again every
//!    [`Schedule::every`] for [`Schedule::duration`] with a
//!    [`RefreshingToken`]: the access token is refreshed with the forwarded
//!    refresh token before it expires, once however many calls need it.
//!
//! Tokens go to the downstream service's origin only, redirects are not
//! followed, and no token is ever printed. What happens is reported as
//! [`Event`]s. [`downstream`] is a protected service to call, and [`demo`]
//! wires everything to the embedded mock provider.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use portcullis_axum::{AuthLayer, Caller};
use portcullis_core::alg::KeyFamily;
use portcullis_core::clock::{self, SharedClock};
use portcullis_core::config::{IssuerConfig, VerifierConfig};
use portcullis_core::{
    Algorithm, Authenticated, Authenticator, CredentialsConfig, ErrorKind, Secret, TokenVerifier,
};
use portcullis_oidc::{
    ForwardedToken, ForwardingClient, RefreshingToken, TokenEndpoint, TokenSource,
};
use serde::Deserialize;
use tokio::sync::mpsc::UnboundedSender;

pub mod demo;
pub mod downstream;

/// The header the proxy forwards the ID token in.
pub const ID_TOKEN_HEADER: &str = "x-id-token";
/// The header the proxy forwards the refresh token in.
pub const REFRESH_TOKEN_HEADER: &str = "x-refresh-token";

/// When the background calls happen.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// The pause between two calls.
    pub every: Duration,
    /// How long the calls go on.
    pub duration: Duration,
}

/// Something that happened, for the operator to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A caller's request arrived and the downstream service was called once
    /// with the forwarded access token.
    Forwarded {
        /// Who called.
        who: String,
        /// The downstream answer, or why there was none.
        outcome: String,
    },
    /// The caller forwarded no refresh token: no background calls.
    NoRefreshToken {
        /// Who called.
        who: String,
    },
    /// One background call.
    Background {
        /// Whose token was used.
        who: String,
        /// The call's number, from 1.
        call: u32,
        /// The HTTP status, when the service answered.
        status: Option<u16>,
        /// The downstream answer, or why there was none.
        outcome: String,
    },
    /// The background calls for a caller ended.
    Ended {
        /// Whose calls.
        who: String,
        /// How many calls were made.
        calls: u32,
        /// How many of them did not answer 200.
        failed: u32,
    },
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Forwarded { who, outcome } => {
                write!(f, "{who}: one call with the forwarded token: {outcome}")
            }
            Event::NoRefreshToken { who } => {
                write!(
                    f,
                    "{who}: no refresh token forwarded, so no background calls"
                )
            }
            Event::Background {
                who, call, outcome, ..
            } => write!(f, "{who}: background call {call}: {outcome}"),
            Event::Ended { who, calls, failed } => write!(
                f,
                "{who}: background calls ended: {calls} calls, {failed} not answered 200"
            ),
        }
    }
}

/// Where events go.
pub type Events = UnboundedSender<Event>;

/// The app's shared state.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The client that calls the downstream service (its origin only).
    pub downstream: ForwardingClient,
    /// The downstream endpoint.
    pub downstream_url: String,
    /// The provider's token endpoint, for refreshes.
    pub endpoint: TokenEndpoint,
    /// The background calls' schedule.
    pub schedule: Schedule,
    /// How long before expiry an access token is refreshed.
    pub leeway: Duration,
    /// The clock tokens expire by.
    pub clock: SharedClock,
    /// Where events go.
    pub events: Events,
}

/// Where the proxy-forwarded tokens are read: the access token as `Bearer`
/// in `Authorization`, [`ID_TOKEN_HEADER`] and [`REFRESH_TOKEN_HEADER`];
/// absent tokens make a guest (invalid ones are refused with 401).
pub fn forwarded_credentials() -> CredentialsConfig {
    CredentialsConfig::default()
        .with_id_token_header(ID_TOKEN_HEADER)
        .with_refresh_token_header(REFRESH_TOKEN_HEADER)
}

/// The app: `GET /` behind the [`AuthLayer`] with `auth`.
pub fn app(auth: Authenticator, state: AppState) -> Router {
    Router::new()
        .route("/", get(root))
        .with_state(state)
        .layer(AuthLayer::new(auth))
}

/// How the caller is called in messages.
fn name(caller: &Authenticated) -> String {
    let p = &caller.principal;
    p.username()
        .or(p.email())
        .unwrap_or("mysterious stranger")
        .to_owned()
}

async fn root(State(state): State<AppState>, caller: Option<Caller>) -> String {
    let Some(Caller(caller)) = caller else {
        return "Hello, unauthorised person!\n".to_owned();
    };
    let who = name(&caller);
    let once = match ForwardedToken::from_caller(&caller) {
        Ok(tokens) => describe(call(&state, &tokens).await),
        Err(e) => format!("not called: {e}"),
    };
    let _ = state.events.send(Event::Forwarded {
        who: who.clone(),
        outcome: once.clone(),
    });
    let later = match RefreshingToken::from_caller(&state.endpoint, &caller) {
        Some(tokens) => {
            let tokens = tokens
                .with_leeway(state.leeway)
                .with_clock(Arc::clone(&state.clock));
            let schedule = state.schedule;
            tokio::spawn(background(state, tokens, who.clone()));
            format!(
                "it will be called again every {:?} for {:?}, refreshing your token as needed",
                schedule.every, schedule.duration
            )
        }
        None => {
            let _ = state
                .events
                .send(Event::NoRefreshToken { who: who.clone() });
            "no refresh token was forwarded, so it will not be called again".to_owned()
        }
    };
    format!("Hello, {who}!\nThe downstream service answered: {once}\nAnd {later}.\n")
}

/// What one call gave: the status and the body, or the error.
type Outcome = Result<(u16, String), portcullis_core::Error>;

async fn call(state: &AppState, tokens: &(impl TokenSource + ?Sized)) -> Outcome {
    let resp = state.downstream.get(tokens, &state.downstream_url).await?;
    let status = resp.status().as_u16();
    // The answer is shown to the operator: a short one is enough.
    let body = resp.text().await.unwrap_or_default();
    let body: String = body.trim().chars().take(200).collect();
    Ok((status, body))
}

fn describe(outcome: Outcome) -> String {
    match outcome {
        Ok((status, body)) => format!("HTTP {status}: {body}"),
        Err(e) => format!("failed: {e}"),
    }
}

/// Calls the downstream service on the schedule with `tokens`; stops early
/// when the provider refused the refresh token (the caller must log in again).
async fn background(state: AppState, tokens: RefreshingToken, who: String) {
    let started = tokio::time::Instant::now();
    let (mut calls, mut failed) = (0, 0);
    loop {
        tokio::time::sleep(state.schedule.every).await;
        calls += 1;
        let outcome = call(&state, &tokens).await;
        let status = outcome.as_ref().ok().map(|(s, _)| *s);
        if status != Some(200) {
            failed += 1;
        }
        let refused = matches!(&outcome, Err(e) if e.kind() == ErrorKind::InvalidToken);
        let _ = state.events.send(Event::Background {
            who: who.clone(),
            call: calls,
            status,
            outcome: describe(outcome),
        });
        if refused || started.elapsed() + state.schedule.every > state.schedule.duration {
            break;
        }
    }
    let _ = state.events.send(Event::Ended { who, calls, failed });
}

/// A verifier for `issuer`'s tokens: access tokens for `audience`, ID tokens
/// for `client_id`, any asymmetric algorithm (the key's type decides).
///
/// # Errors
///
/// When the configuration is invalid.
pub fn verifier(
    issuer: &str,
    discovery_url: &str,
    audience: &str,
    client_id: &str,
    clock: SharedClock,
) -> Result<TokenVerifier, portcullis_core::Error> {
    let config = IssuerConfig::new(issuer)
        .with_discovery_url(discovery_url)
        .with_algorithms(
            Algorithm::ALL
                .into_iter()
                .filter(|a| a.family() != KeyFamily::Hmac),
        )
        .with_audience(audience)
        .with_client_id(client_id);
    TokenVerifier::builder(VerifierConfig::new([("provider".to_owned(), config)]))
        .clock(clock)
        .build()
}

/// The configuration file (`--config`): a real provider and downstream
/// service. See `config.example.yaml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    /// Where the app listens (`127.0.0.1:8080` by default).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The provider's discovery document.
    pub discovery_url: String,
    /// The issuer, when the discovery URL is not `{issuer}/.well-known/openid-configuration`.
    #[serde(default)]
    pub issuer: Option<String>,
    /// The client the proxy logs users in with (refresh tokens are bound to it).
    pub client_id: String,
    /// Its secret (from the environment: `PORTCULLIS__CLIENT_SECRET`).
    #[serde(default)]
    pub client_secret: Option<Secret>,
    /// The `aud` of the access tokens the app accepts.
    pub audience: String,
    /// The downstream endpoint to call.
    pub downstream_url: String,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

impl ProxyConfig {
    /// Reads a YAML or TOML file; `PORTCULLIS__*` environment variables
    /// override its keys.
    ///
    /// # Errors
    ///
    /// When the file cannot be read or names an unknown or invalid key.
    pub fn load(path: &Path) -> Result<ProxyConfig, portcullis_core::Error> {
        let env = portcullis_core::config::env_overrides("PORTCULLIS", std::env::vars());
        portcullis_core::config::load_file(path, &env)
    }

    /// The issuer: `issuer`, else the discovery URL without its well-known suffix.
    ///
    /// # Errors
    ///
    /// When neither gives one.
    pub fn issuer(&self) -> Result<String, portcullis_core::Error> {
        if let Some(issuer) = &self.issuer {
            return Ok(issuer.clone());
        }
        self.discovery_url
            .strip_suffix("/.well-known/openid-configuration")
            .map(str::to_owned)
            .ok_or_else(|| {
                portcullis_core::Error::config(
                    "configuration key `issuer`: required when `discovery_url` does not end with `/.well-known/openid-configuration`",
                )
            })
    }
}

/// Builds the app for `config`, its events going to `events`.
///
/// # Errors
///
/// When the configuration is invalid or the provider's discovery document
/// cannot be fetched.
pub async fn app_for(
    config: &ProxyConfig,
    schedule: Schedule,
    events: Events,
) -> Result<Router, portcullis_core::Error> {
    let clock = clock::system();
    let verifier = verifier(
        &config.issuer()?,
        &config.discovery_url,
        &config.audience,
        &config.client_id,
        Arc::clone(&clock),
    )?;
    let endpoint = TokenEndpoint::discover(
        &config.discovery_url,
        config.client_id.clone(),
        config.client_secret.clone(),
    )
    .await?;
    let url = url::Url::parse(&config.downstream_url).map_err(|e| {
        portcullis_core::Error::config("configuration key `downstream_url`: not a URL")
            .with_source(e)
    })?;
    let downstream = ForwardingClient::builder()
        .allow_origin(&url.origin().ascii_serialization())
        .build()?;
    let state = AppState {
        downstream,
        downstream_url: config.downstream_url.clone(),
        endpoint,
        schedule,
        leeway: Duration::from_secs(30),
        clock,
        events,
    };
    Ok(app(
        Authenticator::new(verifier, forwarded_credentials()),
        state,
    ))
}
