package main

import (
	"bufio"
	"encoding/json"
	"os"

	"github.com/distcache/distcache/chaos/check"
)

// dumpCalls writes the history beside the node logs (one JSON object per
// call), for diagnosing a failure after the fact.
func dumpCalls(path string, calls []check.Call) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for i := range calls {
		if err := enc.Encode(&calls[i]); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
