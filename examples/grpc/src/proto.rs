//! The wire contract: protobuf messages and the generated `Board` server and
//! client.
//!
//! The messages are written with `prost`'s derive instead of compiled from a
//! `.proto` file, so building needs no `protoc`. They are the Rust form of:
//!
//! ```proto
//! syntax = "proto3";
//! package portcullis.example.v1;
//!
//! // Announcements, protected by portcullis.
//! service Board {
//!   // The verified caller and its capabilities. Needs a caller.
//!   rpc WhoAmI(WhoAmIRequest) returns (WhoAmIReply);
//!   // Posts an announcement. Needs the `announce` capability.
//!   rpc Announce(AnnounceRequest) returns (AnnounceReply);
//! }
//!
//! message WhoAmIRequest {}
//! message WhoAmIReply {
//!   string user_id = 1;
//!   string email = 2;
//!   repeated string capabilities = 3;
//! }
//! message AnnounceRequest { string message = 1; }
//! message AnnounceReply { string announcement = 1; }
//! ```
//!
//! Any gRPC client (grpcurl with this file as `-proto`, another language's
//! stubs) can call the service.

/// The `WhoAmI` request: empty.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct WhoAmIRequest {}

/// The `WhoAmI` answer.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct WhoAmIReply {
    /// The caller's user id (the token's `sub`, unless configured otherwise).
    #[prost(string, tag = "1")]
    pub user_id: String,
    /// The caller's email, empty when the token has none.
    #[prost(string, tag = "2")]
    pub email: String,
    /// The capabilities the caller holds, with everything they imply, sorted.
    #[prost(string, repeated, tag = "3")]
    pub capabilities: Vec<String>,
}

/// The `Announce` request.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct AnnounceRequest {
    /// What to announce.
    #[prost(string, tag = "1")]
    pub message: String,
}

/// The `Announce` answer.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct AnnounceReply {
    /// The announcement as posted.
    #[prost(string, tag = "1")]
    pub announcement: String,
}

// The server and client that build.rs generated from its description of the
// service. Generated code documents what it can, not everything.
#[allow(missing_docs, unreachable_pub, clippy::all)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/portcullis.example.v1.Board.rs"));
}

pub use generated::board_client::BoardClient;
pub use generated::board_server::{Board, BoardServer};
