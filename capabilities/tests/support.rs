//! Test harness: the shared `redis-server` starter.

pub(crate) use portcullis_testing::{RedisServer, free_port};
