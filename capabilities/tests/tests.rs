//! Integration tests of portcullis-capabilities: one behaviour suite run
//! against every backend, and the guarantees particular to each.
//!
//! The Redis tests start real `redis-server` processes on loopback ports; they
//! fail, and say so, where `redis-server` is not installed.

mod config;
mod file;
mod fuzz;
mod memory;
#[cfg(feature = "redis")]
#[macro_use]
mod redis_backend;
#[cfg(feature = "redis")]
mod redis_cache;
mod service;
mod suite;
#[cfg(feature = "redis")]
mod support;
