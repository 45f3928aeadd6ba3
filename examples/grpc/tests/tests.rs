//! example-grpc's tests: a tonic client over loopback against the service,
//! with tokens from the mock provider.

use std::sync::Arc;
use std::time::Duration;

use example_grpc::proto::{AnnounceRequest, BoardClient, WhoAmIRequest};
use portcullis_core::automation::{AutomationConfig, AutomationPrincipals, MemorySecrets};
use portcullis_core::config::{IssuerConfig, VerifierConfig};
use portcullis_core::{Error, TokenRejection, TokenVerifier};
use portcullis_testing::MockProvider;
use tokio::sync::oneshot;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

/// The service on a loopback port, trusting `provider`, with
/// `announcer@example.com` granted `announce`.
struct Server {
    client: BoardClient<Channel>,
    _stop: oneshot::Sender<()>,
}

async fn start(provider: &MockProvider) -> Server {
    start_with(provider, None).await
}

/// [`start`], also accepting `automation` principals.
async fn start_with(provider: &MockProvider, automation: Option<AutomationPrincipals>) -> Server {
    let issuer = IssuerConfig::new(provider.issuer()).with_audience(provider.audience());
    let verifier = TokenVerifier::builder(VerifierConfig::new([("mock".to_owned(), issuer)]))
        .clock(Arc::new(provider.clock()))
        .build()
        .unwrap();
    let capabilities = example_grpc::capabilities(
        example_grpc::board_capabilities(),
        [(
            "announcer@example.com".to_owned(),
            vec!["announce".to_owned()],
        )]
        .into(),
    )
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let mut auth = example_grpc::authenticator(verifier);
    if let Some(automation) = automation {
        auth = auth.with_automation(automation);
    }
    tokio::spawn(example_grpc::serve(listener, auth, capabilities, async {
        let _ = stopped.await;
    }));
    let client = BoardClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    Server {
        client,
        _stop: stop,
    }
}

fn with_auth<T>(message: T, authorization: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(value) = authorization {
        request
            .metadata_mut()
            .insert("authorization", value.parse().unwrap());
    }
    request
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

async fn who_am_i(server: &Server, authorization: Option<&str>) -> Result<Vec<String>, Status> {
    let mut client = server.client.clone();
    let reply = client
        .who_am_i(with_auth(WhoAmIRequest {}, authorization))
        .await?;
    Ok(reply.into_inner().capabilities)
}

async fn announce(
    server: &Server,
    authorization: Option<&str>,
    message: &str,
) -> Result<String, Status> {
    let mut client = server.client.clone();
    let request = AnnounceRequest {
        message: message.to_owned(),
    };
    let reply = client.announce(with_auth(request, authorization)).await?;
    Ok(reply.into_inner().announcement)
}

fn assert_status<T: std::fmt::Debug>(result: Result<T, Status>, code: Code, message: &str) {
    let status = result.expect_err("the call should fail");
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(status.message(), message, "{status:?}");
}

#[tokio::test]
async fn without_a_token_calls_are_unauthenticated() {
    let provider = MockProvider::start().await.unwrap();
    let server = start(&provider).await;
    assert_status(
        who_am_i(&server, None).await,
        Code::Unauthenticated,
        "authentication is required",
    );
    assert_status(
        announce(&server, None, "hi").await,
        Code::Unauthenticated,
        "authentication is required",
    );
    // Another scheme is no credential for a bearer-token service.
    assert_status(
        who_am_i(&server, Some("Basic dXNlcjpwYXNz")).await,
        Code::Unauthenticated,
        "authentication is required",
    );
}

#[tokio::test]
async fn bad_or_expired_tokens_are_unauthenticated() {
    let provider = MockProvider::start().await.unwrap();
    let server = start(&provider).await;

    assert_status(
        who_am_i(&server, Some("Bearer not-a-token")).await,
        Code::Unauthenticated,
        "the token is malformed",
    );

    let expired = provider
        .token()
        .email("announcer@example.com")
        .expires_in(-600)
        .sign();
    let status = announce(&server, Some(&bearer(&expired)), "hi")
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), "the token has expired");
    // Nothing of the token comes back, in the message or the metadata.
    let payload = expired.split('.').nth(1).unwrap();
    assert!(!format!("{status:?}").contains(payload));

    let other_api = provider
        .token()
        .email("announcer@example.com")
        .audience("another-api")
        .sign();
    assert_status(
        announce(&server, Some(&bearer(&other_api)), "hi").await,
        Code::Unauthenticated,
        "the token is not meant for this service",
    );

    // A valid token that expires later is refused from then on.
    let token = provider
        .token()
        .email("reader@example.com")
        .expires_in(120)
        .sign();
    assert!(who_am_i(&server, Some(&bearer(&token))).await.is_ok());
    provider.clock().advance_secs(300);
    assert_status(
        who_am_i(&server, Some(&bearer(&token))).await,
        Code::Unauthenticated,
        "the token has expired",
    );
}

