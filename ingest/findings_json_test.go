package ingest

import (
	"strings"
	"testing"

	"github.com/watchfloor/watchfloor/schemas"
)

func TestFindingJSONCarriesTechniquesAndFields(t *testing.T) {
	f := schemas.Finding{
		ID: schemas.FindingID(schemas.EventID("s:1", 0), "r1"), EventID: schemas.EventID("s:1", 0), Agency: "doj",
		RuleID: "r1", RuleTitle: "t", RuleLevel: "high", SeverityID: schemas.SeverityHigh,
		Tags: []string{"attack.t1059.001"}, Techniques: []string{"T1059.001"}, Matched: []string{"CommandLine"},
		EventIDs: []schemas.ID{schemas.EventID("s:1", 0), schemas.EventID("s:1", 1)},
	}
	b, err := FindingJSON(&f)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"attacks":[{"technique":{"uid":"T1059.001"}}]`, `"matched_fields":["CommandLine"]`, schemas.EventID("s:1", 1).String()} {
		if !strings.Contains(string(b), want) {
			t.Errorf("FindingJSON() = %s, want it to contain %s", b, want)
		}
	}
}
