//! example-worker's tests: jobs done and refused, the line protocol, the
//! binary, and the dependency tree free of web frameworks.

use std::process::Command;

use example_worker::demo::Demo;
use example_worker::{Job, MAX_JOB_BYTES, Outcome, Summary, Worker, WorkerConfig};
use portcullis_core::config::{IssuerConfig, VerifierConfig};
use portcullis_core::mint::SigningKey;
use portcullis_core::{Algorithm, ErrorKind, TokenRejection};
use serde_json::{Value, json};

fn refusal(outcome: &Outcome) -> (ErrorKind, String) {
    let error = outcome.error().expect("the job should be refused");
    (error.kind(), error.message().to_owned())
}

#[tokio::test]
async fn a_valid_job_is_processed() {
    let demo = Demo::new().unwrap();
    let token = demo.token("batch-7", "write", 600).unwrap();
    let outcome = demo
        .worker
        .process(&Job::new(token.as_str(), "reindex"))
        .await;
    assert_eq!(
        outcome.to_json(),
        json!({"status": "done", "action": "reindex", "caller": "batch-7", "result": "index rebuilt"})
    );
    // `write` implies `read`.
    let outcome = demo
        .worker
        .process(&Job::new(token.as_str(), "report"))
        .await;
    assert!(outcome.is_done(), "{outcome:?}");
    // `admin` implies everything.
    let admin = demo.token("root", "openid admin", 600).unwrap();
    let outcome = demo
        .worker
        .process(&Job::new(admin.as_str(), "purge"))
        .await;
    assert!(outcome.is_done(), "{outcome:?}");
}

#[tokio::test]
async fn a_bad_token_is_refused_with_the_reason() {
    let demo = Demo::new().unwrap();
    let expired = demo.token("batch-7", "write", -3600).unwrap();
    let outcome = demo
        .worker
        .process(&Job::new(expired.as_str(), "reindex"))
        .await;
    assert_eq!(
        refusal(&outcome),
        (ErrorKind::InvalidToken, "the token has expired".to_owned())
    );
    assert_eq!(
        outcome.error().unwrap().rejection(),
        Some(TokenRejection::Expired)
    );
    assert_eq!(
        outcome.to_json(),
        json!({"status": "refused", "error": "invalid_token", "reason": "the token has expired"})
    );

    let forged = Demo::new().unwrap().token("batch-7", "admin", 600).unwrap();
    let outcome = demo
        .worker
        .process(&Job::new(forged.as_str(), "purge"))
        .await;
    assert_eq!(
        outcome.error().unwrap().rejection(),
        Some(TokenRejection::BadSignature)
    );

    let outcome = demo.worker.process(&Job::new("garbage", "report")).await;
    assert_eq!(
        outcome.error().unwrap().rejection(),
        Some(TokenRejection::Malformed)
    );

    // The token is checked before the action: an unauthenticated submitter
    // does not learn which actions exist.
    let outcome = demo.worker.process(&Job::new("garbage", "nonsense")).await;
    assert_eq!(refusal(&outcome).0, ErrorKind::InvalidToken);
}

#[tokio::test]
async fn a_missing_capability_is_refused() {
    let demo = Demo::new().unwrap();
    let reader = demo.token("report-bot", "openid read", 600).unwrap();
    let outcome = demo
        .worker
        .process(&Job::new(reader.as_str(), "reindex"))
        .await;
    assert_eq!(
        refusal(&outcome),
        (
            ErrorKind::InsufficientScope,
            "the request requires `write`".to_owned()
        )
    );
    assert_eq!(outcome.to_json()["action"], "reindex");
    assert_eq!(outcome.to_json()["error"], "insufficient_scope");

    // Scopes that name no capability give none.
    let nobody = demo.token("nobody", "openid email", 600).unwrap();
    let outcome = demo
        .worker
        .process(&Job::new(nobody.as_str(), "report"))
        .await;
    assert_eq!(refusal(&outcome).0, ErrorKind::InsufficientScope);
}

