package search_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cpis-fhir/cpis/fhir"
	"github.com/cpis-fhir/cpis/fhir/search"
	"github.com/cpis-fhir/cpis/internal/cpis"
)

// TestCodesOfPackageFHIR keeps the code systems search accepts equal to the
// ones package fhir writes into Flag.code, which search duplicates so as not
// to depend on the wire model.
func TestCodesOfPackageFHIR(t *testing.T) {
	for _, tt := range []struct {
		token string
		want  cpis.PlanType
	}{
		{fhir.PlanTypeSystem + "|CPP", cpis.CPP},
		{fhir.PlanTypeSystem + "|UCPP", cpis.UCPP},
		{fhir.SNOMEDSystem + "|764841000000100", cpis.CLA},
	} {
		t.Run(tt.token, func(t *testing.T) {
			q, _, err := search.ParseFlagSearch(map[string][]string{"code": {tt.token}}, true)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]cpis.PlanType{tt.want}, q.Types); diff != "" {
				t.Errorf("Types (-want +got):\n%s", diff)
			}
		})
	}
}
