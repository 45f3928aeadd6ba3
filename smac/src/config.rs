//! SMAC's configuration: environment variables with the prefix
//! `SMAC__AUTH__`, `__` between nesting levels, names matched without
//! regard to case (as pydantic-settings reads them).
//!
//! | variable | default |
//! |---|---|
//! | `SMAC__AUTH__USER_ID` | `email` |
//! | `SMAC__AUTH__PROVIDER` | `NONE` (`NONE` or `COGNITO`) |
//! | `SMAC__AUTH__PROVIDER_COGNITO__CHECK_EXPIRATION` | `True` (`False` is refused, see below) |
//! | `SMAC__AUTH__PROVIDER_COGNITO__JWT_HEADER_PREFIX` | `Bearer` |
//! | `SMAC__AUTH__PROVIDER_COGNITO__JWT_HEADER_NAME` | `Authorization` |
//! | `SMAC__AUTH__PROVIDER_COGNITO__USERPOOLS__{PRIMARY,SECONDARY}__REGION` | none |
//! | `SMAC__AUTH__PROVIDER_COGNITO__USERPOOLS__{PRIMARY,SECONDARY}__USERPOOL_ID` | none |
//! | `SMAC__AUTH__PROVIDER_COGNITO__USERPOOLS__{PRIMARY,SECONDARY}__APP_CLIENT_ID` | none |
//! | `SMAC__AUTH__PROVIDER_COGNITO__USERPOOLS__{PRIMARY,SECONDARY}__DOMAIN` | none |
//! | `SMAC__AUTH__AUTOMATION_PRINCIPALS__SECRETS_MANAGER__REGION` | none |
//! | `SMAC__AUTH__AUTOMATION_PRINCIPALS__SECRETS_MANAGER__PROFILE` | none |
//! | `SMAC__AUTH__AUTOMATION_PRINCIPALS__SECRETS_MANAGER__COMMON_PREFIX` | `""` |
//! | `SMAC__AUTH__AUTOMATION_PRINCIPALS__ID_HEADER_NAME` | `SMAC-Principal` |
//! | `SMAC__AUTH__AUTOMATION_PRINCIPALS__TOKEN_HEADER_NAME` | `SMAC-Token` |
//!
//! Choices where SMAC is silent or unsafe:
//!
//! - **`CHECK_EXPIRATION=False` is refused at start-up.** It would accept
//!   expired tokens: a token stolen or leaked once would open the service
//!   for ever, and no revocation could stop it. Expiry is always checked
//!   (with the verifier's leeway); `True` is accepted as the default it is.
//! - **An unknown `SMAC__AUTH__` variable is refused**, naming it: a
//!   misspelt setting silently ignored would leave a default in force.
//! - **A pool with some of its variables set and others missing is
//!   refused**, naming the missing ones; `DOMAIN` (the hosted login
//!   domain) is optional and not used to verify tokens.
//! - **Automation principals are on when any
//!   `SMAC__AUTH__AUTOMATION_PRINCIPALS__` variable is set**; then AWS
//!   credentials and a region must be found (see [`crate::aws`]).
//! - **`PROVIDER=NONE` accepts no user**: only automation principals (when
//!   on) authenticate; every bearer token is refused.

use std::collections::BTreeMap;

use portcullis_core::Error;

/// The prefix of SMAC's variables.
pub const PREFIX: &str = "SMAC__AUTH__";

/// The user-pool provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Provider {
    /// No user pool: no user is accepted.
    None,
    /// AWS Cognito user pools.
    Cognito,
}

/// One Cognito user pool.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UserPool {
    /// The pool's region.
    pub region: String,
    /// The pool's id.
    pub userpool_id: String,
    /// The app client whose tokens are accepted.
    pub app_client_id: String,
    /// The hosted login domain (not used to verify tokens).
    pub domain: Option<String>,
}

impl UserPool {
    /// `https://cognito-idp.{region}.amazonaws.com/{userpool_id}`.
    pub fn issuer(&self) -> String {
        format!(
            "https://cognito-idp.{}.amazonaws.com/{}",
            self.region, self.userpool_id
        )
    }
}

/// `SMAC__AUTH__PROVIDER_COGNITO__*`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CognitoSettings {
    /// The header carrying the user's token (default `Authorization`).
    pub jwt_header_name: String,
    /// What comes before the token in it (default `Bearer`; empty: the bare token).
    pub jwt_header_prefix: String,
    /// The primary pool.
    pub primary: Option<UserPool>,
    /// The secondary pool.
    pub secondary: Option<UserPool>,
}

