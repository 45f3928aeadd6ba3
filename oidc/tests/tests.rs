//! portcullis-oidc's integration tests, against the mock provider over HTTP.

mod force_user;
mod forwarding;
mod provider_urls;
