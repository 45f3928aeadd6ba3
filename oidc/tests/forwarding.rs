//! Calling other services with forwarded, refreshed and client credentials
//! tokens: against the mock provider and small downstream services on
//! 127.0.0.1 that verify tokens with portcullis-core.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::digest;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_core::clock::{Clock, ManualClock};
use portcullis_core::config::{IssuerConfig, VerifierConfig};
use portcullis_core::{
    Algorithm, Authenticator, CredentialsConfig, ErrorKind, RawToken, Secret, TokenVerifier,
};
use portcullis_oidc::{
    ClientCredentials, ForwardedToken, ForwardingClient, RefreshingToken, TokenEndpoint,
    TokenSource,
};
use portcullis_testing::{MockOptions, MockProvider};
use serde_json::Value;
use url::form_urlencoded;

/// The redirect URI the test provider registers for the logins.
const REDIRECT: &str = "http://127.0.0.1:9/callback";
/// The access token lifetime of the test provider.
const TTL: u64 = 300;

async fn provider() -> MockProvider {
    MockProvider::start_with(
        MockOptions::default()
            .algorithms(vec![Algorithm::ES256])
            .redirect_uri(REDIRECT)
            .clock(ManualClock::new(1_700_000_000))
            .access_token_ttl(Duration::from_secs(TTL)),
    )
    .await
    .unwrap()
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// What a login through the authorization code flow gave.
struct Login {
    access_token: String,
    id_token: String,
    refresh_token: String,
}

/// Logs `email` in at `provider` with a refresh token (PKCE, code exchange).
async fn login(provider: &MockProvider, email: &str) -> Login {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    let verifier = URL_SAFE_NO_PAD.encode(bytes);
    let challenge = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()));
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", provider.client_id()),
            ("redirect_uri", REDIRECT),
            ("scope", "openid email offline_access"),
            ("state", "s"),
            ("nonce", "n"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("login_hint", email),
        ])
        .finish();
    let http = no_redirects();
    let resp = http
        .get(format!("{}?{query}", provider.authorize_url()))
        .send()
        .await
        .unwrap();
    let location = resp.headers()[header::LOCATION].to_str().unwrap();
    let location = url::Url::parse(location).unwrap();
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no code in {location}"));
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ])
        .finish();
    let answer: Value = http
        .post(provider.token_url())
        .basic_auth(provider.client_id(), Some(provider.client_secret()))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = |name: &str| answer[name].as_str().unwrap().to_owned();
    Login {
        access_token: text("access_token"),
        id_token: text("id_token"),
        refresh_token: text("refresh_token"),
    }
}

/// A verifier for the provider's tokens, on its clock.
fn verifier(provider: &MockProvider) -> TokenVerifier {
    let issuer = IssuerConfig::new(provider.issuer())
        .with_algorithms([Algorithm::ES256])
        .with_audience(provider.audience())
        .with_client_id(provider.client_id());
    TokenVerifier::builder(VerifierConfig::new([("mock".to_owned(), issuer)]))
        .clock(Arc::new(provider.clock()))
        .build()
        .unwrap()
}

async fn endpoint(provider: &MockProvider) -> TokenEndpoint {
    TokenEndpoint::discover(
        &provider.discovery_url(),
        provider.client_id(),
        Some(Secret::new(provider.client_secret())),
    )
    .await
    .unwrap()
}

/// A request a downstream service received: its answer and the token it carried.
#[derive(Debug, Clone)]
struct Seen {
    status: u16,
    token: Option<String>,
}

#[derive(Clone)]
struct DownstreamState {
    auth: Authenticator,
    seen: Arc<Mutex<Vec<Seen>>>,
    revoked: Arc<Mutex<HashSet<String>>>,
    refuse_all: Arc<AtomicBool>,
    redirect_to: Option<String>,
}

/// A protected service: answers 200 with the caller's subject to a valid
/// token, 401 otherwise (and to tokens the test revoked, or to every token
/// once told to refuse them all), and records every
/// request. `/redirect` answers 302 to another place.
struct Downstream {
    origin: String,
    state: DownstreamState,
}

