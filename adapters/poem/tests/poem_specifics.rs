//! What is particular to poem: routes nested under prefixes, refusals as
//! `poem::Error`s and a missing middleware.

use std::sync::Arc;

use poem::{Endpoint, EndpointExt, IntoResponse, Response, Route, get, handler};
use portcullis_core::config::{IssuerConfig, VerifierConfig};
use portcullis_core::{Algorithm, Authenticator, CredentialsConfig, TokenVerifier};
use portcullis_poem::portcullis_oidc::RelyingParty;
use portcullis_poem::{
    AuthMiddleware, AuthRejection, Caller, LoginRedirect, RequireCapability, capability,
    login_routes,
};
use portcullis_testing::conformance::{self, Adapter, Stop};
use portcullis_testing::{AppTester, MockProvider};

use crate::conformance::serve;

capability!(Announce = "announce");

#[handler]
async fn shout(_: RequireCapability<Announce, LoginRedirect>) -> &'static str {
    "shout"
}

#[handler]
async fn me(Caller(caller): Caller) -> String {
    conformance::greeting(Some(&caller))
}

/// A login application whose login routes live under `/account` and whose
/// pages live under `/api`.
struct Nested;

impl Adapter for Nested {
    fn name(&self) -> &'static str {
        "poem, nested"
    }

    fn serve_login(&self, listener: std::net::TcpListener, rp: RelyingParty) -> Stop {
        let app = login_routes(rp.clone())
            .nest(
                "/api",
                Route::new().at("/shout", get(shout)).at("/me", get(me)),
            )
            .with(AuthMiddleware::for_login(rp));
        serve(listener, app)
    }

    fn serve_resource(&self, _: std::net::TcpListener, _: Authenticator) -> Stop {
        unreachable!("only the login application is nested")
    }

    fn serve_policy(
        &self,
        _: std::net::TcpListener,
        _: Authenticator,
        _: portcullis_poem::portcullis_policy::Policy,
    ) -> Stop {
        unreachable!("only the login application is nested")
    }

    fn serve_issuer(
        &self,
        _: std::net::TcpListener,
        _: portcullis_poem::portcullis_issuer::Issuer,
    ) -> Stop {
        unreachable!("only the login application is nested")
    }

    fn middleware_debug(&self, rp: RelyingParty) -> Vec<String> {
        vec![format!("{:?}", AuthMiddleware::for_login(rp))]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_routes_keep_their_prefix_in_redirects() {
    let app = conformance::login_app(&Nested, |c| c.prefix = "/account".to_owned()).await;
    let guest = app.app.client(None).await;
    let to_login = guest
        .get("/api/shout?message=hi")
        .browser()
        .expect(303)
        .await;
    assert_eq!(
        to_login.location(),
        Some("/account/login?next=%2Fapi%2Fshout%3Fmessage%3Dhi")
    );
    let to_login = guest.get("/account/token").browser().expect(303).await;
    assert_eq!(
        to_login.location(),
        Some("/account/login?next=%2Faccount%2Ftoken")
    );

    let friend = app.app.client(Some("friend@example.com")).await;
    assert_eq!(friend.get("/api/shout").expect(200).await.text(), "shout");
    assert_eq!(
        friend.get("/api/me").expect(200).await.text(),
        "friend@example.com"
    );
    let token = friend.token().await;
    let script = app.app.client(None).await;
    script.get("/api/shout").bearer(&token).expect(200).await;
}

fn verifier(provider: &MockProvider) -> TokenVerifier {
    let issuer = IssuerConfig::new(provider.issuer())
        .with_algorithms([Algorithm::RS256])
        .with_audience(provider.audience());
    TokenVerifier::builder(VerifierConfig::new([("mock".to_owned(), issuer)]))
        .clock(Arc::new(provider.clock()))
        .build()
        .expect("the verifier builds")
}

async fn resource(
    provider: &MockProvider,
    app: impl Endpoint + 'static,
) -> (AppTester, portcullis_testing::TestClient) {
    let tester = AppTester::poem(provider, "", |_| async move { app })
        .await
        .expect("the application starts");
    let client = tester.client(None).await;
    (tester, client)
}

#[tokio::test]
async fn refusals_are_poem_errors_an_application_can_catch() {
    let provider = MockProvider::start().await.expect("the provider starts");
    // The middleware itself refuses anonymous requests.
    let auth = Authenticator::new(
        verifier(&provider),
        CredentialsConfig::default().refuse_missing(),
    );
    let app = Route::new()
        .at("/me", get(me))
        .with(AuthMiddleware::new(auth))
        .catch_error(|r: AuthRejection| async move {
            let status = r.to_response().status();
            Response::builder()
                .status(status)
                .body(format!("caught: {}", r.error().error_code()))
        });
    let (_app, client) = resource(&provider, app).await;
    let resp = client.get("/me").expect(401).await;
    assert_eq!(resp.text(), "caught: unauthorized");
    let resp = client.get("/me").bearer("not.a.token").expect(401).await;
    assert_eq!(resp.text(), "caught: invalid_token");
    let token = provider.token().email("alice@example.com").sign();
    let resp = client.get("/me").bearer(&token).expect(200).await;
    assert_eq!(resp.text(), "alice@example.com");
}

#[tokio::test]
async fn an_extractor_without_the_middleware_is_a_500() {
    let provider = MockProvider::start().await.expect("the provider starts");
    let (_app, client) = resource(&provider, Route::new().at("/me", get(me))).await;
    let resp = client.get("/me").expect(500).await;
    assert_eq!(resp.json()["error_description"], "internal server error");
    assert_eq!(resp.header("content-type"), Some("application/json"));
}

#[test]
fn rejections_render_as_core_maps_them() {
    let error = portcullis_core::Error::missing_credentials();
    let expected = error.to_reply("portcullis");
    let resp = portcullis_poem::error_response(&error, "portcullis").into_response();
    assert_eq!(resp.status().as_u16(), expected.status);
    for (name, value) in &expected.headers {
        assert_eq!(
            resp.headers().get(*name).and_then(|v| v.to_str().ok()),
            Some(value.as_str())
        );
    }
}
