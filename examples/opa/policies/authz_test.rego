# The policy's tests, run by `cargo test -p example-opa` (run_policy_tests)
# as `opa test` would run them.
package httpapi.authz_test

import data.httpapi.authz

alice := {"sub": "u-alice", "preferred_username": "alice", "groups": ["staff"]}

frank := {"sub": "u-frank", "preferred_username": "frank", "groups": ["finance"]}

request(caller, method, path) := object.union(caller, {"request_method": method, "request_path": path})

test_guests_read_public if {
	authz.allow with input as {"request_method": "GET", "request_path": ["public"]}
}

test_guests_read_no_salary if {
	not authz.allow with input as {"request_method": "GET", "request_path": ["finance", "salary", "alice"]}
}

test_a_user_reads_their_own_salary if {
	authz.allow with input as request(alice, "GET", ["finance", "salary", "alice"])
}

test_a_user_reads_no_one_elses_salary if {
	not authz.allow with input as request(alice, "GET", ["finance", "salary", "bob"])
}

test_finance_reads_anyones_salary if {
	authz.allow with input as request(frank, "GET", ["finance", "salary", "alice"])
}

test_an_encoded_slash_is_no_path_trick if {
	not authz.allow with input as request(alice, "GET", ["finance", "salary", "alice/../bob"])
}

test_finance_posts_records if {
	authz.allow with input as request(frank, "POST", ["records"])
}

test_others_post_no_records if {
	not authz.allow with input as request(alice, "POST", ["records"])
}

test_writes_are_not_reads if {
	not authz.allow with input as request(alice, "DELETE", ["finance", "salary", "alice"])
}
