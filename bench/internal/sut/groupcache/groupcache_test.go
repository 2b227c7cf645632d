package groupcache

import (
	"testing"

	"github.com/distcache/distcache/bench/internal/sut/suttest"
	"go.uber.org/goleak"
)

func TestConformance(t *testing.T) { suttest.Run(t, New()) }

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
