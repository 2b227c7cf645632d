// Package report turns a harness.Report into a Markdown summary (tables,
// ratios, machine and command), a JSON dump and a hand-written SVG chart of
// throughput and p99 latency per system and workload.
package report
