package distcache

import (
	"testing"

	"github.com/distcache/distcache/bench/internal/sut/suttest"
	"github.com/distcache/distcache/testutil"
)

func TestConformance(t *testing.T) { suttest.Run(t, New("conformance-"+t.Name())) }

func TestMain(m *testing.M) { testutil.VerifyTestMain(m) }
