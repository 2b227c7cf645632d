// Command service is a users microservice with distcache in front of its
// database, run as a cluster of three OS processes on this machine.
//
// Each process is one instance of the service: a JSON API over
// GET/PUT/DELETE /users/{id} (api.go), a SQLite database that all three
// share (store.go), one distcache engine (node.go) and the admin dashboard
// under /_distcache/admin/. Reads go through the cache; writes go to the
// database and then to the cache, as a write-through Put (PUT) or an
// invalidating Delete (DELETE).
//
//	go run ./examples/service          # start 3 nodes, print URLs and curl lines; Ctrl-C stops
//	go run ./examples/service -smoke   # check it end to end (kill -9 included) and exit
//	service node -name n1 -db users.db -gossip 10.0.0.1:7946 -peers 10.0.0.2:7946,...  # one node
//
// Without arguments the command creates a temporary directory, seeds
// users.db in it, and starts the nodes by re-executing itself with the node
// subcommand (launcher.go), each on 127.0.0.1 with ports picked free at run
// time. The nodes die with the launcher.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/distcache/distcache/admin"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "node" {
		if err := runNode(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "service node:", err)
			os.Exit(1)
		}
		return
	}
	smokeMode := flag.Bool("smoke", false, "check the example end to end and exit (0: passed)")
	users := flag.Int("users", 1000, "users to seed")
	verbose := flag.Bool("v", false, "nodes log at INFO")
	flag.Parse()
	var err error
	if *smokeMode {
		err = smoke(os.Stdout, *users, *verbose)
	} else {
		err = serve(*users, *verbose)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "service:", err)
		os.Exit(1)
	}
}

// serve starts the three nodes, prints how to use them, and stops them on
// Ctrl-C or SIGTERM.
func serve(users int, verbose bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	l, err := newLauncher(os.Stdout, users)
	if err != nil {
		return err
	}
	l.verbose = verbose
	var nodes []*child
	for _, n := range []string{"node-1", "node-2", "node-3"} {
		c, err := l.start(n)
		if err != nil {
			return fmt.Errorf("%w (stop: %v)", err, l.stop(15*time.Second))
		}
		nodes = append(nodes, c)
	}
	if err := waitMembers(nodes, 3, 20*time.Second); err != nil {
		return fmt.Errorf("%w (stop: %v)", err, l.stop(15*time.Second))
	}
	fmt.Printf("\n3 nodes share %s (%d users, SQLite in WAL mode)\n\n", l.dbPath, users)
	for _, c := range nodes {
		fmt.Printf("  %s  pid %d  API http://%s/users/{id}  dashboard http://%s%s/  gossip %s\n",
			c.name, c.cmd.Process.Pid, c.http, c.http, admin.DefaultBasePath, c.gossip)
	}
	a, b, c := nodes[0].http, nodes[1].http, nodes[2].http
	fmt.Printf(`
Try (any node answers for any user):
  curl -s http://%[1]s/users/42
  curl -s -X PUT -d '{"name":"Ada Lovelace","email":"ada@example.com"}' http://%[2]s/users/42
  curl -s http://%[3]s/users/42          # the new value: the PUT wrote through
  curl -s -X DELETE http://%[1]s/users/42
  curl -si http://%[2]s/users/42         # 404 on every node: the DELETE invalidated
  curl -s http://%[1]s%[4]s/keyspaces | head -c 600

Kill one node (kill -9 <pid>) and keep reading through the others. Ctrl-C stops all three.
`, a, b, c, admin.DefaultBasePath)
	<-ctx.Done()
	fmt.Println("\nstopping the nodes...")
	return l.stop(15 * time.Second)
}
