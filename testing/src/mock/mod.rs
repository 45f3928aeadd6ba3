//! The mock OpenID Connect provider: its handle, options and faults.

mod keys;
mod routes;
mod state;
mod token;

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use portcullis_core::Algorithm;
use portcullis_core::clock::ManualClock;
use portcullis_core::mint::SigningKey;
use tokio::sync::watch;

use self::keys::KeyRing;
use self::state::{State, random_hex};
pub use self::token::TokenBuilder;

/// A way to make the JWKS endpoint misbehave; see [`MockProvider::set_jwks_fault`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer with this HTTP status (and a small JSON error body); a code
    /// that is not a valid status answers 500.
    Status(u16),
    /// Wait this long, then answer normally.
    Slow(Duration),
    /// Answer 200 with a body that is not JSON.
    Malformed,
    /// Answer 200 with `{"keys": []}`.
    EmptyKeys,
}

/// How a [`MockProvider`] starts.
///
/// ```
/// use portcullis_core::Algorithm;
/// use portcullis_testing::MockOptions;
/// let options = MockOptions::default()
///     .audience("orders-api")
///     .algorithms(vec![Algorithm::ES256, Algorithm::PS256]);
/// assert_eq!(options.client_id, "portcullis-client");
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MockOptions {
    /// The default `aud` of access tokens; `"portcullis-api"` by default.
    pub audience: String,
    /// The client id: the `client_id` claim of access tokens and the `aud` of
    /// ID tokens; `"portcullis-client"` by default.
    pub client_id: String,
    /// The algorithms with a published key; RS256, ES256 and EdDSA by default.
    /// HMAC keys are never published.
    pub algorithms: Vec<Algorithm>,
    /// Whether keys replaced by [`MockProvider::rotate_keys`] stay in the JWKS;
    /// `false` by default.
    pub keep_previous_keys_on_rotation: bool,
    /// The port on 127.0.0.1 to listen on; 0 (the default) picks a free one.
    pub port: u16,
    /// The clock minted tokens are dated by; by default a new [`ManualClock`]
    /// set to the current system time.
    pub clock: Option<ManualClock>,
}

impl Default for MockOptions {
    fn default() -> Self {
        Self {
            audience: "portcullis-api".to_owned(),
            client_id: "portcullis-client".to_owned(),
            algorithms: vec![Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA],
            keep_previous_keys_on_rotation: false,
            port: 0,
            clock: None,
        }
    }
}

impl MockOptions {
    /// Sets [`audience`](Self::audience).
    #[must_use]
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = audience.into();
        self
    }

    /// Sets [`client_id`](Self::client_id).
    #[must_use]
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = client_id.into();
        self
    }

    /// Sets [`algorithms`](Self::algorithms).
    #[must_use]
    pub fn algorithms(mut self, algorithms: Vec<Algorithm>) -> Self {
        self.algorithms = algorithms;
        self
    }

    /// Sets [`keep_previous_keys_on_rotation`](Self::keep_previous_keys_on_rotation).
    #[must_use]
    pub fn keep_previous_keys_on_rotation(mut self, keep: bool) -> Self {
        self.keep_previous_keys_on_rotation = keep;
        self
    }

    /// Sets [`port`](Self::port).
    #[must_use]
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Sets [`clock`](Self::clock).
    #[must_use]
    pub fn clock(mut self, clock: ManualClock) -> Self {
        self.clock = Some(clock);
        self
    }
}

/// An OpenID Connect provider served on `127.0.0.1` from the current tokio runtime.
///
/// Clones share one provider. The server stops when [`shutdown`](Self::shutdown)
/// is called or the last clone is dropped (and with the runtime it runs on).
///
/// Endpoints: `GET /.well-known/openid-configuration`, `GET /jwks` and
/// `POST /mint` (a JSON body with the optional fields `sub`, `email`,
/// `username`, `aud`, `scope`, `expires_in`, `kind` (`"access"` or `"id"`),
/// `alg` and `claims`, answered with `{"token": "..."}`). Every request is
/// counted by path, unknown paths included.
///
/// Keys: one per configured algorithm, published in the JWKS. Asking for
/// another algorithm (through [`signing_key`](Self::signing_key) or
/// [`TokenBuilder::algorithm`]) makes a key for it that signs but is never
/// published, for tests of tokens signed by a key the verifier cannot know.
#[derive(Clone)]
pub struct MockProvider {
    inner: Arc<Inner>,
}

struct Inner {
    state: Arc<State>,
    /// Dropping it (with the last handle) stops the server, as does sending `true`.
    shutdown: watch::Sender<bool>,
}

impl MockProvider {
    /// Starts a provider with the default options on a free port.
    pub async fn start() -> io::Result<MockProvider> {
        Self::start_with(MockOptions::default()).await
    }