/// `SMAC__AUTH__AUTOMATION_PRINCIPALS__*`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AutomationSettings {
    /// Whether any of its variables is set (automation principals are on).
    pub enabled: bool,
    /// The Secrets Manager region (else `AWS_REGION`, ...).
    pub region: Option<String>,
    /// The AWS profile to authenticate with.
    pub profile: Option<String>,
    /// Put before the presented id to name its secret.
    pub common_prefix: String,
    /// The id header (default `SMAC-Principal`).
    pub id_header_name: String,
    /// The token header (default `SMAC-Token`).
    pub token_header_name: String,
}

/// SMAC's whole configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SmacConfig {
    /// The claim naming the user (default `email`).
    pub user_id: String,
    /// `NONE` or `COGNITO`.
    pub provider: Provider,
    /// The Cognito settings.
    pub cognito: CognitoSettings,
    /// The automation principals' settings.
    pub automation: AutomationSettings,
}

const KEYS: &[&str] = &[
    "USER_ID",
    "PROVIDER",
    "PROVIDER_COGNITO__CHECK_EXPIRATION",
    "PROVIDER_COGNITO__JWT_HEADER_PREFIX",
    "PROVIDER_COGNITO__JWT_HEADER_NAME",
    "PROVIDER_COGNITO__USERPOOLS__PRIMARY__REGION",
    "PROVIDER_COGNITO__USERPOOLS__PRIMARY__USERPOOL_ID",
    "PROVIDER_COGNITO__USERPOOLS__PRIMARY__APP_CLIENT_ID",
    "PROVIDER_COGNITO__USERPOOLS__PRIMARY__DOMAIN",
    "PROVIDER_COGNITO__USERPOOLS__SECONDARY__REGION",
    "PROVIDER_COGNITO__USERPOOLS__SECONDARY__USERPOOL_ID",
    "PROVIDER_COGNITO__USERPOOLS__SECONDARY__APP_CLIENT_ID",
    "PROVIDER_COGNITO__USERPOOLS__SECONDARY__DOMAIN",
    "AUTOMATION_PRINCIPALS__SECRETS_MANAGER__REGION",
    "AUTOMATION_PRINCIPALS__SECRETS_MANAGER__PROFILE",
    "AUTOMATION_PRINCIPALS__SECRETS_MANAGER__COMMON_PREFIX",
    "AUTOMATION_PRINCIPALS__ID_HEADER_NAME",
    "AUTOMATION_PRINCIPALS__TOKEN_HEADER_NAME",
];

fn err(message: impl Into<String>) -> Error {
    Error::config(message.into())
}

