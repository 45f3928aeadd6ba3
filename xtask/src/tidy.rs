//! Tidy rules for the repository, checked by `cargo test`.

use std::fs;
use std::path::{Path, PathBuf};

use crate::workspace_root;

/// Directories holding the project's sources.
const SOURCE_DIRS: [&str; 10] = [
    "core",
    "issuer",
    "capabilities",
    "oidc",
    "policy",
    "seal",
    "adapters",
    "testing",
    "examples",
    "xtask",
];

/// Directories whose crates must document every source file.
const DOCUMENTED_DIRS: [&str; 4] = ["core", "issuer", "adapters", "testing"];

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// `path` relative to the workspace root, for messages.
fn shown(path: &Path) -> String {
    let root = workspace_root();
    path.strip_prefix(&root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The member directories listed in the root manifest's `[workspace] members`,
/// with `dir/*` entries expanded.
fn workspace_members() -> Vec<PathBuf> {
    let root = workspace_root();
    let manifest = read(&root.join("Cargo.toml"));
    let workspace = manifest
        .find("[workspace]")
        .expect("the root manifest has a [workspace] table");
    let rest = &manifest[workspace..];
    let members = rest.find("members").expect("[workspace] lists its members");
    let rest = &rest[members..];
    let open = rest.find('[').expect("members = [ ... ]");
    let close = rest.find(']').expect("members = [ ... ]");
    let mut out = Vec::new();
    for line in rest[open + 1..close].lines() {
        let line = line.split('#').next().unwrap_or_default();
        for entry in line.split(',') {
            let entry = entry.trim().trim_matches('"');
            if entry.is_empty() {
                continue;
            }
            if let Some(parent) = entry.strip_suffix("/*") {
                let mut found: Vec<PathBuf> = fs::read_dir(root.join(parent))
                    .unwrap_or_else(|e| panic!("members entry `{entry}`: {e}"))
                    .filter_map(Result::ok)
                    .map(|d| d.path())
                    .filter(|p| p.join("Cargo.toml").is_file())
                    .collect();
                found.sort();
                out.extend(found);
            } else {
                out.push(root.join(entry));
            }
        }
    }
    assert!(
        !out.is_empty(),
        "no workspace members found in the root Cargo.toml"
    );
    out
}

/// Every file under `dir`, skipping `target`, `node_modules` and hidden directories.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            if name != "target" && name != "node_modules" && !name.starts_with('.') {
                walk(&path, out);
            }
        } else if kind.is_file() {
            out.push(path);
        }
    }
}

fn files_under(dirs: &[&str]) -> Vec<PathBuf> {
    let root = workspace_root();
    let mut files = Vec::new();
    for dir in dirs {
        walk(&root.join(dir), &mut files);
    }
    files.sort();
    files
}

/// Whether `manifest` has a `[lints]` table whose first entry is `workspace = true`.
fn inherits_workspace_lints(manifest: &str) -> bool {
    let mut lines = manifest
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    while let Some(line) = lines.next() {
        if line == "[lints]" {
            let next: String = lines
                .next()
                .unwrap_or_default()
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            return next == "workspace=true";
        }
    }
    false
}

#[test]
fn every_crate_inherits_the_workspace_lints() {
    let offenders: Vec<String> = workspace_members()
        .iter()
        .map(|dir| dir.join("Cargo.toml"))
        .filter(|manifest| !inherits_workspace_lints(&read(manifest)))
        .map(|manifest| shown(&manifest))
        .collect();
    assert!(
        offenders.is_empty(),
        "these manifests lack `[lints]\\nworkspace = true`: {offenders:#?}"
    );
}

#[test]
fn crate_roots_and_modules_start_with_docs() {
    let root = workspace_root();
    let mut offenders = Vec::new();
    // Every crate in these directories has a documented root.
    for member in workspace_members() {
        let Ok(relative) = member.strip_prefix(&root) else {
            continue;
        };
        if !DOCUMENTED_DIRS.iter().any(|d| relative.starts_with(d)) {
            continue;
        }
        let roots: Vec<PathBuf> = ["src/lib.rs", "src/main.rs"]
            .iter()
            .map(|r| member.join(r))
            .filter(|p| p.is_file())
            .collect();
        if roots.is_empty() {
            offenders.push(format!("{}: no src/lib.rs or src/main.rs", shown(&member)));
        }
    }
    // Every source file under a `src` directory, crate roots included, opens with `//!`.
    for file in files_under(&DOCUMENTED_DIRS) {
        let in_src = file
            .strip_prefix(&root)
            .is_ok_and(|p| p.components().any(|c| c.as_os_str() == "src"));
        if in_src && file.extension().is_some_and(|e| e == "rs") && !read(&file).starts_with("//!")
        {
            offenders.push(shown(&file));
        }
    }
    assert!(
        offenders.is_empty(),
        "these files do not start with a `//!` doc comment: {offenders:#?}"
    );
}

