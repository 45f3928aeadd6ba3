//! The third-party provider (`oauth2-mock-server` under Node 22) as the
//! harness runs it, and what it answers to a relying party, driven by hand.
//!
//! These tests double as documentation of that provider: what the library does
//! on its own (the `stock` test) and what the launcher's hooks change.

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_core::Algorithm;
use portcullis_core::keys::KeySet;
use portcullis_testing::{NodeOidcOptions, NodeOidcServer};
use reqwest::{Client, StatusCode, Url, redirect};
use serde_json::{Value, json};

const CLIENT: &str = "portcullis-rp";
const REDIRECT: &str = "http://127.0.0.1:9/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mJ92K9sL1Xq0a7Rf9wTzx3uvM5hQkE";

fn decode_json(segment: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
}

/// The header and claims of a compact JWS.
fn parts(token: &str) -> (Value, Value) {
    let mut it = token.split('.');
    let header = decode_json(it.next().unwrap());
    let claims = decode_json(it.next().unwrap());
    (header, claims)
}

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.as_bytes()))
}

/// `application/x-www-form-urlencoded` text of `pairs`.
fn form(pairs: &[(&str, &str)]) -> String {
    let mut url = Url::parse("http://form.invalid/").unwrap();
    url.query_pairs_mut().extend_pairs(pairs);
    url.query().unwrap_or_default().to_owned()
}

fn client() -> Client {
    Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap()
}

async fn get_json(url: &str) -> Value {
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    response.json().await.unwrap()
}

