// Package olric runs github.com/olric-data/olric (embedded) as a benchmark
// System: n members in this process, each from config.New("local")
// (memberlist's DefaultLocalConfig) on 127.0.0.1 with free ports, one DMap.
//
// Olric has no read-through, so Get is emulated cache-aside: DMap.Get, and
// on ErrKeyNotFound a DataSource fetch followed by DMap.Put. The fetch runs
// under a per-node singleflight that looks the key up once more first (what
// a careful application would do), so misses of one key on one node cost
// one fetch; nothing coordinates misses across nodes. GetMany runs the keys' Gets concurrently:
// Olric's pipeline, which groups commands by partition and needs a separate
// cluster client, was slower in this harness.
package olric
