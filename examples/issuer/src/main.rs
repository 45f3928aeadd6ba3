//! `cargo run -p example-issuer`: the authorization server and a resource
//! server trusting it, in one binary, on `--addr` (default
//! `127.0.0.1:8000`). With no configuration it generates its key, keeps
//! refresh tokens in memory and prints `curl` lines to try it. The seed's
//! variables configure it (see `portcullis_issuer::env`): `ALGORITHM`
//! (HS256, RS256, ES256, EdDSA), `SECRET_KEY` (HS256), `PRIVATE_KEY` /
//! `PUBLIC_KEY` (base64 PEM), `ISSUER`, `EXPIRY`, `AUTH_SCOPES`,
//! `TOKEN_URL`, `REFRESH_RESTRICT_MINUTES`, `DB_URL` with
//! `REFRESH_RESTRICT_DB` (Redis for refresh families).
//!
//! `example-issuer hash-password` reads a password on stdin and prints its
//! Argon2id hash, for the users file.

// A command-line program: its output to the user is stdout.
#![allow(clippy::print_stdout)]

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, bail};
use example_issuer::{Settings, app, authenticator, instructions, issuer};
use portcullis_capabilities::RedisConfig;
use portcullis_issuer::env::SeedEnv;
use portcullis_issuer::refresh::RedisRefreshStore;

const USAGE: &str = "usage: example-issuer [--addr HOST:PORT] | example-issuer hash-password";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut addr: SocketAddr = "127.0.0.1:8000".parse()?;
    match args.as_slice() {
        [] => {}
        [flag, value] if flag == "--addr" => {
            addr = value.parse().with_context(|| format!("--addr {value}"))?;
        }
        [command] if command == "hash-password" => {
            let mut password = String::new();
            std::io::stdin().read_line(&mut password)?;
            println!(
                "{}",
                portcullis_issuer::password::hash_password(
                    password.trim_end_matches(['\r', '\n'])
                )?
            );
            return Ok(());
        }
        _ => bail!("{USAGE}"),
    }
    // The seed's variables, unprefixed; a bad value names its variable.
    let seed = SeedEnv::from_vars(std::env::vars())?;
    let store = match &seed.refresh_store_url {
        Some(url) => Some(Arc::new(
            RedisRefreshStore::connect(RedisConfig::new(url.clone()).with_prefix("issuer:"))
                .await?,
        )
            as Arc<dyn portcullis_issuer::refresh::RefreshStore>),
        None => None,
    };
    let secret = seed.keys.secret_key.clone();
    let settings = Settings { seed, store };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let addr = listener.local_addr()?;
    let base_url = settings
        .seed
        .issuer
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let issuer = issuer(&base_url, &settings)?;
    let auth = authenticator(&issuer, secret.as_ref())?;
    println!("example-issuer listening on {base_url}");
    println!(
        "signing with {} (kid {}); refresh tokens in {}",
        issuer.keys().active().algorithm(),
        issuer.keys().active().kid(),
        if settings.store.is_some() {
            "Redis"
        } else {
            "memory"
        }
    );
    print!("{}", instructions(&base_url));
    axum::serve(
        listener,
        app(&issuer, auth).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
