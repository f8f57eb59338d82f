// Package conformance loads the HTTP/1.1 request vectors kept outside the
// repository in ../shared/conformance (JSON lines drawn from public parser
// test suites, each labelled with a strict server's verdict), for the
// parser's tests and for the server-level suite in this package that sends
// them over real sockets. It owns the vector format only; it must not
// embed or copy the vectors.
package conformance

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Message is one parsed request as a vector states it.
type Message struct {
	Method   string      `json:"method"`
	Target   string      `json:"target"`
	Version  string      `json:"version"`
	Headers  [][2]string `json:"headers"`
	Body     string      `json:"body"`
	Trailers [][2]string `json:"trailers"`
}

// Vector is one request vector.
type Vector struct {
	ID     string `json:"id"`
	File   string `json:"-"`
	Raw    string `json:"raw"` // one code point per byte
	Expect string `json:"expect"`
	Status int    `json:"status"`
	Reason string `json:"reason"`
	Why    string `json:"why"`
	AltOK  bool   `json:"alt_ok"`
	// Parsed is one Message or a list of them (pipelines).
	Parsed             json.RawMessage `json:"parsed"`
	ExpectIgnoringHost string          `json:"expect_ignoring_host"`
	ParsedIgnoringHost json.RawMessage `json:"parsed_ignoring_host"`
	After              string          `json:"after"`
	Trailing           string          `json:"trailing"`
	MessagesBefore     int             `json:"messages_before_error"`
	// MessagesBeforeSet reports whether messages_before_error was given.
	MessagesBeforeSet bool   `json:"-"`
	Note              string `json:"note"`
	// IgnoringHost is the parser-only rejection when the vector is about
	// Host at server level.
	IgnoringHost *struct {
		Status int    `json:"status"`
		Reason string `json:"reason"`
		AltOK  bool   `json:"alt_ok"`
	} `json:"ignoring_host"`
}

// Bytes decodes Raw: each code point is one byte.
func (v *Vector) Bytes() []byte { return Latin1(v.Raw) }

// Latin1Pairs applies Latin1 to header pairs.
func Latin1Pairs(in [][2]string) [][2]string {
	out := make([][2]string, len(in))
	for i, p := range in {
		out[i] = [2]string{string(Latin1(p[0])), string(Latin1(p[1]))}
	}
	return out
}

// Latin1 turns a string of code points U+0000..U+00FF into bytes.
func Latin1(s string) []byte {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		out = append(out, byte(r))
	}
	return out
}

// Messages decodes a Parsed (or ParsedIgnoringHost) field: one message or a
// list.
func Messages(raw json.RawMessage) ([]Message, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if strings.HasPrefix(strings.TrimSpace(string(raw)), "[") {
		var ms []Message
		err := json.Unmarshal(raw, &ms)
		return ms, err
	}
	var m Message
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	return []Message{m}, nil
}

// Dir finds shared/conformance by walking up from the working directory;
// it returns "" when the folder is absent.
func Dir() string {
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	for d := wd; ; d = filepath.Dir(d) {
		c := filepath.Join(d, "shared", "conformance")
		if fi, err := os.Stat(c); err == nil && fi.IsDir() {
			return c
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}

// Load reads every *.jsonl file in dir, sorted by file and line.
func Load(dir string) ([]Vector, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []Vector
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		line := 0
		for sc.Scan() {
			line++
			if strings.TrimSpace(sc.Text()) == "" {
				continue
			}
			var v Vector
			if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
				fh.Close()
				return nil, fmt.Errorf("%s:%d: %w", f, line, err)
			}
			v.File = filepath.Base(f)
			v.MessagesBeforeSet = strings.Contains(sc.Text(), `"messages_before_error"`)
			out = append(out, v)
		}
		fh.Close()
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
	}
	return out, nil
}
