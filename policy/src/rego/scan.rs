//! What portcullis reads from Rego source itself, without the engine: the
//! built-in functions a policy calls whose answer changes from one call to
//! the next, the test rules a file declares, and where a regorus error
//! points.
//!
//! The scanner is a small tokenizer that knows Rego's comments (`#` to the
//! end of the line), strings (`"..."` with `\` escapes) and raw strings
//! (`` `...` ``), so that a name inside a comment or a string is never
//! taken for a call, and a name inside a comment or string can never hide
//! a call either. It reads references (`a.b.c`) as whole names: `time.now_ns`
//! is found, `data.time.now_ns` (a rule of a package named `time`) is not.

/// One name (a dotted reference) found in a policy, with where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Name {
    /// The reference as written, dots included (`time.now_ns`).
    pub(crate) text: String,
    /// 1-based line.
    pub(crate) line: usize,
    /// Whether it is the first token of its line, outside any bracket:
    /// where Rego rule heads stand.
    pub(crate) starts_statement: bool,
}

/// The dotted names of `source`, in order. A name preceded by a `.`
/// (`x.y` in `data.x.y`) is part of the name before it, never one of its own.
pub(crate) fn names(source: &str) -> Vec<Name> {
    let bytes = source.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    let mut depth: usize = 0;
    let mut line_has_token = false;
    // Whether the previous token was a `.`: the name that follows belongs to it.
    let mut after_dot = false;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'\n' => {
                line += 1;
                line_has_token = false;
                i += 1;
            }
            b' ' | b'\t' | b'\r' => i += 1,
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                // The closing quote; an unterminated string ends at the line's end.
                if i < bytes.len() && bytes[i] == b'"' {
                    i += 1;
                }
                line_has_token = true;
                after_dot = false;
            }
            b'`' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'`' {
                    if bytes[i] == b'\n' {
                        line += 1;
                    }
                    i += 1;
                }
                i += 1;
                line_has_token = true;
                after_dot = false;
            }
            b'(' | b'[' | b'{' => {
                depth += 1;
                i += 1;
                line_has_token = true;
                after_dot = false;
            }
            b')' | b']' | b'}' => {
                depth = depth.saturating_sub(1);
                i += 1;
                line_has_token = true;
                after_dot = false;
            }
            b'.' => {
                i += 1;
                line_has_token = true;
                after_dot = true;
            }
            b if b.is_ascii_alphabetic() || b == b'_' => {
                let start = i;
                let starts_statement = depth == 0 && !line_has_token;
                let mut end = ident_end(bytes, i);
                // Extend over `.ident` parts, with no space around the dots.
                while end + 1 < bytes.len()
                    && bytes[end] == b'.'
                    && (bytes[end + 1].is_ascii_alphabetic() || bytes[end + 1] == b'_')
                {
                    end = ident_end(bytes, end + 1);
                }
                if !after_dot {
                    out.push(Name {
                        text: source[start..end].to_owned(),
                        line,
                        starts_statement,
                    });
                }
                i = end;
                line_has_token = true;
                after_dot = false;
            }
            _ => {
                // Numbers, operators and anything else: skipped whole
                // bytes at a time (non-ASCII only appears in strings and
                // comments, which are handled above).
                i += 1;
                line_has_token = true;
                after_dot = false;
            }
        }
    }
    out
}

fn ident_end(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
        i += 1;
    }
    i
}

/// Built-in functions whose answer is not a function of the input and the
/// data: the clock, randomness, the network, the runtime. A cached
/// decision would outlive what they said.
const NONDETERMINISTIC_PREFIXES: [&str; 3] = ["time.", "rand.", "uuid."];

/// Single functions of the same kind.
const NONDETERMINISTIC_FUNCTIONS: [&str; 7] = [
    "http.send",
    "opa.runtime",
    "net.lookup_ip_addr",
    // These read the clock when their constraints name no time.
    "io.jwt.decode_verify",
    "crypto.x509.parse_and_verify_certificates",
    "crypto.x509.parse_and_verify_certificates_with_options",
    // Its answer depends on the trust store of the host.
    "crypto.x509.parse_and_verify_certificate_chain",
];

/// The calls (or mentions: `with time.now_ns as 1` counts) of built-in
/// functions whose answer changes between calls, as `(name, line)`.
pub(crate) fn nondeterministic_calls(source: &str) -> Vec<(String, usize)> {
    names(source)
        .into_iter()
        .filter(|n| is_nondeterministic(&n.text))
        .map(|n| (n.text, n.line))
        .collect()
}

fn is_nondeterministic(name: &str) -> bool {
    NONDETERMINISTIC_PREFIXES
        .iter()
        .any(|p| name.starts_with(p) && name.len() > p.len())
        || NONDETERMINISTIC_FUNCTIONS.contains(&name)
}

