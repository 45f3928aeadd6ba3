//! The first-party credential exchange's check: [`CredentialCheck`], which
//! the application supplies, and [`Argon2Users`], a ready implementation
//! over stored Argon2id hashes.
//!
//! **First-party clients only.** The resource owner password credentials
//! exchange hands the user's password to the client. RFC 9700 (OAuth 2.0
//! Security Best Current Practice, section 2.4) says it MUST NOT be used;
//! it remains acceptable only where the client is the service itself (its
//! own login form or command-line tool), which is the only use this crate
//! supports: enable the `password` grant only for such clients, and use an
//! authorization-code flow with PKCE for anything else.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm as Argon2Algorithm, Argon2, Params, Version};
use portcullis_core::{Error, Secret};
use serde_json::{Map, Value};
use tokio::sync::Semaphore;

/// What a [`CredentialCheck`] answers.
pub type CheckFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<UserGrant>, Error>> + Send + 'a>>;

/// A login attempt of the password exchange.
pub struct PasswordAttempt<'a> {
    /// The `username` form field.
    pub username: &'a str,
    /// The `password` form field.
    pub password: &'a Secret,
    /// The client the request authenticated as.
    pub client_id: &'a str,
    /// The address the request came from, when the server knows it.
    pub client_addr: Option<IpAddr>,
}

impl fmt::Debug for PasswordAttempt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordAttempt")
            .field("username", &self.username)
            .field("client_id", &self.client_id)
            .field("client_addr", &self.client_addr)
            .finish_non_exhaustive()
    }
}

/// The user a successful check names: what the access token says about them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct UserGrant {
    /// The user's stable id: the token's `sub` and the seed's `user_id`.
    pub user_id: String,
    /// The seed's `username` claim.
    pub username: String,
    /// The scopes the user may hold; a token gets those requested among
    /// them (all of them when none is requested).
    pub scopes: Vec<String>,
    /// More claims for the access token (registered and issuer-set claims
    /// are never overridden by these).
    #[serde(default)]
    pub claims: Map<String, Value>,
}

/// The application's credential check: `Ok(Some(user))` for right
/// credentials, `Ok(None)` for wrong ones (an unknown user included),
/// `Err` when it could not decide (a store down: 503, nothing issued).
///
/// Implementations must take the same time for unknown users as for wrong
/// passwords, and keep CPU-heavy work off the async workers;
/// [`Argon2Users`] does both.
pub trait CredentialCheck: Send + Sync + fmt::Debug + 'static {
    /// Checks one attempt.
    fn check<'a>(&'a self, attempt: &'a PasswordAttempt<'a>) -> CheckFuture<'a>;
}

/// The Argon2 parameters of new hashes (and of the dummy hash checked for
/// unknown users): Argon2id, OWASP's first recommendation (19 MiB, 2
/// passes, 1 lane).
pub fn default_params() -> Params {
    Params::new(19 * 1024, 2, 1, None).expect("valid Argon2 parameters")
}

/// A PHC string (`$argon2id$v=19$...`) for `password`, with a random salt
/// and [`default_params`]. CPU-bound: call it off async workers.
///
/// ```
/// let hash = portcullis_issuer::password::hash_password("alice-password").unwrap();
/// assert!(hash.starts_with("$argon2id$v=19$"));
/// ```
///
/// # Errors
///
/// A configuration error if the random source or the hashing fails.
pub fn hash_password(password: &str) -> Result<String, Error> {
    let mut salt = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| Error::config("could not draw a salt"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| Error::config(format!("salt: {e}")))?;
    Argon2::new(Argon2Algorithm::Argon2id, Version::V0x13, default_params())
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::config(format!("could not hash the password: {e}")))
}

/// One user of [`Argon2Users`].
#[derive(Clone, serde::Deserialize)]
pub struct StoredUser {
    /// The Argon2id PHC string of the password.
    pub password_hash: String,
    /// What a token says about the user.
    #[serde(flatten)]
    pub grant: UserGrant,
}

impl fmt::Debug for StoredUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredUser")
            .field("user_id", &self.grant.user_id)
            .finish_non_exhaustive()
    }
}

