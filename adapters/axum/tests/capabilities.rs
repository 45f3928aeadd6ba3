//! Capabilities through the axum app: easy-oauth's README scenarios on every
//! store, service and API tokens, replicas sharing Redis, and bad input.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, StatusCode};
use portcullis_axum::portcullis_capabilities::{
    Capabilities, CapabilityStore, Change, FileStore, MemoryStore, RedisConfig, RedisStore,
    RevocationStore,
};
use portcullis_axum::{AuthLayer, RequireCapability, capability, management_routes};
use portcullis_core::config::VerifierConfig;
use portcullis_core::{
    Authenticator, CapabilitiesConfig, CredentialsConfig, Secret, TokenRejection, TokenVerifier,
};
use portcullis_testing::MockProvider;
use serde_json::{Value, json};

use crate::support::{Reply, bearer, get_with, issuer_config, send, verifier_on_clock_of};
use portcullis_testing::RedisServer;

capability!(Payroll = "payroll");
capability!(Write = "write");

const SECRET: &str = "an application secret key of at least 32 bytes";

const ADMIN: &str = "admin@website.web";
const ACCOUNTANT: &str = "mr.bean@website.web";
const USER: &str = "simple.user@website.web";
const MANAGER: &str = "manager@website.web";
const BOT: &str = "bot@service";

fn config() -> CapabilitiesConfig {
    CapabilitiesConfig::new([
        ("read", vec![]),
        ("write", vec!["read"]),
        ("payroll", vec!["read"]),
        ("user_management", vec![]),
    ])
    .with_auto_admin(true)
    .with_default_capabilities(["read"])
}

async fn seed(store: &dyn CapabilityStore) {
    for (user, caps) in [
        (ADMIN, vec!["admin"]),
        (ACCOUNTANT, vec!["payroll"]),
        (MANAGER, vec!["user_management", "write"]),
    ] {
        let caps = caps.into_iter().map(str::to_owned).collect();
        store.update(user, Change::Set(caps)).await.unwrap();
    }
}

/// An app over `store`, trusting the provider and its own service tokens.
fn app(
    provider: &MockProvider,
    store: Arc<dyn CapabilityStore>,
    revocations: Option<Arc<dyn RevocationStore>>,
) -> Router {
    let caps = Capabilities::builder(config(), store, Secret::new(SECRET))
        .revocations_opt(revocations)
        .clock(Arc::new(provider.clock()))
        .build()
        .expect("capabilities");
    let cfg = VerifierConfig::new([
        ("mock".to_owned(), issuer_config(provider)),
        ("service".to_owned(), caps.service_issuer_config()),
    ]);
    let verifier = TokenVerifier::builder(cfg)
        .clock(Arc::new(provider.clock()))
        .build()
        .expect("verifier");
    let auth = Authenticator::new(verifier, CredentialsConfig::default());
    Router::new()
        .route("/payroll/view", get(payroll))
        .route("/write", get(write))
        .merge(management_routes(caps.clone()))
        .layer(AuthLayer::new(auth).with_capabilities(caps))
}

async fn payroll(_: RequireCapability<Payroll>) -> &'static str {
    "the payroll"
}

async fn write(_: RequireCapability<Write>) -> &'static str {
    "written"
}

fn token(provider: &MockProvider, email: &str) -> String {
    provider.token().email(email).sign()
}

async fn post(app: &Router, path: &str, token: Option<&str>, body: &str) -> Reply {
    let mut req = Request::post(path).header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    send(app, req.body(Body::from(body.to_owned())).unwrap()).await
}

fn json_of(reply: &Reply) -> Value {
    serde_json::from_str(&reply.body).unwrap_or_else(|_| panic!("not JSON: {reply:?}"))
}

#[track_caller]
fn assert_status(reply: &Reply, status: StatusCode) {
    assert_eq!(reply.status, status, "{reply:?}");
}

