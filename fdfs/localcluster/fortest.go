package localcluster

// TB is the part of testing.TB that ForTest uses; it is spelt out so that
// this product package does not link the testing package into fdfsfs.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Errorf(format string, args ...any)
	Cleanup(func())
}

// ForTest starts a cluster for a test, as httptest.NewServer starts a
// server: a cluster that cannot start fails the test, and the cluster
// closes when the test's cleanups run (a failed Close fails the test too).
// Every test package starts its clusters through it.
func ForTest(t TB, opts Options) *Cluster {
	t.Helper()
	c, err := Start(opts)
	if err != nil {
		t.Fatalf("starting the local cluster: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("closing the local cluster: %v", err)
		}
	})
	return c
}
