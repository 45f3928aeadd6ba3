//! [`MockOpa`]: an Open Policy Agent server for tests, answering OPA's REST
//! Data API with portcullis-policy's embedded engine, or with faults.

use std::collections::HashSet;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use portcullis_policy::{EmbeddedRego, RegoOptions};
use serde_json::{Value, json};
use tokio::sync::watch;

/// A way to make [`MockOpa`] misbehave; see [`MockOpa::set_fault`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpaFault {
    /// Answer with this HTTP status and an OPA error body; a code that is
    /// not a valid status answers 500.
    Status(u16),
    /// Never answer (until the server shuts down).
    Hang,
    /// Answer 200 with a body that is not JSON.
    Garbage,
    /// Answer 200 `{}`: OPA's answer for an undefined document.
    Empty,
    /// Answer 200 with this JSON body as it is.
    Body(String),
}

/// An OPA server on `127.0.0.1`, started from the current tokio runtime.
///
/// `POST /v1/data/{path}` with `{"input": ...}` evaluates `data.{path}`
/// (`/v1/data/httpapi/authz/allow` is `data.httpapi.authz.allow`; a
/// package path answers the package's document) with an
/// [`EmbeddedRego`] over a policy directory, and answers as OPA does:
/// `{"result": ..., "decision_id": "..."}`, or `{"decision_id": "..."}`
/// when the document is undefined; an evaluation error is 500 with OPA's
/// error body. The engine reloads the directory when it changes (every
/// 50 ms by default), so a test edits a policy file and the server follows.
/// `GET /health` answers 200 `{}`.
///
/// Tests make it fail with [`set_fault`](Self::set_fault) (a status, a
/// hang, garbage, `{}`), count its requests and read the inputs it
/// received ([`inputs`](Self::inputs)), e.g. to check that no credential
/// ever reaches a policy, and the connections they came on
/// ([`connections`](Self::connections)).
///
/// Clones share one server. It stops when [`shutdown`](Self::shutdown) is
/// called or the last clone is dropped; hanging requests end then too.
///
/// ```
/// use portcullis_testing::{MockOpa, OpaFault};
/// # fn main() -> std::io::Result<()> {
/// # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
/// # runtime.block_on(async {
/// let dir = tempfile::tempdir()?;
/// std::fs::write(dir.path().join("authz.rego"), "package httpapi.authz\n\nallow if input.user == \"alice\"\n")?;
/// let opa = MockOpa::start(dir.path()).await?;
/// let client = reqwest::Client::new();
/// let ask = |user: &'static str| {
///     client
///         .post(format!("{}/v1/data/httpapi/authz/allow", opa.url()))
///         .body(format!("{{\"input\": {{\"user\": \"{user}\"}}}}"))
///         .send()
/// };
/// let answer: serde_json::Value = ask("alice").await.unwrap().json().await.unwrap();
/// assert_eq!(answer["result"], true);
/// assert!(answer["decision_id"].is_string());
/// let answer: serde_json::Value = ask("bob").await.unwrap().json().await.unwrap();
/// assert!(answer.get("result").is_none(), "undefined");
///
/// opa.set_fault(Some(OpaFault::Status(500)));
/// assert_eq!(ask("alice").await.unwrap().status(), 500);
/// assert_eq!(opa.requests(), 3);
/// assert_eq!(opa.inputs()[0], serde_json::json!({"user": "alice"}));
/// # Ok(())
/// # })
/// # }
/// ```
#[derive(Clone)]
pub struct MockOpa {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    state: Arc<Shared>,
    /// Dropping it (with the last handle) stops the server, as does sending `true`.
    shutdown: watch::Sender<bool>,
}

struct Shared {
    engine: EmbeddedRego,
    fault: Mutex<Option<OpaFault>>,
    requests: AtomicUsize,
    inputs: Mutex<Vec<Value>>,
    peers: Mutex<HashSet<SocketAddr>>,
    decisions: AtomicU64,
    stop: watch::Receiver<bool>,
}

impl fmt::Debug for MockOpa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockOpa")
            .field("url", &self.inner.url)
            .field("engine", &self.inner.state.engine)
            .field("fault", &*self.inner.state.fault())
            .field("requests", &self.requests())
            .finish()
    }
}

