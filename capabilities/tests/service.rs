//! `Capabilities` over every store: what a caller holds, what it may change,
//! the tokens it may mint, and their revocation.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use portcullis_capabilities::SERVICE_ISSUER;
use portcullis_capabilities::{
    Capabilities, CapabilityStore, Change, ChangeCheck, MemoryStore, Modified, StoreFuture,
};
use portcullis_core::config::VerifierConfig;
use portcullis_core::dangerous::{authenticated_unverified, principal_from_unverified_claims};
use portcullis_core::mint::SigningKey;
use portcullis_core::{
    Algorithm, Authenticated, CapabilitiesConfig, RawToken, Secret, TokenRejection, TokenVerifier,
};
use portcullis_testing::logs::LogCapture;
use serde_json::{Value, json};

/// A secret key the service accepts (not published, not a placeholder).
pub(crate) const SECRET: &str = "Vq7#tN2m$Lx9pR4w!Zc6bH1s@Kd8jF3g";

/// easy-oauth's graph, with `admin` added by `auto_admin`.
pub(crate) fn config() -> CapabilitiesConfig {
    CapabilitiesConfig::new([
        ("read", vec![]),
        ("write", vec!["read"]),
        ("moderate", vec!["read", "write"]),
        ("user_management", vec![]),
    ])
    .with_auto_admin(true)
}

/// A user logged in through the provider, known by `email`.
pub(crate) fn user(email: &str) -> Authenticated {
    let Value::Object(claims) = json!({"sub": email, "email": email}) else {
        unreachable!()
    };
    let principal = principal_from_unverified_claims(
        "https://id.example.com",
        claims,
        RawToken::new(""),
        4_102_444_800,
    )
    .unwrap();
    authenticated_unverified(Arc::new(principal))
}

/// The service over `store`.
pub(crate) fn service(store: Arc<dyn CapabilityStore>) -> Capabilities {
    Capabilities::builder(config(), store, Secret::new(SECRET))
        .build()
        .unwrap()
}

/// One audit event: `capabilities changed`.
#[derive(Debug, Clone)]
struct Audit {
    who: String,
    operation: String,
    before: String,
    after: String,
}

/// The audit events recorded so far, by `whom`.
fn audits() -> &'static Mutex<BTreeMap<String, Vec<Audit>>> {
    static AUDITS: OnceLock<Mutex<BTreeMap<String, Vec<Audit>>>> = OnceLock::new();
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        use tracing_subscriber::layer::SubscriberExt as _;
        let subscriber = tracing_subscriber::registry().with(AuditLayer);
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
    });
    AUDITS.get_or_init(Mutex::default)
}

/// Records `capabilities changed` events into [`audits`].
struct AuditLayer;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for AuditLayer {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        #[derive(Default)]
        struct Fields(BTreeMap<String, String>);
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0.insert(field.name().to_owned(), format!("{value:?}"));
            }
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                self.0.insert(field.name().to_owned(), value.to_owned());
            }
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut f = fields.0;
        if f.get("message").map(String::as_str) != Some("capabilities changed") {
            return;
        }
        let mut take = |k: &str| f.remove(k).unwrap_or_default();
        let whom = take("whom");
        let audit = Audit {
            who: take("who"),
            operation: take("operation"),
            before: take("before"),
            after: take("after"),
        };
        audits()
            .lock()
            .unwrap()
            .entry(whom)
            .or_default()
            .push(audit);
    }
}

fn shown(names: &[&str]) -> String {
    format!("{names:?}")
}

