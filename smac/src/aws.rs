//! Credentials, region and endpoint, found the way AWS's own tools find
//! them, from an environment given as a map (so tests pass their own).
//!
//! - **Credentials**: with a profile named in the configuration (the seed's
//!   `profile` setting), that profile of the shared files; otherwise
//!   `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (with
//!   `AWS_SESSION_TOKEN`) when set; otherwise the profile `AWS_PROFILE`
//!   names, else `default`. Profiles are read from the credentials file
//!   (`AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`, sections
//!   `[name]`), then the config file (`AWS_CONFIG_FILE`, else
//!   `~/.aws/config`, sections `[profile name]` and `[default]`).
//!   Static keys only: single sign-on, `credential_process`, role
//!   assumption and the instance metadata service are not used (the
//!   metadata address is never contacted).
//! - **Region**: the configured one; else `AWS_REGION`, else
//!   `AWS_DEFAULT_REGION`, else the profile's `region`.
//! - **Endpoint**: `AWS_ENDPOINT_URL_<SERVICE>` (e.g.
//!   `AWS_ENDPOINT_URL_SECRETS_MANAGER`), else `AWS_ENDPOINT_URL`, else
//!   AWS's `https://<service>.<region>.amazonaws.com`.

use std::collections::HashMap;
use std::path::PathBuf;

use portcullis_core::Error;

use crate::sigv4::Credentials;

/// The process environment as a map.
pub fn process_env() -> HashMap<String, String> {
    std::env::vars().collect()
}

/// Where AWS calls go and how they are signed.
#[derive(Debug, Clone)]
pub struct AwsSettings {
    /// The credentials.
    pub credentials: Credentials,
    /// The region.
    pub region: String,
}

impl AwsSettings {
    /// Credentials and region from `env` (and the shared files it points
    /// at), a configured `profile` and `region` first.
    ///
    /// # Errors
    ///
    /// A configuration error saying what is missing (never a secret).
    pub fn resolve(
        env: &HashMap<String, String>,
        profile: Option<&str>,
        region: Option<&str>,
    ) -> Result<Self, Error> {
        let get = |name: &str| env.get(name).map(String::as_str).filter(|v| !v.is_empty());
        let profile_name = profile
            .map(str::to_owned)
            .or_else(|| get("AWS_PROFILE").map(str::to_owned))
            .unwrap_or_else(|| "default".to_owned());
        let from_profile = || -> Result<Profile, Error> {
            let home = get("HOME").map(PathBuf::from);
            let credentials_file = get("AWS_SHARED_CREDENTIALS_FILE")
                .map(PathBuf::from)
                .or_else(|| home.as_ref().map(|h| h.join(".aws").join("credentials")));
            let config_file = get("AWS_CONFIG_FILE")
                .map(PathBuf::from)
                .or_else(|| home.as_ref().map(|h| h.join(".aws").join("config")));
            let mut found = Profile::default();
            if let Some(path) = credentials_file
                && let Ok(text) = std::fs::read_to_string(&path)
            {
                found.merge(section(&text, &profile_name));
            }
            if let Some(path) = config_file
                && let Ok(text) = std::fs::read_to_string(&path)
            {
                let name = if profile_name == "default" {
                    "default".to_owned()
                } else {
                    format!("profile {profile_name}")
                };
                found.merge(section(&text, &name));
            }
            Ok(found)
        };
        let env_keys = match (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY")) {
            (Some(id), Some(secret)) => Some(Credentials {
                access_key_id: id.to_owned(),
                secret_access_key: secret.to_owned(),
                session_token: get("AWS_SESSION_TOKEN").map(str::to_owned),
            }),
            _ => None,
        };
        let profile_data = from_profile()?;
        let credentials = match (profile, env_keys) {
            (None, Some(keys)) => keys,
            _ => match (
                profile_data.get("aws_access_key_id"),
                profile_data.get("aws_secret_access_key"),
            ) {
                (Some(id), Some(secret)) => Credentials {
                    access_key_id: id.to_owned(),
                    secret_access_key: secret.to_owned(),
                    session_token: profile_data.get("aws_session_token").map(str::to_owned),
                },
                _ => {
                    return Err(Error::config(format!(
                        "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or \
                         give the profile `{profile_name}` aws_access_key_id and \
                         aws_secret_access_key in the shared credentials file"
                    )));
                }
            },
        };
        let region = region
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .or_else(|| get("AWS_REGION").map(str::to_owned))
            .or_else(|| get("AWS_DEFAULT_REGION").map(str::to_owned))
            .or_else(|| profile_data.get("region").map(str::to_owned))
            .ok_or_else(|| {
                Error::config(
                    "no AWS region: set it in the configuration, AWS_REGION or AWS_DEFAULT_REGION",
                )
            })?;
        if !region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(Error::config("the AWS region is not a region name"));
        }
        Ok(Self {
            credentials,
            region,
        })
    }
}

/// The endpoint of `service` (its identifier as AWS's environment variables
/// spell it, e.g. `SECRETS_MANAGER`; `host` its host name prefix, e.g.
/// `secretsmanager`), without a trailing slash.
pub fn endpoint(env: &HashMap<String, String>, service: &str, host: &str, region: &str) -> String {
    let get = |name: &str| env.get(name).map(String::as_str).filter(|v| !v.is_empty());
    get(&format!("AWS_ENDPOINT_URL_{service}"))
        .or_else(|| get("AWS_ENDPOINT_URL"))
        .map(|u| u.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| format!("https://{host}.{region}.amazonaws.com"))
}