/// easy-oauth's README: guests, users, accountants, admins; service tokens.
async fn scenario(
    provider: &MockProvider,
    store: Arc<dyn CapabilityStore>,
    revocations: Option<Arc<dyn RevocationStore>>,
) {
    seed(&*store).await;
    let app = app(provider, store, revocations.clone());
    let admin = token(provider, ADMIN);

    assert_status(
        &get_with(&app, "/payroll/view", &[]).await,
        StatusCode::UNAUTHORIZED,
    );
    let user = bearer(&app, "/payroll/view", &token(provider, USER)).await;
    assert_status(&user, StatusCode::FORBIDDEN);
    let accountant = bearer(&app, "/payroll/view", &token(provider, ACCOUNTANT)).await;
    assert_status(&accountant, StatusCode::OK);
    assert_status(&bearer(&app, "/payroll/view", &admin).await, StatusCode::OK);

    // A service account with `payroll`, and its token.
    let set = post(
        &app,
        "/manage_capabilities/set",
        Some(&admin),
        &json!({"email": BOT, "capabilities": ["payroll"]}).to_string(),
    )
    .await;
    assert_status(&set, StatusCode::OK);
    assert_eq!(
        json_of(&set),
        json!({"status": "ok", "email": BOT, "capabilities": ["payroll"]})
    );
    let issued = bearer(&app, "/token?user=bot@service", &admin).await;
    assert_status(&issued, StatusCode::OK);
    assert_eq!(issued.headers["cache-control"], "no-store");
    assert_eq!(issued.headers["referrer-policy"], "no-referrer");
    let issued = json_of(&issued);
    assert_eq!(issued["user"], BOT);
    assert_eq!(issued["capabilities"], json!(["payroll", "read"]));
    let bot1 = issued["service_token"].as_str().unwrap().to_owned();
    assert_status(&bearer(&app, "/payroll/view", &bot1).await, StatusCode::OK);
    assert_status(&bearer(&app, "/write", &bot1).await, StatusCode::FORBIDDEN);
    // A provider account whose email only looks like the service account gets none of its capabilities.
    let lookalike = token(provider, BOT);
    assert_status(
        &bearer(&app, "/payroll/view", &lookalike).await,
        StatusCode::FORBIDDEN,
    );

    // An addition needs a new token.
    let add = post(
        &app,
        "/manage_capabilities/add",
        Some(&admin),
        &json!({"email": BOT, "capability": "write"}).to_string(),
    )
    .await;
    assert_eq!(json_of(&add)["capabilities"], json!(["payroll", "write"]));
    assert_status(&bearer(&app, "/write", &bot1).await, StatusCode::FORBIDDEN);
    let issued = json_of(&bearer(&app, "/token?user=bot@service", &admin).await);
    let bot2 = issued["service_token"].as_str().unwrap().to_owned();
    assert_status(&bearer(&app, "/write", &bot2).await, StatusCode::OK);

    // A removal revokes at once, whatever the token says.
    let remove = post(
        &app,
        "/manage_capabilities/remove",
        Some(&admin),
        &json!({"email": BOT, "capability": "payroll"}).to_string(),
    )
    .await;
    assert_eq!(json_of(&remove)["capabilities"], json!(["write"]));
    assert_status(
        &bearer(&app, "/payroll/view", &bot1).await,
        StatusCode::FORBIDDEN,
    );
    assert_status(
        &bearer(&app, "/payroll/view", &bot2).await,
        StatusCode::FORBIDDEN,
    );

    // Revocation.
    let revoke = post(
        &app,
        "/token/revoke",
        Some(&admin),
        &json!({"token": bot2}).to_string(),
    )
    .await;
    if revocations.is_some() {
        assert_status(&revoke, StatusCode::OK);
        bearer(&app, "/write", &bot2)
            .await
            .assert_refused(TokenRejection::Revoked);
    } else {
        assert_status(&revoke, StatusCode::BAD_REQUEST);
        assert!(
            revoke.body.contains("needs a revocation store"),
            "{revoke:?}"
        );
        assert_status(&bearer(&app, "/write", &bot2).await, StatusCode::OK);
    }
}

#[tokio::test]
async fn readme_scenario_on_the_memory_store() {
    let provider = MockProvider::start().await.unwrap();
    let store = Arc::new(MemoryStore::new());
    scenario(&provider, store.clone(), Some(store)).await;
}

#[tokio::test]
async fn readme_scenario_on_the_file_store() {
    let provider = MockProvider::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open_with_reload_interval(dir.path().join("caps.yaml"), Duration::ZERO)
        .await
        .unwrap();
    // The file store keeps revocations in `caps.yaml.revoked`.
    let store = Arc::new(store);
    scenario(&provider, store.clone(), Some(store)).await;
}

