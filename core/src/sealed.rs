//! Encrypted values in configuration files.
//!
//! A configuration value may be written encrypted, in one of two formats:
//!
//! - **serieux's**, as easy-oauth documents it (`serieux patch`): the text
//!   `~CRYPT~` followed by a [Fernet](https://github.com/fernet/spec) token
//!   whose key is the SHA-256 of a password and whose plaintext is the value
//!   in JSON. Read for migration; the password cannot be made stronger than
//!   itself, and a value can be moved from one key to another unnoticed.
//! - **portcullis' own**, `~SEALED-v1~` followed by base64url (no padding)
//!   of a 16-byte salt, a 12-byte nonce and the AES-256-GCM ciphertext of the
//!   value in JSON. The key is derived from the password with Argon2id
//!   (19 MiB, 2 passes, 1 lane: [`NATIVE_KDF`]); the configuration key path
//!   (`client_secret`, `issuers.main.hmac_secret`) is authenticated with the
//!   value, so a sealed value only opens under the key it was sealed for.
//!   The `portcullis-seal` command writes them (see the README).
//!
//! The configuration loaders of [`config`](crate::config) open every such
//! value before anything reads the configuration, with the password of
//! [`Unsealer::from_env`]: `PORTCULLIS_CONFIG_PASSWORD`, else
//! `SERIEUX_PASSWORD` (the variable easy-oauth documents). A value that
//! cannot be opened (no password, a wrong one, an altered or moved value)
//! stops the loading with an error that names the key and never the value.
//!
//! **A value that looks encrypted is never used as a secret as it is**
//! ([`is_sealed`]): [`Secret`]'s deserialization refuses it, and so do
//! [`check_secret_key`](crate::secret::check_secret_key) and the verifier's
//! `hmac_secret`.
//!
//! ```
//! use portcullis_core::Secret;
//! use portcullis_core::config::{Format, load_from_str_with};
//! use portcullis_core::sealed::{Sealer, Unsealer};
//! use serde_json::json;
//!
//! #[derive(Debug, serde::Deserialize)]
//! struct App { client_secret: Secret }
//!
//! let password = Secret::from("a long passphrase nobody else knows");
//! let sealed = Sealer::new(&password)?.seal(&json!("the client secret"), "client_secret")?;
//! let yaml = format!("client_secret: '{sealed}'\n");
//!
//! let app: App = load_from_str_with(&yaml, Format::Yaml, &[], &Unsealer::with_password(password))?;
//! assert_eq!(app.client_secret.expose(), "the client secret");
//!
//! // Without the password, the error names the key.
//! let e = load_from_str_with::<App>(&yaml, Format::Yaml, &[], &Unsealer::none()).unwrap_err();
//! assert!(e.message().contains("`client_secret`"));
//! # Ok::<(), portcullis_core::Error>(())
//! ```

use std::collections::HashMap;
use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::cipher::{AES_128, DecryptionContext, PaddedBlockDecryptingKey, UnboundCipherKey};
use aws_lc_rs::{digest, hmac, iv::FixedLength, rand};
use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use serde_json::Value;

use crate::error::Error;
use crate::secret::Secret;

/// The prefix of serieux's encrypted values (a Fernet token follows).
pub const SERIEUX_PREFIX: &str = "~CRYPT~";

/// The prefix of portcullis' sealed values, version 1.
pub const NATIVE_PREFIX: &str = "~SEALED-v1~";

/// What every version of portcullis' sealed values starts with.
const NATIVE_FAMILY: &str = "~SEALED-";

/// The variable holding the configuration password, read first.
pub const PASSWORD_VAR: &str = "PORTCULLIS_CONFIG_PASSWORD";

/// serieux's variable (as easy-oauth documents it), read when
/// [`PASSWORD_VAR`] is not set.
pub const SERIEUX_PASSWORD_VAR: &str = "SERIEUX_PASSWORD";

/// The Argon2id parameters of `~SEALED-v1~`: memory in KiB, passes, lanes
/// (OWASP's recommended minimum for Argon2id).
pub const NATIVE_KDF: (u32, u32, u32) = (19 * 1024, 2, 1);

const SALT_LEN: usize = 16;
const TAG_LEN: usize = 16;
/// Fernet: version byte, timestamp, IV; the HMAC-SHA256 tag at the end.
const FERNET_VERSION: u8 = 0x80;
const FERNET_HEADER: usize = 1 + 8 + 16;
const FERNET_TAG: usize = 32;

