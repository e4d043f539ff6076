//go:build !linux

// Command spillway-bench needs Linux: network namespaces, eBPF, taskset.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "spillway-bench: needs Linux")
	os.Exit(1)
}
