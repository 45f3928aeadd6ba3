//! The main example: easy-oauth's README application on actix-web.
//!
//! `cargo run -p example-actix` starts the embedded mock OpenID Connect
//! provider and the application, and prints how to log in with a browser or
//! call the API with a token; it needs no secrets and no external server.
//! `--config FILE` (YAML or TOML in easy-oauth's format, see
//! `examples/axum/config.example.yaml`) runs it against a real provider
//! instead.

// A command-line program: its output to the user is stdout.
#![allow(clippy::print_stdout)]

use actix_web::HttpServer;
use anyhow::Context;
use example_actix::{FILES, app};
use portcullis_actix::portcullis_core::config;
use portcullis_testing::demo;

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = demo::Args::parse(std::env::args().skip(1)).map_err(anyhow::Error::msg)?;
    if args.help {
        println!("{}", demo::usage("example-actix"));
        return Ok(());
    }
    let env = config::env_overrides("PORTCULLIS", std::env::vars());
    let listener =
        std::net::TcpListener::bind(args.addr).with_context(|| format!("binding {}", args.addr))?;
    let addr = listener.local_addr()?;
    let setup = demo::configure(&args, addr, FILES, &env).await?;
    print!("{}", setup.banner("example-actix", addr));
    // actix-web stops gracefully on Ctrl-C by itself.
    let rp = setup.rp.clone();
    HttpServer::new(move || app(rp.clone()))
        .listen(listener)?
        .run()
        .await?;
    Ok(())
}
