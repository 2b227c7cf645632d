package membership

import (
	"context"
	"testing"
	"time"

	"github.com/distcache/distcache/internal/testcert"
	"github.com/distcache/distcache/internal/transport"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestClusterCallOverMutualTLS(t *testing.T) {
	t.Parallel()
	server, client := testcert.MutualTLS(t)
	nodes := startCluster(t, "tls", 2, func(c *Config) {
		c.ServerTLS, c.ClientTLS = server, client
		c.Handler = transport.HandlerFunc(func(_ context.Context, req transport.Request) transport.Response {
			return transport.Response{Payload: append([]byte("tls:"), req.Payload...)}
		})
	})
	resp, err := nodes[0].Call(t.Context(), nodes[1].Self(), transport.Request{Payload: []byte("hi")})
	require.NoError(t, err)
	assert.Equal(t, "tls:hi", string(resp.Payload))

	// A node without TLS cannot call a TLS node.
	plain := startNode(t, testConfig("tls-plain"))
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	_, err = plain.Call(ctx, nodes[1].Self(), transport.Request{Payload: []byte("hi")})
	require.Error(t, err)
}
