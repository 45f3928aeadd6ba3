//! Property and fuzz harnesses over what the relying party reads from the
//! browser and the provider: sealed cookies, the `Cookie` header, return
//! paths and the origin headers (the token endpoint's answers: in
//! `sources/token_endpoint.rs`, beside the private parser).
//!
//! Each harness runs a fixed number of cases from a fixed seed. To search
//! longer: `PROPTEST_CASES=100000 cargo test -p portcullis-oidc --lib fuzz_tests`;
//! `PORTCULLIS_FUZZ_REPORT=1` prints executions per second.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use url::Url;

use crate::origin::{comes_from, origin_of, same_origin_navigation};
use crate::redirect::{ascii_location, safe_return_path};
use crate::seal::{Sealer, find_cookie};

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

#[test]
fn sealed_cookies_open_to_what_was_sealed_and_nothing_else() {
    let sealer = Sealer::new(&[42u8; 32]).expect("sealer");
    let case = (
        prop::collection::vec(any::<u8>(), 0..200),
        "[a-zA-Z_-]{1,20}",
        any::<prop::sample::Index>(),
        any::<u8>(),
    );
    harness(
        "seal",
        3000,
        case,
        |(plain, name, at, byte): (Vec<u8>, String, prop::sample::Index, u8)| {
            let sealed = sealer.seal(&name, &plain).expect("sealed");
            prop_assert_eq!(sealer.open(&name, &sealed), Some(plain));
            let mut bytes = sealed.clone().into_bytes();
            let i = at.index(bytes.len());
            if bytes[i] != byte {
                bytes[i] = byte;
                let changed = String::from_utf8_lossy(&bytes).into_owned();
                prop_assert_eq!(sealer.open(&name, &changed), None);
            }
            prop_assert_eq!(sealer.open(&name, &sealed[..i]), None);
            prop_assert_eq!(sealer.open(&format!("{name}x"), &sealed), None);
            Ok(())
        },
    );
}

#[test]
fn sealed_cookie_text_from_the_browser_never_opens() {
    let sealer = Sealer::new(&[42u8; 32]).expect("sealer");
    let text = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..120).prop_map(|b| URL_SAFE_NO_PAD.encode(b)),
        any::<String>(),
    ];
    harness("seal-text", 3000, text, |text| {
        prop_assert_eq!(sealer.open("s", &text), None);
        Ok(())
    });
}

#[test]
fn cookie_headers_give_the_one_value_or_nothing() {
    let pair = (
        prop_oneof![Just("s"), Just("t"), Just(" s"), Just("s "), Just("S")],
        "[A-Za-z0-9_=\"-]{0,12}",
    );
    let header = prop_oneof![
        prop::collection::vec(pair, 0..5).prop_map(|pairs| {
            pairs
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        }),
        any::<String>(),
    ];
    harness("cookie-header", 5000, header, |header| {
        let found = find_cookie(Some(&header), "s");
        let named: Vec<&str> = header
            .split(';')
            .filter_map(|p| p.trim().split_once('='))
            .filter(|(n, _)| n.trim() == "s")
            .map(|(_, v)| v.trim().trim_matches('"'))
            .collect();
        match named.as_slice() {
            [one] => prop_assert_eq!(found, Some(*one)),
            _ => prop_assert_eq!(found, None),
        }
        Ok(())
    });
}

/// Return targets built from the pieces that make open redirects.
fn return_target() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("/"),
        Just("\\"),
        Just("//"),
        Just("%2f"),
        Just("%2F"),
        Just("%5c"),
        Just("%252f"),
        Just("%25"),
        Just("%"),
        Just("@"),
        Just(":"),
        Just("."),
        Just(".."),
        Just("?"),
        Just("#"),
        Just("\t"),
        Just("\n"),
        Just(" "),
        Just("%09"),
        Just("%0a"),
        Just("%20"),
        Just("https:"),
        Just("evil.example"),
        Just("a"),
        Just("\u{3002}"),
        Just("\u{ff0f}"),
        Just("\u{2215}"),
        Just("%e3%80%82"),
    ];
    prop_oneof![
        prop::collection::vec(piece, 0..8).prop_map(|p| p.concat()),
        "/[ -~]{0,30}",
        any::<String>(),
    ]
}

