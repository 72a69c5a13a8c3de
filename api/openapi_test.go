package api

import (
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

// TestOpenAPIMatchesRoutes fails when the route table and openapi.yaml differ.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	b, err := os.ReadFile("../openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(b, &spec); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	var inSpec []string
	for path, ops := range spec.Paths {
		for method := range ops {
			inSpec = append(inSpec, strings.ToUpper(method)+" "+path)
		}
	}
	param := regexp.MustCompile(`:(\w+)`)
	var inCode []string
	for _, r := range Routes() {
		inCode = append(inCode, r.Method+" "+param.ReplaceAllString(r.Path, "{$1}"))
	}
	sort.Strings(inSpec)
	sort.Strings(inCode)
	if diff := cmp.Diff(inCode, inSpec); diff != "" {
		t.Errorf("routes (-code +openapi.yaml):\n%s", diff)
	}
}
