//! SMAC's scenario: `cargo run -p example-smac` with no `SMAC__AUTH__`
//! variable starts the mock provider in Cognito mode and an in-process
//! secret store, and prints `curl` lines for a user and an automation
//! principal; with SMAC's variables (and the standard `AWS_*` ones) it
//! serves them for real. `--addr HOST:PORT` (default `127.0.0.1:8000`).

// A command-line program: its output to the user is stdout.
#![allow(clippy::print_stdout)]

use std::net::SocketAddr;

use anyhow::{Context, bail};

const USAGE: &str = "usage: example-smac [--addr HOST:PORT]";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let addr = parse_args()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let addr = listener.local_addr()?;
    let env = portcullis_smac::aws::process_env();
    let (auth, demo) = if example_smac::is_configured(&env) {
        (example_smac::from_env(&env)?, None)
    } else {
        let demo = example_smac::demo().await?;
        (demo.auth.clone(), Some(demo))
    };
    println!("example-smac listening on http://{addr}");
    if let Some(demo) = &demo {
        print!("{}", example_smac::instructions(demo, addr));
    }
    axum::serve(listener, example_smac::app(auth))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

fn parse_args() -> anyhow::Result<SocketAddr> {
    let mut addr: SocketAddr = "127.0.0.1:8000".parse()?;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => {
                let value = args.next().context(USAGE)?;
                addr = value.parse().with_context(|| format!("--addr {value}"))?;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}\n{USAGE}"),
        }
    }
    Ok(addr)
}
