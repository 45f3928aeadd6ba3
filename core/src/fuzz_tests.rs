//! Property and fuzz harnesses over the parsers that take outside input.
//!
//! Each harness runs a fixed number of cases from a fixed seed, so a run is
//! reproducible and takes seconds. To search longer on a developer machine:
//! `PROPTEST_CASES=100000 cargo test -p portcullis-core --lib fuzz_tests`;
//! `PORTCULLIS_FUZZ_REPORT=1` prints each harness's cases and executions per
//! second.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{Map, Value, json};

use crate::alg::Algorithm;
use crate::config::{self, Format, IssuerConfig, StaticKey, VerifierConfig};
use crate::credentials::{CredentialsConfig, extract};
use crate::jws::{self, b64_decode, b64_encode};
use crate::keys::{KeySet, VerifyingKey};
use crate::mint::SigningKey;
use crate::verifier::TokenVerifier;

/// Runs `test` over `cases` values of `strategy` (or `PROPTEST_CASES`), from a fixed seed.
pub(crate) fn harness<S: Strategy>(
    name: &str,
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(cases);
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let start = Instant::now();
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{name}: {e}");
    }
    if std::env::var_os("PORTCULLIS_FUZZ_REPORT").is_some() {
        let secs = start.elapsed().as_secs_f64();
        #[allow(clippy::print_stderr)]
        {
            eprintln!(
                "{name}: {cases} cases in {secs:.2} s, {:.0}/s",
                f64::from(cases) / secs
            );
        }
    }
}

/// Short JSON values, objects nested a little.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[a-z0-9+/=._ -]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z]{1,5}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn json_object() -> impl Strategy<Value = Value> {
    prop::collection::btree_map("[a-z]{1,5}", json_value(), 0..4)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

fn header() -> impl Strategy<Value = Map<String, Value>> {
    let alg = prop_oneof![
        Just("RS256"),
        Just("ES256"),
        Just("HS256"),
        Just("EdDSA"),
        Just("none"),
        Just("rs256"),
        Just(""),
    ];
    (
        alg,
        prop::option::of("[a-z0-9-]{0,8}"),
        prop::option::of(prop_oneof![Just("JWT"), Just("at+jwt"), Just("dpop+jwt")]),
        prop::collection::btree_map(
            prop_oneof![
                Just("jku".to_owned()),
                Just("crit".to_owned()),
                Just("b64".to_owned()),
                "[a-z]{1,4}"
            ],
            json_value(),
            0..2,
        ),
    )
        .prop_map(|(alg, kid, typ, extra)| {
            let mut h: Map<String, Value> = extra.into_iter().collect();
            h.insert("alg".into(), alg.into());
            if let Some(kid) = kid {
                h.insert("kid".into(), kid.into());
            }
            if let Some(typ) = typ {
                h.insert("typ".into(), typ.into());
            }
            h
        })
}

/// Compact JWS-like strings: well-formed ones, ones with one character
/// changed, and raw text over the base64url alphabet and its neighbours.
fn formed_token() -> impl Strategy<Value = String> {
    (
        header(),
        prop_oneof![3 => json_object(), 1 => json_value()],
        prop::collection::vec(any::<u8>(), 0..80),
    )
        .prop_map(|(h, payload, sig)| {
            let h = serde_json::to_vec(&h).expect("json");
            let p = serde_json::to_vec(&payload).expect("json");
            format!("{}.{}.{}", b64_encode(&h), b64_encode(&p), b64_encode(&sig))
        })
}

fn token_text() -> impl Strategy<Value = String> {
    let mutated =
        (formed_token(), any::<prop::sample::Index>(), any::<char>()).prop_map(|(t, at, c)| {
            let mut chars: Vec<char> = t.chars().collect();
            let i = at.index(chars.len());
            chars[i] = c;
            chars.into_iter().collect()
        });
    prop_oneof![
        formed_token(),
        mutated,
        "[A-Za-z0-9_=+/. -]{0,120}",
        any::<String>()
    ]
}

