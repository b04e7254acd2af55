package metis

import "testing"

// A port one test process claimed is not handed to another: claimPort's
// lock is per open file, so a second claim, as another process would make
// it, is refused (Caddy's SO_REUSEPORT would otherwise let two processes'
// gateways share the port).
func TestClaimedPortIsNotClaimedAgain(t *testing.T) {
	const port = 1 // never a port freePort hands out
	if !claimPort(port) {
		t.Skip("another test process holds the claim")
	}
	if claimPort(port) {
		t.Fatal("a port already claimed was claimed again")
	}
}