#[tokio::test]
async fn malformed_credentials_are_invalid_arguments() {
    let provider = MockProvider::start().await.unwrap();
    let server = start(&provider).await;
    assert_status(
        who_am_i(&server, Some("Bearer two words")).await,
        Code::InvalidArgument,
        "the Bearer credentials are malformed",
    );
}

#[tokio::test]
async fn without_the_capability_calls_are_permission_denied() {
    let provider = MockProvider::start().await.unwrap();
    let server = start(&provider).await;
    let reader = bearer(&provider.token().email("reader@example.com").sign());
    assert_status(
        announce(&server, Some(&reader), "hi").await,
        Code::PermissionDenied,
        "the request requires `announce`",
    );
    // The same caller may do what it holds: every caller holds `read`.
    assert_eq!(who_am_i(&server, Some(&reader)).await.unwrap(), ["read"]);
}

#[tokio::test]
async fn with_the_capability_calls_succeed() {
    let provider = MockProvider::start().await.unwrap();
    let server = start(&provider).await;
    let announcer = bearer(&provider.token().email("announcer@example.com").sign());
    assert_eq!(
        announce(&server, Some(&announcer), "  the board is open ")
            .await
            .unwrap(),
        "announcer@example.com announces: the board is open"
    );
    assert_eq!(
        who_am_i(&server, Some(&announcer)).await.unwrap(),
        ["announce", "read"]
    );
    // Authorized, but the request itself is wrong.
    assert_status(
        announce(&server, Some(&announcer), "   ").await,
        Code::InvalidArgument,
        "the message is empty",
    );
}

#[tokio::test]
async fn automation_principals_call_through_the_same_authenticator() {
    let provider = MockProvider::start().await.unwrap();
    let secrets = MemorySecrets::new();
    secrets.put(
        "announcer-bot",
        r#"{"token": "announcer-bot-token-0a1b2c3d", "id": "announcer@example.com"}"#,
    );
    let automation =
        AutomationPrincipals::new(AutomationConfig::default(), Arc::new(secrets.clone())).unwrap();
    let server = start_with(&provider, Some(automation)).await;
    let call = |token: &'static str| {
        let mut request = Request::new(WhoAmIRequest {});
        let metadata = request.metadata_mut();
        metadata.insert("smac-principal", "announcer-bot".parse().unwrap());
        metadata.insert("smac-token", token.parse().unwrap());
        let mut client = server.client.clone();
        async move {
            client
                .who_am_i(request)
                .await
                .map(|r| r.into_inner().capabilities)
        }
    };
    // Known by its secret's id, with that id's capabilities.
    assert_eq!(
        call("announcer-bot-token-0a1b2c3d").await.unwrap(),
        ["announce", "read"]
    );
    let status = call("a-wrong-token").await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    secrets.set_unreachable(true);
    let mut request = Request::new(WhoAmIRequest {});
    request
        .metadata_mut()
        .insert("smac-principal", "never-read".parse().unwrap());
    request
        .metadata_mut()
        .insert("smac-token", "x".parse().unwrap());
    let status = server.client.clone().who_am_i(request).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
}

