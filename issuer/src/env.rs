//! The seed's environment variables, unprefixed and as named there, read
//! by a compatibility loader: [`SeedEnv::from_vars`]. A bad value stops the
//! loading with an error naming the variable (never repeating a secret).
//!
//! | variable | default | here |
//! |---|---|---|
//! | `ALGORITHM` | `HS256` | the signing algorithm (HS256, RS256, ES256, EdDSA) |
//! | `SECRET_KEY` | | HS256's shared secret (at least 32 bytes) |
//! | `PRIVATE_KEY`, `PUBLIC_KEY` | | base64-encoded PEM keys (RS256, ES256, EdDSA) |
//! | `ISSUER` | the server's URL | the issuer identifier; a URL, which discovery needs |
//! | `LEEWAY` | 10 | minutes of clock skew resource servers accept |
//! | `EXPIRY` | 1440 | access-token lifetime, minutes |
//! | `AUTH_SCOPES` | any scope | a JSON object of scope to description |
//! | `TOKEN_URL` | `/token` | the token endpoint's path |
//! | `REFRESH_URL` | `/refresh` | accepted; refresh is `grant_type=refresh_token` at `TOKEN_URL` (RFC 6749 section 6) |
//! | `REFRESH_RESTRICT_MINUTES` | 2 | [`RefreshPolicy::restrict`](crate::refresh::RefreshPolicy::restrict) |
//! | `DB_URL` | embedded store | Redis for refresh families |
//! | `REFRESH_RESTRICT_DB` | 8 | the Redis database number of refresh families |
//! | `LOGIN_REDIS_DB` | 9 | the Redis database number of login sessions |

use std::collections::BTreeMap;
use std::time::Duration;

use portcullis_core::{Algorithm, Error, Secret};

use crate::keys::KeyConfig;

/// What the seed's variables say; [`Default`] is what they say unset.
#[derive(Debug, Clone)]
pub struct SeedEnv {
    /// `ALGORITHM`, `SECRET_KEY`, `PRIVATE_KEY`, `PUBLIC_KEY`.
    pub keys: KeyConfig,
    /// `ISSUER`, when set.
    pub issuer: Option<String>,
    /// `LEEWAY`.
    pub leeway: Duration,
    /// `EXPIRY`.
    pub expiry: Duration,
    /// `AUTH_SCOPES`.
    pub scopes: Option<BTreeMap<String, String>>,
    /// `TOKEN_URL`.
    pub token_path: String,
    /// `REFRESH_URL` (accepted; see the module's table).
    pub refresh_path: String,
    /// `REFRESH_RESTRICT_MINUTES`.
    pub refresh_restrict: Duration,
    /// `DB_URL` with the database `REFRESH_RESTRICT_DB`, when `DB_URL` is set.
    pub refresh_store_url: Option<Secret>,
    /// `DB_URL` with the database `LOGIN_REDIS_DB`, when `DB_URL` is set.
    pub login_store_url: Option<Secret>,
}

impl Default for SeedEnv {
    fn default() -> Self {
        Self {
            keys: KeyConfig::default(),
            issuer: None,
            leeway: Duration::from_secs(10 * 60),
            expiry: Duration::from_secs(1440 * 60),
            scopes: None,
            token_path: "/token".to_owned(),
            refresh_path: "/refresh".to_owned(),
            refresh_restrict: Duration::from_secs(2 * 60),
            refresh_store_url: None,
            login_store_url: None,
        }
    }
}

fn minutes(name: &str, value: Option<&str>, default: u64) -> Result<Duration, Error> {
    let minutes = match value {
        None => default,
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map_err(|_| Error::config(format!("{name}: expected a whole number of minutes")))?,
    };
    Ok(Duration::from_secs(minutes.saturating_mul(60)))
}

fn path(name: &str, value: Option<&str>, default: &str) -> Result<String, Error> {
    let path = value.map_or(default, str::trim);
    if !path.starts_with('/') || path.contains(['?', '#', ' ']) {
        return Err(Error::config(format!(
            "{name}: expected a path such as {default}"
        )));
    }
    Ok(path.to_owned())
}

