//! The Rego tests of `tests/policies`, as a service's `cargo test` runs its own.

use portcullis_policy::{PolicyTestError, run_policy_tests};

use crate::common::{policies, policy_dir};

#[test]
fn the_test_policies_pass_their_own_tests() {
    let passed = run_policy_tests(policies()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        passed,
        [
            "data.httpapi.authz_test.test_own_salary",
            "data.httpapi.authz_test.test_other_salary_refused",
            "data.httpapi.authz_test.test_manager_reads_subordinate",
            "data.httpapi.authz_test.test_finance_reads_anyone",
            "data.httpapi.authz_test.test_guest_reads_public",
            "data.httpapi.authz_test.test_guest_adds_no_record",
            "data.httpapi.authz_test.test_encoded_slash_is_one_segment",
        ]
    );
}

#[test]
fn a_failing_test_is_named() {
    let dir = policy_dir();
    // The policy loosens: the test that guards against it fails, by name.
    std::fs::write(
        dir.path().join("authz.rego"),
        "package httpapi.authz\n\nallow if input.request_method == \"GET\"\n",
    )
    .unwrap();
    let e = run_policy_tests(dir.path()).unwrap_err();
    let PolicyTestError::Failed(failed) = &e else {
        panic!("{e}")
    };
    let names: Vec<&str> = failed.iter().map(|t| t.rule.as_str()).collect();
    assert_eq!(
        names,
        [
            "data.httpapi.authz_test.test_other_salary_refused",
            "data.httpapi.authz_test.test_encoded_slash_is_one_segment",
        ]
    );
    assert!(
        e.to_string()
            .contains("data.httpapi.authz_test.test_other_salary_refused: undefined"),
        "{e}"
    );
}
