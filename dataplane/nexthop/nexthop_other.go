//go:build !linux

package nexthop

import (
	"context"
	"errors"
	"net/netip"
)

// Routes and neighbours are read through rtnetlink: Linux only. These stubs
// keep the module building elsewhere; New fails.

var errNotLinux = errors.New("nexthop: reading routes and neighbours needs Linux (rtnetlink)")

// Resolver cannot be made here: New fails.
type Resolver struct{}

// New fails: not Linux.
func New() (*Resolver, error) { return nil, errNotLinux }

// Resolve fails: not Linux.
func (r *Resolver) Resolve(src, dst netip.Addr) (Hop, error) { return Hop{}, errNotLinux }

// ResolveMany fails for every pair: not Linux.
func (r *Resolver) ResolveMany(pairs []Pair) ([]Hop, []error) {
	errs := make([]error, len(pairs))
	for i := range errs {
		errs[i] = errNotLinux
	}
	return make([]Hop, len(pairs)), errs
}

// Watch fails: not Linux.
func (r *Resolver) Watch(ctx context.Context, changed func()) error { return errNotLinux }

// Close does nothing.
func (r *Resolver) Close() error { return nil }