/// Sends the browser to the authorization endpoint and returns where the
/// provider redirects it, with its query parameters.
async fn authorize(server: &NodeOidcServer, params: &[(&str, &str)]) -> (Url, Value) {
    let mut url = Url::parse(&server.url("/authorize")).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    let response = client().get(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    let query: serde_json::Map<String, Value> = location
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
        .collect();
    (location, Value::Object(query))
}

/// The usual authorization request of the relying party, for `login_hint`.
async fn code_for(server: &NodeOidcServer, login_hint: Option<&str>) -> String {
    let challenge = challenge(VERIFIER);
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", CLIENT),
        ("redirect_uri", REDIRECT),
        ("scope", "openid email"),
        ("state", "st-1"),
        ("nonce", "n-1"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ];
    if let Some(hint) = login_hint {
        params.push(("login_hint", hint));
    }
    let (_, query) = authorize(server, &params).await;
    query["code"].as_str().unwrap().to_owned()
}

/// Posts a token request; `basic` is the HTTP Basic client id and secret.
async fn token(
    server: &NodeOidcServer,
    pairs: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (StatusCode, Value) {
    let mut request = client()
        .post(server.url("/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(pairs));
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

/// The usual code exchange of the relying party (a public client with PKCE).
async fn exchange(server: &NodeOidcServer, code: &str) -> (StatusCode, Value) {
    token(
        server,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("client_id", CLIENT),
            ("code_verifier", VERIFIER),
        ],
        None,
    )
    .await
}

/// A code exchange of a public client, without PKCE.
fn plain_exchange(code: &str) -> [(&str, &str); 4] {
    [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("client_id", CLIENT),
    ]
}

fn verifies(keys: &KeySet, token: &str) -> bool {
    let (header, _) = parts(token);
    let (input, signature) = token.rsplit_once('.').unwrap();
    let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    keys.get(header["kid"].as_str().unwrap())
        .is_some_and(|key| key.verify(Algorithm::RS256, input.as_bytes(), &signature))
}

#[tokio::test]
async fn discovery_and_jwks_are_served() {
    let server = NodeOidcServer::start().await.unwrap();
    let issuer = server.issuer().to_owned();
    assert_eq!(issuer, format!("http://127.0.0.1:{}", server.port()));
    assert_eq!(server.email(), "test@example.com");

    let doc = get_json(&server.discovery_url()).await;
    assert_eq!(doc["issuer"], issuer);
    let jwks_uri = doc["jwks_uri"].as_str().unwrap();
    assert_eq!(jwks_uri, format!("{issuer}/jwks"));
    for (field, path) in [
        ("authorization_endpoint", "/authorize"),
        ("token_endpoint", "/token"),
        ("userinfo_endpoint", "/userinfo"),
        ("end_session_endpoint", "/endsession"),
        ("revocation_endpoint", "/revoke"),
        ("introspection_endpoint", "/introspect"),
    ] {
        assert_eq!(doc[field], server.url(path), "{field}");
    }
    assert_eq!(doc["response_types_supported"], json!(["code"]));
    assert_eq!(doc["response_modes_supported"], json!(["query"]));
    assert_eq!(doc["subject_types_supported"], json!(["public"]));
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        json!(["RS256"])
    );
    assert_eq!(
        doc["code_challenge_methods_supported"],
        json!(["plain", "S256"])
    );
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        json!(["none"])
    );
    // Added by the launcher.
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    assert!(
        doc["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("refresh_token"))
    );
    assert!(doc.get("scopes_supported").is_none());

    let jwks = get_json(jwks_uri).await;
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["alg"], "RS256");
    assert!(key["kid"].as_str().is_some_and(|kid| !kid.is_empty()));
    assert!(key["n"].is_string() && key["e"].is_string());
    assert!(key.get("d").is_none(), "private parts are not published");
    let (parsed, skipped) = KeySet::from_jwks(&jwks, &[Algorithm::RS256]).unwrap();
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_eq!(parsed.len(), 1);

    // Dropping the handle stops the server.
    let url = server.discovery_url();
    drop(server);
    let mut stopped = false;
    for _ in 0..100 {
        if reqwest::get(&url).await.is_err() {
            stopped = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(stopped, "the server still answers after drop");
}

#[tokio::test]
async fn authorization_code_flow_with_the_launcher_hooks() {
    let server = NodeOidcServer::start().await.unwrap();
    let issuer = server.issuer();
    let keys = KeySet::from_jwks(&get_json(&server.url("/jwks")).await, &[Algorithm::RS256])
        .unwrap()
        .0;

    // Authorize: no login page, a redirect straight back with code, state and iss.
    let challenge = challenge(VERIFIER);
    let (location, query) = authorize(
        &server,
        &[
            ("response_type", "code"),
            ("client_id", CLIENT),
            ("redirect_uri", REDIRECT),
            ("scope", "openid email"),
            ("state", "st-1"),
            ("nonce", "n-1"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("login_hint", "alice@example.com"),
        ],
    )
    .await;
    assert!(location.as_str().starts_with(REDIRECT));
    assert_eq!(query["state"], "st-1");
    assert_eq!(query["iss"], issuer);
    let code = query["code"].as_str().unwrap().to_owned();

    // Token.
    let (status, body) = exchange(&server, &code).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    // The scope comes from the token request, not the authorization request.
    assert_eq!(body["scope"], "dummy");
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();

    let id_token = body["id_token"].as_str().unwrap();
    assert!(verifies(&keys, id_token));
    let (header, claims) = parts(id_token);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(claims["iss"], issuer);
    assert_eq!(claims["sub"], "johndoe");
    assert_eq!(claims["aud"], CLIENT);
    assert_eq!(claims["nonce"], "n-1");
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["email_verified"], true);
    let iat = claims["iat"].as_u64().unwrap();
    assert_eq!(claims["exp"].as_u64().unwrap(), iat + 3600);
    assert_eq!(claims["nbf"].as_u64().unwrap(), iat - 10);
    assert!(claims["auth_time"].as_u64().unwrap() <= iat);
    for absent in ["at_hash", "azp", "scope", "amr", "jti"] {
        assert!(claims.get(absent).is_none(), "{absent} in {claims}");
    }

    let access_token = body["access_token"].as_str().unwrap().to_owned();
    assert!(verifies(&keys, &access_token));
    let (header, claims) = parts(&access_token);
    assert_eq!(header["typ"], "JWT");
    assert_eq!(claims["iss"], issuer);
    assert_eq!(claims["sub"], "johndoe");
    assert_eq!(claims["scope"], "dummy");
    assert_eq!(claims["amr"], json!(["pwd"]));
    // No audience, no client_id and no email in access tokens.
    for absent in ["aud", "client_id", "email", "jti"] {
        assert!(claims.get(absent).is_none(), "{absent} in {claims}");
    }

    // The code is single-use. With a code_verifier, the library refuses first
    // (its PKCE record of the code is gone) with an RFC 9457 problem; without
    // one, the launcher does with an OAuth error.
    let (status, body) = exchange(&server, &code).await;
    assert_eq!(status, 400);
    assert_eq!(body["detail"], "code_challenge required");
    let (status, body) = token(&server, &plain_exchange(&code), None).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");

    // Userinfo wants the access token and tells the email.
    let response = client()
        .get(server.url("/userinfo"))
        .bearer_auth(&access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let info: Value = response.json().await.unwrap();
    assert_eq!(
        info,
        json!({"sub": "johndoe", "email": "alice@example.com", "email_verified": true})
    );
    let response = client().get(server.url("/userinfo")).send().await.unwrap();
    assert_eq!(response.status(), 401);

    // Refresh: new tokens, the same user, no nonce; refresh tokens rotate.
    let refresh_pairs = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
        ("client_id", CLIENT),
    ];
    let (status, body) = token(&server, &refresh_pairs, None).await;
    assert_eq!(status, 200, "{body}");
    assert_ne!(body["refresh_token"], refresh.as_str());
    let (_, claims) = parts(body["id_token"].as_str().unwrap());
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["aud"], CLIENT);
    assert!(claims.get("nonce").is_none());
    let (status, body) = token(&server, &refresh_pairs, None).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");

    // End session: redirects anywhere it is told, with the state.
    let mut url = Url::parse(&server.url("/endsession")).unwrap();
    url.query_pairs_mut()
        .append_pair("post_logout_redirect_uri", "https://anywhere.example/bye")
        .append_pair("state", "s2")
        .append_pair("id_token_hint", "not-checked");
    let response = client().get(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(
        response.headers()["location"],
        "https://anywhere.example/bye?state=s2"
    );
    let response = client()
        .get(server.url("/endsession"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "Logout successful");
}

#[tokio::test]
async fn launcher_hooks_refuse_what_a_real_provider_refuses() {
    let options = NodeOidcOptions::default().email("bob@example.com");
    let server = NodeOidcServer::start_with(options).await.unwrap();
    assert_eq!(server.email(), "bob@example.com");

    // Without a login_hint the user is the configured email.
    let code = code_for(&server, None).await;
    let (status, body) = exchange(&server, &code).await;
    assert_eq!(status, 200, "{body}");
    let (_, claims) = parts(body["id_token"].as_str().unwrap());
    assert_eq!(claims["email"], "bob@example.com");

    // A code this server never issued: with a code_verifier the library
    // refuses it, without one the launcher does.
    let (status, body) = exchange(&server, "made-up").await;
    assert_eq!(status, 400);
    assert_eq!(body["detail"], "code_challenge required");
    let (status, body) = token(&server, &plain_exchange("made-up"), None).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");

    // Another redirect_uri, another client, no code_verifier.
    let cases: [(&str, &str, Option<&str>); 3] = [
        ("redirect_uri", "http://127.0.0.1:9/other", Some(VERIFIER)),
        ("client_id", "someone-else", Some(VERIFIER)),
        ("code_verifier", "", None),
    ];
    for (changed, value, verifier) in cases {
        let code = code_for(&server, None).await;
        let mut pairs = vec![("grant_type", "authorization_code"), ("code", &code)];
        let redirect = if changed == "redirect_uri" {
            value
        } else {
            REDIRECT
        };
        let client = if changed == "client_id" {
            value
        } else {
            CLIENT
        };
        pairs.push(("redirect_uri", redirect));
        pairs.push(("client_id", client));
        if let Some(verifier) = verifier {
            pairs.push(("code_verifier", verifier));
        }
        let (status, body) = token(&server, &pairs, None).await;
        assert_eq!(status, 400, "{changed}: {body}");
        assert_eq!(body["error"], "invalid_grant", "{changed}");
    }

    // The library itself checks a code_verifier that is sent, and answers
    // with an RFC 9457 problem rather than an OAuth error.
    let code = code_for(&server, None).await;
    let wrong = "x".repeat(43);
    let (status, body) = token(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", CLIENT),
            ("code_verifier", &wrong),
        ],
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["detail"],
        "code_verifier provided does not match code_challenge"
    );

    // An authorization request without client_id is refused.
    let (_, query) = authorize(
        &server,
        &[("response_type", "code"), ("redirect_uri", REDIRECT)],
    )
    .await;
    assert_eq!(query["error"], "invalid_request");
    assert!(query.get("code").is_none());
    assert_eq!(query["iss"], server.issuer());
    // So is an unsupported response type, by the library.
    let (_, query) = authorize(
        &server,
        &[
            ("response_type", "token"),
            ("client_id", CLIENT),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!(query["error"], "unsupported_response_type");
}

#[tokio::test]
async fn a_client_secret_can_be_required() {
    let options = NodeOidcOptions::default().client_secret("s3cret");
    let server = NodeOidcServer::start_with(options).await.unwrap();
    let doc = get_json(&server.discovery_url()).await;
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post"])
    );

    // client_secret_basic with the right secret.
    let code = code_for(&server, None).await;
    let (status, body) = token(&server, &code_pairs(&code, &[]), Some((CLIENT, "s3cret"))).await;
    assert_eq!(status, 200, "{body}");
    let (_, claims) = parts(body["id_token"].as_str().unwrap());
    assert_eq!(claims["aud"], CLIENT, "the Basic user name is the audience");

    // client_secret_post with a wrong secret, and no secret at all.
    for extra in [
        &[("client_id", CLIENT), ("client_secret", "wrong")][..],
        &[("client_id", CLIENT)][..],
    ] {
        let code = code_for(&server, None).await;
        let (status, body) = token(&server, &code_pairs(&code, extra), None).await;
        assert_eq!(status, 401, "{extra:?}: {body}");
        assert_eq!(body["error"], "invalid_client");
    }
}

/// A code exchange with PKCE, plus `extra` parameters.
fn code_pairs<'a>(code: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut pairs = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    pairs.extend_from_slice(extra);
    pairs
}

/// What `oauth2-mock-server` does with none of the launcher's hooks.
#[tokio::test]
async fn stock_library_behaviour() {
    let server = NodeOidcServer::start_with(NodeOidcOptions::default().stock())
        .await
        .unwrap();
    let doc = get_json(&server.discovery_url()).await;
    assert!(
        doc.get("authorization_response_iss_parameter_supported")
            .is_none()
    );
    assert_eq!(
        doc["grant_types_supported"],
        json!([
            "client_credentials",
            "authorization_code",
            "password",
            "urn:ietf:params:oauth:grant-type:jwt-bearer"
        ])
    );

    // Authorize: no client_id needed, login_hint ignored, no iss.
    let (_, query) = authorize(
        &server,
        &[
            ("response_type", "code"),
            ("redirect_uri", REDIRECT),
            ("state", "st"),
            ("nonce", "n-stock"),
            ("login_hint", "alice@example.com"),
        ],
    )
    .await;
    assert!(query.get("iss").is_none());
    assert_eq!(query["state"], "st");
    let code = query["code"].as_str().unwrap().to_owned();

    // Token: any client_id, any secret, any redirect_uri; the nonce is kept.
    let (status, body) = token(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://elsewhere.example/"),
            ("client_id", "whoever"),
            ("client_secret", "anything"),
        ],
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, claims) = parts(body["id_token"].as_str().unwrap());
    assert_eq!(claims["aud"], "whoever");
    assert_eq!(claims["sub"], "johndoe");
    assert_eq!(claims["nonce"], "n-stock");
    for absent in ["email", "email_verified", "auth_time", "at_hash"] {
        assert!(claims.get(absent).is_none(), "{absent} in {claims}");
    }

    // The same code again: accepted, but the nonce was used up.
    let (status, body) = token(
        &server,
        &[("grant_type", "authorization_code"), ("code", &code)],
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, claims) = parts(body["id_token"].as_str().unwrap());
    assert!(claims.get("nonce").is_none());
    // No client_id at all: the ID token has no audience.
    assert!(claims.get("aud").is_none(), "{claims}");

    // A code that was never issued, with no code at all, is accepted too.
    let (status, _) = token(&server, &[("grant_type", "authorization_code")], None).await;
    assert_eq!(status, 200);

    // PKCE: skipped when the client sends no code_verifier.
    let challenge = challenge(VERIFIER);
    let (_, query) = authorize(
        &server,
        &[
            ("response_type", "code"),
            ("redirect_uri", REDIRECT),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    let pkce_code = query["code"].as_str().unwrap();
    let (status, _) = token(
        &server,
        &[("grant_type", "authorization_code"), ("code", pkce_code)],
        None,
    )
    .await;
    assert_eq!(status, 200, "the challenge was not enforced");
    // A verifier for a code issued without a challenge is refused.
    let (status, body) = token(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", VERIFIER),
        ],
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["detail"], "code_challenge required");

    // Refresh: any string is a refresh token.
    let (status, body) = token(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", "never-issued"),
            ("client_id", CLIENT),
        ],
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["id_token"].is_string() && body["refresh_token"].is_string());

    // Client credentials: the access token's aud is the request's `aud`.
    let (status, body) = token(
        &server,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "read"),
            ("aud", "orders-api"),
        ],
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("id_token").is_none());
    let (_, claims) = parts(body["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], "orders-api");
    assert_eq!(claims["scope"], "read");
    assert!(claims.get("sub").is_none());

    // Userinfo answers without any token.
    let info = get_json(&server.url("/userinfo")).await;
    assert_eq!(info, json!({"sub": "johndoe"}));
}
