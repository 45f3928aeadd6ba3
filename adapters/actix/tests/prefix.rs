//! The login routes under a non-empty prefix: actix-web scopes keep the
//! original URI, so return targets include the prefix.

use portcullis_testing::conformance::login_app;

use crate::conformance::Actix;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_routes_live_under_the_prefix() {
    let app = login_app(&Actix, |cfg| cfg.prefix = "/oauth".to_owned()).await;
    let guest = app.app.client(None).await;
    let to_login = guest.get("/shout?message=hi").browser().expect(303).await;
    assert_eq!(
        to_login.location(),
        Some("/oauth/login?next=%2Fshout%3Fmessage%3Dhi")
    );
    let to_login = guest.get("/oauth/token").browser().expect(303).await;
    assert_eq!(
        to_login.location(),
        Some("/oauth/login?next=%2Foauth%2Ftoken")
    );
    guest.get("/login").expect(404).await;

    let alice = app.app.client(Some("alice@example.com")).await;
    alice.get("/read").expect(200).await;
    let token = alice.token().await;
    let script = app.app.client(None).await;
    assert_eq!(
        script.get("/").bearer(&token).expect(200).await.text(),
        "alice@example.com"
    );
    let own = alice
        .get("/oauth/manage_capabilities/list")
        .expect(200)
        .await;
    assert_eq!(own.json()["email"], "alice@example.com");
}
