//go:build !race

package main

// shortRunSystems are the systems TestShortRun drives.
const shortRunSystems = "distcache,distcache+warmup,distcache-nonear,distcache+near=5s,groupcache,olric"
