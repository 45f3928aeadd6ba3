//! Attacks on the login flow: forged, replayed or misdirected callbacks, ID
//! tokens that must be refused, open redirects through `next`, tampered
//! cookies, and tokens leaking into URLs. Each test fails if the defence it
//! targets is removed.

use portcullis_axum::portcullis_oidc::safe_return_path;
use portcullis_core::TokenKind;
use portcullis_core::clock::Clock as _;
use portcullis_testing::{MockOptions, MockProvider, TestClient, TestResponse};
use serde_json::{Map, Value, json};

use crate::login_support::{LoginApp, login_app, login_app_with, serve};

const SESSION: &str = "portcullis-session";
const LOGIN: &str = "portcullis-login";
const ALICE: &str = "alice@example.com";

/// The value of query parameter `name` in `url`.
fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.into_owned())
}

/// `url` with query parameter `name` set to `value`, or removed for `None`;
/// the other parameters keep their order.
fn with_param(url: &str, name: &str, value: Option<&str>) -> String {
    let mut parsed = url::Url::parse(url).unwrap();
    let kept: Vec<(String, String)> = parsed
        .query_pairs()
        .filter(|(n, _)| n != name)
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect();
    {
        let mut query = parsed.query_pairs_mut();
        query.clear();
        for (n, v) in &kept {
            query.append_pair(n, v);
        }
        if let Some(v) = value {
            query.append_pair(name, v);
        }
    }
    parsed.to_string()
}

/// Starts a login: the authorization URL the application sends the browser to.
async fn start_login(client: &TestClient) -> String {
    let login = client.get("/login").expect(303).await;
    login
        .location()
        .expect("a redirect to the provider")
        .to_owned()
}

/// Starts a login and lets the provider log `email` in: the callback URL.
async fn callback_url(client: &TestClient, email: &str) -> String {
    let authorize = start_login(client).await;
    client.follow_provider(&authorize, email).await
}

/// Whether the response sets a (non-empty) session cookie.
fn sets_session(resp: &TestResponse) -> bool {
    resp.headers_all("set-cookie")
        .iter()
        .any(|c| c.starts_with(&format!("{SESSION}=")) && !c.contains("Max-Age=0"))
}

/// Whether the response clears the session cookie.
fn clears_session(resp: &TestResponse) -> bool {
    resp.headers_all("set-cookie")
        .iter()
        .any(|c| c.starts_with(&format!("{SESSION}=;")) && c.contains("Max-Age=0"))
}

/// Asserts a refused login: `status`, error `login_failed`, a description
/// containing `part`, no new session; answers the description.
#[track_caller]
fn assert_refused(resp: &TestResponse, status: u16, part: &str) -> String {
    assert_eq!(resp.status, status, "{}", resp.text());
    let body = resp.json();
    assert_eq!(body["error"], "login_failed", "{body}");
    let description = body["error_description"]
        .as_str()
        .unwrap_or_else(|| panic!("no error_description in {body}"))
        .to_owned();
    assert!(
        description.contains(part),
        "the description should mention {part:?}: {description}"
    );
    assert!(!sets_session(resp), "a refused login sets no session");
    description
}

/// Snapshots the status and body of an error answer under `name`.
fn snapshot(name: &str, resp: &TestResponse) {
    insta::assert_json_snapshot!(name, json!({"status": resp.status, "body": resp.json()}));
}

/// A guest: `/` greets a guest and `/read` is 401.
async fn assert_guest(client: &TestClient) {
    assert_eq!(client.get("/").expect(200).await.text(), "guest");
    client.get("/read").expect(401).await;
}