/// Whether `value` is visibly an encrypted value (serieux's `~CRYPT~` or
/// any version of portcullis' `~SEALED-`). Such a value is never a secret
/// in itself.
///
/// ```
/// use portcullis_core::sealed::is_sealed;
/// assert!(is_sealed("~CRYPT~gAAAAABn..."));
/// assert!(is_sealed(" ~SEALED-v1~abc"));
/// assert!(!is_sealed("an ordinary secret"));
/// ```
pub fn is_sealed(value: &str) -> bool {
    let v = value.trim_start();
    v.starts_with(SERIEUX_PREFIX) || v.starts_with(NATIVE_FAMILY)
}

/// The error for an encrypted value found where a secret is used as is.
pub(crate) fn sealed_secret_message() -> String {
    format!(
        "the value is encrypted and was not decrypted; load the configuration through \
         portcullis' loaders with the password in {PASSWORD_VAR} (or {SERIEUX_PASSWORD_VAR})"
    )
}

/// Where the password comes from, for messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Given,
    Var(&'static str),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Given => f.write_str("the password given"),
            Source::Var(var) => write!(f, "the password in {var}"),
        }
    }
}

/// Opens encrypted configuration values: holds the password, if any.
///
/// Its `Debug` never shows the password.
#[derive(Clone, Debug)]
pub struct Unsealer {
    password: Option<(Secret, Source)>,
}

impl Unsealer {
    /// The password of `PORTCULLIS_CONFIG_PASSWORD`, else of
    /// `SERIEUX_PASSWORD`, else none (an encrypted value is then an error).
    pub fn from_env() -> Self {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// As [`from_env`](Self::from_env), reading variables through `get`.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Self {
        for var in [PASSWORD_VAR, SERIEUX_PASSWORD_VAR] {
            if let Some(password) = get(var).filter(|p| !p.is_empty()) {
                return Self {
                    password: Some((Secret::new(password), Source::Var(var))),
                };
            }
        }
        Self::none()
    }

    /// Opens values with `password`.
    pub fn with_password(password: impl Into<Secret>) -> Self {
        Self {
            password: Some((password.into(), Source::Given)),
        }
    }

    /// No password: any encrypted value is an error.
    pub fn none() -> Self {
        Self { password: None }
    }

    /// Whether a password is held.
    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }

    /// The password held, if any (for a tool that seals with the password
    /// the loaders would open with).
    pub fn password(&self) -> Option<&Secret> {
        self.password.as_ref().map(|(p, _)| p)
    }

    /// Opens the encrypted `value` found under the configuration key
    /// `key_path` and returns the JSON value it holds.
    ///
    /// # Errors
    ///
    /// A configuration error naming `key_path` (never the value): no
    /// password, a wrong one, a malformed or altered value, a value sealed
    /// for another key, an unknown version.
    pub fn open(&self, value: &str, key_path: &str) -> Result<Value, Error> {
        self.open_cached(value, key_path, &mut Keys::default())
    }

    fn open_cached(&self, value: &str, key_path: &str, keys: &mut Keys) -> Result<Value, Error> {
        let bad = |why: String| Error::config(format!("configuration key `{key_path}`: {why}"));
        let value = value.trim();
        let (kind, body) = if let Some(body) = value.strip_prefix(SERIEUX_PREFIX) {
            ("serieux `~CRYPT~`", body)
        } else if let Some(body) = value.strip_prefix(NATIVE_PREFIX) {
            ("`~SEALED-v1~`", body)
        } else {
            return Err(bad(
                "the value is encrypted in a format this version of portcullis does not read \
                 (it reads `~CRYPT~` and `~SEALED-v1~`)"
                    .to_owned(),
            ));
        };
        let Some((password, source)) = &self.password else {
            return Err(bad(format!(
                "the value is encrypted ({kind}) and no password was given; set \
                 {PASSWORD_VAR} or {SERIEUX_PASSWORD_VAR} to the password it was encrypted with"
            )));
        };
        let plaintext = if value.starts_with(SERIEUX_PREFIX) {
            let key = keys
                .fernet
                .get_or_insert_with(|| FernetKey::from_password(password));
            key.decrypt(body)
        } else {
            open_native(body, key_path, password, keys)
        }
        .map_err(|why| match why {
            Failure::Malformed(what) => bad(format!("the encrypted value is malformed: {what}")),
            Failure::Refused => bad(format!(
                "the encrypted value does not open with {source} (a wrong password, \
                 or a value altered or sealed for another key)"
            )),
        })?;
        serde_json::from_slice(&plaintext)
            .map_err(|_| bad("the decrypted value is not JSON".to_owned()))
    }
}

