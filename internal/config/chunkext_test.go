package config

import (
	"strings"
	"testing"
)

// TestLimitChunkExtension: limit_chunk_extension defaults to httpparse's
// 4096, is set from the file, the environment and its flag, and a value
// outside 1..1 MiB stops start-up naming the key.
func TestLimitChunkExtension(t *testing.T) {
	if c, _ := mustLoad(t, nil, nil); c.LimitChunkExtension != 4096 {
		t.Errorf("default %d, want 4096", c.LimitChunkExtension)
	}
	for _, tc := range []struct {
		name  string
		files map[string]string
		args  []string
		env   []string
	}{
		{"file", yamlFile("limit_chunk_extension: 64\n"), withFile, nil},
		{"env", nil, nil, []string{"ASYNCD_LIMIT_CHUNK_EXTENSION=64"}},
		{"flag", nil, []string{"--limit-chunk-extension", "64"}, nil},
	} {
		if c, _ := mustLoad(t, tc.files, tc.args, tc.env...); c.LimitChunkExtension != 64 {
			t.Errorf("%s: got %d, want 64", tc.name, c.LimitChunkExtension)
		}
	}
	for _, bad := range []string{"0", "-1", "1048577"} {
		_, _, err := loadMem(yamlFile("limit_chunk_extension: "+bad+"\n"), withFile)
		if err == nil || !strings.Contains(err.Error(), "asyncd.yaml:1: limit_chunk_extension: must be between 1 and 1048576") {
			t.Errorf("limit_chunk_extension: %s: %v", bad, err)
		}
	}
}
