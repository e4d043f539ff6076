//go:build !linux

package hugepage

// Advisor does nothing here: no transparent huge pages.
type Advisor struct{}

// Advise returns ErrUnsupported.
func (a *Advisor) Advise() (Stats, error) { return Stats{}, ErrUnsupported }
