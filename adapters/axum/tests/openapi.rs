//! utoipa documents (feature `utoipa`): every operation's documented
//! security is the one its extractors enforce. The app's own document is
//! walked, and each operation called without credentials, with tokens
//! lacking each documented name and with one holding exactly them.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Path;
use axum::routing::get;
use axum::{Json, Router};
use http::{Request, StatusCode};
use portcullis_axum::openapi::{Access, BearerScheme, ExtractorSecurity, SCHEME_NAME, routes};
use portcullis_axum::portcullis_capabilities::{
    Capabilities, CapabilityStore, Change, MemoryStore,
};
use portcullis_axum::{
    AuthLayer, Caller, LoginRedirect, RequireCapability, RequireScope, capability, scope,
};
use portcullis_core::config::VerifierConfig;
use portcullis_core::{Authenticator, CapabilitiesConfig, CredentialsConfig, Secret};
use portcullis_testing::MockProvider;
use serde_json::{Value, json};
use utoipa::openapi::OpenApi as Document;
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::support::{Reply, issuer_config, send, verifier_on_clock_of};

scope!(Read = "read");
scope!(Audit = "audit");
capability!(Write = "write");
capability!(Payroll = "payroll");

const SECRET: &str = "an application secret key of at least 32 bytes";

/// Open to everyone.
#[utoipa::path(get, path = "/health")]
async fn health() -> &'static str {
    "ok"
}

/// Greets the caller, or a guest.
#[utoipa::path(get, path = "/hello")]
async fn hello(caller: Option<Caller>) -> String {
    match caller {
        Some(Caller(c)) => format!("hello {}", c.principal.user_id()),
        None => "hello guest".to_owned(),
    }
}

/// Who is calling.
#[utoipa::path(get, path = "/me")]
async fn me(Caller(c): Caller) -> String {
    c.principal.user_id().to_owned()
}

/// One report (scope `read`).
#[utoipa::path(get, path = "/reports/{id}", params(("id" = u32, Path)))]
async fn report(_: RequireScope<Read>, Path(id): Path<u32>) -> String {
    format!("report {id}")
}

/// Handlers registered by their path, two on one route.
mod notes {
    use super::*;

    /// The notes (scope `read`).
    #[utoipa::path(get, path = "/notes")]
    pub(super) async fn list(_: RequireScope<Read>) -> &'static str {
        "the notes"
    }

    /// Saves a note (capability `write`).
    #[utoipa::path(post, path = "/notes", request_body = Value)]
    pub(super) async fn save(_: RequireCapability<Write>, Json(note): Json<Value>) -> Json<Value> {
        Json(note)
    }
}

/// The payroll: scope `audit` and capability `payroll`.
#[utoipa::path(get, path = "/payroll")]
async fn payroll(_: RequireScope<Audit>, _: RequireCapability<Payroll>) -> &'static str {
    "the payroll"
}

/// The audit log, nested under `/admin`: extractors in a tuple, and an
/// optional caller that the scope makes required.
#[utoipa::path(get, path = "/audit")]
async fn audit(_: (RequireScope<Audit>, Option<Caller>)) -> &'static str {
    "the audit log"
}

#[derive(OpenApi)]
#[openapi(info(title = "portcullis test API"), modifiers(&BearerScheme))]
struct ApiDoc;

/// What the app's document must say, operation by operation.
fn expected() -> Value {
    let caller = |names: &[&str]| json!([{ SCHEME_NAME: names }]);
    json!({
        "GET /health": null,
        "GET /hello": [{}, { SCHEME_NAME: [] }],
        "GET /me": caller(&[]),
        "GET /reports/{id}": caller(&["read"]),
        "GET /notes": caller(&["read"]),
        "POST /notes": caller(&["write"]),
        "GET /payroll": caller(&["audit", "payroll"]),
        "GET /admin/audit": caller(&["audit"]),
    })
}

/// The document and the router, as an application builds them.
fn api() -> (Router, Document) {
    let admin = OpenApiRouter::new().routes(routes!(audit));
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health))
        .routes(routes!(hello))
        .routes(routes!(me))
        .routes(routes!(report))
        .routes(routes!(notes::list, notes::save))
        .routes(routes!(payroll))
        .nest("/admin", admin)
        .split_for_parts()
}

struct Setup {
    provider: MockProvider,
    store: Arc<MemoryStore>,
    caps: Capabilities,
    app: Router,
}

async fn setup() -> Setup {
    let provider = MockProvider::start().await.expect("mock provider");
    let store = Arc::new(MemoryStore::new());
    let config = CapabilitiesConfig::new([("write", Vec::<String>::new()), ("payroll", vec![])]);
    let caps = Capabilities::builder(config, store.clone(), Secret::new(SECRET))
        .clock(Arc::new(provider.clock()))
        .build()
        .expect("capabilities");
    let cfg = VerifierConfig::new([("mock".to_owned(), issuer_config(&provider))]);
    let auth = Authenticator::new(
        verifier_on_clock_of(cfg, &provider),
        CredentialsConfig::default(),
    );
    let (router, document) = api();
    let app = router
        .route(
            "/openapi.json",
            get(move || async move { Json(document.clone()) }),
        )
        .layer(AuthLayer::new(auth).with_capabilities(caps.clone()));
    Setup {
        provider,
        store,
        caps,
        app,
    }
}