/// A manager without `admin` keeps setting a user's capabilities while an
/// admin grants that user `admin`: the manager must never withdraw `admin`
/// (it does not hold it), and every audit `before` must be the true prior
/// state.
pub(crate) async fn set_never_withdraws_what_a_concurrent_grant_added(
    store: Arc<dyn CapabilityStore>,
    tag: &str,
    rounds: usize,
) {
    const SETS: usize = 12;
    audits();
    let caps = service(store.clone());
    let manager_key = format!("manager-{tag}@example.com");
    let admin_key = format!("admin-{tag}@example.com");
    store
        .update(
            &manager_key,
            Change::Set(vec!["user_management".into(), "write".into()]),
        )
        .await
        .unwrap();
    store
        .update(&admin_key, Change::Set(vec!["admin".into()]))
        .await
        .unwrap();
    let manager = user(&manager_key);
    let admin = user(&admin_key);
    let mut lost = Vec::new();
    for round in 0..rounds {
        let target = format!("target-{tag}-{round}@example.com");
        store
            .update(&target, Change::Set(vec!["read".into()]))
            .await
            .unwrap();
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let setter = {
            let (caps, manager, barrier) = (caps.clone(), manager.clone(), barrier.clone());
            let body = json!({"email": target, "capabilities": ["read", "write"]}).to_string();
            tokio::spawn(async move {
                barrier.wait().await;
                for _ in 0..SETS {
                    match caps.set(Some(&manager), body.as_bytes()).await {
                        Ok(_) => {}
                        Err(e) => assert_eq!(e.status(), 403, "{e}"),
                    }
                    tokio::task::yield_now().await;
                }
            })
        };
        let granter = {
            let (caps, admin, barrier) = (caps.clone(), admin.clone(), barrier.clone());
            let body = json!({"email": target, "capability": "admin"}).to_string();
            tokio::spawn(async move {
                barrier.wait().await;
                for _ in 0..round % 4 {
                    tokio::task::yield_now().await;
                }
                caps.add(Some(&admin), body.as_bytes()).await.unwrap();
            })
        };
        setter.await.unwrap();
        granter.await.unwrap();
        let now = store.get(&target).await.unwrap().unwrap_or_default();
        if !now.iter().any(|c| c == "admin") {
            lost.push((round, now));
        }
    }
    assert!(
        lost.is_empty(),
        "{tag}: `admin` withdrawn by the manager: {lost:?}"
    );

    // The audit trail is a true history: per target, the admin's grant saw
    // either the initial state (and no set landed) or the set's result; each
    // set saw a state without `admin`, and only the first saw the initial one.
    let audits = audits().lock().unwrap();
    for round in 0..rounds {
        let target = format!("target-{tag}-{round}@example.com");
        let events = audits.get(&target).cloned().unwrap_or_default();
        let grants: Vec<&Audit> = events.iter().filter(|a| a.operation == "add").collect();
        let sets: Vec<&Audit> = events.iter().filter(|a| a.operation == "set").collect();
        assert_eq!(grants.len(), 1, "{target}: {events:?}");
        assert!(grants[0].who == admin_key);
        for set in &sets {
            assert_eq!(set.who, manager_key);
            assert!(!set.before.contains("admin"), "{target}: {events:?}");
            assert_eq!(set.after, shown(&["read", "write"]), "{target}: {events:?}");
        }
        let from_initial = sets.iter().filter(|a| a.before == shown(&["read"])).count();
        if grants[0].before == shown(&["read"]) {
            assert!(
                sets.is_empty(),
                "{target}: the grant's `before` is stale: {events:?}"
            );
            assert_eq!(grants[0].after, shown(&["admin", "read"]));
        } else {
            assert_eq!(
                grants[0].before,
                shown(&["read", "write"]),
                "{target}: {events:?}"
            );
            assert_eq!(from_initial, 1, "{target}: {events:?}");
            assert_eq!(grants[0].after, shown(&["admin", "read", "write"]));
        }
    }
}

/// A memory store whose reads yield to other tasks first, as a remote
/// store's would: it widens the window between a read and the next write.
#[derive(Debug, Default)]
struct SlowReads(MemoryStore);

impl CapabilityStore for SlowReads {
    fn get<'a>(&'a self, user: &'a str) -> StoreFuture<'a, Option<Vec<String>>> {
        Box::pin(async move {
            tokio::task::yield_now().await;
            self.0.get(user).await
        })
    }

