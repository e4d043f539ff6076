package bpf

import (
	"net/netip"
	"testing"
)

func TestFlowLoss(t *testing.T) {
	v1 := MediaFlow{netip.MustParseAddrPort("198.18.2.2:4000"), 1}
	v2 := MediaFlow{netip.MustParseAddrPort("198.18.2.2:4001"), 1}
	v3 := MediaFlow{netip.MustParseAddrPort("[2001:db8::2]:4000"), 9}
	type m = map[MediaFlow]MediaFlowCount
	tests := []struct {
		name           string
		a, z           m
		expected, lost uint64
	}{
		{"none", m{}, m{}, 0, 0},
		{"all came", m{v1: {10, 100}}, m{v1: {60, 150}}, 50, 0},
		{"two lost", m{v1: {10, 100}}, m{v1: {58, 150}}, 50, 2},
		{"summed", m{v1: {10, 100}, v2: {0, 5}}, m{v1: {58, 150}, v2: {95, 105}}, 150, 7},
		{"duplicates lose nothing", m{v1: {10, 100}}, m{v1: {70, 150}}, 50, 0},
		{"new flow left out", m{v1: {10, 100}}, m{v1: {60, 150}, v3: {5, 5}}, 50, 0},
		{"gone flow left out", m{v1: {10, 100}, v3: {5, 5}}, m{v1: {60, 150}}, 50, 0},
		{"extended past 2^32", m{v1: {10, 1<<32 - 5}}, m{v1: {20, 5}}, 10, 0},
		{"still", m{v1: {10, 100}}, m{v1: {10, 100}}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exp, lost := FlowLoss(tt.a, tt.z)
			if exp != tt.expected || lost != tt.lost {
				t.Fatalf("FlowLoss = %d expected, %d lost; want %d, %d", exp, lost, tt.expected, tt.lost)
			}
		})
	}
}
