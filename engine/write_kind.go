package engine

// writeKind says whether a batch of writes stores its entries or removes
// their keys. The write path, from the public call through the peer client
// and the owner's serving side to its replicas, carries it instead of a
// bare bool so that every call site reads as what it does.
type writeKind bool

const (
	writePut    writeKind = false
	writeDelete writeKind = true
)
