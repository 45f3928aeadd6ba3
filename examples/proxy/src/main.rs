//! A service behind an auth proxy that calls another service with the
//! caller's tokens, refreshing them as they expire.
//!
//! `cargo run -p example-proxy` runs the whole scenario on 127.0.0.1: the
//! embedded mock provider, a protected downstream service, the app, and a
//! stand-in for the auth proxy that logs alice in and forwards her tokens to
//! the app. The app calls the downstream service once with her access token,
//! then every `--every` seconds for `--for` minutes, refreshing the token
//! (which lives 20 seconds here) as it expires. Everything is printed.
//!
//! `--config FILE` (see `config.example.yaml`) runs the app alone against a
//! real provider and downstream service, for a real auth proxy to call.

// A command-line program: its output to the user is stdout.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use example_proxy::demo::{self, DemoOptions};
use example_proxy::{Event, ProxyConfig, Schedule};
use tokio::sync::mpsc;

struct Args {
    config: Option<PathBuf>,
    schedule: Schedule,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        config: None,
        schedule: DemoOptions::default().schedule,
    };
    let mut it = std::env::args().skip(1);
    let number = |flag: &str, v: Option<String>| -> anyhow::Result<f64> {
        let v = v.with_context(|| format!("{flag} needs a number"))?;
        match v.parse::<f64>() {
            Ok(n) if n.is_finite() && n > 0.0 => Ok(n),
            _ => bail!("{flag} {v}: expected a positive number"),
        }
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--config" => args.config = Some(it.next().context("--config needs a file")?.into()),
            "--every" => {
                args.schedule.every = Duration::from_secs_f64(number("--every", it.next())?);
            }
            "--for" => {
                args.schedule.duration =
                    Duration::from_secs_f64(number("--for", it.next())? * 60.0);
            }
            "-h" | "--help" => {
                println!("usage: example-proxy [--every SECS] [--for MINS] [--config FILE]");
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
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let args = parse_args()?;
    let (events, mut received) = mpsc::unbounded_channel();

    if let Some(path) = &args.config {
        let config = ProxyConfig::load(path)?;
        let app = example_proxy::app_for(&config, args.schedule, events).await?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        println!(
            "example-proxy listening on http://{}, calling {}",
            listener.local_addr()?,
            config.downstream_url
        );
        tokio::spawn(async move {
            while let Some(event) = received.recv().await {
                println!("{event}");
            }
        });
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        return Ok(());
    }

    let options = DemoOptions {
        schedule: args.schedule,
        ..DemoOptions::default()
    };
    let ttl = options.access_token_ttl;
    let demo = demo::start(options, events).await?;
    println!("mock provider:      {}", demo.provider.issuer());
    println!("downstream service: {}", demo.downstream_url);
    println!("app:                {}", demo.app_url);
    println!("access tokens live {ttl:?}");
    println!();

    let (status, body) = demo::call_app(&demo.app_url, None).await?;
    println!(
        "a guest (no tokens forwarded) -> HTTP {status}: {}",
        body.trim()
    );
    let tokens = demo::proxy_login(&demo.provider, "alice@example.com").await?;
    println!("the auth proxy logged alice@example.com in and forwards her tokens to the app");
    let (status, body) = demo::call_app(&demo.app_url, Some(&tokens)).await?;
    println!("alice -> HTTP {status}:");
    for line in body.lines() {
        println!("  {line}");
    }
    println!();

    while let Some(event) = received.recv().await {
        println!("{event}");
        if matches!(event, Event::Ended { .. } | Event::NoRefreshToken { .. }) {
            break;
        }
    }
    let calls = demo.downstream_log.calls();
    let ok = calls.iter().filter(|c| c.status == 200).count();
    println!();
    println!(
        "the downstream service answered {ok} of {} calls with 200; the provider refreshed {} times",
        calls.len(),
        demo.provider.refresh_count()
    );
    Ok(())
}
