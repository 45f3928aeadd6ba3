//! The conformance suite: portcullis' behaviours written once and run
//! against an application built with each adapter (axum, actix-web, poem),
//! with the responses checked byte for byte against `insta` snapshots that
//! the three share (`testing/conformance-snapshots/`).
//!
//! An adapter's test crate implements [`Adapter`], which serves two small
//! applications, and invokes [`conformance_tests!`](crate::conformance_tests)
//! with it; every behaviour becomes one `#[tokio::test]` there.
//!
//! # The login application
//!
//! Built around a [`RelyingParty`]: its authentication layer/middleware is
//! the adapter's login form (bearer token, then session cookie), its login
//! and management routes are mounted (under `rp.config().prefix`, which they
//! carry), and:
//!
//! | route | guard | answer |
//! |---|---|---|
//! | `GET /` | optional caller | [`greeting`] as `text/plain` |
//! | `GET /me` | caller required | [`me_json`] as `application/json` |
//! | `GET /scoped` | scope `read` | `scoped` |
//! | `GET /read` | capability `read` (401 for guests) | `read` |
//! | `GET /shout` | capability `announce`, browsers sent to log in | `shout` |
//! | `GET /ensure` | caller required, guests that follow redirects sent to log in (easy-oauth's `ensure_email`: the adapter's `LoggedIn`) | [`greeting`] |
//! | `POST /note` | caller required | [`NOTED`] as `text/plain` (the application's own state-changing route) |
//! | `GET /cacheable` | optional caller | [`greeting`], with `Cache-Control: ` [`CACHEABLE`] |
//! | `GET /failing` | none | never reached: a middleware inside the authentication layer fails the request with the framework's error (503 [`INNER_FAILURE`], `text/plain`) |
//!
//! # The resource application
//!
//! Built around an [`Authenticator`] alone (bearer tokens, no capabilities,
//! no login): `GET /`, `GET /me` and `GET /scoped` as above.
//!
//! # The issuer application
//!
//! A portcullis-issuer authorization server ([`issuer_app`]) and nothing
//! else: discovery, JWKS, token, revocation and introspection, mounted by
//! the adapter's `issuer_routes`.
//!
//! # The policy application
//!
//! Built around an [`Authenticator`] and a [`Policy`] (the adapter's
//! `policy` feature), its middleware placed where the framework gives it
//! the matched route template (axum: `Router::layer`; actix-web:
//! `App::wrap`; poem: around each routed endpoint). The cases use the
//! embedded engine over [`policy_dir`] (native input), or a remote one.
//!
//! | route | answer |
//! |---|---|
//! | `GET /` | [`greeting`] |
//! | `GET /health` | `ok` |
//! | `GET /health/deep` | `deep` |
//! | `GET /public/{file}` | `public` |
//! | `GET /files/{name}` | `file` |
//! | `GET /denied` | `denied` |
//! | `POST /records` | the request body, as received (`text/plain`) |
//! | `OPTIONS /records` | `options` (what a CORS layer would answer) |

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use portcullis_core::{Authenticated, Authenticator};
use portcullis_issuer::Issuer;
use portcullis_oidc::{OidcConfig, RelyingParty};
use portcullis_policy::Policy;
use serde_json::json;

use crate::tester::bind_for;
use crate::{AppTester, MockOptions, MockProvider, TestResponse};

pub use crate::serve::Stop;

/// A boxed future, for [`Adapter`]'s methods.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How a web framework serves the two conformance applications.
pub trait Adapter: Send + Sync {
    /// The framework's name, for messages.
    fn name(&self) -> &'static str;

    /// Serves the login application around `rp` on `listener` (already
    /// bound, non-blocking); answers how to stop it.
    fn serve_login(&self, listener: std::net::TcpListener, rp: RelyingParty) -> Stop;

    /// Serves the resource application around `auth` on `listener`.
    fn serve_resource(&self, listener: std::net::TcpListener, auth: Authenticator) -> Stop;

    /// Serves the policy application around `auth` and `policy` on
    /// `listener`.
    fn serve_policy(
        &self,
        listener: std::net::TcpListener,
        auth: Authenticator,
        policy: Policy,
    ) -> Stop;

    /// Serves the issuer application on `listener`: the routes of `issuer`
    /// (the adapter's `issuer_routes`) and nothing else.
    fn serve_issuer(&self, listener: std::net::TcpListener, issuer: Issuer) -> Stop;

    /// The `Debug` forms of the framework's authentication layer or
    /// middleware (and what it wraps a service in, when that can be built
    /// alone) around `rp`, one line each: none may show a token.
    fn middleware_debug(&self, rp: RelyingParty) -> Vec<String>;
}

