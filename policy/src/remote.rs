//! [`RemoteOpa`]: decisions asked of an Open Policy Agent server over its
//! REST Data API.

use std::time::Duration;

use portcullis_core::Error;
use portcullis_core::config::check_provider_url;
use portcullis_core::http_client::{HttpClient, read_bounded};
use serde_json::Value;

use crate::decision::Decision;

/// The largest answer read from an OPA server (64 KiB). A decision answer
/// is `{"result": true, "decision_id": "..."}`; the cap leaves room for
/// servers that add metrics or provenance.
pub const MAX_OPA_ANSWER_BYTES: usize = 64 * 1024;

/// The longest `decision_id` kept from an answer for the decision event.
const MAX_DECISION_ID: usize = 128;

/// An OPA server's decisions for one rule: `POST {url}/v1/data/{path}`
/// with `{"input": ...}`.
///
/// - Requests go through core's [`HttpClient`] (no redirects, rustls,
///   connect and total timeouts); connections are kept and reused.
/// - The answer is read under [`MAX_OPA_ANSWER_BYTES`].
/// - `{"result": true}` allows, `{"result": false}` refuses, an answer
///   without `result` (the rule is undefined) refuses.
/// - A `result` that is not a boolean, any status but 200, an answer that
///   is not a JSON object, a timeout or a connection failure is
///   *unavailable* (503): never a pass.
/// - OPA's `decision_id`, when the server sends one, goes into the
///   decision event.
///
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct RemoteOpa {
    client: HttpClient,
    endpoint: String,
    timeout: Duration,
}

/// An OPA answer: the decision and the server's decision id.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) decision: Decision,
    pub(crate) decision_id: Option<String>,
}

impl RemoteOpa {
    /// A client for the rule at `data_path` (`httpapi/authz/allow`) of the
    /// server at `url`, each decision bounded by `timeout`.
    ///
    /// Nothing is sent yet: a server that is down at start-up makes every
    /// decision unavailable (503) until it answers.
    ///
    /// # Errors
    ///
    /// A configuration error when `url` breaks the HTTPS rule
    /// ([`check_provider_url`]; `danger_allow_plain_http` lifts it for
    /// non-loopback hosts) or the client cannot be built.
    pub fn new(
        url: &str,
        data_path: &str,
        timeout: Duration,
        danger_allow_plain_http: bool,
    ) -> Result<Self, Error> {
        check_provider_url("policy.url", url, danger_allow_plain_http)?;
        let endpoint = format!(
            "{}/v1/data/{}",
            url.trim_end_matches('/'),
            data_path.trim_start_matches('/')
        );
        Ok(Self {
            client: HttpClient::new(timeout)?,
            endpoint,
            timeout,
        })
    }

    /// The URL decisions are asked at.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Asks for a decision; `body` is `{"input": ...}`.
    pub(crate) async fn ask(&self, body: Vec<u8>) -> Result<Answer, Error> {
        let request = async {
            let resp = self
                .client
                .reqwest()
                .post(&self.endpoint)
                .header("content-type", "application/json")
                .header("accept", "application/json")
                .body(body)
                .send()
                .await
                .map_err(|e| {
                    let why = if e.is_timeout() {
                        "did not answer in time"
                    } else {
                        "could not be reached"
                    };
                    Error::unavailable(format!("the OPA server {why}")).with_source(e.without_url())
                })?;
            let status = resp.status().as_u16();
            let bytes = read_bounded(resp, MAX_OPA_ANSWER_BYTES)
                .await
                .map_err(|e| {
                    Error::unavailable(format!("the OPA server's answer could not be read: {e}"))
                })?;
            if status != 200 {
                return Err(Error::unavailable(format!(
                    "the OPA server answered status {status}"
                )));
            }
            parse(&bytes)
        };
        // The client's total timeout bounds the request; this bounds
        // everything around it too.
        tokio::time::timeout(self.timeout, request)
            .await
            .unwrap_or_else(|_| Err(Error::unavailable("the OPA server did not answer in time")))
    }
}

/// Reads an OPA Data API answer.
fn parse(bytes: &[u8]) -> Result<Answer, Error> {
    let Ok(Value::Object(mut answer)) = serde_json::from_slice::<Value>(bytes) else {
        return Err(Error::unavailable(
            "the OPA server's answer is not a JSON object",
        ));
    };
    let decision_id = match answer.remove("decision_id") {
        Some(Value::String(id)) => Some(printable(&id)),
        _ => None,
    };
    let decision = match answer.remove("result") {
        None => Decision::Undefined,
        Some(Value::Bool(true)) => Decision::Allow,
        Some(Value::Bool(false)) => Decision::Deny,
        Some(_) => {
            return Err(Error::unavailable(
                "the OPA server's result is not a boolean (is the rule the decision rule?)",
            ));
        }
    };
    Ok(Answer {
        decision,
        decision_id,
    })
}

/// A server-given id made safe for a log line: visible ASCII, bounded.
fn printable(id: &str) -> String {
    id.chars()
        .filter(char::is_ascii_graphic)
        .take(MAX_DECISION_ID)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers() {
        let ok = |text: &str| parse(text.as_bytes()).unwrap();
        assert_eq!(ok(r#"{"result": true}"#).decision, Decision::Allow);
        assert_eq!(ok(r#"{"result": false}"#).decision, Decision::Deny);
        assert_eq!(ok("{}").decision, Decision::Undefined);
        let with_id = ok(r#"{"result": true, "decision_id": "a1\n\u001b[31m"}"#);
        assert_eq!(with_id.decision_id.as_deref(), Some("a1[31m"));
        for bad in [
            r#"{"result": "true"}"#,
            r#"{"result": null}"#,
            r#"{"result": {"allow": true}}"#,
            r#"{"result": 1}"#,
            "[]",
            "true",
            "<html>",
            "",
        ] {
            let e = parse(bad.as_bytes()).unwrap_err();
            assert_eq!(e.status(), 503, "{bad}");
        }
    }

    #[test]
    fn endpoints() {
        let r = RemoteOpa::new(
            "http://127.0.0.1:8181/",
            "httpapi/authz/allow",
            Duration::from_secs(1),
            false,
        )
        .unwrap();
        assert_eq!(
            r.endpoint(),
            "http://127.0.0.1:8181/v1/data/httpapi/authz/allow"
        );
        let prefixed = RemoteOpa::new(
            "https://gw.example.com/opa",
            "a/allow",
            Duration::from_secs(1),
            false,
        )
        .unwrap();
        assert_eq!(
            prefixed.endpoint(),
            "https://gw.example.com/opa/v1/data/a/allow"
        );
        assert!(
            RemoteOpa::new(
                "http://opa.example.com",
                "a/allow",
                Duration::from_secs(1),
                false
            )
            .is_err()
        );
    }
}
