//! portcullis-smac: SMAC's authentication on portcullis.
//!
//! SMAC (a FastAPI library) accepts two kinds of callers, configured by
//! `SMAC__AUTH__*` environment variables ([`config`]):
//!
//! - **users** with tokens of one or two AWS Cognito user pools (primary
//!   and secondary): each pool is an issuer of core's verifier
//!   (`https://cognito-idp.{region}.amazonaws.com/{pool}`), ID tokens
//!   checked against the app client id (`aud`), access tokens by
//!   `client_id` and `token_use`; the user is named by the `USER_ID` claim
//!   (default `email`, vouched for by `email_verified`), `cognito:groups`
//!   is [`Principal::cognito_groups`](portcullis_core::Principal::cognito_groups).
//!   The keys come from `AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER` or
//!   `AWS_ENDPOINT_URL` (`{endpoint}/{pool}/.well-known/jwks.json`) when
//!   set, as AWS's tools do, so a local emulator serves them;
//! - **automation principals**: an id and a token header checked against a
//!   secret of AWS Secrets Manager (core's
//!   [`automation`](portcullis_core::automation)), read by
//!   [`SecretsManager`](secretsmanager::SecretsManager) (feature
//!   `secretsmanager`), signed with [`sigv4`].
//!
//! [`authenticator`] builds core's [`Authenticator`] from all of it, for any
//! adapter, gRPC service or worker.
//!
//! ```
//! use portcullis_smac::config::{Provider, SmacConfig};
//! let config = SmacConfig::from_env([
//!     ("SMAC__AUTH__PROVIDER", "COGNITO"),
//!     ("SMAC__AUTH__PROVIDER_COGNITO__USERPOOLS__PRIMARY__REGION", "eu-west-1"),
//!     ("SMAC__AUTH__PROVIDER_COGNITO__USERPOOLS__PRIMARY__USERPOOL_ID", "eu-west-1_AbC"),
//!     ("SMAC__AUTH__PROVIDER_COGNITO__USERPOOLS__PRIMARY__APP_CLIENT_ID", "client"),
//! ])?;
//! assert_eq!(config.provider, Provider::Cognito);
//! assert_eq!(config.user_id, "email");
//! # Ok::<(), portcullis_core::Error>(())
//! ```
//!
//! # Feature flags
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `secretsmanager` | yes | [`secretsmanager::SecretsManager`], AWS Secrets Manager's `GetSecretValue` over core's HTTP client (reqwest, rustls): no AWS SDK crate. |
//!
//! Why no AWS SDK: `aws-sdk-secretsmanager` 1.125 needs Rust 1.94.1 (the
//! workspace's MSRV is 1.89) and brings the `aws-smithy-*`, `aws-runtime`,
//! `aws-sigv4` and `aws-config` crates with their own HTTP stack; the one
//! call needed here is a signed JSON POST, which [`sigv4`] signs with the
//! aws-lc-rs HMAC the workspace already builds. This crate adds no crate
//! to the lock file: its build cost is its own few thousand lines.
//! Its tests' emulator, moto, is Python (`testing/moto/requirements.txt`):
//! about a minute and 140 MB to install once, outside the checkout, and
//! two to three seconds to start per test that uses it.

use std::collections::HashMap;
use std::sync::Arc;

use portcullis_core::automation::{AutomationConfig, AutomationPrincipals, SecretSource};
use portcullis_core::clock::SharedClock;
use portcullis_core::config::{CognitoConfig, IssuerConfig, VerifierConfig};
use portcullis_core::{Algorithm, Authenticator, CredentialsConfig, Error, TokenVerifier};

pub mod aws;
pub mod config;
#[cfg(feature = "secretsmanager")]
pub mod secretsmanager;
pub mod sigv4;

use config::{Provider, SmacConfig};