impl Downstream {
    async fn start(provider: &MockProvider, redirect_to: Option<String>) -> Downstream {
        let state = DownstreamState {
            auth: Authenticator::new(
                verifier(provider),
                CredentialsConfig::default().refuse_missing(),
            ),
            seen: Arc::default(),
            revoked: Arc::default(),
            refuse_all: Arc::default(),
            redirect_to,
        };
        let app = Router::new().fallback(downstream).with_state(state.clone());
        let origin = serve(app).await;
        Downstream { origin, state }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    fn revoke(&self, token: &str) {
        self.state.revoked.lock().unwrap().insert(token.to_owned());
    }

    fn refuse_all(&self) {
        self.state.refuse_all.store(true, Ordering::SeqCst);
    }
}

async fn downstream(State(state): State<DownstreamState>, req: Request) -> Response {
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let token = header
        .as_deref()
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::to_owned);
    let (status, body) = if req.uri().path() == "/redirect"
        && let Some(to) = &state.redirect_to
    {
        (StatusCode::FOUND, to.clone())
    } else if state.refuse_all.load(Ordering::SeqCst)
        || token
            .as_ref()
            .is_some_and(|t| state.revoked.lock().unwrap().contains(t))
    {
        (StatusCode::UNAUTHORIZED, "revoked".to_owned())
    } else {
        let headers: Vec<(&str, &str)> = header
            .as_deref()
            .map(|h| vec![("authorization", h)])
            .unwrap_or_default();
        match state.auth.authenticate(headers.as_slice()).await {
            Ok(Some(caller)) => (StatusCode::OK, caller.principal.user_id().to_owned()),
            Ok(None) => (StatusCode::UNAUTHORIZED, "no token".to_owned()),
            Err(e) => (
                StatusCode::from_u16(e.status()).unwrap(),
                e.message().to_owned(),
            ),
        }
    };
    state.seen.lock().unwrap().push(Seen {
        status: status.as_u16(),
        token,
    });
    if status == StatusCode::FOUND {
        return (status, [(header::LOCATION, body)]).into_response();
    }
    (status, body).into_response()
}

/// Serves `app` on a free loopback port; its origin.
async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// A server that counts the requests it receives and answers `status`.
async fn counter(status: StatusCode) -> (String, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&count);
    let app = Router::new().fallback(move || {
        let c = Arc::clone(&c);
        async move {
            c.fetch_add(1, Ordering::SeqCst);
            status
        }
    });
    (serve(app).await, count)
}

fn client_for(origin: &str) -> ForwardingClient {
    ForwardingClient::builder()
        .allow_origin(origin)
        .build()
        .unwrap()
}

/// A refreshing source for a fresh login of alice, on the provider's clock.
async fn refreshing(provider: &MockProvider) -> (RefreshingToken, Login) {
    let tokens = login(provider, "alice@example.com").await;
    let expires_at = provider.clock().now_secs() + TTL;
    let source = RefreshingToken::new(
        endpoint(provider).await,
        RawToken::new(tokens.refresh_token.as_str()),
    )
    .with_access_token(
        RawToken::new(tokens.access_token.as_str()),
        Some(expires_at),
    )
    .with_clock(Arc::new(provider.clock()));
    (source, tokens)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_tasks_share_one_refresh() {
    let provider = provider().await;
    let service = Downstream::start(&provider, None).await;
    let client = client_for(&service.origin);
    let (source, tokens) = refreshing(&provider).await;
    let source = Arc::new(source);

    // Within the leeway of the expiry: due for a refresh.
    provider.clock().advance_secs(TTL - 10);
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (client, source, url) = (client.clone(), Arc::clone(&source), service.url("/x"));
            tokio::spawn(async move { client.get(&source, &url).await.unwrap().status() })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), 200);
    }
    assert_eq!(provider.refresh_count(), 1, "exactly one refresh");
    let seen = service.seen();
    assert_eq!(seen.len(), 50);
    let sent: HashSet<_> = seen.iter().map(|s| s.token.clone().unwrap()).collect();
    assert_eq!(sent.len(), 1, "every task sent the refreshed token");
    assert!(!sent.contains(&tokens.access_token));
    assert!(seen.iter().all(|s| s.status == 200));
}

