//! What an adapter's middleware does for a gate's policy (feature
//! `policy`): the request described once, framework-neutral
//! ([`PolicyRequest`]), what the middleware must do next
//! ([`PolicyStep`]), and the decision ([`Gate::decide_request`]).

use std::future::Future;

use portcullis_core::{Authenticated, Error, HeaderLookup, Reply};
use portcullis_policy::{RequestInfo, normalize_route, route_params};

use crate::{Gate, Refusal};

/// A request as an adapter's middleware hands it to the gate's policy:
/// everything borrowed from the framework's request.
#[derive(Clone, Copy)]
pub struct PolicyRequest<'a> {
    /// The method as sent (`GET`, `OPTIONS`, ...).
    pub method: &'a str,
    /// The raw path as the client sent it (before any prefix was stripped
    /// by nesting, before percent-decoding), without the query.
    pub path: &'a str,
    /// The raw query, without `?`.
    pub query: Option<&'a str>,
    /// The route template the framework matched, in its own syntax
    /// (`/files/{name}`, `/files/:name`), when the framework knows it.
    pub route: Option<&'a str>,
    /// The request's headers.
    pub headers: &'a (dyn HeaderLookup + Sync),
}

impl std::fmt::Debug for PolicyRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("route", &self.route)
            .finish_non_exhaustive()
    }
}

/// What the middleware does after authentication, as
/// [`Gate::policy_step`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyStep {
    /// The request goes on without a decision: the gate has no policy, or
    /// the request is exempt (skip list, a CORS preflight passed on).
    Pass,
    /// Ask [`Gate::decide_request`] without the body.
    Decide,
    /// Read the body, at most this many bytes (answer
    /// [`Gate::body_too_large`] past it), ask [`Gate::decide_request`]
    /// with it, and hand it on to the handler unchanged.
    ReadBody(usize),
}

/// The error code of the answer to a body past the policy's limit.
pub const BODY_TOO_LARGE: &str = "request_too_large";

impl Gate {
    /// What the middleware does with `request` for the gate's policy.
    pub fn policy_step(&self, request: &PolicyRequest<'_>) -> PolicyStep {
        let Some(policy) = self.policy() else {
            return PolicyStep::Pass;
        };
        let route = request.route.map(normalize_route);
        let mut info = RequestInfo::new(request.method, request.path).with_headers(request.headers);
        if let Some(route) = &route {
            info = info.with_route(route, &[]);
        }
        if policy.exempt(&info) {
            return PolicyStep::Pass;
        }
        match policy.body_limit() {
            Some(limit) => PolicyStep::ReadBody(limit),
            None => PolicyStep::Decide,
        }
    }

    /// Asks the gate's policy about `request` (and its `body`, when
    /// [`policy_step`](Self::policy_step) asked for it) from `caller`, the
    /// caller authentication has just verified (`None`: a guest). The
    /// route template is [normalized](portcullis_policy::normalize_route)
    /// and its parameters read from the raw path
    /// ([`route_params`](portcullis_policy::route_params)), so every
    /// adapter gives the policy the same input.
    ///
    /// The request is read before this returns; the future borrows the
    /// gate only.
    ///
    /// # Errors
    ///
    /// As [`Gate::decide`]: 401 for a guest refused, 403 for a caller
    /// refused (deny or undefined), 503 when the engine cannot decide, 400
    /// when the path, a parameter, the query or the body cannot be read,
    /// 500 when the gate has no policy.
    pub fn decide_request<'g>(
        &'g self,
        caller: Option<&Authenticated>,
        request: &PolicyRequest<'_>,
        body: Option<&[u8]>,
    ) -> impl Future<Output = Result<(), Refusal>> + Send + use<'g> {
        let route = request.route.map(normalize_route);
        let params = match &route {
            Some(route) => route_params(route, request.path),
            None => Ok(Vec::new()),
        };
        let decided = params.map(|params| {
            let pairs: Vec<(&str, &str)> = params
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            let mut info =
                RequestInfo::new(request.method, request.path).with_headers(request.headers);
            if let Some(route) = &route {
                info = info.with_route(route, &pairs);
            }
            if let Some(query) = request.query {
                info = info.with_query(query);
            }
            if let Some(body) = body {
                info = info.with_body(body);
            }
            self.decide(caller, &info)
        });
        async move {
            match decided {
                Ok(decided) => decided.await,
                Err(error) => Err(Refusal::new(error, self.realm())),
            }
        }
    }

    /// The answer to a request whose body is larger than the policy reads
    /// (413, a JSON body, `Cache-Control: no-store`), the same on every
    /// adapter.
    pub fn body_too_large(&self) -> Reply {
        Reply::json_no_store(
            413,
            &serde_json::json!({
                "error": BODY_TOO_LARGE,
                "error_description": "the request body is larger than the policy reads",
            }),
        )
    }

    /// The refusal of a request whose body could not be read (400): the
    /// client stopped sending it, or sent it malformed.
    pub fn unreadable_body(&self) -> Refusal {
        Refusal::new(
            Error::invalid_request("the request body could not be read"),
            self.realm(),
        )
    }
}

