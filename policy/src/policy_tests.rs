//! [`run_policy_tests`]: a policy directory's Rego tests, run by `cargo test`.

use std::fmt;
use std::path::Path;

use portcullis_core::Error;

use crate::rego::{self, RegoOptions, scan};

/// One Rego test that did not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FailedTest {
    /// The rule, `data.httpapi.authz_test.test_guest_reads_public`.
    pub rule: String,
    /// Why: `false`, `undefined`, another value, or the evaluation's error.
    pub reason: String,
}

/// Why [`run_policy_tests`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum PolicyTestError {
    /// The policy set does not load (file, line and reason).
    Load(Error),
    /// The directory declares no `test_` rule.
    NoTests,
    /// These tests failed (the others passed).
    Failed(Vec<FailedTest>),
}

impl fmt::Display for PolicyTestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Load(e) => write!(f, "the policies do not load: {}", e.message()),
            Self::NoTests => f.write_str("the policy directory declares no `test_` rule"),
            Self::Failed(failed) => {
                write!(f, "{} policy test(s) failed:", failed.len())?;
                for t in failed {
                    write!(f, "\n  {}: {}", t.rule, t.reason)?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for PolicyTestError {}

/// Runs the Rego tests of the policy directory `dir` on the embedded
/// engine, for a service's `cargo test`: every rule whose name starts with
/// `test_` in every `.rego` file (test files beside the policies, as with
/// `opa test`), each evaluated with no input unless the test supplies one
/// (`allow with input as {...}`). A test passes when its value is `true`.
///
/// Returns the rules that passed, or the rules that failed, each named
/// with why (`false`, `undefined`, an error).
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::write(
///     dir.path().join("authz.rego"),
///     "package httpapi.authz\n\ndefault allow := false\n\nallow if input.request_path == [\"public\"]\n",
/// ).unwrap();
/// std::fs::write(
///     dir.path().join("authz_test.rego"),
///     "package httpapi.authz_test\n\nimport data.httpapi.authz\n\n\
///      test_public if authz.allow with input as {\"request_path\": [\"public\"]}\n\n\
///      test_private_refused if not authz.allow with input as {\"request_path\": [\"private\"]}\n",
/// ).unwrap();
/// let passed = portcullis_policy::run_policy_tests(dir.path()).unwrap();
/// assert_eq!(passed, [
///     "data.httpapi.authz_test.test_public",
///     "data.httpapi.authz_test.test_private_refused",
/// ]);
/// ```
///
/// # Errors
///
/// [`PolicyTestError`]: the set does not load, declares no test, or tests failed.
pub fn run_policy_tests(dir: impl AsRef<Path>) -> Result<Vec<String>, PolicyTestError> {
    let dir = dir.as_ref();
    let options = RegoOptions::default();
    let (engine, stamps) = rego::load(dir, &options).map_err(|r| PolicyTestError::Load(r.error))?;
    let mut tests = Vec::new();
    for path in rego::rego_files(&stamps) {
        let path = dir.join(path);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            PolicyTestError::Load(Error::config(format!(
                "policy file {}: cannot read: {e}",
                path.display()
            )))
        })?;
        let Some(package) = scan::package(&text) else {
            continue;
        };
        for rule in scan::test_rules(&text) {
            let rule = format!("data.{package}.{rule}");
            if !tests.contains(&rule) {
                tests.push(rule);
            }
        }
    }
    if tests.is_empty() {
        return Err(PolicyTestError::NoTests);
    }
    let mut passed = Vec::new();
    let mut failed = Vec::new();
    for rule in tests {
        let mut engine = engine.clone();
        let reason = match engine.eval_rule(rule.clone()) {
            Ok(regorus::Value::Bool(true)) => {
                passed.push(rule);
                continue;
            }
            Ok(regorus::Value::Undefined) => "undefined".to_owned(),
            Ok(other) => serde_json::to_string(&other).unwrap_or_else(|_| "not true".to_owned()),
            Err(e) => {
                let found = scan::locate(&e.to_string());
                match found.line {
                    Some((line, col)) => {
                        format!("error at line {line}, column {col}: {}", found.reason)
                    }
                    None => format!("error: {}", found.reason),
                }
            }
        };
        failed.push(FailedTest { rule, reason });
    }
    if failed.is_empty() {
        Ok(passed)
    } else {
        Err(PolicyTestError::Failed(failed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_name_the_rule_and_why() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("p.rego"),
            "package p\n\nallow if input.ok\n\n\
             test_passes if allow with input as {\"ok\": true}\n\
             test_false if { false }\n\
             test_undefined if allow\n\
             test_value := 3\n",
        )
        .unwrap();
        let e = run_policy_tests(dir.path()).unwrap_err();
        let PolicyTestError::Failed(failed) = &e else {
            panic!("{e}")
        };
        let by_rule: Vec<(&str, &str)> = failed
            .iter()
            .map(|t| (t.rule.as_str(), t.reason.as_str()))
            .collect();
        assert_eq!(
            by_rule,
            [
                ("data.p.test_false", "undefined"),
                ("data.p.test_undefined", "undefined"),
                ("data.p.test_value", "3"),
            ]
        );
        let text = e.to_string();
        assert!(text.starts_with("3 policy test(s) failed:"), "{text}");
        assert!(text.contains("data.p.test_undefined: undefined"), "{text}");

        std::fs::write(dir.path().join("p.rego"), "package p\nallow := true\n").unwrap();
        assert!(matches!(
            run_policy_tests(dir.path()),
            Err(PolicyTestError::NoTests)
        ));
        std::fs::write(dir.path().join("p.rego"), "package p\nallow if {\n").unwrap();
        let e = run_policy_tests(dir.path()).unwrap_err();
        assert!(
            matches!(&e, PolicyTestError::Load(inner) if inner.message().contains("p.rego: line")),
            "{e}"
        );
    }
}
