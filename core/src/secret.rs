//! Values that must never be printed: tokens, client secrets, signing keys.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A string secret whose `Debug` and `Display` never show the value.
///
/// Serializes as its value (so configuration round-trips), deserializes from a string.
///
/// ```
/// use portcullis_core::Secret;
/// let s = Secret::new("hunter2-hunter2-hunter2-hunter2!");
/// assert_eq!(format!("{s:?}"), "Secret([redacted])");
/// assert_eq!(s.expose(), "hunter2-hunter2-hunter2-hunter2!");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        Self(value.into())
    }

    /// The secret value. Call this only where the value is used, never to log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The length of the value in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Secret {
    /// Any string, except one that is visibly encrypted
    /// ([`is_sealed`](crate::sealed::is_sealed)): such a value is never a
    /// secret in itself, and reaching here means nothing decrypted it.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        if crate::sealed::is_sealed(&value) {
            return Err(serde::de::Error::custom(
                crate::sealed::sealed_secret_message(),
            ));
        }
        Ok(Secret::new(value))
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret::new(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret::new(value)
    }
}

/// The fewest bytes a secret key may have: 256 bits when the key is random
/// bytes, and enough room for a passphrase of 128 bits or more.
pub const MIN_SECRET_KEY_BYTES: usize = 32;

/// Secret keys printed in portcullis' own documentation and examples. Anyone
/// who read them could forge tokens and session cookies under them, so they
/// are refused wherever a secret key is configured. (A tidy test keeps this
/// list in step with the repository's documents.)
pub const PUBLISHED_SECRET_KEYS: &[&str] = &[
    "0123456789abcdef0123456789abcdef",
    "change-me-to-32-random-bytes-or-more!!",
    "from the file, 32 bytes or more....",
    "hunter2-hunter2-hunter2-hunter2!",
    "an environment secret of 32+ bytes",
];

/// Words that mark a value as a placeholder to be replaced, never a secret.
const PLACEHOLDER_MARKERS: &[&str] = &[
    "change-me",
    "change_me",
    "changeme",
    "replace-me",
    "replace_me",
    "replaceme",
    "placeholder",
    "your-secret",
    "your_secret",
    "yoursecret",
    "your-client-secret",
    "your_client_secret",
    "client-secret-here",
];

/// Whether a configured secret is visibly a placeholder left from a
/// template: `<CLIENT_SECRET>`, `change-me`, `your-secret`, ...
///
/// ```
/// use portcullis_core::secret::is_placeholder;
/// assert!(is_placeholder("<CLIENT_SECRET>"));
/// assert!(is_placeholder("please-change-me"));
/// assert!(!is_placeholder("s3cr3t-from-the-console"));
/// ```
pub fn is_placeholder(value: &str) -> bool {
    let v = value.trim();
    let lower = v.to_ascii_lowercase();
    (v.starts_with('<') && v.ends_with('>'))
        || PLACEHOLDER_MARKERS.iter().any(|m| lower.contains(m))
}

/// Checks a secret key (the key that signs portcullis tokens and seals
/// session cookies) given under the configuration key `key`.
///
/// A key must be long enough to hold 128 bits of entropy in any text
/// encoding people use for random keys (base64, hex, `token_urlsafe`): how
/// much entropy a given human-chosen string holds cannot be measured, since
/// "guessable" depends on how the string was made, not on how it looks. So
/// the rule is a length, not an estimate: easy-oauth's 20-character test
/// keys are refused, and the error says how to generate one that is not.
/// Estimates serve only to warn about keys that are long but visibly weak.
///
/// Refused, with an error of kind `Config` that names `key` and never the value:
/// - a value that is visibly encrypted (`~CRYPT~`, `~SEALED-`): it was not
///   decrypted, and is never used as a key as it is;
/// - fewer than [`MIN_SECRET_KEY_BYTES`] bytes;
/// - a value printed in portcullis' documentation or examples
///   ([`PUBLISHED_SECRET_KEYS`]), or one that says it is a placeholder
///   (`change-me`, `<secret ...>`, ...).
///
/// A value that is long enough but visibly weak (few distinct characters,
/// a short pattern repeated, under about 96 bits by a character-frequency
/// estimate) is accepted with a `tracing` warning naming `key`.
///
/// ```
/// use portcullis_core::secret::{Secret, check_secret_key};
/// assert!(check_secret_key("secret_key", &Secret::new("too short")).is_err());
/// assert!(check_secret_key("secret_key", &Secret::new("change-me-to-32-random-bytes-or-more!!")).is_err());
/// // A key of your own: 48 random bytes, as `openssl rand -base64 48` gives.
/// use base64::Engine as _;
/// let mut bytes = [0u8; 48];
/// aws_lc_rs::rand::fill(&mut bytes).unwrap();
/// let own = base64::engine::general_purpose::STANDARD.encode(bytes);
/// assert!(check_secret_key("secret_key", &Secret::new(own)).is_ok());
/// ```
///
/// # Errors
///
/// A configuration error as described above.
pub fn check_secret_key(key: &str, secret: &Secret) -> Result<(), crate::Error> {
    let value = secret.expose();
    if crate::sealed::is_sealed(value) {
        return Err(crate::Error::config(format!(
            "configuration key `{key}`: {}",
            crate::sealed::sealed_secret_message()
        )));
    }
    if value.len() < MIN_SECRET_KEY_BYTES {
        return Err(crate::Error::config(format!(
            "configuration key `{key}`: the key has {} bytes and at least \
             {MIN_SECRET_KEY_BYTES} are required (easy-oauth accepted keys of any length). Generate a \
             new one with `openssl rand -base64 48` (or `python3 -c 'import secrets; \
             print(secrets.token_urlsafe(48))'`) and set it as `{key}` or in \
             PORTCULLIS__SECRET_KEY; users then log in again, and tokens signed with the old \
             key stop working",
            value.len()
        )));
    }
    let trimmed = value.trim();
    if PUBLISHED_SECRET_KEYS.contains(&trimmed) {
        return Err(crate::Error::config(format!(
            "configuration key `{key}`: this value is printed in portcullis' documentation \
             and is known to everyone; generate your own (e.g. `openssl rand -base64 48`)"
        )));
    }
    if is_placeholder(trimmed) {
        return Err(crate::Error::config(format!(
            "configuration key `{key}`: the value is a placeholder; \
             replace it with a random secret (e.g. `openssl rand -base64 48`)"
        )));
    }
    if let Some(why) = weakness(value.as_bytes()) {
        tracing::warn!(
            key,
            reason = why,
            "the secret key looks weak; use a random value (e.g. `openssl rand -base64 48`)"
        );
    }
    Ok(())
}

