//! Tokens verified by others through the issuer's URL alone: an independent
//! verifier (the `jsonwebtoken` crate, the JWKS fetched over HTTP) and
//! portcullis-core's verifier (discovery).

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use portcullis_core::config::{IssuerConfig as VerifierIssuer, VerifierConfig};
use portcullis_core::{Algorithm, TokenVerifier};
use serde_json::Value;

use crate::common::*;

#[tokio::test(flavor = "multi_thread")]
async fn tokens_verify_with_the_published_keys_for_every_algorithm() {
    for alg in [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
        let (issuer, addr) = serve(|url| setup_with(config(&url), None, alg).issuer).await;
        let base = format!("http://{addr}");
        let http = reqwest::Client::new();
        let metadata: Value = http
            .get(format!("{base}/.well-known/oauth-authorization-server"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(metadata["issuer"], base);
        let oidc: Value = http
            .get(format!("{base}/.well-known/openid-configuration"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(oidc, metadata);
        let token_url = metadata["token_endpoint"].as_str().unwrap();
        let answer: Value = http
            .post(token_url)
            .header("content-type", FORM)
            .body("grant_type=password&username=alice&password=alice-password")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let access = answer["access_token"].as_str().unwrap();

        // The independent verifier: jsonwebtoken, the JWKS over HTTP.
        let jwks: JwkSet = http
            .get(metadata["jwks_uri"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let header = decode_header(access).unwrap();
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&base]);
        validation.set_audience(&[&base]);
        let data = decode::<Value>(access, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(data.claims["username"], "alice", "{alg}");

        // portcullis-core: the issuer's URL alone.
        let verifier = TokenVerifier::new(VerifierConfig::new([(
            "own".to_owned(),
            VerifierIssuer::new(&base)
                .with_audience(&base)
                .with_algorithms([alg]),
        )]))
        .unwrap();
        let principal = verifier
            .verify(access)
            .await
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(principal.user_id(), "u-alice", "{alg}");
        assert!(
            principal.scopes().iter().any(|s| s == "user:write"),
            "{alg}"
        );
        drop(issuer);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_key_is_published_before_it_signs_and_kept_while_its_tokens_live() {
    let (issuer, addr) = serve(|url| setup_with(config(&url), None, Algorithm::ES256).issuer).await;
    let base = format!("http://{addr}");
    let http = reqwest::Client::new();
    let jwks = || async {
        let doc: Value = http
            .get(format!("{base}/jwks"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        doc["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let old = issuer.keys().active();
    let next = portcullis_issuer::keys::KeyConfig {
        algorithm: Some(Algorithm::ES256),
        ..Default::default()
    }
    .signing_key()
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    issuer.keys().stage(next.clone(), now).unwrap();
    assert_eq!(
        jwks().await,
        vec![old.kid().to_owned(), next.kid().to_owned()]
    );
    // Still signing with the old key until activated.
    assert_eq!(issuer.keys().active().kid(), old.kid());
    // A kid is never reused.
    assert!(issuer.keys().stage(old.clone(), now).is_err());
    issuer.keys().activate(now).unwrap();
    assert_eq!(issuer.keys().active().kid(), next.kid());
    assert_eq!(
        jwks().await,
        vec![next.kid().to_owned(), old.kid().to_owned()]
    );
    assert!(issuer.keys().stage(next.clone(), now).is_err());
}
