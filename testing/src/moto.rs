//! [`MotoServer`]: moto's server, a local emulator of AWS services (here
//! Secrets Manager and Cognito user pools), as a child process on a
//! loopback port, for tests that talk to AWS's real wire protocol.
//!
//! moto is a Python package: `cargo xtask ci` installs the versions pinned
//! in `testing/moto/requirements.txt` into a virtual environment outside
//! the checkout, `$PORTCULLIS_MOTO_VENV` or else
//! `$HOME/.cache/portcullis/moto-venv`. When it is missing, starting the
//! server fails with an error that says how to install it, rather than
//! skipping. The server runs with `AWS_EC2_METADATA_DISABLED=true` and
//! dummy credentials: nothing in it can reach AWS or the instance
//! metadata address.

use std::io::{self, ErrorKind};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::redis::free_port;

/// How long the server may take to answer its first request.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The dummy credentials every client of the server signs with.
pub const MOTO_ACCESS_KEY_ID: &str = "testing";
/// See [`MOTO_ACCESS_KEY_ID`].
pub const MOTO_SECRET_ACCESS_KEY: &str = "testing";

/// The virtual environment moto is installed in.
pub fn moto_venv() -> PathBuf {
    if let Some(dir) = std::env::var_os("PORTCULLIS_MOTO_VENV") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache/portcullis/moto-venv")
}

/// A running `moto_server`; stopped when dropped.
#[derive(Debug)]
pub struct MotoServer {
    child: Option<Child>,
    port: u16,
}

impl MotoServer {
    /// Starts `moto_server` on a free loopback port and waits until it answers.
    ///
    /// # Errors
    ///
    /// `NotFound` (with how to install it) when moto is not installed; any
    /// error starting it; `TimedOut` when it does not answer in time.
    pub async fn start() -> io::Result<Self> {
        Self::start_checking_signatures_after(None).await
    }

    /// [`start`](Self::start), with moto's access control on after
    /// `actions` requests (`INITIAL_NO_AUTH_ACTION_COUNT`): from then on,
    /// every request must be signed (Signature Version 4, checked) with an
    /// access key of an IAM user whose policy allows the action. The first
    /// `actions` requests set that up.
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start).
    pub async fn start_checking_signatures_after(actions: Option<u32>) -> io::Result<Self> {
        let binary = moto_venv().join("bin").join("moto_server");
        if !binary.is_file() {
            return Err(io::Error::new(
                ErrorKind::NotFound,
                format!(
                    "{} is missing: moto is not installed; run `cargo xtask ci` (which installs it), \
                     or `python3 -m venv {venv} && {venv}/bin/pip install --no-deps -r \
                     testing/moto/requirements.txt` from the workspace root",
                    binary.display(),
                    venv = moto_venv().display()
                ),
            ));
        }
        let port = free_port();
        let mut command = Command::new(&binary);
        if let Some(actions) = actions {
            command.env("INITIAL_NO_AUTH_ACTION_COUNT", actions.to_string());
        }
        let child = command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ACCESS_KEY_ID", MOTO_ACCESS_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", MOTO_SECRET_ACCESS_KEY)
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ENDPOINT_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let server = Self {
            child: Some(child),
            port,
        };
        server.wait_ready().await?;
        Ok(server)
    }

    async fn wait_ready(&self) -> io::Result<()> {
        let client = reqwest::Client::new();
        let url = format!("{}/moto-api/", self.endpoint());
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(resp) = client.get(&url).send().await
                && resp.status().is_success()
            {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(io::Error::new(
                    ErrorKind::TimedOut,
                    "moto_server did not answer in time",
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `http://127.0.0.1:{port}`: what `AWS_ENDPOINT_URL` is set to.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// Calls the JSON API of `service` (`secretsmanager`, `cognito-idp`):
    /// `target` (e.g. `secretsmanager.CreateSecret`,
    /// `AWSCognitoIdentityProviderService.CreateUserPool`) with `body`;
    /// answers the status and the JSON answer. moto does not check
    /// signatures: the request carries a well-formed unsigned
    /// `Authorization` naming the service, which moto routes by.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached.
    pub async fn call(
        &self,
        service: &str,
        target: &str,
        body: &serde_json::Value,
    ) -> io::Result<(u16, serde_json::Value)> {
        let resp = reqwest::Client::new()
            .post(format!("{}/", self.endpoint()))
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", target)
            .header(
                "authorization",
                format!(
                    "AWS4-HMAC-SHA256 Credential={MOTO_ACCESS_KEY_ID}/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"
                ),
            )
            .body(body.to_string())
            .send()
            .await
            .map_err(io::Error::other)?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(io::Error::other)?;
        Ok((status, serde_json::from_slice(&bytes).unwrap_or_default()))
    }

    /// Calls a query-protocol API (IAM: `Action=CreateUser&...`) with the
    /// form `params`; answers the status and the XML answer as text.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached.
    pub async fn call_query(
        &self,
        service: &str,
        params: &[(&str, &str)],
    ) -> io::Result<(u16, String)> {
        let resp = reqwest::Client::new()
            .post(format!("{}/", self.endpoint()))
            .header(
                "authorization",
                format!(
                    "AWS4-HMAC-SHA256 Credential={MOTO_ACCESS_KEY_ID}/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"
                ),
            )
            .header("content-type", "application/x-www-form-urlencoded")
            .body(
                url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(params)
                    .finish(),
            )
            .send()
            .await
            .map_err(io::Error::other)?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(io::Error::other)?;
        Ok((status, text))
    }

    /// Stops the server (a later request finds nothing listening).
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
            let _ = child.wait().await;
        }
    }
}