/// The body of `GET /`: `guest`, or the caller's email (else user id).
pub fn greeting(caller: Option<&Authenticated>) -> String {
    match caller {
        Some(c) => c
            .principal
            .email()
            .unwrap_or(c.principal.user_id())
            .to_owned(),
        None => "guest".to_owned(),
    }
}

/// The body of `GET /me`: the caller's identity as JSON (`kind`: `user` or
/// `automation`).
pub fn me_json(caller: &Authenticated) -> String {
    let p = &caller.principal;
    json!({
        "user_id": p.user_id(),
        "email": p.email(),
        "issuer": p.issuer(),
        "scopes": p.scopes(),
        "kind": p.principal_kind().as_str(),
    })
    .to_string()
}

/// The body of `POST /note`.
pub const NOTED: &str = "noted";

/// The body of the error with which the login application's inner
/// middleware fails `GET /failing` (status 503, `text/plain`).
pub const INNER_FAILURE: &str = "inner failure";

/// The body of `OPTIONS /records` in the policy application.
pub const OPTIONS: &str = "options";

/// The policy directory of the policy application (`authz.rego`, native input).
pub fn policy_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance-policies")
}

/// The `Cache-Control` that `GET /cacheable` sets itself.
pub const CACHEABLE: &str = "public, max-age=60";

/// A random secret key, as an operator generates one (`openssl rand -base64 48`).
///
/// # Panics
///
/// When the system random generator fails.
pub fn random_secret_key() -> String {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).expect("the system random generator works");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A login application being tested, and its provider.
#[derive(Debug)]
pub struct LoginApp {
    /// The mock provider users log in at.
    pub provider: MockProvider,
    /// The application.
    pub app: AppTester,
    /// Its relying party.
    pub rp: RelyingParty,
    /// Holds the user file.
    _dir: tempfile::TempDir,
}

/// The user file of the login application: an admin and a friend who may announce.
pub const USER_FILE: &str = "admin@example.com: [admin]\nfriend@example.com: [announce]\n";

/// easy-oauth's README capability graph.
pub fn graph() -> portcullis_core::CapabilitiesConfig {
    let mut c = portcullis_core::CapabilitiesConfig::new([
        ("read", vec![]),
        ("write", vec!["read"]),
        ("moderate", vec!["read", "write"]),
        ("announce", vec!["read", "write"]),
        ("user_management", vec![]),
    ]);
    c.auto_admin = true;
    c.default_capabilities = vec!["read".to_owned()];
    c
}

/// Starts a provider and `adapter`'s login application, its configuration
/// adjusted by `tweak`.
///
/// # Panics
///
/// When the provider or the application cannot start.
pub async fn login_app(adapter: &dyn Adapter, tweak: impl Fn(&mut OidcConfig)) -> LoginApp {
    login_app_with_stores(adapter, tweak, None).await
}

/// [`login_app`], its relying party using `stores` instead of the
/// configured ones when given.
///
/// # Panics
///
/// When the provider or the application cannot start.
pub async fn login_app_with_stores(
    adapter: &dyn Adapter,
    tweak: impl Fn(&mut OidcConfig),
    stores: Option<portcullis_oidc::portcullis_capabilities::Stores>,
) -> LoginApp {
    start_login_app(adapter, MockOptions::default(), tweak, stores).await
}

/// [`login_app`] on a provider started with `options`.
///
/// # Panics
///
/// When the provider or the application cannot start.
pub async fn login_app_on(
    adapter: &dyn Adapter,
    options: MockOptions,
    tweak: impl Fn(&mut OidcConfig),
) -> LoginApp {
    start_login_app(adapter, options, tweak, None).await
}

async fn start_login_app(
    adapter: &dyn Adapter,
    options: MockOptions,
    tweak: impl Fn(&mut OidcConfig),
    stores: Option<portcullis_oidc::portcullis_capabilities::Stores>,
) -> LoginApp {
    let provider = MockProvider::start_with(options)
        .await
        .expect("the mock provider starts");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let user_file = dir.path().join("caps.yaml");
    std::fs::write(&user_file, USER_FILE).expect("the user file is written");
    let secret = random_secret_key();
    let make = |base: &str| {
        let mut caps = graph();
        caps.user_file = Some(user_file.clone());
        let mut cfg = OidcConfig::new(
            provider.discovery_url(),
            secret.as_str(),
            provider.client_id(),
            base,
        )
        .with_client_secret(provider.client_secret())
        .with_audience(provider.audience())
        .with_capabilities(caps);
        tweak(&mut cfg);
        cfg
    };
    let prefix = make("http://127.0.0.1:1").prefix;
    let (listener, base_url) = bind_for(&provider, &prefix).expect("a loopback port");
    let mut builder = RelyingParty::builder(make(&base_url)).clock(Arc::new(provider.clock()));
    if let Some(stores) = stores {
        builder = builder.stores(stores);
    }
    let rp = builder.build().await.expect("the relying party builds");
    let stop = adapter.serve_login(listener, rp.clone());
    let app = AppTester::serving(base_url, &prefix, stop);
    LoginApp {
        provider,
        app,
        rp,
        _dir: dir,
    }
}

