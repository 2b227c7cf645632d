package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/distcache/distcache/admin"
)

// Three nodes of the program find each other through the Kubernetes API (a
// fake clientset whose pods point at 127.0.0.1), form one cluster, serve a
// read through every node, and report ready on the probe's path.
func TestNodesFindEachOther(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset()
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	var nodes []*node
	t.Cleanup(func() {
		for _, n := range nodes {
			_ = n.stop(ctx)
		}
	})
	for i := range 3 {
		name := fmt.Sprintf("cache-%d", i)
		n, err := start(ctx, config{
			name: name, namespace: "shop", selector: defaultLabels,
			bindIP: "127.0.0.1", advertiseIP: "127.0.0.1", gossipPort: 0, httpAddr: "127.0.0.1:0",
			secret: secret, client: client, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
		// The pod appears in the API once it runs, as the kubelet would report it.
		_, port, _ := net.SplitHostPort(n.e.Addr())
		p, _ := strconv.Atoi(port)
		if _, err := client.CoreV1().Pods("shop").Create(ctx, readyPod(name, int32(p)), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, n := range nodes {
		for len(n.e.Members()) != 3 {
			if time.Now().After(deadline) {
				t.Fatalf("%s sees %d members, want 3", n.e.NodeName(), len(n.e.Members()))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for _, n := range nodes {
		for _, path := range []string{"/profiles/42", admin.DefaultBasePath + "/readyz"} {
			resp, err := http.Get("http://" + n.ln.Addr().String() + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s GET %s: %d", n.e.NodeName(), path, resp.StatusCode)
			}
		}
	}
}

func readyPod(name string, port int32) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", Labels: map[string]string{"app": "cache"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name:  "cache",
			Ports: []corev1.ContainerPort{{Name: gossipPortName, ContainerPort: port, Protocol: corev1.ProtocolTCP}},
		}}},
		Status: corev1.PodStatus{
			Phase:      corev1.PodRunning,
			PodIP:      "127.0.0.1",
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		},
	}
}