/// The package a policy file declares (`package a.b` → `a.b`), if any.
pub(crate) fn package(source: &str) -> Option<String> {
    let names = names(source);
    let at = names
        .iter()
        .position(|n| n.text == "package" && n.starts_statement)?;
    // `package a.b` reads as `package` then `a.b`; a quoted component
    // (`package a["b-c"]`) is not followed: such packages are not run by
    // `run_policy_tests`.
    names.get(at + 1).map(|n| n.text.clone())
}

/// The test rules a policy file declares: rule heads named `test_...`, in
/// order of first appearance, each once.
pub(crate) fn test_rules(source: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in names(source) {
        if n.starts_statement
            && n.text.starts_with("test_")
            && !n.text.contains('.')
            && !out.contains(&n.text)
        {
            out.push(n.text);
        }
    }
    out
}

/// Where a regorus error points and what it says: regorus renders
/// `--> file:line:col`, the source line, and `error: reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Located {
    /// The file regorus names, as it was given to it.
    pub(crate) file: Option<String>,
    pub(crate) line: Option<(usize, usize)>,
    pub(crate) reason: String,
}

/// Reads a regorus error message into its location and reason.
pub(crate) fn locate(message: &str) -> Located {
    let at = message.lines().find_map(|l| {
        let at = l.trim_start().strip_prefix("--> ")?;
        let mut parts = at.rsplitn(3, ':');
        let col = parts.next()?.trim().parse().ok()?;
        let line = parts.next()?.trim().parse().ok()?;
        let file = parts.next().map(str::to_owned);
        Some((file, (line, col)))
    });
    let (file, line) = match at {
        Some((file, line)) => (file, Some(line)),
        None => (None, None),
    };
    let reason = message
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("error: "))
        .unwrap_or_else(|| message.trim())
        .trim()
        .trim_end_matches(':')
        .to_owned();
    Located { file, line, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_found_outside_comments_and_strings() {
        let src = r#"package p
# time.now_ns() in a comment
msg := "rand.intn in a string \" time.now_ns()"
raw := `http.send
uuid.rfc4122`
allow if {
    t := time.now_ns()
    t > 0
}
n := rand.intn("k", 10)
x := data.time.now_ns
y if opa.runtime().env
z if count([1]) == 1 with time.now_ns as 5
w if io.jwt.decode_verify(input.t, {})
v if io.jwt.decode(input.t)
"#;
        let found = nondeterministic_calls(src);
        assert_eq!(
            found,
            vec![
                ("time.now_ns".to_owned(), 7),
                ("rand.intn".to_owned(), 10),
                ("opa.runtime".to_owned(), 12),
                ("time.now_ns".to_owned(), 13),
                ("io.jwt.decode_verify".to_owned(), 14),
            ]
        );
    }

    #[test]
    fn names_with_a_prefix_alone_are_not_calls() {
        // A variable or rule called `time`, `rand`: not a built-in.
        assert!(nondeterministic_calls("package p\ntime := 1\nrand if time > 0\n").is_empty());
        assert!(nondeterministic_calls("package p\nx := input.time.now\n").is_empty());
    }

    #[test]
    fn an_unterminated_string_does_not_hide_the_next_line() {
        let found = nondeterministic_calls("package p\nx := \"open\ny := time.now_ns()\n");
        assert_eq!(found, vec![("time.now_ns".to_owned(), 3)]);
    }

    #[test]
    fn packages_and_test_rules() {
        let src = "package httpapi.authz_test\n\nimport rego.v1\n\ntest_own if {\n    allow with input as {}\n}\n\ntest_own if { true }\ntest_other := true\nnot_a_test if { test_inside }\n";
        assert_eq!(package(src).as_deref(), Some("httpapi.authz_test"));
        assert_eq!(test_rules(src), ["test_own", "test_other"]);
        assert_eq!(package("# no package\n"), None);
    }

    #[test]
    fn regorus_errors_are_located() {
        let e = "\n--> dir/p.rego:5:1\n  |\n5 | }\n  | ^\nerror: expecting expression";
        assert_eq!(
            locate(e),
            Located {
                file: Some("dir/p.rego".to_owned()),
                line: Some((5, 1)),
                reason: "expecting expression".to_owned()
            }
        );
        let conflict = "\n--> p.rego:4:1\n  |\n4 | x := 2\n  | ^\nerror: rule conflicts with the following rule:\n\n--> p.rego:3:1\n";
        assert_eq!(
            locate(conflict).reason,
            "rule conflicts with the following rule"
        );
        assert_eq!(
            locate("not a valid rule path"),
            Located {
                file: None,
                line: None,
                reason: "not a valid rule path".to_owned()
            }
        );
    }
}
