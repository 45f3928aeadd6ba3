//! The worker's out-of-the-box mode: a key generated on the spot stands in
//! for the scheduler that would sign job tokens, so `cargo run -p
//! example-worker` needs no configuration, no secret and no server.

use portcullis_core::config::{IssuerConfig, StaticKey, VerifierConfig};
use portcullis_core::mint::SigningKey;
use portcullis_core::{Algorithm, Error};
use serde_json::json;

use crate::{Job, Worker, WorkerConfig};

/// The issuer of the demo's tokens.
pub const ISSUER: &str = "https://scheduler.example.invalid";

/// The audience of the demo's tokens.
pub const AUDIENCE: &str = "jobs";

/// A worker trusting a freshly generated key, and that key to mint tokens.
#[derive(Debug)]
pub struct Demo {
    /// The worker, trusting [`ISSUER`]'s key (ES256, static: no fetch).
    pub worker: Worker,
    key: SigningKey,
}

impl Demo {
    /// Generates a key and builds a worker that trusts it.
    ///
    /// # Errors
    ///
    /// When a key cannot be generated.
    pub fn new() -> Result<Self, Error> {
        let key = SigningKey::generate(Algorithm::ES256, "scheduler-1")?;
        let pem = key
            .public_pem()
            .ok_or_else(|| Error::config("the demo key has no public PEM"))?;
        let issuer = IssuerConfig::new(ISSUER)
            .with_key(StaticKey::pem(Some(key.kid().to_owned()), pem))
            .with_algorithms([Algorithm::ES256])
            .with_audience(AUDIENCE);
        let worker = Worker::new(WorkerConfig::new(VerifierConfig::new([(
            "scheduler".to_owned(),
            issuer,
        )])))?;
        Ok(Self { worker, key })
    }

    /// A token for `subject` holding `scope`, expiring `expires_in` seconds
    /// from now (negative: in the past).
    ///
    /// # Errors
    ///
    /// When signing fails.
    pub fn token(&self, subject: &str, scope: &str, expires_in: i64) -> Result<String, Error> {
        self.key
            .sign(&claims(subject, scope, expires_in), Some("at+jwt"))
    }

    /// The demo's jobs, each with what it shows.
    ///
    /// # Errors
    ///
    /// When signing or key generation fails.
    pub fn jobs(&self) -> Result<Vec<(&'static str, Job)>, Error> {
        let writer = self.token("batch-7", "write", 3600)?;
        let reader = self.token("report-bot", "read", 3600)?;
        let expired = self.token("batch-7", "write", -3600)?;
        // Same issuer and kid, another key: a forgery.
        let stranger = SigningKey::generate(Algorithm::ES256, "scheduler-1")?
            .sign(&claims("intruder", "admin", 3600), Some("at+jwt"))?;
        Ok(vec![
            (
                "a writer reindexes (write)",
                Job::new(writer.as_str(), "reindex"),
            ),
            (
                "a writer reads a report (write implies read)",
                Job::new(writer.as_str(), "report"),
            ),
            (
                "a reader tries to reindex",
                Job::new(reader.as_str(), "reindex"),
            ),
            (
                "a writer tries to purge (admin)",
                Job::new(writer.as_str(), "purge"),
            ),
            ("an expired token", Job::new(expired.as_str(), "reindex")),
            (
                "a token signed by another key",
                Job::new(stranger.as_str(), "purge"),
            ),
            ("not a token at all", Job::new("hello", "report")),
        ])
    }
}

fn claims(subject: &str, scope: &str, expires_in: i64) -> serde_json::Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let exp = now.saturating_add_signed(expires_in);
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": subject,
        "scope": scope,
        "iat": now.min(exp),
        "exp": exp,
    })
}
