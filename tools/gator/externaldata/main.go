// Command externaldata evaluates objects against ConstraintTemplates and Constraints with Gatekeeper's own
// engine, as `gator test` does, with Gatekeeper's external data enabled: the Provider objects among the
// inputs are registered (their URL, timeout and caBundle), so a template's external_data call reaches its
// provider over HTTPS through Gatekeeper's own client (TLS 1.3, the caBundle as the only root, the
// client certificate given with -client-cert and -client-key).
//
// Usage: externaldata [-client-cert FILE -client-key FILE] -f FILE_OR_DIR...
//
// Prints one JSON line per violation ({"constraint", "kind", "name", "namespace", "message",
// "enforcementAction"}) and exits 0; 1 when the inputs cannot be read or evaluated.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/open-policy-agent/frameworks/constraint/pkg/apis/externaldata/unversioned"
	constraintclient "github.com/open-policy-agent/frameworks/constraint/pkg/client"
	"github.com/open-policy-agent/frameworks/constraint/pkg/client/drivers/rego"
	"github.com/open-policy-agent/frameworks/constraint/pkg/externaldata"
	"github.com/open-policy-agent/gatekeeper/v3/pkg/gator"
	"github.com/open-policy-agent/gatekeeper/v3/pkg/gator/reader"
	"github.com/open-policy-agent/gatekeeper/v3/pkg/gator/test"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
)

type files []string

func (f *files) String() string     { return strings.Join(*f, ",") }
func (f *files) Set(v string) error { *f = append(*f, v); return nil }

type violation struct {
	Constraint        string `json:"constraint"`
	Kind              string `json:"kind"`
	Name              string `json:"name"`
	Namespace         string `json:"namespace"`
	Message           string `json:"message"`
	EnforcementAction string `json:"enforcementAction"`
}

func main() {
	var inputs files
	flag.Var(&inputs, "f", "a file or directory of YAML objects (repeatable)")
	clientCert := flag.String("client-cert", "", "client certificate (PEM) presented to providers")
	clientKey := flag.String("client-key", "", "its private key (PEM)")
	flag.Parse()
	if err := run(inputs, *clientCert, *clientKey); err != nil {
		fmt.Fprintln(os.Stderr, "externaldata:", err)
		os.Exit(1)
	}
}

func run(inputs []string, clientCert, clientKey string) error {
	objects, err := reader.ReadSources(inputs, nil, "")
	if err != nil {
		return fmt.Errorf("reading %v: %w", inputs, err)
	}
	cache := externaldata.NewCache()
	var rest []*unstructured.Unstructured
	for _, object := range objects {
		if object.GetKind() != "Provider" || !strings.HasPrefix(object.GetAPIVersion(), "externaldata.gatekeeper.sh/") {
			rest = append(rest, object)
			continue
		}
		var provider unversioned.Provider
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(object.Object, &provider); err != nil {
			return fmt.Errorf("provider %q: %w", object.GetName(), err)
		}
		if err := cache.Upsert(&provider); err != nil {
			return fmt.Errorf("provider %q: %w", object.GetName(), err)
		}
	}
	args := []rego.Arg{rego.AddExternalDataProviderCache(cache)}
	if clientCert != "" {
		watcher, err := certwatcher.New(clientCert, clientKey)
		if err != nil {
			return fmt.Errorf("client certificate: %w", err)
		}
		args = append(args, rego.EnableExternalDataClientAuth(), rego.AddExternalDataClientCertWatcher(watcher))
	}
	withExternalData := func() ([]constraintclient.Opt, []rego.Arg, error) { return nil, args, nil }
	responses, err := test.Test(rest, gator.Opt(withExternalData))
	if err != nil {
		return err
	}
	out := json.NewEncoder(os.Stdout)
	for _, result := range responses.Results() {
		found := violation{Message: result.Msg, EnforcementAction: result.EnforcementAction}
		if result.Constraint != nil {
			found.Constraint = result.Constraint.GetName()
		}
		if result.ViolatingObject != nil {
			found.Kind = result.ViolatingObject.GetKind()
			found.Name = result.ViolatingObject.GetName()
			found.Namespace = result.ViolatingObject.GetNamespace()
		}
		if err := out.Encode(found); err != nil {
			return err
		}
	}
	return nil
}
