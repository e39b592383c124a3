package fdfs

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"syscall"
	"testing"
)

func TestHeader(t *testing.T) {
	// 01-list-all-groups response header: pkg_len 339, cmd 100, status 0.
	raw := []byte{
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x53, // pkg_len = 339
		0x64, // cmd = 100 (RESP)
		0x00, // status = 0
	}
	h, err := ReadHeader(bytes.NewReader(raw), 339)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "header", h, Header{Length: 339, Cmd: TrackerProtoCmdResp})
	roundTrip(t, raw, h.Append(nil))

	if _, err := ReadHeader(bytes.NewReader(raw), 338); !errors.Is(err, ErrProtocol) {
		t.Errorf("over the limit: %v", err)
	}
	negative := Header{Length: -1, Cmd: 100}.Append(nil)
	if _, err := ReadHeader(bytes.NewReader(negative), 1<<40); !errors.Is(err, ErrProtocol) {
		t.Errorf("negative length: %v", err)
	}
	if _, err := ReadHeader(bytes.NewReader(raw[:5]), 1000); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short read: %v", err)
	}
	if _, err := ReadHeader(bytes.NewReader(nil), 1000); !errors.Is(err, io.EOF) {
		t.Errorf("no bytes: %v", err)
	}
	if _, err := DecodeHeader(raw[:9]); !errors.Is(err, ErrProtocol) {
		t.Errorf("9 bytes: %v", err)
	}
}

func TestStatusError(t *testing.T) {
	tests := []struct {
		status byte
		is     []error
		isNot  []error
	}{
		{2, []error{syscall.ENOENT, fs.ErrNotExist}, []error{syscall.EEXIST, fs.ErrExist, syscall.EINVAL}},
		{17, []error{syscall.EEXIST, fs.ErrExist}, []error{fs.ErrNotExist}},
		{28, []error{syscall.ENOSPC}, []error{fs.ErrNotExist}},
		{13, []error{syscall.EACCES, fs.ErrPermission}, []error{syscall.EPERM}},
		{22, []error{syscall.EINVAL}, []error{fs.ErrNotExist, ErrProtocol}},
	}
	for _, tt := range tests {
		var err error = &StatusError{Cmd: StorageProtoCmdDownloadFile, Status: tt.status}
		for _, target := range tt.is {
			if !errors.Is(err, target) {
				t.Errorf("status %d is not %v", tt.status, target)
			}
		}
		for _, target := range tt.isNot {
			if errors.Is(err, target) {
				t.Errorf("status %d is %v", tt.status, target)
			}
		}
	}
	err := &StatusError{Cmd: StorageProtoCmdDownloadFile, Status: 2}
	eq(t, "message", err.Error(), "fdfs: DOWNLOAD_FILE: status 2 (no such file or directory)")
}
