//! Where a browser request comes from: the same-origin rules that keep
//! another site from changing state with the user's session cookie
//! (cross-site request forgery) or from logging the user in or out.
//!
//! The session cookie is `SameSite=Lax`, which keeps it off cross-site
//! `POST`s but not off *same-site* ones: a sibling subdomain, or another
//! port on the same host, is the same site. So a state-changing request
//! authenticated by the cookie must also show that it comes from the
//! application's own origin (`base_url`), in this order:
//!
//! 1. `Sec-Fetch-Site`, when present, must be `same-origin`;
//! 2. else `Origin`, when present, must be `base_url`'s origin (`null` is refused);
//! 3. else `Referer`, when present, must be on `base_url`'s origin;
//! 4. else the request is refused.

use portcullis_core::HeaderLookup;
use url::Url;

/// Whether `method` is one that must not change state (`GET`, `HEAD`,
/// `OPTIONS`). Methods are case-sensitive: `get` is another method.
pub(crate) fn is_safe_method(method: &str) -> bool {
    matches!(method, "GET" | "HEAD" | "OPTIONS")
}

/// The origin (`scheme://host[:port]`, as browsers send it in `Origin`) of
/// an absolute URL; `None` for anything without one (`null`, `data:`, ...).
pub(crate) fn origin_of(url: &str) -> Option<String> {
    let origin = Url::parse(url.trim()).ok()?.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

/// Whether a state-changing request comes from `own` (an origin as
/// [`origin_of`] gives it), by the rules of this module.
pub(crate) fn comes_from<H: HeaderLookup + ?Sized>(own: &str, headers: &H) -> bool {
    if let Some(site) = headers.header("sec-fetch-site") {
        return site.trim().eq_ignore_ascii_case("same-origin");
    }
    if let Some(origin) = headers.header("origin") {
        return origin_of(origin).is_some_and(|o| o == own);
    }
    if let Some(referer) = headers.header("referer") {
        return origin_of(referer).is_some_and(|o| o == own);
    }
    false
}

/// Whether a navigation (a `GET` the user may have been sent to by a link)
/// was started on `own` or by the user (typed, bookmarked): `Sec-Fetch-Site`
/// `same-origin` or `none`; without it, no `Referer` or one on `own`.
pub(crate) fn same_origin_navigation<H: HeaderLookup + ?Sized>(own: &str, headers: &H) -> bool {
    if let Some(site) = headers.header("sec-fetch-site") {
        let site = site.trim();
        return site.eq_ignore_ascii_case("same-origin") || site.eq_ignore_ascii_case("none");
    }
    match headers.header("referer") {
        None => true,
        Some(referer) => origin_of(referer).is_some_and(|o| o == own),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: &str = "https://app.example.com";

    fn check(headers: &[(&str, &str)]) -> bool {
        comes_from(OWN, headers)
    }

    fn navigation(headers: &[(&str, &str)]) -> bool {
        same_origin_navigation(OWN, headers)
    }

    #[test]
    fn state_changing_requests_need_a_same_origin_signal() {
        assert!(check(&[("sec-fetch-site", "same-origin")]));
        assert!(!check(&[("sec-fetch-site", "same-site")]));
        assert!(!check(&[("sec-fetch-site", "cross-site")]));
        assert!(!check(&[("sec-fetch-site", "none")]));
        // Sec-Fetch-Site decides when present, whatever Origin says.
        assert!(!check(&[("sec-fetch-site", "same-site"), ("origin", OWN)]));
        assert!(check(&[("origin", OWN)]));
        assert!(check(&[("origin", "https://app.example.com:443")]));
        assert!(!check(&[("origin", "https://sub.app.example.com")]));
        assert!(!check(&[("origin", "http://app.example.com")]));
        assert!(!check(&[("origin", "null")]));
        assert!(!check(&[
            ("origin", "null"),
            ("referer", "https://app.example.com/x")
        ]));
        assert!(check(&[("referer", "https://app.example.com/page?x=1")]));
        assert!(!check(&[(
            "referer",
            "https://evil.example/https://app.example.com/"
        )]));
        assert!(!check(&[]));
    }

    #[test]
    fn navigations_may_come_from_the_user_or_the_site() {
        assert!(navigation(&[]));
        assert!(navigation(&[("sec-fetch-site", "none")]));
        assert!(navigation(&[("sec-fetch-site", "same-origin")]));
        assert!(!navigation(&[("sec-fetch-site", "same-site")]));
        assert!(!navigation(&[("sec-fetch-site", "cross-site")]));
        assert!(navigation(&[("referer", "https://app.example.com/")]));
        assert!(!navigation(&[("referer", "https://evil.example/")]));
    }

    #[test]
    fn methods() {
        for m in ["GET", "HEAD", "OPTIONS"] {
            assert!(is_safe_method(m));
        }
        for m in ["POST", "PUT", "PATCH", "DELETE", "get", "PROPFIND"] {
            assert!(!is_safe_method(m));
        }
    }
}