#[test]
fn jws_parse_reencodes_to_the_same_bytes() {
    let parsed_ok = AtomicUsize::new(0);
    harness("jws", 4000, token_text(), |token| {
        if let Ok(parsed) = jws::parse(&token) {
            parsed_ok.fetch_add(1, Ordering::Relaxed);
            let signing_input = std::str::from_utf8(parsed.signing_input).expect("utf-8");
            let again = format!("{signing_input}.{}", b64_encode(&parsed.signature));
            prop_assert_eq!(&again, &token);
            let (h, p) = signing_input.split_once('.').expect("two segments");
            for seg in [h, p] {
                let bytes = b64_decode(seg).expect("decodes");
                prop_assert_eq!(b64_encode(&bytes), seg);
            }
            let header = jws::parse_object(&b64_decode(h).expect("decodes")).expect("object");
            let alg = parsed.alg.to_string();
            prop_assert_eq!(
                header.get("alg").and_then(Value::as_str),
                Some(alg.as_str())
            );
        }
        Ok(())
    });
    assert!(
        parsed_ok.into_inner() > 0,
        "the harness reaches the parser's success path"
    );
}

/// JWK-like objects: each key type with fields of the right name and random
/// content, real keys' JWKs with one field replaced, and random objects.
fn jwk() -> impl Strategy<Value = Value> {
    let b64 = prop::collection::vec(any::<u8>(), 0..300).prop_map(|b| Value::from(b64_encode(&b)));
    let field = prop_oneof![b64, json_value()];
    let kty = prop_oneof![
        Just("RSA"),
        Just("EC"),
        Just("OKP"),
        Just("oct"),
        Just("rsa")
    ];
    let crv = prop_oneof![
        Just("P-256"),
        Just("P-384"),
        Just("Ed25519"),
        Just("X25519")
    ];
    let shaped = (
        kty,
        crv,
        field.clone(),
        field.clone(),
        field,
        prop::option::of(prop_oneof![Just("sig"), Just("enc")]),
        prop::option::of(prop_oneof![Just("RS256"), Just("ES256"), Just("XX")]),
    )
        .prop_map(|(kty, crv, a, b, c, use_, alg)| {
            let mut o = json!({"kty": kty, "crv": crv, "n": a, "x": &b, "e": c, "y": &b});
            if let Some(u) = use_ {
                o["use"] = u.into();
            }
            if let Some(a) = alg {
                o["alg"] = a.into();
            }
            o
        });
    let real = (
        prop::sample::select(real_jwks()),
        prop::sample::select(vec!["n", "e", "x", "y", "crv", "kty", "kid", "alg"]),
        json_value(),
    )
        .prop_map(|(mut k, name, v)| {
            k[name] = v;
            k
        });
    prop_oneof![shaped, real, json_value()]
}

fn real_jwks() -> Vec<Value> {
    use std::sync::OnceLock;
    static KEYS: OnceLock<Vec<Value>> = OnceLock::new();
    KEYS.get_or_init(|| {
        [
            Algorithm::RS256,
            Algorithm::ES256,
            Algorithm::ES384,
            Algorithm::EdDSA,
        ]
        .into_iter()
        .map(|alg| {
            SigningKey::generate(alg, "k")
                .expect("key")
                .public_jwk()
                .expect("public")
        })
        .collect()
    })
    .clone()
}

#[test]
fn jwks_documents_load_only_what_fits() {
    let allowed = [
        Algorithm::RS256,
        Algorithm::PS256,
        Algorithm::ES256,
        Algorithm::EdDSA,
    ];
    let docs = prop_oneof![
        prop::collection::vec(jwk(), 0..4).prop_map(|keys| json!({ "keys": keys })),
        json_value(),
    ];
    let loaded = AtomicUsize::new(0);
    harness("jwks", 3000, docs, |doc| {
        let entries = doc.get("keys").and_then(Value::as_array).map(Vec::len);
        match KeySet::from_jwks(&doc, &allowed) {
            Ok((set, skipped)) => {
                loaded.fetch_add(set.len(), Ordering::Relaxed);
                prop_assert_eq!(Some(set.len() + skipped.len()), entries);
                for key in set.keys() {
                    for alg in key.algorithms() {
                        prop_assert!(allowed.contains(&alg));
                        prop_assert_eq!(alg.family(), key.family());
                    }
                }
            }
            Err(_) => prop_assert_eq!(entries, None),
        }
        Ok(())
    });
    assert!(loaded.into_inner() > 0, "some keys load");
}