impl Setup {
    /// A token whose caller holds exactly `names`: those the capability
    /// graph declares as stored capabilities, the others as scopes.
    async fn holding(&self, names: &[&str]) -> String {
        let (capabilities, scopes): (Vec<&str>, Vec<&str>) = names
            .iter()
            .partition(|name| self.caps.graph().id(name).is_some());
        let email = format!("holder{}@example.com", capabilities.concat());
        let stored = capabilities.iter().map(|c| (*c).to_owned()).collect();
        self.store
            .update(&email, Change::Set(stored))
            .await
            .expect("stored");
        let scope = ["openid"].iter().chain(&scopes).copied();
        self.provider
            .token()
            .email(email)
            .scope(scope.collect::<Vec<_>>().join(" "))
            .sign()
    }

    /// Calls `method path` (its `{parameters}` filled in), with a JSON body
    /// when the operation documents one.
    async fn call(&self, method: &str, path: &str, op: &Value, token: Option<&str>) -> Reply {
        let uri = path
            .split('/')
            .map(|seg| if seg.starts_with('{') { "7" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let body = if op.get("requestBody").is_some() {
            req = req.header("content-type", "application/json");
            Body::from("{}")
        } else {
            Body::empty()
        };
        send(&self.app, req.body(body).unwrap()).await
    }
}

/// The portcullis requirement an operation documents.
enum Documented {
    Public,
    Optional,
    Caller(Vec<String>),
}

impl Documented {
    fn of(op: &Value) -> Self {
        let Some(security) = op.get("security") else {
            return Documented::Public;
        };
        if *security == json!([{}, { SCHEME_NAME: [] }]) {
            return Documented::Optional;
        }
        match security.as_array().map(Vec::as_slice) {
            Some([only]) if only.as_object().is_some_and(|o| o.len() == 1) => {
                let names = only[SCHEME_NAME].as_array().expect("the scheme's list");
                Documented::Caller(
                    names
                        .iter()
                        .map(|n| n.as_str().unwrap().to_owned())
                        .collect(),
                )
            }
            _ => panic!("an unexpected requirement: {security}"),
        }
    }
}

#[track_caller]
fn assert_status(reply: &Reply, status: StatusCode, what: &str) {
    assert_eq!(reply.status, status, "{what}: {reply:?}");
}

#[tokio::test]
async fn every_documented_operation_enforces_its_documented_security() {
    let s = setup().await;
    let served = send(
        &s.app,
        Request::get("/openapi.json").body(Body::empty()).unwrap(),
    )
    .await;
    assert_status(&served, StatusCode::OK, "the document");
    let doc: Value = serde_json::from_str(&served.body).unwrap();
    assert_eq!(
        doc["components"]["securitySchemes"][SCHEME_NAME],
        json!({
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "A bearer token: the provider's access token or one issued by this \
                service. A requirement's list names the scopes and capabilities the caller must hold.",
        })
    );
    assert!(doc.get("security").is_none(), "no root requirement");

    let mut documented = serde_json::Map::new();
    let mut calls = 0;
    let nobody = s.holding(&[]).await;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("a path item") {
            let method = method.to_uppercase();
            let what = format!("{method} {path}");
            documented.insert(
                what.clone(),
                op.get("security").cloned().unwrap_or(Value::Null),
            );
            let anonymous = s.call(&method, path, op, None).await;
            let with_nothing = s.call(&method, path, op, Some(&nobody)).await;
            calls += 2;
            match Documented::of(op) {
                Documented::Public | Documented::Optional => {
                    assert_status(&anonymous, StatusCode::OK, &what);
                    assert_status(&with_nothing, StatusCode::OK, &what);
                }
                Documented::Caller(names) => {
                    let names: Vec<&str> = names.iter().map(String::as_str).collect();
                    assert_status(&anonymous, StatusCode::UNAUTHORIZED, &what);
                    assert!(
                        anonymous.www_authenticate().starts_with("Bearer "),
                        "{what}: {anonymous:?}"
                    );
                    let lacking = if names.is_empty() {
                        StatusCode::OK
                    } else {
                        StatusCode::FORBIDDEN
                    };
                    assert_status(&with_nothing, lacking, &what);
                    // Each documented name is enforced...
                    for left_out in &names {
                        let rest: Vec<&str> =
                            names.iter().copied().filter(|n| n != left_out).collect();
                        let token = s.holding(&rest).await;
                        let reply = s.call(&method, path, op, Some(&token)).await;
                        assert_status(
                            &reply,
                            StatusCode::FORBIDDEN,
                            &format!("{what} without {left_out}"),
                        );
                        assert!(
                            reply.www_authenticate().contains(&format!("`{left_out}`")),
                            "{what} names what is missing: {reply:?}"
                        );
                        calls += 1;
                    }
                    // ... and nothing else is.
                    let token = s.holding(&names).await;
                    let reply = s.call(&method, path, op, Some(&token)).await;
                    assert_status(&reply, StatusCode::OK, &format!("{what} holding {names:?}"));
                    calls += 1;
                }
            }
        }
    }
    assert_eq!(Value::Object(documented), expected());
    // 8 operations called twice; the 6 protected ones once holding exactly
    // their names and once per name left out (0, 1, 1, 1, 2 and 1 of them).
    assert_eq!(calls, 16 + 6 + 6);
}

#[tokio::test]
async fn an_optional_caller_is_seen_when_present() {
    let s = setup().await;
    let op = json!({});
    let guest = s.call("GET", "/hello", &op, None).await;
    assert_eq!(guest.body, "hello guest");
    let token = s.holding(&[]).await;
    let known = s.call("GET", "/hello", &op, Some(&token)).await;
    assert_eq!(known.body, "hello user-1");
}

/// Requirements written by hand for other schemes, kept and combined.
mod combined {
    use super::*;