/// Starts `adapter`'s resource application for `provider` around `auth`.
///
/// # Panics
///
/// When no loopback port can be bound.
pub fn resource_app(
    adapter: &dyn Adapter,
    provider: &MockProvider,
    auth: Authenticator,
) -> AppTester {
    let (listener, base_url) = bind_for(provider, "").expect("a loopback port");
    let stop = adapter.serve_resource(listener, auth);
    AppTester::serving(base_url, "", stop)
}

/// Starts `adapter`'s policy application for `provider` around `auth`
/// and `policy`.
///
/// # Panics
///
/// When no loopback port can be bound.
pub fn policy_app(
    adapter: &dyn Adapter,
    provider: &MockProvider,
    auth: Authenticator,
    policy: Policy,
) -> AppTester {
    let (listener, base_url) = bind_for(provider, "").expect("a loopback port");
    let stop = adapter.serve_policy(listener, auth, policy);
    AppTester::serving(base_url, "", stop)
}

/// The issuer application's users, clients and scopes: `alice` /
/// `alice-password` (`user:read user:write`), `bob` / `bob-password`
/// (`user:read`); the public first-party client `web` (also taken for
/// requests that name no client) and the confidential machine client
/// `reports` ([`ISSUER_MACHINE_SECRET`], `reports:read`).
pub fn issuer_config(base_url: &str) -> portcullis_issuer::IssuerConfig {
    use portcullis_issuer::{ClientConfig, IssuerConfig};
    let mut config = IssuerConfig::new(base_url)
        .with_scopes([
            ("user:read", "Read access"),
            ("user:write", "Write access"),
            ("reports:read", "Reports"),
        ])
        .with_client(ClientConfig::first_party("web"))
        .with_client(ClientConfig::machine(
            "reports",
            ISSUER_MACHINE_SECRET,
            &["reports:read"],
        ));
    config.anonymous_client = Some("web".to_owned());
    config
}

/// The secret of the issuer application's machine client `reports`.
pub const ISSUER_MACHINE_SECRET: &str = "reports: a machine secret of 32+ bytes";

fn issuer_users() -> portcullis_issuer::password::Argon2Users {
    use portcullis_issuer::password::{Argon2Users, StoredUser, UserGrant, hash_password};
    static USERS: std::sync::OnceLock<Argon2Users> = std::sync::OnceLock::new();
    USERS
        .get_or_init(|| {
            let user = |name: &str, scopes: &[&str]| {
                let stored = StoredUser {
                    password_hash: hash_password(&format!("{name}-password")).expect("a hash"),
                    grant: UserGrant {
                        user_id: format!("u-{name}"),
                        username: name.to_owned(),
                        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
                        claims: Default::default(),
                    },
                };
                (name.to_owned(), stored)
            };
            Argon2Users::new(
                [
                    user("alice", &["user:read", "user:write"]),
                    user("bob", &["user:read"]),
                ],
                2,
            )
            .expect("the demo users")
        })
        .clone()
}

/// Starts `adapter`'s issuer application ([`issuer_config`], changed by
/// `tweak`; an ES256 key), its URL the application's.
///
/// # Panics
///
/// When no loopback port can be bound or the configuration is refused.
pub fn issuer_app(
    adapter: &dyn Adapter,
    tweak: impl FnOnce(&mut portcullis_issuer::IssuerConfig),
) -> (AppTester, Issuer) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    listener
        .set_nonblocking(true)
        .expect("a non-blocking listener");
    let base_url = format!("http://{}", listener.local_addr().expect("an address"));
    let mut config = issuer_config(&base_url);
    tweak(&mut config);
    let issuer = Issuer::builder(config)
        .credential_check(issuer_users())
        .build()
        .expect("the issuer");
    let stop = adapter.serve_issuer(listener, issuer.clone());
    (AppTester::serving(base_url, "", stop), issuer)
}

/// Checks `resp` against the shared snapshot `name`: status, the
/// authentication-related headers, and the body (JSON parsed, else text).
#[track_caller]
pub fn assert_response_snapshot(name: &str, resp: &TestResponse) {
    let body = match serde_json::from_slice::<serde_json::Value>(&resp.body) {
        Ok(v) => v,
        Err(_) => serde_json::Value::String(resp.text()),
    };
    let value = json!({
        "status": resp.status,
        "www-authenticate": resp.header("www-authenticate"),
        "content-type": resp.header("content-type"),
        "cache-control": resp.header("cache-control"),
        "body": body,
    });
    insta::with_settings!({
        snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/conformance-snapshots"),
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_json_snapshot!(name, value);
    });
}

