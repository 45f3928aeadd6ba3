//! fastapi-opa's scenario: an OpenID Connect login and a Rego policy
//! decision on every request.
//!
//! `cargo run -p example-opa` starts the embedded mock OpenID Connect
//! provider, the embedded policy engine over `policies/`, and the
//! application, and prints `curl` lines to try with tokens minted by the
//! mock provider; it needs no secrets and no external server. `--config
//! FILE` (the main example's format, see `config.example.yaml`) runs it
//! against a real provider instead.

// A command-line program: its output to the user is stdout.
#![allow(clippy::print_stdout)]

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use example_opa::{CONFIG_FILE, ExampleConfig, USER_FILE, app, policy_config};
use portcullis_axum::portcullis_core::config;
use portcullis_axum::portcullis_oidc::RelyingParty;
use portcullis_axum::portcullis_policy::Policy;
use portcullis_testing::demo::{self, MockDemo};

const USAGE: &str = "usage: example-opa [--config FILE] [--addr HOST:PORT]";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let (config_file, addr) = parse_args()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    // The port actually bound (`--addr 127.0.0.1:0`), for the printed URLs.
    let addr = listener.local_addr()?;

    let (rp, mock) = match config_file {
        Some(path) => {
            let env = config::env_overrides("PORTCULLIS", std::env::vars());
            let cfg: ExampleConfig = config::load_file(&path, &env)?;
            (RelyingParty::builder(cfg).build().await?, None)
        }
        None => {
            let mock = demo::start_mock_provider(addr, CONFIG_FILE, USER_FILE).await?;
            (mock.rp.clone(), Some(mock))
        }
    };
    let policy = Policy::from_config(&policy_config(std::env::vars())?).await?;

    println!("example-opa listening on http://{addr}");
    if let Some(mock) = &mock {
        print!("{}", instructions(mock, addr));
    }
    axum::serve(listener, app(rp, policy)?)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

/// The `curl` lines of the demo mode, with tokens the mock provider mints
/// for alice (a user) and frank (in the `finance` group), valid one hour.
fn instructions(mock: &MockDemo, addr: SocketAddr) -> String {
    let [alice, frank] = example_opa::demo_tokens(&mock.provider);
    format!(
        "mock provider: {} (the policy: examples/opa/policies/authz.rego)\n\
         curl http://{addr}/public                                        # 200, guests too\n\
         curl -i http://{addr}/finance/salary/alice                       # 401, log in first\n\
         curl -H 'Authorization: Bearer {alice}' http://{addr}/finance/salary/alice   # 200, her own\n\
         curl -i -H 'Authorization: Bearer {alice}' http://{addr}/finance/salary/bob  # 403\n\
         curl -H 'Authorization: Bearer {frank}' http://{addr}/finance/salary/bob     # 200, finance\n\
         curl -X POST -d '{{\"amount\": 3}}' -H 'Authorization: Bearer {frank}' http://{addr}/records  # 200\n\
         in a browser: http://{addr}/login (logged in as admin@example.com, who is not in finance)\n",
        mock.provider.issuer()
    )
}

/// `[--config FILE] [--addr HOST:PORT]`; `--help` prints the usage and exits.
fn parse_args() -> anyhow::Result<(Option<PathBuf>, SocketAddr)> {
    let mut config_file = None;
    let mut addr = SocketAddr::from(([127, 0, 0, 1], 3000));
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" => config_file = Some(args.next().context("--config needs a file")?.into()),
            "--addr" => {
                let value = args.next().context("--addr needs HOST:PORT")?;
                addr = value
                    .parse()
                    .with_context(|| format!("--addr {value}: expected HOST:PORT"))?;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument `{other}` (try --help)"),
        }
    }
    Ok((config_file, addr))
}
