//go:build !linux

package netns

import "errors"

// Path returns netns: namespaces exist only on Linux.
func Path(netns string) string { return netns }

// Run fails: not Linux.
func Run(netns string, f func() error) error {
	return errors.New("netns: network namespaces need Linux")
}
