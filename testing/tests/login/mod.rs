//! The login flows over HTTP: `/authorize`, `/token`, `/userinfo`, `/logout`
//! and the endpoints that steer them.

mod authorize;
mod binary;
mod device;
mod discovery;
mod id_token;
mod logout;
mod refresh;
mod token;
mod userinfo;
mod users;

use std::collections::HashMap;

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use portcullis_core::Algorithm;
use portcullis_core::clock::ManualClock;
use portcullis_testing::{MockOptions, MockProvider};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;
use url::form_urlencoded;

/// The redirect URI the test providers register.
pub(crate) const REDIRECT: &str = "http://127.0.0.1:9/callback";

/// Options for a quick provider (EC keys only) with [`REDIRECT`] registered.
pub(crate) fn options() -> MockOptions {
    MockOptions::default()
        .algorithms(vec![Algorithm::ES256])
        .redirect_uri(REDIRECT)
}

pub(crate) async fn provider() -> MockProvider {
    MockProvider::start_with(options()).await.unwrap()
}

/// A provider on a clock the test moves.
pub(crate) async fn provider_with_clock() -> (MockProvider, ManualClock) {
    let clock = ManualClock::new(1_700_000_000);
    let provider = MockProvider::start_with(options().clock(clock.clone()))
        .await
        .unwrap();
    (provider, clock)
}

/// A client that does not follow redirects.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A PKCE verifier and its S256 challenge, computed here independently.
pub(crate) struct Pkce {
    pub(crate) verifier: String,
    pub(crate) challenge: String,
}

pub(crate) fn pkce() -> Pkce {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    let verifier = URL_SAFE_NO_PAD.encode(bytes);
    let challenge = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()));
    Pkce {
        verifier,
        challenge,
    }
}

/// The left half of SHA-256 of the token, base64url: `at_hash` for ES256 and RS256.
pub(crate) fn at_hash_sha256(access_token: &str) -> String {
    let hash = digest::digest(&digest::SHA256, access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&hash.as_ref()[..16])
}

/// The parameters of an authorization request, valid unless changed.
pub(crate) struct AuthRequest {
    pub(crate) params: Vec<(String, String)>,
    pub(crate) pkce: Pkce,
}

impl AuthRequest {
    pub(crate) fn new(provider: &MockProvider) -> Self {
        let pkce = pkce();
        let params = [
            ("response_type", "code"),
            ("client_id", provider.client_id()),
            ("redirect_uri", REDIRECT),
            ("scope", "openid email profile"),
            ("state", "st-1"),
            ("nonce", "n-1"),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ]
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
        Self { params, pkce }
    }

    /// Replaces (or adds) a parameter.
    pub(crate) fn set(mut self, name: &str, value: &str) -> Self {
        self.params.retain(|(n, _)| n != name);
        self.params.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Adds a parameter, even one already there.
    pub(crate) fn add(mut self, name: &str, value: &str) -> Self {
        self.params.push((name.to_owned(), value.to_owned()));
        self
    }

    pub(crate) fn remove(mut self, name: &str) -> Self {
        self.params.retain(|(n, _)| n != name);
        self
    }

    pub(crate) fn url(&self, provider: &MockProvider) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in &self.params {
            query.append_pair(name, value);
        }
        format!("{}?{}", provider.authorize_url(), query.finish())
    }

    /// Sends it and returns the response (redirects not followed).
    pub(crate) async fn send(&self, provider: &MockProvider) -> reqwest::Response {
        client().get(self.url(provider)).send().await.unwrap()
    }

    /// Sends it, expects a redirect to [`REDIRECT`], and returns its query.
    pub(crate) async fn redirected(&self, provider: &MockProvider) -> HashMap<String, String> {
        let response = self.send(provider).await;
        assert_eq!(response.status(), 302, "authorize should redirect");
        let (base, params) = location(&response);
        assert_eq!(base, REDIRECT, "redirect target");
        params
    }

    /// Sends it, expects a code, and returns it with the verifier.
    pub(crate) async fn code(self, provider: &MockProvider) -> (String, String) {
        let params = self.redirected(provider).await;
        assert!(
            !params.contains_key("error"),
            "unexpected error: {params:?}"
        );
        let code = params.get("code").expect("a code").clone();
        (code, self.pkce.verifier)
    }
}

