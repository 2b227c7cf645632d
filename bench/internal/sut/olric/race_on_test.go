//go:build race

package olric

const raceEnabled = true
