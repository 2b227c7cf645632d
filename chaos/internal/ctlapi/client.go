package ctlapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Client makes calls on one node process through its control API.
type Client struct {
	base string
	hc   *http.Client
}

// NewClient returns a client of the node whose control API listens on addr
// (host:port). hc is shared by all clients so that connections are reused.
func NewClient(addr string, hc *http.Client) *Client {
	return &Client{base: "http://" + addr, hc: hc}
}

// Op runs op on the node's engine with the given context deadline. The
// error is non-nil only when the node did not answer (a transport failure,
// or ctx ended); engine errors come back in the OpResult.
func (c *Client) Op(ctx context.Context, op, key string, version uint64, timeout time.Duration) (OpResult, error) {
	q := url.Values{
		"op":         {op},
		"key":        {key},
		"version":    {strconv.FormatUint(version, 10)},
		"timeout_ms": {strconv.FormatInt(timeout.Milliseconds(), 10)},
	}
	var res OpResult
	err := c.do(ctx, PathOp+"?"+q.Encode(), &res)
	return res, err
}

// Status reads the node's ring and counters.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.do(ctx, PathStatus, &st)
	return st, err
}

func (c *Client) do(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", path, resp.Status, body)
	}
	return json.Unmarshal(body, out)
}
