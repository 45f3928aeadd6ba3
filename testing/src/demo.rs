//! The main examples' out-of-the-box mode: the embedded mock provider stands
//! in for a real one, so `cargo run -p example-axum` (or `-actix`, `-poem`)
//! needs no secrets and no external server. The three examples share this so
//! that they behave the same.

use std::path::Path;
use std::time::Duration;

use portcullis_core::clock::{Clock, SystemClock};
use portcullis_oidc::OidcConfig;

use crate::MockProvider;

/// Starts a mock provider for an application served at `base_url` (login
/// routes at the root): its callback and post-logout page are registered,
/// everyone logs in as `admin@example.com` unless told otherwise, and its
/// clock follows real time, so sessions and tokens age as they would.
///
/// # Errors
///
/// When the provider cannot bind a loopback port.
pub async fn start_provider(base_url: &str) -> std::io::Result<MockProvider> {
    let provider = MockProvider::start().await?;
    let clock = provider.clock();
    tokio::spawn(async move {
        loop {
            let (now, at) = (SystemClock.now_millis(), clock.now_millis());
            if now > at {
                clock.advance_millis(now - at);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    provider.register_redirect_uri(&format!("{base_url}/auth"));
    provider.register_post_logout_redirect_uri(&format!("{base_url}/"));
    provider.set_email("admin@example.com");
    Ok(provider)
}

/// Points an example configuration (easy-oauth's file) at `provider`: its
/// discovery URL, client, audience, `base_url`, a fresh random secret key,
/// and `user_file` as the capability file. Authorization parameters meant
/// for a real provider (`prompt`, ...) are dropped.
///
/// # Errors
///
/// When the system random generator fails.
pub fn point_at_mock(
    config: &mut OidcConfig,
    provider: &MockProvider,
    base_url: &str,
    user_file: &Path,
) -> std::io::Result<()> {
    config.server_metadata_url = provider.discovery_url();
    config.issuer = None;
    config.client_id = provider.client_id().to_owned();
    config.client_secret = Some(provider.client_secret().into());
    config.base_url = base_url.to_owned();
    config.audience = Some(provider.audience().to_owned());
    config.capabilities.user_file = Some(user_file.to_path_buf());
    config.client_kwargs.extra.clear();
    let mut secret = [0u8; 32];
    aws_lc_rs::rand::fill(&mut secret)
        .map_err(|_| std::io::Error::other("the system random generator failed"))?;
    config.secret_key = secret
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        .into();
    Ok(())
}

/// What to try against an example served at `addr` with `provider`: log in
/// with a browser, switch users, call the API with a provider token.
pub fn instructions(provider: &MockProvider, addr: &str) -> String {
    let token = provider
        .token()
        .email("friend@example.com")
        .expires_in(3600)
        .sign();
    let issuer = provider.issuer();
    format!(
        "mock provider: {issuer} (logs everyone in as admin@example.com)\n\
         in a browser:    http://{addr}/login   then /read, /shout?message=hi, /token, /logout\n\
         as someone else: curl -X POST -H 'content-type: application/json' -d '{{\"email\":\"reader@example.com\"}}' {issuer}/set_email\n\
         with a provider access token for friend@example.com (valid one hour):\n  \
         curl -H 'Authorization: Bearer {token}' 'http://{addr}/shout?message=hello'\n  \
         curl -i http://{addr}/read    # 401 with a WWW-Authenticate challenge\n"
    )
}
