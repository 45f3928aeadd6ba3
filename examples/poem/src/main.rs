//! The main example: easy-oauth's README application on poem.
//!
//! `cargo run -p example-poem` starts the embedded mock OpenID Connect
//! provider and the application, and prints how to log in with a browser or
//! call the API with a token; it needs no secrets and no external server.
//! `--config FILE` (YAML or TOML in easy-oauth's format, see
//! `examples/axum/config.example.yaml`) runs it against a real provider
//! instead.

// A command-line program: its output to the user is stdout.
#![allow(clippy::print_stdout)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use example_poem::{CONFIG_EXAMPLE, ExampleConfig, USER_FILE, app};
use poem::Server;
use poem::listener::TcpAcceptor;
use portcullis_poem::portcullis_core::config;
use portcullis_poem::portcullis_oidc::RelyingParty;
use portcullis_testing::demo;

struct Args {
    config: Option<PathBuf>,
    addr: SocketAddr,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        config: None,
        addr: "127.0.0.1:3000".parse()?,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--config" => args.config = Some(it.next().context("--config needs a file")?.into()),
            "--addr" => {
                let v = it.next().context("--addr needs HOST:PORT")?;
                args.addr = v
                    .parse()
                    .with_context(|| format!("--addr {v}: expected HOST:PORT"))?;
            }
            "-h" | "--help" => {
                println!("usage: example-poem [--config FILE] [--addr HOST:PORT]");
                std::process::exit(0);
            }
            other => bail!("unknown argument `{other}` (try --help)"),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = parse_args()?;
    let env = config::env_overrides("PORTCULLIS", std::env::vars());
    // Bound here, before the server starts, so that the printed URLs and the
    // mock provider's redirect URIs carry the real port (`--addr 127.0.0.1:0`).
    let listener =
        std::net::TcpListener::bind(args.addr).with_context(|| format!("binding {}", args.addr))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;

    // Kept alive for as long as the server runs.
    let mut provider = None;
    let mut _dir = None;
    let rp = match &args.config {
        Some(path) => {
            let cfg: ExampleConfig = config::load_file(path, &env)?;
            RelyingParty::builder(cfg).build().await?
        }
        None => {
            let base_url = format!("http://{addr}");
            let mock = demo::start_provider(&base_url)
                .await
                .context("starting the mock provider")?;
            let dir = tempfile::tempdir()?;
            let caps = dir.path().join("caps.yaml");
            std::fs::write(&caps, USER_FILE)?;
            let mut cfg: ExampleConfig =
                config::load_from_str(CONFIG_EXAMPLE, config::Format::Yaml, &[])?;
            demo::point_at_mock(&mut cfg, &mock, &base_url, &caps)?;
            let rp = RelyingParty::builder(cfg)
                .clock(Arc::new(mock.clock()))
                .build()
                .await?;
            provider = Some(mock);
            _dir = Some(dir);
            rp
        }
    };
    println!("example-poem listening on http://{addr}");
    if let Some(mock) = &provider {
        let token = mock
            .token()
            .email("friend@example.com")
            .expires_in(3600)
            .sign();
        println!(
            "mock provider: {} (logs everyone in as admin@example.com)",
            mock.issuer()
        );
        println!(
            "in a browser:   http://{addr}/login   then /read, /shout?message=hi, /token, /logout"
        );
        println!(
            "as someone else: curl -X POST -H 'content-type: application/json' -d '{{\"email\":\"reader@example.com\"}}' {}/set_email",
            mock.issuer()
        );
        println!("with a provider access token for friend@example.com (valid one hour):");
        println!("  curl -H 'Authorization: Bearer {token}' 'http://{addr}/shout?message=hello'");
        println!("  curl -i http://{addr}/read    # 401 with a WWW-Authenticate challenge");
    }
    Server::new_with_acceptor(TcpAcceptor::from_std(listener)?)
        .run_with_graceful_shutdown(
            app(rp),
            async {
                let _ = tokio::signal::ctrl_c().await;
            },
            None,
        )
        .await?;
    Ok(())
}
