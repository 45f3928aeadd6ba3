//! The issuer's integration tests: one binary.

mod common;
mod discovery;
mod refresh;
mod token;