#[tokio::test]
async fn a_provider_down_before_keys_were_fetched_is_unavailable() {
    let provider = MockProvider::start().await.unwrap();
    let server = start(&provider).await;
    let token = provider.token().email("announcer@example.com").sign();
    provider.shutdown();
    // The shutdown is asynchronous: wait (bounded) until the port is closed.
    let addr = provider.issuer().trim_start_matches("http://").to_owned();
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(&addr).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = announce(&server, Some(&bearer(&token)), "hi")
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(
        status.message(),
        "a service this request depends on is unavailable; try again later"
    );
    // Fail closed: a call that needs no key check still needs a caller.
    assert_eq!(
        who_am_i(&server, None).await.unwrap_err().code(),
        Code::Unauthenticated
    );
}

#[test]
fn every_kind_maps_to_a_grpc_code() {
    use example_grpc::status::{code, from_error};
    let cases = [
        (Error::missing_credentials(), Code::Unauthenticated),
        (
            Error::invalid_token(TokenRejection::Expired),
            Code::Unauthenticated,
        ),
        (Error::insufficient_scope("read"), Code::PermissionDenied),
        (Error::forbidden("no"), Code::PermissionDenied),
        (Error::unavailable("down"), Code::Unavailable),
        (Error::invalid_request("bad"), Code::InvalidArgument),
        (Error::config("broken"), Code::Internal),
    ];
    for (error, expected) in cases {
        assert_eq!(code(&error), expected, "{:?}", error.kind());
    }
    let forbidden = from_error(&Error::forbidden("the policy refuses this request"));
    assert_eq!(forbidden.code(), Code::PermissionDenied);
    assert_eq!(forbidden.message(), "the policy refuses this request");
    let bad = from_error(&Error::invalid_token(TokenRejection::BadSignature));
    assert_eq!(bad.message(), "the token's signature is invalid");
    // Configuration details stay in the operator's log.
    let config = from_error(&Error::config("issuers.main.hmac_secret: too short"));
    assert_eq!(config.code(), Code::Internal);
    assert_eq!(config.message(), "internal server error");
}

#[test]
fn the_example_configuration_loads() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.yaml");
    let config: example_grpc::ExampleConfig =
        portcullis_core::config::load_file(&path, &[]).unwrap();
    assert_eq!(config.users["alice@example.com"], ["announce"]);
    assert!(config.capabilities.graph.contains_key("announce"));
    TokenVerifier::new(config.verifier).unwrap();
}

/// The binary's out-of-the-box mode prints commands that work: its `call`
/// client gets OK with the announcer's token, and the promised statuses.
#[tokio::test]
async fn the_binary_serves_the_demo_and_its_client_calls_it() {
    use tokio::io::{AsyncBufReadExt, BufReader};

    let binary = env!("CARGO_BIN_EXE_example-grpc");
    let mut server = tokio::process::Command::new(binary)
        .args(["--addr", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let mut commands = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(command) = line.trim().strip_prefix("cargo run -p example-grpc -- ") {
                commands.push(command.to_owned());
            }
            if commands.len() == 4 {
                break;
            }
        }
    })
    .await
    .expect("the server printed its commands");
    assert_eq!(commands.len(), 4, "{commands:?}");

    let run = |command: &str| {
        let out = std::process::Command::new(binary)
            .args(command.split_whitespace().map(|a| a.trim_matches('\'')))
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8(out.stdout).unwrap())
    };
    let (ok, out) = run(&commands[0]);
    assert!(ok, "{out}");
    assert_eq!(out.trim(), "announcer@example.com announces: hello");
    let (ok, out) = run(&commands[1]);
    assert!(!ok);
    assert_eq!(
        out.trim(),
        "PermissionDenied: the request requires `announce`"
    );
    let (ok, out) = run(&commands[2]);
    assert!(ok, "{out}");
    assert!(out.contains("capabilities: read"), "{out}");
    let (ok, out) = run(&commands[3]);
    assert!(!ok);
    assert_eq!(out.trim(), "Unauthenticated: authentication is required");

    server.start_kill().unwrap();
    let _ = server.wait().await;
}