#[tokio::test]
async fn readme_scenario_without_a_revocation_store() {
    let provider = MockProvider::start().await.unwrap();
    scenario(&provider, Arc::new(MemoryStore::new()), None).await;
}

async fn redis_store(server: &RedisServer) -> Arc<RedisStore> {
    Arc::new(
        RedisStore::connect(RedisConfig::new(Secret::new(server.url())))
            .await
            .unwrap(),
    )
}

#[tokio::test]
async fn readme_scenario_on_redis() {
    let server = RedisServer::start();
    let provider = MockProvider::start().await.unwrap();
    let store = redis_store(&server).await;
    scenario(&provider, store.clone(), Some(store)).await;
}

/// Polls `condition` until it holds; fails past a guard far longer than
/// any invalidation takes (no duration is asserted).
async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !condition().await {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A capability change through one replica is in force there at once and
/// on the other once its invalidation arrives; a revocation on both at once.
#[tokio::test]
async fn replicas_sharing_redis_agree() {
    let server = RedisServer::start();
    let provider = MockProvider::start().await.unwrap();
    let (a_store, b_store) = (redis_store(&server).await, redis_store(&server).await);
    seed(&*a_store).await;
    let a = app(&provider, a_store.clone(), Some(a_store));
    let b = app(&provider, b_store.clone(), Some(b_store));
    let accountant = token(&provider, ACCOUNTANT);
    assert_status(
        &bearer(&b, "/payroll/view", &accountant).await,
        StatusCode::OK,
    );
    let removed = post(
        &a,
        "/manage_capabilities/remove",
        Some(&token(&provider, ADMIN)),
        &json!({"email": ACCOUNTANT, "capability": "payroll"}).to_string(),
    )
    .await;
    assert_status(&removed, StatusCode::OK);
    assert_status(
        &bearer(&a, "/payroll/view", &accountant).await,
        StatusCode::FORBIDDEN,
    );
    eventually(
        "the other replica refuses the withdrawn capability",
        || async { bearer(&b, "/payroll/view", &accountant).await.status == StatusCode::FORBIDDEN },
    )
    .await;

    // A token revoked through A is refused by B.
    let admin = token(&provider, ADMIN);
    post(
        &a,
        "/manage_capabilities/set",
        Some(&admin),
        &json!({"email": BOT, "capabilities": ["write"]}).to_string(),
    )
    .await;
    let issued = json_of(&bearer(&a, "/token?user=bot@service", &admin).await);
    let bot = issued["service_token"].as_str().unwrap().to_owned();
    assert_status(&bearer(&b, "/write", &bot).await, StatusCode::OK);
    let revoke = post(
        &a,
        "/token/revoke",
        Some(&admin),
        &json!({"token": bot}).to_string(),
    )
    .await;
    assert_status(&revoke, StatusCode::OK);
    bearer(&b, "/write", &bot)
        .await
        .assert_refused(TokenRejection::Revoked);
}

/// Each bad request is a clear 4xx and changes nothing.
#[tokio::test]
async fn bad_input_changes_nothing() {
    let provider = MockProvider::start().await.unwrap();
    let store = Arc::new(MemoryStore::new());
    seed(&*store).await;
    let app = app(&provider, store.clone(), Some(store.clone()));
    let admin = token(&provider, ADMIN);
    let manager = token(&provider, MANAGER);
    let user = token(&provider, USER);
    let before = store.list().await.unwrap();

    let cases: Vec<(&str, Option<&str>, String, StatusCode, &str)> = vec![
        (
            "/manage_capabilities/add",
            Some(&admin),
            json!({"email": USER, "capability": "fly"}).to_string(),
            StatusCode::BAD_REQUEST,
            "`fly`",
        ),
        (
            "/manage_capabilities/set",
            Some(&admin),
            json!({"email": USER, "capabilities": ["read", "fly"]}).to_string(),
            StatusCode::BAD_REQUEST,
            "`fly`",
        ),
        (
            "/manage_capabilities/add",
            Some(&admin),
            json!({"capability": "read"}).to_string(),
            StatusCode::BAD_REQUEST,
            "email",
        ),
        (
            "/manage_capabilities/set",
            Some(&admin),
            "not json".to_owned(),
            StatusCode::BAD_REQUEST,
            "JSON",
        ),
        (
            "/manage_capabilities/add",
            Some(&user),
            json!({"email": USER, "capability": "write"}).to_string(),
            StatusCode::FORBIDDEN,
            "",
        ),
        (
            "/manage_capabilities/add",
            None,
            json!({"email": USER, "capability": "write"}).to_string(),
            StatusCode::UNAUTHORIZED,
            "",
        ),
        (
            "/manage_capabilities/add",
            Some(&manager),
            json!({"email": USER, "capability": "payroll"}).to_string(),
            StatusCode::FORBIDDEN,
            "`payroll`",
        ),
        (
            "/manage_capabilities/remove",
            Some(&manager),
            json!({"email": ADMIN, "capability": "admin"}).to_string(),
            StatusCode::FORBIDDEN,
            "`admin`",
        ),
        (
            "/manage_capabilities/set",
            Some(&manager),
            json!({"email": ACCOUNTANT, "capabilities": ["write"]}).to_string(),
            StatusCode::FORBIDDEN,
            "`payroll`",
        ),
        (
            "/token/revoke",
            Some(&admin),
            "{}".to_owned(),
            StatusCode::BAD_REQUEST,
            "`token`",
        ),
    ];
    for (path, tok, body, status, needle) in cases {
        let reply = post(&app, path, tok, &body).await;
        assert_eq!(reply.status, status, "{path} {body}: {reply:?}");
        assert!(reply.body.contains(needle), "{path} {body}: {reply:?}");
    }
    // A manager grants what it holds.
    let ok = post(
        &app,
        "/manage_capabilities/add",
        Some(&manager),
        &json!({"email": USER, "capability": "write"}).to_string(),
    )
    .await;
    assert_status(&ok, StatusCode::OK);
    store
        .update(USER, Change::Remove("write".into()))
        .await
        .unwrap();
    let mut after = store.list().await.unwrap();
    after.remove(USER);
    assert_eq!(after, before);

    // Service tokens only for service accounts.
    let reply = bearer(&app, "/token?user=someone@website.web", &admin).await;
    assert_status(&reply, StatusCode::BAD_REQUEST);
    let reply = bearer(&app, "/token?user=bot@service", &user).await;
    assert_status(&reply, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn listing_capabilities() {
    let provider = MockProvider::start().await.unwrap();
    let store = Arc::new(MemoryStore::new());
    seed(&*store).await;
    let app = app(&provider, store.clone(), Some(store));
    let accountant = token(&provider, ACCOUNTANT);
    let own = bearer(&app, "/manage_capabilities/list", &accountant).await;
    assert_eq!(
        json_of(&own),
        json!({"status": "ok", "email": ACCOUNTANT, "capabilities": ["payroll"]})
    );
    let other = bearer(
        &app,
        "/manage_capabilities/list?email=admin@website.web",
        &accountant,
    )
    .await;
    assert_status(&other, StatusCode::FORBIDDEN);
    let admin = token(&provider, ADMIN);
    let listed = bearer(
        &app,
        "/manage_capabilities/list?email=mr.bean@website.web",
        &admin,
    )
    .await;
    assert_eq!(json_of(&listed)["capabilities"], json!(["payroll"]));
    assert_status(
        &get_with(&app, "/manage_capabilities/list", &[]).await,
        StatusCode::UNAUTHORIZED,
    );
}

#[tokio::test]
async fn a_broken_user_file_keeps_the_last_good_content() {
    let provider = MockProvider::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("caps.yaml");
    std::fs::write(
        &path,
        format!("{ACCOUNTANT}: [payroll]\n{ADMIN}: [admin]\n"),
    )
    .unwrap();
    let store = FileStore::open_with_reload_interval(path.clone(), Duration::ZERO)
        .await
        .unwrap();
    let app = app(&provider, Arc::new(store), None);
    let accountant = token(&provider, ACCOUNTANT);
    assert_status(
        &bearer(&app, "/payroll/view", &accountant).await,
        StatusCode::OK,
    );
    std::fs::write(&path, "{{{ not: [yaml\n").unwrap();
    assert_status(
        &bearer(&app, "/payroll/view", &accountant).await,
        StatusCode::OK,
    );
    let listed = bearer(&app, "/manage_capabilities/list", &accountant).await;
    assert_eq!(json_of(&listed)["capabilities"], json!(["payroll"]));
}

#[tokio::test]
async fn api_tokens_follow_their_issuer() {
    let provider = MockProvider::start().await.unwrap();
    let store = Arc::new(MemoryStore::new());
    seed(&*store).await;
    let caps = Capabilities::builder(config(), store.clone(), Secret::new(SECRET))
        .revocations(store.clone())
        .clock(Arc::new(provider.clock()))
        .build()
        .unwrap();
    let cfg = VerifierConfig::new([
        ("mock".to_owned(), issuer_config(&provider)),
        ("service".to_owned(), caps.service_issuer_config()),
    ]);
    let verifier = verifier_on_clock_of(cfg, &provider);
    let auth = Authenticator::new(verifier, CredentialsConfig::default());
    let who = async |token: &str| {
        let header = format!("Bearer {token}");
        let headers: &[(&str, &str)] = &[("authorization", &header)];
        auth.authenticate(headers).await.unwrap().unwrap()
    };
    let manager = who(&token(&provider, MANAGER)).await;
    let refused = caps
        .issue_api_token(Some(&manager), &["payroll".to_owned()], None)
        .await
        .unwrap_err();
    assert_eq!(refused.status(), 403);
    let reply = caps
        .issue_api_token(Some(&manager), &["write".to_owned()], Some(3600))
        .await
        .unwrap();
    let reply: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(reply["capabilities"], json!(["read", "write"]));
    let api = who(reply["api_token"].as_str().unwrap()).await;
    caps.require(Some(&api), "write").await.unwrap();
    assert_eq!(
        caps.require(Some(&api), "payroll")
            .await
            .unwrap_err()
            .status(),
        403
    );
    // The issuer loses `write`: so does the token.
    store
        .update(MANAGER, Change::Remove("write".into()))
        .await
        .unwrap();
    assert_eq!(
        caps.require(Some(&api), "write")
            .await
            .unwrap_err()
            .status(),
        403
    );
    let undeclared = caps.require(Some(&api), "fly").await.unwrap_err();
    assert_eq!(undeclared.kind(), portcullis_core::ErrorKind::Config);
}

#[tokio::test]
async fn a_short_secret_key_is_a_config_error() {
    let e = Capabilities::builder(config(), Arc::new(MemoryStore::new()), Secret::new("short"))
        .build()
        .unwrap_err();
    assert_eq!(e.kind(), portcullis_core::ErrorKind::Config);
}

/// One answer under load: who asked, the status, when it was sent and
/// when it came back.
type Answer = (&'static str, StatusCode, Instant, Instant);

/// Requests of three callers, over and over, on `app`, until `stop`.
struct Load {
    stop: Arc<std::sync::atomic::AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Vec<Answer>>>,
}

impl Load {
    fn start(app: &Router, callers: &[(&'static str, String)]) -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let tasks = callers
            .iter()
            .cloned()
            .map(|(who, token)| {
                let app = app.clone();
                let stop = Arc::clone(&stop);
                tokio::spawn(async move {
                    let mut answers = Vec::new();
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let sent = Instant::now();
                        let reply = bearer(&app, "/payroll/view", &token).await;
                        answers.push((who, reply.status, sent, Instant::now()));
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    answers
                })
            })
            .collect();
        Self { stop, tasks }
    }

    async fn finish(self) -> Vec<Answer> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut all = Vec::new();
        for task in self.tasks {
            all.extend(task.await.unwrap());
        }
        all
    }
}

/// Redis killed and restarted under load: while it is down every request
/// is 503 (never a pass); once it is back the service resumes by itself,
/// within seconds, without restarting the application; at no time is a
/// caller granted what it does not hold, nor a revoked token accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_under_load_is_503_then_resumes_and_never_grants() {
    let mut server = RedisServer::start();
    let provider = MockProvider::start().await.unwrap();
    let store = Arc::new(
        RedisStore::connect(
            RedisConfig::new(Secret::new(server.url()))
                .with_command_timeout(Duration::from_millis(300)),
        )
        .await
        .unwrap(),
    );
    seed(&*store).await;
    let app = app(&provider, store.clone(), Some(store.clone()));
    let admin = token(&provider, ADMIN);
    post(
        &app,
        "/manage_capabilities/set",
        Some(&admin),
        &json!({"email": BOT, "capabilities": ["payroll"]}).to_string(),
    )
    .await;
    let issued = json_of(&bearer(&app, "/token?user=bot@service", &admin).await);
    let revoked = issued["service_token"].as_str().unwrap().to_owned();
    let revoke = post(
        &app,
        "/token/revoke",
        Some(&admin),
        &json!({"token": revoked}).to_string(),
    )
    .await;
    assert_status(&revoke, StatusCode::OK);
    // What Redis holds survives its restart (it loads this snapshot).
    server.command(&["SAVE"]).unwrap();

    let load = Load::start(
        &app,
        &[
            ("accountant", token(&provider, ACCOUNTANT)),
            ("user", token(&provider, USER)),
            ("revoked", revoked),
        ],
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill();
    // Capability reads are answered from the local cache until the replica
    // sees its invalidation channel lost (at once for a dead server, within
    // the staleness bound for a silent one); from then on, Redis down is 503.
    eventually("the local cache stops", || {
        let live = store.cache_is_live();
        async move { !live }
    })
    .await;
    let down = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let up = Instant::now();
    server.restart();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let answers = load.finish().await;

    let allowed = |who: &str| match who {
        "accountant" => StatusCode::OK,
        "user" => StatusCode::FORBIDDEN,
        _ => StatusCode::UNAUTHORIZED,
    };
    let mut while_down = 0;
    for (who, status, sent, back) in &answers {
        // Never a grant that was not given.
        assert!(
            *status == allowed(who) || *status == StatusCode::SERVICE_UNAVAILABLE,
            "{who}: {status}"
        );
        if *sent >= down && *back <= up {
            while_down += 1;
            assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE, "{who} while down");
        }
    }
    assert!(
        while_down >= 3,
        "{while_down} requests while Redis was down"
    );
    // Back within seconds: the last second of answers is all as before.
    for who in ["accountant", "user", "revoked"] {
        let last = answers
            .iter()
            .filter(|(w, _, sent, _)| *w == who && *sent > up + Duration::from_secs(2))
            .collect::<Vec<_>>();
        assert!(!last.is_empty(), "{who}: no answer after the restart");
        for (_, status, ..) in last {
            assert_eq!(*status, allowed(who), "{who} after the restart");
        }
    }
}

/// Redis slower than the command timeout (every client paused): a
/// protected request is 503 in bounded time, never a pass and never a hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_slower_than_the_command_timeout_is_503_in_bounded_time() {
    let server = RedisServer::start();
    let provider = MockProvider::start().await.unwrap();
    let store = Arc::new(
        RedisStore::connect(
            RedisConfig::new(Secret::new(server.url()))
                .with_command_timeout(Duration::from_millis(300)),
        )
        .await
        .unwrap(),
    );
    seed(&*store).await;
    let app = app(&provider, store.clone(), Some(store.clone()));
    let accountant = token(&provider, ACCOUNTANT);
    let user = token(&provider, USER);
    assert_status(
        &bearer(&app, "/payroll/view", &accountant).await,
        StatusCode::OK,
    );

    server.command(&["CLIENT", "PAUSE", "5000", "ALL"]).unwrap();
    // A paused server is a silent invalidation channel: the local cache
    // answers (what it held) until the staleness bound, then stops.
    eventually("the local cache stops", || {
        let live = store.cache_is_live();
        async move { !live }
    })
    .await;
    for who in [&accountant, &user] {
        let started = Instant::now();
        let reply = bearer(&app, "/payroll/view", who).await;
        let took = started.elapsed();
        assert_status(&reply, StatusCode::SERVICE_UNAVAILABLE);
        // The command timeout, twice at most (the revocation check, then the
        // capabilities), and some slack for a busy machine.
        assert!(took < Duration::from_millis(1500), "took {took:?}");
    }
    server.command(&["CLIENT", "UNPAUSE"]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let reply = bearer(&app, "/payroll/view", &accountant).await;
        if reply.status == StatusCode::OK {
            break;
        }
        assert_status(&reply, StatusCode::SERVICE_UNAVAILABLE);
        assert!(Instant::now() < deadline, "no recovery after the pause");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