    /// Starts a provider with `options`.
    ///
    /// Generates the keys (an RSA key takes a moment), binds
    /// `127.0.0.1:{options.port}` and spawns the server on the current tokio
    /// runtime; it accepts connections as soon as this returns.
    ///
    /// # Errors
    ///
    /// If the port cannot be bound or a key cannot be generated.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub async fn start_with(options: MockOptions) -> io::Result<MockProvider> {
        let MockOptions {
            audience,
            client_id,
            algorithms: requested,
            keep_previous_keys_on_rotation,
            port,
            clock,
        } = options;
        let mut algorithms = Vec::with_capacity(requested.len());
        for alg in requested {
            if !algorithms.contains(&alg) {
                algorithms.push(alg);
            }
        }
        let tag = format!("mock-{}", random_hex(3));
        let keys = KeyRing::new(tag, &algorithms, keep_previous_keys_on_rotation)
            .map_err(io::Error::other)?;

        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State::new(
            format!("http://127.0.0.1:{}", addr.port()),
            audience,
            client_id,
            clock.unwrap_or_else(ManualClock::starting_now),
            algorithms,
            keys,
        ));

        let (shutdown, mut stop) = watch::channel(false);
        let app = routes::router(state.clone());
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            // Ends on `true`, or with an error once every handle is gone.
            let _ = stop.wait_for(|stop| *stop).await;
        });
        tokio::spawn(async move {
            let _ = server.await;
        });
        Ok(MockProvider {
            inner: Arc::new(Inner { state, shutdown }),
        })
    }

    fn state(&self) -> &State {
        &self.inner.state
    }

    /// The issuer, `http://127.0.0.1:{port}` (no trailing slash): the
    /// `issuer` of the discovery document and the `iss` of minted tokens.
    pub fn issuer(&self) -> String {
        self.state().issuer.clone()
    }

    /// The server's base URL; the same as [`issuer`](Self::issuer).
    pub fn base_url(&self) -> String {
        self.issuer()
    }

    /// `{issuer}/.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> String {
        self.url(routes::DISCOVERY_PATH)
    }

    /// `{issuer}/jwks`.
    pub fn jwks_url(&self) -> String {
        self.url(routes::JWKS_PATH)
    }

    /// `{issuer}{path}`; `path` starts with `/`.
    pub fn url(&self, path: &str) -> String {
        self.state().url(path)
    }

    /// The default `aud` of access tokens.
    pub fn audience(&self) -> &str {
        &self.state().audience
    }

    /// The client id: `client_id` of access tokens, `aud` of ID tokens.
    pub fn client_id(&self) -> &str {
        &self.state().client_id
    }

    /// The clock minted tokens are dated by; clones share its time, so moving
    /// the returned clock moves the provider's.
    pub fn clock(&self) -> ManualClock {
        self.state().clock.clone()
    }

    /// Starts a token; see [`TokenBuilder`].
    pub fn token(&self) -> TokenBuilder {
        TokenBuilder::new(self.inner.state.clone())
    }

    /// The current key for `alg`, to sign hand-made tokens with
    /// [`SigningKey::sign_raw`]. Keys of unconfigured algorithms are made on
    /// first use and not published.
    ///
    /// # Panics
    ///
    /// If a key for a new algorithm cannot be generated.
    pub fn signing_key(&self, alg: Algorithm) -> SigningKey {
        self.state().signing_key(alg)
    }

    /// The JWKS document the provider currently publishes (without faults).
    pub fn jwks(&self) -> serde_json::Value {
        self.state().jwks_document()
    }

    /// Replaces every key with a new one with a new `kid`. The JWKS then lists
    /// the new keys only, or the new keys followed by every earlier one with
    /// [`MockOptions::keep_previous_keys_on_rotation`].
    ///
    /// # Panics
    ///
    /// If a key cannot be generated.
    pub fn rotate_keys(&self) {
        self.state().rotate_keys();
    }

    /// Makes `GET /jwks` misbehave, or (`None`) behave again.
    pub fn set_jwks_fault(&self, fault: Option<Fault>) {
        self.state().set_jwks_fault(fault);
    }

    /// The `Cache-Control: public, max-age=N` of successful JWKS responses;
    /// `Some(300)` by default, `None` sends no `Cache-Control`.
    pub fn set_jwks_max_age(&self, secs: Option<u64>) {
        self.state().set_jwks_max_age(secs);
    }

    /// How many requests, of any method, the server received for exactly
    /// this path (without the query), unknown paths included.
    pub fn request_count(&self, path: &str) -> usize {
        self.state().request_count(path)
    }

    /// How many requests the JWKS endpoint received.
    pub fn jwks_fetches(&self) -> usize {
        self.request_count(routes::JWKS_PATH)
    }

    /// Stops the server: it accepts no new connections, and open ones close
    /// once their requests are answered. Handles keep working otherwise
    /// (tokens can still be minted).
    pub fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
    }
}

impl fmt::Debug for MockProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockProvider")
            .field("issuer", &self.state().issuer)
            .field("audience", &self.state().audience)
            .field("client_id", &self.state().client_id)
            .field("algorithms", &self.state().algorithms)
            .finish_non_exhaustive()
    }
}