#[test]
fn pem_keys_parse_or_refuse() {
    let der = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..600),
        (
            prop::sample::select(real_pems()),
            any::<prop::sample::Index>(),
            any::<u8>()
        )
            .prop_map(|(der, at, b)| {
                let mut der = der;
                let i = at.index(der.len());
                der[i] = b;
                der
            }),
        (
            prop::sample::select(real_pems()),
            any::<prop::sample::Index>()
        )
            .prop_map(|(der, at)| der[..at.index(der.len())].to_vec()),
    ];
    let pem = prop_oneof![
        der.prop_map(|d| {
            use base64::Engine;
            let body = base64::engine::general_purpose::STANDARD.encode(d);
            format!("-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n")
        }),
        "(-----BEGIN [A-Z ]{0,12}-----\n)?[A-Za-z0-9+/=\n ]{0,200}(-----END PUBLIC KEY-----)?",
    ];
    let loaded = AtomicUsize::new(0);
    harness("pem", 3000, pem, |pem| {
        for algs in [
            &[Algorithm::RS256][..],
            &[Algorithm::ES256],
            &[Algorithm::EdDSA],
        ] {
            if let Ok(key) = VerifyingKey::from_pem(None, &pem, algs) {
                loaded.fetch_add(1, Ordering::Relaxed);
                prop_assert_eq!(key.algorithms(), algs.to_vec());
            }
        }
        Ok(())
    });
    assert!(loaded.into_inner() > 0, "some keys load");
}

fn real_pems() -> Vec<Vec<u8>> {
    [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA]
        .into_iter()
        .map(|alg| {
            let pem = SigningKey::generate(alg, "k")
                .expect("key")
                .public_pem()
                .expect("pem");
            crate::keys::pem_to_der(&pem).expect("der")
        })
        .collect()
}

#[test]
fn authorization_headers_yield_a_clean_token_or_nothing() {
    let value = prop_oneof![
        "(Bearer|bearer|BEARER|Basic|Bearer  |)[ \t]{0,2}[A-Za-z0-9._~+/=-]{0,40}[ \t]{0,2}",
        "Bearer [ -~]{0,40}",
        any::<String>(),
    ];
    let custom = prop::bool::ANY;
    let found_some = AtomicUsize::new(0);
    harness("credentials", 5000, (value, custom), |(value, custom)| {
        let cfg = if custom {
            CredentialsConfig::default()
                .with_token_header("x-forwarded-access-token")
                .with_id_token_header("x-id")
        } else {
            CredentialsConfig::default()
        };
        let name = if custom {
            "x-forwarded-access-token"
        } else {
            "authorization"
        };
        let headers = [(name, value.as_str()), ("x-id", value.as_str())];
        if let Ok(Some(found)) = extract(&cfg, &headers[..]) {
            found_some.fetch_add(1, Ordering::Relaxed);
            let token = found.access_token.expose();
            prop_assert!(!token.is_empty());
            prop_assert!(value.contains(token));
            prop_assert_eq!(token, token.trim());
            if !custom {
                prop_assert!(!token.contains(char::is_whitespace));
                prop_assert_eq!(
                    extract(
                        &cfg,
                        &[("authorization", format!("Bearer {token}").as_str())][..]
                    )
                    .expect("a clean token")
                    .map(|c| c.access_token),
                    Some(found.access_token.clone())
                );
            }
        }
        Ok(())
    });
    assert!(found_some.into_inner() > 0, "some headers carry a token");
}

const ISSUER: &str = "https://issuer.example";
const SECRET: &[u8] = b"a fuzzing secret of at least thirty-two bytes";