#[tokio::test]
async fn rotated_refresh_tokens_are_kept() {
    let provider = provider().await;
    let service = Downstream::start(&provider, None).await;
    let client = client_for(&service.origin);
    let (source, tokens) = refreshing(&provider).await;

    let mut sent = Vec::new();
    for _ in 0..3 {
        assert_eq!(
            client
                .get(&source, &service.url("/"))
                .await
                .unwrap()
                .status(),
            200
        );
        sent.push(service.seen().last().unwrap().token.clone().unwrap());
        // Past the expiry: the next call refreshes, with the latest refresh token.
        provider.clock().advance_secs(TTL + 1);
    }
    // The mock answers a reused refresh token with invalid_grant (and revokes
    // the login), so a second successful refresh proves the rotation was kept.
    assert_eq!(provider.refresh_count(), 2);
    assert_eq!(sent[0], tokens.access_token);
    assert_eq!(sent.iter().collect::<HashSet<_>>().len(), 3);
    assert!(service.seen().iter().all(|s| s.status == 200));

    // The first refresh token was rotated away: using it again is refused.
    let stale = RefreshingToken::new(
        endpoint(&provider).await,
        RawToken::new(tokens.refresh_token.as_str()),
    );
    let e = stale.token().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidToken, "{e}");
}

#[tokio::test]
async fn a_refused_refresh_fails_fast_and_never_loops() {
    let provider = provider().await;
    let service = Downstream::start(&provider, None).await;
    let client = client_for(&service.origin);
    let (source, tokens) = refreshing(&provider).await;
    provider.queue_token_error("invalid_grant", "the refresh token expired");
    provider.clock().advance_secs(TTL + 1);
    let token_calls = provider.request_count("/token");

    let e = client.get(&source, &service.url("/")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidToken);
    assert_eq!(e.status(), 401);
    let text = e.to_string();
    assert!(
        text.contains("invalid_grant") && text.contains("log in again"),
        "{text}"
    );
    assert!(!text.contains(&tokens.refresh_token) && !text.contains(&tokens.access_token));
    assert_eq!(provider.request_count("/token"), token_calls + 1);

    // Later calls fail at once with the same error, without asking the provider.
    for _ in 0..5 {
        let again = source.token().await.unwrap_err();
        assert_eq!(again.to_string(), text);
        let again = source
            .refresh_after_rejection(&RawToken::new("x"))
            .await
            .unwrap_err();
        assert_eq!(again.kind(), ErrorKind::InvalidToken);
    }
    assert!(client.get(&source, &service.url("/")).await.is_err());
    assert_eq!(provider.request_count("/token"), token_calls + 1, "no loop");
    assert_eq!(provider.refresh_count(), 0);
    assert!(
        service.seen().is_empty(),
        "nothing was sent without a token"
    );
}

#[tokio::test]
async fn a_401_is_retried_once_after_a_refresh() {
    let provider = provider().await;
    let service = Downstream::start(&provider, None).await;
    let client = client_for(&service.origin);
    let (source, tokens) = refreshing(&provider).await;

    assert_eq!(
        client
            .get(&source, &service.url("/"))
            .await
            .unwrap()
            .status(),
        200
    );
    // The downstream stops accepting the (unexpired) token: 401, refresh, 200.
    service.revoke(&tokens.access_token);
    let answer = client.get(&source, &service.url("/")).await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer.text().await.unwrap(),
        subject_of(&tokens.access_token)
    );
    assert_eq!(provider.refresh_count(), 1);
    let statuses: Vec<u16> = service.seen().iter().map(|s| s.status).collect();
    assert_eq!(statuses, [200, 401, 200]);

    // When the renewed token is refused too, that answer is final.
    service.refuse_all();
    let answer = client.get(&source, &service.url("/")).await.unwrap();
    assert_eq!(answer.status(), 401);
    let statuses: Vec<u16> = service.seen().iter().map(|s| s.status).collect();
    assert_eq!(statuses, [200, 401, 200, 401, 401], "one retry, no loop");
    assert_eq!(provider.refresh_count(), 2);

    // A forwarded token has nothing better to offer: the 401 comes back as is.
    let forwarded = ForwardedToken::new(RawToken::new(tokens.access_token.as_str()));
    let answer = client.get(&forwarded, &service.url("/")).await.unwrap();
    assert_eq!(answer.status(), 401);
    assert_eq!(service.seen().len(), 6);
}

