// Package kubernetes is a discovery provider that finds peers by listing
// pods through the Kubernetes API (k8s.io/client-go). It lives in its own
// Go module so that the core distcache module never depends on client-go.
//
// # Mechanism
//
// Every call to [Discovery.DiscoverPeers] lists the pods of
// [Config.Namespace] that match [Config.LabelSelector] (server-side label
// and phase selectors, paginated), and keeps each pod that is
//
//   - in phase Running,
//   - Ready (its PodReady condition is True; a pod without the condition
//     is not ready),
//   - not terminating (no deletion timestamp), and
//   - assigned a pod IP.
//
// The peer address is "podIP:port", where port is the containerPort of the
// container port named [Config.PortName] in the pod spec (regular
// containers, then restartable init containers). Pods that lack the port
// are skipped and logged; when every eligible pod lacks it, DiscoverPeers
// returns [ErrPortNotFound], because that is a misconfiguration rather than
// an empty cluster. The result is sorted; no eligible pod is an empty list.
//
// Because only Ready pods are returned, a pod whose readiness probe fails
// drops out of discovery at the next poll. If the readiness probe depends
// on the cache having joined its peers, the first pods of a fresh
// deployment find nobody (an empty list) and start alone; gossip merges
// them once they become Ready and discover each other.
//
// The provider polls (one list per DiscoverPeers call) rather than keeping
// a watch: the engine already polls periodically, and a list holds no
// goroutine or connection between calls.
//
// # Configuration and RBAC
//
// The API server is reached through [Config.Client] when set (tests use
// k8s.io/client-go/kubernetes/fake), else a kubeconfig file
// ([Config.Kubeconfig], [Config.Context]), else the in-cluster service
// account, else the standard kubeconfig loading rules ($KUBECONFIG,
// ~/.kube/config). [Discovery.Start] lists once, so that a missing
// permission is reported at start. The service account needs a Role in the
// namespace granting get, list and watch on pods (this version calls only
// list); the README has the manifest.
//
// [Discovery.Start]'s self argument is ignored: the pod list is the
// registry. A provider can be started again after [Discovery.Stop].
package kubernetes
