//! The `mock-oidc` binary's login-flow flags.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use super::{basic_header, client, location, pkce};
use crate::get_json;

/// Kills the server when the test ends, passed or not.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_binary_registers_redirect_uris_and_the_secret() {
    let child = Command::new(env!("CARGO_BIN_EXE_mock-oidc"))
        .args([
            "--port",
            "0",
            "--client-secret=bin-secret",
            "--redirect-uri",
            "http://127.0.0.1:9/a",
            "--redirect-uri",
            "http://127.0.0.1:9/b",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = Server(child);
    let stdout = server.0.stdout.take().unwrap();
    let mut issuer = None;
    let mut printed = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("issuer:") {
            issuer = Some(rest.trim().to_owned());
        }
        let done = line.starts_with("serving until");
        printed.push(line);
        if done {
            break;
        }
    }
    let issuer = issuer.expect("the binary prints its issuer");
    let printed = printed.join("\n");
    assert!(printed.contains("bin-secret"), "{printed}");
    assert!(printed.contains("http://127.0.0.1:9/b"), "{printed}");

    let doc = get_json(&format!("{issuer}/.well-known/openid-configuration")).await;
    assert_eq!(doc["token_endpoint"], format!("{issuer}/token"));

    let pkce = pkce();
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", "portcullis-client")
        .append_pair("redirect_uri", "http://127.0.0.1:9/b")
        .append_pair("scope", "openid")
        .append_pair("state", "s")
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();
    let response = client()
        .get(format!("{issuer}/authorize?{query}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let (_, params) = location(&response);
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", &params["code"])
        .append_pair("redirect_uri", "http://127.0.0.1:9/b")
        .append_pair("code_verifier", &pkce.verifier)
        .finish();
    let response = client()
        .post(format!("{issuer}/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header(
            "authorization",
            basic_header("portcullis-client", "bin-secret"),
        )
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(body["id_token"].is_string(), "{body}");
}

#[test]
fn the_binary_refuses_a_flag_without_its_value() {
    let output = Command::new(env!("CARGO_BIN_EXE_mock-oidc"))
        .args(["--port", "0", "--redirect-uri"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("`--redirect-uri` needs a value"),
        "{stderr}"
    );
}
