//go:build amd64 && !purego

package srtpbatch

// archCTRImpls are the assembly paths this CPU can run, each tested
// whichever the dispatch picks.
func archCTRImpls() map[string]func(k *ctrKey, iv *[16]byte, dst, src []byte) {
	m := map[string]func(k *ctrKey, iv *[16]byte, dst, src []byte){}
	if useAESNI {
		m["aesni"] = (*ctrKey).xorAESNI
	}
	if useVAES {
		m["vaes"] = (*ctrKey).xorVAES
	}
	return m
}
