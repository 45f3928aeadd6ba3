//! The app under test and helpers to call it.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use portcullis_axum::{AuthLayer, Caller, RequireScope, scope};
use portcullis_core::config::{IssuerConfig, VerifierConfig};
use portcullis_core::{Algorithm, Authenticator, CredentialsConfig, TokenRejection, TokenVerifier};
use portcullis_testing::MockProvider;
use serde_json::Value;
use tower::ServiceExt;

scope!(pub(crate) Read = "read");

/// The mock provider and an app trusting it.
pub(crate) struct Harness {
    pub(crate) provider: MockProvider,
    pub(crate) app: Router,
}

pub(crate) fn issuer_config(provider: &MockProvider) -> IssuerConfig {
    IssuerConfig::new(provider.issuer())
        .with_algorithms([Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA])
        .with_audience(provider.audience())
        .with_client_id(provider.client_id())
}

pub(crate) fn app(verifier: TokenVerifier, creds: CredentialsConfig) -> Router {
    Router::new()
        .route("/me", get(me))
        .route("/optional", get(optional))
        .route("/scoped", get(scoped))
        .route("/forwarded", get(forwarded))
        .layer(AuthLayer::new(Authenticator::new(verifier, creds)))
}

async fn me(Caller(c): Caller) -> String {
    c.principal
        .email()
        .unwrap_or(c.principal.user_id())
        .to_owned()
}

async fn optional(caller: Option<Caller>) -> String {
    match caller {
        Some(Caller(c)) => format!("hello {}", c.principal.user_id()),
        None => "hello guest".to_owned(),
    }
}

async fn scoped(s: RequireScope<Read>) -> String {
    format!("read by {}", s.caller().principal.user_id())
}

async fn forwarded(Caller(c): Caller) -> String {
    format!(
        "id_token={} refresh_token={}",
        c.id_token.is_some(),
        c.refresh_token
            .as_ref()
            .map(|t| t.expose().len())
            .unwrap_or(0)
    )
}

/// A verifier for `cfg` reading time from `provider`'s clock.
pub(crate) fn verifier_on_clock_of(cfg: VerifierConfig, provider: &MockProvider) -> TokenVerifier {
    TokenVerifier::builder(cfg)
        .clock(Arc::new(provider.clock()))
        .build()
        .expect("verifier")
}

/// Starts a provider and an app with the verifier config `tweak` leaves.
pub(crate) async fn harness_with(
    tweak: impl FnOnce(&MockProvider, &mut VerifierConfig),
) -> Harness {
    let provider = MockProvider::start().await.expect("mock provider");
    let mut cfg = VerifierConfig::new([("mock".to_owned(), issuer_config(&provider))]);
    tweak(&provider, &mut cfg);
    let verifier = verifier_on_clock_of(cfg, &provider);
    let app = app(verifier, CredentialsConfig::default());
    Harness { provider, app }
}

pub(crate) async fn harness() -> Harness {
    harness_with(|_, _| {}).await
}

/// A response, read whole.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

impl Reply {
    pub(crate) fn www_authenticate(&self) -> &str {
        self.headers
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    /// Asserts a 401 `invalid_token` for `reason`.
    #[track_caller]
    pub(crate) fn assert_refused(&self, reason: TokenRejection) {
        assert_eq!(self.status, StatusCode::UNAUTHORIZED, "{self:?}");
        let expected = format!(
            r#"Bearer realm="portcullis", error="invalid_token", error_description="{}""#,
            reason.description()
        );
        assert_eq!(self.www_authenticate(), expected, "{self:?}");
        let body: Value = serde_json::from_str(&self.body).unwrap();
        assert_eq!(body["error"], "invalid_token");
    }
}

pub(crate) async fn send(app: &Router, req: Request<Body>) -> Reply {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

pub(crate) async fn get_with(app: &Router, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = Request::get(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    send(app, req.body(Body::empty()).unwrap()).await
}

pub(crate) async fn bearer(app: &Router, path: &str, token: &str) -> Reply {
    get_with(app, path, &[("authorization", &format!("Bearer {token}"))]).await
}
