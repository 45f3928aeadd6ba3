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

use anyhow::Context;
use example_poem::{FILES, app};
use poem::Server;
use poem::listener::TcpAcceptor;
use portcullis_poem::portcullis_core::config;
use portcullis_testing::demo;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = demo::Args::parse(std::env::args().skip(1)).map_err(anyhow::Error::msg)?;
    if args.help {
        println!("{}", demo::usage("example-poem"));
        return Ok(());
    }
    let env = config::env_overrides("PORTCULLIS", std::env::vars());
    // Bound here, before the server starts, so that the printed URLs and the
    // mock provider's redirect URIs carry the real port (`--addr 127.0.0.1:0`).
    let listener =
        std::net::TcpListener::bind(args.addr).with_context(|| format!("binding {}", args.addr))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let setup = demo::configure(&args, addr, FILES, &env).await?;
    print!("{}", setup.banner("example-poem", addr));
    Server::new_with_acceptor(TcpAcceptor::from_std(listener)?)
        .run_with_graceful_shutdown(
            app(setup.rp.clone()),
            async {
                let _ = tokio::signal::ctrl_c().await;
            },
            None,
        )
        .await?;
    Ok(())
}
