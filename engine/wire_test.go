package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/distcache/distcache/keyspace"
	"github.com/stretchr/testify/require"
)

func TestKeysRoundTrip(t *testing.T) {
	keys := []string{"a", "", "ключ", string(make([]byte, 300))}
	r, err := decodeKeys(encodeKeys("users", keys))
	if err != nil {
		t.Fatal(err)
	}
	if r.keyspace != "users" || len(r.keys) != len(keys) {
		t.Fatalf("got %+v", r)
	}
	for i := range keys {
		if r.keys[i] != keys[i] {
			t.Fatalf("key %d: got %q want %q", i, r.keys[i], keys[i])
		}
	}
}

func TestPutRoundTrip(t *testing.T) {
	exp := time.Unix(1700000000, 123)
	in := []Entry{{Key: "a", Value: []byte("v")}, {Key: "b", Value: nil, Expiry: exp}}
	r, err := decodePut(encodePut("ks", in))
	if err != nil {
		t.Fatal(err)
	}
	if r.keyspace != "ks" || len(r.entries) != 2 || !r.entries[1].Expiry.Equal(exp) || !r.entries[0].Expiry.IsZero() ||
		string(r.entries[0].Value) != "v" || len(r.entries[1].Value) != 0 {
		t.Fatalf("got %+v", r)
	}
}

func TestResultsRoundTrip(t *testing.T) {
	in := []result{{statusOK, []byte("x")}, {statusNotFound, nil}, {statusError, []byte("boom")}}
	out, err := decodeResults(encodeResults(in), 3)
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		if out[i].status != in[i].status || !bytes.Equal(out[i].data, in[i].data) {
			t.Fatalf("%d: got %+v want %+v", i, out[i], in[i])
		}
	}
	if _, err := decodeResults(encodeResults(in), 2); err == nil {
		t.Fatal("count mismatch accepted")
	}
}

func TestStatusRoundTrip(t *testing.T) {
	for _, err := range []error{
		keyspace.ErrNotFound, fmt.Errorf("wrapped: %w", keyspace.ErrNotFound), ErrKeySpaceNotFound,
		ErrDataSourceRateLimited, ErrDataSourceCircuitOpen, errRateLimitWait, ErrRejected, ErrEngineStopped,
		context.DeadlineExceeded, context.Canceled,
	} {
		st, msg := statusOf(err)
		back := errorOf("peer", st, []byte(msg))
		for _, target := range []error{keyspace.ErrNotFound, ErrKeySpaceNotFound, ErrDataSourceRateLimited,
			ErrDataSourceCircuitOpen, ErrRejected, ErrEngineStopped, context.DeadlineExceeded, context.Canceled} {
			if errors.Is(err, target) != errors.Is(back, target) {
				t.Errorf("%v -> status %d -> %v: errors.Is(%v) differs", err, st, back, target)
			}
		}
	}
	st, msg := statusOf(errors.New("disk on fire"))
	var re *RemoteError
	if back := errorOf("n1", st, []byte(msg)); !errors.As(back, &re) || re.Message != "disk on fire" || re.Peer != "n1" {
		t.Fatalf("got %v", back)
	}
	if back := errorOf("n1", 200, nil); !errors.As(back, &re) {
		t.Fatalf("unknown status: %v", back)
	}
}

// The peer-payload decoders never panic and never allocate more than the
// input justifies, whatever the bytes.
func TestExpiryRoundTrip(t *testing.T) {
	for _, exp := range []time.Time{{}, time.Unix(0, expiryUnknown), time.Unix(1700000000, 123)} {
		p := withExpiry(exp, 1500*time.Millisecond, []byte("value"))
		val, got, lease, err := splitExpiry(p)
		require.NoError(t, err)
		require.Equal(t, "value", string(val))
		require.Equal(t, 1500*time.Millisecond, lease)
		if exp.IsZero() {
			require.True(t, got.IsZero())
		} else {
			require.Equal(t, exp.UnixNano(), got.UnixNano())
		}
	}
	// "Unknown" decodes as long expired, so a near cache never keeps it.
	_, got, _, err := splitExpiry(withExpiry(time.Unix(0, expiryUnknown), time.Second, nil))
	require.NoError(t, err)
	require.True(t, got.Before(time.Now()))
	_, _, _, err = splitExpiry([]byte{1, 2, 3})
	require.ErrorIs(t, err, errBadPayload)
	// A lease that does not fit a Duration is refused, not wrapped negative.
	bad := appendExpiry(nil, time.Time{})
	bad = append(bad, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	_, _, _, err = splitExpiry(bad)
	require.ErrorIs(t, err, errBadPayload)
}

func FuzzSplitExpiry(f *testing.F) {
	f.Add(withExpiry(time.Now(), time.Second, []byte("v")))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 1, 'x'})
	f.Fuzz(func(t *testing.T, p []byte) {
		val, _, lease, err := splitExpiry(p)
		if err == nil && (len(val) != len(p)-16 || lease < 0) {
			t.Fatalf("value of %d bytes, lease %v from a %d-byte payload", len(val), lease, len(p))
		}
	})
}

