package janus

import "regexp"

// Janus prints "Janus version: 1102 (1.1.2)" before it parses its flags.
var versionRE = regexp.MustCompile(`Janus version: \d+ \(([^)\s]+)\)`)

// parseVersion returns the dotted version from janus's banner, or "".
func parseVersion(out string) string {
	m := versionRE.FindStringSubmatch(out)
	if m == nil {
		return ""
	}
	return m[1]
}