/// Claims around the ones the verifier checks, signed, sometimes altered.
fn signed_token() -> impl Strategy<Value = String> {
    let claims = (
        prop_oneof![
            Just(json!(ISSUER)),
            Just(json!("https://other.example")),
            json_value()
        ],
        prop_oneof![Just(json!("api")), Just(json!(["x", "api"])), json_value()],
        prop_oneof![
            Just(json!(4_102_444_800_u64)),
            Just(json!(1_000)),
            json_value()
        ],
        prop::option::of(prop_oneof![Just(json!("alice")), json_value()]),
        prop::option::of(json_value()),
    )
        .prop_map(|(iss, aud, exp, sub, scope)| {
            let mut c = json!({"iss": iss, "aud": aud, "exp": exp});
            if let Some(sub) = sub {
                c["sub"] = sub;
            }
            if let Some(scope) = scope {
                c["scope"] = scope;
            }
            c
        });
    let key = SigningKey::from_secret(Algorithm::HS256, "k", SECRET).expect("key");
    (
        claims,
        prop::option::of((any::<prop::sample::Index>(), 0u8..64)),
    )
        .prop_map(move |(claims, change)| {
            let token = key.sign(&claims, None).expect("signed");
            match change {
                None => token,
                Some((at, c)) => {
                    let mut b = token.into_bytes();
                    let i = at.index(b.len());
                    b[i] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                        [usize::from(c)];
                    String::from_utf8(b).expect("ascii")
                }
            }
        })
}

#[test]
fn the_cache_answers_as_the_first_verification_did() {
    let issuer = IssuerConfig::new(ISSUER)
        .with_hmac_secret(String::from_utf8(SECRET.to_vec()).expect("utf-8"))
        .with_algorithms([Algorithm::HS256])
        .with_audience("api");
    let verifier =
        TokenVerifier::new(VerifierConfig::new([(ISSUER.to_owned(), issuer)])).expect("verifier");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let accepted = AtomicUsize::new(0);
    harness("verifier-cache", 2000, signed_token(), |token| {
        let first = rt.block_on(verifier.verify(&token));
        if first.is_ok() {
            accepted.fetch_add(1, Ordering::Relaxed);
        }
        let second = rt.block_on(verifier.verify(&token));
        match (first, second) {
            (Ok(a), Ok(b)) => {
                prop_assert_eq!(a.user_id(), b.user_id());
                prop_assert_eq!(a.claims(), b.claims());
                prop_assert_eq!(a.scopes(), b.scopes());
                prop_assert_eq!(a.expires_at(), b.expires_at());
            }
            (Err(a), Err(b)) => {
                prop_assert_eq!(a.kind(), b.kind());
                prop_assert_eq!(a.rejection(), b.rejection());
            }
            (a, b) => prop_assert!(false, "first {:?}, then {:?}", a.is_ok(), b.is_ok()),
        }
        Ok(())
    });
    assert!(accepted.into_inner() > 0, "some tokens verify");
}

/// Verifier configurations of every shape the file format allows.
fn verifier_config() -> impl Strategy<Value = VerifierConfig> {
    let issuer = (
        prop::option::of("https://[a-z]{1,8}\\.example(/[a-z]{0,4})?"),
        prop::collection::vec("[a-z:/.-]{1,12}", 0..3),
        prop::option::of("[a-z0-9]{1,10}"),
        "[a-z_]{1,10}",
        any::<bool>(),
        prop::collection::vec("[a-z]{1,6}", 0..3),
        prop::option::of(0u64..1000),
        prop::sample::subsequence(Algorithm::ALL.to_vec(), 1..4),
        prop::option::of("[ -~]{32,40}"),
        prop::option::of("[A-Za-z0-9_-]{4,20}"),
    )
        .prop_map(
            |(iss, auds, client, uid, trust, required, leeway, algs, secret, kid)| {
                let mut c = IssuerConfig::new(iss.unwrap_or_else(|| "https://a.example".into()));
                for a in auds {
                    c = c.with_audience(a);
                }
                if let Some(id) = client {
                    c = c.with_client_id(id);
                }
                c = c
                    .with_user_id_claim(uid)
                    .with_trust_email_without_verified_claim(trust)
                    .with_algorithms(algs);
                for r in required {
                    c = c.with_required_claim(r);
                }
                c.leeway_secs = leeway;
                if let Some(s) = secret {
                    c = c.with_hmac_secret(s);
                }
                if let Some(kid) = kid {
                    c = c.with_key(StaticKey::jwk(
                        json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": "AAAA"}),
                    ));
                }
                c
            },
        );
    (
        prop::collection::btree_map("[a-z]{1,6}", issuer, 1..3),
        0u64..600,
        1usize..100_000,
        any::<bool>(),
    )
        .prop_map(|(issuers, leeway, max, plain)| {
            let mut c = VerifierConfig::new(issuers).with_danger_allow_plain_http(plain);
            c.leeway_secs = leeway;
            c.max_token_bytes = max;
            c
        })
}

