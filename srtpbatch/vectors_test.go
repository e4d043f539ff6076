package srtpbatch

import (
	"bytes"
	"crypto/aes"
	"encoding/hex"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ctrImpls are the keystream implementations compiled into this build.
func ctrImpls() map[string]func(k *ctrKey, iv *[16]byte, dst, src []byte) {
	m := map[string]func(k *ctrKey, iv *[16]byte, dst, src []byte){
		"dispatch(" + ctrImpl + ")": (*ctrKey).xorKeyStream,
		"generic":                   (*ctrKey).xorGeneric,
	}
	for name, f := range archCTRImpls() {
		m[name] = f
	}
	return m
}

// RFC 3711 appendix B.2: the AES-CM keystream segment of 65282 blocks.
func TestRFC3711KeystreamB2(t *testing.T) {
	k, err := newCTRKey(unhex(t, "2B7E151628AED2A6ABF7158809CF4F3C"))
	if err != nil {
		t.Fatal(err)
	}
	var iv [16]byte
	copy(iv[:], unhex(t, "F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000"))
	want := []struct {
		block int
		ks    string
	}{
		{0x0000, "E03EAD0935C95E80E166B16DD92B4EB4"},
		{0x0001, "D23513162B02D0F72A43A2FE4A5F97AB"},
		{0x0002, "41E95B3BB0A2E8DD477901E4FCA894C0"},
		{0xFEFF, "EC8CDF7398607CB0F2D21675EA9EA1E4"},
		{0xFF00, "362B7C3C6773516318A077D7FC5073AE"},
		{0xFF01, "6A2CC3787889374FBEB4C81B17BA6C44"},
	}
	for name, xor := range ctrImpls() {
		t.Run(name, func(t *testing.T) {
			ks := make([]byte, 1044512) // zeros in, keystream out
			xor(k, &iv, ks, ks)
			for _, w := range want {
				if got := ks[16*w.block : 16*w.block+16]; !bytes.Equal(got, unhex(t, w.ks)) {
					t.Errorf("block %#04x: got %X, want %s", w.block, got, w.ks)
				}
			}
		})
	}
}

// RFC 3711 appendix B.3: session keys from a master key.
func TestRFC3711KeyDerivationB3(t *testing.T) {
	prf, err := aes.NewCipher(unhex(t, "E1F97A0D3E018BE0D64FA32C06DE4139"))
	if err != nil {
		t.Fatal(err)
	}
	salt := unhex(t, "0EC675AD498AFEEBB6960B3AABE6")
	tests := []struct {
		name  string
		label byte
		want  string
	}{
		{"cipher key", labelEncryption, "C61E7A93744F39EE10734AFE3FF7A087"},
		{"cipher salt", labelSalt, "30CBBC08863D8C85D49DB34A9AE1"},
		{"auth key", labelAuth, "CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4"},
	}
	for _, tt := range tests {
		w := unhex(t, tt.want)
		if got := derive(prf, tt.label, salt, len(w)); !bytes.Equal(got, w) {
			t.Errorf("%s: got %X, want %s", tt.name, got, tt.want)
		}
	}
}

// RFC 7714 sections 16.1 and 16.2: an SRTP packet under AEAD_AES_128_GCM
// and AEAD_AES_256_GCM, session key and salt given directly.
func TestRFC7714Packets(t *testing.T) {
	const plain = `8040f17b 8041f8d3 5501a0b2 47616c6c 69612065 7374206f 6d6e6973
		20646976 69736120 696e2070 61727465 73207472 6573`
	tests := []struct {
		name    string
		profile Profile
		key     string
		want    string
	}{
		{"AEAD_AES_128_GCM", ProfileAEADAES128GCM, "000102030405060708090a0b0c0d0e0f",
			`8040f17b 8041f8d3 5501a0b2 f24de3a3 fb34de6c acba861c 9d7e4bca be633bd5
			0d294e6f 42a5f47a 51c7d19b 36de3adf 8833899d 7f27beb1 6a9152cf 765ee439 0cce`},
		{"AEAD_AES_256_GCM", ProfileAEADAES256GCM,
			"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
			`8040f17b 8041f8d3 5501a0b2 32b1de78 a822fe12 ef9f78fa 332e33aa b1801238
			9a58e2f3 b50b2a02 76ffae0f 1ba63799 b87b7aa3 db36dfff d6b0f9bb 7878d7a7 6c13`},
	}
	for _, tt := range tests {
		for _, impl := range gcmImpls() {
			t.Run(tt.name+"/"+impl.name, func(t *testing.T) {
				c, err := newSessionContext(tt.profile, unhex(t, tt.key), unhex(t, "517569642070726f2071756f"), nil, impl.vaes)
				if err != nil {
					t.Fatal(err)
				}
				p := unhex(t, plain)
				buf := make([]byte, len(p), len(p)+Overhead(tt.profile))
				copy(buf, p)
				s := c.Stream(0x5501a0b2)
				got, err := s.Protect(buf, len(p))
				if err != nil {
					t.Fatal(err)
				}
				if want := unhex(t, tt.want); !bytes.Equal(got, want) {
					t.Errorf("got  %x\nwant %x", got, want)
				}
				if roc := s.ROC(); roc != 0 {
					t.Errorf("ROC %d, want 0", roc)
				}
			})
		}
	}
}

// The key schedule and the counter-mode code against crypto/aes, for both
// key sizes and every length from 0 to 300 bytes (whole runs of eight
// blocks, the stack tail, partial blocks), in place and not.
func TestCTRMatchesCryptoAES(t *testing.T) {
	for _, keyLen := range []int{16, 32} {
		key := bytes.Repeat([]byte{0x5a}, keyLen)
		key[3] = byte(keyLen)
		k, err := newCTRKey(key)
		if err != nil {
			t.Fatal(err)
		}
		var iv [16]byte
		for i := range 14 {
			iv[i] = byte(0xa0 + i)
		}
		iv[14], iv[15] = 0, 0
		// The reference: one crypto/aes block at a time.
		ref := make([]byte, 300)
		var ctr, blk [16]byte
		for i := 0; i < len(ref); i += 16 {
			ctr = iv
			ctr[14], ctr[15] = byte(i/16>>8), byte(i/16)
			k.block.Encrypt(blk[:], ctr[:])
			copy(ref[i:], blk[:])
		}
		src := make([]byte, 300)
		for i := range src {
			src[i] = byte(i * 7)
		}
		for name, xor := range ctrImpls() {
			for n := 0; n <= len(src); n++ {
				dst := make([]byte, n)
				xor(k, &iv, dst, src[:n])
				inPlace := append([]byte(nil), src[:n]...)
				xor(k, &iv, inPlace, inPlace)
				for i := range n {
					if w := src[i] ^ ref[i]; dst[i] != w || inPlace[i] != w {
						t.Fatalf("key %d, %s, len %d: byte %d differs", keyLen, name, n, i)
					}
				}
			}
		}
	}
}
