# For the native input: the matched route, its parameters, the query, a
# chosen header and the caller under `caller`.
package httpapi.native

default allow := false

allow if {
	input.route == "/records/{id}"
	input.params.id == "7"
	input.headers["x-tenant"] == "acme"
	input.query.view == ["full"]
	"records" in input.caller.groups
}
