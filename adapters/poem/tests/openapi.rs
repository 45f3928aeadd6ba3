//! The OpenAPI security scheme: documented in the generated document, and
//! enforced exactly as the plain extractors enforce it.

use std::sync::Arc;

use poem::{EndpointExt, Route};
use poem_openapi::payload::PlainText;
use poem_openapi::{OpenApi, OpenApiService};
use portcullis_capabilities::{Capabilities, MemoryStore};
use portcullis_core::config::{IssuerConfig, VerifierConfig};
use portcullis_core::{Algorithm, Authenticator, CredentialsConfig, Secret, TokenVerifier};
use portcullis_poem::openapi::{BearerAuth, BearerCapability, BearerScope, SCHEME_NAME};
use portcullis_poem::{AuthMiddleware, capability, scope};
use portcullis_testing::conformance::{self, assert_response_snapshot};
use portcullis_testing::{AppTester, MockProvider, TestClient};
use serde_json::json;

scope!(ReadScope = "read");
capability!(Write = "write");

struct Api;

#[OpenApi]
impl Api {
    /// Open to everyone.
    #[oai(path = "/hello", method = "get")]
    async fn hello(&self) -> PlainText<&'static str> {
        PlainText("hello")
    }

    /// Who is calling.
    #[oai(path = "/me", method = "get")]
    async fn me(&self, auth: BearerAuth) -> PlainText<String> {
        PlainText(conformance::greeting(Some(&auth.0)))
    }

    /// Needs the `read` scope.
    #[oai(path = "/scoped", method = "get")]
    async fn scoped(&self, _auth: BearerScope<ReadScope>) -> PlainText<&'static str> {
        PlainText("scoped")
    }

    /// Needs the `write` capability.
    #[oai(path = "/write", method = "post")]
    async fn write(&self, auth: BearerCapability<Write>) -> PlainText<String> {
        let who = auth
            .caller()
            .map_or("a guest".to_owned(), |c| conformance::greeting(Some(c)));
        PlainText(format!("{who} wrote"))
    }
}

fn service() -> OpenApiService<Api, ()> {
    OpenApiService::new(Api, "portcullis test API", "1.0")
}

#[test]
fn the_document_lists_the_scheme_on_protected_operations() {
    let spec: serde_json::Value =
        serde_json::from_str(&service().spec()).expect("the document is JSON");
    assert_eq!(
        spec["components"]["securitySchemes"][SCHEME_NAME],
        json!({
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "A bearer token: the provider's access token or one issued by this service.",
        })
    );
    for (path, method) in [("/me", "get"), ("/scoped", "get"), ("/write", "post")] {
        assert_eq!(
            spec["paths"][path][method]["security"],
            json!([{ SCHEME_NAME: [] }]),
            "{method} {path}"
        );
    }
    assert!(spec["paths"]["/hello"]["get"].get("security").is_none());
}

async fn start() -> (MockProvider, AppTester, TestClient) {
    let provider = MockProvider::start().await.expect("the provider starts");
    let issuer = IssuerConfig::new(provider.issuer())
        .with_algorithms([Algorithm::RS256])
        .with_audience(provider.audience());
    let verifier = TokenVerifier::builder(VerifierConfig::new([("mock".to_owned(), issuer)]))
        .clock(Arc::new(provider.clock()))
        .build()
        .expect("the verifier builds");
    let auth = Authenticator::new(verifier, CredentialsConfig::default());
    let store = Arc::new(MemoryStore::with_users([("writer@example.com", ["write"])]));
    let caps = Capabilities::builder(
        conformance::graph(),
        store,
        Secret::new(conformance::random_secret_key()),
    )
    .build()
    .expect("the capabilities build");
    let app = AppTester::poem(&provider, "", |_| async move {
        let api = service();
        let spec = api.spec_endpoint();
        Route::new()
            .nest("/api", api)
            .at("/openapi.json", spec)
            .with(AuthMiddleware::new(auth).with_capabilities(caps))
    })
    .await
    .expect("the application starts");
    let client = app.client(None).await;
    (provider, app, client)
}

#[tokio::test]
async fn a_protected_operation_answers_401_403_and_200() {
    let (provider, _app, client) = start().await;
    assert_eq!(client.get("/api/hello").expect(200).await.text(), "hello");

    // No caller: core's 401, challenge included, as every adapter answers it.
    let resp = client.get("/api/me").expect(401).await;
    assert_response_snapshot("no_credentials", &resp);
    let alice = provider
        .token()
        .email("alice@example.com")
        .scope("write")
        .sign();
    assert_eq!(
        client
            .get("/api/me")
            .bearer(&alice)
            .expect(200)
            .await
            .text(),
        "alice@example.com"
    );
    client
        .get("/api/me")
        .bearer("not.a.token")
        .expect(401)
        .await;

    // Scopes.
    let resp = client.get("/api/scoped").bearer(&alice).expect(403).await;
    assert_response_snapshot("insufficient_scope", &resp);
    let reader = provider.token().scope("read").sign();
    client.get("/api/scoped").bearer(&reader).expect(200).await;

    // Capabilities, as the Capabilities service decides.
    client.post("/api/write").expect(401).await;
    let resp = client.post("/api/write").bearer(&alice).expect(403).await;
    assert_eq!(resp.json()["error"], "insufficient_scope");
    let writer = provider.token().email("writer@example.com").sign();
    assert_eq!(
        client
            .post("/api/write")
            .bearer(&writer)
            .expect(200)
            .await
            .text(),
        "writer@example.com wrote"
    );

    // The served document is the same one.
    let spec = client.get("/openapi.json").expect(200).await.json();
    assert_eq!(
        spec["paths"]["/write"]["post"]["security"],
        json!([{ SCHEME_NAME: [] }])
    );
}
