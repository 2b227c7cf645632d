package kubernetes

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/distcache/distcache/discovery"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const ns = "shop"

// pod builds a Running, Ready pod labelled app=cache with a "gossip" port.
func pod(name, ip string, mutate ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": "cache"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app",
			Ports: []corev1.ContainerPort{
				{Name: "http", ContainerPort: 8080},
				{Name: "gossip", ContainerPort: 7946},
			},
		}}},
		Status: corev1.PodStatus{
			Phase:      corev1.PodRunning,
			PodIP:      ip,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		},
	}
	for _, m := range mutate {
		m(p)
	}
	return p
}

func notReady(p *corev1.Pod) { p.Status.Conditions[0].Status = corev1.ConditionFalse }

func testConfig(client *fake.Clientset) Config {
	cfg := DefaultConfig()
	cfg.Namespace = ns
	cfg.LabelSelector = "app=cache"
	cfg.PortName = "gossip"
	cfg.Client = client
	return cfg
}

func startProvider(t *testing.T, cfg Config) *Discovery {
	t.Helper()
	d, err := New(cfg)
	require.NoError(t, err)
	require.NoError(t, d.Start(context.Background(), discovery.Self{Name: "n1", Addr: "10.0.0.1:7946"}))
	t.Cleanup(func() { require.NoError(t, d.Stop(context.Background())) })
	return d
}

func discover(t *testing.T, d *Discovery) []string {
	t.Helper()
	got, err := d.DiscoverPeers(context.Background())
	require.NoError(t, err)
	return got
}

func TestPodsAppearAndDropOut(t *testing.T) {
	client := fake.NewClientset()
	d := startProvider(t, testConfig(client))
	ctx := context.Background()
	pods := client.CoreV1().Pods(ns)

	require.Empty(t, discover(t, d), "no pods yet: an empty list, not an error")

	_, err := pods.Create(ctx, pod("cache-1", "10.0.0.2"), metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = pods.Create(ctx, pod("cache-0", "10.0.0.1"), metav1.CreateOptions{})
	require.NoError(t, err)
	require.Equal(t, []string{"10.0.0.1:7946", "10.0.0.2:7946"}, discover(t, d))

	// cache-1 fails its readiness probe: it drops out.
	p, err := pods.Get(ctx, "cache-1", metav1.GetOptions{})
	require.NoError(t, err)
	notReady(p)
	_, err = pods.UpdateStatus(ctx, p, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.Equal(t, []string{"10.0.0.1:7946"}, discover(t, d))

	// ... and comes back when Ready again.
	p.Status.Conditions[0].Status = corev1.ConditionTrue
	_, err = pods.UpdateStatus(ctx, p, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.Equal(t, []string{"10.0.0.1:7946", "10.0.0.2:7946"}, discover(t, d))

	require.NoError(t, pods.Delete(ctx, "cache-0", metav1.DeleteOptions{}))
	require.Equal(t, []string{"10.0.0.2:7946"}, discover(t, d))
}

func TestOnlyEligiblePods(t *testing.T) {
	now := metav1.Now()
	objs := []runtime.Object{
		pod("ok", "10.0.0.1"),
		pod("ipv6", "fd00::5"),
		pod("not-ready", "10.0.0.2", notReady),
		pod("no-ready-condition", "10.0.0.3", func(p *corev1.Pod) { p.Status.Conditions = nil }),
		pod("pending", "10.0.0.4", func(p *corev1.Pod) { p.Status.Phase = corev1.PodPending }),
		pod("succeeded", "10.0.0.5", func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }),
		pod("no-ip", ""),
		pod("terminating", "10.0.0.6", func(p *corev1.Pod) {
			p.DeletionTimestamp = &now
			p.Finalizers = []string{"test/keep"}
		}),
		pod("other-app", "10.0.0.7", func(p *corev1.Pod) { p.Labels["app"] = "web" }),
		pod("other-namespace", "10.0.0.8", func(p *corev1.Pod) { p.Namespace = "other" }),
		pod("no-gossip-port", "10.0.0.9", func(p *corev1.Pod) { p.Spec.Containers[0].Ports = p.Spec.Containers[0].Ports[:1] }),
		pod("sidecar-port", "10.0.0.10", func(p *corev1.Pod) {
			always := corev1.ContainerRestartPolicyAlways
			p.Spec.InitContainers = []corev1.Container{{Name: "cache", RestartPolicy: &always, Ports: p.Spec.Containers[0].Ports}}
			p.Spec.Containers[0].Ports = nil
		}),
		pod("second-container", "10.0.0.11", func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "cache",
				Ports: []corev1.ContainerPort{{Name: "gossip", ContainerPort: 9000}}})
			p.Spec.Containers[0].Ports = nil
		}),
	}
	d := startProvider(t, testConfig(fake.NewClientset(objs...)))
	// Sorted as strings.
	require.Equal(t, []string{"10.0.0.10:7946", "10.0.0.11:9000", "10.0.0.1:7946", "[fd00::5]:7946"}, discover(t, d))
}