#[test]
fn return_paths_never_leave_the_origin() {
    let base = Url::parse("https://app.example").expect("base");
    let kept = AtomicUsize::new(0);
    harness("return-path", 10000, return_target(), |target| {
        let safe = safe_return_path(&target);
        prop_assert!(safe == target || safe == "/");
        if safe == target {
            kept.fetch_add(1, Ordering::Relaxed);
        }
        // What the browser receives is the ASCII form, in a Location header.
        for sent in [safe.to_owned(), ascii_location(safe)] {
            if let Ok(resolved) = base.join(&sent) {
                prop_assert_eq!(
                    resolved.origin(),
                    base.origin(),
                    "{:?} -> {}",
                    sent,
                    resolved
                );
            }
        }
        Ok(())
    });
    assert!(kept.into_inner() > 0, "some targets are kept");
}

const OWN: &str = "https://app.example.com";

/// Values for `Origin` and `Referer`: our origin in its spellings, look-alikes
/// and text.
fn origin_value() -> impl Strategy<Value = String> {
    let scheme = prop_oneof![
        Just("https://"),
        Just("http://"),
        Just("HTTPS://"),
        Just("")
    ];
    let host = prop_oneof![
        Just("app.example.com"),
        Just("APP.example.com"),
        Just("app.example.com."),
        Just("sub.app.example.com"),
        Just("app.example.com.evil"),
        Just("evil@app.example.com"),
        Just("app.example.com@evil"),
        Just("xn--pp-9ja.example.com"),
        Just("null"),
    ];
    let port = prop_oneof![Just(""), Just(":443"), Just(":8443"), Just(":")];
    let path = prop_oneof![
        Just(""),
        Just("/"),
        Just("/x?y#z"),
        Just("/https://app.example.com")
    ];
    prop_oneof![
        (scheme, host, port, path, prop_oneof![Just(""), Just(" ")])
            .prop_map(|(s, h, p, q, pad)| format!("{pad}{s}{h}{p}{q}{pad}")),
        any::<String>(),
    ]
}

#[test]
fn only_our_origin_passes_the_origin_checks() {
    let own = Url::parse(OWN).expect("own").origin();
    let site = prop::option::of(prop_oneof![
        Just("same-origin"),
        Just("SAME-ORIGIN "),
        Just("same-site"),
        Just("cross-site"),
        Just("none"),
        Just("")
    ]);
    let case = (
        site,
        prop::option::of(origin_value()),
        prop::option::of(origin_value()),
    );
    harness("origin", 8000, case, |(site, origin, referer)| {
        let mut headers: Vec<(&str, &str)> = Vec::new();
        if let Some(s) = site {
            headers.push(("sec-fetch-site", s));
        }
        if let Some(o) = &origin {
            headers.push(("origin", o));
        }
        if let Some(r) = &referer {
            headers.push(("referer", r));
        }
        let ours = |v: &str| Url::parse(v.trim()).is_ok_and(|u| u.origin() == own);
        let expected = match (site, &origin, &referer) {
            (Some(s), _, _) => s.trim().eq_ignore_ascii_case("same-origin"),
            (None, Some(o), _) => ours(o),
            (None, None, Some(r)) => ours(r),
            (None, None, None) => false,
        };
        prop_assert_eq!(comes_from(OWN, &headers[..]), expected);
        let navigation = match (site, &referer) {
            (Some(s), _) => {
                let s = s.trim();
                s.eq_ignore_ascii_case("same-origin") || s.eq_ignore_ascii_case("none")
            }
            (None, None) => true,
            (None, Some(r)) => ours(r),
        };
        prop_assert_eq!(same_origin_navigation(OWN, &headers[..]), navigation);
        if let Some(o) = &origin
            && let Some(serialized) = origin_of(o)
        {
            // A tuple origin serializes to something that parses back to itself.
            prop_assert_eq!(origin_of(&serialized), Some(serialized));
        }
        Ok(())
    });
}
