// Package netns builds the network the partition scenario needs: one
// network namespace per node, each with two veth pairs into the root
// namespace. The data side (eth0, 10.213.X.i+1/24) plugs into a "main"
// bridge: nodes gossip and call each other there. The control side (ctl0,
// 10.214.X.i+1/24) plugs into a control bridge that also carries the
// driver's address 10.214.X.254, so the driver reaches every node whatever
// the data network does.
//
// A partition moves the minority's data veths to a second, empty bridge:
// the minority still reaches each other, and frames to the other side are
// silently lost (as on a real network: no error, only timeouts), without
// iptables. Heal moves them back. Everything is named after the driver's
// pid; Close removes it all, and CleanStale removes what a driver killed
// before its cleanup left behind.
//
// It needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) and iproute2.
package netns

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// nsPrefix starts every namespace this package creates: nsPrefix + pid + "-" + i.
const nsPrefix = "dcchaos"

// linkPrefix starts every root-namespace link: linkPrefix + pid + role
// (+ node index). Interface names are limited to 15 bytes.
const linkPrefix = "dcc"

// Net is the network of one scenario run.
type Net struct {
	pid    int
	octet  int // X in 10.213.X.0/24 and 10.214.X.0/24
	n      int
	parted []int
}

// Check reports why namespaces cannot be built here (nil: they can).
func Check() error {
	if os.Geteuid() != 0 {
		return errors.New("network namespaces need root (run the driver as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("network namespaces need iproute2's ip command (apt-get install iproute2)")
	}
	return nil
}

// Create builds n namespaces and the bridges.
func Create(ctx context.Context, n int) (net *Net, err error) {
	if err := Check(); err != nil {
		return nil, err
	}
	if n < 1 || n > 250 {
		return nil, fmt.Errorf("netns: %d nodes: want 1..250", n)
	}
	octet, err := freeOctet(ctx, os.Getpid())
	if err != nil {
		return nil, err
	}
	net = &Net{pid: os.Getpid(), octet: octet, n: n}
	defer func() {
		if err != nil {
			_ = net.Close()
			net = nil
		}
	}()
	for _, br := range []string{net.link("m"), net.link("p"), net.link("c")} {
		if err := ip(ctx, "link", "add", br, "type", "bridge"); err != nil {
			return net, err
		}
		if err := ip(ctx, "link", "set", br, "up"); err != nil {
			return net, err
		}
	}
	if err := ip(ctx, "addr", "add", fmt.Sprintf("10.214.%d.254/24", octet), "dev", net.link("c")); err != nil {
		return net, err
	}
	for i := range n {
		ns := net.NS(i)
		steps := [][]string{
			{"netns", "add", ns},
			{"-n", ns, "link", "set", "lo", "up"},
			{"link", "add", net.link("d" + strconv.Itoa(i)), "type", "veth", "peer", "name", "eth0", "netns", ns},
			{"link", "add", net.link("c" + strconv.Itoa(i)), "type", "veth", "peer", "name", "ctl0", "netns", ns},
			{"link", "set", net.link("d" + strconv.Itoa(i)), "master", net.link("m"), "up"},
			{"link", "set", net.link("c" + strconv.Itoa(i)), "master", net.link("c"), "up"},
			{"-n", ns, "addr", "add", net.DataIP(i) + "/24", "dev", "eth0"},
			{"-n", ns, "addr", "add", net.ControlIP(i) + "/24", "dev", "ctl0"},
			{"-n", ns, "link", "set", "eth0", "up"},
			{"-n", ns, "link", "set", "ctl0", "up"},
		}
		for _, s := range steps {
			if err := ip(ctx, s...); err != nil {
				return net, err
			}
		}
	}
	return net, nil
}

// NS is node i's namespace.
func (n *Net) NS(i int) string { return fmt.Sprintf("%s%d-%d", nsPrefix, n.pid, i) }

// DataIP is node i's gossip/data address.
func (n *Net) DataIP(i int) string { return fmt.Sprintf("10.213.%d.%d", n.octet, i+1) }

// ControlIP is node i's control-API address.
func (n *Net) ControlIP(i int) string { return fmt.Sprintf("10.214.%d.%d", n.octet, i+1) }

func (n *Net) link(role string) string { return fmt.Sprintf("%s%d%s", linkPrefix, n.pid, role) }

// Partition cuts the given nodes off from the others (they still reach
// each other and the driver).
func (n *Net) Partition(ctx context.Context, minority []int) error {
	for _, i := range minority {
		if err := ip(ctx, "link", "set", n.link("d"+strconv.Itoa(i)), "master", n.link("p")); err != nil {
			return err
		}
		n.parted = append(n.parted, i)
	}
	return nil
}

// Heal undoes Partition.
func (n *Net) Heal(ctx context.Context) error {
	var errs []error
	for _, i := range n.parted {
		errs = append(errs, ip(ctx, "link", "set", n.link("d"+strconv.Itoa(i)), "master", n.link("m")))
	}
	n.parted = nil
	return errors.Join(errs...)
}

// Close deletes the namespaces (which deletes their veths) and the bridges.
func (n *Net) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return removeAll(ctx, n.pid)
}

