//! [`PolicyConfig`]: the `policy` block of a service's configuration, read
//! from YAML, TOML or the environment through portcullis-core's loaders.

use std::path::PathBuf;
use std::time::Duration;

use portcullis_core::Error;
use portcullis_core::config::check_provider_url;
use serde::{Deserialize, Serialize};

use crate::request::chosen_headers;

/// Where decisions are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EngineKind {
    /// An Open Policy Agent server, asked over its REST Data API
    /// ([`url`](PolicyConfig::url)).
    Opa,
    /// Rego policies evaluated in the process by regorus
    /// ([`policy_dir`](PolicyConfig::policy_dir)).
    Rego,
}

/// What the policy's `input` looks like.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum InputShape {
    /// fastapi-opa's input, so that its users' policies run unchanged: the
    /// caller's claims at the top level, `request_method`, and
    /// `request_path` as an array of path segments. A guest's input holds
    /// the last two only.
    ///
    /// ```json
    /// {"sub": "u-1", "preferred_username": "alice", "groups": ["staff"],
    ///  "request_method": "GET", "request_path": ["finance", "salary", "alice"]}
    /// ```
    #[default]
    FastapiOpa,
    /// The caller under `caller` (`null` for a guest), and the request:
    /// `method`, `path` (segments), `route` (the matched template, or
    /// `null`), `params`, `query` (each name with its list of values),
    /// `headers` (the chosen ones), and `body` when configured.
    ///
    /// ```json
    /// {"caller": {"sub": "u-1", "groups": ["staff"]},
    ///  "method": "GET", "path": ["finance", "salary", "alice"],
    ///  "route": "/finance/salary/{user}", "params": {"user": "alice"},
    ///  "query": {"full": ["true"]}, "headers": {"x-tenant": "acme"}}
    /// ```
    Native,
}

/// What happens to a request that carries no credentials.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Guests {
    /// 401 with the authentication challenge, before any policy is asked
    /// (fastapi-opa's behaviour).
    #[default]
    Refuse,
    /// The policy decides, on an input without a caller: a policy may let
    /// guests read `/public`. A guest the policy refuses gets 401 (logging
    /// in may help), never 403.
    Policy,
}

/// How decision events are logged (target `portcullis_policy::decision`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DecisionLog {
    /// At `debug`: refusals cannot flood a log kept at `info`.
    #[default]
    Debug,
    /// At `info`, as an audit trail.
    Info,
}

/// What a real CORS preflight gets: an `OPTIONS` request carrying `Origin`
/// and `Access-Control-Request-Method`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CorsPreflight {
    /// The policy decides, as for every other request (the default): a
    /// preflight carries no credentials, so it is a guest's request.
    #[default]
    Policy,
    /// Real preflights go on without a decision, for a service whose CORS
    /// layer answers them in front of the handlers. Any other `OPTIONS`
    /// request still goes through the policy.
    Pass,
}

/// The decision cache: off by default.
///
/// A cached decision is reused for the same caller (the same verified
/// token) and the same request parts the input is made of, until the
/// earliest of: the caller's token expires (`exp`), `max_ttl_secs` pass,
/// or the policies or data are reloaded. Only the embedded engine caches
/// (a remote server's policies change unseen), and only policies that call
/// no built-in whose answer changes between calls (`time.*`, `rand.*`,
/// `uuid.*`, `http.send`, `opa.runtime`, ...): such a policy set is refused
/// while the cache is on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct DecisionCacheConfig {
    /// Whether decisions are cached.
    #[serde(default)]
    pub enabled: bool,
    /// How many decisions are kept at most (10 000 by default).
    #[serde(default = "defaults::cache_capacity")]
    pub capacity: usize,
    /// The longest a decision is reused, in seconds (300 by default).
    #[serde(default = "defaults::cache_ttl")]
    pub max_ttl_secs: u64,
}

impl Default for DecisionCacheConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            capacity: defaults::cache_capacity(),
            max_ttl_secs: defaults::cache_ttl(),
        }
    }
}

