//! The policy decision of the middleware (feature `policy`): the request
//! described for the gate, its body read when the policy reads bodies.

use actix_web::HttpMessage;
use actix_web::HttpResponse;
use actix_web::dev::{Payload, ServiceRequest};
use actix_web::web::BytesMut;
use futures_util::StreamExt;
use portcullis_adapter_kit::policy::{PolicyRequest, PolicyStep};
use portcullis_adapter_kit::{Gate, Refusal};
use portcullis_core::Authenticated;

use crate::{Headers, reply_response};

/// What a decision needs from the request's head: the raw path and
/// query, and the template of the resource the path matches
/// (`match_pattern`, known anywhere in the application).
fn describe<'a>(
    req: &'a ServiceRequest,
    route: Option<&'a str>,
    headers: &'a Headers<'a>,
) -> PolicyRequest<'a> {
    PolicyRequest {
        method: req.method().as_str(),
        path: req.uri().path(),
        query: req.uri().query(),
        route,
        headers,
    }
}

fn refused(refusal: &Refusal) -> HttpResponse {
    reply_response(refusal.to_reply())
}

/// Asks the gate's policy about `req` from `caller`: `Ok` to go on (the
/// body put back intact when it was read), or the answer instead.
pub(crate) async fn check(
    gate: &Gate,
    caller: Option<&Authenticated>,
    req: &mut ServiceRequest,
) -> Result<(), HttpResponse> {
    let route = req.match_pattern();
    let headers = Headers(req.headers());
    let limit = match gate.policy_step(&describe(req, route.as_deref(), &headers)) {
        PolicyStep::Pass => return Ok(()),
        PolicyStep::Decide => {
            let decided =
                gate.decide_request(caller, &describe(req, route.as_deref(), &headers), None);
            return decided.await.map_err(|r| refused(&r));
        }
        PolicyStep::ReadBody(limit) => limit,
    };
    let mut payload = req.take_payload();
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let Ok(chunk) = chunk else {
            return Err(refused(&gate.unreadable_body()));
        };
        if body.len() + chunk.len() > limit {
            return Err(reply_response(gate.body_too_large()));
        }
        body.extend_from_slice(&chunk);
    }
    let body = body.freeze();
    let headers = Headers(req.headers());
    let decided = gate.decide_request(
        caller,
        &describe(req, route.as_deref(), &headers),
        Some(&body),
    );
    decided.await.map_err(|r| refused(&r))?;
    // Back to the handler, as it came.
    req.set_payload(Payload::from(body));
    Ok(())
}
