//go:build race

package srtpbatch

const raceEnabled = true