#[test]
fn no_placeholder_macros() {
    // Spelled in two halves so that this file does not match itself.
    let needles = [concat!("todo", "!("), concat!("unimplemented", "!(")];
    let mut offenders = Vec::new();
    for file in files_under(&SOURCE_DIRS) {
        // Binary files are not read as text.
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        for (i, line) in text.lines().enumerate() {
            if let Some(needle) = needles.iter().find(|n| line.contains(*n)) {
                offenders.push(format!("{}:{}: {needle}", shown(&file), i + 1));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "placeholder macros left in: {offenders:#?}"
    );
}

#[test]
fn the_lint_check_reads_manifests() {
    assert!(inherits_workspace_lints(
        "[package]\nname = \"a\"\n\n[lints]\nworkspace = true\n"
    ));
    assert!(inherits_workspace_lints("[lints]\n  workspace=true"));
    assert!(!inherits_workspace_lints("[package]\nname = \"a\"\n"));
    assert!(!inherits_workspace_lints(
        "[lints.rust]\nunsafe_code = \"forbid\"\n"
    ));
    assert!(!inherits_workspace_lints("[lints]\nworkspace = false\n"));
}

/// The secret keys core refuses because the documents print them: the
/// string literals of `PUBLISHED_SECRET_KEYS` in `core/src/secret.rs`.
fn published_secret_keys() -> Vec<String> {
    let text = read(&workspace_root().join("core/src/secret.rs"));
    let start = text
        .find("pub const PUBLISHED_SECRET_KEYS")
        .expect("core/src/secret.rs defines PUBLISHED_SECRET_KEYS");
    let body = &text[start..];
    let open = body.find("&[").expect("a slice literal") + 2;
    let close = body[open..].find("];").expect("a slice literal") + open;
    body[open..close]
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The values given to a secret key in `line`: `secret_key: "v"`,
/// `secret_key = "v"`, `SECRET_KEY=v` and `Secret::new("v")`.
fn secret_key_values(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let lower = line.to_ascii_lowercase();
    for marker in ["secret_key:", "secret_key =", "secret_key=", "secret::new("] {
        let mut from = 0;
        while let Some(at) = lower[from..].find(marker) {
            let rest = line[from + at + marker.len()..].trim_start();
            let value = match rest.strip_prefix('"') {
                Some(quoted) => quoted.split('"').next().unwrap_or_default(),
                None => rest
                    .split(|c: char| c.is_whitespace() || c == '\'' || c == ')')
                    .next()
                    .unwrap_or_default(),
            };
            if !value.is_empty() && !value.starts_with("...") {
                out.push(value.to_owned());
            }
            from += at + marker.len();
        }
    }
    out
}

/// Whether core refuses `value` as a placeholder or for its length anyway.
fn refused_anyway(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    value.len() < 32
        || value.contains('<')
        || [
            "change-me",
            "change_me",
            "changeme",
            "replace-me",
            "placeholder",
            "your-secret",
        ]
        .iter()
        .any(|m| lower.contains(m))
}

#[test]
fn every_secret_key_in_the_documents_is_refused() {
    // A secret printed in a README, a doc comment or an example's
    // configuration is known to every reader: core must refuse it.
    let published = published_secret_keys();
    assert!(!published.is_empty());
    let root = workspace_root();
    let mut documents: Vec<PathBuf> = fs::read_dir(&root)
        .expect("the workspace root is readable")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    documents.extend(files_under(&SOURCE_DIRS).into_iter().filter(|p| {
        p.extension()
            .is_some_and(|e| ["md", "rs", "yaml", "yml", "toml"].iter().any(|x| e == *x))
    }));
    let mut offenders = Vec::new();
    for file in documents {
        let is_rust = file.extension().is_some_and(|e| e == "rs");
        let in_examples = file
            .strip_prefix(&root)
            .is_ok_and(|p| p.starts_with("examples"));
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        for (i, line) in text.lines().enumerate() {
            let trimmed = line.trim_start();
            // Rust files: doc comments everywhere, and all of an example's code.
            let documented = trimmed.starts_with("///") || trimmed.starts_with("//!");
            if is_rust && !documented && !in_examples {
                continue;
            }
            for value in secret_key_values(line) {
                if !refused_anyway(&value) && !published.contains(&value) {
                    offenders.push(format!("{}:{}: {value}", shown(&file), i + 1));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "secret keys printed in the documents but not in core's PUBLISHED_SECRET_KEYS \
         (add them there, so that nobody can deploy with them): {offenders:#?}"
    );
}

#[test]
fn secret_key_values_are_found() {
    assert_eq!(secret_key_values("secret_key: \"abc def\""), ["abc def"]);
    assert_eq!(
        secret_key_values("  PORTCULLIS__SECRET_KEY=xyz cargo run"),
        ["xyz"]
    );
    assert_eq!(secret_key_values("let s = Secret::new(\"k\");"), ["k"]);
    assert!(secret_key_values("the secret_key: ...").is_empty());
    assert!(refused_anyway("<CLIENT_SECRET>"));
}
