//! `portcullis-seal`: encrypts the secrets of a configuration file in place.
//!
//! The values of `secret_key`, `client_secret` and `hmac_secret` (at any
//! depth), and of any key path given with `--key`, are replaced by
//! `~SEALED-v1~…` values (see [`portcullis_core::sealed`]): Argon2id from the
//! password, AES-256-GCM, each value bound to its key path. portcullis'
//! configuration loaders open them with the same password, from
//! `PORTCULLIS_CONFIG_PASSWORD` (or `SERIEUX_PASSWORD`).
//!
//! ```sh
//! export PORTCULLIS_CONFIG_PASSWORD="$(cat /run/secrets/config-password)"
//! portcullis-seal config.yaml                    # secret_key, client_secret, hmac_secret
//! portcullis-seal --key client_id config.yaml    # and client_id too
//! portcullis-seal --from-serieux config.yaml     # easy-oauth's ~CRYPT~ values re-sealed
//! ```
//!
//! Only the values change: every other line, comments included, stays as it
//! was. The file is rewritten atomically (a temporary file beside it, then a
//! rename) and only after the new text has been read back: it must hold the
//! same configuration with the chosen values sealed, and every sealed value
//! must open to what it replaced. On any error the file is left untouched.
//!
//! ```
//! use portcullis_core::Secret;
//! use portcullis_core::config::{Format, load_from_str_with};
//! use portcullis_core::sealed::Unsealer;
//! use portcullis_seal::{Request, seal_text};
//!
//! let yaml = "# my app\nclient_id: app\nclient_secret: from-the-console # from the console\n";
//! let password = Secret::from("a long passphrase nobody else knows");
//! let sealed = seal_text(yaml, Format::Yaml, &Request::new(password.clone()))?;
//! assert_eq!(sealed.keys, ["client_secret"]);
//! assert!(sealed.text.starts_with("# my app\nclient_id: app\nclient_secret: \"~SEALED-v1~"));
//! assert!(sealed.text.ends_with("\" # from the console\n"));
//!
//! #[derive(serde::Deserialize)]
//! struct App { client_id: String, client_secret: Secret }
//! let app: App =
//!     load_from_str_with(&sealed.text, Format::Yaml, &[], &Unsealer::with_password(password))?;
//! assert_eq!((app.client_id.as_str(), app.client_secret.expose()), ("app", "from-the-console"));
//! # Ok::<(), portcullis_core::Error>(())
//! ```

use std::io::Write as _;
use std::path::Path;

use portcullis_core::config::Format;
use portcullis_core::sealed::{SERIEUX_PREFIX, Sealer, Unsealer, is_sealed};
use portcullis_core::{Error, Secret};
use serde_json::Value;

/// The key names sealed wherever they appear.
pub const DEFAULT_KEYS: [&str; 3] = ["secret_key", "client_secret", "hmac_secret"];

/// What to seal.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Request {
    /// The password values are sealed with.
    pub password: Secret,
    /// Key paths sealed besides [`DEFAULT_KEYS`] (`client_id`, `a.b.c`); each must exist.
    pub extra_keys: Vec<String>,
    /// Whether serieux's `~CRYPT~` values (opened with the same password)
    /// are re-sealed in the native format.
    pub from_serieux: bool,
}

impl Request {
    /// Seals the default keys with `password`.
    pub fn new(password: Secret) -> Self {
        Self {
            password,
            extra_keys: Vec::new(),
            from_serieux: false,
        }
    }

    /// Also seals the value at `key_path`.
    pub fn with_key(mut self, key_path: impl Into<String>) -> Self {
        self.extra_keys.push(key_path.into());
        self
    }

    /// Re-seals serieux's `~CRYPT~` values.
    pub fn with_from_serieux(mut self, yes: bool) -> Self {
        self.from_serieux = yes;
        self
    }
}

/// The result of [`seal_text`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Sealed {
    /// The new text of the file.
    pub text: String,
    /// The key paths sealed, in file order.
    pub keys: Vec<String>,
}

fn parse(text: &str, format: Format) -> Result<Value, Error> {
    match format {
        Format::Toml => toml::from_str::<Value>(text)
            .map_err(|e| Error::config(format!("invalid TOML: {}", e.message()))),
        _ => {
            if text.trim().is_empty() {
                return Ok(Value::Object(serde_json::Map::new()));
            }
            serde_yaml_ng::from_str::<Value>(text).map_err(|_| Error::config("invalid YAML"))
        }
    }
}