impl Shared {
    fn fault(&self) -> std::sync::MutexGuard<'_, Option<OpaFault>> {
        self.fault.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl MockOpa {
    /// Starts a server over the policies in `dir`, reloaded every 50 ms
    /// when they change.
    ///
    /// # Errors
    ///
    /// If the policies do not load (the error names the file, line and
    /// reason) or the port cannot be bound.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub async fn start(dir: impl Into<PathBuf>) -> io::Result<MockOpa> {
        let options = RegoOptions::default()
            .reload_interval(Duration::from_millis(50))
            .timeout(Duration::from_secs(5));
        let engine = EmbeddedRego::open(dir, options)
            .await
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.message().to_owned()))?;
        Self::start_with(engine).await
    }

    /// Starts a server answering with `engine`, on a free port.
    ///
    /// # Errors
    ///
    /// If the port cannot be bound.
    pub async fn start_with(engine: EmbeddedRego) -> io::Result<MockOpa> {
        Self::serve(engine, 0).await
    }

    /// Starts a server answering with `engine` on `127.0.0.1:port` (0: a
    /// free one), for a test that needs the address before the server
    /// exists.
    ///
    /// # Errors
    ///
    /// If the port cannot be bound.
    pub async fn serve(engine: EmbeddedRego, port: u16) -> io::Result<MockOpa> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let (shutdown, stop) = watch::channel(false);
        let state = Arc::new(Shared {
            engine,
            fault: Mutex::new(None),
            requests: AtomicUsize::new(0),
            inputs: Mutex::new(Vec::new()),
            peers: Mutex::new(HashSet::new()),
            decisions: AtomicU64::new(0),
            stop: stop.clone(),
        });
        let app = Router::new()
            .route("/v1/data/{*path}", post(data))
            .route("/health", get(health))
            .with_state(state.clone());
        let mut stop = stop;
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            // Ends on `true`, or with an error once every handle is gone.
            let _ = stop.wait_for(|stop| *stop).await;
        });
        tokio::spawn(async move {
            let _ = server.await;
        });
        Ok(MockOpa {
            inner: Arc::new(Inner {
                url: format!("http://{addr}"),
                state,
                shutdown,
            }),
        })
    }

    /// The server's base URL, `http://127.0.0.1:{port}`: a policy's
    /// `url`.
    pub fn url(&self) -> String {
        self.inner.url.clone()
    }

    /// The engine answering.
    pub fn engine(&self) -> &EmbeddedRego {
        &self.inner.state.engine
    }

    /// Makes every answer from now on the fault (or normal again with `None`).
    pub fn set_fault(&self, fault: Option<OpaFault>) {
        *self.inner.state.fault() = fault;
    }

    /// How many Data API requests the server received.
    pub fn requests(&self) -> usize {
        self.inner.state.requests.load(Ordering::SeqCst)
    }

    /// How many client connections sent Data API requests (distinct peer
    /// addresses): a client that keeps its connections alive makes one.
    pub fn connections(&self) -> usize {
        self.inner
            .state
            .peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// The inputs the server received, oldest first (requests without an
    /// input are not listed).
    pub fn inputs(&self) -> Vec<Value> {
        self.inner
            .state
            .inputs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Stops the server: it accepts no more connections, and hanging
    /// requests end.
    pub fn shutdown(&self) {
        let _ = self.inner.shutdown.send(true);
    }
}

async fn health() -> Response {
    (StatusCode::OK, axum::Json(json!({}))).into_response()
}

/// OPA's error body.
fn opa_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"code": code, "message": message})),
    )
        .into_response()
}

