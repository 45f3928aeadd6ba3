//! [`SecretsManager`]: AWS Secrets Manager's `GetSecretValue`, signed with
//! Signature Version 4, over core's [`HttpClient`], as a
//! [`SecretSource`] for automation principals.

use std::collections::HashMap;
use std::time::Duration;

use portcullis_core::Error;
use portcullis_core::automation::{SecretFuture, SecretSource};
use portcullis_core::clock::{self, SharedClock};
use portcullis_core::config::check_provider_url;
use portcullis_core::http_client::{HttpClient, read_bounded};

use crate::aws::{AwsSettings, endpoint};
use crate::sigv4;

/// The largest answer read: a secret holds at most 64 KiB, its answer
/// wraps it in JSON.
pub const MAX_SECRET_ANSWER_BYTES: usize = 256 * 1024;

/// AWS Secrets Manager, read with `GetSecretValue`.
#[derive(Debug, Clone)]
pub struct SecretsManager {
    client: HttpClient,
    settings: AwsSettings,
    endpoint: String,
    host: String,
    issuer: String,
    clock: SharedClock,
}

impl SecretsManager {
    /// A client with `settings`, its endpoint from `env`
    /// (`AWS_ENDPOINT_URL_SECRETS_MANAGER`, `AWS_ENDPOINT_URL`, else AWS's).
    ///
    /// # Errors
    ///
    /// A configuration error when the endpoint is not `https` (plain `http`
    /// is allowed on loopback hosts only) or the HTTP client cannot be built.
    pub fn new(settings: AwsSettings, env: &HashMap<String, String>) -> Result<Self, Error> {
        let endpoint = endpoint(env, "SECRETS_MANAGER", "secretsmanager", &settings.region);
        check_provider_url("AWS_ENDPOINT_URL_SECRETS_MANAGER", &endpoint, false)?;
        let url = url::Url::parse(&endpoint)
            .map_err(|_| Error::config("the Secrets Manager endpoint is not a URL"))?;
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => return Err(Error::config("the Secrets Manager endpoint has no host")),
        };
        Ok(Self {
            client: HttpClient::new(Duration::from_secs(5))?,
            issuer: format!("aws-secretsmanager:{}", settings.region),
            settings,
            endpoint,
            host,
            clock: clock::system(),
        })
    }

    /// Signs with the time of `clock` (tests).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The endpoint requests go to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    async fn get(&self, name: &str) -> Result<Option<String>, Error> {
        let body = serde_json::json!({ "SecretId": name }).to_string();
        let target = "secretsmanager.GetSecretValue";
        let content_type = "application/x-amz-json-1.1";
        let signed = sigv4::sign(
            &sigv4::Request {
                method: "POST",
                path: "/",
                query: &[],
                headers: &[
                    ("host", &self.host),
                    ("content-type", content_type),
                    ("x-amz-target", target),
                ],
                payload: body.as_bytes(),
            },
            &self.settings.credentials,
            &self.settings.region,
            "secretsmanager",
            &sigv4::amz_date(self.clock.now_secs()),
        );
        let mut request = self
            .client
            .reqwest()
            .post(format!("{}/", self.endpoint))
            .header("content-type", content_type)
            .header("x-amz-target", target)
            .header("x-amz-date", &signed.x_amz_date)
            .header("authorization", &signed.authorization);
        if let Some(token) = &signed.x_amz_security_token {
            request = request.header("x-amz-security-token", token);
        }
        let unavailable = |why: &'static str| Error::unavailable(format!("Secrets Manager: {why}"));
        let resp = request
            .body(body)
            .send()
            .await
            .map_err(|e| unavailable("cannot be reached").with_source(e.without_url()))?;
        let status = resp.status().as_u16();
        let answer = read_bounded(resp, MAX_SECRET_ANSWER_BYTES)
            .await
            .map_err(|e| unavailable("the answer could not be read").with_source(e))?;
        let json: serde_json::Value = serde_json::from_slice(&answer).unwrap_or_default();
        if status == 200 {
            return Ok(Some(
                // A binary secret is no `{"token", "id"}`: the empty text
                // makes it a malformed secret.
                json.get("SecretString")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned(),
            ));
        }
        let kind = json
            .get("__type")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        // `__type` may be prefixed with a namespace (`...#ResourceNotFoundException`).
        let kind = kind.rsplit('#').next().unwrap_or_default();
        match (status, kind) {
            (400 | 404, "ResourceNotFoundException") => Ok(None),
            _ => {
                tracing::debug!(status, kind, "Secrets Manager refused GetSecretValue");
                Err(Error::unavailable(format!(
                    "Secrets Manager answered {status} {kind}"
                )))
            }
        }
    }
}

impl SecretSource for SecretsManager {
    fn issuer(&self) -> &str {
        &self.issuer
    }

    fn get_secret<'a>(&'a self, name: &'a str) -> SecretFuture<'a> {
        Box::pin(self.get(name))
    }
}
