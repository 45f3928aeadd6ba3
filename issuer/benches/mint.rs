//! Access-token minting per algorithm: what one token answer costs the
//! issuer in signing (claims, header, signature), the password check and
//! the refresh store aside.

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_core::Algorithm;
use portcullis_issuer::keys::KeyConfig;
use portcullis_issuer::password::UserGrant;
use portcullis_issuer::{ClientConfig, Issuer, IssuerConfig};

fn mint(c: &mut Criterion) {
    let user = UserGrant {
        user_id: "u-alice".to_owned(),
        username: "alice".to_owned(),
        scopes: vec!["user:read".to_owned(), "user:write".to_owned()],
        claims: Default::default(),
    };
    let mut group = c.benchmark_group("mint_access_token");
    for alg in [
        Algorithm::HS256,
        Algorithm::RS256,
        Algorithm::ES256,
        Algorithm::EdDSA,
    ] {
        let key = KeyConfig {
            algorithm: Some(alg),
            ..KeyConfig::default()
        }
        .signing_key()
        .expect("a key");
        let issuer = Issuer::builder(
            IssuerConfig::new("https://auth.example.com")
                .with_client(ClientConfig::first_party("web")),
        )
        .signing_key(key)
        .build()
        .expect("an issuer");
        group.bench_function(alg.as_str(), |b| {
            b.iter(|| issuer.mint_access_token(&user, "web").expect("a token"));
        });
    }
    group.finish();
}

criterion_group!(benches, mint);
criterion_main!(benches);
