// Package distcache runs this repository's engine as a benchmark System:
// n engines in this process on 127.0.0.1 with free ports, joined through the
// static discovery provider, with the loopback options the engine's own
// tests use (testutil.LocalOptions).
package distcache
