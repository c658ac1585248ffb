package projections

import (
	"encoding/json"
	"strconv"
)

func ptr[T any](v T) *T { return &v }

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func itoa(i int) string { return strconv.Itoa(i) }
