# The policy of the conformance suite's policy application (native input).
package httpapi.authz

# No default: a request no rule speaks of is undefined, and refused.

# The home page, for everyone (guests too, when the policy decides for them).
allow if {
	input.method == "GET"
	input.path == [""]
}

# A file, for callers, by the route template: its name is one segment,
# whatever it holds once decoded (`a%2Fb` is the name `a/b`).
allow if {
	input.caller != null
	input.method == "GET"
	input.route == "/files/{name}"
	count(input.path) == 2
	input.params.name == input.path[1]
}

# A record, posted by its owner.
allow if {
	input.caller != null
	input.method == "POST"
	input.path == ["records"]
	input.body.owner == input.caller.sub
}

# Refused in so many words.
allow := false if input.path == ["denied"]
