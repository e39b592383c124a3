package index_test

import (
	"testing"

	"fdfsfs/index"
	"fdfsfs/index/indextest"
)

func openBadger(t *testing.T, dir string, opts index.BadgerOptions) *index.Badger {
	t.Helper()
	b, err := index.OpenBadger(dir, opts)
	if err != nil {
		t.Fatalf("OpenBadger: %v", err)
	}
	return b
}

func TestBadgerContract(t *testing.T) {
	indextest.RunContract(t, func(t *testing.T) index.Index {
		return openBadger(t, t.TempDir(), index.BadgerOptions{Session: "test"})
	})
}

func TestBadgerPersistence(t *testing.T) {
	indextest.RunPersistence(t, func(t *testing.T) func() index.Index {
		dir := t.TempDir()
		return func() index.Index { return openBadger(t, dir, index.BadgerOptions{Session: "test"}) }
	})
}
