//! Integration tests of portcullis-policy: one suite against both engines
//! (the embedded engine, and a mock OPA server answering with it over
//! HTTP on loopback), then what only the remote or the embedded engine does.
//!
//! Every test runs under a time bound: nothing may hang.

mod both;
mod common;
mod embedded;
mod remote;
mod runner;
