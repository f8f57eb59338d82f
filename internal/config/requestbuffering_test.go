package config

import (
	"strings"
	"testing"
)

// TestRouteRequestBuffering: routes' request_buffering (default true;
// false streams the body to the handler as it arrives) is read, refused
// when not a boolean, and printed back by --print-config.
func TestRouteRequestBuffering(t *testing.T) {
	c, _ := mustLoad(t, yamlFile("routes:\n- {path: /a, handler: h, request_buffering: false}\n- {path: /b, handler: h, request_buffering: true}\n- {path: /c, handler: h}\n"), withFile)
	if got := []bool{c.Routes[0].StreamBody, c.Routes[1].StreamBody, c.Routes[2].StreamBody}; got[0] != true || got[1] || got[2] {
		t.Fatalf("StreamBody of /a /b /c = %v, want [true false false]", got)
	}
	out, err := c.YAML()
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(out), "request_buffering: false"); n != 1 {
		t.Errorf("--print-config has request_buffering: false %d times, want once:\n%s", n, out)
	}
	again, _ := mustLoad(t, map[string]string{"printed.yaml": string(out)}, []string{"-c", "printed.yaml"})
	if !again.Routes[0].StreamBody || again.Routes[1].StreamBody {
		t.Errorf("printed config reads back as %+v", again.Routes)
	}
	_, _, err = loadMem(yamlFile("routes: [{path: /, handler: h, request_buffering: sure}]\n"), withFile)
	if err == nil || !strings.Contains(err.Error(), "routes[0].request_buffering: not a boolean") {
		t.Errorf("request_buffering: sure: %v", err)
	}
}