/// Keys derived during one loading, so that each password costs one KDF run
/// per salt.
#[derive(Default)]
pub(crate) struct Keys {
    fernet: Option<FernetKey>,
    native: HashMap<[u8; SALT_LEN], LessSafeKey>,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys")
            .field("native", &self.native.len())
            .finish_non_exhaustive()
    }
}

enum Failure {
    Malformed(&'static str),
    Refused,
}

/// A Fernet key as serieux makes it: SHA-256 of the password; the first
/// half signs, the second encrypts.
struct FernetKey {
    signing: hmac::Key,
    encryption: [u8; 16],
}

impl FernetKey {
    fn from_password(password: &Secret) -> Self {
        let digest = digest::digest(&digest::SHA256, password.expose().as_bytes());
        let bytes = digest.as_ref();
        let mut encryption = [0u8; 16];
        encryption.copy_from_slice(&bytes[16..32]);
        Self {
            signing: hmac::Key::new(hmac::HMAC_SHA256, &bytes[..16]),
            encryption,
        }
    }

    /// A Fernet token's plaintext. The timestamp is not checked: serieux
    /// decrypts without a time limit.
    fn decrypt(&self, token: &str) -> Result<Vec<u8>, Failure> {
        let data = URL_SAFE
            .decode(token.trim())
            .or_else(|_| URL_SAFE_NO_PAD.decode(token.trim()))
            .map_err(|_| Failure::Malformed("not a base64url Fernet token"))?;
        if data.len() < FERNET_HEADER + 16 + FERNET_TAG
            || !(data.len() - FERNET_HEADER - FERNET_TAG).is_multiple_of(16)
        {
            return Err(Failure::Malformed("a Fernet token of the wrong length"));
        }
        if data[0] != FERNET_VERSION {
            return Err(Failure::Malformed("an unknown Fernet version"));
        }
        let (signed, tag) = data.split_at(data.len() - FERNET_TAG);
        hmac::verify(&self.signing, signed, tag).map_err(|_| Failure::Refused)?;
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&signed[9..FERNET_HEADER]);
        let mut buf = signed[FERNET_HEADER..].to_vec();
        let key = UnboundCipherKey::new(&AES_128, &self.encryption)
            .and_then(PaddedBlockDecryptingKey::cbc_pkcs7)
            .map_err(|_| Failure::Refused)?;
        let len = key
            .decrypt(&mut buf, DecryptionContext::Iv128(FixedLength::from(iv)))
            .map_err(|_| Failure::Refused)?
            .len();
        buf.truncate(len);
        Ok(buf)
    }
}

/// The associated data of a `~SEALED-v1~` value: the format and the key path.
fn native_aad(key_path: &str) -> Vec<u8> {
    let mut aad = NATIVE_PREFIX.as_bytes().to_vec();
    aad.extend_from_slice(key_path.as_bytes());
    aad
}

fn derive_native(password: &Secret, salt: &[u8; SALT_LEN]) -> Result<LessSafeKey, Error> {
    let (m, t, p) = NATIVE_KDF;
    let params = argon2::Params::new(m, t, p, Some(32))
        .map_err(|_| Error::config("the Argon2id parameters are refused"))?;
    let kdf = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = [0u8; 32];
    kdf.hash_password_into(password.expose().as_bytes(), salt, &mut key)
        .map_err(|_| Error::config("the Argon2id key derivation failed"))?;
    let unbound = UnboundKey::new(&AES_256_GCM, &key)
        .map_err(|_| Error::config("the sealing key is refused"))?;
    Ok(LessSafeKey::new(unbound))
}

