package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8s "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/distcache/distcache/discovery"
)

var (
	// ErrAlreadyStarted is returned by Start when the provider is already
	// started. Stop it first; a stopped provider may be started again.
	ErrAlreadyStarted = errors.New("kubernetes: provider already started")

	// ErrPortNotFound is returned by DiscoverPeers when Running and Ready
	// pods match the selector but none of them has a container port named
	// Config.PortName (a misconfiguration). Pods without the port are
	// skipped silently (logged) as long as at least one pod has it, so that
	// a rolling update that adds the port works.
	ErrPortNotFound = errors.New("kubernetes: no selected pod has the named port")
)

// listPageSize is the page size of pod lists (continue tokens follow).
const listPageSize = 500

// Discovery lists the cluster's pods through the Kubernetes API. Create it
// with New; it is safe for concurrent use.
type Discovery struct {
	cfg    Config
	logger *slog.Logger

	mu     sync.Mutex // guards client; held by Start for its duration
	client k8s.Interface
}

var _ discovery.Provider = (*Discovery)(nil)

// New validates cfg and returns a provider. cfg is copied; a zero Timeout
// takes its default. New does not contact the API server: Start does.
func New(cfg Config) (*Discovery, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Discovery{cfg: cfg, logger: logger}, nil
}

// Start builds the client (unless Config.Client is set) and checks that it
// may list pods in the namespace, so that a missing RBAC permission or an
// unreachable API server is an error here rather than later. self is
// ignored: Kubernetes itself is the registry.
func (d *Discovery) Start(ctx context.Context, _ discovery.Self) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("kubernetes: start: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.client != nil {
		return ErrAlreadyStarted
	}
	client := d.cfg.Client
	if client == nil {
		rc, err := restConfig(d.cfg)
		if err != nil {
			return err
		}
		if client, err = k8s.NewForConfig(rc); err != nil {
			return fmt.Errorf("kubernetes: client: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	if _, err := client.CoreV1().Pods(d.cfg.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: d.cfg.LabelSelector,
		Limit:         1,
	}); err != nil {
		return fmt.Errorf("kubernetes: start: list pods in namespace %q (RBAC needs get/list/watch on pods): %w", d.cfg.Namespace, err)
	}
	d.client = client
	return nil
}

// restConfig resolves the API server configuration: an explicit kubeconfig
// or context, else in-cluster, else the standard kubeconfig loading rules.
func restConfig(cfg Config) (*rest.Config, error) {
	if cfg.Kubeconfig == "" && cfg.Context == "" {
		rc, err := rest.InClusterConfig()
		if err == nil {
			return rc, nil
		}
		if !errors.Is(err, rest.ErrNotInCluster) {
			return nil, fmt.Errorf("kubernetes: in-cluster config: %w", err)
		}
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if cfg.Kubeconfig != "" {
		rules.ExplicitPath = cfg.Kubeconfig
	}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: cfg.Context}
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubernetes: kubeconfig: %w", err)
	}
	return rc, nil
}

// Stop forgets the client. It is idempotent. The provider starts no
// goroutines; HTTP connections belong to client-go's shared transports.
func (d *Discovery) Stop(context.Context) error {
	d.mu.Lock()
	d.client = nil
	d.mu.Unlock()
	return nil
}

// DiscoverPeers lists the selected pods and returns "podIP:port" for each
// pod that is Running, Ready, not terminating and has a pod IP, with the
// port taken from its container port named Config.PortName. The result is
// sorted; no matching pod is an empty list, not an error.
func (d *Discovery) DiscoverPeers(ctx context.Context) ([]string, error) {
	d.mu.Lock()
	client := d.client
	d.mu.Unlock()
	if client == nil {
		return nil, fmt.Errorf("kubernetes: %w", discovery.ErrNotStarted)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("kubernetes: discover: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()

	var peers []string
	missingPort := 0
	opts := metav1.ListOptions{
		LabelSelector: d.cfg.LabelSelector,
		FieldSelector: "status.phase=Running",
		Limit:         listPageSize,
	}
	for {
		list, err := client.CoreV1().Pods(d.cfg.Namespace).List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("kubernetes: list pods in namespace %q: %w", d.cfg.Namespace, err)
		}
		for i := range list.Items {
			pod := &list.Items[i]
			if !eligible(pod) {
				continue
			}
			port, ok := namedPort(pod, d.cfg.PortName)
			if !ok {
				missingPort++
				d.logger.Warn("kubernetes: pod has no container port with the configured name; skipped",
					"pod", pod.Name, "namespace", pod.Namespace, "port_name", d.cfg.PortName)
				continue
			}
			peers = append(peers, net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(int(port))))
		}
		if list.Continue == "" {
			break
		}
		opts.Continue = list.Continue
	}
	if len(peers) == 0 && missingPort > 0 {
		return nil, fmt.Errorf("%w: %d Running and Ready pod(s) match %q in namespace %q but none has a container port named %q",
			ErrPortNotFound, missingPort, d.cfg.LabelSelector, d.cfg.Namespace, d.cfg.PortName)
	}
	slices.Sort(peers)
	return slices.Compact(peers), nil
}

// eligible reports whether pod can take part: Running, Ready, not being
// deleted, with an IP.
func eligible(pod *corev1.Pod) bool {
	if pod.DeletionTimestamp != nil || pod.Status.Phase != corev1.PodRunning || pod.Status.PodIP == "" {
		return false
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// namedPort returns the container port called name, looking at the
// containers and at restartable init containers (native sidecars).
func namedPort(pod *corev1.Pod, name string) (int32, bool) {
	for _, c := range pod.Spec.Containers {
		if p, ok := portIn(c, name); ok {
			return p, true
		}
	}
	for _, c := range pod.Spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			if p, ok := portIn(c, name); ok {
				return p, true
			}
		}
	}
	return 0, false
}

func portIn(c corev1.Container, name string) (int32, bool) {
	for _, p := range c.Ports {
		if p.Name == name && p.ContainerPort > 0 {
			return p.ContainerPort, true
		}
	}
	return 0, false
}
