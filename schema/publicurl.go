package schema

import (
	"net/url"
)

// CheckPublicURL checks a value of the public_url setting: "" (unset), or an absolute
// http(s) URL with a host and no user, query or fragment, optionally with a path (a
// reverse proxy's prefix). Printed links are built from it and never from a request's
// Host header, which any client chooses.
func CheckPublicURL(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" ||
		u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return FieldError(CodeValidation, "public_url",
			"public_url %q is not an http(s) address customers can open, like https://service.example.com (no user, query or fragment)", s)
	}
	return nil
}