/// The `sub` claim of a JWT, read without verification (test only).
fn subject_of(token: &str) -> String {
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["sub"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_provider_that_is_down_gives_unavailable_after_bounded_retries() {
    let provider = provider().await;
    let service = Downstream::start(&provider, None).await;
    let client = client_for(&service.origin);
    // The provider stops answering; the token is past its expiry.
    let (source, _) = refreshing_with_retries(&provider).await;
    provider.shutdown();
    tokio::time::sleep(Duration::from_millis(100)).await;
    provider.clock().advance_secs(TTL + 1);
    let started = Instant::now();
    let e = client.get(&source, &service.url("/")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert_eq!(e.status(), 503);
    assert!(e.to_string().contains("3 attempts"), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(service.seen().is_empty());

    // A provider answering 503: exactly the configured number of attempts,
    // shared by every task that asked meanwhile; a later call tries again.
    let (url, count) = counter(StatusCode::SERVICE_UNAVAILABLE).await;
    let failing = TokenEndpoint::new(&format!("{url}/token"), "c", Some(Secret::new("s")))
        .unwrap()
        .with_retries(3, Duration::from_millis(20));
    let source = Arc::new(RefreshingToken::new(failing, RawToken::new("r")));
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let source = Arc::clone(&source);
            tokio::spawn(async move { source.token().await.unwrap_err().kind() })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), ErrorKind::Unavailable);
    }
    assert_eq!(count.load(Ordering::SeqCst), 3);
    assert!(source.token().await.is_err());
    assert_eq!(
        count.load(Ordering::SeqCst),
        6,
        "unavailability is not final"
    );
}

async fn refreshing_with_retries(provider: &MockProvider) -> (RefreshingToken, Login) {
    let tokens = login(provider, "alice@example.com").await;
    let expires_at = provider.clock().now_secs() + TTL;
    let endpoint = endpoint(provider)
        .await
        .with_retries(3, Duration::from_millis(50));
    let source = RefreshingToken::new(endpoint, RawToken::new(tokens.refresh_token.as_str()))
        .with_access_token(
            RawToken::new(tokens.access_token.as_str()),
            Some(expires_at),
        )
        .with_clock(Arc::new(provider.clock()));
    (source, tokens)
}

#[tokio::test]
async fn tokens_never_go_to_another_origin() {
    let provider = provider().await;
    let (elsewhere, count) = counter(StatusCode::OK).await;
    let service = Downstream::start(&provider, Some(format!("{elsewhere}/stolen"))).await;
    let client = client_for(&service.origin);
    let token = provider.token().subject("alice").sign();
    let source = ForwardedToken::new(RawToken::new(token.as_str()));

    let e = client
        .get(&source, &format!("{elsewhere}/x"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Forbidden);
    assert!(!e.to_string().contains(&token));
    // The same server under another name, port or scheme is another origin.
    let port = service.origin.rsplit(':').next().unwrap();
    for other in [
        format!("http://localhost:{port}/x"),
        format!("https://127.0.0.1:{port}/x"),
        format!("http://127.0.0.1:{}/x", port.parse::<u16>().unwrap() ^ 1),
    ] {
        let e = client.get(&source, &other).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Forbidden, "{other}");
    }
    // A request built by a client that follows redirects is still sent without following them.
    let answer = client
        .send(
            &source,
            reqwest::Client::new().get(service.url("/redirect")),
        )
        .await
        .unwrap();
    assert_eq!(answer.status(), 302);
    assert_eq!(
        count.load(Ordering::SeqCst),
        0,
        "nothing reached the other origin"
    );
    assert_eq!(service.seen().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn client_credentials_are_cached_until_near_expiry() {
    let provider = provider().await;
    let service = Downstream::start(&provider, None).await;
    let client = client_for(&service.origin);
    let source = Arc::new(
        ClientCredentials::new(endpoint(&provider).await).with_clock(Arc::new(provider.clock())),
    );

    for _ in 0..10 {
        assert_eq!(
            client
                .get(&source, &service.url("/"))
                .await
                .unwrap()
                .status(),
            200
        );
    }
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (client, source, url) = (client.clone(), Arc::clone(&source), service.url("/"));
            tokio::spawn(async move { client.get(&source, &url).await.unwrap().status() })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), 200);
    }
    assert_eq!(
        provider.request_count("/token"),
        1,
        "one token for 30 requests"
    );
    let first = service.seen()[0].token.clone();
    assert!(
        service
            .seen()
            .iter()
            .all(|s| s.token == first && s.status == 200)
    );
    assert_eq!(subject_of(first.as_deref().unwrap()), provider.client_id());

    provider.clock().advance_secs(TTL - 10);
    assert_eq!(
        client
            .get(&source, &service.url("/"))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(provider.request_count("/token"), 2, "renewed near expiry");
    assert_ne!(service.seen().last().unwrap().token, first);
}

#[tokio::test]
async fn the_proxy_forwarded_scheme_keeps_working_after_the_access_token_expires() {
    let provider = provider().await;
    let service = Downstream::start(&provider, None).await;
    let client = client_for(&service.origin);
    let tokens = login(&provider, "bob@example.com").await;

    // A service behind an auth proxy: the proxy forwards the three tokens.
    let auth = Authenticator::new(
        verifier(&provider),
        CredentialsConfig::default()
            .with_id_token_header("x-id-token")
            .with_refresh_token_header("x-refresh-token"),
    );
    let bearer = format!("Bearer {}", tokens.access_token);
    let headers = [
        ("authorization", bearer.as_str()),
        ("x-id-token", tokens.id_token.as_str()),
        ("x-refresh-token", tokens.refresh_token.as_str()),
    ];
    let caller = auth.authenticate(&headers[..]).await.unwrap().unwrap();
    assert!(caller.id_token.is_some());
    let endpoint = endpoint(&provider).await;
    let once = ForwardedToken::from_caller(&caller).unwrap();
    let refreshing = RefreshingToken::from_caller(&endpoint, &caller)
        .unwrap()
        .with_clock(Arc::new(provider.clock()));
    assert!(!format!("{once:?}{refreshing:?}{caller:?}").contains(&tokens.refresh_token));

    assert_eq!(
        client.get(&once, &service.url("/")).await.unwrap().status(),
        200
    );
    assert_eq!(
        client
            .get(&refreshing, &service.url("/"))
            .await
            .unwrap()
            .status(),
        200
    );
    let seen = service.seen();
    assert!(
        seen.iter()
            .all(|s| s.token.as_deref() == Some(tokens.access_token.as_str()))
    );

    // Long after the access token expired, the forwarded token is refused
    // and the refreshing source keeps going.
    for _ in 0..3 {
        provider.clock().advance_secs(TTL + 60);
        assert_eq!(
            client.get(&once, &service.url("/")).await.unwrap().status(),
            401
        );
        assert_eq!(
            client
                .get(&refreshing, &service.url("/"))
                .await
                .unwrap()
                .status(),
            200
        );
    }
    assert_eq!(provider.refresh_count(), 3);
    let statuses: Vec<u16> = service.seen().iter().map(|s| s.status).collect();
    assert_eq!(statuses, [200, 200, 401, 200, 401, 200, 401, 200]);

    // Without a forwarded refresh token there is nothing to refresh with.
    let bearer = format!(
        "Bearer {}",
        login(&provider, "bob@example.com").await.access_token
    );
    let headers = [("authorization", bearer.as_str())];
    let caller = auth.authenticate(&headers[..]).await.unwrap().unwrap();
    assert!(RefreshingToken::from_caller(&endpoint, &caller).is_none());
}

#[tokio::test]
async fn discovery_checks_the_issuer_and_the_endpoint() {
    let provider = provider().await;
    let found = endpoint(&provider).await;
    assert_eq!(found.url(), provider.token_url());
    assert_eq!(found.client_id(), provider.client_id());
    assert!(!format!("{found:?}").contains(provider.client_secret()));

    // The same document under another name names another issuer.
    let elsewhere = provider.discovery_url().replace("127.0.0.1", "localhost");
    let e = TokenEndpoint::discover(&elsewhere, "c", None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    let (down, _) = counter(StatusCode::SERVICE_UNAVAILABLE).await;
    let e = TokenEndpoint::discover(
        &format!("{down}/.well-known/openid-configuration"),
        "c",
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    let e = TokenEndpoint::discover("ftp://id.example.com/", "c", None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");

    // Plain HTTP off loopback: refused before anything is sent, unless told.
    let e = TokenEndpoint::discover(
        "http://id.example.com/.well-known/openid-configuration",
        "c",
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    // A document on loopback naming a plain-HTTP token endpoint elsewhere.
    let app = Router::new().fallback(|| async {
        let doc = serde_json::json!({
            "issuer": "http://ignored.example",
            "token_endpoint": "http://id.example.com/token",
        });
        ([("content-type", "application/json")], doc.to_string())
    });
    let origin = serve(app).await;
    let doc = format!("{origin}/metadata");
    let e = TokenEndpoint::discover(&doc, "c", None).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.message().contains("token_endpoint"), "{e}");
    let allowed = TokenEndpoint::discover_with(&doc, "c", None, true)
        .await
        .unwrap();
    assert_eq!(allowed.url(), "http://id.example.com/token");
}

#[tokio::test]
async fn a_refresh_outlives_the_caller_that_gave_up() {
    // A slow token endpoint that rotates refresh tokens and refuses reuse.
    let used = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = Arc::clone(&used);
    let app = Router::new().fallback(move |body: String| {
        let used = Arc::clone(&seen);
        async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let rt = form_urlencoded::parse(body.as_bytes())
                .find(|(k, _)| k == "refresh_token")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            let mut used = used.lock().unwrap();
            let replay = used.contains(&rt);
            used.push(rt);
            let n = used.len();
            if replay {
                return (StatusCode::BAD_REQUEST, r#"{"error":"invalid_grant"}"#.to_owned());
            }
            (
                StatusCode::OK,
                format!(
                    r#"{{"access_token":"at-{n}","token_type":"Bearer","expires_in":300,"refresh_token":"rt-{n}"}}"#
                ),
            )
        }
    });
    let origin = serve(app).await;
    let endpoint = TokenEndpoint::new(&format!("{origin}/token"), "c", None).unwrap();
    let source = RefreshingToken::new(endpoint, RawToken::new("rt-0"));

    // The caller gives up while the provider is rotating its refresh token.
    assert!(
        tokio::time::timeout(Duration::from_millis(50), source.token())
            .await
            .is_err()
    );
    // The refresh ran to its end: its token serves, with no second call.
    assert_eq!(source.token().await.unwrap().expose(), "at-1");
    assert_eq!(*used.lock().unwrap(), ["rt-0"]);
    // And the rotated refresh token is the one used next.
    let renewed = source
        .refresh_after_rejection(&RawToken::new("at-1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(renewed.expose(), "at-2");
    assert_eq!(*used.lock().unwrap(), ["rt-0", "rt-1"]);
}

#[tokio::test]
async fn the_token_endpoint_follows_no_redirect_and_reads_bounded_answers() {
    use portcullis_core::http_client::MAX_TOKEN_ANSWER_BYTES;
    let provider = provider().await;
    // A discovery document served through a redirect is not followed.
    let to = provider.discovery_url();
    let app = Router::new().fallback(move || {
        let to = to.clone();
        async move { (StatusCode::FOUND, [(header::LOCATION, to)]) }
    });
    let moved = serve(app).await;
    let e = TokenEndpoint::discover(
        &format!("{moved}/.well-known/openid-configuration"),
        "c",
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.message().contains("HTTP 302"), "{e}");

    // A token answer past its cap is refused (and, like any unreadable
    // answer, tried again as configured); one at the cap is read.
    let token_answer = |len: usize| {
        let head = r#"{"access_token":"at","token_type":"Bearer","padding":""#;
        format!("{head}{}\"}}", "x".repeat(len - head.len() - 2))
    };
    let big = token_answer(MAX_TOKEN_ANSWER_BYTES + 1);
    let fits = token_answer(MAX_TOKEN_ANSWER_BYTES);
    let (big, fits) = (Arc::new(big), Arc::new(fits));
    let app = Router::new()
        .route(
            "/big",
            axum::routing::post(move || {
                let big = Arc::clone(&big);
                async move { (*big).clone() }
            }),
        )
        .route(
            "/fits",
            axum::routing::post(move || {
                let fits = Arc::clone(&fits);
                async move { (*fits).clone() }
            }),
        );
    let origin = serve(app).await;
    let endpoint = |path: &str| {
        TokenEndpoint::new(&format!("{origin}{path}"), "c", Some(Secret::new("s")))
            .unwrap()
            .with_retries(2, Duration::from_millis(10))
    };
    let e = ClientCredentials::new(endpoint("/big"))
        .token()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(
        e.to_string()
            .contains(&format!("larger than {MAX_TOKEN_ANSWER_BYTES} bytes")),
        "{e}"
    );
    let token = ClientCredentials::new(endpoint("/fits"))
        .token()
        .await
        .unwrap();
    assert_eq!(token.expose(), "at");
}
