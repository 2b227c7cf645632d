package engine

import (
	"github.com/distcache/distcache/cluster"
	"github.com/distcache/distcache/internal/enginehook"
)

func init() {
	enginehook.Cluster = func(e any) *cluster.Cluster { return e.(*Engine).cl }
}
