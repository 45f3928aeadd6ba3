//! An application that logs its users in, for the login-flow tests.

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use portcullis_axum::portcullis_oidc::{OidcConfig, RelyingParty};
use portcullis_axum::{
    AuthLayer, Caller, LoginRedirect, RequireCapability, capability, login_routes,
};
use portcullis_core::CapabilitiesConfig;
use portcullis_testing::{AppTester, MockOptions, MockProvider, TestClient};

capability!(pub(crate) Read = "read");
capability!(pub(crate) Announce = "announce");

/// The secret key every test app uses (apps sharing it can read each other's cookies).
pub(crate) const SECRET: &str = "login tests secret key, 32 bytes or more";

/// easy-oauth's README graph.
pub(crate) fn graph() -> CapabilitiesConfig {
    let mut c = CapabilitiesConfig::new([
        ("read", vec![]),
        ("write", vec!["read"]),
        ("moderate", vec!["read", "write"]),
        ("announce", vec!["read", "write"]),
        ("user_management", vec![]),
    ]);
    c.auto_admin = true;
    c.default_capabilities = vec!["read".to_owned()];
    c
}

/// The configuration of a test app at `base_url` for `provider`.
pub(crate) fn config(provider: &MockProvider, base_url: &str) -> OidcConfig {
    OidcConfig::new(
        provider.discovery_url(),
        SECRET,
        provider.client_id(),
        base_url,
    )
    .with_client_secret(provider.client_secret())
    .with_audience(provider.audience())
    .with_capabilities(graph())
}

/// The routes of a test app around `rp`.
pub(crate) fn routes(rp: RelyingParty) -> Router {
    let prefix = rp.config().prefix.clone();
    let app = Router::new()
        .route(
            "/",
            get(|c: Option<Caller>| async move {
                c.map_or("guest".to_owned(), |Caller(c)| {
                    c.principal
                        .email()
                        .unwrap_or(c.principal.user_id())
                        .to_owned()
                })
            }),
        )
        .route(
            "/me",
            get(|Caller(c): Caller| async move {
                axum::Json(serde_json::json!({
                    "user_id": c.principal.user_id(),
                    "email": c.principal.email(),
                    "issuer": c.principal.issuer(),
                    "has_token": !c.principal.token().expose().is_empty(),
                }))
            }),
        )
        .route("/read", get(|_: RequireCapability<Read>| async { "read" }))
        .route(
            "/shout",
            get(|_: RequireCapability<Announce, LoginRedirect>| async { "shout" }),
        );
    let login = login_routes(rp.clone());
    let app = if prefix.is_empty() {
        app.merge(login)
    } else {
        app.nest(&prefix, login)
    };
    app.layer(AuthLayer::for_login(rp))
}

/// A running test app and its provider.
pub(crate) struct LoginApp {
    pub(crate) provider: MockProvider,
    pub(crate) tester: AppTester,
    pub(crate) rp: RelyingParty,
}

impl LoginApp {
    /// A logged-in client (or a guest).
    pub(crate) async fn client(&self, email: Option<&str>) -> TestClient {
        self.tester.client(email).await
    }
}

/// A test app on a default mock provider.
pub(crate) async fn login_app() -> LoginApp {
    login_app_with(MockOptions::default(), |_| {}).await
}

/// A test app on a mock provider started with `options`, its configuration
/// adjusted by `tweak`.
pub(crate) async fn login_app_with(
    options: MockOptions,
    tweak: impl Fn(&mut OidcConfig),
) -> LoginApp {
    let provider = MockProvider::start_with(options).await.unwrap();
    let (tester, rp) = serve(&provider, tweak).await;
    LoginApp {
        provider,
        tester,
        rp,
    }
}

/// Serves a test app for `provider` (several apps may share one provider).
pub(crate) async fn serve(
    provider: &MockProvider,
    tweak: impl Fn(&mut OidcConfig),
) -> (AppTester, RelyingParty) {
    let mut probe = config(provider, "http://127.0.0.1:1");
    tweak(&mut probe);
    let clock = Arc::new(provider.clock());
    let mut built = None;
    let tester = AppTester::axum(provider, &probe.prefix, |base| {
        let mut cfg = config(provider, &base);
        tweak(&mut cfg);
        let built = &mut built;
        async move {
            let rp = RelyingParty::builder(cfg)
                .clock(clock)
                .build()
                .await
                .unwrap();
            *built = Some(rp.clone());
            routes(rp)
        }
    })
    .await
    .unwrap();
    (tester, built.unwrap())
}
