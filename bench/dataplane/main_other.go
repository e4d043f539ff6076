//go:build !linux

// Command spillway-bench-dataplane needs Linux (network namespaces, XDP,
// sendmmsg, UDP GSO).
package main

import (
	"fmt"
	"os"
)

var stderr = os.Stderr

func main() {
	fmt.Fprintln(os.Stderr, "spillway-bench-dataplane: Linux only")
	os.Exit(1)
}
