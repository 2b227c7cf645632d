// Package memnet is an in-memory network for tests: hosts addressed by "ip:port" exchange
// datagrams and dial stream connections without a socket, so that a cluster of engines
// (memberlist's gossip and the peer RPCs) runs inside one process and, because every
// blocking operation waits on a channel or a timer, inside a testing/synctest bubble,
// where a goroutine blocked on a real socket would never let the fake clock advance.
//
// A [Network] hands out [Host]s. A Host is what the transport needs from the network
// below it, the same methods as memberlist's NetTransport: datagrams ([Host.WriteToAddress],
// [Host.PacketCh]) are dropped when the receiver's queue is full or it is gone, like UDP;
// stream connections ([Host.DialContext], [Host.DialAddressTimeout], [Host.StreamCh]) are
// buffered pipes with deadlines, like TCP: a write blocks only once the peer has
// [pipeBufferBytes] unread, so both ends may write before reading. Create the Network
// inside the bubble that uses it.
package memnet
