package httpparse

// Byte-class tables, built once at init: a table lookup per byte is cheaper
// and clearer than chains of comparisons.
var (
	tokenTab   [256]bool // tchar, RFC 9110 §5.6.2
	targetTab  [256]bool // RFC 3986 characters a request-target may carry, minus '%', '?', '[' and ']' (handled apart)
	valueTab   [256]bool // field-vchar / SP / HTAB / obs-text, RFC 9110 §5.5
	hexTab     [256]bool // HEXDIG
	hexVal     [256]byte
	regNameTab [256]bool // unreserved / sub-delims, RFC 3986 §3.2.2 ('%' handled apart)
	hostTab    [256]bool // regNameTab without ',', which a Host field refuses (validHostField)
	qdtextTab  [256]bool // qdtext plus the characters quoted-pair may escape, RFC 9110 §5.6.4
	lowerTab   [256]byte
)

func init() {
	for c := 0; c < 256; c++ {
		b := byte(c)
		alpha := b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
		digit := b >= '0' && b <= '9'
		tokenTab[c] = alpha || digit || isAny(b, "!#$%&'*+-.^_`|~")
		unreserved := alpha || digit || isAny(b, "-._~")
		subDelims := isAny(b, "!$&'()*+,;=")
		regNameTab[c] = unreserved || subDelims
		hostTab[c] = regNameTab[c] && b != ','
		targetTab[c] = unreserved || subDelims || isAny(b, ":@/")
		valueTab[c] = b == '\t' || b >= 0x20 && b != 0x7f
		qdtextTab[c] = b == '\t' || b == ' ' || b == 0x21 || b >= 0x23 && b <= 0x5b || b >= 0x5d && b <= 0x7e || b >= 0x80
		switch {
		case digit:
			hexTab[c], hexVal[c] = true, b-'0'
		case b >= 'a' && b <= 'f':
			hexTab[c], hexVal[c] = true, b-'a'+10
		case b >= 'A' && b <= 'F':
			hexTab[c], hexVal[c] = true, b-'A'+10
		}
		lowerTab[c] = b
		if b >= 'A' && b <= 'Z' {
			lowerTab[c] = b + 'a' - 'A'
		}
	}
}

func isAny(b byte, set string) bool {
	for i := 0; i < len(set); i++ {
		if set[i] == b {
			return true
		}
	}
	return false
}

// equalFold reports whether s equals lower (already lower-case ASCII),
// ignoring ASCII case in s.
func equalFold(s []byte, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if lowerTab[s[i]] != lower[i] {
			return false
		}
	}
	return true
}

// tokenEqualFold is equalFold for s already known to be a token and lower
// made of lower-case letters and '-': OR-ing 0x20 folds case and cannot map
// another token byte onto a letter or '-' (only CR would reach '-').
func tokenEqualFold(s []byte, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i]|0x20 != lower[i] {
			return false
		}
	}
	return true
}

// trimOWS removes leading and trailing SP/HTAB.
func trimOWS(b []byte) []byte {
	i, j := 0, len(b)
	for i < j && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	for j > i && (b[j-1] == ' ' || b[j-1] == '\t') {
		j--
	}
	return b[i:j]
}
