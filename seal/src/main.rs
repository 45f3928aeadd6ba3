//! `portcullis-seal [--key PATH]... [--from-serieux] FILE`: seals the
//! secrets of a configuration file in place; see the library documentation.

use std::path::PathBuf;
use std::process::ExitCode;

use portcullis_core::sealed::Unsealer;
use portcullis_seal::{Request, seal_file};

const USAGE: &str = "usage: portcullis-seal [--key PATH]... [--from-serieux] FILE

Seals secret_key, client_secret and hmac_secret (and each --key PATH) of a
YAML or TOML configuration file in place, with the password in
PORTCULLIS_CONFIG_PASSWORD (or SERIEUX_PASSWORD). --from-serieux also
re-seals easy-oauth's ~CRYPT~ values, opened with the same password.";

#[allow(clippy::print_stderr, reason = "a command-line tool reports on stderr")]
fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut keys = Vec::new();
    let mut from_serieux = false;
    let mut file: Option<PathBuf> = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--key" => match args.next() {
                Some(k) => keys.push(k),
                None => return usage("--key needs a key path"),
            },
            "--from-serieux" => from_serieux = true,
            "-h" | "--help" => {
                eprintln!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            a if a.starts_with('-') => return usage(&format!("unknown option {a}")),
            a if file.is_none() => file = Some(PathBuf::from(a)),
            _ => return usage("one file at a time"),
        }
    }
    let Some(file) = file else {
        return usage("no file given");
    };
    let Some(password) = Unsealer::from_env().password().cloned() else {
        eprintln!(
            "portcullis-seal: set PORTCULLIS_CONFIG_PASSWORD (or SERIEUX_PASSWORD) to the password"
        );
        return ExitCode::from(2);
    };
    let mut request = Request::new(password).with_from_serieux(from_serieux);
    for k in keys {
        request = request.with_key(k);
    }
    match seal_file(&file, &request) {
        Ok(sealed) if sealed.keys.is_empty() => {
            eprintln!("portcullis-seal: {}: nothing to seal", file.display());
            ExitCode::SUCCESS
        }
        Ok(sealed) => {
            eprintln!(
                "portcullis-seal: {}: sealed {}",
                file.display(),
                sealed.keys.join(", ")
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("portcullis-seal: {}", e.message());
            ExitCode::FAILURE
        }
    }
}

#[allow(clippy::print_stderr, reason = "a command-line tool reports on stderr")]
fn usage(why: &str) -> ExitCode {
    eprintln!("portcullis-seal: {why}\n\n{USAGE}");
    ExitCode::from(2)
}