// CleanStale removes the namespaces and links of drivers that are no
// longer running (killed before they could clean up).
func CleanStale(ctx context.Context) error {
	if Check() != nil {
		return nil
	}
	out, err := ipOut(ctx, "netns", "list")
	if err != nil {
		return err
	}
	dead := map[int]bool{}
	for line := range strings.Lines(out) {
		if pid, ok := ownerPid(strings.Fields(line + " ")[0]); ok && !alive(pid) {
			dead[pid] = true
		}
	}
	links, err := ipOut(ctx, "-o", "link", "show")
	if err != nil {
		return err
	}
	for line := range strings.Lines(links) {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		if pid, _, ok := linkOwner(name); ok && !alive(pid) {
			dead[pid] = true
		}
	}
	var errs []error
	for pid := range dead {
		errs = append(errs, removeAll(ctx, pid))
	}
	return errors.Join(errs...)
}

// ownerPid parses the driver pid out of one of our namespace names.
func ownerPid(ns string) (int, bool) {
	rest, ok := strings.CutPrefix(ns, nsPrefix)
	if !ok {
		return 0, false
	}
	pidStr, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(pidStr)
	return pid, err == nil
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// removeAll deletes every namespace and bridge of driver pid.
func removeAll(ctx context.Context, pid int) error {
	var errs []error
	out, err := ipOut(ctx, "netns", "list")
	if err != nil {
		return err
	}
	for line := range strings.Lines(out) {
		name := strings.Fields(line + " ")[0]
		if p, ok := ownerPid(name); ok && p == pid {
			errs = append(errs, ip(ctx, "netns", "del", name))
		}
	}
	// Deleting a namespace does not always delete its veths at once: a
	// killed node's sockets to a partitioned peer keep the namespace alive
	// until they time out. Delete every link of ours explicitly (deleting
	// one end of a veth deletes both), bridges last.
	links, err := ipOut(ctx, "-o", "link", "show")
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	var bridges []string
	for line := range strings.Lines(links) {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		p, role, ok := linkOwner(name)
		if !ok || p != pid {
			continue
		}
		if len(role) == 1 { // a bridge: m, p or c
			bridges = append(bridges, name)
			continue
		}
		if err := ip(ctx, "link", "del", name); err != nil && ip(ctx, "link", "show", name) == nil {
			errs = append(errs, err) // still there: not deleted with its peer
		}
	}
	for _, br := range bridges {
		errs = append(errs, ip(ctx, "link", "del", br))
	}
	return errors.Join(errs...)
}

// linkOwner parses one of our root-namespace link names: linkPrefix, the
// driver's pid, then a role (m, p, c for bridges; d<i>, c<i> for veths).
func linkOwner(name string) (pid int, role string, ok bool) {
	rest, ok := strings.CutPrefix(name, linkPrefix)
	if !ok {
		return 0, "", false
	}
	i := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
	if i <= 0 || !strings.ContainsAny(rest[i:i+1], "mpcd") {
		return 0, "", false
	}
	pid, err := strconv.Atoi(rest[:i])
	return pid, rest[i:], err == nil
}

// freeOctet picks X for 10.213.X.0/24 and 10.214.X.0/24 from the pid,
// skipping values whose subnets already appear on this host (another
// driver running).
func freeOctet(ctx context.Context, pid int) (int, error) {
	out, err := ipOut(ctx, "-o", "addr", "show")
	if err != nil {
		return 0, err
	}
	routes, err := ipOut(ctx, "route", "show")
	if err != nil {
		return 0, err
	}
	used := out + routes
	for k := range 250 {
		x := 1 + (pid+k)%250
		if !strings.Contains(used, fmt.Sprintf("10.213.%d.", x)) && !strings.Contains(used, fmt.Sprintf("10.214.%d.", x)) {
			return x, nil
		}
	}
	return 0, errors.New("netns: no free 10.213.X.0/24 subnet")
}

func ip(ctx context.Context, args ...string) error {
	_, err := ipOut(ctx, args...)
	return err
}

func ipOut(ctx context.Context, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "ip", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
