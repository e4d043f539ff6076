// Package srtpbatch protects RTP packets with SRTP (RFC 3711, RFC 7714)
// without allocating, for the data plane's per-viewer egress: the profiles
// AEAD_AES_128_GCM, AEAD_AES_256_GCM, AES_CM_128_HMAC_SHA1_80 and
// AES_CM_128_HMAC_SHA1_32, byte-identical to pion/srtp v3.0.13 (which the
// control plane and the viewers' side use).
//
// Use: one Context per viewer and direction (NewContext with the server
// write master key and salt from DTLS-SRTP), one Stream per SSRC resolved
// once, then Protect or ProtectBatch per packet, in place, into a buffer
// with Overhead bytes of spare capacity. A Context and its Streams belong to
// one goroutine. Moving a viewer between workers carries Stream.Index to
// the new owner's Stream.SetIndex (or the ROC alone with SetROC, as pion
// does); two live owners of one SSRC would reuse keystream.
//
// Design:
//
//   - Rollover counter: Stream keeps pion's index (ROC<<16 | highest
//     sequence number) and guesses each packet's ROC exactly as pion's
//     srtpSSRCState does, quirks included (no wrap is guessed while the
//     index is at most 2^15; a ROC past 2^32-1 is refused). A late or resent
//     packet gets the ROC of its own period, so resending an index gives the
//     same bytes.
//   - Headers: the header length (CSRCs, extension) is computed, not parsed
//     into a struct; RFC 8285 elements are walked only to refuse what
//     pion/rtp refuses, so both accept the same packets.
//   - AEAD: on CPUs with AVX-512, VAES and VPCLMULQDQ, gcm.go and
//     gcm_amd64.s: AES-CTR and GHASH on 512-bit registers, sixteen blocks per
//     loop, one GHASH reduction per sixteen blocks, the last partial loop
//     through byte masks; 0.55 of a bare crypto/cipher Seal, whose AES-NI +
//     PCLMULQDQ code works one 128-bit lane at a time. Elsewhere one
//     cipher.AEAD per Context, Seal in place with the nonce built in a
//     fixed array: within a few percent of a bare Seal.
//   - AES-CM: pion encrypts one AES block at a time through cipher.Block and
//     a pooled buffer; Go's cipher.NewCTR allocates 512 bytes per call.
//     Here the round keys are expanded once (aeskey.go) and the keystream
//     XOR payload goes straight into the packet: with VAES, gcm_amd64.s's
//     counter mode (sixteen blocks per loop, masked tail); with AES-NI only,
//     ctr_amd64.s with eight blocks in flight, the last partial run of eight
//     through a stack buffer. Other
//     architectures, CPUs without AES-NI and the purego build tag use
//     xorGeneric (crypto/aes per block), correct and slower.
//   - HMAC-SHA1: crypto/hmac with its pad states marshaled at construction,
//     so Reset only restores them; Sum goes into an array of the Context.
//     Go's SHA-1 uses SHA-NI here. HMAC is now about 85% of an AES-CM packet.
//
// Measured (go test -run TestRatios -v ./srtpbatch, 2 shared vCPUs of an AMD
// EPYC with AES-NI, VAES, SHA-NI; Go 1.26; 1200-byte packets, ns per
// packet, best of 3):
//
//	profile  srtpbatch  pion   raw primitive      srtpbatch/pion  srtpbatch/raw
//	gcm128         161   310   290 (Seal)                   0.52           0.55
//	gcm256         180   363   325 (Seal)                   0.50           0.55
//	cm80           808  2046  1015 (NewCTR+HMAC)            0.39           0.80
//	cm32           821  2056  1015 (NewCTR+HMAC)            0.40           0.81
//
// Inside gcm128 (BenchmarkGCMParts): counter mode 32 ns, GHASH of header,
// payload and lengths in one call 91 ns (a loop is bound by the latency
// of its reduction, about 13 ns, not by its sixteen blocks).
// Inside cm80: keystream 32 ns with VAES (AES-NI: 108 ns; generic path:
// 1207 ns), HMAC-SHA1 705 ns.
// Zero allocations per packet for every profile, with and without -race.
package srtpbatch