func FuzzDecodeKeys(f *testing.F) {
	f.Add(encodeKeys("users", []string{"a", "b"}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, p []byte) {
		r, err := decodeKeys(p)
		if err != nil {
			return
		}
		// What was accepted survives a re-encode unchanged.
		r2, err := decodeKeys(encodeKeys(r.keyspace, r.keys))
		if err != nil || r2.keyspace != r.keyspace || len(r2.keys) != len(r.keys) {
			t.Fatalf("re-encode changed %+v into %+v (%v)", r, r2, err)
		}
	})
}

func FuzzDecodePut(f *testing.F) {
	f.Add(encodePut("ks", []Entry{{Key: "a", Value: []byte("v"), Expiry: time.Unix(5, 0)}}))
	f.Add([]byte{2, 'k', 's', 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, p []byte) {
		r, err := decodePut(p)
		if err == nil && len(r.entries) > len(p) {
			t.Fatalf("%d entries from %d bytes", len(r.entries), len(p))
		}
	})
}

func FuzzDecodeWriteDeadline(f *testing.F) {
	f.Add(withWriteDeadline(time.Unix(5, 0), []byte("rest")))
	f.Add(withWriteDeadline(time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), nil))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, p []byte) {
		d, rest, err := decodeWriteDeadline(p)
		if err != nil {
			return
		}
		if d.IsZero() || len(rest) >= len(p) {
			t.Fatalf("deadline %v, %d of %d bytes left", d, len(rest), len(p))
		}
		if d2, rest2, err := decodeWriteDeadline(withWriteDeadline(d, rest)); err != nil || !d2.Equal(d) || string(rest2) != string(rest) {
			t.Fatalf("re-encode changed %v into %v (%v)", d, d2, err)
		}
	})
}

func FuzzDecodeResults(f *testing.F) {
	f.Add(encodeResults([]result{{statusOK, []byte("x")}}), 1)
	f.Add([]byte{0x80}, 0)
	f.Fuzz(func(t *testing.T, p []byte, want int) {
		rs, err := decodeResults(p, want)
		if err == nil && len(rs) != want {
			t.Fatalf("got %d results, want %d", len(rs), want)
		}
	})
}

func FuzzDecodeFlush(f *testing.F) {
	f.Add(encodeFlush("node-1", time.Unix(5, 6)))
	f.Add([]byte{0x01, 'a', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, p []byte) {
		from, at, err := decodeFlush(p)
		if err != nil {
			return
		}
		if from2, at2, err := decodeFlush(encodeFlush(from, at)); err != nil || from2 != from || !at2.Equal(at) {
			t.Fatalf("re-encode changed %q %v into %q %v (%v)", from, at, from2, at2, err)
		}
	})
}

func FuzzDecodeHeld(f *testing.F) {
	f.Add(encodeHeld(heldAnswer{found: true, fromStore: true, ver: 7, expiry: time.Unix(9, 0), value: []byte("v")}))
	f.Add(encodeHeld(heldAnswer{busy: true}))
	f.Add(encodeHeld(heldAnswer{}))
	f.Fuzz(func(t *testing.T, p []byte) {
		a, err := decodeHeld(p)
		if err != nil {
			return
		}
		b, err := decodeHeld(encodeHeld(a))
		if err != nil || b.found != a.found || b.busy != a.busy || b.fromStore != a.fromStore || b.ver != a.ver ||
			!b.expiry.Equal(a.expiry) || string(b.value) != string(a.value) {
			t.Fatalf("re-encode changed %+v into %+v (%v)", a, b, err)
		}
	})
}