fn open_native(
    body: &str,
    key_path: &str,
    password: &Secret,
    keys: &mut Keys,
) -> Result<Vec<u8>, Failure> {
    let data = URL_SAFE_NO_PAD
        .decode(body.trim())
        .map_err(|_| Failure::Malformed("not base64url"))?;
    if data.len() < SALT_LEN + NONCE_LEN + TAG_LEN {
        return Err(Failure::Malformed("too short"));
    }
    let (salt, rest) = data.split_at(SALT_LEN);
    let (nonce, sealed) = rest.split_at(NONCE_LEN);
    let salt: [u8; SALT_LEN] = salt
        .try_into()
        .map_err(|_| Failure::Malformed("too short"))?;
    let key = match keys.native.entry(salt) {
        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
        std::collections::hash_map::Entry::Vacant(e) => {
            e.insert(derive_native(password, &salt).map_err(|_| Failure::Refused)?)
        }
    };
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| Failure::Refused)?;
    let mut buf = sealed.to_vec();
    let len = key
        .open_in_place(nonce, Aad::from(native_aad(key_path)), &mut buf)
        .map_err(|_| Failure::Refused)?
        .len();
    buf.truncate(len);
    Ok(buf)
}

/// Seals configuration values in portcullis' `~SEALED-v1~` format.
///
/// One `Sealer` derives its key once (one salt); every value it seals gets
/// a fresh nonce and is bound to its configuration key path. Its `Debug`
/// shows nothing of the key.
pub struct Sealer {
    salt: [u8; SALT_LEN],
    key: LessSafeKey,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer([redacted])")
    }
}

impl Sealer {
    /// A sealer for `password` with a fresh random salt (runs Argon2id once).
    ///
    /// # Errors
    ///
    /// An empty password (configuration error), or no randomness available.
    pub fn new(password: &Secret) -> Result<Self, Error> {
        if password.is_empty() {
            return Err(Error::config("the sealing password is empty"));
        }
        let mut salt = [0u8; SALT_LEN];
        rand::fill(&mut salt).map_err(|_| Error::config("no randomness for the salt"))?;
        Ok(Self {
            salt,
            key: derive_native(password, &salt)?,
        })
    }

    /// `value` (any JSON) sealed for the configuration key `key_path`
    /// (`client_secret`, `issuers.main.hmac_secret`): `~SEALED-v1~…`.
    ///
    /// # Errors
    ///
    /// No randomness for the nonce, or a value that does not serialize.
    pub fn seal(&self, value: &Value, key_path: &str) -> Result<String, Error> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce).map_err(|_| Error::config("no randomness for the nonce"))?;
        let mut buf =
            serde_json::to_vec(value).map_err(|_| Error::config("the value does not serialize"))?;
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(native_aad(key_path)),
                &mut buf,
            )
            .map_err(|_| Error::config("sealing failed"))?;
        let mut out = Vec::with_capacity(SALT_LEN + NONCE_LEN + buf.len());
        out.extend_from_slice(&self.salt);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        Ok(format!("{NATIVE_PREFIX}{}", URL_SAFE_NO_PAD.encode(out)))
    }
}

