//! `mock-oidc`: the portcullis mock OpenID Connect provider as a stand-alone
//! server on 127.0.0.1, for trying a service by hand.
//!
//! It prints the issuer, the discovery URL and a ready access token, then
//! serves until Ctrl-C. More tokens come from `POST /mint`, and from the
//! authorization code flow for the client, whose redirect URIs are registered
//! with `--redirect-uri`.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool reports on its standard streams"
)]

use portcullis_testing::{MockOptions, MockProvider};

const USAGE: &str = "\
usage: mock-oidc --port N [--audience A] [--client-id C] [--client-secret S]
                 [--redirect-uri URI]... [--post-logout-redirect-uri URI]...

Runs a mock OpenID Connect provider on 127.0.0.1:N until Ctrl-C.

options:
  --port N                          port to listen on (0 picks a free one)
  --audience A                      default audience of access tokens (default: portcullis-api)
  --client-id C                     client id, the audience of ID tokens (default: portcullis-client)
  --client-secret S                 client secret for the token endpoint (default: portcullis-secret)
  --redirect-uri URI                register a redirect URI (exact match); repeatable
  --post-logout-redirect-uri URI    register a post-logout redirect URI; repeatable
  -h, --help                        print this help

endpoints:
  GET  /.well-known/openid-configuration
  GET  /jwks
  GET  /authorize        authorization code flow with PKCE (S256)
  POST /token            client_secret_basic or client_secret_post
  GET  /userinfo         with an access token from /token
  GET  /logout           RP-initiated logout
  POST /queue_user       {\"email\", \"sub\"?, \"claims\"?}: who logs in next
  POST /set_email        {\"email\"}: who logs in when nobody is queued
  POST /queue_error      {\"error\", \"error_description\"?}: the next /authorize fails
  POST /queue_token_error  same, for the next /token
  POST /mint   JSON body, every field optional:
               {\"sub\", \"email\", \"username\", \"aud\", \"scope\", \"expires_in\",
                \"kind\": \"access\"|\"id\", \"alg\": \"RS256\"|\"ES256\"|\"EdDSA\"|..., \"claims\": {...}}
               answers {\"token\": \"...\"}";

/// What the command line asks for.
enum Command {
    Help,
    Serve(Box<MockOptions>),
}

fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut options = MockOptions::default();
    let mut port = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => {
                (name.to_owned(), Some(value.to_owned()))
            }
            _ => (arg, None),
        };
        if name == "-h" || name == "--help" {
            return Ok(Command::Help);
        }
        if !matches!(
            name.as_str(),
            "--port"
                | "--audience"
                | "--client-id"
                | "--client-secret"
                | "--redirect-uri"
                | "--post-logout-redirect-uri"
        ) {
            return Err(format!("unknown argument `{name}`"));
        }
        let value = match inline.or_else(|| args.next()) {
            Some(value) => value,
            None => return Err(format!("`{name}` needs a value")),
        };
        match name.as_str() {
            "--port" => {
                let parsed = value
                    .parse::<u16>()
                    .map_err(|_| format!("`--port` expects a port number, not `{value}`"))?;
                port = Some(parsed);
            }
            "--audience" => options = options.audience(value),
            "--client-id" => options = options.client_id(value),
            "--client-secret" => options = options.client_secret(value),
            "--redirect-uri" => options = options.redirect_uri(value),
            _ => options = options.post_logout_redirect_uri(value),
        }
    }
    let port = port.ok_or("`--port` is required")?;
    Ok(Command::Serve(Box::new(options.port(port))))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = match parse(std::env::args().skip(1)) {
        Ok(Command::Help) => {
            println!("{USAGE}");
            return Ok(());
        }
        Ok(Command::Serve(options)) => *options,
        Err(message) => {
            eprintln!("mock-oidc: {message}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("could not start the async runtime: {e}"))?;
    runtime.block_on(serve(options))
}

async fn serve(options: MockOptions) -> Result<(), Box<dyn std::error::Error>> {
    let port = options.port;
    let redirect_uris = options.redirect_uris.clone();
    let post_logout_redirect_uris = options.post_logout_redirect_uris.clone();
    let provider = MockProvider::start_with(options)
        .await
        .map_err(|e| format!("could not start the provider on 127.0.0.1:{port}: {e}"))?;
    let token = provider
        .token()
        .subject("alice")
        .email("alice@example.com")
        .username("alice")
        .expires_in(3600)
        .sign();
    println!("issuer:     {}", provider.issuer());
    println!("discovery:  {}", provider.discovery_url());
    println!("jwks:       {}", provider.jwks_url());
    println!("audience:   {}", provider.audience());
    println!("client id:  {}", provider.client_id());
    println!("secret:     {}", provider.client_secret());
    println!("authorize:  {}", provider.authorize_url());
    println!("token:      {}", provider.token_url());
    for uri in &redirect_uris {
        println!("redirect:   {uri}");
    }
    for uri in &post_logout_redirect_uris {
        println!("logout to:  {uri}");
    }
    println!();
    println!("access token for alice@example.com (valid for one hour):");
    println!("{token}");
    println!();
    println!(
        "more tokens: curl -s -X POST {} -H 'content-type: application/json' -d '{{\"sub\":\"bob\",\"expires_in\":600}}'",
        provider.url("/mint")
    );
    println!("serving until Ctrl-C");
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| format!("could not listen for Ctrl-C: {e}"))?;
    provider.shutdown();
    Ok(())
}