async fn data(
    State(state): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(path): Path<String>,
    body: Bytes,
) -> Response {
    state.requests.fetch_add(1, Ordering::SeqCst);
    state
        .peers
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(peer);
    let input = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|mut b| b.get_mut("input").map(Value::take));
    if let Some(input) = &input {
        state
            .inputs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(input.clone());
    }
    let fault = state.fault().clone();
    match fault {
        None => {}
        Some(OpaFault::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return opa_error(status, "internal_error", "the mock server is set to fail");
        }
        Some(OpaFault::Hang) => {
            let mut stop = state.stop.clone();
            let _ = stop.wait_for(|stop| *stop).await;
            return opa_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "internal_error",
                "shutting down",
            );
        }
        Some(OpaFault::Garbage) => {
            return (
                [(header::CONTENT_TYPE, "application/json")],
                "<html>not an answer</html>",
            )
                .into_response();
        }
        Some(OpaFault::Empty) => {
            return ([(header::CONTENT_TYPE, "application/json")], "{}").into_response();
        }
        Some(OpaFault::Body(body)) => {
            return ([(header::CONTENT_TYPE, "application/json")], body).into_response();
        }
    }
    if serde_json::from_slice::<Value>(&body).is_err() && !body.is_empty() {
        return opa_error(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            "the body is not JSON",
        );
    }
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let valid = |s: &str| {
        s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && s.bytes().next().is_some_and(|b| !b.is_ascii_digit())
    };
    if segments.is_empty() || !segments.iter().all(|s| valid(s)) {
        return opa_error(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            "the mock server answers for rule and package paths only",
        );
    }
    let reference = format!("data.{}", segments.join("."));
    let id = format!(
        "mock-{:08}",
        state.decisions.fetch_add(1, Ordering::SeqCst) + 1
    );
    match state
        .engine
        .evaluate(&reference, input.unwrap_or(Value::Null))
    {
        Ok(Some(result)) => {
            axum::Json(json!({"result": result, "decision_id": id})).into_response()
        }
        Ok(None) => axum::Json(json!({"decision_id": id})).into_response(),
        Err(e) => opa_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            e.message(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn server() -> (MockOpa, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("p.rego"),
            "package app\n\nallow if input.user == \"ann\"\nlimit := 3\n",
        )
        .unwrap();
        (MockOpa::start(dir.path()).await.unwrap(), dir)
    }

    async fn post(opa: &MockOpa, path: &str, body: &str) -> (u16, String) {
        let resp = reqwest::Client::new()
            .post(format!("{}{path}", opa.url()))
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    #[tokio::test]
    async fn answers_like_opa() {
        let (opa, _dir) = server().await;
        let (status, body) =
            post(&opa, "/v1/data/app/allow", r#"{"input": {"user": "ann"}}"#).await;
        assert_eq!(status, 200);
        let answer: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            answer,
            json!({"result": true, "decision_id": "mock-00000001"})
        );
        // Undefined: no `result`.
        let (_, body) = post(&opa, "/v1/data/app/allow", r#"{"input": {"user": "bob"}}"#).await;
        assert_eq!(body, r#"{"decision_id":"mock-00000002"}"#);
        // A package answers its document.
        let (_, body) = post(&opa, "/v1/data/app", r#"{"input": {"user": "ann"}}"#).await;
        let answer: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(answer["result"], json!({"allow": true, "limit": 3}));
        // Not a path it can answer, not JSON.
        assert_eq!(post(&opa, "/v1/data/app/a-b", "{}").await.0, 400);
        assert_eq!(post(&opa, "/v1/data/app/allow", "{not json").await.0, 400);
        assert_eq!(opa.requests(), 5);
        assert_eq!(opa.inputs().len(), 3);
        assert_eq!(opa.connections(), 5, "a new client per request here");
        let health = reqwest::get(format!("{}/health", opa.url())).await.unwrap();
        assert_eq!(health.status(), 200);
    }

    #[tokio::test]
    async fn faults() {
        let (opa, _dir) = server().await;
        let ask = || post(&opa, "/v1/data/app/allow", r#"{"input": {"user": "ann"}}"#);
        opa.set_fault(Some(OpaFault::Status(502)));
        let (status, body) = ask().await;
        assert_eq!(status, 502);
        assert!(body.contains("internal_error"), "{body}");
        opa.set_fault(Some(OpaFault::Status(1000)));
        assert_eq!(ask().await.0, 500);
        opa.set_fault(Some(OpaFault::Garbage));
        let (status, body) = ask().await;
        assert_eq!(status, 200);
        assert!(serde_json::from_str::<Value>(&body).is_err(), "{body}");
        opa.set_fault(Some(OpaFault::Empty));
        assert_eq!(ask().await, (200, "{}".to_owned()));
        opa.set_fault(Some(OpaFault::Body(r#"{"result": "yes"}"#.to_owned())));
        assert_eq!(ask().await.1, r#"{"result": "yes"}"#);
        // A hanging answer ends when the server shuts down.
        opa.set_fault(Some(OpaFault::Hang));
        let hung = tokio::spawn({
            let opa = opa.clone();
            async move {
                reqwest::Client::new()
                    .post(format!("{}/v1/data/app/allow", opa.url()))
                    .body("{}")
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!hung.is_finished(), "the answer hangs");
        opa.shutdown();
        let status = tokio::time::timeout(Duration::from_secs(10), hung)
            .await
            .expect("the hanging request ends at shutdown")
            .unwrap();
        assert_eq!(status.unwrap(), 503);
        opa.set_fault(None);
    }
}
