//go:build !race

package transport

// raceEnabled reports whether the race detector is on (its shadow memory inflates RSS).
const raceEnabled = false
