// Package netns runs code inside a named network namespace, as `ip netns
// exec` does for a process, but for one goroutine's locked thread: sockets
// opened and links attached there stay in the namespace.
package netns
