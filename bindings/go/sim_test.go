package kvc_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"kvc.dev/kvc"
)

func TestSimulate(t *testing.T) {
	trace := filepath.Join(t.TempDir(), "t.jsonl")
	lines := `{"timestamp": 0, "input_length": 3, "output_length": 1, "hash_ids": [1, 2, 3]}
{"timestamp": 1, "input_length": 4, "output_length": 1, "hash_ids": [1, 2, 3, 4]}
{"timestamp": 2, "input_length": 1, "output_length": 1, "hash_ids": [5]}
`
	if err := os.WriteFile(trace, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := kvc.Simulate(trace, []string{"lru"}, []uint64{10})
	if err != nil {
		t.Fatal(err)
	}
	var rows []struct {
		Policy   string `json:"policy"`
		Capacity uint64 `json:"capacity_blocks"`
		Hits     uint64 `json:"hits"`
		Lookups  uint64 `json:"lookups"`
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(rows) != 1 || rows[0].Policy != "lru" || rows[0].Capacity != 10 || rows[0].Hits != 3 || rows[0].Lookups != 8 {
		t.Fatalf("rows %+v", rows)
	}
	_, err = kvc.Simulate(trace, []string{"no-such-policy"}, []uint64{10})
	wantCode(t, "unknown policy", err, kvc.ErrInvalidArgument)
	if err := os.WriteFile(trace, []byte("{not json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = kvc.Simulate(trace, nil, []uint64{10})
	wantCode(t, "malformed trace", err, kvc.ErrParse)
}
