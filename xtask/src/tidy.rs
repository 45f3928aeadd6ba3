//! Tidy rules for the repository, checked by `cargo test`.

use std::fs;
use std::path::{Path, PathBuf};

use crate::workspace_root;

/// Directories holding the project's sources.
const SOURCE_DIRS: [&str; 5] = ["core", "adapters", "testing", "examples", "xtask"];

/// Directories whose crates must document every source file.
const DOCUMENTED_DIRS: [&str; 3] = ["core", "adapters", "testing"];

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