/// Why `bytes` looks like a weak secret, if it does.
fn weakness(bytes: &[u8]) -> Option<&'static str> {
    let mut counts = [0u32; 256];
    for b in bytes {
        counts[usize::from(*b)] += 1;
    }
    let distinct = counts.iter().filter(|c| **c > 0).count();
    if distinct < 8 {
        return Some("it uses fewer than 8 distinct characters");
    }
    let len = bytes.len();
    if (1..=len / 2).any(|p| len.is_multiple_of(p) && bytes.chunks(p).all(|c| c == &bytes[..p])) {
        return Some("it repeats a shorter pattern");
    }
    #[allow(clippy::cast_precision_loss, reason = "lengths are small")]
    let total = len as f64;
    let per_char: f64 = counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = f64::from(*c) / total;
            -p * p.log2()
        })
        .sum();
    if per_char * total < 96.0 {
        return Some("a character-frequency estimate gives it under 96 bits");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_published_and_placeholder_keys_are_refused_without_echo() {
        for bad in [
            "short",
            "0123456789abcdef0123456789abcdef",
            "  change-me-to-32-random-bytes-or-more!!  ",
            "please-CHANGE-ME-before-production-use-ok",
            "<secret key of 32 bytes or more, random>",
        ] {
            let e = check_secret_key("secret_key", &Secret::new(bad)).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::Config, "{bad}");
            assert!(e.message().contains("`secret_key`"), "{e}");
            assert!(
                !e.message().contains(bad.trim()),
                "the value is echoed: {e}"
            );
        }
    }

    #[test]
    fn a_short_key_from_easy_oauth_is_refused_with_what_to_do() {
        // 20 characters, as in easy-oauth's test configurations: 120 bits at
        // best even if every character were random over base64's alphabet.
        let e = check_secret_key("secret_key", &Secret::new("aB3dE5gH7jK9mN1pQ2rS")).unwrap_err();
        let m = e.message();
        assert!(
            m.starts_with("configuration key `secret_key`: the key has 20 bytes"),
            "{m}"
        );
        assert!(m.contains("openssl rand -base64 48"), "{m}");
        assert!(m.contains("secrets.token_urlsafe(48)"), "{m}");
        assert!(m.contains("PORTCULLIS__SECRET_KEY"), "{m}");
        assert!(!m.contains("aB3dE5gH7jK9mN1pQ2rS"), "{m}");
        // What the message tells them to run gives a key that is accepted:
        // 48 random bytes are 64 base64 characters.
        let mut bytes = [0u8; 48];
        aws_lc_rs::rand::fill(&mut bytes).unwrap();
        let generated = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes);
        assert_eq!(generated.len(), 64);
        check_secret_key("secret_key", &Secret::new(generated)).unwrap();
    }

    #[test]
    fn encrypted_looking_keys_are_never_used_as_they_are() {
        let long = format!("~CRYPT~gAAAAAB{}", "x".repeat(80));
        for bad in [
            long.as_str(),
            "~SEALED-v1~QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo",
        ] {
            let e = check_secret_key("secret_key", &Secret::new(bad)).unwrap_err();
            assert!(e.message().contains("`secret_key`"), "{e}");
            assert!(e.message().contains("encrypted"), "{e}");
            let e = serde_json::from_value::<Secret>(serde_json::Value::from(bad)).unwrap_err();
            assert!(e.to_string().contains("encrypted"), "{e}");
        }
    }

    #[test]
    fn weak_keys_are_recognised() {
        assert!(weakness(b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").is_some());
        assert!(weakness(b"abcdefghabcdefghabcdefghabcdefgh").is_some());
        assert!(weakness(b"k3Xq9vR2mT8wYp4LzN6bH1cJ5dF7gA0sQe").is_none());
    }
}
