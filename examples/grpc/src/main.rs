//! `example-grpc`: the `Board` gRPC service, and a small client for it.
//!
//! `cargo run -p example-grpc` starts the embedded mock OpenID Connect
//! provider and the service on 127.0.0.1:50051, and prints tokens and the
//! commands that call the service with them; it needs no secrets, no external
//! server and no `grpcurl`. `--config FILE` (YAML or TOML, see
//! `config.example.yaml`) runs it against a real provider instead.
//!
//! `example-grpc call [--addr URL] [--token TOKEN] whoami | announce MESSAGE`
//! calls a running service and prints the answer, or the gRPC status.

// A command-line program: its output to the user is stdout.
#![allow(clippy::print_stdout)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use example_grpc::ExampleConfig;
use example_grpc::proto::{AnnounceRequest, BoardClient, WhoAmIRequest};
use portcullis_core::TokenVerifier;
use portcullis_core::config::{self, IssuerConfig, VerifierConfig};
use portcullis_testing::MockProvider;
use tonic::metadata::{Ascii, MetadataValue};

const USAGE: &str = "\
usage: example-grpc [serve] [--config FILE] [--addr HOST:PORT]
       example-grpc call [--addr URL] [--token TOKEN] whoami
       example-grpc call [--addr URL] [--token TOKEN] announce MESSAGE";

const DEFAULT_ADDR: &str = "127.0.0.1:50051";

enum Command {
    Serve {
        config: Option<PathBuf>,
        addr: SocketAddr,
    },
    Call {
        addr: String,
        token: Option<String>,
        method: Method,
    },
}

enum Method {
    WhoAmI,
    Announce(String),
}

fn parse_args() -> anyhow::Result<Command> {
    let mut args = std::env::args().skip(1).peekable();
    let call = args.peek().is_some_and(|a| a == "call");
    if call || args.peek().is_some_and(|a| a == "serve") {
        args.next();
    }
    let mut addr = None;
    let mut config = None;
    let mut token = None;
    let mut rest = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => addr = Some(args.next().context("--addr needs an address")?),
            "--config" if !call => {
                config = Some(PathBuf::from(args.next().context("--config needs a file")?));
            }
            "--token" if call => token = Some(args.next().context("--token needs a token")?),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other if call && !other.starts_with("--") => rest.push(arg),
            other => bail!("unknown argument `{other}`\n{USAGE}"),
        }
    }
    if call {
        let method = match rest.first().map(String::as_str) {
            Some("whoami") if rest.len() == 1 => Method::WhoAmI,
            Some("announce") if rest.len() == 2 => Method::Announce(rest[1].clone()),
            _ => bail!("call: expected `whoami` or `announce MESSAGE`\n{USAGE}"),
        };
        let addr = addr.unwrap_or_else(|| DEFAULT_ADDR.to_owned());
        let addr = if addr.contains("://") {
            addr
        } else {
            format!("http://{addr}")
        };
        return Ok(Command::Call {
            addr,
            token,
            method,
        });
    }
    let addr = addr.as_deref().unwrap_or(DEFAULT_ADDR);
    let addr = addr
        .parse()
        .with_context(|| format!("--addr {addr}: expected HOST:PORT"))?;
    Ok(Command::Serve { config, addr })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match parse_args()? {
        Command::Serve { config, addr } => serve(config, addr).await,
        Command::Call {
            addr,
            token,
            method,
        } => call(&addr, token.as_deref(), method).await,
    }
}

async fn serve(config: Option<PathBuf>, addr: SocketAddr) -> anyhow::Result<()> {
    // Logs go to stderr: stdout carries the instructions.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let addr = listener.local_addr()?;

    // Kept alive for as long as the server runs.
    let mut provider = None;
    let (verifier, caps_config, users) = match &config {
        Some(path) => {
            let env = config::env_overrides("PORTCULLIS", std::env::vars());
            let cfg: ExampleConfig = config::load_file(path, &env)?;
            (
                TokenVerifier::new(cfg.verifier)?,
                cfg.capabilities,
                cfg.users,
            )
        }
        None => {
            let mock = MockProvider::start()
                .await
                .context("starting the mock provider")?;
            let issuer = IssuerConfig::new(mock.issuer()).with_audience(mock.audience());
            let verifier =
                TokenVerifier::builder(VerifierConfig::new([("mock".to_owned(), issuer)]))
                    .clock(Arc::new(mock.clock()))
                    .build()?;
            let users = [(
                "announcer@example.com".to_owned(),
                vec!["announce".to_owned()],
            )]
            .into();
            provider = Some(mock);
            (verifier, example_grpc::board_capabilities(), users)
        }
    };
    let capabilities = example_grpc::capabilities(caps_config, users).await?;

    println!("example-grpc listening on http://{addr} (service portcullis.example.v1.Board)");
    if let Some(mock) = &provider {
        let token = |email: &str| {
            let name = email.split('@').next().unwrap_or(email);
            mock.token()
                .subject(name)
                .email(email)
                .expires_in(3600)
                .sign()
        };
        let call = format!("cargo run -p example-grpc -- call --addr {addr}");
        println!("mock provider: {}", mock.issuer());
        println!("tokens from the mock provider, valid one hour:");
        println!("  announcer@example.com holds `announce`:");
        println!(
            "    {call} --token {} announce 'hello'",
            token("announcer@example.com")
        );
        println!("  reader@example.com holds `read` only (PERMISSION_DENIED):");
        println!(
            "    {call} --token {} announce 'hello'",
            token("reader@example.com")
        );
        println!("    {call} --token {} whoami", token("reader@example.com"));
        println!("  no token (UNAUTHENTICATED):");
        println!("    {call} whoami");
    }
    example_grpc::serve(
        listener,
        example_grpc::authenticator(verifier),
        capabilities,
        async {
            let _ = tokio::signal::ctrl_c().await;
        },
    )
    .await?;
    Ok(())
}

async fn call(addr: &str, token: Option<&str>, method: Method) -> anyhow::Result<()> {
    let mut client = BoardClient::connect(addr.to_owned())
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    let bearer = token
        .map(|t| MetadataValue::try_from(format!("Bearer {t}")))
        .transpose()
        .context("the token is not a valid metadata value")?;
    let outcome = match method {
        Method::WhoAmI => client
            .who_am_i(authorized(WhoAmIRequest {}, bearer.as_ref()))
            .await
            .map(|r| {
                let r = r.into_inner();
                format!(
                    "user_id: {}\nemail: {}\ncapabilities: {}",
                    r.user_id,
                    r.email,
                    r.capabilities.join(", ")
                )
            }),
        Method::Announce(message) => client
            .announce(authorized(AnnounceRequest { message }, bearer.as_ref()))
            .await
            .map(|r| r.into_inner().announcement),
    };
    match outcome {
        Ok(text) => {
            println!("{text}");
            Ok(())
        }
        Err(status) => {
            println!("{:?}: {}", status.code(), status.message());
            std::process::exit(1);
        }
    }
}

/// A request carrying `authorization: Bearer ...` when there is a token.
fn authorized<T>(message: T, bearer: Option<&MetadataValue<Ascii>>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(bearer) = bearer {
        request
            .metadata_mut()
            .insert("authorization", bearer.clone());
    }
    request
}