/// The scalar values to seal: (key path, value), in tree order.
fn targets(tree: &Value, request: &Request) -> Result<Vec<(String, Value)>, Error> {
    fn walk(value: &Value, path: &str, request: &Request, out: &mut Vec<(String, Value)>) {
        let Value::Object(map) = value else { return };
        for (name, child) in map {
            let child_path = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            let wanted =
                DEFAULT_KEYS.contains(&name.as_str()) || request.extra_keys.contains(&child_path);
            let serieux =
                matches!(child, Value::String(s) if s.trim_start().starts_with(SERIEUX_PREFIX));
            match child {
                Value::Object(_) => walk(child, &child_path, request, out),
                Value::String(s) if is_sealed(s) && !(serieux && request.from_serieux) => {}
                Value::String(_) if serieux => out.push((child_path, child.clone())),
                Value::String(_) | Value::Number(_) | Value::Bool(_) if wanted => {
                    out.push((child_path, child.clone()));
                }
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(tree, "", request, &mut out);
    for key in &request.extra_keys {
        if lookup(tree, key).is_none() {
            return Err(Error::config(format!(
                "configuration key `{key}`: not found in the file (nothing was changed)"
            )));
        }
    }
    Ok(out)
}

fn lookup<'a>(tree: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(tree, |v, seg| v.as_object()?.get(seg))
}

fn set(tree: &mut Value, path: &str, value: Value) {
    let mut cur = tree;
    for seg in path.split('.') {
        cur = &mut cur[seg];
    }
    *cur = value;
}

/// The key a line sets and where its value starts: `name: value`
/// (YAML) or `name = value` (TOML); `None` for anything else.
fn key_of_line(line: &str, format: Format) -> Option<(String, usize)> {
    let indent = line.len() - line.trim_start().len();
    let rest = &line[indent..];
    let sep = if format == Format::Toml { '=' } else { ':' };
    let (name, after) = if let Some(quoted) = rest.strip_prefix('"') {
        let end = quoted.find('"')?;
        (&quoted[..end], end + 2)
    } else if let Some(quoted) = rest.strip_prefix('\'') {
        let end = quoted.find('\'')?;
        (&quoted[..end], end + 2)
    } else {
        let end = rest.find(|c: char| c == sep || c.is_whitespace())?;
        (&rest[..end], end)
    };
    if name.is_empty() || name.starts_with(['#', '-', '[']) {
        return None;
    }
    let tail = &rest[after..];
    let spaces = tail.len() - tail.trim_start().len();
    let tail = tail.trim_start().strip_prefix(sep)?;
    if format == Format::Yaml && !(tail.is_empty() || tail.starts_with([' ', '\t'])) {
        return None;
    }
    let value_at = indent + after + spaces + 1 + (tail.len() - tail.trim_start().len());
    Some((name.to_owned(), value_at))
}

/// The line index and value offset of each key path that a one-line value
/// sets.
fn locate(text: &str, format: Format) -> Vec<(String, usize, usize)> {
    let mut found = Vec::new();
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut table: Vec<String> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if format == Format::Toml {
            if let Some(header) = trimmed.strip_prefix('[') {
                let header = header.split(']').next().unwrap_or_default();
                table = header
                    .split('.')
                    .map(|s| s.trim().trim_matches('"').to_owned())
                    .collect();
                continue;
            }
            if let Some((name, at)) = key_of_line(line, format) {
                let mut path = table.clone();
                path.push(name);
                found.push((path.join("."), i, at));
            }
            continue;
        }
        let indent = line.len() - trimmed.len();
        while stack.last().is_some_and(|(n, _)| *n >= indent) {
            stack.pop();
        }
        if let Some((name, at)) = key_of_line(line, format) {
            stack.push((indent, name));
            let path: Vec<&str> = stack.iter().map(|(_, n)| n.as_str()).collect();
            found.push((path.join("."), i, at));
        }
    }
    found
}

/// Seals the configured secrets of `text` (a YAML or TOML configuration).
///
/// # Errors
///
/// A configuration error: the text does not parse, a `--key` is missing, a
/// value cannot be rewritten on its line (a multi-line or flow value), a
/// serieux value does not open with the password, or the rewritten text
/// does not read back as the same configuration.
pub fn seal_text(text: &str, format: Format, request: &Request) -> Result<Sealed, Error> {
    let tree = parse(text, format)?;
    let targets = targets(&tree, request)?;
    if targets.is_empty() {
        return Ok(Sealed {
            text: text.to_owned(),
            keys: Vec::new(),
        });
    }
    let unsealer = Unsealer::with_password(request.password.clone());
    let sealer = Sealer::new(&request.password)?;
    let located = locate(text, format);
    let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
    let mut expected = tree;
    let mut keys = Vec::new();
    for (path, value) in &targets {
        let plain = match value {
            Value::String(s) if is_sealed(s) => unsealer.open(s, path)?,
            other => other.clone(),
        };
        let sealed = sealer.seal(&plain, path)?;
        let Some((_, line, at)) = located.iter().find(|(p, _, _)| p == path) else {
            return Err(Error::config(format!(
                "configuration key `{path}`: its value is not on a line of its own \
                 (a flow or multi-line value); seal it by hand (nothing was changed)"
            )));
        };
        // A plain (unquoted) value ends where a ` #` comment starts: keep
        // the comment. A quoted value may hold ` #` itself: drop the rest.
        let rest = &lines[*line][*at..];
        let comment = if rest.starts_with(['"', '\'']) {
            String::new()
        } else {
            rest.find(" #")
                .map(|i| rest[rest[..i].trim_end().len()..].to_owned())
                .unwrap_or_default()
        };
        lines[*line].truncate(*at);
        lines[*line].push('"');
        lines[*line].push_str(&sealed);
        lines[*line].push('"');
        lines[*line].push_str(&comment);
        set(&mut expected, path, Value::String(sealed));
        keys.push(path.clone());
    }
    let new_text = lines.join("\n");
    // Read the new text back: the same configuration, the chosen values sealed.
    let reread = parse(&new_text, format).map_err(|_| {
        Error::config("the rewritten file would not parse; nothing was changed".to_owned())
    })?;
    if reread != expected {
        return Err(Error::config(
            "the rewritten file would not hold the same configuration (a value spread over \
             several lines?); nothing was changed",
        ));
    }
    for (path, value) in &targets {
        let plain = match value {
            Value::String(s) if is_sealed(s) => unsealer.open(s, path)?,
            other => other.clone(),
        };
        let Some(Value::String(sealed)) = lookup(&reread, path) else {
            return Err(Error::config(format!(
                "configuration key `{path}`: not sealed"
            )));
        };
        if unsealer.open(sealed, path)? != plain {
            return Err(Error::config(format!(
                "configuration key `{path}`: the sealed value does not open to the original"
            )));
        }
    }
    Ok(Sealed {
        text: new_text,
        keys,
    })
}

/// Seals the secrets of the file at `path` in place (format from its
/// extension), atomically: the new text goes to a temporary file in the
/// same directory, with the same permissions, synced, then renamed over
/// the file. On any error the file is untouched.
///
/// # Errors
///
/// As [`seal_text`], plus an unknown extension and I/O errors.
pub fn seal_file(path: &Path, request: &Request) -> Result<Sealed, Error> {
    let format = Format::from_path(path).ok_or_else(|| {
        Error::config(format!(
            "{}: unknown configuration format (use .yaml, .yml or .toml)",
            path.display()
        ))
    })?;
    let io = |what: &str, e: std::io::Error| {
        Error::config(format!(
            "{}: {what}: {e} (nothing was changed)",
            path.display()
        ))
    };
    let text = std::fs::read_to_string(path).map_err(|e| io("cannot read", e))?;
    let sealed = seal_text(&text, format, request)
        .map_err(|e| Error::config(format!("{}: {}", path.display(), e.message())))?;
    if sealed.keys.is_empty() {
        return Ok(sealed);
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let permissions = std::fs::metadata(path)
        .map_err(|e| io("cannot read", e))?
        .permissions();
    let mut tmp = tempfile::Builder::new()
        .prefix(".portcullis-seal")
        .tempfile_in(dir)
        .map_err(|e| io("cannot create a temporary file beside it", e))?;
    tmp.write_all(sealed.text.as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .and_then(|()| std::fs::set_permissions(tmp.path(), permissions))
        .map_err(|e| io("cannot write the temporary file", e))?;
    tmp.persist(path)
        .map_err(|e| io("cannot replace the file", e.error))?;
    Ok(sealed)
}
