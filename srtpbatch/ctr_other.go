//go:build !amd64 || purego

package srtpbatch

const ctrImpl = "generic"

func (k *ctrKey) xorKeyStream(iv *[16]byte, dst, src []byte) { k.xorGeneric(iv, dst, src) }
