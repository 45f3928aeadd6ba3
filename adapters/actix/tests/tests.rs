//! End-to-end tests: actix-web applications protected by portcullis, against
//! the mock provider.

mod conformance;
mod prefix;
