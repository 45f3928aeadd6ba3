# A rule without a default: undefined (a refusal) wherever no body matches.
package httpapi.nodefault

allow if input.request_path == ["public"]
