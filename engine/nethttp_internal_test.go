package engine

import (
	"net/http"
	"reflect"
	"testing"

	"github.com/asyncd/asyncd/httpparse"
)

// TestHTTPRequestFramingIsTheParsers checks that the request handed to a
// net/http handler is framed as the parser framed it, whatever the framing
// fields said: httputil.ReverseProxy frames the upstream request from
// TransferEncoding and ContentLength alone, and a Transfer-Encoding value
// net/http does not read as chunked ("chunked," was one, when the parser
// skipped empty list members) sent the decoded body upstream unframed.
func TestHTTPRequestFramingIsTheParsers(t *testing.T) {
	te := func(v string) []httpparse.Header {
		return []httpparse.Header{{Name: []byte("Host"), Value: []byte("h")},
			{Name: []byte("Transfer-Encoding"), Value: []byte(v)}}
	}
	tests := []struct {
		name    string
		chunked bool
		cl      int64
		fields  []httpparse.Header
		wantTE  []string
		wantCL  int64
		body    bool
	}{
		{"chunked", true, -1, te("chunked"), []string{"chunked"}, -1, true},
		{"CHUNKED", true, -1, te("CHUNKED"), []string{"chunked"}, -1, true},
		{"a value net/http does not read as chunked", true, -1, te("chunked,"), []string{"chunked"}, -1, true},
		{"Content-Length", false, 5, []httpparse.Header{{Name: []byte("Content-Length"), Value: []byte("5")}}, nil, 5, true},
		{"Content-Length: 0", false, 0, []httpparse.Header{{Name: []byte("Content-Length"), Value: []byte("0")}}, nil, 0, false},
		{"no framing field: no body", false, -1, nil, nil, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Ctx{}
			c.req.Method, c.req.Target, c.req.Major, c.req.Minor = []byte("POST"), []byte("/x"), 1, 1
			c.req.Headers, c.req.Chunked, c.req.ContentLength = tt.fields, tt.chunked, tt.cl
			r, err := c.httpRequest(&http.Server{})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(r.TransferEncoding, tt.wantTE) || r.ContentLength != tt.wantCL {
				t.Errorf("TransferEncoding %q ContentLength %d, want %q %d", r.TransferEncoding, r.ContentLength, tt.wantTE, tt.wantCL)
			}
			if _, ok := r.Header["Transfer-Encoding"]; ok {
				t.Errorf("Transfer-Encoding left in Header: %q", r.Header)
			}
			if (r.Body != http.NoBody) != tt.body {
				t.Errorf("Body %T, want a body: %v", r.Body, tt.body)
			}
		})
	}
}
