//! The token endpoint: RFC 6749 answers and errors, client authentication,
//! scopes, failed-login limits, the claims of issued tokens.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use portcullis_issuer::{Endpoint, IssuerRequest};
use serde_json::Value;

use crate::common::*;

fn claims(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let header = URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap();
    let payload = URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap();
    (
        serde_json::from_slice(&header).unwrap(),
        serde_json::from_slice(&payload).unwrap(),
    )
}

fn basic(id: &str, secret: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_password_exchange_issues_rfc_9068_tokens_with_the_seeds_claims() {
    let s = setup();
    let answer = token(
        &s.issuer,
        "grant_type=password&username=alice&password=alice-password&scope=user:read",
    )
    .await;
    assert_eq!(answer.reply.status, 200);
    assert_eq!(answer.reply.header("cache-control"), Some("no-store"));
    assert_eq!(answer.reply.header("pragma"), Some("no-cache"));
    assert_eq!(
        answer.reply.header("content-type"),
        Some("application/json")
    );
    let json = &answer.json;
    assert_eq!(json["token_type"], "Bearer");
    assert_eq!(json["expires_in"], 1440 * 60);
    assert_eq!(json["scope"], "user:read");
    assert!(json["refresh_token"].is_string());
    let (header, claims) = claims(json["access_token"].as_str().unwrap());
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["kid"], s.issuer.keys().active().kid());
    assert_eq!(claims["iss"], "https://auth.example.com");
    assert_eq!(claims["aud"], "https://auth.example.com");
    assert_eq!(claims["sub"], "u-alice");
    assert_eq!(claims["user_id"], "u-alice");
    assert_eq!(claims["username"], "alice");
    assert_eq!(claims["client_id"], "web");
    assert_eq!(claims["scope"], "user:read");
    assert_eq!(claims["scopes"], serde_json::json!(["user:read"]));
    assert_eq!(claims["issued_to"], "192.0.2.7");
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        1440 * 60
    );
    assert!(claims["jti"].as_str().unwrap().len() >= 22);
    // No scope asked: all of the user's.
    let all = token(
        &s.issuer,
        "grant_type=password&username=bob&password=bob-password",
    )
    .await;
    assert_eq!(all.json["scope"], "user:read");
    // Asked for a scope the user lacks only: invalid_scope.
    let lacking = token(
        &s.issuer,
        "grant_type=password&username=bob&password=bob-password&scope=user:write",
    )
    .await;
    assert_eq!(lacking.error(), "invalid_scope");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_error_has_the_rfc_6749_shape() {
    let s = setup();
    let cases: &[(&str, Option<&str>, &str, u16, &str)] = &[
        (
            "no grant type",
            None,
            "username=alice",
            400,
            "invalid_request",
        ),
        (
            "unknown grant",
            None,
            "grant_type=implicit",
            400,
            "unsupported_grant_type",
        ),
        (
            "authorization code",
            None,
            "grant_type=authorization_code&code=x",
            400,
            "unsupported_grant_type",
        ),
        (
            "no password",
            None,
            "grant_type=password&username=alice",
            400,
            "invalid_request",
        ),
        (
            "wrong password",
            None,
            "grant_type=password&username=alice&password=nope",
            400,
            "invalid_grant",
        ),
        (
            "unknown user",
            None,
            "grant_type=password&username=mallory&password=nope",
            400,
            "invalid_grant",
        ),
        (
            "unknown scope",
            None,
            "grant_type=password&username=alice&password=alice-password&scope=admin",
            400,
            "invalid_scope",
        ),
        (
            "malformed scope",
            None,
            "grant_type=password&username=alice&password=alice-password&scope=a%22b",
            400,
            "invalid_scope",
        ),
        (
            "repeated parameter",
            None,
            "grant_type=password&grant_type=password",
            400,
            "invalid_request",
        ),
        (
            "unknown client",
            None,
            "grant_type=password&client_id=nobody&username=a&password=b",
            401,
            "invalid_client",
        ),
        (
            "wrong secret",
            Some("reports:wrong"),
            "grant_type=client_credentials",
            401,
            "invalid_client",
        ),
        (
            "secret for a public client",
            None,
            "grant_type=password&client_id=web&client_secret=x&username=a&password=b",
            401,
            "invalid_client",
        ),
        (
            "public client for machines",
            None,
            "grant_type=client_credentials&client_id=web",
            400,
            "unauthorized_client",
        ),
        (
            "no refresh token",
            None,
            "grant_type=refresh_token",
            400,
            "invalid_request",
        ),
        (
            "bearer as client authentication",
            Some("bearer"),
            "grant_type=client_credentials",
            401,
            "invalid_client",
        ),
    ];
    for (what, auth, body, status, code) in cases {
        let auth = auth.map(|a| match a {
            "bearer" => "Bearer abc".to_owned(),
            a => {
                let (id, secret) = a.split_once(':').unwrap();
                basic(id, secret)
            }
        });
        let answer = call(&s.issuer, Endpoint::Token, auth.as_deref(), body).await;
        assert_eq!(
            (answer.reply.status, answer.error()),
            (*status, *code),
            "{what}"
        );
        assert_eq!(
            answer.reply.header("cache-control"),
            Some("no-store"),
            "{what}"
        );
        assert_eq!(answer.reply.header("pragma"), Some("no-cache"), "{what}");
        assert!(answer.json["error_description"].is_string(), "{what}");
        assert_eq!(answer.json.as_object().unwrap().len(), 2, "{what}");
        let challenge = answer.reply.header("www-authenticate");
        if *status == 401 {
            assert_eq!(
                challenge,
                Some("Basic realm=\"portcullis\", charset=\"UTF-8\""),
                "{what}"
            );
        } else {
            assert_eq!(challenge, None, "{what}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_content_types_and_bodies_are_invalid_requests() {
    let s = setup();
    for (content_type, body) in [
        (
            Some("application/json"),
            &br#"{"grant_type":"password"}"#[..],
        ),
        (None, b"grant_type=password"),
        (Some("text/plain"), b"grant_type=password"),
        (Some(FORM), b"grant_type=%zz"),
        (Some(FORM), &[b'a', b'=', 0xff][..]),
    ] {
        let reply = s
            .issuer
            .handle(
                Endpoint::Token,
                IssuerRequest {
                    content_type,
                    body,
                    ..IssuerRequest::default()
                },
            )
            .await;
        assert_eq!(reply.status, 400, "{content_type:?} {body:?}");
        let json: Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(json["error"], "invalid_request");
    }
    let big = vec![b'a'; portcullis_issuer::form::MAX_FORM_BYTES + 1];
    let reply = s
        .issuer
        .handle(
            Endpoint::Token,
            IssuerRequest {
                content_type: Some(FORM),
                body: &big,
                ..IssuerRequest::default()
            },
        )
        .await;
    assert_eq!(reply.status, 400);
    let too_large = portcullis_issuer::Issuer::body_too_large();
    assert_eq!(too_large.status, 413);
    assert_eq!(too_large.header("cache-control"), Some("no-store"));
}

#[tokio::test(flavor = "multi_thread")]
async fn client_credentials_are_form_decoded_before_basic() {
    let s = setup();
    // The secret holds a space and a comma: form-encoded, then Basic.
    let answer = call(
        &s.issuer,
        Endpoint::Token,
        Some(&basic("reports", MACHINE_SECRET)),
        "grant_type=client_credentials",
    )
    .await;
    assert_eq!(answer.reply.status, 200, "{}", answer.json);
    assert!(answer.json.get("refresh_token").is_none());
    let (_, claims) = claims(answer.json["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], "reports");
    assert_eq!(claims["client_id"], "reports");
    assert_eq!(claims["scope"], "reports:read");
    // Not form-encoded first: the secret's `+` reads as a space, and the
    // secret no longer matches.
    let raw = format!(
        "Basic {}",
        STANDARD.encode(format!("reports:{MACHINE_SECRET}"))
    );
    let answer = call(
        &s.issuer,
        Endpoint::Token,
        Some(&raw),
        "grant_type=client_credentials",
    )
    .await;
    assert_eq!(answer.error(), "invalid_client");
    let answer = call(
        &s.issuer,
        Endpoint::Token,
        Some(&basic("reports", MACHINE_SECRET)),
        "grant_type=client_credentials&scope=user:read",
    )
    .await;
    assert_eq!(answer.error(), "invalid_scope");
    // In the body instead.
    let body = format!(
        "grant_type=client_credentials&client_id=reports&client_secret={}",
        url::form_urlencoded::byte_serialize(MACHINE_SECRET.as_bytes()).collect::<String>()
    );
    assert_eq!(token(&s.issuer, &body).await.reply.status, 200);
    // Both at once: refused.
    let answer = call(
        &s.issuer,
        Endpoint::Token,
        Some(&basic("reports", MACHINE_SECRET)),
        &body,
    )
    .await;
    assert_eq!(answer.error(), "invalid_request");
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_logins_are_limited_per_account_and_per_address() {
    let s = setup();
    for _ in 0..5 {
        let answer = token(
            &s.issuer,
            "grant_type=password&username=alice&password=guess",
        )
        .await;
        assert_eq!(answer.error(), "invalid_grant");
    }
    // The account is limited: even the right password waits, unchecked.
    let limited = token(
        &s.issuer,
        "grant_type=password&username=alice&password=alice-password",
    )
    .await;
    assert_eq!(limited.reply.status, 429);
    assert_eq!(limited.error(), "invalid_request");
    assert_eq!(limited.reply.header("retry-after"), Some("900"));
    assert_eq!(limited.reply.header("cache-control"), Some("no-store"));
    // Bob, from the same address, still logs in.
    let bob = token(
        &s.issuer,
        "grant_type=password&username=bob&password=bob-password",
    )
    .await;
    assert_eq!(bob.reply.status, 200);
    s.clock.advance_secs(900);
    let later = token(
        &s.issuer,
        "grant_type=password&username=alice&password=alice-password",
    )
    .await;
    assert_eq!(later.reply.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn revocation_ends_the_family_and_introspection_tells_who_is_active() {
    let s = setup();
    let auth = basic("reports", MACHINE_SECRET);
    let login = token(
        &s.issuer,
        "grant_type=password&username=alice&password=alice-password",
    )
    .await;
    let access = login.json["access_token"].as_str().unwrap();
    let refresh_token = login.json["refresh_token"].as_str().unwrap();
    let active = call(
        &s.issuer,
        Endpoint::Introspection,
        Some(&auth),
        &format!("token={access}"),
    )
    .await;
    assert_eq!(active.json["active"], true);
    assert_eq!(active.json["sub"], "u-alice");
    assert_eq!(active.json["username"], "alice");
    let active = call(
        &s.issuer,
        Endpoint::Introspection,
        Some(&auth),
        &format!("token={refresh_token}"),
    )
    .await;
    assert_eq!(active.json["active"], true);
    assert_eq!(active.json["token_type"], "refresh_token");
    // Introspection needs a confidential client.
    let public = call(
        &s.issuer,
        Endpoint::Introspection,
        None,
        &format!("token={access}"),
    )
    .await;
    assert_eq!(public.reply.status, 401);
    // Revoking another client's token does nothing; the owner's does.
    let other = call(
        &s.issuer,
        Endpoint::Revocation,
        None,
        &format!("token={refresh_token}&client_id=mobile"),
    )
    .await;
    assert_eq!(other.reply.status, 200);
    assert_eq!(
        refresh(&s.issuer, refresh_token, "web").await.reply.status,
        200
    );
    let login = token(
        &s.issuer,
        "grant_type=password&username=alice&password=alice-password",
    )
    .await;
    let refresh_token = login.json["refresh_token"].as_str().unwrap();
    let revoked = call(
        &s.issuer,
        Endpoint::Revocation,
        None,
        &format!("token={refresh_token}"),
    )
    .await;
    assert_eq!(revoked.reply.status, 200);
    assert_eq!(
        refresh(&s.issuer, refresh_token, "web").await.error(),
        "invalid_grant"
    );
    let inactive = call(
        &s.issuer,
        Endpoint::Introspection,
        Some(&auth),
        &format!("token={refresh_token}"),
    )
    .await;
    assert_eq!(inactive.json, serde_json::json!({"active": false}));
    // Access tokens expire instead.
    let unsupported = call(
        &s.issuer,
        Endpoint::Revocation,
        None,
        &format!("token={access}"),
    )
    .await;
    assert_eq!(unsupported.error(), "unsupported_token_type");
    s.clock.advance_secs(1440 * 60);
    let expired = call(
        &s.issuer,
        Endpoint::Introspection,
        Some(&auth),
        &format!("token={access}"),
    )
    .await;
    assert_eq!(expired.json["active"], false);
}