fn database(name: &str, value: Option<&str>, default: u32) -> Result<u32, Error> {
    value.map_or(Ok(default), |v| {
        v.trim()
            .parse::<u32>()
            .map_err(|_| Error::config(format!("{name}: expected a database number")))
    })
}

/// `url` with its database (the path) replaced by `db`.
fn with_database(url: &str, db: u32) -> Result<Secret, Error> {
    let mut parsed = url::Url::parse(url)
        .map_err(|_| Error::config("DB_URL: expected a URL such as redis://localhost:6379/0"))?;
    if !matches!(parsed.scheme(), "redis" | "rediss") {
        return Err(Error::config(
            "DB_URL: expected a redis:// or rediss:// URL",
        ));
    }
    parsed.set_path(&format!("/{db}"));
    Ok(Secret::new(parsed.to_string()))
}

impl SeedEnv {
    /// Reads the seed's variables from `vars` (name, value), as
    /// `std::env::vars()` gives them; empty values count as unset.
    ///
    /// ```
    /// use portcullis_issuer::env::SeedEnv;
    /// let vars = [
    ///     ("ALGORITHM", "ES256"),
    ///     ("EXPIRY", "60"),
    ///     ("AUTH_SCOPES", r#"{"read": "Read Access", "write": "Write Access"}"#),
    ///     ("DB_URL", "redis://localhost:6379/0"),
    /// ];
    /// let env = SeedEnv::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string()))).unwrap();
    /// assert_eq!(env.expiry.as_secs(), 3600);
    /// assert_eq!(env.refresh_store_url.unwrap().expose(), "redis://localhost:6379/8");
    /// let bad = SeedEnv::from_vars([("EXPIRY".to_owned(), "soon".to_owned())]).unwrap_err();
    /// assert!(bad.to_string().contains("EXPIRY"));
    /// ```
    ///
    /// # Errors
    ///
    /// A configuration error naming the variable with a bad value.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self, Error> {
        let vars: BTreeMap<String, String> = vars
            .into_iter()
            .filter(|(_, v)| !v.trim().is_empty())
            .collect();
        let get = |name: &str| vars.get(name).map(String::as_str);
        let algorithm = get("ALGORITHM")
            .map(|a| {
                a.trim()
                    .parse::<Algorithm>()
                    .map_err(|_| Error::config("ALGORITHM: expected HS256, RS256, ES256 or EdDSA"))
            })
            .transpose()?;
        let scopes = get("AUTH_SCOPES")
            .map(|s| {
                serde_json::from_str::<BTreeMap<String, String>>(s).map_err(|_| {
                    Error::config(
                        "AUTH_SCOPES: expected a JSON object of scope to description, such as {\"read\": \"Read Access\"}",
                    )
                })
            })
            .transpose()?;
        let issuer = get("ISSUER").map(|i| i.trim().trim_end_matches('/').to_owned());
        if let Some(issuer) = &issuer {
            portcullis_core::config::check_provider_url("ISSUER", issuer, false).map_err(|_| {
                Error::config(
                    "ISSUER: expected the issuer's URL (https, or http on loopback): \
                     verifiers find its keys through it",
                )
            })?;
        }
        let (refresh_store_url, login_store_url) = match get("DB_URL") {
            Some(url) => (
                Some(with_database(
                    url,
                    database("REFRESH_RESTRICT_DB", get("REFRESH_RESTRICT_DB"), 8)?,
                )?),
                Some(with_database(
                    url,
                    database("LOGIN_REDIS_DB", get("LOGIN_REDIS_DB"), 9)?,
                )?),
            ),
            None => {
                database("REFRESH_RESTRICT_DB", get("REFRESH_RESTRICT_DB"), 8)?;
                database("LOGIN_REDIS_DB", get("LOGIN_REDIS_DB"), 9)?;
                (None, None)
            }
        };
        let env = Self {
            keys: KeyConfig {
                algorithm,
                secret_key: get("SECRET_KEY").map(Secret::new),
                private_key: get("PRIVATE_KEY").map(Secret::new),
                public_key: get("PUBLIC_KEY").map(str::to_owned),
            },
            issuer,
            leeway: minutes("LEEWAY", get("LEEWAY"), 10)?,
            expiry: minutes("EXPIRY", get("EXPIRY"), 1440)?,
            scopes,
            token_path: path("TOKEN_URL", get("TOKEN_URL"), "/token")?,
            refresh_path: path("REFRESH_URL", get("REFRESH_URL"), "/refresh")?,
            refresh_restrict: minutes(
                "REFRESH_RESTRICT_MINUTES",
                get("REFRESH_RESTRICT_MINUTES"),
                2,
            )?,
            refresh_store_url,
            login_store_url,
        };
        if env.expiry.is_zero() {
            return Err(Error::config("EXPIRY: must be at least one minute"));
        }
        // The key itself is checked now, so that a bad key names its variable
        // at start-up.
        env.keys.signing_key()?;
        Ok(env)
    }

    /// `config` with what these variables set: lifetime, scopes, token
    /// path, refresh restriction.
    pub fn apply(&self, mut config: crate::IssuerConfig) -> crate::IssuerConfig {
        config.access_token_lifetime = self.expiry;
        if self.scopes.is_some() {
            config.scopes = self.scopes.clone();
        }
        config.paths.token = self.token_path.clone();
        config.refresh.restrict = self.refresh_restrict;
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<SeedEnv, Error> {
        SeedEnv::from_vars(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
    }

    #[test]
    fn defaults_are_the_seeds() {
        let env = load(&[]).unwrap();
        let default = SeedEnv::default();
        assert_eq!(
            (
                default.expiry,
                default.leeway,
                default.refresh_restrict,
                &default.token_path
            ),
            (
                env.expiry,
                env.leeway,
                env.refresh_restrict,
                &env.token_path
            )
        );
        assert_eq!(env.expiry.as_secs(), 1440 * 60);
        assert_eq!(env.leeway.as_secs(), 600);
        assert_eq!(env.refresh_restrict.as_secs(), 120);
        assert_eq!(env.token_path, "/token");
        assert_eq!(env.refresh_path, "/refresh");
        assert!(env.refresh_store_url.is_none());
        let env = load(&[
            ("DB_URL", "redis://:pw@localhost:6379/0"),
            ("LOGIN_REDIS_DB", "3"),
        ])
        .unwrap();
        assert_eq!(
            env.refresh_store_url.unwrap().expose(),
            "redis://:pw@localhost:6379/8"
        );
        assert_eq!(
            env.login_store_url.unwrap().expose(),
            "redis://:pw@localhost:6379/3"
        );
    }

    #[test]
    fn bad_values_name_their_variable_and_never_a_secret() {
        for (name, value) in [
            ("ALGORITHM", "HS999"),
            ("ALGORITHM", "PS256"),
            ("EXPIRY", "-1"),
            ("LEEWAY", "ten"),
            ("REFRESH_RESTRICT_MINUTES", "2.5"),
            ("AUTH_SCOPES", "read,write"),
            ("TOKEN_URL", "token"),
            ("DB_URL", "memcached://localhost"),
            ("LOGIN_REDIS_DB", "nine"),
            ("ISSUER", "prismaticain"),
            ("SECRET_KEY", "SomeSecret"),
        ] {
            let err = load(&[(name, value)]).unwrap_err().to_string();
            assert!(err.contains(name), "{name}={value}: {err}");
            if name == "SECRET_KEY" {
                assert!(!err.contains(value), "{err}");
            }
        }
        let err = load(&[("ALGORITHM", "RS256"), ("PRIVATE_KEY", "bm90IGEgcGVt")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("PRIVATE_KEY"), "{err}");
    }
}
