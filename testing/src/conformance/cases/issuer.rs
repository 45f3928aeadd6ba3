//! The issuer application's cases: RFC 6749 answers and errors, discovery,
//! JWKS, bounded bodies, tokens verified through the issuer's URL alone.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use portcullis_core::config::{IssuerConfig, VerifierConfig};
use portcullis_core::{Algorithm, TokenVerifier};
use portcullis_issuer::form::MAX_FORM_BYTES;
use serde_json::{Value, json};

use super::super::{Adapter, ISSUER_MACHINE_SECRET, assert_response_snapshot, issuer_app};
use crate::{TestClient, TestResponse};

const FORM: &str = "application/x-www-form-urlencoded";

fn form_encoded(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn machine_basic() -> String {
    let pair = format!("reports:{}", form_encoded(ISSUER_MACHINE_SECRET));
    format!("Basic {}", STANDARD.encode(pair))
}

async fn post_form(
    client: &TestClient,
    path: &str,
    authorization: Option<&str>,
    body: &str,
) -> TestResponse {
    let mut request = client
        .post(path)
        .header("content-type", FORM)
        .body(body.as_bytes().to_vec());
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    request.send().await
}

/// `resp` with the named members of its JSON body replaced by a marker
/// (tokens, key material: values that differ on every run).
fn redacted(resp: &TestResponse, base_url: &str, members: &[&str]) -> TestResponse {
    let text = resp.text().replace(base_url, "http://issuer");
    let mut body: Value = serde_json::from_str(&text).expect("a JSON body");
    fn walk(value: &mut Value, members: &[&str]) {
        match value {
            Value::Object(map) => {
                for (name, member) in map.iter_mut() {
                    if members.contains(&name.as_str()) {
                        *member = json!("[redacted]");
                    } else {
                        walk(member, members);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| walk(v, members)),
            _ => {}
        }
    }
    walk(&mut body, members);
    TestResponse {
        status: resp.status,
        headers: resp.headers.clone(),
        body: body.to_string().into_bytes(),
    }
}

/// Every error of the token endpoint has RFC 6749 section 5.2's shape:
/// its status, `{"error", "error_description"}`, `no-store` and
/// `no-cache`, and `WWW-Authenticate: Basic` with `invalid_client`.
pub async fn issuer_errors_have_the_rfc_6749_shape(adapter: &dyn Adapter) {
    let (app, _issuer) = issuer_app(adapter, |_| {});
    let client = app.client(None).await;
    let wrong_basic = format!("Basic {}", STANDARD.encode("reports:wrong"));
    let cases: [(&str, Option<&str>, &str, &str); 13] = [
        ("issuer_no_grant_type", None, FORM, "username=alice"),
        (
            "issuer_unsupported_grant_type",
            None,
            FORM,
            "grant_type=implicit",
        ),
        (
            "issuer_missing_parameter",
            None,
            FORM,
            "grant_type=password&username=alice",
        ),
        (
            "issuer_wrong_password",
            None,
            FORM,
            "grant_type=password&username=alice&password=guess",
        ),
        (
            "issuer_unknown_user",
            None,
            FORM,
            "grant_type=password&username=mallory&password=guess",
        ),
        (
            "issuer_unknown_scope",
            None,
            FORM,
            "grant_type=password&username=alice&password=alice-password&scope=admin",
        ),
        (
            "issuer_repeated_parameter",
            None,
            FORM,
            "grant_type=password&grant_type=password",
        ),
        ("issuer_malformed_form", None, FORM, "grant_type=%zz"),
        (
            "issuer_wrong_content_type",
            None,
            "application/json",
            r#"{"grant_type":"password"}"#,
        ),
        (
            "issuer_invalid_client",
            Some(&wrong_basic),
            FORM,
            "grant_type=client_credentials",
        ),
        (
            "issuer_unauthorized_client",
            None,
            FORM,
            "grant_type=client_credentials",
        ),
        (
            "issuer_unknown_refresh_token",
            None,
            FORM,
            "grant_type=refresh_token&refresh_token=AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ),
        (
            "issuer_two_client_authentications",
            Some(&machine_basic()),
            FORM,
            "grant_type=client_credentials&client_secret=x",
        ),
    ];
    for (name, authorization, content_type, body) in cases {
        let mut request = client
            .post("/token")
            .header("content-type", content_type)
            .body(body.as_bytes().to_vec());
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        let resp = request.send().await;
        assert_eq!(resp.header("pragma"), Some("no-cache"), "{name}");
        assert_response_snapshot(name, &resp);
    }
}

/// The token endpoint's answers (RFC 6749 section 5.1): the password
/// exchange with a refresh token, its refresh, `client_credentials`
/// without one; revocation and introspection answer as RFCs 7009 and 7662.
pub async fn issuer_tokens_answer_as_rfc_6749_says(adapter: &dyn Adapter) {
    let (app, _issuer) = issuer_app(adapter, |_| {});
    let base = app.base_url().to_owned();
    let client = app.client(None).await;
    let tokens = ["access_token", "refresh_token"];
    let login = post_form(
        &client,
        "/token",
        None,
        "grant_type=password&username=alice&password=alice-password&scope=user:read+user:write",
    )
    .await;
    assert_eq!(login.status, 200, "{}", login.text());
    assert_eq!(login.header("pragma"), Some("no-cache"));
    assert_response_snapshot("issuer_password_grant", &redacted(&login, &base, &tokens));
    let refresh_token = login.json()["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_owned();
    let refreshed = post_form(
        &client,
        "/token",
        None,
        &format!("grant_type=refresh_token&refresh_token={refresh_token}&scope=user:read"),
    )
    .await;
    assert_response_snapshot(
        "issuer_refresh_grant",
        &redacted(&refreshed, &base, &tokens),
    );
    let machine = post_form(
        &client,
        "/token",
        Some(&machine_basic()),
        "grant_type=client_credentials",
    )
    .await;
    assert_response_snapshot(
        "issuer_client_credentials",
        &redacted(&machine, &base, &tokens),
    );
    let access = login.json()["access_token"]
        .as_str()
        .expect("an access token")
        .to_owned();
    let introspected = post_form(
        &client,
        "/introspect",
        Some(&machine_basic()),
        &format!("token={access}"),
    )
    .await;
    assert_response_snapshot(
        "issuer_introspection",
        &redacted(&introspected, &base, &["exp", "iat", "jti", "iss", "aud"]),
    );
    let current = refreshed.json()["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_owned();
    let revoked = post_form(&client, "/revoke", None, &format!("token={current}")).await;
    assert_response_snapshot("issuer_revocation", &revoked);
    let after = post_form(
        &client,
        "/introspect",
        Some(&machine_basic()),
        &format!("token={current}"),
    )
    .await;
    assert_eq!(after.json(), json!({"active": false}));
    let public = post_form(&client, "/introspect", None, &format!("token={access}")).await;
    assert_response_snapshot("issuer_introspection_needs_a_confidential_client", &public);
}

/// Discovery (RFC 8414 and OpenID Connect's name for it) and the JWKS.
pub async fn issuer_discovery_and_jwks(adapter: &dyn Adapter) {
    let (app, _issuer) = issuer_app(adapter, |_| {});
    let base = app.base_url().to_owned();
    let client = app.client(None).await;
    let metadata = client
        .get("/.well-known/oauth-authorization-server")
        .expect(200)
        .await;
    assert_response_snapshot("issuer_metadata", &redacted(&metadata, &base, &[]));
    let oidc = client
        .get("/.well-known/openid-configuration")
        .expect(200)
        .await;
    assert_eq!(oidc.json(), metadata.json());
    let jwks = client.get("/jwks").expect(200).await;
    assert_response_snapshot("issuer_jwks", &redacted(&jwks, &base, &["kid", "x", "y"]));
    // Only their own method.
    assert_eq!(post_form(&client, "/jwks", None, "").await.status, 405);
    assert_eq!(client.get("/token").send().await.status, 405);
}

/// A body past the limit is 413 in the RFC 6749 error shape; one at the
/// limit is read.
pub async fn issuer_bodies_past_the_limit_are_413(adapter: &dyn Adapter) {
    let (app, _issuer) = issuer_app(adapter, |_| {});
    let client = app.client(None).await;
    let big = format!("grant_type=password&pad={}", "a".repeat(MAX_FORM_BYTES));
    let resp = post_form(&client, "/token", None, &big).await;
    assert_response_snapshot("issuer_body_too_large", &resp);
    let fits = format!(
        "grant_type=password&pad={}",
        "a".repeat(MAX_FORM_BYTES - 24)
    );
    assert_eq!(fits.len(), MAX_FORM_BYTES);
    let resp = post_form(&client, "/token", None, &fits).await;
    assert_eq!(resp.status, 400);
    assert_eq!(resp.json()["error"], "invalid_request");
}

/// A token the issuer served by this adapter signed verifies with
/// portcullis-core given the issuer's URL alone (discovery, then JWKS).
pub async fn issuer_tokens_verify_through_discovery(adapter: &dyn Adapter) {
    let (app, _issuer) = issuer_app(adapter, |_| {});
    let base = app.base_url().to_owned();
    let client = app.client(None).await;
    let login = post_form(
        &client,
        "/token",
        None,
        "grant_type=password&username=bob&password=bob-password",
    )
    .await;
    let access = login.json()["access_token"]
        .as_str()
        .expect("an access token")
        .to_owned();
    let verifier = TokenVerifier::new(VerifierConfig::new([(
        "issuer".to_owned(),
        IssuerConfig::new(&base)
            .with_audience(&base)
            .with_algorithms([Algorithm::ES256]),
    )]))
    .expect("a verifier");
    let principal = verifier.verify(&access).await.expect("a verified token");
    assert_eq!(principal.user_id(), "u-bob");
    assert_eq!(principal.claims()["username"], "bob");
}
