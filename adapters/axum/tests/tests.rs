//! End-to-end tests: an axum app protected by portcullis, against the mock provider.

mod support;

mod attacks;
mod capabilities;
mod jwks;
mod resource_server;