/// The verifier configuration of `config`'s user pools: one issuer per
/// pool, keys from `AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER` or
/// `AWS_ENDPOINT_URL` when `env` sets one, else AWS's. `None` with
/// `PROVIDER=NONE`.
pub fn verifier_config(
    config: &SmacConfig,
    env: &HashMap<String, String>,
) -> Option<VerifierConfig> {
    if config.provider == Provider::None {
        return None;
    }
    let override_endpoint = [
        "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER",
        "AWS_ENDPOINT_URL",
    ]
    .iter()
    .find_map(|k| env.get(*k).filter(|v| !v.is_empty()))
    .map(|e| e.trim_end_matches('/').to_owned());
    let issuers = config.pools().map(|(name, pool)| {
        let mut issuer = IssuerConfig::cognito(CognitoConfig::new(
            pool.region.clone(),
            pool.userpool_id.clone(),
            pool.app_client_id.clone(),
        ))
        .with_algorithms([Algorithm::RS256])
        .with_user_id_claim(config.user_id.clone());
        if let Some(endpoint) = &override_endpoint {
            issuer = issuer.with_jwks_url(format!(
                "{endpoint}/{}/.well-known/jwks.json",
                pool.userpool_id
            ));
        }
        (name.to_owned(), issuer)
    });
    Some(VerifierConfig::new(issuers))
}

/// How the user's token is read: `jwt_header_name`, `jwt_header_prefix`,
/// ID tokens accepted besides access tokens.
pub fn credentials_config(config: &SmacConfig) -> CredentialsConfig {
    CredentialsConfig::default()
        .with_token_header_and_scheme(
            config.cognito.jwt_header_name.clone(),
            config.cognito.jwt_header_prefix.clone(),
        )
        .with_id_tokens_accepted(true)
}

/// The automation principals' settings of `config`.
pub fn automation_config(config: &SmacConfig) -> AutomationConfig {
    AutomationConfig::default()
        .with_headers(
            config.automation.id_header_name.clone(),
            config.automation.token_header_name.clone(),
        )
        .with_common_prefix(config.automation.common_prefix.clone())
}

/// Core's [`Authenticator`] for `config`, AWS settings read from `env`:
/// users of the configured pools, and automation principals through AWS
/// Secrets Manager when any `SMAC__AUTH__AUTOMATION_PRINCIPALS__` variable
/// is set.
///
/// # Errors
///
/// A configuration error (AWS credentials or region not found, a bad
/// endpoint, ...).
#[cfg(feature = "secretsmanager")]
pub fn authenticator(
    config: &SmacConfig,
    env: &HashMap<String, String>,
) -> Result<Authenticator, Error> {
    let secrets: Option<Arc<dyn SecretSource>> = if config.automation.enabled {
        let settings = aws::AwsSettings::resolve(
            env,
            config.automation.profile.as_deref(),
            config.automation.region.as_deref(),
        )?;
        Some(Arc::new(secretsmanager::SecretsManager::new(
            settings, env,
        )?))
    } else {
        None
    };
    authenticator_with(config, env, secrets, portcullis_core::clock::system())
}

/// [`authenticator`] with the automation principals' secrets read from
/// `secrets` (when given) and time from `clock`.
///
/// # Errors
///
/// A configuration error.
pub fn authenticator_with(
    config: &SmacConfig,
    env: &HashMap<String, String>,
    secrets: Option<Arc<dyn SecretSource>>,
    clock: SharedClock,
) -> Result<Authenticator, Error> {
    let verifier = match verifier_config(config, env) {
        Some(vc) => TokenVerifier::builder(vc)
            .clock(Arc::clone(&clock))
            .build()?,
        None => no_user_verifier()?,
    };
    let mut auth = Authenticator::new(verifier, credentials_config(config));
    if let Some(secrets) = secrets {
        auth = auth.with_automation(AutomationPrincipals::with_clock(
            automation_config(config),
            secrets,
            clock,
        )?);
    }
    Ok(auth)
}

/// `PROVIDER=NONE`: a verifier that accepts no token (its one issuer's key
/// is random and never leaves this process).
fn no_user_verifier() -> Result<TokenVerifier, Error> {
    let mut key = [0u8; 48];
    aws_lc_rs::rand::fill(&mut key).map_err(|_| Error::config("no random bytes"))?;
    let secret: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let issuer = IssuerConfig::new("urn:portcullis-smac:no-user-pool")
        .with_hmac_secret(secret)
        .with_algorithms([Algorithm::HS256])
        .with_audience("no-user-pool");
    TokenVerifier::new(VerifierConfig::new([("none".to_owned(), issuer)]))
}