func TestMissingPortName(t *testing.T) {
	noPort := func(p *corev1.Pod) { p.Spec.Containers[0].Ports = nil }

	t.Run("skipped when another pod has it", func(t *testing.T) {
		d := startProvider(t, testConfig(fake.NewClientset(pod("a", "10.0.0.1"), pod("b", "10.0.0.2", noPort))))
		require.Equal(t, []string{"10.0.0.1:7946"}, discover(t, d))
	})
	t.Run("error when no pod has it", func(t *testing.T) {
		d := startProvider(t, testConfig(fake.NewClientset(pod("a", "10.0.0.1", noPort), pod("b", "10.0.0.2", noPort))))
		got, err := d.DiscoverPeers(context.Background())
		require.ErrorIs(t, err, ErrPortNotFound)
		require.ErrorContains(t, err, `"gossip"`)
		require.Nil(t, got)
	})
	t.Run("not-ready pods without it are not an error", func(t *testing.T) {
		d := startProvider(t, testConfig(fake.NewClientset(pod("a", "10.0.0.1", noPort, notReady))))
		require.Empty(t, discover(t, d))
	})
}

func TestListOptionsAndPagination(t *testing.T) {
	client := fake.NewClientset()
	var calls atomic.Int32
	var seen []metav1.ListOptions
	client.PrependReactor("list", "pods", func(action k8stesting.Action) (bool, runtime.Object, error) {
		opts := action.(k8stesting.ListActionImpl).ListOptions
		seen = append(seen, opts)
		calls.Add(1)
		switch opts.Continue {
		case "":
			return true, &corev1.PodList{ListMeta: metav1.ListMeta{Continue: "page2"}, Items: []corev1.Pod{*pod("a", "10.0.0.2")}}, nil
		case "page2":
			return true, &corev1.PodList{Items: []corev1.Pod{*pod("b", "10.0.0.1"), *pod("a", "10.0.0.2")}}, nil
		}
		return true, nil, apierrors.NewBadRequest("unknown continue token")
	})
	d := startProvider(t, testConfig(client))
	require.Equal(t, []string{"10.0.0.1:7946", "10.0.0.2:7946"}, discover(t, d), "both pages, de-duplicated")
	require.Len(t, seen, 3) // Start's check, then two pages
	for _, o := range seen {
		require.Equal(t, "app=cache", o.LabelSelector)
	}
	require.Equal(t, "status.phase=Running", seen[1].FieldSelector)
	require.Equal(t, int64(listPageSize), seen[1].Limit)
	require.Equal(t, "page2", seen[2].Continue)
}

func TestAPIErrors(t *testing.T) {
	forbidden := apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", nil)

	t.Run("start reports missing RBAC", func(t *testing.T) {
		client := fake.NewClientset()
		client.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, forbidden
		})
		d, err := New(testConfig(client))
		require.NoError(t, err)
		err = d.Start(context.Background(), discovery.Self{})
		require.True(t, apierrors.IsForbidden(err), "%v", err)
		require.ErrorContains(t, err, "RBAC")
		_, err = d.DiscoverPeers(context.Background())
		require.ErrorIs(t, err, discovery.ErrNotStarted, "a failed Start leaves it stopped")
	})
	t.Run("discover reports list errors", func(t *testing.T) {
		client := fake.NewClientset()
		d := startProvider(t, testConfig(client))
		client.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, forbidden
		})
		_, err := d.DiscoverPeers(context.Background())
		require.True(t, apierrors.IsForbidden(err), "%v", err)
		require.True(t, strings.HasPrefix(err.Error(), "kubernetes: "), err.Error())
	})
}