impl DecisionCacheConfig {
    /// A cache on, with the default capacity and lifetime.
    pub fn enabled() -> Self {
        Self {
            enabled: true,
            ..Self::default()
        }
    }
}

/// The `policy` block: which engine decides, what it is asked, and what
/// happens to guests.
///
/// ```yaml
/// policy:
///   engine: rego            # or opa
///   policy_dir: policies    # rego: *.rego files and data.json
///   # url: http://127.0.0.1:8181   # opa
///   package: httpapi.authz  # the default
///   rule: allow             # the default
///   timeout_ms: 500
///   input: fastapi_opa      # or native
///   guests: policy          # or refuse (the default)
///   cache: { enabled: true }
/// ```
///
/// ```
/// use portcullis_core::config::{Format, load_from_str};
/// use portcullis_policy::{EngineKind, Guests, PolicyConfig};
/// let yaml = "engine: opa\nurl: http://127.0.0.1:8181\nguests: policy\n";
/// let config: PolicyConfig = load_from_str(yaml, Format::Yaml, &[])?;
/// config.validate()?;
/// assert_eq!(config.engine, EngineKind::Opa);
/// assert_eq!(config.package, "httpapi.authz");
/// assert_eq!(config.guests, Guests::Policy);
/// assert_eq!(config.data_path(), "httpapi/authz/allow");
///
/// let plain = "engine: opa\nurl: http://opa.internal:8181\n";
/// let config: PolicyConfig = load_from_str(plain, Format::Yaml, &[])?;
/// assert!(config.validate().unwrap_err().message().contains("policy.url"));
/// # Ok::<(), portcullis_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PolicyConfig {
    /// `opa` or `rego`.
    pub engine: EngineKind,
    /// The OPA server's base URL (engine `opa`): decisions are asked with
    /// `POST {url}/v1/data/{package}/{rule}`. `https`, or `http` on a
    /// loopback host (a sidecar), like every URL portcullis sends to.
    #[serde(default)]
    pub url: Option<String>,
    /// Accepts a plain-`http` [`url`](Self::url) on a non-loopback host
    /// (a closed test network only: inputs carry the caller's claims).
    #[serde(default)]
    pub danger_allow_plain_http: bool,
    /// The policy's package (`httpapi.authz`, fastapi-opa's default).
    #[serde(default = "defaults::package")]
    pub package: String,
    /// The rule that decides (`allow`): `true` allows, `false` refuses,
    /// undefined refuses; anything else is an error (503).
    #[serde(default = "defaults::rule")]
    pub rule: String,
    /// The directory of `.rego` files (Rego v1; subdirectories included)
    /// and `data.json` documents (engine `rego`).
    #[serde(default)]
    pub policy_dir: Option<PathBuf>,
    /// How often the policy directory is looked at for changes, in
    /// milliseconds (1000 by default; 0: only on
    /// [`reload`](crate::Policy::reload)).
    #[serde(default = "defaults::reload_interval_ms")]
    pub reload_interval_ms: u64,
    /// The longest a decision may take, in milliseconds (500 by default,
    /// at most 60 000): the request to OPA, or the embedded evaluation.
    /// Past it the answer is 503.
    #[serde(default = "defaults::timeout_ms")]
    pub timeout_ms: u64,
    /// Engine `rego`: evaluate on tokio's blocking threads under a hard
    /// deadline, rather than on the request's own thread under regorus'
    /// cooperative time limit (see the crate documentation).
    #[serde(default)]
    pub isolate: bool,
    /// `fastapi_opa` (the default) or `native`.
    #[serde(default)]
    pub input: InputShape,
    /// Request headers copied into the native input (lower-cased names).
    /// Headers that may carry credentials (`Authorization`, cookies,
    /// anything named like a token, key, secret or session) are refused.
    #[serde(default)]
    pub headers: Vec<String>,
    /// The largest request body the native input carries, in bytes (at
    /// most 1 MiB); none by default. A body larger is refused (413) by the
    /// adapter before any decision.
    #[serde(default)]
    pub body_limit: Option<usize>,
    /// What happens to requests without credentials.
    #[serde(default)]
    pub guests: Guests,
    /// The decision cache.
    #[serde(default)]
    pub cache: DecisionCacheConfig,
    /// The level of decision events.
    #[serde(default)]
    pub decision_log: DecisionLog,
    /// Requests the policy is not asked about (they are still
    /// authenticated): each entry is an exact raw path (`/health`, which
    /// `/health/` or `/health/deep` do not match) or an exact route
    /// template with `{name}` parameters (`/public/{file}`, matched against
    /// the template the router matched, never against the path). Never a
    /// prefix or a pattern: `*`, `?`, `#` and parameters that are not a
    /// whole segment are refused.
    #[serde(default)]
    pub skip: Vec<String>,
    /// Whether real CORS preflights go through the policy (`policy`, the
    /// default) or pass (`pass`, when a CORS layer in front answers them).
    #[serde(default)]
    pub cors_preflight: CorsPreflight,
}