/// Keys and values of one profile section.
#[derive(Debug, Default)]
struct Profile(Vec<(String, String)>);

impl Profile {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// Adds the keys `other` has and this one lacks (the first file wins).
    fn merge(&mut self, other: Profile) {
        for (k, v) in other.0 {
            if self.get(&k).is_none() {
                self.0.push((k, v));
            }
        }
    }
}

/// The `key = value` lines of the INI section `[name]`.
fn section(text: &str, name: &str) -> Profile {
    let mut inside = false;
    let mut found = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = header.split_whitespace().collect::<Vec<_>>().join(" ") == name;
            continue;
        }
        if inside && let Some((k, v)) = line.split_once('=') {
            found.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    Profile(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn environment_keys_and_region_come_first_unless_a_profile_is_configured() {
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("credentials");
        std::fs::write(
            &creds,
            "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = default-secret\n\n\
             [ops]\naws_access_key_id=AKIDOPS\naws_secret_access_key=ops-secret\naws_session_token=ops-token\n",
        )
        .unwrap();
        let config = dir.path().join("config");
        std::fs::write(
            &config,
            "[default]\nregion = eu-west-1\n[profile ops]\nregion = eu-central-1\n",
        )
        .unwrap();
        let files = [
            ("AWS_SHARED_CREDENTIALS_FILE", creds.to_str().unwrap()),
            ("AWS_CONFIG_FILE", config.to_str().unwrap()),
        ];
        let mut with_keys = files.to_vec();
        with_keys.extend([
            ("AWS_ACCESS_KEY_ID", "AKIDENV"),
            ("AWS_SECRET_ACCESS_KEY", "env-secret"),
            ("AWS_REGION", "us-west-2"),
            ("AWS_DEFAULT_REGION", "us-east-2"),
        ]);
        let s = AwsSettings::resolve(&env(&with_keys), None, None).unwrap();
        assert_eq!(s.credentials.access_key_id, "AKIDENV");
        assert_eq!(s.region, "us-west-2");
        // A configured profile wins over the environment's keys.
        let s = AwsSettings::resolve(&env(&with_keys), Some("ops"), Some("ap-south-1")).unwrap();
        assert_eq!(s.credentials.access_key_id, "AKIDOPS");
        assert_eq!(s.credentials.session_token.as_deref(), Some("ops-token"));
        assert_eq!(s.region, "ap-south-1");
        // AWS_PROFILE, with the profile's region from the config file.
        let mut by_name = files.to_vec();
        by_name.push(("AWS_PROFILE", "ops"));
        let s = AwsSettings::resolve(&env(&by_name), None, None).unwrap();
        assert_eq!(s.credentials.access_key_id, "AKIDOPS");
        assert_eq!(s.region, "eu-central-1");
        let s = AwsSettings::resolve(&env(&files), None, None).unwrap();
        assert_eq!(s.credentials.access_key_id, "AKIDDEFAULT");
        assert_eq!(s.region, "eu-west-1");
        // AWS_DEFAULT_REGION when AWS_REGION is absent.
        let mut default_region = files.to_vec();
        default_region.push(("AWS_DEFAULT_REGION", "us-east-2"));
        let s = AwsSettings::resolve(&env(&default_region), None, None).unwrap();
        assert_eq!(s.region, "us-east-2");
    }

    #[test]
    fn missing_credentials_or_region_are_configuration_errors_without_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().to_str().unwrap();
        let e = AwsSettings::resolve(
            &env(&[("HOME", home), ("AWS_REGION", "eu-west-1")]),
            None,
            None,
        )
        .unwrap_err();
        assert!(
            e.message().contains("no AWS credentials"),
            "{}",
            e.message()
        );
        let e = AwsSettings::resolve(
            &env(&[
                ("HOME", home),
                ("AWS_ACCESS_KEY_ID", "AKID"),
                ("AWS_SECRET_ACCESS_KEY", "very-secret-value"),
            ]),
            None,
            None,
        )
        .unwrap_err();
        assert!(e.message().contains("no AWS region"));
        assert!(!format!("{e:?}").contains("very-secret-value"));
        let e = AwsSettings::resolve(
            &env(&[
                ("HOME", home),
                ("AWS_ACCESS_KEY_ID", "A"),
                ("AWS_SECRET_ACCESS_KEY", "B"),
            ]),
            None,
            Some("eu-west-1/../x"),
        )
        .unwrap_err();
        assert!(e.message().contains("not a region name"));
    }

    #[test]
    fn the_endpoint_override_of_the_service_comes_first() {
        let both = env(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:4566/"),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://127.0.0.1:5000"),
        ]);
        assert_eq!(
            endpoint(&both, "SECRETS_MANAGER", "secretsmanager", "eu-west-1"),
            "http://127.0.0.1:5000"
        );
        assert_eq!(
            endpoint(
                &both,
                "COGNITO_IDENTITY_PROVIDER",
                "cognito-idp",
                "eu-west-1"
            ),
            "http://127.0.0.1:4566"
        );
        assert_eq!(
            endpoint(&env(&[]), "SECRETS_MANAGER", "secretsmanager", "eu-west-1"),
            "https://secretsmanager.eu-west-1.amazonaws.com"
        );
    }
}
