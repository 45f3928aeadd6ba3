//! What the tests share: users, an issuer on a manual clock, requests.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use portcullis_core::clock::ManualClock;
use portcullis_core::{Algorithm, Reply};
use portcullis_issuer::keys::KeyConfig;
use portcullis_issuer::password::{Argon2Users, StoredUser, UserGrant, hash_password};
use portcullis_issuer::refresh::RefreshStore;
use portcullis_issuer::{ClientConfig, Endpoint, Issuer, IssuerConfig, IssuerRequest};
use serde_json::Value;

pub(crate) const FORM: &str = "application/x-www-form-urlencoded";
pub(crate) const MACHINE_SECRET: &str = "the reports machine secret, 32 bytes+";

fn users() -> Argon2Users {
    static USERS: OnceLock<Argon2Users> = OnceLock::new();
    USERS
        .get_or_init(|| {
            let user = |id: &str, name: &str, password: &str, scopes: &[&str]| {
                (
                    name.to_owned(),
                    StoredUser {
                        password_hash: hash_password(password).unwrap(),
                        grant: UserGrant {
                            user_id: id.to_owned(),
                            username: name.to_owned(),
                            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
                            claims: Default::default(),
                        },
                    },
                )
            };
            Argon2Users::new(
                [
                    user(
                        "u-alice",
                        "alice",
                        "alice-password",
                        &["user:read", "user:write"],
                    ),
                    user("u-bob", "bob", "bob-password", &["user:read"]),
                ],
                2,
            )
            .unwrap()
        })
        .clone()
}

pub(crate) fn config(issuer: &str) -> IssuerConfig {
    let mut config = IssuerConfig::new(issuer)
        .with_scopes([
            ("user:read", "Read access"),
            ("user:write", "Write access"),
            ("reports:read", "Reports"),
        ])
        .with_client(ClientConfig::first_party("web"))
        .with_client(ClientConfig::first_party("mobile"))
        .with_client(ClientConfig::machine(
            "reports",
            MACHINE_SECRET,
            &["reports:read"],
        ));
    config.anonymous_client = Some("web".to_owned());
    config
}

pub(crate) struct Setup {
    pub(crate) issuer: Issuer,
    pub(crate) clock: ManualClock,
}

pub(crate) fn setup_with(
    config: IssuerConfig,
    store: Option<Arc<dyn RefreshStore>>,
    alg: Algorithm,
) -> Setup {
    let clock = ManualClock::starting_now();
    let key = KeyConfig {
        algorithm: Some(alg),
        ..KeyConfig::default()
    }
    .signing_key()
    .unwrap();
    let mut builder = Issuer::builder(config)
        .signing_key(key)
        .credential_check(users())
        .clock(Arc::new(clock.clone()));
    if let Some(store) = store {
        builder = builder.store(store);
    }
    Setup {
        issuer: builder.build().unwrap(),
        clock,
    }
}

pub(crate) fn setup() -> Setup {
    setup_with(config("https://auth.example.com"), None, Algorithm::ES256)
}

pub(crate) struct Answer {
    pub(crate) reply: Reply,
    pub(crate) json: Value,
}

impl Answer {
    pub(crate) fn error(&self) -> &str {
        self.json["error"].as_str().unwrap_or("")
    }
}

pub(crate) async fn call(
    issuer: &Issuer,
    endpoint: Endpoint,
    authorization: Option<&str>,
    body: &str,
) -> Answer {
    let reply = issuer
        .handle(
            endpoint,
            IssuerRequest {
                content_type: Some(FORM),
                authorization,
                body: body.as_bytes(),
                client_addr: Some("192.0.2.7".parse().unwrap()),
            },
        )
        .await;
    let json = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
    Answer { reply, json }
}

pub(crate) async fn token(issuer: &Issuer, body: &str) -> Answer {
    call(issuer, Endpoint::Token, None, body).await
}

/// Logs alice in through the first-party exchange; her refresh token.
pub(crate) async fn login(issuer: &Issuer) -> String {
    let answer = token(
        issuer,
        "grant_type=password&username=alice&password=alice-password&scope=user:read+user:write",
    )
    .await;
    assert_eq!(answer.reply.status, 200, "{}", answer.json);
    answer.json["refresh_token"].as_str().unwrap().to_owned()
}

pub(crate) async fn refresh(issuer: &Issuer, token_: &str, client: &str) -> Answer {
    token(
        issuer,
        &format!("grant_type=refresh_token&refresh_token={token_}&client_id={client}"),
    )
    .await
}

/// Serves `issuer`'s routes on loopback with axum, mounted from
/// [`Issuer::routes`] only; answers its address.
pub(crate) async fn serve(make: impl FnOnce(String) -> Issuer) -> (Issuer, SocketAddr) {
    use axum::body::{Body, to_bytes};
    use axum::extract::{ConnectInfo, Request};
    use axum::response::Response;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let issuer = make(format!("http://{addr}"));
    let mut router = axum::Router::new();
    for route in issuer.routes() {
        let issuer = issuer.clone();
        let endpoint = route.endpoint;
        let handler = move |ConnectInfo(peer): ConnectInfo<SocketAddr>, request: Request| {
            let issuer = issuer.clone();
            async move {
                let (parts, body) = request.into_parts();
                let header = |name: &str| {
                    parts
                        .headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                };
                let reply = match to_bytes(body, portcullis_issuer::form::MAX_FORM_BYTES).await {
                    Err(_) => Issuer::body_too_large(),
                    Ok(body) => {
                        let content_type = header("content-type");
                        let authorization = header("authorization");
                        issuer
                            .handle(
                                endpoint,
                                IssuerRequest {
                                    content_type: content_type.as_deref(),
                                    authorization: authorization.as_deref(),
                                    body: &body,
                                    client_addr: Some(peer.ip()),
                                },
                            )
                            .await
                    }
                };
                let mut response = Response::builder().status(reply.status);
                for (name, value) in &reply.headers {
                    response = response.header(*name, value);
                }
                response.body(Body::from(reply.body)).unwrap()
            }
        };
        router = if route.post {
            router.route(&route.path, axum::routing::post(handler))
        } else {
            router.route(&route.path, axum::routing::get(handler))
        };
    }
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    (issuer, addr)
}
