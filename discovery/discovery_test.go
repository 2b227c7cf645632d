package discovery

import (
	"context"
	"testing"
)

func TestProviderFunc(t *testing.T) {
	var p Provider = ProviderFunc(func(context.Context) ([]string, error) { return []string{"a:1"}, nil })
	if err := p.Start(context.Background(), Self{}); err != nil {
		t.Fatal(err)
	}
	got, err := p.DiscoverPeers(context.Background())
	if err != nil || len(got) != 1 || got[0] != "a:1" {
		t.Fatalf("got %v, %v", got, err)
	}
	if err := p.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}
