//! Sealed cookies: AES-256-GCM under a key derived from the secret key, and
//! the `Cookie` / `Set-Cookie` text forms.
//!
//! A sealed value is `base64url(nonce ‖ ciphertext ‖ tag)`. The cookie's name
//! is the associated data, so a value sealed for one cookie (the login
//! transaction) cannot be replayed as another (the session).

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_core::Error;

/// The HKDF `info` of the cookie key; distinct from the token key's.
const KDF_INFO: &[u8] = b"portcullis session cookies v1";

/// Seals and opens cookie values.
pub(crate) struct Sealer {
    key: LessSafeKey,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    /// A sealer whose key is HKDF-SHA256(`secret`, info "portcullis session cookies v1").
    pub(crate) fn new(secret: &[u8]) -> Result<Self, Error> {
        let fail = || Error::config("the session cookie key could not be derived");
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &[]).extract(secret);
        let info = [KDF_INFO];
        let okm = prk.expand(&info, &AES_256_GCM).map_err(|_| fail())?;
        let mut bytes = [0u8; 32];
        okm.fill(&mut bytes).map_err(|_| fail())?;
        let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| fail())?;
        Ok(Self {
            key: LessSafeKey::new(key),
        })
    }

    /// Encrypts `plain` for cookie `name`.
    pub(crate) fn seal(&self, name: &str, plain: &[u8]) -> Result<String, Error> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce)
            .map_err(|_| Error::unavailable("the system random generator failed"))?;
        let mut buf = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(name.as_bytes()),
                &mut buf,
            )
            .map_err(|_| Error::unavailable("sealing a cookie failed"))?;
        let mut out = Vec::with_capacity(NONCE_LEN + buf.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    /// Decrypts a value sealed for cookie `name`; `None` when it was not
    /// sealed by this key for this name, or was altered.
    pub(crate) fn open(&self, name: &str, sealed: &str) -> Option<Vec<u8>> {
        let raw = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        if raw.len() < NONCE_LEN {
            return None;
        }
        let (nonce, rest) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buf = rest.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(name.as_bytes()), &mut buf)
            .ok()?;
        Some(plain.to_vec())
    }
}

/// A random value of `n` bytes, base64url.
pub(crate) fn random_token(n: usize) -> Result<String, Error> {
    let mut bytes = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| Error::unavailable("the system random generator failed"))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The value of cookie `name` in a `Cookie` request header, if present once.
///
/// A name that appears twice (a cookie injected from a sibling subdomain
/// beside ours, say) is treated as absent: which one is ours is unknowable.
pub(crate) fn find_cookie<'a>(header: Option<&'a str>, name: &str) -> Option<&'a str> {
    let mut found = None;
    for pair in header?.split(';') {
        let pair = pair.trim();
        if let Some((n, v)) = pair.split_once('=')
            && n.trim() == name
        {
            if found.is_some() {
                return None;
            }
            found = Some(v.trim().trim_matches('"'));
        }
    }
    found
}

/// The attributes of the cookies portcullis sets.
#[derive(Debug, Clone)]
pub(crate) struct CookieAttrs {
    /// `Secure` (and the `__Host-` prefix): the site is served over HTTPS.
    pub(crate) secure: bool,
}

impl CookieAttrs {
    /// The name of cookie `base`: `__Host-{base}` over HTTPS, `{base}` otherwise.
    pub(crate) fn name(&self, base: &str) -> String {
        if self.secure {
            format!("__Host-{base}")
        } else {
            base.to_owned()
        }
    }

    /// `Set-Cookie` for `name=value`, living `max_age` seconds.
    pub(crate) fn set(&self, name: &str, value: &str, max_age: u64) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!("{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}")
    }

    /// `Set-Cookie` that removes `name`.
    pub(crate) fn clear(&self, name: &str) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!(
            "{name}=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax{secure}"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trip_and_binding() {
        let s = Sealer::new(&[7u8; 32]).unwrap();
        let sealed = s.seal("a", b"hello").unwrap();
        assert_eq!(s.open("a", &sealed).as_deref(), Some(&b"hello"[..]));
        assert_eq!(s.open("b", &sealed), None, "bound to the cookie name");
        let other = Sealer::new(&[8u8; 32]).unwrap();
        assert_eq!(other.open("a", &sealed), None, "bound to the key");
        let mut bytes = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(s.open("a", &URL_SAFE_NO_PAD.encode(bytes)), None);
        assert_eq!(s.open("a", "%%%"), None);
        assert_eq!(s.open("a", ""), None);
    }

    #[test]
    fn cookie_lookup() {
        let h = Some("a=1; portcullis-session=xyz; b=2");
        assert_eq!(find_cookie(h, "portcullis-session"), Some("xyz"));
        assert_eq!(find_cookie(h, "c"), None);
        assert_eq!(
            find_cookie(Some("s=1; s=2"), "s"),
            None,
            "duplicates are ambiguous"
        );
        assert_eq!(find_cookie(None, "s"), None);
    }

    #[test]
    fn cookie_attributes() {
        let https = CookieAttrs { secure: true };
        assert_eq!(
            https.name("portcullis-session"),
            "__Host-portcullis-session"
        );
        let c = https.set("__Host-s", "v", 60);
        assert!(c.contains("Secure") && c.contains("HttpOnly") && c.contains("SameSite=Lax"));
        assert!(c.contains("Path=/"));
        let http = CookieAttrs { secure: false };
        assert!(!http.set("s", "v", 60).contains("Secure"));
        assert!(http.clear("s").contains("Max-Age=0"));
    }
}
