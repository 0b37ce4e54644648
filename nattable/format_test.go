package nattable_test

import (
	"encoding/json"
	"testing"

	"github.com/natlab/natlab/nattable"
)

// An empty table is empty lists in JSON, not null.
func TestJSONEmptyLists(t *testing.T) {
	for _, tab := range []*nattable.Table{{}, {Flows: []nattable.Flow{}}} {
		data, err := json.Marshal(tab)
		if err != nil || string(data) != `{"flows":[],"mappings":[]}` {
			t.Errorf("%+v as JSON: %s, %v", tab, data, err)
		}
	}
}
