package main

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/distcache/distcache/admin"
)

// manifests are the objects of cache.yaml, by kind.
type manifests struct {
	sa      corev1.ServiceAccount
	role    rbacv1.Role
	binding rbacv1.RoleBinding
	svc     corev1.Service
	deploy  appsv1.Deployment
}

// loadManifests decodes cache.yaml strictly: an unknown or misspelt field
// is an error, as kubectl's server-side validation would make it.
func loadManifests(t *testing.T) manifests {
	t.Helper()
	raw, err := os.ReadFile("cache.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var m manifests
	seen := map[string]int{}
	for i, doc := range bytes.Split(raw, []byte("\n---\n")) {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		var into any
		switch tm.APIVersion + " " + tm.Kind {
		case "v1 ServiceAccount":
			into = &m.sa
		case "rbac.authorization.k8s.io/v1 Role":
			into = &m.role
		case "rbac.authorization.k8s.io/v1 RoleBinding":
			into = &m.binding
		case "v1 Service":
			into = &m.svc
		case "apps/v1 Deployment":
			into = &m.deploy
		default:
			t.Fatalf("document %d: unexpected %s %s", i, tm.APIVersion, tm.Kind)
		}
		if err := yaml.UnmarshalStrict(doc, into); err != nil {
			t.Fatalf("document %d (%s): %v", i, tm.Kind, err)
		}
		seen[tm.Kind]++
	}
	for _, k := range []string{"ServiceAccount", "Role", "RoleBinding", "Service", "Deployment"} {
		if seen[k] != 1 {
			t.Fatalf("cache.yaml has %d %s, want 1", seen[k], k)
		}
	}
	return m
}

// The manifests parse strictly, and their parts agree with each other and
// with the program: one namespace, a headless Service and a Deployment that
// select the pods the program's label selector lists, RBAC that lets the
// Deployment's service account list pods, the gossip port under the name
// discovery looks for, the downward-API environment the program reads, and
// probes on the admin endpoints.
func TestManifestsAgree(t *testing.T) {
	m := loadManifests(t)
	ns := m.deploy.Namespace
	for kind, got := range map[string]string{"ServiceAccount": m.sa.Namespace, "Role": m.role.Namespace,
		"RoleBinding": m.binding.Namespace, "Service": m.svc.Namespace} {
		if got != ns {
			t.Errorf("%s in namespace %q, Deployment in %q", kind, got, ns)
		}
	}

	// RBAC: the Deployment's account may list pods.
	pod := m.deploy.Spec.Template
	if pod.Spec.ServiceAccountName != m.sa.Name {
		t.Errorf("pods run as %q, ServiceAccount is %q", pod.Spec.ServiceAccountName, m.sa.Name)
	}
	if m.binding.RoleRef.Kind != "Role" || m.binding.RoleRef.Name != m.role.Name {
		t.Errorf("RoleBinding refers to %s %q, Role is %q", m.binding.RoleRef.Kind, m.binding.RoleRef.Name, m.role.Name)
	}
	if !slices.ContainsFunc(m.binding.Subjects, func(s rbacv1.Subject) bool {
		return s.Kind == "ServiceAccount" && s.Name == m.sa.Name && s.Namespace == ns
	}) {
		t.Errorf("RoleBinding does not bind ServiceAccount %s/%s", ns, m.sa.Name)
	}
	if !slices.ContainsFunc(m.role.Rules, func(r rbacv1.PolicyRule) bool {
		return slices.Contains(r.APIGroups, "") && slices.Contains(r.Resources, "pods") && slices.Contains(r.Verbs, "list")
	}) {
		t.Error("Role does not allow listing pods")
	}

	// Selection: the program's selector, the Deployment's and the Service's
	// all pick the pod template.
	podLabels := labels.Set(pod.Labels)
	sel, err := labels.Parse(defaultLabels)
	if err != nil || !sel.Matches(podLabels) {
		t.Errorf("selector %q (%v) does not match pod labels %v", defaultLabels, err, podLabels)
	}
	dsel, err := metav1.LabelSelectorAsSelector(m.deploy.Spec.Selector)
	if err != nil || !dsel.Matches(podLabels) {
		t.Errorf("Deployment selector (%v) does not match pod labels %v", err, podLabels)
	}
	if len(m.svc.Spec.Selector) == 0 || !labels.SelectorFromSet(m.svc.Spec.Selector).Matches(podLabels) {
		t.Errorf("Service selector %v does not match pod labels %v", m.svc.Spec.Selector, podLabels)
	}
	if m.svc.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("Service clusterIP %q, want None (headless)", m.svc.Spec.ClusterIP)
	}

	// The container: gossip port by name, environment, probes.
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	ports := map[string]corev1.ContainerPort{}
	for _, p := range c.Ports {
		ports[p.Name] = p
	}
	if p, ok := ports[gossipPortName]; !ok || p.ContainerPort != gossipPort || p.Protocol != corev1.ProtocolTCP {
		t.Errorf("container port %q = %+v, want TCP %d", gossipPortName, p, gossipPort)
	}
	if p, ok := ports["http"]; !ok || p.ContainerPort != httpPort {
		t.Errorf("container port http = %+v, want %d", p, httpPort)
	}
	if !slices.ContainsFunc(m.svc.Spec.Ports, func(p corev1.ServicePort) bool {
		return p.Name == gossipPortName && p.TargetPort.String() == gossipPortName
	}) {
		t.Errorf("Service has no port %q targeting the container port of that name", gossipPortName)
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	for name, field := range map[string]string{"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace", "POD_IP": "status.podIP"} {
		if e := env[name]; e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != field {
			t.Errorf("env %s must come from the downward API field %s", name, field)
		}
	}
	if e := env["GOSSIP_SECRET"]; e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
		t.Error("env GOSSIP_SECRET must come from a Secret")
	}
	if e := env["LABEL_SELECTOR"]; e.Value != defaultLabels {
		t.Errorf("env LABEL_SELECTOR = %q, want %q", e.Value, defaultLabels)
	}
	for probe, want := range map[*corev1.Probe]string{c.ReadinessProbe: "/readyz", c.LivenessProbe: "/healthz"} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != admin.DefaultBasePath+want || probe.HTTPGet.Port.String() != "http" {
			t.Errorf("probe %s: %+v", want, probe)
		}
	}
	if r := m.deploy.Spec.Replicas; r == nil || *r < 3 {
		t.Errorf("replicas %v, want >= 3", r)
	}
	fmt.Fprintf(testWriter{t}, "%s/%s: %d replicas, image %s", ns, m.deploy.Name, *m.deploy.Spec.Replicas, c.Image)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) { w.t.Log(string(b)); return len(b), nil }
