package kubernetes

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	k8s "k8s.io/client-go/kubernetes"
)

// DefaultTimeout bounds one Kubernetes API call when Config.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// ErrInvalidConfig is wrapped by every error that Config.Validate returns.
var ErrInvalidConfig = errors.New("kubernetes: invalid config")

// Config selects the pods that form the cluster and how to reach the API
// server. Namespace, LabelSelector and PortName are required.
type Config struct {
	// Namespace holds the pods, e.g. from the downward API
	// (fieldRef: metadata.namespace). Required; a DNS-1123 label.
	Namespace string

	// LabelSelector selects the cluster's pods, in kubectl syntax, e.g.
	// "app=orders,distcache in (enabled)". Required: an empty selector
	// would select every pod in the namespace.
	LabelSelector string

	// PortName is the name of the container port that carries the gossip
	// port (spec.containers[].ports[].name), e.g. "gossip". Required; an
	// IANA service name (at most 15 lowercase letters, digits and '-').
	PortName string

	// Kubeconfig is the path of a kubeconfig file. Empty (the default) means
	// the in-cluster configuration (service account) when running in a pod,
	// otherwise the standard loading rules ($KUBECONFIG, ~/.kube/config).
	Kubeconfig string

	// Context is the kubeconfig context to use. Empty (the default) means
	// the file's current context. Ignored in-cluster.
	Context string

	// Client, when set, is used instead of building a client from the
	// configuration above (tests use k8s.io/client-go/kubernetes/fake;
	// applications may share their own clientset). Mutually exclusive with
	// Kubeconfig and Context.
	Client k8s.Interface

	// Timeout bounds each API call (the Start check and each DiscoverPeers
	// list); the caller's context can end it sooner. Zero means
	// DefaultTimeout (10s); negative values are invalid.
	Timeout time.Duration

	// Logger receives pods skipped for a missing port. Nil means discard.
	Logger *slog.Logger
}

// DefaultConfig returns a Config with defaults filled in; Namespace,
// LabelSelector and PortName must still be set.
func DefaultConfig() Config {
	return Config{Timeout: DefaultTimeout}
}

// Validate reports the first problem in c, wrapped in ErrInvalidConfig.
func (c Config) Validate() error {
	if c.Namespace == "" {
		return fmt.Errorf("%w: Namespace is empty", ErrInvalidConfig)
	}
	if errs := validation.IsDNS1123Label(c.Namespace); len(errs) > 0 {
		return fmt.Errorf("%w: Namespace %q: %s", ErrInvalidConfig, c.Namespace, strings.Join(errs, "; "))
	}
	if strings.TrimSpace(c.LabelSelector) == "" {
		return fmt.Errorf("%w: LabelSelector is empty (it would select every pod in the namespace)", ErrInvalidConfig)
	}
	sel, err := labels.Parse(c.LabelSelector)
	if err != nil {
		return fmt.Errorf("%w: LabelSelector %q: %w", ErrInvalidConfig, c.LabelSelector, err)
	}
	if sel.Empty() {
		return fmt.Errorf("%w: LabelSelector %q selects every pod", ErrInvalidConfig, c.LabelSelector)
	}
	if c.PortName == "" {
		return fmt.Errorf("%w: PortName is empty", ErrInvalidConfig)
	}
	if errs := validation.IsValidPortName(c.PortName); len(errs) > 0 {
		return fmt.Errorf("%w: PortName %q: %s", ErrInvalidConfig, c.PortName, strings.Join(errs, "; "))
	}
	if c.Client != nil && (c.Kubeconfig != "" || c.Context != "") {
		return fmt.Errorf("%w: set Client or Kubeconfig/Context, not both", ErrInvalidConfig)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("%w: Timeout %v is negative (0 means %v)", ErrInvalidConfig, c.Timeout, DefaultTimeout)
	}
	return nil
}
