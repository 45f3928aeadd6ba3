//! The policy decision of the middleware (feature `policy`): the request
//! described for the gate, its body read when the policy reads bodies.

use poem::error::ReadBodyError;
use poem::{PathPattern, Request, Response};
use portcullis_adapter_kit::policy::{PolicyRequest, PolicyStep};
use portcullis_adapter_kit::{Gate, Refusal};
use portcullis_core::Authenticated;

use crate::{Headers, reply_response};

/// What a decision needs from the request's head: the path as the client
/// sent it (before `nest` stripped a prefix), and the pattern poem's
/// `Route` matched, present when the middleware wraps the routed
/// endpoints.
fn describe<'a>(req: &'a Request, headers: &'a Headers<'a>) -> PolicyRequest<'a> {
    // A request poem's server did not serve (its `TestClient`) has `/`
    // for an original URI.
    let original = req.original_uri();
    let uri = if original.path() == "/" {
        req.uri()
    } else {
        original
    };
    PolicyRequest {
        method: req.method().as_str(),
        path: uri.path(),
        query: uri.query(),
        route: req.data::<PathPattern>().map(|p| &*p.0),
        headers,
    }
}

fn refused(refusal: &Refusal) -> Response {
    reply_response(refusal.to_reply())
}

/// Asks the gate's policy about `req` from `caller`: `Ok` to go on (the
/// body put back intact when it was read), or the answer instead.
pub(crate) async fn check(
    gate: &Gate,
    caller: Option<&Authenticated>,
    req: &mut Request,
) -> Result<(), Response> {
    let limit = match gate.policy_step(&describe(req, &Headers(req.headers()))) {
        PolicyStep::Pass => return Ok(()),
        PolicyStep::Decide => {
            let decided = {
                let headers = Headers(req.headers());
                gate.decide_request(caller, &describe(req, &headers), None)
            };
            return decided.await.map_err(|r| refused(&r));
        }
        PolicyStep::ReadBody(limit) => limit,
    };
    let body = match req.take_body().into_bytes_limit(limit).await {
        Ok(body) => body,
        Err(ReadBodyError::PayloadTooLarge) => return Err(reply_response(gate.body_too_large())),
        Err(_) => return Err(refused(&gate.unreadable_body())),
    };
    let decided = {
        let headers = Headers(req.headers());
        gate.decide_request(caller, &describe(req, &headers), Some(&body))
    };
    decided.await.map_err(|r| refused(&r))?;
    // Back to the handler, as it came.
    req.set_body(body);
    Ok(())
}
