package config

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Bytes is a size in bytes, written in JSON as a string with a unit, as
// PM2's max_memory_restart is ("300M", "300MB", "1.5G", "512K"), or as a
// number of bytes. K, M and G (with or without a trailing B, or iB) are
// powers of 1024.
type Bytes int64

// Units of Bytes.
const (
	KB Bytes = 1 << 10
	MB Bytes = 1 << 20
	GB Bytes = 1 << 30
)

// String writes b with the largest unit that keeps it whole, "300MB".
func (b Bytes) String() string {
	switch {
	case b >= GB && b%GB == 0:
		return strconv.FormatInt(int64(b/GB), 10) + "GB"
	case b >= MB && b%MB == 0:
		return strconv.FormatInt(int64(b/MB), 10) + "MB"
	case b >= KB && b%KB == 0:
		return strconv.FormatInt(int64(b/KB), 10) + "KB"
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

// MarshalJSON writes b as String does.
func (b Bytes) MarshalJSON() ([]byte, error) { return json.Marshal(b.String()) }

// UnmarshalJSON reads a number of bytes or a string such as "300MB".
func (b *Bytes) UnmarshalJSON(data []byte) error {
	var n int64
	if err := json.Unmarshal(data, &n); err == nil {
		if n < 0 {
			return fmt.Errorf("want a size such as \"300MB\", not %d", n)
		}
		*b = Bytes(n)
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("want a size such as \"300MB\"")
	}
	v, err := ParseBytes(s)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// ParseBytes reads a size such as "300MB", "300M", "1.5G", "512KiB" or
// "1048576".
func ParseBytes(s string) (Bytes, error) {
	text := strings.TrimSpace(s)
	upper := strings.ToUpper(text)
	unit := Bytes(1)
	for _, u := range []struct {
		suffixes []string
		size     Bytes
	}{
		{[]string{"GIB", "GB", "G"}, GB},
		{[]string{"MIB", "MB", "M"}, MB},
		{[]string{"KIB", "KB", "K"}, KB},
		{[]string{"B"}, 1},
	} {
		found := false
		for _, suffix := range u.suffixes {
			if strings.HasSuffix(upper, suffix) {
				upper, unit, found = strings.TrimSpace(strings.TrimSuffix(upper, suffix)), u.size, true
				break
			}
		}
		if found {
			break
		}
	}
	v, err := strconv.ParseFloat(upper, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) || v*float64(unit) > math.MaxInt64/2 {
		return 0, fmt.Errorf("invalid size %q: write it like \"300MB\", \"1.5G\" or \"512K\"", s)
	}
	return Bytes(v * float64(unit)), nil
}
