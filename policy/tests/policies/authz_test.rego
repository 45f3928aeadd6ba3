package httpapi.authz_test

import data.httpapi.authz

test_own_salary if {
	authz.allow with input as {"preferred_username": "alice", "request_method": "GET", "request_path": ["finance", "salary", "alice"]}
}

test_other_salary_refused if {
	not authz.allow with input as {"preferred_username": "alice", "request_method": "GET", "request_path": ["finance", "salary", "bob"]}
}

test_manager_reads_subordinate if {
	authz.allow with input as {"preferred_username": "bob", "request_method": "GET", "request_path": ["finance", "salary", "alice"]}
}

test_finance_reads_anyone if {
	authz.allow with input as {"preferred_username": "dave", "groups": ["finance"], "request_method": "GET", "request_path": ["finance", "salary", "bob"]}
}

test_guest_reads_public if {
	authz.allow with input as {"request_method": "GET", "request_path": ["public"]}
}

test_guest_adds_no_record if {
	not authz.allow with input as {"request_method": "POST", "request_path": ["records"]}
}

test_encoded_slash_is_one_segment if {
	not authz.allow with input as {"preferred_username": "alice", "request_method": "GET", "request_path": ["finance", "salary", "alice/bob"]}
}
