//go:build unix

package sqlitefile

import "syscall"

// dirWritable reports why files cannot be created in dir (nil if they can),
// as the kernel answers for this process: EACCES, EROFS (a read-only file
// system), EPERM (an immutable folder).
func dirWritable(dir string) error {
	const wOK = 0x2 // W_OK
	return syscall.Access(dir, wOK)
}
