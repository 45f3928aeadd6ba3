//! An application that logs its users in, for the login-flow tests.

use std::sync::Arc;

use axum::Router;
use portcullis_axum::portcullis_capabilities::Stores;
use portcullis_axum::portcullis_oidc::{OidcConfig, RelyingParty};
use portcullis_core::clock::SharedClock;
use portcullis_testing::{AppTester, LoginProvider, MockOptions, MockProvider, TestClient};

/// The secret key every test app uses (apps sharing it can read each other's cookies).
pub(crate) const SECRET: &str = "login tests secret key, 32 bytes or more";

pub(crate) use portcullis_testing::conformance::graph;

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

/// The routes of a test app around `rp`: the conformance login application.
pub(crate) fn routes(rp: RelyingParty) -> Router {
    crate::conformance::login_router(rp)
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
    let make = |base: &str| {
        let mut cfg = config(provider, base);
        tweak(&mut cfg);
        cfg
    };
    serve_on(provider, make, Arc::new(provider.clock()), None).await
}

/// Serves a test app whose configuration `make` builds from its base URL,
/// for any provider, optionally on already opened `stores`.
pub(crate) async fn serve_on<P: LoginProvider>(
    provider: &P,
    make: impl Fn(&str) -> OidcConfig,
    clock: SharedClock,
    stores: Option<Stores>,
) -> (AppTester, RelyingParty) {
    let prefix = make("http://127.0.0.1:1").prefix;
    let mut built = None;
    let tester = AppTester::axum(provider, &prefix, |base| {
        let mut builder = RelyingParty::builder(make(&base)).clock(clock);
        if let Some(stores) = stores {
            builder = builder.stores(stores);
        }
        let built = &mut built;
        async move {
            let rp = builder.build().await.unwrap();
            *built = Some(rp.clone());
            routes(rp)
        }
    })
    .await
    .unwrap();
    (tester, built.unwrap())
}