/// The `Location` of a redirect: the URI before `?` and its query parameters.
pub(crate) fn location(response: &reqwest::Response) -> (String, HashMap<String, String>) {
    let location = response
        .headers()
        .get("location")
        .expect("a Location header")
        .to_str()
        .unwrap();
    let (base, query) = location.split_once('?').unwrap_or((location, ""));
    let params = form_urlencoded::parse(query.as_bytes())
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect();
    (base.to_owned(), params)
}

/// How a token request authenticates the client.
pub(crate) enum Auth<'a> {
    /// `client_secret_basic` with this id and secret (form-urlencoded first).
    Basic(&'a str, &'a str),
    /// `client_secret_post` with this id and secret.
    Post(&'a str, &'a str),
    /// None at all.
    None,
}

impl Auth<'_> {
    /// The provider's own credentials with Basic.
    pub(crate) fn basic(provider: &MockProvider) -> Auth<'_> {
        Auth::Basic(provider.client_id(), provider.client_secret())
    }

    /// The provider's own credentials in the form.
    pub(crate) fn post(provider: &MockProvider) -> Auth<'_> {
        Auth::Post(provider.client_id(), provider.client_secret())
    }
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))`, RFC 6749 §2.3.1.
pub(crate) fn basic_header(id: &str, secret: &str) -> String {
    let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", encode(id), encode(secret)))
    )
}

/// An answer of the token endpoint.
#[derive(Debug)]
pub(crate) struct TokenAnswer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Value,
}

impl TokenAnswer {
    pub(crate) fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("<none>")
    }

    pub(crate) fn str(&self, name: &str) -> String {
        self.body[name]
            .as_str()
            .unwrap_or_else(|| panic!("no {name} in {}", self.body))
            .to_owned()
    }

    /// Asserts a 400 with this error code.
    pub(crate) fn assert_error(&self, error: &str) {
        assert_eq!(self.status, 400, "status of {}", self.body);
        assert_eq!(self.error(), error, "error of {}", self.body);
        assert!(
            self.body["error_description"].is_string(),
            "error_description in {}",
            self.body
        );
    }
}

/// Posts a form to the token endpoint.
pub(crate) async fn post_token(
    provider: &MockProvider,
    auth: Auth<'_>,
    pairs: &[(&str, &str)],
) -> TokenAnswer {
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        form.append_pair(name, value);
    }
    let mut request = client()
        .post(provider.token_url())
        .header("content-type", "application/x-www-form-urlencoded");
    match auth {
        Auth::Basic(id, secret) => {
            request = request.header("authorization", basic_header(id, secret))
        }
        Auth::Post(id, secret) => {
            form.append_pair("client_id", id);
            form.append_pair("client_secret", secret);
        }
        Auth::None => {}
    }
    let response = request.body(form.finish()).send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    assert_eq!(
        headers["cache-control"], "no-store",
        "token answers are not cached"
    );
    assert_eq!(
        headers["pragma"], "no-cache",
        "token answers are not cached"
    );
    let body = response.json().await.unwrap();
    TokenAnswer {
        status,
        headers,
        body,
    }
}

/// Redeems a code with Basic authentication.
pub(crate) async fn exchange(provider: &MockProvider, code: &str, verifier: &str) -> TokenAnswer {
    post_token(
        provider,
        Auth::basic(provider),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ],
    )
    .await
}

/// Uses a refresh token with Basic authentication.
pub(crate) async fn refresh(provider: &MockProvider, refresh_token: &str) -> TokenAnswer {
    post_token(
        provider,
        Auth::basic(provider),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

/// Logs in with `scope` and redeems the code: the token answer, asserted 200.
pub(crate) async fn login(provider: &MockProvider, scope: &str) -> TokenAnswer {
    let (code, verifier) = AuthRequest::new(provider)
        .set("scope", scope)
        .code(provider)
        .await;
    let answer = exchange(provider, &code, &verifier).await;
    assert_eq!(answer.status, 200, "code exchange: {}", answer.body);
    answer
}

/// The claims of a JWT, unverified.
pub(crate) fn claims(token: &str) -> Value {
    crate::parts(token).1
}
