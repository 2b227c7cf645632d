package ctlapi

import (
	"fmt"
	"strconv"
	"strings"
)

// Value is the value of key at version v: the DataSource answers version 0
// for every key (the "database" never changes, so any non-zero version
// read came from a Put), and a Put of version v stores Value(key, v). The
// key is part of the value so that a value served for the wrong key shows.
func Value(key string, v uint64) []byte {
	return fmt.Appendf(nil, "k=%s;v=%d", key, v)
}

// ParseValue returns the version in a value read for key, or an error if
// the value does not decode or names another key.
func ParseValue(key string, b []byte) (uint64, error) {
	s := string(b)
	k, ver, ok := strings.Cut(strings.TrimPrefix(s, "k="), ";v=")
	if !ok || !strings.HasPrefix(s, "k=") {
		return 0, fmt.Errorf("value %q does not decode", s)
	}
	if k != key {
		return 0, fmt.Errorf("value %q names key %q", s, k)
	}
	v, err := strconv.ParseUint(ver, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("value %q: bad version: %w", s, err)
	}
	return v, nil
}
