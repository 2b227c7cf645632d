// Package sut defines what the benchmark harness drives: a System is a
// three-node cache cluster in this process (our engine or a peer) behind one
// small interface, backed by a counting, latency-injecting Source.
//
// Every implementation lives in its own sub-package so that the harness and
// the report never import a peer, and a peer's quirks (groupcache's
// harness-driven membership, olric's missing read-through) stay documented
// beside the code that works around them (see System.Notes).
package sut
