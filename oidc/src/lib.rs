//! OpenID Connect relying party for portcullis: the browser login flow of
//! easy-oauth's `OAuthManager`, with today's security practice for OAuth
//! clients (RFC 9700) built in.
//!
//! [`RelyingParty`] is framework-neutral: adapters (`portcullis-axum`, ...)
//! route requests to its methods and copy its
//! [`Reply`](portcullis_core::Reply) out, through the adapter kit
//! (`portcullis-adapter-kit`, feature `login`), whose `Gate` and `Routes`
//! hold a relying party. Applications reach this crate through their
//! adapter's `login` feature (on by default).
//!
//! - `GET {prefix}/login`: remembers where to return (same-origin relative
//!   paths only, see [`safe_return_path`]), redirects to the provider with
//!   `state`, `nonce` and PKCE (S256, always); `offline_token=true` asks for
//!   a refresh token. The current session stays until the callback replaces
//!   it: another site may send the browser to `/login`.
//! - `GET {prefix}/auth`: the callback. The login transaction travels in its
//!   own short-lived sealed cookie and is single-use (recorded in the
//!   revocation store, so on every replica); `state` and `nonce` must match;
//!   the RFC 9207 `iss` parameter must name the provider (mix-up defence);
//!   the code is exchanged with the PKCE verifier; the ID token is verified
//!   by portcullis-core (signature, issuer, audience, expiry) and its
//!   `nonce`, `azp` and `at_hash` are checked. The browser's previous
//!   session, if any, ends; a new session id is issued.
//! - `GET {prefix}/token`: a revocable portcullis token for the logged-in
//!   user (`{"token", "expires_at"}`, and `"refresh_token"` for easy-oauth's
//!   clients), or a service token with `?user=bot@service`.
//! - `GET {prefix}/login?headless=true`: a login for command-line tools,
//!   `{"login_url", "token_url"}`; with `&device=true`, when the provider
//!   advertises RFC 8628 device authorization, a device login
//!   (`{"verification_uri", "user_code", "token_url", ...}`) whose
//!   `token_url` polls the provider, honouring `interval` and `slow_down`,
//!   on one replica at a time.
//! - `GET {prefix}/logout`: for a navigation from the site itself (or typed
//!   by the user), ends the session everywhere, then RP-initiated logout at
//!   the provider when it has an `end_session_endpoint`. Sent there by
//!   another site, the browser gets a page asking to confirm instead, whose
//!   button posts to `POST {prefix}/logout`, which logs out.
//!
//! # Cross-site requests
//!
//! A request authenticated by the session cookie whose method is not `GET`,
//! `HEAD` or `OPTIONS` must come from `base_url`'s origin
//! (`Sec-Fetch-Site: same-origin`; without it `Origin`; without that
//! `Referer`), or it is refused with 403 before it reaches a handler: the
//! management routes, `/token/revoke`, `POST /logout` and the application's
//! own routes behind the middleware alike. `SameSite=Lax` alone lets a
//! sibling subdomain or another port of the same host through. Requests
//! authenticated by a bearer token are not concerned. An application with
//! its own CSRF defence may turn the check off for its routes
//! ([`OidcConfig::csrf_protection`]); portcullis' routes keep it. (A page
//! that sets `Referrer-Policy: no-referrer` makes browsers without
//! `Sec-Fetch-Site` send `Origin: null`, which is refused.) The JSON routes
//! (capability add, remove, set, token revoke) take `Content-Type:
//! application/json` only (415 otherwise). Any response that sets a
//! portcullis cookie has `Cache-Control: private, no-store`.
//!
//! Sessions are sealed with AES-256-GCM under a key derived from
//! `secret_key` (HKDF-SHA256), in an `HttpOnly`, `SameSite=Lax` cookie that
//! is `Secure` and `__Host-` prefixed over HTTPS; with
//! `session.storage: server` the cookie holds only a sealed id and the
//! session lives in the store (memory or Redis). When the provider's access
//! token is due and a refresh token exists, [`RelyingParty::authenticate`]
//! refreshes it once however many requests arrive together; a refreshed ID
//! token must keep `iss` and `sub`, or the session ends.
//!
//! # Example
//!
//! ```no_run
//! use portcullis_core::config::{Format, env_overrides, load_from_str};
//! use portcullis_oidc::{OidcConfig, RelyingParty};
//!
//! # async fn run() -> Result<(), portcullis_core::Error> {
//! let yaml = r#"
//! server_metadata_url: https://accounts.google.com/.well-known/openid-configuration
//! client_id: my-client
//! base_url: https://app.example.com
//! capabilities:
//!   graph: {read: [], write: [read], user_management: []}
//!   auto_admin: true
//!   user_file: caps.yaml
//!   default_capabilities: [read]
//! "#;
//! // Secrets from the environment: PORTCULLIS__SECRET_KEY, PORTCULLIS__CLIENT_SECRET.
//! let env = env_overrides("PORTCULLIS", std::env::vars());
//! let config: OidcConfig = load_from_str(yaml, Format::Yaml, &env)?;
//! let rp = RelyingParty::builder(config).build().await?;
//! // An adapter calls rp.login(..), rp.callback(..), rp.authenticate(..) per request.
//! # let _ = rp; Ok(()) }
//! ```
//!
//! # Calling other services
//!
//! A service may call other services with a token: the caller's own,
//! forwarded by an auth proxy (APISIX, oauth2-proxy) or presented as a
//! bearer token, or its own. A [`TokenSource`] hands out the token:
//! [`ForwardedToken`] sends the caller's access token on as is;
//! [`RefreshingToken`] keeps one caller's access token fresh with the
//! refresh token the proxy forwarded (once however many tasks ask, keeping
//! the rotated refresh token, failing fast once the provider refused it), so
//! work done for the caller can go on after the access token expired;
//! [`ClientCredentials`] holds the service's own token. The renewing sources
//! call the provider's [`TokenEndpoint`], found by discovery.
//! [`ForwardingClient`] sends requests with those tokens to the origins it
//! was configured with and nowhere else, follows no redirect, and renews the
//! token and tries once more after a 401.
//!
//! ```no_run
//! use portcullis_core::{Authenticated, Secret};
//! use portcullis_oidc::{ForwardedToken, ForwardingClient, RefreshingToken, TokenEndpoint};
//!
//! # async fn run(caller: Authenticated) -> Result<(), portcullis_core::Error> {
//! // Once, at start-up.
//! let endpoint = TokenEndpoint::discover(
//!     "https://id.example.com/.well-known/openid-configuration",
//!     "my-client",
//!     Some(Secret::new("from-the-environment")),
//! )
//! .await?;
//! let downstream = ForwardingClient::builder()
//!     .allow_origin("https://reports.example.com")
//!     .build()?;
//!
//! // Per request: `caller` is what the Authenticator verified, with the
//! // forwarded refresh token (CredentialsConfig::with_refresh_token_header).
//! let now = downstream
//!     .get(&ForwardedToken::from_caller(&caller)?, "https://reports.example.com/today")
//!     .await?;
//! println!("{}", now.status());
//! if let Some(tokens) = RefreshingToken::from_caller(&endpoint, &caller) {
//!     tokio::spawn(async move {
//!         // Minutes later, the access token has been refreshed as needed.
//!         let later = downstream.get(&tokens, "https://reports.example.com/today").await;
//!         # let _ = later;
//!     });
//! }
//! # Ok(()) }
//! ```

mod config;
mod forward;
#[cfg(test)]
mod fuzz_tests;
mod hash;
mod headless;
mod origin;
mod provider;
mod redirect;
mod rp;
mod seal;
mod session;
mod sources;

pub use config::{ClientKwargs, ForcedUser, OidcConfig, SessionConfig, SessionStorage};
pub use forward::{ForwardingClient, ForwardingClientBuilder};
pub use redirect::{DEFAULT_RETURN, safe_return_path};
pub use rp::{RelyingParty, RelyingPartyBuilder};
pub use sources::{
    ClientCredentials, ForwardedToken, RefreshingToken, TokenEndpoint, TokenFuture, TokenSource,
};

pub use portcullis_capabilities;
pub use portcullis_core;
pub use reqwest;