    fn list(&self) -> StoreFuture<'_, BTreeMap<String, Vec<String>>> {
        self.0.list()
    }

    fn modify<'a>(
        &'a self,
        user: &'a str,
        change: Change,
        check: &'a ChangeCheck<'a>,
    ) -> StoreFuture<'a, Modified> {
        Box::pin(async move {
            tokio::task::yield_now().await;
            self.0.modify(user, change, check).await
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_set_never_withdraws_a_concurrent_grant() {
    set_never_withdraws_what_a_concurrent_grant_added(Arc::new(SlowReads::default()), "slow", 100)
        .await;
    set_never_withdraws_what_a_concurrent_grant_added(Arc::new(MemoryStore::new()), "memory", 300)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn file_set_never_withdraws_a_concurrent_grant() {
    let dir = tempfile::tempdir().unwrap();
    let store = portcullis_capabilities::FileStore::open(dir.path().join("caps.yaml"))
        .await
        .unwrap();
    set_never_withdraws_what_a_concurrent_grant_added(Arc::new(store), "file", 30).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_set_never_withdraws_a_concurrent_grant() {
    let server = crate::support::RedisServer::start();
    let store = portcullis_capabilities::RedisStore::connect(
        portcullis_capabilities::RedisConfig::new(server.url()),
    )
    .await
    .unwrap();
    set_never_withdraws_what_a_concurrent_grant_added(Arc::new(store), "redis", 100).await;
}

#[test]
fn short_published_and_placeholder_secret_keys_are_refused_without_echo() {
    for bad in [
        "short",
        "0123456789abcdef0123456789abcdef",
        "change-me-to-32-random-bytes-or-more!!",
        "<secret key of 32 bytes or more, random>",
    ] {
        let e = Capabilities::builder(config(), Arc::new(MemoryStore::new()), Secret::new(bad))
            .build()
            .unwrap_err();
        assert_eq!(e.kind(), portcullis_core::ErrorKind::Config, "{bad}");
        assert!(e.message().contains("`secret_key`"), "{e}");
        assert!(!e.message().contains(bad), "the key is echoed: {e}");
    }
    assert_eq!(
        portcullis_capabilities::MIN_SECRET_KEY_LEN,
        portcullis_core::secret::MIN_SECRET_KEY_BYTES
    );
}

// ---- Tokens: what they hold, who may mint them, their revocation. ----

/// A verifier accepting `caps`' tokens the way an application's does.
pub(crate) fn verifier(caps: &Capabilities) -> TokenVerifier {
    TokenVerifier::new(VerifierConfig::new([(
        "service".to_owned(),
        caps.service_issuer_config(),
    )]))
    .unwrap()
}

/// The caller a verified `token` makes.
async fn bearer(verifier: &TokenVerifier, token: &str) -> Authenticated {
    authenticated_unverified(verifier.verify(token).await.unwrap())
}

/// The JSON body of a successful reply.
fn body(reply: Result<portcullis_core::Reply, portcullis_core::Error>) -> Value {
    let reply = reply.unwrap();
    assert_eq!(reply.status, 200);
    serde_json::from_slice(&reply.body).unwrap()
}

fn text(value: &Value, key: &str) -> String {
    value[key].as_str().unwrap().to_owned()
}

/// The names `caller` holds.
async fn held(caps: &Capabilities, caller: &Authenticated) -> Vec<String> {
    let set = caps.of(Some(caller)).await.unwrap();
    caps.graph().names_of(&set)
}

fn v(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

#[tokio::test]
async fn a_service_token_holds_only_what_its_issuer_holds() {
    let store = Arc::new(MemoryStore::with_users([
        ("manager@example.com", vec!["user_management", "write"]),
        ("bot@service", vec!["admin"]),
        ("helper@service", vec!["moderate", "user_management"]),
    ]));
    let caps = service(store.clone());
    let verifier = verifier(&caps);
    let manager = user("manager@example.com");

    // The account holds `admin`; the manager does not: it is withheld.
    let issued = body(
        caps.issue_service_token(Some(&manager), Some("bot@service"))
            .await,
    );
    assert_eq!(
        issued["capabilities"],
        json!(["read", "user_management", "write"])
    );
    assert!(
        issued["withheld"]
            .as_array()
            .unwrap()
            .contains(&json!("admin"))
    );
    let bot = bearer(&verifier, &text(&issued, "service_token")).await;
    assert_eq!(
        held(&caps, &bot).await,
        v(&["read", "user_management", "write"])
    );
    assert_eq!(
        bot.principal.claim("issued_by"),
        Some(&json!("manager@example.com"))
    );

    let issued = body(
        caps.issue_service_token(Some(&manager), Some("helper@service"))
            .await,
    );
    assert_eq!(issued["withheld"], json!(["moderate"]));
    let helper = bearer(&verifier, &text(&issued, "service_token")).await;
    assert_eq!(
        held(&caps, &helper).await,
        v(&["read", "user_management", "write"])
    );

    // Withdrawing from the issuer narrows the tokens it minted, at once.
    store
        .update("manager@example.com", Change::Remove("write".into()))
        .await
        .unwrap();
    assert_eq!(held(&caps, &bot).await, v(&["user_management"]));
    assert_eq!(held(&caps, &helper).await, v(&["user_management"]));
    // And from the account too.
    store
        .update("helper@service", Change::Remove("user_management".into()))
        .await
        .unwrap();
    assert!(held(&caps, &helper).await.is_empty());
}

#[tokio::test]
async fn service_and_api_tokens_mint_no_tokens_but_user_tokens_do() {
    let store = Arc::new(MemoryStore::with_users([
        ("manager@example.com", vec!["user_management", "write"]),
        ("bot@service", vec!["user_management", "write"]),
    ]));
    let caps = service(store.clone());
    let verifier = verifier(&caps);
    let manager = user("manager@example.com");

    let service_token = body(
        caps.issue_service_token(Some(&manager), Some("bot@service"))
            .await,
    );
    let api_token = body(
        caps.issue_api_token(Some(&manager), &v(&["user_management"]), None)
            .await,
    );
    for token in [
        text(&service_token, "service_token"),
        text(&api_token, "api_token"),
    ] {
        let caller = bearer(&verifier, &token).await;
        // It holds `user_management`, and still mints nothing.
        assert!(
            held(&caps, &caller)
                .await
                .contains(&"user_management".to_owned())
        );
        let e = caps
            .issue_service_token(Some(&caller), Some("bot@service"))
            .await
            .unwrap_err();
        assert_eq!(e.status(), 403, "{e}");
        assert!(e.message().contains("cannot mint"), "{e}");
        let e = caps
            .issue_api_token(Some(&caller), &v(&["write"]), None)
            .await
            .unwrap_err();
        assert_eq!(e.status(), 403, "{e}");
        assert!(e.message().contains("cannot mint"), "{e}");
    }

    // A user token holds exactly its user's set, so it may, and records the user.
    let user_token = body(caps.issue_user_token(Some(&manager)).await);
    let by_user_token = bearer(&verifier, &text(&user_token, "token")).await;
    let minted = body(
        caps.issue_service_token(Some(&by_user_token), Some("bot@service"))
            .await,
    );
    let bot = bearer(&verifier, &text(&minted, "service_token")).await;
    assert_eq!(
        bot.principal.claim("issued_by"),
        Some(&json!("manager@example.com"))
    );
    let api = body(
        caps.issue_api_token(Some(&by_user_token), &v(&["read"]), None)
            .await,
    );
    assert_eq!(api["issued_by"], json!("manager@example.com"));

    // An API token holds no more than its issuer either.
    let api = bearer(&verifier, &text(&api_token, "api_token")).await;
    store
        .update(
            "manager@example.com",
            Change::Remove("user_management".into()),
        )
        .await
        .unwrap();
    assert!(held(&caps, &api).await.is_empty());
    // Nor can a manager put into an API token what it does not hold.
    let e = caps
        .issue_api_token(Some(&user("manager@example.com")), &v(&["admin"]), None)
        .await
        .unwrap_err();
    assert_eq!(e.status(), 403);
}

/// The service token signing key, derived as the service derives it.
fn signing_key() -> SigningKey {
    use aws_lc_rs::hkdf;
    use base64::Engine as _;
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &[]).extract(SECRET.as_bytes());
    let info = [&b"portcullis service tokens v1"[..]];
    let okm = prk.expand(&info, hkdf::HKDF_SHA256).unwrap();
    let mut out = [0u8; 32];
    okm.fill(&mut out).unwrap();
    let derived = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(out);
    SigningKey::from_secret(Algorithm::HS256, "service-v1", derived.as_bytes()).unwrap()
}

#[tokio::test]
async fn tokens_minted_before_issuers_were_recorded_are_refused() {
    let store = Arc::new(MemoryStore::with_users([("bot@service", vec!["write"])]));
    let revocations = Arc::new(MemoryStore::new());
    let caps = Capabilities::builder(config(), store, Secret::new(SECRET))
        .revocations(revocations)
        .build()
        .unwrap();
    let verifier = verifier(&caps);
    let claims = |extra: Value| {
        let mut claims = json!({
            "iss": SERVICE_ISSUER, "aud": SERVICE_ISSUER, "sub": "bot@service",
            "caps": ["write"], "iat": 1_700_000_000u64, "exp": 4_102_444_800u64,
        });
        claims
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        signing_key().sign(&claims, Some("JWT")).unwrap()
    };
    // A service token without `issued_by`: verified, but honoured nowhere.
    let legacy = claims(json!({"jti": "legacy-1", "kind": "service"}));
    let caller = bearer(&verifier, &legacy).await;
    let e = caps.of(Some(&caller)).await.unwrap_err();
    assert_eq!(
        (e.status(), e.rejection()),
        (401, Some(TokenRejection::MissingClaim))
    );
    let e = caps.require(Some(&caller), "read").await.unwrap_err();
    assert_eq!(e.status(), 401);
    // A token without `jti` could never be revoked: refused at verification.
    let unrevocable = claims(json!({"kind": "service", "issued_by": "m@example.com"}));
    let e = verifier.verify(&unrevocable).await.unwrap_err();
    assert_eq!(
        (e.status(), e.rejection()),
        (401, Some(TokenRejection::MissingClaim))
    );
    // A token of no known kind holds nothing.
    let odd = claims(json!({"jti": "odd-1", "kind": "root", "issued_by": "m@example.com"}));
    let caller = bearer(&verifier, &odd).await;
    assert_eq!(caps.of(Some(&caller)).await.unwrap_err().status(), 401);
}

/// A revoked user token and a revoked service token are refused by the
/// verifier an application builds from `caps` (also after a cached success),
/// and by `verifier_elsewhere` (another replica's) at once.
pub(crate) async fn revoked_tokens_are_refused_at_verification(
    caps: Capabilities,
    store: Arc<dyn CapabilityStore>,
    verifier_elsewhere: TokenVerifier,
) {
    store
        .update(
            "manager@example.com",
            Change::Set(v(&["user_management", "write"])),
        )
        .await
        .unwrap();
    store
        .update("bot@service", Change::Set(v(&["read"])))
        .await
        .unwrap();
    let verifier = verifier(&caps);
    let manager = user("manager@example.com");
    let user_token = text(&body(caps.issue_user_token(Some(&manager)).await), "token");
    let service_token = text(
        &body(
            caps.issue_service_token(Some(&manager), Some("bot@service"))
                .await,
        ),
        "service_token",
    );
    for token in [&user_token, &service_token] {
        // Verified twice: the second comes from the cache.
        for v in [
            &verifier,
            &verifier,
            &verifier_elsewhere,
            &verifier_elsewhere,
        ] {
            v.verify(token).await.unwrap();
        }
        let revoke = json!({"token": token}).to_string();
        body(caps.revoke(Some(&manager), revoke.as_bytes()).await);
        // Revoking again is no error.
        body(caps.revoke(Some(&manager), revoke.as_bytes()).await);
        for v in [&verifier, &verifier_elsewhere] {
            let e = v.verify(token).await.unwrap_err();
            assert_eq!(e.status(), 401, "{e}");
            assert_eq!(e.rejection(), Some(TokenRejection::Revoked), "{e}");
        }
    }
    // A route that only needs a caller never sees it: there is no caller.
    // Tokens not revoked still pass.
    let other = text(&body(caps.issue_user_token(Some(&manager)).await), "token");
    verifier.verify(&other).await.unwrap();
    verifier_elsewhere.verify(&other).await.unwrap();
}

#[tokio::test]
async fn memory_revoked_tokens_are_refused_at_verification() {
    let store = Arc::new(MemoryStore::new());
    let caps = Capabilities::builder(config(), store.clone(), Secret::new(SECRET))
        .revocations(store.clone())
        .build()
        .unwrap();
    let elsewhere = verifier(&caps);
    revoked_tokens_are_refused_at_verification(caps, store, elsewhere).await;
}

#[tokio::test]
async fn file_revoked_tokens_are_refused_at_verification() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        portcullis_capabilities::FileStore::open(dir.path().join("caps.yaml"))
            .await
            .unwrap(),
    );
    let caps = Capabilities::builder(config(), store.clone(), Secret::new(SECRET))
        .revocations(store.clone())
        .build()
        .unwrap();
    let elsewhere = verifier(&caps);
    revoked_tokens_are_refused_at_verification(caps, store, elsewhere).await;
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_revoked_tokens_are_refused_at_verification_by_every_replica() {
    use portcullis_capabilities::{RedisConfig, RedisStore};
    let server = crate::support::RedisServer::start();
    let a = Arc::new(
        RedisStore::connect(RedisConfig::new(server.url()))
            .await
            .unwrap(),
    );
    let b = Arc::new(
        RedisStore::connect(RedisConfig::new(server.url()))
            .await
            .unwrap(),
    );
    let replica = |store: Arc<RedisStore>| {
        Capabilities::builder(config(), store.clone(), Secret::new(SECRET))
            .revocations(store)
            .build()
            .unwrap()
    };
    let caps_a = replica(a.clone());
    // Replica b verifies through its own store instance.
    let elsewhere = verifier(&replica(b));
    revoked_tokens_are_refused_at_verification(caps_a, a, elsewhere).await;
}

#[tokio::test]
async fn without_a_revocation_store_the_issuer_asks_no_check() {
    let caps = service(Arc::new(MemoryStore::new()));
    assert!(caps.service_issuer_config().revocations.is_none());
    let caps = Capabilities::builder(config(), Arc::new(MemoryStore::new()), Secret::new(SECRET))
        .revocations(Arc::new(MemoryStore::new()))
        .build()
        .unwrap();
    assert!(caps.service_issuer_config().revocations.is_some());
}

portcullis_core::capability!(
    #[allow(dead_code, reason = "declared to be reported, never required")]
    NotInTheServiceGraph = "not-in-the-service-graph"
);

#[test]
fn a_guard_naming_a_capability_missing_from_the_graph_is_reported_at_start() {
    let ((), log) = LogCapture::during(|| {
        Capabilities::builder(config(), Arc::new(MemoryStore::new()), Secret::new(SECRET))
            .build()
            .unwrap();
    });
    let line = log
        .lines()
        .find(|l| l.contains("not-in-the-service-graph"))
        .unwrap_or_else(|| panic!("reported: {log}"));
    assert!(
        line.contains("ERROR") && line.contains("does not declare"),
        "{line}"
    );
    assert!(!log.contains("capability=\"read\""), "{log}");
}

#[tokio::test]
async fn user_overrides_add_to_the_store_survive_every_change_and_are_never_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("caps.yaml");
    std::fs::write(
        &path,
        "manager@example.com: [admin]\npinned@example.com: [read]\n",
    )
    .unwrap();
    let store = Arc::new(
        portcullis_capabilities::FileStore::open(&path)
            .await
            .unwrap(),
    );
    let pins = config()
        .with_user_override("pinned@example.com", ["moderate"])
        .with_user_override("bot@service", ["write"]);
    let caps = Capabilities::builder(pins, store.clone(), Secret::new(SECRET))
        .build()
        .unwrap();
    let manager = user("manager@example.com");
    let pinned = user("pinned@example.com");
    assert_eq!(
        held(&caps, &pinned).await,
        v(&["moderate", "read", "write"])
    );

    // `list` reports the pinned names beside the stored ones.
    let listed = body(caps.list(Some(&manager), Some("pinned@example.com")).await);
    assert_eq!(
        listed,
        json!({
            "status": "ok",
            "email": "pinned@example.com",
            "capabilities": ["read"],
            "user_overrides": ["moderate"],
            "effective": ["moderate", "read"],
        })
    );
    // A user without overrides gets easy-oauth's answer as it was.
    let own = body(caps.list(Some(&manager), None).await);
    assert_eq!(
        own,
        json!({"status": "ok", "email": "manager@example.com", "capabilities": ["admin"]})
    );

    // `remove` and `set` change the store only: the pinned capability stays.
    let removed = body(
        caps.remove(
            Some(&manager),
            br#"{"email": "pinned@example.com", "capability": "moderate"}"#,
        )
        .await,
    );
    assert_eq!(removed["capabilities"], json!(["read"]));
    assert_eq!(removed["user_overrides"], json!(["moderate"]));
    let set = body(
        caps.set(
            Some(&manager),
            br#"{"email": "pinned@example.com", "capabilities": []}"#,
        )
        .await,
    );
    assert_eq!(set["capabilities"], json!([]));
    assert_eq!(set["effective"], json!(["moderate"]));
    assert_eq!(
        held(&caps, &pinned).await,
        v(&["moderate", "read", "write"])
    );
    // `add` of the pinned name stores it (the store is the manager's), and
    // the file holds only what was stored, never the pinned names.
    body(
        caps.add(
            Some(&manager),
            br#"{"email": "pinned@example.com", "capability": "write"}"#,
        )
        .await,
    );
    let on_disk: BTreeMap<String, Vec<String>> =
        serde_yaml_ng::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(on_disk["pinned@example.com"], v(&["write"]));
    assert!(!on_disk.contains_key("bot@service"));
    assert!(!std::fs::read_to_string(&path).unwrap().contains("moderate"));

    // A pinned user acts with its pinned capabilities: as a manager's
    // token issuer, and a service account's pins go into its tokens.
    let issued = body(
        caps.issue_service_token(Some(&manager), Some("bot@service"))
            .await,
    );
    assert_eq!(issued["capabilities"], json!(["read", "write"]));
    let bot = bearer(&verifier(&caps), &text(&issued, "service_token")).await;
    assert_eq!(held(&caps, &bot).await, v(&["read", "write"]));

    // Names the graph does not declare are a configuration error naming the key.
    let e = Capabilities::builder(
        config().with_user_override("x@example.com", ["fly"]),
        Arc::new(MemoryStore::new()),
        Secret::new(SECRET),
    )
    .build()
    .unwrap_err();
    assert!(
        e.message().contains("`capabilities.user_overrides`") && e.message().contains("`fly`"),
        "{e}"
    );
}
