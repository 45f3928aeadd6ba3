//! portcullis-oidc's integration tests, against the mock provider over HTTP.

mod forwarding;
mod provider_urls;
