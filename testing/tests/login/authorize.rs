//! `GET /authorize`: validation, redirects and queued errors.

use serde_json::{Value, json};

use super::{AuthRequest, client, location, provider};

#[tokio::test]
async fn success_redirects_with_code_state_and_iss() {
    let provider = provider().await;
    let params = AuthRequest::new(&provider).redirected(&provider).await;
    let code = &params["code"];
    assert_eq!(code.len(), 43, "32 random bytes in base64url: {code}");
    assert!(
        code.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'),
        "base64url: {code}"
    );
    assert_eq!(params["state"], "st-1");
    assert_eq!(params["iss"], provider.issuer());
    assert_eq!(params.len(), 3, "only code, state and iss: {params:?}");

    let other = AuthRequest::new(&provider).redirected(&provider).await;
    assert_ne!(other["code"], *code, "codes are random");
    assert_eq!(provider.request_count("/authorize"), 2);
}

#[tokio::test]
async fn redirect_parameters_are_encoded_and_appended_to_an_existing_query() {
    let provider = provider().await;
    let with_query = "http://127.0.0.1:9/cb?tenant=acme";
    provider.register_redirect_uri(with_query);
    let state = "a b&c=d/é?";
    let response = AuthRequest::new(&provider)
        .set("redirect_uri", with_query)
        .set("state", state)
        .send(&provider)
        .await;
    assert_eq!(response.status(), 302);
    let raw = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        raw.starts_with("http://127.0.0.1:9/cb?tenant=acme&code="),
        "appended with &: {raw}"
    );
    assert!(!raw.contains(' ') && !raw.contains('é'), "encoded: {raw}");
    let (base, params) = location(&response);
    assert_eq!(base, "http://127.0.0.1:9/cb");
    assert_eq!(params["tenant"], "acme");
    assert_eq!(params["state"], state, "state round-trips");
}

async fn assert_bad_request(response: reqwest::Response, error: &str) {
    assert_eq!(response.status(), 400, "no redirect");
    assert!(
        response.headers().get("location").is_none(),
        "must not redirect"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].is_string(), "{body}");
}

#[tokio::test]
async fn unknown_client_is_refused_without_redirect() {
    let provider = provider().await;
    let response = AuthRequest::new(&provider)
        .set("client_id", "someone-else")
        .send(&provider)
        .await;
    assert_bad_request(response, "invalid_client").await;
    let response = AuthRequest::new(&provider)
        .remove("client_id")
        .send(&provider)
        .await;
    assert_bad_request(response, "invalid_request").await;
}

#[tokio::test]
async fn unregistered_redirect_uri_is_refused_without_redirect() {
    let provider = provider().await;
    for uri in [
        "http://127.0.0.1:9/elsewhere",
        "http://127.0.0.1:9/callback/",
        "HTTP://127.0.0.1:9/callback",
        "http://127.0.0.1:9/callback?x=1",
    ] {
        let response = AuthRequest::new(&provider)
            .set("redirect_uri", uri)
            .send(&provider)
            .await;
        assert_bad_request(response, "invalid_request").await;
    }
    let response = AuthRequest::new(&provider)
        .remove("redirect_uri")
        .send(&provider)
        .await;
    assert_bad_request(response, "invalid_request").await;
    // Even a bad request does not redirect when the redirect URI is unknown.
    let response = AuthRequest::new(&provider)
        .set("redirect_uri", "http://127.0.0.1:9/elsewhere")
        .remove("code_challenge")
        .send(&provider)
        .await;
    assert_bad_request(response, "invalid_request").await;

    // Registered later, it works.
    provider.register_redirect_uri("http://127.0.0.1:9/elsewhere");
    let response = AuthRequest::new(&provider)
        .set("redirect_uri", "http://127.0.0.1:9/elsewhere")
        .send(&provider)
        .await;
    assert_eq!(response.status(), 302);
    let (base, params) = location(&response);
    assert_eq!(base, "http://127.0.0.1:9/elsewhere");
    assert!(params.contains_key("code"));
}

