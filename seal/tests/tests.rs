//! `portcullis-seal` on real files: what it seals, what it keeps, and that
//! a failure leaves the file as it was.

use std::path::{Path, PathBuf};
use std::process::Command;

use portcullis_core::Secret;
use portcullis_core::config::{Format, load_file_with};
use portcullis_core::sealed::Unsealer;
use portcullis_seal::{Request, seal_file, seal_text};
use serde::Deserialize;
use serde_json::Value;

const PASSWORD: &str = "a passphrase for these tests, long enough";

/// easy-oauth's configuration file, with comments.
const EASY_OAUTH: &str = "\
# The provider
server_metadata_url: https://id.example.com/.well-known/openid-configuration
secret_key: kT3x9q2ZVb7mR1pW8cN4yL6hJ0sD5fG-aQeUoIiYt  # generated once
client_id: my-client
client_secret: 'the secret from the console'
capabilities:
  graph:
    read: []
    write: [read]
  default_capabilities:
  - read
  user_file: caps.yaml
prefix: \"\"
";

#[derive(Debug, Deserialize, PartialEq)]
struct Config {
    server_metadata_url: String,
    secret_key: Secret,
    client_id: String,
    client_secret: Secret,
    capabilities: Value,
    prefix: String,
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_yaml_file_is_sealed_in_place_and_loads_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "config.yaml", EASY_OAUTH);
    let unsealer = Unsealer::with_password(PASSWORD);
    let before: Config = load_file_with(&path, &[], &unsealer).unwrap();
    let sealed = seal_file(&path, &Request::new(Secret::new(PASSWORD))).unwrap();
    assert_eq!(sealed.keys, ["client_secret", "secret_key"]);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("the secret from the console"));
    assert!(!text.contains("kT3x9q2ZVb7mR1pW8cN4yL6hJ0sD5fG"));
    assert!(text.contains("secret_key: \"~SEALED-v1~"));
    assert!(
        text.contains("\"  # generated once\n"),
        "the comment stays:\n{text}"
    );
    // Every other line is as it was.
    let kept: Vec<&str> = EASY_OAUTH
        .lines()
        .filter(|l| !l.starts_with("secret_key") && !l.starts_with("client_secret"))
        .collect();
    let now: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("secret_key") && !l.starts_with("client_secret"))
        .collect();
    assert_eq!(kept, now);
    let after: Config = load_file_with(&path, &[], &unsealer).unwrap();
    assert_eq!(before, after);
    assert_eq!(
        entries(dir.path()),
        ["config.yaml"],
        "no temporary file left"
    );
    // Sealing again finds nothing to do.
    let again = seal_file(&path, &Request::new(Secret::new(PASSWORD))).unwrap();
    assert!(again.keys.is_empty());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    // Without the password, the loader names the key.
    let e = load_file_with::<Config>(&path, &[], &Unsealer::none()).unwrap_err();
    assert!(e.message().contains("`secret_key`") || e.message().contains("`client_secret`"));
}