#[test]
fn configurations_round_trip() {
    harness("config-roundtrip", 1500, verifier_config(), |cfg| {
        let as_json = serde_json::to_value(&cfg).expect("serializes");
        let yaml = serde_yaml_ng::to_string(&cfg).expect("yaml");
        let again: VerifierConfig =
            config::load_from_str(&yaml, Format::Yaml, &[]).expect("the YAML loads");
        prop_assert_eq!(&serde_json::to_value(&again).expect("serializes"), &as_json);
        let toml = toml::to_string(&cfg).expect("toml");
        let again: VerifierConfig =
            config::load_from_str(&toml, Format::Toml, &[]).expect("the TOML loads");
        prop_assert_eq!(&serde_json::to_value(&again).expect("serializes"), &as_json);
        Ok(())
    });
}

/// What loads, overrides included, loads again from its YAML to the same value.
fn round_trips(cfg: &VerifierConfig) -> Result<(), TestCaseError> {
    let fail = |e: &dyn std::fmt::Display| TestCaseError::fail(e.to_string());
    let as_json = serde_json::to_value(cfg).map_err(|e| fail(&e))?;
    let yaml = serde_yaml_ng::to_string(cfg).map_err(|e| fail(&e))?;
    let again: VerifierConfig = config::load_from_str(&yaml, Format::Yaml, &[])
        .map_err(|e| TestCaseError::fail(format!("{e}: {yaml}")))?;
    prop_assert_eq!(serde_json::to_value(&again).map_err(|e| fail(&e))?, as_json);
    Ok(())
}

#[test]
fn configuration_text_and_environment_never_panic() {
    let text = prop_oneof![
        "[a-z_:{}\\[\\]\"'=,.0-9 \n-]{0,120}",
        any::<String>(),
        verifier_config().prop_map(|c| serde_yaml_ng::to_string(&c).expect("yaml")),
    ];
    let key = prop_oneof![
        "(APP__|APP___|app__|X)[A-Za-z_]{0,20}",
        prop::sample::select(vec![
            "APP__LEEWAY_SECS",
            "APP__MAX_TOKEN_BYTES",
            "APP__DANGER_ALLOW_PLAIN_HTTP",
            "APP__ISSUERS__A__ISSUER",
            "APP__ISSUERS__A__AUDIENCES",
            "APP__ISSUERS__A__HMAC_SECRET",
            "APP__ISSUERS__A__LEEWAY_SECS",
            "APP__ISSUERS__A__ALGORITHMS",
            "APP__ISSUERS__A__USER_ID_CLAIM",
            "APP__ISSUERS__A__CLIENT_ID",
            "APP__ISSUERS__B__ISSUER",
        ])
        .prop_map(str::to_owned),
    ];
    let value = prop_oneof![
        "[ -~]{0,20}",
        json_value().prop_map(|v| v.to_string()),
        prop::sample::select(vec![
            "0",
            "1e3",
            "-1",
            "0x10",
            " 5",
            "true",
            "yes",
            "~",
            "null",
            "\"x\"",
            "[\"HS256\"]",
            "[\"api\",\"b\"]",
            "https://a.example",
            "01234567890123456789012345678901234567",
            "18446744073709551616",
        ])
        .prop_map(str::to_owned),
    ];
    let env = prop::collection::vec((key, value), 0..4);
    let loaded = AtomicUsize::new(0);
    harness(
        "config-text",
        3000,
        (text, env, any::<bool>()),
        |(text, env, yaml)| {
            let overrides = config::env_overrides("APP", env);
            for (path, _) in &overrides {
                prop_assert!(path.iter().all(|s| !s.is_empty() && s.to_lowercase() == *s));
            }
            let format = if yaml { Format::Yaml } else { Format::Toml };
            match config::load_from_str::<VerifierConfig>(&text, format, &overrides) {
                Err(e) => prop_assert!(!e.message().is_empty()),
                Ok(cfg) => {
                    loaded.fetch_add(1, Ordering::Relaxed);
                    round_trips(&cfg)?;
                }
            }
            if let Ok(cfg) = config::load_from_env::<VerifierConfig>(&overrides) {
                round_trips(&cfg)?;
            }
            Ok(())
        },
    );
    let loaded = loaded.into_inner();
    assert!(loaded > 0, "some configurations load");
    if std::env::var_os("PORTCULLIS_FUZZ_REPORT").is_some() {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("config-text: {loaded} configurations loaded");
        }
    }
}