pub mod automation;
pub mod cases;
pub mod logins;
pub mod parity;

/// Expands to one `#[tokio::test]` per conformance case, run against
/// `$adapter` (an expression of a type implementing [`Adapter`]).
///
/// ```ignore
/// portcullis_testing::conformance_tests!(MyAdapter);
/// ```
#[macro_export]
macro_rules! conformance_tests {
    ($adapter:expr) => {
        $crate::conformance_tests!(@cases $adapter;
            no_credentials_is_401_with_a_challenge,
            another_scheme_is_no_credentials,
            a_valid_token_reaches_the_handler,
            the_optional_caller_is_none_for_guests,
            a_malformed_token_is_401,
            an_expired_token_is_401,
            a_token_for_another_audience_is_401,
            a_token_of_an_unknown_issuer_is_401,
            an_empty_bearer_is_400,
            an_id_token_is_not_an_access_token,
            a_missing_scope_is_403,
            forwarded_id_tokens_must_match_the_caller,
            an_unreachable_provider_is_503,
            a_guest_api_caller_without_a_capability_is_401,
            a_guest_browser_is_sent_to_log_in,
            a_misconfigured_capability_is_500_not_a_login_redirect,
            a_user_without_a_capability_is_403,
            default_capabilities_apply_to_every_user,
            management_lists_and_grants_by_the_rules,
            management_bodies_are_bounded,
            service_tokens_and_their_revocation,
            the_login_flow_establishes_a_session,
            user_tokens_work_without_cookies,
            logout_ends_the_session_everywhere,
            a_tampered_session_is_a_guest,
            hostile_return_targets_fall_back_to_root,
            a_callback_with_the_wrong_state_is_refused,
            a_due_refresh_sends_the_renewed_cookie,
            cross_origin_posts_with_the_session_are_refused,
            same_origin_posts_with_the_session_work,
            json_routes_require_a_json_content_type,
            bearer_posts_need_no_origin,
            the_applications_own_posts_are_protected,
            a_logout_link_from_another_site_asks_first,
            a_logout_link_on_the_site_logs_out,
            a_login_from_another_site_keeps_the_session,
            a_refreshed_cookie_is_never_cached,
            an_inner_failure_keeps_the_refreshed_cookie,
            debug_output_shows_no_token,
            a_revoked_token_authenticates_nowhere,
            tokens_never_hold_more_than_their_issuer,
            an_unvouched_email_selects_no_capabilities,
            force_user_is_every_request_and_contacts_no_provider,
            an_unusable_token_answer_is_502,
            the_client_authentication_method_follows_configuration_and_discovery,
            the_login_redirect_parameter_names_where_to_return,
            offline_tokens_are_asked_as_the_provider_wants,
            the_released_listings_answer_as_easy_oauth,
            revoke_token_answers_as_easy_oauth,
            clients_that_follow_redirects_are_walked_through_the_login,
            ensure_email_sends_guests_to_log_in_and_back,
            headless_login_for_command_line_tools,
            device_login_for_command_line_tools,
            without_device_authorization_the_headless_login_is_unchanged,
            the_policy_allows,
            the_policy_denies_with_403,
            an_undefined_decision_is_403,
            an_unavailable_engine_is_503,
            an_engine_down_at_start_is_503,
            guests_are_refused_before_the_policy,
            guests_the_policy_allows,
            options_goes_through_the_policy,
            a_real_preflight_passes_when_configured,
            skip_lists_are_exact,
            a_body_past_the_limit_is_413,
            the_body_reaches_the_policy_and_the_handler,
            an_encoded_slash_stays_in_its_segment,
            the_route_template_reaches_the_policy,
            issuer_errors_have_the_rfc_6749_shape,
            issuer_tokens_answer_as_rfc_6749_says,
            issuer_discovery_and_jwks,
            issuer_bodies_past_the_limit_are_413,
            issuer_tokens_verify_through_discovery,
            a_login_revoked_at_the_provider_is_401,
            a_provider_down_past_the_bound_is_503,
            headless_logins_are_limited_per_address,
            an_automation_principal_is_accepted,
            a_wrong_automation_token_or_unknown_id_is_401,
            an_unreachable_secret_store_is_503,
            a_malformed_automation_secret_is_502,
        );
    };
    (@cases $adapter:expr; $($case:ident,)*) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                $crate::conformance::cases::$case(&$adapter).await;
            }
        )*
    };
}
