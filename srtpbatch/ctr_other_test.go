//go:build !amd64 || purego

package srtpbatch

func archCTRImpls() map[string]func(k *ctrKey, iv *[16]byte, dst, src []byte) { return nil }
