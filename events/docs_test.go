package events

import (
	"os"
	"strings"
	"testing"
)

// TestCatalogueDocumented keeps docs/events.md in step with the catalogue.
func TestCatalogueDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/events.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range Types() {
		if !strings.Contains(string(doc), "| `"+string(typ)+"` |") {
			t.Errorf("docs/events.md has no catalogue row for %s", typ)
		}
	}
}