/// The largest [`body_limit`](PolicyConfig::body_limit): 1 MiB.
pub const MAX_BODY_LIMIT: usize = 1024 * 1024;

/// The longest [`timeout_ms`](PolicyConfig::timeout_ms): one minute.
pub const MAX_TIMEOUT_MS: u64 = 60_000;

impl PolicyConfig {
    /// A configuration for an OPA server at `url`, with the defaults.
    pub fn opa(url: impl Into<String>) -> Self {
        Self {
            url: Some(url.into()),
            ..Self::with_engine(EngineKind::Opa)
        }
    }

    /// A configuration for the embedded engine over `policy_dir`, with the defaults.
    pub fn rego(policy_dir: impl Into<PathBuf>) -> Self {
        Self {
            policy_dir: Some(policy_dir.into()),
            ..Self::with_engine(EngineKind::Rego)
        }
    }

    fn with_engine(engine: EngineKind) -> Self {
        Self {
            engine,
            url: None,
            danger_allow_plain_http: false,
            package: defaults::package(),
            rule: defaults::rule(),
            policy_dir: None,
            reload_interval_ms: defaults::reload_interval_ms(),
            timeout_ms: defaults::timeout_ms(),
            isolate: false,
            input: InputShape::default(),
            headers: Vec::new(),
            body_limit: None,
            guests: Guests::default(),
            cache: DecisionCacheConfig::default(),
            decision_log: DecisionLog::default(),
            skip: Vec::new(),
            cors_preflight: CorsPreflight::default(),
        }
    }

    /// Sets [`package`](Self::package) and [`rule`](Self::rule).
    #[must_use]
    pub fn with_rule(mut self, package: impl Into<String>, rule: impl Into<String>) -> Self {
        self.package = package.into();
        self.rule = rule.into();
        self
    }

    /// Sets [`input`](Self::input).
    #[must_use]
    pub fn with_input(mut self, input: InputShape) -> Self {
        self.input = input;
        self
    }

    /// Sets [`guests`](Self::guests).
    #[must_use]
    pub fn with_guests(mut self, guests: Guests) -> Self {
        self.guests = guests;
        self
    }

    /// Sets [`headers`](Self::headers).
    #[must_use]
    pub fn with_headers(mut self, headers: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.headers = headers.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`body_limit`](Self::body_limit).
    #[must_use]
    pub fn with_body_limit(mut self, limit: usize) -> Self {
        self.body_limit = Some(limit);
        self
    }