impl SmacConfig {
    /// Reads the `SMAC__AUTH__` variables of `env` (other names are ignored).
    ///
    /// # Errors
    ///
    /// A configuration error naming the variable (never its value).
    pub fn from_env<K: AsRef<str>, V: AsRef<str>>(
        env: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, Error> {
        let mut vars: BTreeMap<&'static str, String> = BTreeMap::new();
        for (name, value) in env {
            let name = name.as_ref().to_ascii_uppercase();
            let Some(key) = name.strip_prefix(PREFIX) else {
                continue;
            };
            let Some(known) = KEYS.iter().find(|k| **k == key) else {
                return Err(err(format!(
                    "{name} is not a setting (the settings are {PREFIX}{})",
                    KEYS.join(&format!(", {PREFIX}"))
                )));
            };
            vars.insert(known, value.as_ref().to_owned());
        }
        let take = |key: &str| vars.get(key).cloned();
        let text_or = |key: &str, default: &str| take(key).unwrap_or_else(|| default.to_owned());

        let user_id = text_or("USER_ID", "email");
        if user_id.trim().is_empty() {
            return Err(err(format!("{PREFIX}USER_ID is empty")));
        }
        let provider = match text_or("PROVIDER", "NONE").to_ascii_uppercase().as_str() {
            "NONE" => Provider::None,
            "COGNITO" => Provider::Cognito,
            _ => {
                return Err(err(format!("{PREFIX}PROVIDER must be NONE or COGNITO")));
            }
        };
        let check_expiration = match take("PROVIDER_COGNITO__CHECK_EXPIRATION") {
            None => true,
            Some(v) => boolean(&v).ok_or_else(|| {
                err(format!(
                    "{PREFIX}PROVIDER_COGNITO__CHECK_EXPIRATION must be true or false"
                ))
            })?,
        };
        if !check_expiration {
            return Err(err(format!(
                "{PREFIX}PROVIDER_COGNITO__CHECK_EXPIRATION=false would accept expired tokens, \
                 which portcullis never does (a leaked token would never stop working); remove it: \
                 expiry is always checked"
            )));
        }
        let pool = |which: &str| -> Result<Option<UserPool>, Error> {
            let key = |field: &str| format!("PROVIDER_COGNITO__USERPOOLS__{which}__{field}");
            let region = take(&key("REGION")).filter(|v| !v.is_empty());
            let id = take(&key("USERPOOL_ID")).filter(|v| !v.is_empty());
            let client = take(&key("APP_CLIENT_ID")).filter(|v| !v.is_empty());
            let domain = take(&key("DOMAIN")).filter(|v| !v.is_empty());
            match (region, id, client) {
                (None, None, None) => {
                    if domain.is_some() {
                        return Err(err(format!(
                            "{PREFIX}{} is set but the pool has no region, user pool id or app client id",
                            key("DOMAIN")
                        )));
                    }
                    Ok(None)
                }
                (Some(region), Some(userpool_id), Some(app_client_id)) => {
                    if !region
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                        || !userpool_id
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                    {
                        return Err(err(format!(
                            "{PREFIX}{} or {PREFIX}{} is not an AWS region or user pool id",
                            key("REGION"),
                            key("USERPOOL_ID")
                        )));
                    }
                    Ok(Some(UserPool {
                        region,
                        userpool_id,
                        app_client_id,
                        domain,
                    }))
                }
                (region, id, client) => {
                    let missing: Vec<String> = [
                        (region.is_none(), "REGION"),
                        (id.is_none(), "USERPOOL_ID"),
                        (client.is_none(), "APP_CLIENT_ID"),
                    ]
                    .iter()
                    .filter(|(m, _)| *m)
                    .map(|(_, f)| format!("{PREFIX}{}", key(f)))
                    .collect();
                    Err(err(format!(
                        "the {} user pool is incomplete: {} missing",
                        which.to_ascii_lowercase(),
                        missing.join(", ")
                    )))
                }
            }
        };
        let primary = pool("PRIMARY")?;
        let secondary = pool("SECONDARY")?;
        if provider == Provider::Cognito && primary.is_none() {
            return Err(err(if secondary.is_some() {
                format!(
                    "{PREFIX}PROVIDER is COGNITO: the primary user pool must be configured \
                     ({PREFIX}PROVIDER_COGNITO__USERPOOLS__PRIMARY__*); the secondary one is optional"
                )
            } else {
                format!(
                    "{PREFIX}PROVIDER is COGNITO but no user pool is configured: set \
                     {PREFIX}PROVIDER_COGNITO__USERPOOLS__PRIMARY__REGION, __USERPOOL_ID and __APP_CLIENT_ID"
                )
            }));
        }
        if secondary.is_some() && user_id == "sub" {
            return Err(err(format!(
                "{PREFIX}USER_ID cannot be sub with a secondary user pool: each user pool \
                 creates the sub claim itself, so the same person has another sub in each pool; \
                 use the email address (the default) so that the application need not tell the \
                 pools apart"
            )));
        }
        let automation_keys = vars
            .keys()
            .any(|k| k.starts_with("AUTOMATION_PRINCIPALS__"));
        Ok(Self {
            user_id,
            provider,
            cognito: CognitoSettings {
                jwt_header_name: text_or("PROVIDER_COGNITO__JWT_HEADER_NAME", "Authorization"),
                jwt_header_prefix: text_or("PROVIDER_COGNITO__JWT_HEADER_PREFIX", "Bearer"),
                primary,
                secondary,
            },
            automation: AutomationSettings {
                enabled: automation_keys,
                region: take("AUTOMATION_PRINCIPALS__SECRETS_MANAGER__REGION")
                    .filter(|v| !v.is_empty()),
                profile: take("AUTOMATION_PRINCIPALS__SECRETS_MANAGER__PROFILE")
                    .filter(|v| !v.is_empty()),
                common_prefix: text_or("AUTOMATION_PRINCIPALS__SECRETS_MANAGER__COMMON_PREFIX", ""),
                id_header_name: text_or("AUTOMATION_PRINCIPALS__ID_HEADER_NAME", "SMAC-Principal"),
                token_header_name: text_or(
                    "AUTOMATION_PRINCIPALS__TOKEN_HEADER_NAME",
                    "SMAC-Token",
                ),
            },
        })
    }

    /// The configured pools, primary first.
    pub fn pools(&self) -> impl Iterator<Item = (&'static str, &UserPool)> {
        [
            ("primary", self.cognito.primary.as_ref()),
            ("secondary", self.cognito.secondary.as_ref()),
        ]
        .into_iter()
        .filter_map(|(name, pool)| pool.map(|p| (name, p)))
    }
}

/// Python's and pydantic's spellings of a boolean.
fn boolean(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" | "t" | "y" => Some(true),
        "false" | "0" | "no" | "off" | "f" | "n" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
