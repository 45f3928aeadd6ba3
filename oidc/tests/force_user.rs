//! The `dangerous_force_user` development mode: refused off loopback when
//! the relying party is built, and a warning at every start.

use portcullis_oidc::{ForcedUser, OidcConfig, RelyingParty};
use portcullis_testing::conformance::random_secret_key;
use portcullis_testing::logs::LogCapture;

fn config(base_url: &str) -> OidcConfig {
    // Discovery is lazy: no provider answers at this address, and none is asked.
    OidcConfig::new(
        "http://127.0.0.1:9/.well-known/openid-configuration",
        random_secret_key(),
        "client",
        base_url,
    )
    .with_dangerous_force_user(ForcedUser::new("dev@example.com"))
}

#[tokio::test]
async fn every_start_warns_and_only_loopback_starts() {
    let capture = LogCapture::new();
    let guard = tracing::subscriber::set_default(capture.subscriber());
    for _ in 0..2 {
        RelyingParty::builder(config("http://127.0.0.1:8000"))
            .build()
            .await
            .unwrap();
    }
    let e = RelyingParty::builder(config("https://app.example.com"))
        .build()
        .await
        .unwrap_err();
    drop(guard);
    assert!(e.message().contains("`force_user`"), "{e}");
    let log = capture.text();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("DANGER: `force_user`"))
        .collect();
    assert_eq!(warnings.len(), 2, "{log}");
    assert!(warnings[0].contains("dev@example.com"), "{log}");
}