    /// Sets [`timeout_ms`](Self::timeout_ms).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        self
    }

    /// Sets [`reload_interval_ms`](Self::reload_interval_ms).
    #[must_use]
    pub fn with_reload_interval(mut self, interval: Duration) -> Self {
        self.reload_interval_ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX);
        self
    }

    /// Sets [`isolate`](Self::isolate).
    #[must_use]
    pub fn with_isolate(mut self, isolate: bool) -> Self {
        self.isolate = isolate;
        self
    }

    /// Sets [`cache`](Self::cache).
    #[must_use]
    pub fn with_cache(mut self, cache: DecisionCacheConfig) -> Self {
        self.cache = cache;
        self
    }

    /// Sets [`decision_log`](Self::decision_log).
    #[must_use]
    pub fn with_decision_log(mut self, level: DecisionLog) -> Self {
        self.decision_log = level;
        self
    }

    /// Sets [`skip`](Self::skip).
    #[must_use]
    pub fn with_skip(mut self, skip: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.skip = skip.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`cors_preflight`](Self::cors_preflight).
    #[must_use]
    pub fn with_cors_preflight(mut self, preflight: CorsPreflight) -> Self {
        self.cors_preflight = preflight;
        self
    }

    /// Sets [`danger_allow_plain_http`](Self::danger_allow_plain_http).
    #[must_use]
    pub fn with_danger_allow_plain_http(mut self, allow: bool) -> Self {
        self.danger_allow_plain_http = allow;
        self
    }

    /// The timeout as a duration.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// The rule's path in OPA's Data API: `httpapi/authz/allow`.
    pub fn data_path(&self) -> String {
        format!("{}/{}", self.package.replace('.', "/"), self.rule)
    }

    /// The rule's reference in Rego: `data.httpapi.authz.allow`.
    pub fn rule_ref(&self) -> String {
        format!("data.{}.{}", self.package, self.rule)
    }

    /// Checks the configuration; errors name the key (`policy.url`, ...).
    ///
    /// # Errors
    ///
    /// A configuration error naming the key and the reason.
    pub fn validate(&self) -> Result<(), Error> {
        let refuse = |key: &str, why: &str| {
            Err(Error::config(format!(
                "configuration key `policy.{key}`: {why}"
            )))
        };
        if self.package.split('.').any(|p| !is_identifier(p)) {
            return refuse(
                "package",
                "a package is dot-separated Rego names (letters, digits, `_`; `httpapi.authz`)",
            );
        }
        if !is_identifier(&self.rule) {
            return refuse("rule", "a rule is one Rego name (letters, digits, `_`)");
        }
        if self.timeout_ms == 0 || self.timeout_ms > MAX_TIMEOUT_MS {
            return refuse("timeout_ms", "must be between 1 and 60000");
        }
        match self.engine {
            EngineKind::Opa => {
                let Some(url) = &self.url else {
                    return refuse("url", "required with `engine: opa`");
                };
                check_provider_url("policy.url", url, self.danger_allow_plain_http)?;
                let parsed = url::Url::parse(url).map_err(|_| {
                    Error::config("configuration key `policy.url`: not a valid absolute URL")
                })?;
                if parsed.query().is_some() || parsed.fragment().is_some() {
                    return refuse("url", "the base URL takes no query or fragment");
                }
                if self.policy_dir.is_some() {
                    return refuse("policy_dir", "applies to `engine: rego` only");
                }
                if self.isolate {
                    return refuse("isolate", "applies to `engine: rego` only");
                }
                if self.cache.enabled {
                    return refuse(
                        "cache.enabled",
                        "the decision cache needs `engine: rego`: an OPA server's policies and \
                         data change without portcullis seeing it",
                    );
                }
            }
            EngineKind::Rego => {
                if self.policy_dir.is_none() {
                    return refuse("policy_dir", "required with `engine: rego`");
                }
                if self.url.is_some() {
                    return refuse("url", "applies to `engine: opa` only");
                }
            }
        }
        chosen_headers("policy.headers", &self.headers)?;
        if !self.headers.is_empty() && self.input != InputShape::Native {
            return refuse("headers", "only the `native` input carries headers");
        }
        if let Some(limit) = self.body_limit {
            if self.input != InputShape::Native {
                return refuse("body_limit", "only the `native` input carries the body");
            }
            if limit == 0 || limit > MAX_BODY_LIMIT {
                return refuse("body_limit", "must be between 1 and 1048576 bytes");
            }
        }
        for (i, entry) in self.skip.iter().enumerate() {
            if let Err(why) = check_skip_entry(entry) {
                return refuse(&format!("skip[{i}]"), why);
            }
        }
        if self.cache.enabled {
            if self.cache.capacity == 0 {
                return refuse("cache.capacity", "must be at least 1");
            }
            if self.cache.max_ttl_secs == 0 {
                return refuse("cache.max_ttl_secs", "must be at least 1");
            }
        }
        Ok(())
    }
}

