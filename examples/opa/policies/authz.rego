# fastapi-opa's README policy, in Rego v1, on fastapi-opa's input: the
# caller's claims at the top level, `request_method`, and `request_path`
# as a list of segments. Guests (no claims) read /public only.
package httpapi.authz

default allow := false

# Anyone reads the public page.
allow if {
	input.request_method == "GET"
	input.request_path == ["public"]
}

# A user reads their own salary.
allow if {
	input.request_method == "GET"
	input.request_path == ["finance", "salary", input.preferred_username]
}

# Members of `finance` read anyone's salary ...
allow if {
	input.request_method == "GET"
	["finance", "salary", _] = input.request_path
	"finance" in input.groups
}

# ... and post records.
allow if {
	input.request_method == "POST"
	input.request_path == ["records"]
	"finance" in input.groups
}
