// Package raw measures the limits the systems are compared against, with
// the same loop, key set and latency recording as the harness: ristretto v2
// Get in this process (the local-hit ceiling), and loopback TCP between two
// goroutines of this process with a length-prefixed echo protocol, either
// pipelined (one connection, a window of requests in flight, the remote-Get
// throughput ceiling) or ping-pong (one request at a time, the remote-Get
// latency floor).
package raw