#[tokio::test]
async fn missing_or_plain_pkce_is_refused() {
    let provider = provider().await;
    let cases = [
        AuthRequest::new(&provider).remove("code_challenge"),
        AuthRequest::new(&provider).remove("code_challenge_method"),
        AuthRequest::new(&provider).set("code_challenge_method", "plain"),
        AuthRequest::new(&provider)
            .remove("code_challenge")
            .remove("code_challenge_method"),
        AuthRequest::new(&provider).set("code_challenge", "too-short"),
    ];
    for request in cases {
        let params = request.redirected(&provider).await;
        assert_eq!(params["error"], "invalid_request", "{params:?}");
        assert!(!params["error_description"].is_empty());
        assert_eq!(params["state"], "st-1");
        assert_eq!(params["iss"], provider.issuer());
        assert!(!params.contains_key("code"), "no code: {params:?}");
    }
}

#[tokio::test]
async fn invalid_requests_redirect_with_an_error() {
    let provider = provider().await;
    let cases = [
        (
            AuthRequest::new(&provider).set("response_type", "token"),
            "unsupported_response_type",
        ),
        (
            AuthRequest::new(&provider).remove("response_type"),
            "invalid_request",
        ),
        (
            AuthRequest::new(&provider).set("scope", "email profile"),
            "invalid_scope",
        ),
        (AuthRequest::new(&provider).remove("scope"), "invalid_scope"),
        (
            AuthRequest::new(&provider).set("scope", "openid \"quoted\""),
            "invalid_scope",
        ),
        (
            AuthRequest::new(&provider).add("nonce", "second"),
            "invalid_request",
        ),
        (
            AuthRequest::new(&provider).set("prompt", "none login"),
            "invalid_request",
        ),
        (
            AuthRequest::new(&provider).set("prompt", "sometimes"),
            "invalid_request",
        ),
        (
            AuthRequest::new(&provider).set("response_mode", "fragment"),
            "invalid_request",
        ),
        (
            AuthRequest::new(&provider).set("max_age", "soon"),
            "invalid_request",
        ),
        (
            AuthRequest::new(&provider).set("request", "eyJhbGciOiJub25lIn0.e30."),
            "request_not_supported",
        ),
    ];
    for (request, error) in cases {
        let params = request.redirected(&provider).await;
        assert_eq!(params["error"], error, "{params:?}");
        assert_eq!(params["state"], "st-1", "{params:?}");
        assert_eq!(params["iss"], provider.issuer());
        assert!(!params.contains_key("code"), "{params:?}");
    }

    // Without a state there is none to echo, and the request is refused.
    let params = AuthRequest::new(&provider)
        .remove("state")
        .redirected(&provider)
        .await;
    assert_eq!(params["error"], "invalid_request");
    assert!(!params.contains_key("state"), "{params:?}");

    // The optional parameters are accepted.
    let params = AuthRequest::new(&provider)
        .set("prompt", "login consent")
        .set("max_age", "0")
        .set("response_mode", "query")
        .set("scope", "openid  offline_access custom:read")
        .remove("nonce")
        .redirected(&provider)
        .await;
    assert!(params.contains_key("code"), "{params:?}");
}

#[tokio::test]
async fn queued_errors_answer_the_next_valid_requests() {
    let provider = provider().await;
    provider.queue_error("access_denied", "the user said no");
    let response = client()
        .post(provider.url("/queue_error"))
        .json(&json!({"error": "login_required", "error_description": "no session"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);

    // An invalid request is refused for what it is, and leaves the queue alone.
    let params = AuthRequest::new(&provider)
        .remove("code_challenge")
        .redirected(&provider)
        .await;
    assert_eq!(params["error"], "invalid_request");

    let params = AuthRequest::new(&provider).redirected(&provider).await;
    assert_eq!(params["error"], "access_denied");
    assert_eq!(params["error_description"], "the user said no");
    assert_eq!(params["state"], "st-1");
    assert_eq!(params["iss"], provider.issuer());
    assert!(!params.contains_key("code"));

    let params = AuthRequest::new(&provider)
        .set("prompt", "none")
        .redirected(&provider)
        .await;
    assert_eq!(params["error"], "login_required");
    assert_eq!(params["error_description"], "no session");

    let params = AuthRequest::new(&provider).redirected(&provider).await;
    assert!(
        params.contains_key("code"),
        "the queue is empty: {params:?}"
    );

    let response = client()
        .post(provider.url("/queue_error"))
        .json(&json!({"description": "no error field"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}
