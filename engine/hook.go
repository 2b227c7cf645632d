package engine

import (
	"github.com/distcache/distcache/internal/enginehook"
	"github.com/distcache/distcache/internal/membership"
)

func init() {
	enginehook.Cluster = func(e any) *membership.Cluster { return e.(*Engine).cl }
}
