//go:build !race

package budget

// raceEnabled tells a timing bar whether the race detector slows the code.
const raceEnabled = false