    /// Needs an API key and the `read` scope, or a client certificate and the scope.
    #[utoipa::path(get, path = "/keyed", security(("api_key" = []), ("mtls" = [])))]
    pub(super) async fn keyed(_: RequireScope<Read>) {}

    /// An API key, a caller optional.
    #[utoipa::path(get, path = "/maybe", security(("api_key" = [])))]
    pub(super) async fn maybe(_: Option<Caller>) {}

    /// An API key, no caller.
    #[utoipa::path(get, path = "/open", security(("api_key" = [])))]
    pub(super) async fn open() {}

    /// `security(())`: explicitly no requirement, which the capability replaces.
    #[utoipa::path(get, path = "/unsecured", security(()))]
    pub(super) async fn unsecured(_: RequireCapability<Write, LoginRedirect>) {}
}

#[test]
fn other_schemes_are_kept_and_the_portcullis_requirement_added_to_each_alternative() {
    let (_, doc): (Router, _) = OpenApiRouter::new()
        .routes(routes!(combined::keyed))
        .routes(routes!(combined::maybe))
        .routes(routes!(combined::open))
        .routes(routes!(combined::unsecured))
        .split_for_parts();
    let doc = serde_json::to_value(doc).unwrap();
    let security = |path: &str| doc["paths"][path]["get"]["security"].clone();
    assert_eq!(
        security("/keyed"),
        json!([
            { "api_key": [], SCHEME_NAME: ["read"] },
            { "mtls": [], SCHEME_NAME: ["read"] },
        ])
    );
    assert_eq!(
        security("/maybe"),
        json!([{ "api_key": [] }, { "api_key": [], SCHEME_NAME: [] }])
    );
    assert_eq!(security("/open"), json!([{ "api_key": [] }]));
    assert_eq!(security("/unsecured"), json!([{ SCHEME_NAME: ["write"] }]));
}

/// Documents the scheme by hand, which `routes!` refuses.
#[utoipa::path(get, path = "/twice", security(("portcullis" = ["read"])))]
async fn twice(_: RequireScope<Read>) {}

#[test]
#[should_panic(
    expected = "GET /twice: a security requirement for the `portcullis` scheme is written by hand"
)]
fn a_requirement_written_by_hand_is_refused() {
    let _: OpenApiRouter = OpenApiRouter::new().routes(routes!(twice));
}

#[test]
#[should_panic(
    expected = "the document's root: a security requirement for the `portcullis` scheme"
)]
fn a_root_requirement_written_by_hand_is_refused() {
    #[derive(OpenApi)]
    #[openapi(security(("portcullis" = [])), modifiers(&BearerScheme))]
    struct Doc;
    let _ = Doc::openapi();
}

/// An extractor of the application's own, wrapping a portcullis one.
struct Accountant(RequireCapability<Payroll>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Accountant {
    type Rejection = portcullis_axum::AuthRejection;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        RequireCapability::from_request_parts(parts, state)
            .await
            .map(Accountant)
    }
}

impl ExtractorSecurity for Accountant {
    fn access() -> Access {
        RequireCapability::<Payroll>::access()
    }
}

/// The books.
#[utoipa::path(get, path = "/books")]
async fn books(Accountant(who): Accountant, _: RequireScope<Audit>) -> String {
    who.caller()
        .map_or_else(String::new, |c| c.principal.user_id().to_owned())
}

#[test]
fn an_extractor_of_the_application_states_its_own_access() {
    let (_, mut doc): (Router, _) = OpenApiRouter::new()
        .routes(routes!(books))
        .split_for_parts();
    BearerScheme.modify(&mut doc);
    let doc = serde_json::to_value(doc).unwrap();
    assert_eq!(
        doc["paths"]["/books"]["get"]["security"],
        json!([{ SCHEME_NAME: ["payroll", "audit"] }])
    );
    assert_eq!(
        doc["components"]["securitySchemes"][SCHEME_NAME]["type"],
        "http"
    );
}