/// Opens every encrypted string in `tree`, in place, each with its key path
/// as associated data.
pub(crate) fn unseal_tree(
    tree: &mut Value,
    unsealer: &Unsealer,
    keys: &mut Keys,
) -> Result<(), Error> {
    fn walk(
        value: &mut Value,
        path: &mut String,
        unsealer: &Unsealer,
        keys: &mut Keys,
    ) -> Result<(), Error> {
        match value {
            Value::String(s) if is_sealed(s) => {
                *value = unsealer.open_cached(s, path, keys)?;
            }
            Value::Object(map) => {
                for (name, child) in map.iter_mut() {
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(name);
                    walk(child, path, unsealer, keys)?;
                    path.truncate(len);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter_mut().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    walk(child, path, unsealer, keys)?;
                    path.truncate(len);
                }
            }
            _ => {}
        }
        Ok(())
    }
    walk(tree, &mut String::new(), unsealer, keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Fernet tokens made by Python's `cryptography` as serieux makes them
    /// (see `core/tests/fixtures/serieux/make_fixtures.py`).
    const FIXTURES: &str = include_str!("../tests/fixtures/serieux/tokens.json");

    fn fixtures() -> (String, Vec<(String, Value)>) {
        let doc: Value = serde_json::from_str(FIXTURES).unwrap();
        let password = doc["password"].as_str().unwrap().to_owned();
        let cases = doc["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["encrypted"].as_str().unwrap().to_owned(),
                    c["plain"].clone(),
                )
            })
            .collect();
        (password, cases)
    }

    #[test]
    fn serieux_values_made_by_python_open() {
        let (password, cases) = fixtures();
        assert!(cases.len() >= 4);
        let unsealer = Unsealer::with_password(password);
        for (encrypted, plain) in cases {
            assert!(is_sealed(&encrypted));
            assert_eq!(unsealer.open(&encrypted, "secret_key").unwrap(), plain);
        }
    }

    #[test]
    fn serieux_values_refuse_a_wrong_password_and_any_alteration() {
        let (password, cases) = fixtures();
        let (encrypted, _) = &cases[0];
        let e = Unsealer::with_password("not the password")
            .open(encrypted, "client_secret")
            .unwrap_err();
        assert!(e.message().contains("`client_secret`"), "{e}");
        assert!(e.message().contains("does not open"), "{e}");
        let e = Unsealer::none()
            .open(encrypted, "client_secret")
            .unwrap_err();
        assert!(e.message().contains("no password"), "{e}");
        assert!(e.message().contains("SERIEUX_PASSWORD"), "{e}");
        let unsealer = Unsealer::with_password(password);
        let body = encrypted.strip_prefix(SERIEUX_PREFIX).unwrap();
        let raw = URL_SAFE.decode(body).unwrap();
        // Every byte flipped (version, timestamp, IV, ciphertext, tag) is refused.
        for i in 0..raw.len() {
            let mut altered = raw.clone();
            altered[i] ^= 0x01;
            let token = format!("{SERIEUX_PREFIX}{}", URL_SAFE.encode(&altered));
            assert!(unsealer.open(&token, "k").is_err(), "byte {i}");
        }
        for bad in ["~CRYPT~", "~CRYPT~!!!", "~CRYPT~gAAAAA"] {
            let e = unsealer.open(bad, "k").unwrap_err();
            assert!(e.message().contains("malformed"), "{e}");
        }
    }

    #[test]
    fn native_values_round_trip_and_are_bound_to_their_key() {
        let password = Secret::new("correct horse battery staple");
        let sealer = Sealer::new(&password).unwrap();
        let a = sealer.seal(&json!("value a"), "client_secret").unwrap();
        let b = sealer
            .seal(&json!({"n": 1}), "issuers.main.hmac_secret")
            .unwrap();
        assert!(a.starts_with(NATIVE_PREFIX) && is_sealed(&a));
        assert_ne!(a, sealer.seal(&json!("value a"), "client_secret").unwrap());
        let unsealer = Unsealer::with_password(password);
        let mut keys = Keys::default();
        assert_eq!(
            unsealer
                .open_cached(&a, "client_secret", &mut keys)
                .unwrap(),
            "value a"
        );
        assert_eq!(
            unsealer
                .open_cached(&b, "issuers.main.hmac_secret", &mut keys)
                .unwrap(),
            json!({"n": 1})
        );
        assert_eq!(keys.native.len(), 1, "one derivation per salt");
        let e = unsealer.open(&a, "secret_key").unwrap_err();
        assert!(e.message().contains("`secret_key`") && e.message().contains("another key"));
        let e = Unsealer::with_password("wrong")
            .open(&a, "client_secret")
            .unwrap_err();
        assert!(e.message().contains("does not open"), "{e}");
        let e = unsealer.open("~SEALED-v9~abc", "k").unwrap_err();
        assert!(e.message().contains("does not read"), "{e}");
        assert!(Sealer::new(&Secret::new("")).is_err());
    }

    #[test]
    fn the_environment_password_prefers_portcullis_variable() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let u = Unsealer::from_vars(vars(&[("SERIEUX_PASSWORD", "s"), (PASSWORD_VAR, "p")]));
        assert_eq!(u.password.unwrap().0.expose(), "p");
        let u = Unsealer::from_vars(vars(&[("SERIEUX_PASSWORD", "s")]));
        assert_eq!(u.password.as_ref().unwrap().0.expose(), "s");
        assert!(
            !format!("{u:?}").contains("\"s\""),
            "the password stays out of Debug"
        );
        assert!(!Unsealer::from_vars(vars(&[(PASSWORD_VAR, "")])).has_password());
    }
}
