package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/distcache/distcache/admin"
)

// smoke checks the example end to end and returns an error on the first
// thing that is wrong: three node processes serve correct reads through
// every node; a write-through PUT and an invalidating DELETE on one node
// are seen on the others; after kill -9 of one node every read through the
// others still succeeds, and writes work again once the ring drops it; the
// node restarts under its name and serves; a graceful stop leaves no child.
func smoke(out io.Writer, users int, verbose bool) (err error) {
	start := time.Now()
	step := func(format string, args ...any) {
		fmt.Fprintf(out, "smoke %5.1fs  %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	l, err := newLauncher(out, users)
	if err != nil {
		return err
	}
	l.verbose = verbose
	defer func() {
		if serr := l.stop(15 * time.Second); serr != nil && err == nil {
			err = serr
		}
	}()
	names := []string{"node-1", "node-2", "node-3"}
	for _, n := range names {
		if _, err := l.start(n); err != nil {
			return err
		}
	}
	if err := waitMembers(l.running(), 3, 20*time.Second); err != nil {
		return err
	}
	step("3 node processes up, one ring")

	want := map[string]string{} // id -> expected name; "" means 404
	for i := 1; i <= min(users, 100); i++ {
		want[strconv.Itoa(i)] = fmt.Sprintf("User %d", i)
	}
	if n, err := checkReads(l.running(), want); err != nil {
		return err
	} else {
		step("%d reads through every node, all correct", n)
	}

	a, b, c := l.children["node-1"], l.children["node-2"], l.children["node-3"]
	if err := putUser(a.http, "7", "Ada Lovelace"); err != nil {
		return err
	}
	want["7"] = "Ada Lovelace"
	if err := deleteUser(b.http, "8"); err != nil {
		return err
	}
	want["8"] = ""
	if err := putUser(c.http, "5000", "Grace Hopper"); err != nil {
		return err
	}
	want["5000"] = "Grace Hopper"
	if _, err := checkReads(l.running(), want); err != nil {
		return err
	}
	step("write-through PUT, invalidating DELETE and a create, seen on every node")

	if err := l.kill("node-2"); err != nil {
		return err
	}
	step("node-2 killed with SIGKILL")
	survivors := l.running()
	reads, converged := 0, false
	deadline := time.Now().Add(30 * time.Second)
	for !converged {
		if time.Now().After(deadline) {
			return fmt.Errorf("the survivors did not drop node-2 from the ring in 30s")
		}
		converged = membersAre(survivors, 2) // read before the round: one full round after
		n, err := checkReads(survivors, want)
		if err != nil {
			return fmt.Errorf("after kill -9: %w", err)
		}
		reads += n
	}
	step("%d reads through the survivors while the ring dropped node-2, all correct", reads)
	if err := putUser(a.http, "9", "Barbara Liskov"); err != nil {
		return fmt.Errorf("write after the ring dropped node-2: %w", err)
	}
	want["9"] = "Barbara Liskov"
	if _, err := checkReads(survivors, want); err != nil {
		return err
	}
	step("writes work on the two survivors")

	if _, err := l.start("node-2"); err != nil {
		return err
	}
	if err := waitMembers(l.running(), 3, 20*time.Second); err != nil {
		return err
	}
	if n, err := checkReads(l.running(), want); err != nil {
		return fmt.Errorf("after restart: %w", err)
	} else {
		step("node-2 restarted under its name; %d reads through every node, all correct", n)
	}

	if err := l.stop(15 * time.Second); err != nil {
		return err
	}
	step("graceful stop: every node exited cleanly, no child process left")
	if el := time.Since(start); el > smokeBudget {
		return fmt.Errorf("the smoke run took %v, over its %v budget", el.Round(time.Second), smokeBudget)
	}
	return nil
}

// smokeBudget is how long a healthy smoke run may take (about 12 s on a
// 2-core machine); a slower one means something waited on a timeout.
const smokeBudget = 60 * time.Second

var client = &http.Client{Timeout: 5 * time.Second}

// checkReads GETs every id of want through every node and compares.
func checkReads(nodes []*child, want map[string]string) (int, error) {
	n := 0
	for _, c := range nodes {
		for id, name := range want {
			resp, err := client.Get("http://" + c.http + "/users/" + id)
			if err != nil {
				return n, fmt.Errorf("GET /users/%s on %s: %w", id, c.name, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			n++
			if name == "" {
				if resp.StatusCode != http.StatusNotFound {
					return n, fmt.Errorf("GET /users/%s on %s: %d %s, want 404", id, c.name, resp.StatusCode, body)
				}
				continue
			}
			var u User
			if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &u) != nil || u.Name != name {
				return n, fmt.Errorf("GET /users/%s on %s: %d %s, want name %q", id, c.name, resp.StatusCode, body, name)
			}
		}
	}
	return n, nil
}

func putUser(node, id, name string) error {
	body, _ := json.Marshal(User{Name: name, Email: id + "@example.com"})
	req, _ := http.NewRequest(http.MethodPut, "http://"+node+"/users/"+id, bytes.NewReader(body))
	return expect(req, http.StatusOK)
}

func deleteUser(node, id string) error {
	req, _ := http.NewRequest(http.MethodDelete, "http://"+node+"/users/"+id, nil)
	return expect(req, http.StatusNoContent)
}

func expect(req *http.Request, status int) error {
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != status {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s %s: %d %s, want %d", req.Method, req.URL, resp.StatusCode, b, status)
	}
	return nil
}

// membersAre reports whether every node's ring has n members, asking its
// admin endpoint.
func membersAre(nodes []*child, n int) bool {
	for _, c := range nodes {
		resp, err := client.Get("http://" + c.http + admin.DefaultBasePath + "/peers")
		if err != nil {
			return false
		}
		var peers []admin.Peer
		err = json.NewDecoder(resp.Body).Decode(&peers)
		resp.Body.Close()
		if err != nil || len(peers) != n {
			return false
		}
	}
	return true
}

// waitMembers polls until every node's ring has n members.
func waitMembers(nodes []*child, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for !membersAre(nodes, n) {
		if time.Now().After(deadline) {
			return fmt.Errorf("the nodes did not form a ring of %d in %v", n, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}
