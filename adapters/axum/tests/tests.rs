//! End-to-end tests: an axum app protected by portcullis, against the mock provider.

mod login_support;
mod support;

mod attacks;
mod capabilities;
mod conformance;
mod dependencies;
mod jwks;
mod login;
mod login_attacks;
#[cfg(feature = "utoipa")]
mod openapi;
mod resource_server;
