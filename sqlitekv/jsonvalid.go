package sqlitekv

// validAtAnyDepth checks b as json.Valid does, but at any depth, in one
// pass that keeps the open arrays and objects on a stack of bytes. (A
// json.Decoder's tokens did the same at five to thirteen times the cost
// of reading the body, which a client could spend with bodies of
// brackets.) UTF-8 is the caller's to check.
func validAtAnyDepth(b []byte) bool {
	var open []byte // '[' or '{' per open container
	i := skipJSONSpace(b, 0)
	for {
		// A value starts at i.
		if i >= len(b) {
			return false
		}
		switch c := b[i]; c {
		case '[', '{':
			open = append(open, c)
			if i = skipJSONSpace(b, i+1); i < len(b) && b[i] == c+2 { // ']' is '['+2, '}' is '{'+2
				open = open[:len(open)-1]
				i++
				break
			}
			if c == '{' {
				if i = memberName(b, i); i < 0 {
					return false
				}
			}
			continue
		case '"':
			if i = stringEnd(b, i); i < 0 {
				return false
			}
		case 't', 'f', 'n':
			if i = literalEnd(b, i); i < 0 {
				return false
			}
		default:
			if i = numberEnd(b, i); i < 0 {
				return false
			}
		}
		// A value ended before i: close what it ends, then the next.
		for i = skipJSONSpace(b, i); ; i = skipJSONSpace(b, i+1) {
			if len(open) == 0 {
				return i == len(b)
			}
			if i >= len(b) {
				return false
			}
			if b[i] != open[len(open)-1]+2 {
				break
			}
			open = open[:len(open)-1]
		}
		if b[i] != ',' {
			return false
		}
		if i = skipJSONSpace(b, i+1); open[len(open)-1] == '{' {
			if i = memberName(b, i); i < 0 {
				return false
			}
		}
	}
}

func skipJSONSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// memberName reads `"name" :` at i and returns where the member's value
// may start, or -1.
func memberName(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	if i = stringEnd(b, i); i < 0 {
		return -1
	}
	if i = skipJSONSpace(b, i); i >= len(b) || b[i] != ':' {
		return -1
	}
	return skipJSONSpace(b, i+1)
}

// stringEnd returns the index just past the string that starts at i (its
// quote), or -1: no control byte inside, escapes only as JSON has them.
func stringEnd(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1
		case c < 0x20:
			return -1
		case c == '\\':
			if i++; i >= len(b) {
				return -1
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) || !isHex(b[i+1]) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) {
					return -1
				}
				i += 4
			default:
				return -1
			}
		}
	}
	return -1
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// literalEnd returns the index just past true, false or null at i, or -1.
func literalEnd(b []byte, i int) int {
	for _, lit := range []string{"true", "false", "null"} {
		if len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit {
			return i + len(lit)
		}
	}
	return -1
}

// numberEnd returns the index just past the number at i, or -1:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func numberEnd(b []byte, i int) int {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = digitsEnd(b, i)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		if j := digitsEnd(b, i+1); j > i+1 {
			i = j
		} else {
			return -1
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if j := digitsEnd(b, i); j > i {
			i = j
		} else {
			return -1
		}
	}
	return i
}

func digitsEnd(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}
