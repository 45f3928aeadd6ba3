//! The `login` feature is the only way the login flow's dependencies enter
//! an adapter: a bearer-only service compiles neither portcullis-oidc nor
//! `openidconnect`.

use std::process::Command;

/// The crates in `cargo tree -p package -e normal` with `extra` arguments.
fn dependencies(package: &str, extra: &[&str]) -> Vec<String> {
    let out = Command::new(env!("CARGO"))
        .args(["tree", "-p", package, "-e", "normal", "--prefix", "none"])
        .args(extra)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

const LOGIN_ONLY: [&str; 3] = ["portcullis-oidc", "openidconnect", "oauth2"];

#[test]
fn without_login_no_adapter_compiles_the_login_flow() {
    for adapter in ["portcullis-axum", "portcullis-actix", "portcullis-poem"] {
        let bearer_only = dependencies(adapter, &["--no-default-features"]);
        assert!(
            bearer_only.iter().any(|c| c == "portcullis-adapter-kit")
                && bearer_only.iter().any(|c| c == "portcullis-core"),
            "{adapter}: {bearer_only:?}"
        );
        for name in LOGIN_ONLY {
            assert!(
                !bearer_only.iter().any(|c| c == name),
                "{adapter} without `login` depends on {name}"
            );
        }
        // The default (login on) does bring them: the check above is not vacuous.
        let default = dependencies(adapter, &[]);
        assert!(
            default.iter().any(|c| c == "openidconnect"),
            "{adapter}: {default:?}"
        );
    }
}