fn claims(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

// --- state ---------------------------------------------------------------

#[tokio::test]
async fn a_callback_without_state_is_refused() {
    let app = login_app().await;
    let client = app.client(None).await;
    let callback = callback_url(&client, ALICE).await;
    let resp = client
        .get_url(&with_param(&callback, "state", None))
        .send()
        .await;
    assert_refused(&resp, 400, "the `state` does not match this login");
    assert_eq!(client.cookie(SESSION), None);
}

#[tokio::test]
async fn a_callback_with_an_altered_state_is_refused() {
    let app = login_app().await;
    let client = app.client(None).await;
    let callback = callback_url(&client, ALICE).await;
    let state = query_param(&callback, "state").unwrap();
    let altered: String = state
        .chars()
        .rev()
        .map(|c| if c == 'A' { 'B' } else { 'A' })
        .collect();
    assert_ne!(altered, state);
    let resp = client
        .get_url(&with_param(&callback, "state", Some(&altered)))
        .send()
        .await;
    assert_refused(&resp, 400, "the `state` does not match this login");
    snapshot("state_mismatch", &resp);
    assert_eq!(client.cookie(SESSION), None);
}

/// Login CSRF: the attacker's own callback, planted in the victim's browser
/// while the victim has a login of its own in progress.
#[tokio::test]
async fn a_callback_of_another_browser_is_refused() {
    let app = login_app().await;
    let attacker = app.client(None).await;
    let planted = callback_url(&attacker, "mallory@example.com").await;
    let victim = app.client(None).await;
    start_login(&victim).await;
    let resp = victim.get_url(&planted).send().await;
    assert_refused(&resp, 400, "the `state` does not match this login");
    assert_eq!(victim.cookie(SESSION), None);
    // Without any login in progress, the planted callback finds nothing either.
    let fresh = app.client(None).await;
    let resp = fresh.get_url(&planted).send().await;
    assert_refused(&resp, 400, "no login in progress");
}

#[tokio::test]
async fn a_replayed_callback_is_refused_without_a_new_session() {
    let app = login_app().await;
    let client = app.client(None).await;
    let callback = callback_url(&client, ALICE).await;
    let transaction = client.cookie(LOGIN).expect("a login transaction cookie");
    client.get_url(&callback).expect(303).await;
    let session = client.cookie(SESSION).expect("a session");
    assert_eq!(
        client.cookie(LOGIN),
        None,
        "the transaction cookie is cleared"
    );

    // The same callback again, with the transaction cookie restored.
    client.set_cookie(LOGIN, Some(&transaction));
    let token_calls = app.provider.request_count("/token");
    let resp = client.get_url(&callback).send().await;
    assert_refused(&resp, 400, "this login was already completed");
    snapshot("replayed_transaction", &resp);
    assert_eq!(
        app.provider.request_count("/token"),
        token_calls,
        "refused before the code is redeemed"
    );
    assert_eq!(
        client.cookie(SESSION),
        Some(session),
        "the session is unchanged"
    );
    assert_eq!(
        client.cookie(LOGIN),
        None,
        "the transaction cookie is cleared again"
    );
}

// --- authorization code ----------------------------------------------------

#[tokio::test]
async fn a_replayed_code_with_a_fresh_state_is_refused_by_the_provider() {
    let app = login_app().await;
    let client = app.client(None).await;
    let old = callback_url(&client, ALICE).await;
    client.get_url(&old).expect(303).await;
    let first_session = client.cookie(SESSION).unwrap();

    // A new login: a new transaction and state; the old code goes with it.
    let authorize = start_login(&client).await;
    let state = query_param(&authorize, "state").unwrap();
    assert_ne!(Some(&state), query_param(&old, "state").as_ref());
    let token_calls = app.provider.request_count("/token");
    let resp = client
        .get_url(&with_param(&old, "state", Some(&state)))
        .send()
        .await;
    assert_refused(&resp, 400, "the provider refused the code: `invalid_grant`");
    snapshot("refused_code", &resp);
    assert_eq!(
        app.provider.request_count("/token"),
        token_calls + 1,
        "the provider was asked"
    );
    // A login that does not complete changes nothing: `/login` leaves the
    // current session alone (another site may send the browser there).
    assert_eq!(
        client.cookie(SESSION).as_deref(),
        Some(first_session.as_str()),
        "the first session is kept"
    );
    client.get("/read").expect(200).await;
}

// --- ID token --------------------------------------------------------------

/// A login whose code exchange answers an ID token changed by `change`
/// (given the provider and the login's nonce): the callback's answer.
async fn login_with_id_token(
    app: &LoginApp,
    change: impl FnOnce(&MockProvider, &str),
) -> TestResponse {
    let client = app.client(None).await;
    let authorize = start_login(&client).await;
    let nonce = query_param(&authorize, "nonce").expect("a nonce");
    change(&app.provider, &nonce);
    let callback = client.follow_provider(&authorize, ALICE).await;
    let resp = client.get_url(&callback).send().await;
    assert_eq!(client.cookie(SESSION), None, "no session: {}", resp.text());
    resp
}

#[tokio::test]
async fn an_unchanged_id_token_is_accepted() {
    // The baseline of the ID token tests: the hooks change nothing by themselves.
    let app = login_app().await;
    let client = app.client(None).await;
    let authorize = start_login(&client).await;
    app.provider
        .queue_id_token_claims(claims(json!({"name": "Alice"})));
    let callback = client.follow_provider(&authorize, ALICE).await;
    client.get_url(&callback).expect(303).await;
    assert_eq!(client.get("/").expect(200).await.text(), ALICE);
}

#[tokio::test]
async fn an_id_token_with_another_nonce_is_refused() {
    let app = login_app().await;
    let resp = login_with_id_token(&app, |p, _| {
        p.queue_id_token_claims(claims(json!({"nonce": "the nonce of another login"})));
    })
    .await;
    assert_refused(&resp, 400, "`nonce` does not match this login");
    snapshot("nonce_mismatch", &resp);
}

#[tokio::test]
async fn an_id_token_without_nonce_is_refused() {
    let app = login_app().await;
    let resp = login_with_id_token(&app, |p, _| {
        p.queue_id_token_claims(claims(json!({"nonce": null})));
    })
    .await;
    assert_refused(&resp, 400, "`nonce` does not match this login");
}

#[tokio::test]
async fn an_id_token_from_another_issuer_is_refused() {
    let app = login_app().await;
    let other = MockProvider::start().await.unwrap();
    let resp = login_with_id_token(&app, |p, nonce| {
        let forged = other
            .token()
            .kind(TokenKind::Id)
            .subject("user-alice")
            .email(ALICE)
            .audience(p.client_id())
            .claim("nonce", json!(nonce))
            .sign();
        p.queue_id_token(forged);
    })
    .await;
    let description = assert_refused(&resp, 400, "the ID token was refused");
    assert!(description.contains("issuer"), "{description}");
}

#[tokio::test]
async fn an_id_token_naming_the_provider_but_signed_by_another_key_is_refused() {
    let app = login_app().await;
    let other = MockProvider::start().await.unwrap();
    let resp = login_with_id_token(&app, |p, nonce| {
        let forged = other
            .token()
            .kind(TokenKind::Id)
            .issuer(p.issuer())
            .email(ALICE)
            .audience(p.client_id())
            .claim("nonce", json!(nonce))
            .sign();
        p.queue_id_token(forged);
    })
    .await;
    let description = assert_refused(&resp, 400, "the ID token was refused");
    assert!(description.contains("key"), "{description}");
}

#[tokio::test]
async fn an_id_token_for_another_audience_is_refused() {
    let app = login_app().await;
    let resp = login_with_id_token(&app, |p, _| {
        p.queue_id_token_claims(claims(json!({"aud": "another-client"})));
    })
    .await;
    let description = assert_refused(&resp, 400, "the ID token was refused");
    assert!(
        description.contains("not meant for this service"),
        "{description}"
    );
}

#[tokio::test]
async fn an_id_token_for_the_api_audience_is_refused() {
    // The audience of access tokens is not the client's: an ID token names the client.
    let app = login_app().await;
    let resp = login_with_id_token(&app, |p, _| {
        let api = p.audience().to_owned();
        p.queue_id_token_claims(claims(json!({"aud": api})));
    })
    .await;
    assert_refused(&resp, 400, "the ID token was refused");
}

#[tokio::test]
async fn an_id_token_for_another_authorized_party_is_refused() {
    let app = login_app().await;
    let resp = login_with_id_token(&app, |p, _| {
        p.queue_id_token_claims(claims(json!({"azp": "another-client"})));
    })
    .await;
    assert_refused(&resp, 400, "issued to another client (`azp`)");
}

#[tokio::test]
async fn an_id_token_with_several_audiences_and_no_azp_is_refused() {
    let app = login_app().await;
    let resp = login_with_id_token(&app, |p, _| {
        let aud = json!([p.client_id(), "another-client"]);
        p.queue_id_token_claims(claims(json!({"aud": aud})));
    })
    .await;
    assert_refused(&resp, 400, "several audiences and no `azp`");
}

#[tokio::test]
async fn an_id_token_with_a_bad_at_hash_is_refused() {
    let app = login_app().await;
    let resp = login_with_id_token(&app, |p, _| {
        p.queue_id_token_claims(claims(json!({"at_hash": "AAAAAAAAAAAAAAAAAAAAAA"})));
    })
    .await;
    assert_refused(&resp, 400, "`at_hash` does not match the access token");
}

#[tokio::test]
async fn an_expired_id_token_is_refused() {
    let app = login_app().await;
    let resp = login_with_id_token(&app, |p, _| {
        let now = p.clock().now_secs();
        p.queue_id_token_claims(claims(json!({"exp": now - 600, "iat": now - 900})));
    })
    .await;
    let description = assert_refused(&resp, 400, "the ID token was refused");
    assert!(description.contains("expired"), "{description}");
}

#[tokio::test]
async fn an_access_token_in_place_of_the_id_token_is_refused() {
    let app = login_app().await;
    let resp = login_with_id_token(&app, |p, nonce| {
        let access = p
            .token()
            .audience(p.client_id())
            .email(ALICE)
            .claim("nonce", json!(nonce))
            .sign();
        p.queue_id_token(access);
    })
    .await;
    assert_refused(&resp, 400, "the ID token was refused");
}

// --- mix-up (RFC 9207) -------------------------------------------------------

#[tokio::test]
async fn a_callback_naming_another_issuer_is_refused() {
    let app = login_app().await;
    let other = MockProvider::start().await.unwrap();
    let client = app.client(None).await;
    let callback = callback_url(&client, ALICE).await;
    assert_eq!(query_param(&callback, "iss"), Some(app.provider.issuer()));
    let token_calls = app.provider.request_count("/token");
    let resp = client
        .get_url(&with_param(&callback, "iss", Some(&other.issuer())))
        .send()
        .await;
    assert_refused(&resp, 400, "the callback's `iss` is not the provider");
    snapshot("mix_up", &resp);
    assert_eq!(
        app.provider.request_count("/token"),
        token_calls,
        "the code is not sent anywhere"
    );
}

#[tokio::test]
async fn a_callback_without_iss_is_refused_when_the_provider_announces_it() {
    let app = login_app().await;
    let client = app.client(None).await;
    let callback = callback_url(&client, ALICE).await;
    let resp = client
        .get_url(&with_param(&callback, "iss", None))
        .send()
        .await;
    assert_refused(
        &resp,
        400,
        "lacks the `iss` parameter its provider announces",
    );
    assert_eq!(client.cookie(SESSION), None);
}

#[tokio::test]
async fn without_an_announced_iss_a_callback_without_it_succeeds() {
    let app = login_app_with(MockOptions::default().iss_parameter(false), |_| {}).await;
    let client = app.client(None).await;
    let callback = callback_url(&client, ALICE).await;
    assert_eq!(query_param(&callback, "iss"), None);
    client.get_url(&callback).expect(303).await;
    assert_eq!(client.get("/").expect(200).await.text(), ALICE);
}

// --- open redirects ----------------------------------------------------------

/// `next` values that must bring the browser back to `/`, not where they point.
fn hostile_targets() -> Vec<String> {
    let mut targets: Vec<String> = [
        // Protocol-relative and backslash forms.
        "//evil.example",
        "///evil.example",
        "////evil.example",
        "//evil.example/",
        "//evil.example:443/",
        "/\\evil.example",
        "/\\/evil.example",
        "\\\\evil.example",
        "\\\\evil.example/path",
        "\\/evil.example",
        // Absolute URLs and schemes.
        "https://evil.example",
        "http://evil.example/path",
        "HTTPS://EVIL.EXAMPLE",
        "http:evil.example",
        "https:evil.example",
        "https:/evil.example",
        "http:///evil.example",
        "http:\\\\evil.example",
        "ftp://evil.example",
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "data:text/html,x",
        "vbscript:msgbox(1)",
        "blob:https://evil.example/x",
        // Percent-encoded slashes and backslashes, once or more.
        "/%2F%2Fevil.example",
        "/%2f%2fevil.example",
        "/%2F/evil.example",
        "/%5Cevil.example",
        "/%5cevil.example",
        "/%5C%5Cevil.example",
        "/%5C/evil.example",
        "/%2F%5Cevil.example",
        "/%255C%255Cevil.example",
        "/%252F%252Fevil.example",
        "/%25252F%25252Fevil.example",
        "/%2525252F%2525252Fevil.example",
        "%2F%2Fevil.example",
        "%5C%5Cevil.example",
        "//%65vil.example",
        "//evil%2Eexample",
        // Whitespace and control characters that browsers strip or that split headers.
        " /evil",
        " //evil.example",
        "\t//evil.example",
        "/\t/evil.example",
        "/%09/evil.example",
        "/\n/evil.example",
        "/%0a/evil.example",
        "/%0d%0aSet-Cookie:x=y",
        "/\r\nLocation: https://evil",
        "%00",
        "/%00",
        "/\u{0}evil.example",
        "\u{feff}//evil.example",
        // Paths that normalize into `//host`.
        "//evil.example/%2F..",
        "/.//evil.example",
        "/x/..//evil.example",
        "/.%2F%2Fevil.example",
        "/%2e%2e%2f%2fevil.example",
        // Not paths at all (and dangerous when appended to an origin).
        "evil.example",
        "@evil.example",
        "//evil.example@good",
        "//good@evil.example",
        // IP literals.
        "//[::1]",
        "//[::1]:8080/x",
        "//127.0.0.1",
        // Unicode slashes without an ASCII slash first.
        "\u{ff0f}\u{ff0f}evil.example",
        "\u{2215}\u{2215}evil.example",
        // Empty.
        "",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    // Too long to carry around (and to fit in the transaction cookie).
    targets.push(format!("/{}", "a".repeat(2999)));
    targets
}

/// Same-origin targets, some of them odd-looking, that must come back unchanged.
fn safe_targets() -> Vec<String> {
    [
        "/",
        "/read",
        "/shout?message=hi%20there",
        "/a/b?x=1&y=2",
        "/a#frag",
        "/a/b/c/",
        "/~user/page",
        "/a;b=c",
        "/a:b",
        "/caf%C3%A9",
        // Odd but same-origin: `@`, a host-like first segment, `//` in the
        // query or fragment, encoded slashes in the query, dot segments.
        "/@evil.example",
        "/evil.example",
        "/?next=//evil.example",
        "/search?q=https://evil.example",
        "/a?b=%2F%2Fevil.example",
        "/a#//evil.example",
        "/%2e%2e/%2e%2e/read",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// Unicode look-alikes of `/` after a real one: to a browser, the rest of a
/// path on this origin. They must not leave the origin; whether they come
/// back as they are or percent-encoded is the application's choice.
fn unicode_slash_targets() -> Vec<String> {
    [
        "/\u{ff0f}evil.example",
        "/\u{2215}evil.example",
        "/\u{ff0f}\u{ff0f}evil.example",
        "/%EF%BC%8F%EF%BC%8Fevil.example",
        "/\u{2044}evil.example",
        "/\u{29f8}evil.example",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// Logs in asking to return to `next`; answers the final `Location`, byte
/// for byte (lossily decoded as UTF-8).
async fn return_location(client: &TestClient, next: &str) -> String {
    let next_q: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
    let login = client
        .get(&format!("/login?next={next_q}"))
        .expect(303)
        .await;
    let callback = client
        .follow_provider(login.location().unwrap(), ALICE)
        .await;
    let back = client.get_url(&callback).expect(303).await;
    let location = back.headers.get("location").expect("a Location header");
    String::from_utf8_lossy(location.as_bytes()).into_owned()
}

#[tokio::test]
async fn hostile_return_targets_fall_back_to_the_root() {
    let targets = hostile_targets();
    assert!(targets.len() >= 50, "{}", targets.len());
    let app = login_app().await;
    let client = app.client(None).await;
    let mut failures = Vec::new();
    for next in &targets {
        let location = client.login(ALICE, next).await;
        if location != "/" {
            failures.push(format!("{next:?} -> {location:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "open redirects:\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn safe_return_targets_come_back_unchanged() {
    let targets = safe_targets();
    assert!(targets.len() >= 8);
    let app = login_app().await;
    let client = app.client(None).await;
    let mut failures = Vec::new();
    for next in &targets {
        let location = return_location(&client, next).await;
        if &location != next {
            failures.push(format!("{next:?} -> {location:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "lost targets:\n{}",
        failures.join("\n")
    );
}

/// Where a browser goes with `location` from the callback: its URL, resolved
/// as WHATWG URL parsing does.
fn resolve(location: &str) -> url::Url {
    let callback = url::Url::parse("http://app.example/auth?code=c&state=s").unwrap();
    callback
        .join(location)
        .unwrap_or_else(|e| panic!("{location:?} does not resolve: {e}"))
}

/// Whether a browser sent to `location` stays on the application's origin,
/// on a path that does not itself start with `//`.
fn stays_home(location: &str) -> bool {
    let target = resolve(location);
    target.origin() == resolve("/").origin() && !target.path().starts_with("//")
}

#[tokio::test]
async fn unicode_slashes_stay_on_the_origin() {
    let app = login_app().await;
    let client = app.client(None).await;
    for next in unicode_slash_targets() {
        let location = return_location(&client, &next).await;
        assert!(
            location == "/" || (location.starts_with('/') && stays_home(&location)),
            "{next:?} -> {location:?}"
        );
    }
}

#[test]
fn safe_return_path_decides_the_same() {
    for next in hostile_targets() {
        assert_eq!(safe_return_path(&next), "/", "{next:?}");
    }
    for next in safe_targets() {
        assert_eq!(safe_return_path(&next), next, "{next:?}");
        assert!(stays_home(&next), "{next:?} leaves the origin");
    }
    for next in unicode_slash_targets() {
        assert!(
            stays_home(safe_return_path(&next)),
            "{next:?} leaves the origin"
        );
    }
}

/// Every target `safe_return_path` accepts, among all short combinations of
/// the pieces open redirects are made of, stays on the application's origin.
#[test]
fn whatever_safe_return_path_accepts_stays_home() {
    const PIECES: [&str; 20] = [
        "/",
        "\\",
        "%2F",
        "%5C",
        "%252F",
        "%255C",
        ".",
        "%2e",
        "@",
        ":",
        "?",
        "#",
        "\t",
        "%09",
        "%20",
        "\u{ff0f}",
        "evil.example",
        "http:",
        "%",
        "%0a",
    ];
    let mut accepted = 0;
    // Every sequence of one to four pieces.
    let mut level: Vec<String> = vec![String::new()];
    for _ in 0..4 {
        let mut next_level = Vec::with_capacity(level.len() * PIECES.len());
        for prefix in &level {
            for piece in PIECES {
                let candidate = format!("{prefix}{piece}");
                if safe_return_path(&candidate) == candidate {
                    accepted += 1;
                    assert!(stays_home(&candidate), "{candidate:?} leaves the origin");
                }
                next_level.push(candidate);
            }
        }
        level = next_level;
    }
    assert!(
        accepted > 100,
        "{accepted} targets accepted: the search is too narrow"
    );
}

// --- cookies -----------------------------------------------------------------

#[tokio::test]
async fn a_tampered_session_cookie_is_refused_and_cleared() {
    let app = login_app().await;
    let client = app.client(Some(ALICE)).await;
    client.get("/read").expect(200).await;
    let value = client.cookie(SESSION).unwrap();
    let mut chars: Vec<char> = value.chars().collect();
    let middle = chars.len() / 2;
    chars[middle] = if chars[middle] == 'A' { 'B' } else { 'A' };
    let tampered: String = chars.into_iter().collect();
    assert_ne!(tampered, value);
    client.set_cookie(SESSION, Some(&tampered));
    let resp = client.get("/read").expect(401).await;
    assert!(
        clears_session(&resp),
        "the bad cookie is cleared: {:?}",
        resp.headers_all("set-cookie")
    );
    assert_eq!(client.cookie(SESSION), None);
    assert_guest(&client).await;
}

#[tokio::test]
async fn a_session_cookie_of_another_app_is_a_guest() {
    let app = login_app().await;
    let (other, _) = serve(&app.provider, |c| {
        c.secret_key = "another application's secret key, 32+ bytes".into();
    })
    .await;
    let elsewhere = other.client(Some(ALICE)).await;
    elsewhere.get("/read").expect(200).await;
    let foreign = elsewhere.cookie(SESSION).unwrap();

    let client = app.client(None).await;
    client.set_cookie(SESSION, Some(&foreign));
    let resp = client.get("/read").expect(401).await;
    assert!(
        clears_session(&resp),
        "{:?}",
        resp.headers_all("set-cookie")
    );
    client.set_cookie(SESSION, Some(&foreign));
    assert_eq!(client.get("/").expect(200).await.text(), "guest");
}

/// Cookies are sealed for their own name. (A transaction does not have the
/// shape of a session either, so this holds even without that binding;
/// the sealing's own unit tests check the binding itself.)
#[tokio::test]
async fn a_login_cookie_under_the_session_name_is_a_guest() {
    let app = login_app().await;
    let client = app.client(None).await;
    start_login(&client).await;
    let transaction = client.cookie(LOGIN).expect("a login transaction cookie");
    let swapped = app.client(None).await;
    swapped.set_cookie(SESSION, Some(&transaction));
    assert_eq!(swapped.get("/").expect(200).await.text(), "guest");
    swapped.set_cookie(SESSION, Some(&transaction));
    let resp = swapped.get("/read").expect(401).await;
    assert!(
        clears_session(&resp),
        "{:?}",
        resp.headers_all("set-cookie")
    );
}

// --- login transaction -------------------------------------------------------

/// The transaction is single-use even with a fresh, valid code for its state:
/// the provider would happily redeem that code.
#[tokio::test]
async fn a_used_transaction_is_refused_even_with_a_fresh_code() {
    let app = login_app().await;
    let client = app.client(None).await;
    let authorize = start_login(&client).await;
    let transaction = client.cookie(LOGIN).unwrap();
    let callback = client.follow_provider(&authorize, ALICE).await;
    client.get_url(&callback).expect(303).await;
    let session = client.cookie(SESSION).unwrap();

    // Back to the provider with the same authorization request: a new code
    // for the same state, nonce and PKCE challenge.
    client.set_cookie(LOGIN, Some(&transaction));
    let again = client
        .follow_provider(&authorize, "mallory@example.com")
        .await;
    assert_ne!(query_param(&again, "code"), query_param(&callback, "code"));
    assert_eq!(
        query_param(&again, "state"),
        query_param(&callback, "state")
    );
    let resp = client.get_url(&again).send().await;
    assert_refused(&resp, 400, "this login was already completed");
    assert_eq!(client.cookie(SESSION), Some(session));
    assert_eq!(client.get("/").expect(200).await.text(), ALICE);
}

#[tokio::test]
async fn an_expired_transaction_is_refused() {
    let app = login_app().await;
    let client = app.client(None).await;
    let authorize = start_login(&client).await;
    app.provider.clock().advance_secs(601);
    let callback = client.follow_provider(&authorize, ALICE).await;
    let resp = client.get_url(&callback).send().await;
    assert_refused(&resp, 400, "the login took too long");
    assert_eq!(client.cookie(SESSION), None);
}

#[tokio::test]
async fn a_callback_without_a_transaction_is_refused() {
    let app = login_app().await;
    let client = app.client(None).await;
    let callback = callback_url(&client, ALICE).await;
    client.set_cookie(LOGIN, None);
    let token_calls = app.provider.request_count("/token");
    let resp = client.get_url(&callback).send().await;
    assert_refused(&resp, 400, "no login in progress");
    snapshot("missing_transaction", &resp);
    assert_eq!(app.provider.request_count("/token"), token_calls);
    assert_eq!(client.cookie(SESSION), None);
}

// --- provider errors ---------------------------------------------------------

#[tokio::test]
async fn a_provider_error_is_reported_without_a_session() {
    let app = login_app().await;
    let client = app.client(None).await;
    app.provider
        .queue_error("access_denied", "the user declined <b>everything</b>");
    let callback = callback_url(&client, ALICE).await;
    assert_eq!(
        query_param(&callback, "error").as_deref(),
        Some("access_denied")
    );
    let resp = client.get_url(&callback).send().await;
    let description = assert_refused(&resp, 400, "the provider answered `access_denied`");
    assert!(
        !description.contains("<b>"),
        "the provider's free text is not echoed: {description}"
    );
    snapshot("provider_error", &resp);
    assert_eq!(client.cookie(SESSION), None);
    assert_guest(&client).await;
}

#[tokio::test]
async fn an_odd_provider_error_code_is_not_echoed() {
    let app = login_app().await;
    let client = app.client(None).await;
    app.provider.queue_error("<script>alert(1)</script>", "");
    let callback = callback_url(&client, ALICE).await;
    let resp = client.get_url(&callback).send().await;
    let description = assert_refused(&resp, 400, "the provider answered `error`");
    assert!(!description.contains("script"), "{description}");
}

// --- tokens in URLs ----------------------------------------------------------

#[tokio::test]
async fn tokens_never_travel_in_urls() {
    let app = login_app().await;
    let client = app.client(None).await;
    let mut locations = Vec::new();
    let login = client
        .get("/login?next=/read&offline_token=true")
        .expect(303)
        .await;
    locations.push(login.location().unwrap().to_owned());
    let callback = client
        .follow_provider(login.location().unwrap(), ALICE)
        .await;
    locations.push(callback.clone());
    let back = client.get_url(&callback).expect(303).await;
    locations.push(back.location().unwrap().to_owned());
    let issued = app.provider.last_token_response().expect("a code exchange");
    let token = client.get("/token").expect(200).await;
    assert!(token.location().is_none());
    let browser = client.get("/token").browser().expect(200).await;
    assert!(
        browser.location().is_none(),
        "a logged-in browser is not redirected"
    );
    client.get("/read").expect(200).await;

    let mut secrets = Vec::new();
    for (what, body) in [("provider", &issued), ("/token", &token.json())] {
        for name in ["access_token", "id_token", "refresh_token", "token"] {
            if let Some(value) = body[name].as_str() {
                secrets.push((format!("{what} {name}"), value.to_owned()));
            }
        }
    }
    let names: Vec<&str> = secrets.iter().map(|(n, _)| n.as_str()).collect();
    for expected in [
        "provider access_token",
        "provider id_token",
        "provider refresh_token",
        "/token token",
        "/token refresh_token",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    for (name, value) in &secrets {
        // The whole token, and its signature alone (which no URL should hold either).
        let signature = value.rsplit('.').next().unwrap_or(value);
        for location in &locations {
            assert!(
                !location.contains(value.as_str()) && !location.contains(signature),
                "the {name} is in a URL: {location}"
            );
        }
    }
}
