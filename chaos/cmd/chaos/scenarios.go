package main

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// scenario is one fault: inject begins it, end ends it (restart, SIGCONT,
// heal) after its duration.
type scenario struct {
	name string
	// about describes the fault for reports.
	about string
	// netns: the nodes run in network namespaces (the partition needs it).
	netns bool
	// minority are the nodes cut off by a partition.
	minority []int
	// nodeArgs are extra chaosnode flags for every node of the scenario.
	nodeArgs []string
	// lossless: the fault must lose no acknowledged write (check.Input).
	lossless bool
	duration func(*config) time.Duration
	inject   func(context.Context, *cluster) error
	end      func(context.Context, *cluster) error
	// run, when set, runs a scenario of its own shape instead of the
	// steady, fault and recovery phases (refresh).
	run func(*env, context.Context, scenario) outcome
}

// The node that single-node faults hit, and the pair of kill-two. Fixed, so
// runs are comparable.
const (
	victim     = 2
	victimB    = 4
	durKill    = 10 * time.Second
	durStopLng = 8 * time.Second // longer than the LAN failure detection (~5 s)
	durStopSht = 2 * time.Second // shorter than it
)

func scenarios() []scenario {
	fixed := func(d time.Duration) func(*config) time.Duration { return func(*config) time.Duration { return d } }
	both := func(f func(int) error) func(context.Context, *cluster) error {
		return func(_ context.Context, c *cluster) error { return errors.Join(f(victim), f(victimB)) }
	}
	return []scenario{
		{
			name: "kill", about: fmt.Sprintf("SIGKILL node-%d, restart after %s (same name and address)", victim, durKill),
			duration: fixed(durKill),
			inject:   func(ctx context.Context, c *cluster) error { return c.kill(ctx, victim) },
			end:      func(ctx context.Context, c *cluster) error { return c.restart(ctx, victim) },
		},
		{
			name: "kill-replicas", about: fmt.Sprintf("SIGKILL node-%d with two copies of each entry (-replicas 2), restart after %s", victim, durKill),
			nodeArgs: []string{"-replicas", "2"}, lossless: true,
			duration: fixed(durKill),
			inject:   func(ctx context.Context, c *cluster) error { return c.kill(ctx, victim) },
			end:      func(ctx context.Context, c *cluster) error { return c.restart(ctx, victim) },
		},
		{
			name: "kill-two", about: fmt.Sprintf("SIGKILL node-%d and node-%d at once, restart both after %s", victim, victimB, durKill),
			duration: fixed(durKill),
			inject: func(ctx context.Context, c *cluster) error {
				return both(func(i int) error { return c.kill(ctx, i) })(ctx, c)
			},
			end: func(ctx context.Context, c *cluster) error {
				return both(func(i int) error { return c.restart(ctx, i) })(ctx, c)
			},
		},
		{
			name: "stop-long", about: fmt.Sprintf("SIGSTOP node-%d for %s (longer than failure detection), then SIGCONT", victim, durStopLng),
			duration: fixed(durStopLng),
			inject:   func(_ context.Context, c *cluster) error { return c.pause(victim) },
			end:      func(_ context.Context, c *cluster) error { return c.resume(victim) },
		},
		{
			name: "stop-short", about: fmt.Sprintf("SIGSTOP node-%d for %s (shorter than failure detection), then SIGCONT", victim, durStopSht),
			duration: fixed(durStopSht),
			inject:   func(_ context.Context, c *cluster) error { return c.pause(victim) },
			end:      func(_ context.Context, c *cluster) error { return c.resume(victim) },
		},
		{
			name: "term", about: fmt.Sprintf("SIGTERM node-%d (graceful leave), restart when the phase ends", victim),
			lossless: true,
			duration: func(cfg *config) time.Duration { return cfg.termFor },
			inject:   func(ctx context.Context, c *cluster) error { return c.terminate(ctx, victim) },
			end:      func(ctx context.Context, c *cluster) error { return c.restart(ctx, victim) },
		},
		{
			name: "partition", about: "partition node-3 and node-4 from the other three (network namespaces), then heal",
			netns: true, minority: []int{3, 4},
			duration: func(cfg *config) time.Duration { return cfg.partitionFor },
			inject:   func(ctx context.Context, c *cluster) error { return c.net.Partition(ctx, []int{3, 4}) },
			end:      func(ctx context.Context, c *cluster) error { return c.net.Heal(ctx) },
		},
		refreshScenario(),
	}
}
