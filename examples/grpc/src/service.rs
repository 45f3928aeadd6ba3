//! [`BoardService`]: the `Board` methods, each deciding with portcullis.
//!
//! The caller was verified by [`GrpcAuthLayer`](crate::GrpcAuthLayer); each
//! method asks [`Capabilities`] what the caller may do, so the rules
//! (what implies what, defaults, stored grants) are the same as in the HTTP
//! examples.

use portcullis_capabilities::Capabilities;
use portcullis_core::Authenticated;
use portcullis_core::credentials::require_caller;
use tonic::{Code, Request, Response, Status};

use crate::proto::{AnnounceReply, AnnounceRequest, Board, WhoAmIReply, WhoAmIRequest};
use crate::status::from_error;

/// The longest announcement accepted, in characters.
pub const MAX_ANNOUNCEMENT_CHARS: usize = 280;

/// The capability `Announce` needs.
pub const ANNOUNCE: &str = "announce";

/// The `Board` service over a [`Capabilities`] service.
#[derive(Debug, Clone)]
pub struct BoardService {
    capabilities: Capabilities,
}

impl BoardService {
    /// A service deciding with `capabilities`.
    pub fn new(capabilities: Capabilities) -> Self {
        Self { capabilities }
    }
}

/// The caller the auth layer stored in the request, if any.
fn caller<T>(request: &Request<T>) -> Option<&Authenticated> {
    request.extensions().get::<Authenticated>()
}

#[tonic::async_trait]
impl Board for BoardService {
    async fn who_am_i(
        &self,
        request: Request<WhoAmIRequest>,
    ) -> Result<Response<WhoAmIReply>, Status> {
        let caller = require_caller(caller(&request)).map_err(|e| from_error(&e))?;
        let held = self
            .capabilities
            .of(Some(caller))
            .await
            .map_err(|e| from_error(&e))?;
        let principal = &caller.principal;
        Ok(Response::new(WhoAmIReply {
            user_id: principal.user_id().to_owned(),
            email: principal.email().unwrap_or_default().to_owned(),
            capabilities: self.capabilities.graph().names_of(&held),
        }))
    }

    async fn announce(
        &self,
        request: Request<AnnounceRequest>,
    ) -> Result<Response<AnnounceReply>, Status> {
        let caller = caller(&request);
        // Authorization first: a caller without the capability learns
        // nothing about what a valid request looks like.
        self.capabilities
            .require(caller, ANNOUNCE)
            .await
            .map_err(|e| from_error(&e))?;
        let message = request.get_ref().message.trim();
        if message.is_empty() {
            return Err(Status::new(Code::InvalidArgument, "the message is empty"));
        }
        if message.chars().count() > MAX_ANNOUNCEMENT_CHARS {
            return Err(Status::new(
                Code::InvalidArgument,
                format!("the message is longer than {MAX_ANNOUNCEMENT_CHARS} characters"),
            ));
        }
        let who = caller.map_or("someone", |c| {
            c.principal.email().unwrap_or(c.principal.user_id())
        });
        Ok(Response::new(AnnounceReply {
            announcement: format!("{who} announces: {message}"),
        }))
    }
}
