//! A second third-party OpenID Connect provider for tests: easy-oauth's own
//! mock server (`easy_oauth.testing.oauth_mock:app` from the PyPI package
//! `easy-oauth`), served by uvicorn as a child process on `127.0.0.1`.
//!
//! portcullis takes over from easy-oauth, so its relying party must work
//! against the provider easy-oauth's own tests use, quirks included: under
//! HTTP Basic client authentication the ID token's `aud` is `null` (the mock
//! reads `client_id` from the form only), and access tokens are opaque.
//! Both are handled by configuration a user could also write
//! (`token_endpoint_auth_method: client_secret_post`; the access token is
//! never read as a JWT).
//!
//! The packages are pinned in `testing/py/requirements.txt` and live in a
//! virtual environment outside the clone, [`EasyOauthServer::venv_dir`]
//! (`$HOME/.cache/portcullis/easy-oauth-venv`, or
//! `PORTCULLIS_EASY_OAUTH_VENV`); `cargo xtask ci` creates it when it is
//! missing or was made from another requirements file. When it is missing,
//! starting the server fails with an error that says so, rather than
//! skipping, as [`NodeOidcServer`](crate::NodeOidcServer) does.

use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::BufReader;
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::announced::{self, Announced};

/// How long the server may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The directory holding the requirements file and the launcher.
fn py_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("py")
}

/// easy-oauth's mock provider running under uvicorn on `127.0.0.1`; killed
/// on drop (and it exits when its standard input closes, so it also dies
/// with the test process).
///
/// It signs ID tokens with RS256, takes the client's id (and ignores its
/// secret) from the token request's form, approves every authorization
/// request as the one user it knows (the email given at start), and revokes
/// whatever token it is sent.
///
/// ```no_run
/// # async fn example() -> std::io::Result<()> {
/// use portcullis_testing::EasyOauthServer;
///
/// let server = EasyOauthServer::start("alice@example.com").await?;
/// assert!(server.issuer().starts_with("http://127.0.0.1:"));
/// let discovery = server.discovery_url(); // {issuer}/.well-known/openid-configuration
/// # let _ = discovery;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct EasyOauthServer {
    child: Child,
    /// Kept open: closing it stops the server.
    _stdin: ChildStdin,
    /// Kept open, so that a late write by the server never fails.
    _stdout: BufReader<ChildStdout>,
    issuer: String,
    port: u16,
    email: String,
}

impl EasyOauthServer {
    /// The virtual environment the server runs from:
    /// `PORTCULLIS_EASY_OAUTH_VENV` when set, else
    /// `$HOME/.cache/portcullis/easy-oauth-venv`.
    pub fn venv_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os("PORTCULLIS_EASY_OAUTH_VENV") {
            return PathBuf::from(dir);
        }
        let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
        home.join(".cache/portcullis/easy-oauth-venv")
    }

    /// The pinned requirements file the environment is made from.
    pub fn requirements_file() -> PathBuf {
        py_dir().join("requirements.txt")
    }

    /// Whether [`venv_dir`](Self::venv_dir) holds an environment made from
    /// the current [`requirements_file`](Self::requirements_file) (the
    /// installer leaves a copy of it there once every package is in).
    pub fn installed() -> bool {
        let venv = Self::venv_dir();
        let wanted = std::fs::read(Self::requirements_file());
        let made_from = std::fs::read(venv.join("requirements.txt"));
        venv.join("bin/python").is_file() && matches!((wanted, made_from), (Ok(a), Ok(b)) if a == b)
    }

    /// Starts the server, with `email` as the user's address, and waits until
    /// it accepts connections.
    ///
    /// Fails with [`ErrorKind::NotFound`] and a message naming
    /// `cargo xtask ci` when the environment is missing or stale, and with
    /// [`ErrorKind::TimedOut`] when the server does not announce its address
    /// within 30 seconds.
    pub async fn start(email: &str) -> io::Result<EasyOauthServer> {
        let venv = Self::venv_dir();
        if !Self::installed() {
            return Err(io::Error::new(
                ErrorKind::NotFound,
                format!(
                    "{} does not hold an environment made from testing/py/requirements.txt: \
                     easy-oauth's mock provider is not installed; run `cargo xtask ci` \
                     (which installs it first), or `python3 -m venv DIR && DIR/bin/pip install \
                     --no-deps --ignore-requires-python -r testing/py/requirements.txt && cp \
                     testing/py/requirements.txt DIR/` with DIR that directory",
                    venv.display()
                ),
            ));
        }
        let python = venv.join("bin/python");
        let script = py_dir().join("oauth_mock_server.py");
        let child = Command::new(&python)
            .arg(&script)
            .arg("--email")
            .arg(email)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONWARNINGS", "ignore")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", python.display())))?;
        let Announced {
            child,
            stdin,
            stdout,
            ready,
        } = announced::wait_for(child, "oauth_mock_server.py", START_TIMEOUT).await?;
        Ok(EasyOauthServer {
            child,
            _stdin: stdin,
            _stdout: stdout,
            issuer: ready.issuer,
            port: ready.port,
            email: email.to_owned(),
        })
    }

    /// The issuer, `http://127.0.0.1:PORT` (no trailing slash).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `path` (starting with `/`) on the server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// The discovery document's URL: `{issuer}/.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> String {
        self.url("/.well-known/openid-configuration")
    }

    /// The email in the ID tokens the server issues.
    pub fn email(&self) -> &str {
        &self.email
    }
}

impl Drop for EasyOauthServer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