#[test]
fn a_toml_file_and_extra_keys() {
    let toml = "\
# The verifier
leeway_secs = 30

[issuers.main]
issuer = \"https://id.example.com\"
algorithms = [\"HS256\"]
hmac_secret = \"a shared secret of at least 32 bytes, in TOML\"
client_id = \"my-client\"
";
    let request = Request::new(Secret::new(PASSWORD)).with_key("issuers.main.client_id");
    let sealed = seal_text(toml, Format::Toml, &request).unwrap();
    assert_eq!(
        sealed.keys,
        ["issuers.main.client_id", "issuers.main.hmac_secret"]
    );
    let cfg: portcullis_core::config::VerifierConfig = portcullis_core::config::load_from_str_with(
        &sealed.text,
        Format::Toml,
        &[],
        &Unsealer::with_password(PASSWORD),
    )
    .unwrap();
    let main = &cfg.issuers["main"];
    assert_eq!(
        main.hmac_secret.as_ref().unwrap().expose(),
        "a shared secret of at least 32 bytes, in TOML"
    );
    assert_eq!(main.client_id.as_deref(), Some("my-client"));
    assert!(
        sealed
            .text
            .starts_with("# The verifier\nleeway_secs = 30\n\n[issuers.main]\n")
    );
}

#[test]
fn a_failure_leaves_the_file_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        // A value over several lines cannot be rewritten on its line.
        (
            "config.yaml",
            "client_id: a\nclient_secret: |\n  line one\n  line two\nprefix: \"\"\n",
            Request::new(Secret::new(PASSWORD)),
            "nothing was changed",
        ),
        // A flow mapping neither.
        (
            "flow.yaml",
            "client_id: a\nsession: {secret_key: inline-secret-value}\n",
            Request::new(Secret::new(PASSWORD)),
            "nothing was changed",
        ),
        // A key asked for that the file lacks.
        (
            "missing.yaml",
            "client_secret: s\n",
            Request::new(Secret::new(PASSWORD)).with_key("client_id"),
            "`client_id`",
        ),
        // A serieux value that the password does not open.
        (
            "serieux.yaml",
            "client_secret: '~CRYPT~gAAAAABnot-a-token'\nsecret_key: plain-value-to-seal\n",
            Request::new(Secret::new(PASSWORD)).with_from_serieux(true),
            "`client_secret`",
        ),
        (
            "broken.yaml",
            "client_secret: [\n",
            Request::new(Secret::new(PASSWORD)),
            "YAML",
        ),
        (
            "config.ini",
            "client_secret = s\n",
            Request::new(Secret::new(PASSWORD)),
            "format",
        ),
    ];
    for (name, text, request, why) in cases {
        let path = write(dir.path(), name, text);
        let e = seal_file(&path, &request).unwrap_err();
        assert!(e.message().contains(why), "{name}: {e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text, "{name}");
    }
    let mut expected: Vec<String> = [
        "broken.yaml",
        "config.ini",
        "config.yaml",
        "flow.yaml",
        "missing.yaml",
        "serieux.yaml",
    ]
    .map(str::to_owned)
    .to_vec();
    expected.sort();
    assert_eq!(entries(dir.path()), expected, "no temporary file left");
}

#[test]
fn serieux_values_are_resealed_on_request() {
    let fixtures: Value = serde_json::from_str(include_str!(
        "../../core/tests/fixtures/serieux/tokens.json"
    ))
    .unwrap();
    let password = fixtures["password"].as_str().unwrap();
    let crypt = fixtures["values"][0]["encrypted"].as_str().unwrap();
    let plain = fixtures["values"][0]["plain"].as_str().unwrap();
    let yaml = format!("client_id: app\nclient_secret: {crypt}\n");
    let kept = seal_text(&yaml, Format::Yaml, &Request::new(Secret::new(password))).unwrap();
    assert!(kept.keys.is_empty(), "left alone unless asked");
    let request = Request::new(Secret::new(password)).with_from_serieux(true);
    let sealed = seal_text(&yaml, Format::Yaml, &request).unwrap();
    assert_eq!(sealed.keys, ["client_secret"]);
    assert!(!sealed.text.contains("~CRYPT~"));
    #[derive(Deserialize)]
    struct App {
        client_secret: Secret,
    }
    let app: App = portcullis_core::config::load_from_str_with(
        &sealed.text,
        Format::Yaml,
        &[],
        &Unsealer::with_password(password),
    )
    .unwrap();
    assert_eq!(app.client_secret.expose(), plain);
}

#[test]
fn the_command_seals_with_the_environment_password() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "config.yaml", EASY_OAUTH);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    }
    let run = |password: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis-seal"));
        cmd.arg("--key")
            .arg("client_id")
            .arg(&path)
            .env_remove("PORTCULLIS_CONFIG_PASSWORD")
            .env_remove("SERIEUX_PASSWORD");
        if let Some(p) = password {
            cmd.env("SERIEUX_PASSWORD", p);
        }
        cmd.output().unwrap()
    };
    let out = run(None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("PORTCULLIS_CONFIG_PASSWORD"));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), EASY_OAUTH);
    let out = run(Some(PASSWORD));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("sealed client_id, client_secret, secret_key")
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("client_id: \"~SEALED-v1~"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640, "the file keeps its permissions");
    }
    let cfg: Config = load_file_with(&path, &[], &Unsealer::with_password(PASSWORD)).unwrap();
    assert_eq!(cfg.client_id, "my-client");
    assert_eq!(cfg.client_secret.expose(), "the secret from the console");
}
