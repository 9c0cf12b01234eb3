package main

import (
	"flag"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// byteUnits are the suffixes a size flag takes, matched without regard to
// case: IEC units are powers of 1024, SI units powers of 1000, as their
// standards say. A bare K, M or G is refused: it means either.
var byteUnits = map[string]int64{
	"": 1, "b": 1,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
}

// byteSize is a flag of bytes written as 10485760, 10MiB or 64 MB.
type byteSize int64

// bytesVar defines a size flag; p starts at def.
func bytesVar(fs *flag.FlagSet, p *int64, name string, def int64, usage string) {
	*p = def
	fs.Var((*byteSize)(p), name, usage)
}

func (b *byteSize) Set(s string) error {
	n, err := parseBytes(s)
	if err != nil {
		return err
	}
	*b = byteSize(n)
	return nil
}

// String shows a size in the largest IEC unit that holds it whole.
func (b *byteSize) String() string {
	n := int64(*b)
	for _, u := range []struct {
		name string
		size int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}

// parseBytes reads a whole number of bytes with an optional unit.
func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	digits := strings.TrimLeft(s, "0123456789")
	number, unit := s[:len(s)-len(digits)], strings.ToLower(strings.TrimSpace(digits))
	scale, ok := byteUnits[unit]
	if number == "" || !ok {
		return 0, fmt.Errorf("%q is not a size: write bytes as a whole number with an optional unit, KiB, MiB, GiB, TiB (1024-based) or kB, MB, GB, TB (1000-based), e.g. 64MiB", s)
	}
	n, err := strconv.ParseInt(number, 10, 64)
	if err != nil || n > math.MaxInt64/scale {
		return 0, fmt.Errorf("%q is too large a size", s)
	}
	return n * scale, nil
}
