//! The conformance cases, one `async fn` each, listed in
//! [`conformance_tests!`](crate::conformance_tests).

use portcullis_core::config::{IssuerConfig, VerifierConfig};
use portcullis_core::{Algorithm, Authenticator, CredentialsConfig, TokenVerifier};

use super::{Adapter, assert_response_snapshot, resource_app};
use crate::MockProvider;

/// A verifier for `provider`'s access tokens on its clock.
fn verifier(provider: &MockProvider) -> TokenVerifier {
    let issuer = IssuerConfig::new(provider.issuer())
        .with_algorithms([Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA])
        .with_audience(provider.audience())
        .with_client_id(provider.client_id());
    TokenVerifier::builder(VerifierConfig::new([("mock".to_owned(), issuer)]))
        .clock(std::sync::Arc::new(provider.clock()))
        .build()
        .expect("the verifier builds")
}

/// A resource application with auto-error off (routes decide).
async fn resource(adapter: &dyn Adapter) -> (MockProvider, crate::AppTester) {
    let provider = MockProvider::start().await.expect("the mock provider starts");
    let auth = Authenticator::new(
        verifier(&provider),
        CredentialsConfig::default().with_auto_error(false),
    );
    let app = resource_app(adapter, &provider, auth);
    (provider, app)
}

/// `GET /me` without credentials: 401 with `WWW-Authenticate: Bearer realm=...`.
pub async fn no_credentials_is_401_with_a_challenge(adapter: &dyn Adapter) {
    let (_provider, app) = resource(adapter).await;
    let client = app.client(None).await;
    let resp = client.get("/me").expect(401).await;
    assert_response_snapshot("no_credentials", &resp);
}
