//! Conformance cases for the provider's word on a login after it
//! started: the user tokens minted from a login with a refresh token are
//! re-checked with the provider at `session.recheck_interval_secs`.
//! Re-exported by [`cases`](super::cases).

use super::{Adapter, LoginApp, assert_response_snapshot, login_app};
use crate::TestClient;

/// Logs `email` in on `app` asking for offline access, so that the
/// provider gives a refresh token.
async fn offline_client(app: &LoginApp, email: &str) -> TestClient {
    let client = app.app.client(None).await;
    let login = client.get("/login?offline_token=true").expect(303).await;
    let callback = client
        .follow_provider(login.location().expect("a redirect"), email)
        .await;
    client.get_url(&callback).expect(303).await;
    client
}

/// A user disabled at the provider loses the user tokens of their login
/// once its check is due (401, as a revoked token), and the session too.
pub async fn a_login_revoked_at_the_provider_is_401(adapter: &dyn Adapter) {
    let app = login_app(adapter, |c| c.session.recheck_interval_secs = 60).await;
    let alice = offline_client(&app, "alice@example.com").await;
    let token = alice.token().await;
    let script = app.app.client(None).await;
    script.get("/read").bearer(&token).expect(200).await;
    assert_eq!(app.provider.disable_user("alice@example.com"), 1);
    // The last check holds until the interval has passed.
    script.get("/read").bearer(&token).expect(200).await;
    app.provider.clock().advance_secs(61);
    let resp = script.get("/read").bearer(&token).expect(401).await;
    assert_response_snapshot("login_revoked_at_provider", &resp);
    script.get("/").bearer(&token).expect(401).await;
    alice.get("/read").expect(401).await;
}

/// A provider that cannot be reached when a login's check is due: the
/// last good check serves for `session.recheck_stale_secs`, then the
/// login's user tokens are answered 503, never passed.
pub async fn a_provider_down_past_the_bound_is_503(adapter: &dyn Adapter) {
    let app = login_app(adapter, |c| {
        c.session.recheck_interval_secs = 60;
        c.session.recheck_stale_secs = 120;
    })
    .await;
    let alice = offline_client(&app, "alice@example.com").await;
    let token = alice.token().await;
    let script = app.app.client(None).await;
    app.provider.shutdown();
    app.provider.clock().advance_secs(61);
    script.get("/read").bearer(&token).expect(200).await;
    app.provider.clock().advance_secs(120);
    let resp = script.get("/read").bearer(&token).expect(503).await;
    assert_response_snapshot("login_check_provider_down", &resp);
}

/// Headless logins are limited per client address (10 starts a minute):
/// past it, 429 with `Retry-After`, and no record is written; the next
/// minute, starts are accepted again.
pub async fn headless_logins_are_limited_per_address(adapter: &dyn Adapter) {
    let app = login_app(adapter, |_| {}).await;
    let tool = app.app.client(None).await;
    for _ in 0..10 {
        tool.get("/login?headless=true").expect(200).await;
    }
    let resp = tool.get("/login?headless=true").expect(429).await;
    assert_response_snapshot("headless_start_limited", &resp);
    assert_eq!(resp.header("retry-after"), Some("60"));
    // Other logins are not limited.
    tool.get("/login").expect(303).await;
    app.provider.clock().advance_secs(60);
    tool.get("/login?headless=true").expect(200).await;
}
