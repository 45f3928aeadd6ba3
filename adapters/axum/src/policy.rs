//! The policy decision of the layer (feature `policy`): the request
//! described for the gate, its body read when the policy reads bodies.

use std::any::Any;

use axum::body::Body;
use axum::extract::{MatchedPath, OriginalUri};
use axum::response::{IntoResponse, Response};
use http::Request;
use http::request::Parts;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use portcullis_adapter_kit::policy::{PolicyRequest, PolicyStep};
use portcullis_adapter_kit::{Gate, Refusal};
use portcullis_core::{Authenticated, Error};

use crate::{AuthRejection, Headers, reply_response};

/// What a decision needs from the request's head: the path as the client
/// sent it (before `nest` stripped a prefix), the template axum matched
/// (present when the layer was added with `Router::layer` or
/// `Router::route_layer`).
fn describe<'a>(parts: &'a Parts, headers: &'a Headers<'a>) -> PolicyRequest<'a> {
    let uri = parts
        .extensions
        .get::<OriginalUri>()
        .map_or(&parts.uri, |o| &o.0);
    PolicyRequest {
        method: parts.method.as_str(),
        path: uri.path(),
        query: uri.query(),
        route: parts
            .extensions
            .get::<MatchedPath>()
            .map(MatchedPath::as_str),
        headers,
    }
}

fn refused(refusal: Refusal) -> Response {
    AuthRejection(refusal).into_response()
}

/// Asks the gate's policy about `req` from `caller`: the request back to
/// go on (its body intact), or the answer instead.
pub(crate) async fn check<B: Send + 'static>(
    gate: &Gate,
    caller: Option<&Authenticated>,
    req: Request<B>,
) -> Result<Request<B>, Response> {
    let (parts, body) = req.into_parts();
    let limit = match gate.policy_step(&describe(&parts, &Headers(&parts.headers))) {
        PolicyStep::Pass => return Ok(Request::from_parts(parts, body)),
        PolicyStep::Decide => {
            let decided = {
                let headers = Headers(&parts.headers);
                gate.decide_request(caller, &describe(&parts, &headers), None)
            };
            decided.await.map_err(refused)?;
            return Ok(Request::from_parts(parts, body));
        }
        PolicyStep::ReadBody(limit) => limit,
    };
    // The body is read as axum's `Body`, the body of every axum router;
    // a service with another body type cannot hand it to the policy.
    let body = match (Box::new(body) as Box<dyn Any>).downcast::<Body>() {
        Ok(body) => *body,
        Err(_) => {
            tracing::error!(
                "the policy reads request bodies, but this service's body is not axum's"
            );
            return Err(refused(Refusal::new(
                Error::config("the policy reads request bodies: serve it with axum's Body"),
                gate.realm(),
            )));
        }
    };
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<LengthLimitError>() => return Err(reply_response(gate.body_too_large())),
        Err(_) => return Err(refused(gate.unreadable_body())),
    };
    let decided = {
        let headers = Headers(&parts.headers);
        gate.decide_request(caller, &describe(&parts, &headers), Some(&bytes))
    };
    decided.await.map_err(refused)?;
    // Back to the handler, as it came.
    let body = (Box::new(Body::from(bytes)) as Box<dyn Any>)
        .downcast::<B>()
        .map_err(|_| refused(gate.unreadable_body()))?;
    Ok(Request::from_parts(parts, *body))
}
