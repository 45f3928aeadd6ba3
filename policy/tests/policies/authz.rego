# fastapi-opa's README policy, in Rego v1, with the cases portcullis tests:
# a user reads their own salary, a manager their subordinates' (data.json),
# members of `finance` anyone's; everyone, guests included, reads /public;
# anyone signed in adds a record, members of `records` change or remove one.
package httpapi.authz

default allow := false

allow if {
	input.request_method == "GET"
	input.request_path == ["finance", "salary", input.preferred_username]
}

allow if {
	input.request_method == "GET"
	input.request_path = ["finance", "salary", user]
	user in data.subordinates[input.preferred_username]
}

allow if {
	input.request_method == "GET"
	input.request_path = ["finance", "salary", _]
	"finance" in input.groups
}

allow if {
	input.request_method == "GET"
	input.request_path == ["public"]
}

allow if {
	input.request_method == "POST"
	input.request_path == ["records"]
	input.sub
}

allow if {
	input.request_method in {"PATCH", "DELETE"}
	input.request_path = ["records", _]
	"records" in input.groups
}
