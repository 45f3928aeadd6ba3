//! Return targets after login: same-origin relative paths only.
//!
//! A target is accepted only when it is a path that a browser resolves on
//! this origin whatever it does with it: it starts with one `/` followed by
//! something other than `/` or `\`; its path part holds no backslash and no
//! `//`; it holds no control character, and no whitespace unless
//! percent-encoded. The same holds after percent-decoding (repeated, so
//! double encodings are seen through), where only encoded spaces may
//! appear. Everything else falls back to `/`. Being stricter than needed costs a user a trip to `/`;
//! being laxer would be an open redirect.

/// The fallback target.
pub const DEFAULT_RETURN: &str = "/";

/// Longest accepted target, in bytes.
const MAX_LEN: usize = 2048;

/// `target` when it is a safe same-origin relative path, else `/`.
///
/// ```
/// use portcullis_oidc::safe_return_path;
/// assert_eq!(safe_return_path("/shout?message=hi"), "/shout?message=hi");
/// assert_eq!(safe_return_path("//evil.example"), "/");
/// assert_eq!(safe_return_path("/\\evil.example"), "/");
/// assert_eq!(safe_return_path("https://evil.example/"), "/");
/// assert_eq!(safe_return_path("/%2F%2Fevil.example"), "/");
/// ```
pub fn safe_return_path(target: &str) -> &str {
    if is_safe(target) {
        target
    } else {
        DEFAULT_RETURN
    }
}

/// `target` with every non-ASCII byte percent-encoded, so that it can go
/// out in a `Location` header (which is ASCII) and mean the same path.
pub(crate) fn ascii_location(target: &str) -> String {
    let mut out = String::with_capacity(target.len());
    for b in target.bytes() {
        if b.is_ascii() {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn is_safe(target: &str) -> bool {
    if target.is_empty() || target.len() > MAX_LEN {
        return false;
    }
    let mut current = target.to_owned();
    // Each round decodes one level of percent-encoding; a target that still
    // changes after a few rounds is refused rather than followed further.
    for round in 0..4 {
        if !shape_ok(&current, round == 0) {
            return false;
        }
        match percent_decode(&current) {
            Some(decoded) if decoded == current => return true,
            Some(decoded) => current = decoded,
            None => return false,
        }
    }
    false
}

/// The shape checks on one decoding level (`raw`: as received).
fn shape_ok(s: &str, raw: bool) -> bool {
    let bytes = s.as_bytes();
    if bytes.first() != Some(&b'/') {
        return false;
    }
    if matches!(bytes.get(1), Some(b'/') | Some(b'\\')) {
        return false;
    }
    let path = s.split(['?', '#']).next().unwrap_or(s);
    if path.contains("//") || path.contains('\\') {
        return false;
    }
    if s.chars().any(char::is_control) {
        return false;
    }
    // Raw whitespace is refused (browsers strip or mangle it); a decoded
    // space from `%20` is ordinary text.
    if raw {
        !s.chars().any(char::is_whitespace)
    } else {
        !s.chars().any(|c| c.is_whitespace() && c != ' ')
    }
}

/// Decodes `%XX` sequences; `None` for a malformed escape or bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hi = (hex[0] as char).to_digit(16)?;
            let lo = (hex[1] as char).to_digit(16)?;
            out.push(u8::try_from(hi * 16 + lo).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_paths_pass() {
        for ok in [
            "/",
            "/a",
            "/a/b?c=d&e=%20f",
            "/shout?message=hello%20world",
            "/a#frag",
        ] {
            assert_eq!(safe_return_path(ok), ok, "{ok}");
        }
    }

    #[test]
    fn locations_are_ascii() {
        assert_eq!(ascii_location("/caf\u{e9}?q=1"), "/caf%C3%A9?q=1");
        assert_eq!(ascii_location("/plain"), "/plain");
    }

    #[test]
    fn malformed_escapes_fall_back() {
        assert_eq!(safe_return_path("/a%zz"), "/");
        assert_eq!(safe_return_path("/a%"), "/");
        assert_eq!(safe_return_path("/a%ff"), "/");
    }
}