func TestLifecycle(t *testing.T) {
	d, err := New(testConfig(fake.NewClientset(pod("a", "10.0.0.1"))))
	require.NoError(t, err)
	ctx := context.Background()

	_, err = d.DiscoverPeers(ctx)
	require.ErrorIs(t, err, discovery.ErrNotStarted)
	require.NoError(t, d.Stop(ctx), "Stop before Start")

	require.NoError(t, d.Start(ctx, discovery.Self{}))
	require.ErrorIs(t, d.Start(ctx, discovery.Self{}), ErrAlreadyStarted)
	require.Equal(t, []string{"10.0.0.1:7946"}, discover(t, d))

	require.NoError(t, d.Stop(ctx))
	require.NoError(t, d.Stop(ctx), "Stop is idempotent")
	_, err = d.DiscoverPeers(ctx)
	require.ErrorIs(t, err, discovery.ErrNotStarted)

	require.NoError(t, d.Start(ctx, discovery.Self{}), "restart after Stop")
	require.Equal(t, []string{"10.0.0.1:7946"}, discover(t, d))
	require.NoError(t, d.Stop(ctx))

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	require.ErrorIs(t, d.Start(cctx, discovery.Self{}), context.Canceled)
	require.NoError(t, d.Start(ctx, discovery.Self{}))
	_, err = d.DiscoverPeers(cctx)
	require.ErrorIs(t, err, context.Canceled)
	require.NoError(t, d.Stop(ctx))
}

// fakeAPIServer serves GET /api/v1/namespaces/shop/pods with pods, as JSON,
// so that the kubeconfig path runs the real client-go HTTP client.
func fakeAPIServer(t *testing.T, pods ...*corev1.Pod) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/api/v1/namespaces/"+ns+"/pods" {
			http.NotFound(w, r)
			return
		}
		if r.URL.Query().Get("labelSelector") != "app=cache" {
			http.Error(w, "unexpected selector", http.StatusBadRequest)
			return
		}
		list := corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}}
		for _, p := range pods {
			list.Items = append(list.Items, *p)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(list)
	}))
	t.Cleanup(srv.Close) // also closes the client's idle connections
	return srv
}

func writeKubeconfig(t *testing.T, server string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := `apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: ` + server + `
users:
- name: test
  user:
    token: test-token
contexts:
- name: test
  context: {cluster: test, user: test, namespace: ` + ns + `}
- name: broken
  context: {cluster: missing, user: test}
current-context: test
`
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))
	return path
}

func TestKubeconfig(t *testing.T) {
	srv := fakeAPIServer(t, pod("a", "10.0.0.1"), pod("b", "10.0.0.2", notReady))
	path := writeKubeconfig(t, srv.URL)

	cfg := testConfig(nil)
	cfg.Client = nil

	t.Run("explicit path", func(t *testing.T) {
		c := cfg
		c.Kubeconfig = path
		d := startProvider(t, c)
		require.Equal(t, []string{"10.0.0.1:7946"}, discover(t, d))
	})
	t.Run("standard loading rules outside a cluster", func(t *testing.T) {
		t.Setenv("KUBERNETES_SERVICE_HOST", "") // not in a pod
		t.Setenv("KUBECONFIG", path)
		d := startProvider(t, cfg)
		require.Equal(t, []string{"10.0.0.1:7946"}, discover(t, d))
	})
	t.Run("missing file", func(t *testing.T) {
		c := cfg
		c.Kubeconfig = filepath.Join(t.TempDir(), "absent")
		d, err := New(c)
		require.NoError(t, err)
		require.ErrorContains(t, d.Start(context.Background(), discovery.Self{}), "kubernetes: kubeconfig")
	})
	t.Run("unknown context", func(t *testing.T) {
		c := cfg
		c.Kubeconfig = path
		c.Context = "broken"
		d, err := New(c)
		require.NoError(t, err)
		require.ErrorContains(t, d.Start(context.Background(), discovery.Self{}), "kubernetes: kubeconfig")
	})
}
