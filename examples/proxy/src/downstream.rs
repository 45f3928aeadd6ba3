//! A protected downstream service: `GET /protected` answers who called and
//! until when their token is valid, for a valid access token only, and every
//! request it receives is recorded in a [`CallLog`].

use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use portcullis_axum::{AuthLayer, Caller};
use portcullis_core::Authenticator;

/// One request the service received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The answer's status.
    pub status: u16,
    /// The `exp` of the accepted token; `None` when it was refused.
    pub token_expires_at: Option<u64>,
}

/// The requests the service received, in order. Clones share the log.
#[derive(Debug, Clone, Default)]
pub struct CallLog(Arc<Mutex<Vec<Call>>>);

impl CallLog {
    /// Every request so far.
    pub fn calls(&self) -> Vec<Call> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn push(&self, call: Call) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(call);
    }
}

/// The accepted token's expiry, passed from the handler to the log.
#[derive(Debug, Clone, Copy)]
struct Expiry(u64);

/// The service: `auth` decides (401 without a valid token), `log` records.
pub fn app(auth: Authenticator, log: CallLog) -> Router {
    Router::new()
        .route("/protected", get(protected))
        .layer(AuthLayer::new(auth))
        .layer(middleware::from_fn_with_state(log, record))
}

async fn protected(Caller(caller): Caller) -> Response {
    let p = &caller.principal;
    let who = p.email().unwrap_or(p.user_id());
    let mut resp =
        format!("hello {who}; your token is valid until {}", p.expires_at()).into_response();
    resp.extensions_mut().insert(Expiry(p.expires_at()));
    resp
}

async fn record(State(log): State<CallLog>, req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    log.push(Call {
        status: resp.status().as_u16(),
        token_expires_at: resp.extensions().get::<Expiry>().map(|e| e.0),
    });
    resp
}