/// Checks one skip-list entry: an exact path or route template.
fn check_skip_entry(entry: &str) -> Result<(), &'static str> {
    if !entry.starts_with('/') {
        return Err("an exact path or route template, starting with `/`");
    }
    if entry
        .bytes()
        .any(|b| matches!(b, b'*' | b'?' | b'#') || b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(
            "exact paths and route templates only: no prefixes or patterns (`*`), no query (`?`), no spaces",
        );
    }
    for segment in entry[1..].split('/') {
        let braces = segment.contains(['{', '}']);
        if braces {
            let name = segment
                .strip_prefix('{')
                .and_then(|s| s.strip_suffix('}'))
                .filter(|n| is_identifier(n));
            if name.is_none() {
                return Err("a route parameter is a whole segment, `{name}`");
            }
        }
    }
    Ok(())
}

/// A Rego name: a letter or `_`, then letters, digits and `_`.
pub(crate) fn is_identifier(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

mod defaults {
    pub(super) fn package() -> String {
        "httpapi.authz".to_owned()
    }
    pub(super) fn rule() -> String {
        "allow".to_owned()
    }
    pub(super) fn reload_interval_ms() -> u64 {
        1_000
    }
    pub(super) fn timeout_ms() -> u64 {
        500
    }
    pub(super) fn cache_capacity() -> usize {
        10_000
    }
    pub(super) fn cache_ttl() -> u64 {
        300
    }
}

#[cfg(test)]
mod tests {
    use portcullis_core::config::{Format, env_overrides, load_from_env, load_from_str};

    use super::*;

    fn yaml(text: &str) -> PolicyConfig {
        load_from_str(text, Format::Yaml, &[]).unwrap()
    }

    fn refused(config: &PolicyConfig) -> String {
        config.validate().unwrap_err().message().to_owned()
    }

    #[test]
    fn defaults_follow_fastapi_opa() {
        let c = yaml("engine: rego\npolicy_dir: policies\n");
        c.validate().unwrap();
        assert_eq!(c.package, "httpapi.authz");
        assert_eq!(c.rule, "allow");
        assert_eq!(c.input, InputShape::FastapiOpa);
        assert_eq!(c.guests, Guests::Refuse);
        assert_eq!(c.timeout_ms, 500);
        assert!(!c.cache.enabled);
        assert_eq!(c.rule_ref(), "data.httpapi.authz.allow");
        assert_eq!(c, PolicyConfig::rego("policies"));
    }

    #[test]
    fn the_three_formats_agree() {
        let from_yaml = yaml(
            "engine: opa\nurl: https://opa.internal\ninput: native\nheaders: [x-tenant]\nguests: policy\ntimeout_ms: 250\n",
        );
        let from_toml: PolicyConfig = load_from_str(
            "engine = \"opa\"\nurl = \"https://opa.internal\"\ninput = \"native\"\nheaders = [\"x-tenant\"]\nguests = \"policy\"\ntimeout_ms = 250\n",
            Format::Toml,
            &[],
        )
        .unwrap();
        let env = env_overrides(
            "APP",
            [
                ("APP__ENGINE", "opa"),
                ("APP__URL", "https://opa.internal"),
                ("APP__INPUT", "native"),
                ("APP__HEADERS", "[\"x-tenant\"]"),
                ("APP__GUESTS", "policy"),
                ("APP__TIMEOUT_MS", "250"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        let from_env: PolicyConfig = load_from_env(&env).unwrap();
        assert_eq!(from_yaml, from_toml);
        assert_eq!(from_yaml, from_env);
        from_yaml.validate().unwrap();
        let built = PolicyConfig::opa("https://opa.internal")
            .with_input(InputShape::Native)
            .with_headers(["x-tenant"])
            .with_guests(Guests::Policy)
            .with_timeout(Duration::from_millis(250));
        assert_eq!(built, from_yaml);
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("engine: opa\n", "policy.url"),
            ("engine: opa\nurl: http://opa.example.com\n", "policy.url"),
            ("engine: opa\nurl: ftp://127.0.0.1\n", "policy.url"),
            ("engine: opa\nurl: https://opa?x=1\n", "policy.url"),
            (
                "engine: opa\nurl: https://opa\npolicy_dir: p\n",
                "policy.policy_dir",
            ),
            (
                "engine: opa\nurl: https://opa\ncache: {enabled: true}\n",
                "policy.cache.enabled",
            ),
            (
                "engine: opa\nurl: https://opa\nisolate: true\n",
                "policy.isolate",
            ),
            ("engine: rego\n", "policy.policy_dir"),
            (
                "engine: rego\npolicy_dir: p\nurl: https://opa\n",
                "policy.url",
            ),
            (
                "engine: rego\npolicy_dir: p\npackage: a/b\n",
                "policy.package",
            ),
            (
                "engine: rego\npolicy_dir: p\npackage: a..b\n",
                "policy.package",
            ),
            ("engine: rego\npolicy_dir: p\nrule: 1allow\n", "policy.rule"),
            (
                "engine: rego\npolicy_dir: p\ntimeout_ms: 0\n",
                "policy.timeout_ms",
            ),
            (
                "engine: rego\npolicy_dir: p\ntimeout_ms: 60001\n",
                "policy.timeout_ms",
            ),
            (
                "engine: rego\npolicy_dir: p\nheaders: [x-tenant]\n",
                "policy.headers",
            ),
            (
                "engine: rego\npolicy_dir: p\ninput: native\nheaders: [cookie]\n",
                "policy.headers[0]",
            ),
            (
                "engine: rego\npolicy_dir: p\nbody_limit: 100\n",
                "policy.body_limit",
            ),
            (
                "engine: rego\npolicy_dir: p\ninput: native\nbody_limit: 2000000\n",
                "policy.body_limit",
            ),
            (
                "engine: rego\npolicy_dir: p\ncache: {enabled: true, capacity: 0}\n",
                "policy.cache.capacity",
            ),
            (
                "engine: rego\npolicy_dir: p\nskip: [health]\n",
                "policy.skip[0]",
            ),
            (
                "engine: rego\npolicy_dir: p\nskip: [/ok, /public/*]\n",
                "policy.skip[1]",
            ),
            (
                "engine: rego\npolicy_dir: p\nskip: [\"/public/{file}.txt\"]\n",
                "policy.skip[0]",
            ),
            (
                "engine: rego\npolicy_dir: p\nskip: [\"/a?b=1\"]\n",
                "policy.skip[0]",
            ),
        ];
        for (text, key) in cases {
            let message = refused(&yaml(text));
            assert!(message.contains(&format!("`{key}`")), "{text}: {message}");
        }
        // Plain http is for loopback hosts, or on purpose.
        yaml("engine: opa\nurl: http://127.0.0.1:8181\n")
            .validate()
            .unwrap();
        yaml("engine: opa\nurl: http://opa.example.com\ndanger_allow_plain_http: true\n")
            .validate()
            .unwrap();
        // Unknown keys are refused by name.
        let e = load_from_str::<PolicyConfig>("engine: rego\npolicydir: p\n", Format::Yaml, &[])
            .unwrap_err();
        assert!(e.message().contains("policydir"), "{}", e.message());
        let e = load_from_str::<PolicyConfig>(
            "engine: rego\npolicy_dir: p\ncors_preflight: always\n",
            Format::Yaml,
            &[],
        )
        .unwrap_err();
        assert!(e.message().contains("cors_preflight"), "{}", e.message());
        let skips = yaml(
            "engine: rego\npolicy_dir: p\nskip: [/health, \"/public/{file}\"]\ncors_preflight: pass\n",
        );
        skips.validate().unwrap();
        assert_eq!(
            skips,
            PolicyConfig::rego("p")
                .with_skip(["/health", "/public/{file}"])
                .with_cors_preflight(CorsPreflight::Pass)
        );
        let e = load_from_str::<PolicyConfig>("engine: wasm\n", Format::Yaml, &[]).unwrap_err();
        assert!(e.message().contains("engine"), "{}", e.message());
    }
}