#[tokio::test]
async fn unknown_actions_and_bad_json_are_refused_without_echo() {
    let demo = Demo::new().unwrap();
    let token = demo.token("batch-7", "write", 600).unwrap();
    // A token pasted into the wrong field must not come back in the answer.
    let outcome = demo
        .worker
        .process(&Job::new(token.as_str(), token.as_str()))
        .await;
    let (kind, message) = refusal(&outcome);
    assert_eq!(kind, ErrorKind::InvalidRequest);
    assert_eq!(
        message,
        "unknown action; expected one of report, reindex, purge"
    );

    let wrong_type = format!(r#"{{"token": "{token}", "action": 7}}"#);
    let outcome = demo.worker.process_json(wrong_type.as_bytes()).await;
    assert_eq!(refusal(&outcome).0, ErrorKind::InvalidRequest);
    assert!(!outcome.to_json().to_string().contains(&token));

    let outcome = demo.worker.process_json(b"{not json").await;
    assert_eq!(
        refusal(&outcome),
        (
            ErrorKind::InvalidRequest,
            "the job is not valid JSON".to_owned()
        )
    );
    let extra = format!(r#"{{"token": "{token}", "action": "report", "as": "root"}}"#);
    let outcome = demo.worker.process_json(extra.as_bytes()).await;
    assert_eq!(refusal(&outcome).0, ErrorKind::InvalidRequest);
}

#[tokio::test]
async fn jobs_are_read_and_answered_as_json_lines() {
    let demo = Demo::new().unwrap();
    let writer = demo.token("batch-7", "write", 600).unwrap();
    let reader = demo.token("report-bot", "read", 600).unwrap();
    let huge = "x".repeat(MAX_JOB_BYTES + 10);
    let input = format!(
        "# a comment\n\
         {{\"token\": \"{writer}\", \"action\": \"reindex\"}}\n\
         \n\
         {huge}\n\
         {{\"token\": \"{reader}\", \"action\": \"reindex\"}}\n\
         {{\"token\": \"{reader}\", \"action\": \"report\"}}"
    );
    let mut output = Vec::new();
    let summary = demo
        .worker
        .process_lines(input.as_bytes(), &mut output)
        .await
        .unwrap();
    assert_eq!(
        summary,
        Summary {
            done: 2,
            refused: 2
        }
    );
    let lines: Vec<Value> = String::from_utf8(output)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let statuses: Vec<_> = lines
        .iter()
        .map(|l| l["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["done", "refused", "refused", "done"]);
    assert_eq!(
        lines[1]["reason"],
        format!("the job is larger than {MAX_JOB_BYTES} bytes")
    );
    assert_eq!(lines[2]["error"], "insufficient_scope");
}

#[test]
fn configuration_mistakes_are_refused_at_start() {
    let key = SigningKey::generate(Algorithm::ES256, "k").unwrap();
    let issuer = || {
        IssuerConfig::new("https://scheduler.internal")
            .with_key(portcullis_core::config::StaticKey::pem(
                Some("k".into()),
                key.public_pem().unwrap(),
            ))
            .with_algorithms([Algorithm::ES256])
            .with_audience("jobs")
    };
    let verifier = || VerifierConfig::new([("s".to_owned(), issuer())]);

    // A graph without `admin` leaves `purge` unauthorizable.
    let no_admin = WorkerConfig::new(verifier()).with_capabilities(
        portcullis_core::CapabilitiesConfig::new([("read", vec![]), ("write", vec!["read"])]),
    );
    let err = Worker::new(no_admin).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.message().contains("`purge` needs `admin`"), "{err}");

    // Remote keys would need an HTTP client, which this worker does not have.
    let remote = VerifierConfig::new([(
        "idp".to_owned(),
        IssuerConfig::new("https://id.example.com").with_audience("jobs"),
    )]);
    let err = Worker::new(WorkerConfig::new(remote)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.message().contains("`verifier.issuers.idp`"), "{err}");
}

#[test]
fn the_example_configuration_loads() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.yaml");
    let overrides = portcullis_core::config::env_overrides(
        "PORTCULLIS",
        [(
            "PORTCULLIS__VERIFIER__ISSUERS__SCHEDULER__HMAC_SECRET".to_owned(),
            "another shared secret of at least 32 bytes".to_owned(),
        )],
    );
    let config: WorkerConfig = portcullis_core::config::load_file(&path, &overrides).unwrap();
    let worker = Worker::new(config).unwrap();
    assert!(worker.graph().has("admin"));
}

#[test]
fn the_binary_processes_jobs_from_a_file_with_a_configuration() {
    let secret = "a shared secret of at least 32 bytes, for tests";
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("worker.yaml");
    std::fs::write(
        &config,
        "verifier:\n  issuers:\n    scheduler:\n      issuer: https://scheduler.internal\n      \
         audiences: [jobs]\n      algorithms: [HS256]\n      hmac_secret: set-from-the-environment\n",
    )
    .unwrap();
    let key = SigningKey::from_secret(Algorithm::HS256, "k", secret.as_bytes()).unwrap();
    let token = key
        .sign(
            &json!({"iss": "https://scheduler.internal", "aud": "jobs", "sub": "batch-7",
                    "scope": "write", "exp": 4102444800u64}),
            None,
        )
        .unwrap();
    let jobs = dir.path().join("jobs.jsonl");
    std::fs::write(
        &jobs,
        format!(
            "{{\"token\": \"{token}\", \"action\": \"reindex\"}}\n\
             {{\"token\": \"{token}\", \"action\": \"purge\"}}\n"
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_example-worker"))
        .arg("--config")
        .arg(&config)
        .arg("--file")
        .arg(&jobs)
        // The secret comes from the environment, overriding the file.
        .env(
            "PORTCULLIS__VERIFIER__ISSUERS__SCHEDULER__HMAC_SECRET",
            secret,
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert_eq!(lines[0]["status"], "done");
    assert_eq!(lines[1]["status"], "refused");
    assert_eq!(lines[1]["reason"], "the request requires `admin`");
    assert!(!stdout.contains(&token));
}

#[test]
fn the_binary_runs_the_demo_without_arguments() {
    let out = Command::new(env!("CARGO_BIN_EXE_example-worker"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains(r#""status":"done""#), "{stdout}");
    assert!(stdout.contains("the token has expired"), "{stdout}");
    assert!(
        stdout.contains("the token's signature is invalid"),
        "{stdout}"
    );
    assert!(stdout.contains("the request requires `write`"), "{stdout}");
}

/// The worker's normal dependencies pull in no web framework, no HTTP server
/// and no HTTP client: portcullis-core without `reqwest` is enough to verify
/// tokens and check capabilities.
#[test]
fn no_web_framework_or_http_stack_in_the_dependency_tree() {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "-p",
            "example-worker",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8(out.stdout).unwrap();
    let crates: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(crates.contains(&"portcullis-core"), "{tree}");
    let forbidden = [
        "axum",
        "axum-core",
        "actix-web",
        "actix-http",
        "actix-server",
        "poem",
        "hyper",
        "hyper-util",
        "h2",
        "tonic",
        "warp",
        "tower-http",
        "reqwest",
    ];
    let found: Vec<_> = crates.iter().filter(|c| forbidden.contains(c)).collect();
    assert!(
        found.is_empty(),
        "web stack crates in the tree: {found:?}\n{tree}"
    );
}

#[tokio::test]
async fn automation_principals_submit_jobs_through_core() {
    use std::sync::Arc;

    use portcullis_core::automation::{AutomationConfig, AutomationPrincipals, MemorySecrets};

    let demo = Demo::new().unwrap();
    let secrets = MemorySecrets::new();
    secrets.put(
        "jobs/nightly",
        r#"{"token": "nightly-token-5e4d3c2b1a", "id": "nightly@example.com"}"#,
    );
    let automation = AutomationPrincipals::new(
        AutomationConfig::default().with_common_prefix("jobs/"),
        Arc::new(secrets),
    )
    .unwrap();
    // Automation principals hold no scope: this worker gives everyone `read`.
    let verifier = portcullis_core::TokenVerifier::new(VerifierConfig::new([(
        "internal".to_owned(),
        IssuerConfig::new("https://scheduler.internal")
            .with_hmac_secret("a shared secret of at least 32 bytes!")
            .with_algorithms([Algorithm::HS256])
            .with_audience("jobs"),
    )]))
    .unwrap();
    let graph = portcullis_core::CapabilityGraph::new(
        &example_worker::default_capabilities().with_default_capabilities(["read"]),
    )
    .unwrap();
    let worker = Worker::from_parts(verifier, graph)
        .unwrap()
        .with_automation(automation);
    let job =
        br#"{"principal": "nightly", "token": "nightly-token-5e4d3c2b1a", "action": "report"}"#;
    let outcome = worker.process_json(job).await;
    assert!(outcome.is_done(), "{outcome:?}");
    assert_eq!(outcome.to_json()["caller"], "nightly@example.com");
    // It holds the defaults only.
    let outcome = worker
        .process(&Job::automation(
            "nightly",
            "nightly-token-5e4d3c2b1a",
            "purge",
        ))
        .await;
    assert_eq!(refusal(&outcome).0, ErrorKind::InsufficientScope);
    let outcome = worker
        .process(&Job::automation("nightly", "not-the-token", "report"))
        .await;
    assert_eq!(
        outcome.error().unwrap().rejection(),
        Some(TokenRejection::InvalidPrincipal)
    );
    // A worker without automation principals refuses such jobs.
    let outcome = demo.worker.process_json(job).await;
    assert_eq!(refusal(&outcome).0, ErrorKind::InvalidRequest);
}
