//go:build !race

package olric

const raceEnabled = false
