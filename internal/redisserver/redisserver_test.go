package redisserver

import (
	"errors"
	"testing"
)

func TestStartPingClose(t *testing.T) {
	s, err := Start()
	if errors.Is(err, ErrNotInstalled) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := Ping(s.Addr); err != nil {
		t.Fatalf("a started server does not answer: %v", err)
	}
	if s.URL != "redis://"+s.Addr+"/0" {
		t.Errorf("URL = %q", s.URL)
	}
	s.Close()
	if err := Ping(s.Addr); err == nil {
		t.Error("a closed server still answers")
	}
}
