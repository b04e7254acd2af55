//go:build !unix

package sqlitefile

// dirWritable is not checked here: SQLite's own error is reported.
func dirWritable(string) error { return nil }
