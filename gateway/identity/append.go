package identity

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"sync"
	"time"
)

// The gateway signs every request it forwards; this is the same HMAC as
// [Sign] computed without allocating (crypto/hmac allocates two digests
// and their pads per call): the key's pad blocks and the canonical
// string go into one reused buffer hashed with sha256.Sum256.

// AppendHeaders appends the five identity headers of a request signed at
// now to dst as HTTP/1.1 header lines ("Name: value\r\n"), with the same
// values as [Apply] sets. It is for code that writes a request itself and
// has left the client's "X-PB-" headers out (see [IsIdentityHeader]).
func AppendHeaders(dst []byte, secret string, now time.Time, method, path string, id Identity) []byte {
	t := now.Unix()
	dst = appendHeader(dst, HeaderAuthID, id.ID)
	dst = appendHeader(dst, HeaderAuthCollection, id.Collection)
	dst = appendHeader(dst, HeaderAuthSuperuser, boolString(id.Superuser))
	dst = append(dst, HeaderTime+": "...)
	dst = strconv.AppendInt(dst, t, 10)
	dst = append(dst, "\r\n"+HeaderProof+": "...)
	dst = appendSign(dst, secret, t, method, path, id)
	return append(dst, "\r\n"...)
}

func appendHeader(dst []byte, name, value string) []byte {
	dst = append(dst, name...)
	dst = append(dst, ": "...)
	dst = append(dst, value...)
	return append(dst, "\r\n"...)
}

// signBuffers hold the inner block of an HMAC: the key's inner pad and
// the canonical string.
var signBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// appendSign appends [Sign]'s proof to dst.
func appendSign(dst []byte, secret string, t int64, method, path string, id Identity) []byte {
	// HMAC (RFC 2104) with SHA-256: the key, hashed if longer than the
	// 64-byte block, zero-padded to it.
	var key [sha256.BlockSize]byte
	if len(secret) > sha256.BlockSize {
		sum := sha256.Sum256([]byte(secret))
		copy(key[:], sum[:])
	} else {
		copy(key[:], secret)
	}
	bufp := signBuffers.Get().(*[]byte)
	inner := (*bufp)[:0]
	for _, k := range key {
		inner = append(inner, k^0x36)
	}
	inner = appendCanonical(inner, t, method, path, id)
	innerSum := sha256.Sum256(inner)
	if cap(inner) <= 64<<10 {
		*bufp = inner
		signBuffers.Put(bufp)
	}
	var outer [sha256.BlockSize + sha256.Size]byte
	for i, k := range key {
		outer[i] = k ^ 0x5c
	}
	copy(outer[sha256.BlockSize:], innerSum[:])
	sum := sha256.Sum256(outer[:])
	return hex.AppendEncode(dst, sum[:])
}

// appendCanonical appends [Canonical] to dst.
func appendCanonical(dst []byte, t int64, method, path string, id Identity) []byte {
	dst = append(dst, version+"\n"...)
	dst = strconv.AppendInt(dst, t, 10)
	dst = append(dst, '\n')
	for i := 0; i < len(method); i++ {
		c := method[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		dst = append(dst, c)
	}
	dst = append(dst, '\n')
	dst = append(dst, path...)
	dst = append(dst, '\n')
	dst = append(dst, id.ID...)
	dst = append(dst, '\n')
	dst = append(dst, id.Collection...)
	dst = append(dst, '\n')
	return append(dst, boolString(id.Superuser)...)
}