#[cfg(test)]
mod tests {
    use portcullis_core::config::{IssuerConfig, VerifierConfig};
    use portcullis_core::{Authenticator, CredentialsConfig, TokenVerifier};
    use portcullis_policy::{Guests, InputShape, Policy, PolicyConfig};

    use super::*;

    const POLICY: &str = "package httpapi.authz\n\n\
        allow if {\n\
        \tinput.route == \"/files/{name}\"\n\
        \tinput.params.name == \"a/b\"\n\
        \tcount(input.path) == 2\n\
        }\n\n\
        allow if input.body.ok == true\n";

    async fn gate(config: impl FnOnce(PolicyConfig) -> PolicyConfig) -> (Gate, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("directory");
        std::fs::write(dir.path().join("authz.rego"), POLICY).expect("policy");
        let config = config(
            PolicyConfig::rego(dir.path())
                .with_input(InputShape::Native)
                .with_guests(Guests::Policy),
        );
        let policy = Policy::from_config(&config).await.expect("policy");
        let issuer = IssuerConfig::new("https://id.example.com").with_audience("api");
        let verifier = TokenVerifier::new(VerifierConfig::new([("main".to_owned(), issuer)]))
            .expect("verifier");
        let gate = Gate::new(Authenticator::new(verifier, CredentialsConfig::default()))
            .with_policy(policy)
            .expect("gate");
        (gate, dir)
    }

    struct Pairs<'a>(&'a [(&'a str, &'a str)]);

    impl HeaderLookup for Pairs<'_> {
        fn header(&self, name: &str) -> Option<&str> {
            self.0.header(name)
        }
    }

    fn request<'a>(
        method: &'a str,
        path: &'a str,
        route: Option<&'a str>,
        headers: &'a Pairs<'a>,
    ) -> PolicyRequest<'a> {
        PolicyRequest {
            method,
            path,
            query: None,
            route,
            headers,
        }
    }

    #[tokio::test]
    async fn every_framework_template_gives_the_same_input() {
        let (gate, _dir) = gate(|c| c).await;
        let none = Pairs(&[]);
        for route in ["/files/{name}", "/files/:name", "/files/{name:.+}"] {
            let r = request("GET", "/files/a%2Fb", Some(route), &none);
            assert_eq!(gate.policy_step(&r), PolicyStep::Decide);
            gate.decide_request(None, &r, None)
                .await
                .unwrap_or_else(|e| panic!("{route}: {e}"));
        }
        // Without the template the rule cannot match: refused, never a pass.
        let r = request("GET", "/files/a%2Fb", None, &none);
        let refused = gate.decide_request(None, &r, None).await.unwrap_err();
        assert_eq!(refused.status(), 401);
        // A parameter that does not decode is 400.
        let r = request("GET", "/files/%FF", Some("/files/{name}"), &none);
        let refused = gate.decide_request(None, &r, None).await.unwrap_err();
        assert_eq!(refused.status(), 400);
    }

    #[tokio::test]
    async fn skip_lists_preflights_and_bodies() {
        let (gate, _dir) = gate(|c| {
            c.with_skip(["/health", "/public/{file}"])
                .with_cors_preflight(portcullis_policy::CorsPreflight::Pass)
                .with_body_limit(32)
        })
        .await;
        let step = |method, path, route, headers: &[(&str, &str)]| {
            gate.policy_step(&request(method, path, route, &Pairs(headers)))
        };
        assert_eq!(step("GET", "/health", None, &[]), PolicyStep::Pass);
        assert_eq!(
            step("GET", "/health/deep", None, &[]),
            PolicyStep::ReadBody(32)
        );
        assert_eq!(
            step("GET", "/public/a", Some("/public/:file"), &[]),
            PolicyStep::Pass
        );
        let preflight = [
            ("origin", "https://a.example"),
            ("access-control-request-method", "PUT"),
        ];
        assert_eq!(step("OPTIONS", "/x", None, &preflight), PolicyStep::Pass);
        assert_eq!(
            step("OPTIONS", "/x", None, &preflight[..1]),
            PolicyStep::ReadBody(32)
        );
        let headers = Pairs(&[("content-type", "application/json")]);
        let r = request("POST", "/x", None, &headers);
        gate.decide_request(None, &r, Some(br#"{"ok": true}"#))
            .await
            .expect("the body is read");
        let reply = gate.body_too_large();
        assert_eq!(reply.status, 413);
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        assert!(reply.body_text().contains(BODY_TOO_LARGE));
    }

    #[tokio::test]
    async fn a_gate_without_a_policy_passes_to_the_handlers() {
        let issuer = IssuerConfig::new("https://id.example.com").with_audience("api");
        let verifier = TokenVerifier::new(VerifierConfig::new([("main".to_owned(), issuer)]))
            .expect("verifier");
        let gate = Gate::new(Authenticator::new(verifier, CredentialsConfig::default()));
        assert_eq!(
            gate.policy_step(&request("GET", "/", None, &Pairs(&[]))),
            PolicyStep::Pass
        );
    }
}