/// Discovery documents: the fields portcullis reads, with values of every
/// kind (URLs over each scheme and host, other JSON types), and other text.
#[test]
fn discovery_documents_name_the_issuer_and_https_endpoints_or_are_refused() {
    use crate::discovery::{Discovery, DiscoveryError};
    const ISSUER: &str = "https://id.example.com";
    const FIELDS: [&str; 7] = [
        "jwks_uri",
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "end_session_endpoint",
        "revocation_endpoint",
        "device_authorization_endpoint",
    ];
    let url = prop_oneof![
        Just(json!("https://id.example.com/x")),
        Just(json!("http://id.example.com/x")),
        Just(json!("http://127.0.0.1:8080/x")),
        Just(json!("http://localhost/x")),
        Just(json!("https://u:p@id.example.com/x")),
        Just(json!("ftp://id.example.com/x")),
        Just(json!("/x")),
        Just(Value::Null),
        json_value(),
    ];
    let issuer = prop_oneof![
        4 => Just(json!(ISSUER)),
        1 => Just(json!("https://id.example.com/")),
        1 => Just(json!("https://evil.example")),
        1 => json_value(),
    ];
    let fields = prop::collection::vec(prop::option::of(url), FIELDS.len());
    let doc = (prop::option::of(issuer), fields, any::<bool>()).prop_map(|(iss, urls, flag)| {
        let mut o = Map::new();
        if let Some(iss) = iss {
            o.insert("issuer".to_owned(), iss);
        }
        for (name, v) in FIELDS.iter().zip(urls) {
            if let Some(v) = v {
                o.insert((*name).to_owned(), v);
            }
        }
        o.insert(
            "authorization_response_iss_parameter_supported".to_owned(),
            Value::Bool(flag),
        );
        Value::Object(o).to_string().into_bytes()
    });
    let body = prop_oneof![
        8 => doc,
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ];
    let accepted = AtomicUsize::new(0);
    let at = format!("{ISSUER}/.well-known/openid-configuration");
    harness(
        "discovery",
        4000,
        (body, any::<bool>()),
        |(body, allow_plain_http)| {
            let found = Discovery::new(&at)
                .danger_allow_plain_http(allow_plain_http)
                .parse(&body);
            let doc = serde_json::from_slice::<Value>(&body).ok();
            match found {
                Ok(m) => {
                    accepted.fetch_add(1, Ordering::Relaxed);
                    prop_assert_eq!(m.issuer(), ISSUER);
                    let doc = doc.expect("an accepted document is JSON");
                    for name in FIELDS {
                        let raw = doc.get(name).and_then(Value::as_str);
                        if let Some(raw) = raw {
                            prop_assert!(
                                config::check_provider_url(name, raw, allow_plain_http).is_ok(),
                                "{name}: {raw}"
                            );
                        }
                    }
                    let urls = [
                        m.jwks_uri(),
                        m.authorization_endpoint(),
                        m.token_endpoint(),
                        m.userinfo_endpoint(),
                        m.end_session_endpoint(),
                        m.revocation_endpoint(),
                        m.device_authorization_endpoint(),
                    ];
                    for (name, url) in FIELDS.iter().zip(urls) {
                        prop_assert_eq!(
                            url.is_some(),
                            doc.get(*name).is_some_and(|v| !v.is_null()),
                            "{}",
                            name
                        );
                    }
                }
                Err(DiscoveryError::OtherIssuer { found, .. }) => prop_assert_ne!(found, ISSUER),
                Err(
                    DiscoveryError::Malformed
                    | DiscoveryError::Missing { .. }
                    | DiscoveryError::Invalid { .. }
                    | DiscoveryError::RefusedUrl { .. },
                ) => {}
                Err(e) => prop_assert!(false, "parsing gave {e}"),
            }
            Ok(())
        },
    );
    assert!(accepted.into_inner() > 0, "some documents are accepted");
}
