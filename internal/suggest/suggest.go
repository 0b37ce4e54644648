// Package suggest finds the word someone probably meant: the "did you
// mean" of natlab's messages, for scenario keys, NAT types, built-in
// scenarios and lab names alike.
package suggest

// Closest returns the accepted word closest to a misspelt one, or "" when
// none is close enough to be a likely typo: fewer than 3 edits away, or
// fewer than 2 for words shorter than 4 characters.
func Closest(word string, accepted []string) string {
	best, bestDist := "", 3
	if len(word) < 4 {
		bestDist = 2
	}
	for _, a := range accepted {
		if d := Distance(word, a); d < bestDist {
			best, bestDist = a, d
		}
	}
	return best
}

// Distance is the Levenshtein distance of two short strings: the number
// of characters to insert, delete or change to turn a into b. Strings
// longer than 64 bytes count as unlike anything.
func Distance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return max(len(a), len(b))
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
