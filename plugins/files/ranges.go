package files

import (
	"net/http"
	"strconv"
	"strings"
)

// fixRange rewrites r's Range header where net/http's ServeContent
// departs from RFC 9110 §14, so that ServeContent, which also weighs
// If-Range and the other preconditions first, answers as the RFC says:
//
//   - A range unit other than bytes is ignored (§14.2: a server MUST
//     ignore a unit it does not understand); ServeContent answered 416.
//     Unit names are case-insensitive (§14.1), so "Bytes=" is bytes.
//   - A suffix-range of length 0 ("-0") is unsatisfiable (§14.1.1);
//     ServeContent answered 206 with "Content-Range: bytes 8-7/8". It
//     becomes "size-", which ServeContent treats as not overlapping: 416
//     with "Content-Range: bytes */size" when no other range is
//     satisfiable, the other ranges otherwise.
//   - On an empty file every range selects nothing; ServeContent sent a
//     206 with "bytes 0--1/0" for a suffix-range. Its own rule for empty
//     files (ignore the ranges, 200) then applies to all of them.
//
// Everything else (a last-pos before first-pos is 416, ranges that add
// up to more than the file are ignored, several ranges are sent as
// multipart/byteranges) is ServeContent's, and within the RFC.
func fixRange(r *http.Request, size int64) {
	h := r.Header.Get("Range")
	if h == "" {
		return
	}
	unit, set, ok := strings.Cut(h, "=")
	if !ok || !strings.EqualFold(unit, "bytes") {
		r.Header.Del("Range")
		return
	}
	specs := strings.Split(set, ",")
	for i, spec := range specs {
		s := strings.Trim(spec, " \t")
		if len(s) < 2 || s[0] != '-' {
			continue
		}
		if n, err := strconv.ParseUint(s[1:], 10, 64); err == nil && (n == 0 || size == 0) {
			specs[i] = strconv.FormatInt(size, 10) + "-"
		}
	}
	r.Header.Set("Range", "bytes="+strings.Join(specs, ","))
}