/// How many hashes may be computed at once unless configured: one per
/// core, so that logins cannot starve the rest of the service.
pub fn default_hash_concurrency() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// A [`CredentialCheck`] over users keyed by `username`, with Argon2id PHC
/// hashes.
///
/// - An unknown user costs one hash too (a dummy hash with the parameters
///   of the stored ones), so timing does not tell who exists.
/// - Hashing runs on tokio's blocking pool, at most `concurrency` at once
///   (a semaphore): requests beyond wait, the async workers keep serving.
///
/// ```
/// # async fn run() -> Result<(), portcullis_core::Error> {
/// use portcullis_core::Secret;
/// use portcullis_issuer::password::{Argon2Users, CredentialCheck, PasswordAttempt, StoredUser, UserGrant, hash_password};
/// let alice = StoredUser {
///     password_hash: hash_password("alice-password")?,
///     grant: UserGrant { user_id: "u-1".into(), username: "alice".into(), scopes: vec!["user:read".into()], claims: Default::default() },
/// };
/// let users = Argon2Users::new([("alice".to_owned(), alice)], 2)?;
/// let password = Secret::new("alice-password");
/// let attempt = PasswordAttempt { username: "alice", password: &password, client_id: "cli", client_addr: None };
/// assert_eq!(users.check(&attempt).await?.unwrap().user_id, "u-1");
/// let wrong = Secret::new("guess");
/// let attempt = PasswordAttempt { username: "alice", password: &wrong, client_id: "cli", client_addr: None };
/// assert!(users.check(&attempt).await?.is_none());
/// # Ok(()) }
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(run()).unwrap();
/// ```
#[derive(Clone)]
pub struct Argon2Users {
    users: Arc<HashMap<String, StoredUser>>,
    dummy: Arc<str>,
    permits: Arc<Semaphore>,
}

impl fmt::Debug for Argon2Users {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Argon2Users")
            .field("users", &self.users.len())
            .field("concurrency", &self.permits.available_permits())
            .finish()
    }
}

impl Argon2Users {
    /// The users, hashing at most `concurrency` passwords at once.
    ///
    /// # Errors
    ///
    /// A configuration error naming the user whose hash is not an Argon2id
    /// PHC string, or for a zero concurrency.
    pub fn new(
        users: impl IntoIterator<Item = (String, StoredUser)>,
        concurrency: usize,
    ) -> Result<Self, Error> {
        if concurrency == 0 {
            return Err(Error::config("the hashing concurrency must not be zero"));
        }
        let users: HashMap<String, StoredUser> = users.into_iter().collect();
        let mut params = None;
        for (name, user) in &users {
            let hash = PasswordHash::new(&user.password_hash).map_err(|_| {
                Error::config(format!(
                    "user `{name}`: the password hash is not a PHC string"
                ))
            })?;
            if hash.algorithm.as_str() != "argon2id" {
                return Err(Error::config(format!(
                    "user `{name}`: the password hash is not Argon2id"
                )));
            }
            if params.is_none() {
                params = Params::try_from(&hash).ok();
            }
        }
        let params = params.unwrap_or_else(default_params);
        let mut salt = [0u8; 16];
        aws_lc_rs::rand::fill(&mut salt).map_err(|_| Error::config("could not draw a salt"))?;
        let salt =
            SaltString::encode_b64(&salt).map_err(|e| Error::config(format!("salt: {e}")))?;
        let dummy = Argon2::new(Argon2Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"no such user", &salt)
            .map_err(|e| Error::config(format!("could not hash: {e}")))?
            .to_string();
        Ok(Self {
            users: Arc::new(users),
            dummy: Arc::from(dummy),
            permits: Arc::new(Semaphore::new(concurrency)),
        })
    }

    /// Reads a users file: a JSON object of `username` to
    /// `{"password_hash", "user_id", "username", "scopes", "claims"}`.
    ///
    /// # Errors
    ///
    /// A configuration error naming the file's problem (never a hash).
    pub fn from_json(text: &str, concurrency: usize) -> Result<Self, Error> {
        let users: HashMap<String, StoredUser> = serde_json::from_str(text).map_err(|e| {
            Error::config(format!(
                "the users file is invalid: line {}, column {}",
                e.line(),
                e.column()
            ))
        })?;
        Self::new(users, concurrency)
    }

    /// The number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether there are no users.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    async fn verify(&self, hash: Arc<str>, password: Secret) -> Result<bool, Error> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| Error::unavailable("the password hashing pool is closed"))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let Ok(parsed) = PasswordHash::new(&hash) else {
                return false;
            };
            Argon2::default()
                .verify_password(password.expose().as_bytes(), &parsed)
                .is_ok()
        })
        .await
        .map_err(|_| Error::unavailable("the password check did not complete"))
    }
}

impl CredentialCheck for Argon2Users {
    fn check<'a>(&'a self, attempt: &'a PasswordAttempt<'a>) -> CheckFuture<'a> {
        Box::pin(async move {
            let user = self.users.get(attempt.username);
            let hash: Arc<str> = match user {
                Some(user) => Arc::from(user.password_hash.as_str()),
                None => Arc::clone(&self.dummy),
            };
            let matched = self.verify(hash, attempt.password.clone()).await?;
            Ok(match user {
                Some(user) if matched => Some(user.grant.clone()),
                _ => None,
            })
        })
    }
}
