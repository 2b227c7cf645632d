// Package groupcache runs github.com/groupcache/groupcache-go/v3 as a
// benchmark System: n daemons in this process, each with its own HTTP
// transport listening on 127.0.0.1:0, one group backed by the Source.
//
// groupcache has no membership: the harness plays the part of a discovery
// system and calls SetPeers on every live daemon when a node stops or
// starts, which is instantaneous (better than any real gossip).
package groupcache
