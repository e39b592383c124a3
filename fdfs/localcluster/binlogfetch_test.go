package localcluster

import (
	"bytes"
	"io"
	"slices"
	"testing"
	"time"

	"fdfsfs/fdfs"
)

// fetchStream sends a FETCH_ONE_PATH_BINLOG frame on a fresh connection
// and reads the whole answer up to the end of the connection: the storage
// must close it.
func fetchStream(t *testing.T, addr string, frame []byte) (head, body []byte) {
	t.Helper()
	w := dialWire(t, addr)
	w.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := w.c.Write(frame); err != nil {
		t.Fatal(err)
	}
	all, err := io.ReadAll(w.br)
	if err != nil {
		t.Fatalf("reading to the end of the connection: %v", err)
	}
	if len(all) < fdfs.HeaderSize {
		t.Fatalf("answer of %d bytes", len(all))
	}
	return all[:fdfs.HeaderSize], all[fdfs.HeaderSize:]
}

// lineShape is what a line says apart from the time and the random part
// of the name: the operation, the store path and the extension.
type lineShape struct {
	op       byte
	path     string
	ext      string
	appender bool
	length   int
}

func shapes(t *testing.T, body []byte) []lineShape {
	t.Helper()
	br := fdfs.NewBinlogReader(bytes.NewReader(body))
	var out []lineShape
	for {
		l, err := br.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("stream % x: %v", body, err)
		}
		id, _ := fdfs.ParseRemoteFilename(l.Filename)
		out = append(out, lineShape{l.Op, l.Filename[:10], id.Ext, id.Appender, len(l.Append(nil))})
	}
	slices.SortFunc(out, func(a, b lineShape) int {
		if a.ext != b.ext {
			return bytes.Compare([]byte(a.ext), []byte(b.ext))
		}
		return 0
	})
	return out
}

// TestCapturedFetchOnePathBinlog replays fixtures 37 and 38: the same
// three uploads and one delete, then the captured requests byte for byte.
// The header and the 38 answer match exactly; the 37 stream has the same
// length, the same lines but for times and random name parts (in name
// order here, binlog order upstream), the same trailer, and the storage
// closes the connection after it.
func TestCapturedFetchOnePathBinlog(t *testing.T) {
	c := startCluster(t, Options{})
	st := storageOf(t, c, "group3")
	upload(t, st, fdfs.StorageProtoCmdUploadFile, "jpg", bytes.Repeat([]byte("j"), 3000))
	upload(t, st, fdfs.StorageProtoCmdUploadAppenderFile, "txt", []byte("appender"))
	gone := upload(t, st, fdfs.StorageProtoCmdUploadFile, "txt", []byte("deleted"))
	w := newStorageWire(t, st)
	if status, _ := w.fileCmd(fdfs.StorageProtoCmdDeleteFile, gone); status != 0 {
		t.Fatalf("delete: status %d", status)
	}

	f37 := loadFixture(t, "37")
	head, body := fetchStream(t, st.Addr(), f37.request)
	if !bytes.Equal(head, f37.response[:fdfs.HeaderSize]) {
		t.Fatalf("header % x, captured % x", head, f37.response[:fdfs.HeaderSize])
	}
	want := f37.respBody()
	if len(body) != len(want) || !bytes.Equal(body[len(body)-8:], want[len(want)-8:]) {
		t.Fatalf("stream of %d bytes ending % x, captured %d ending % x", len(body), body[len(body)-8:], len(want), want[len(want)-8:])
	}
	if got, exp := shapes(t, body), shapes(t, want); !slices.Equal(got, exp) {
		t.Fatalf("lines %+v, captured %+v", got, exp)
	}
	if bytes.Contains(body, []byte(gone)) {
		t.Fatalf("the deleted file %s is listed", gone)
	}

	f38 := loadFixture(t, "38")
	h, rest := newStorageWire(t, st).roundTrip(f38.request)
	if got := h.Append(rest); !bytes.Equal(got, f38.response) {
		t.Fatalf("bad index: % x, captured % x", got, f38.response)
	}
	for name, frame := range map[string][]byte{
		"another group":   withName(t, f37, "group3", "group1"),
		"short body":      f37.request[:len(f37.request)-1],
		"a longer body":   append(fdfs.Header{Length: 18, Cmd: fdfs.StorageProtoCmdFetchOnePathBinlog}.Append(nil), append(f37.request[fdfs.HeaderSize:], 0)...),
		"store path 0xFF": append(append([]byte(nil), f37.request[:len(f37.request)-1]...), 0xFF),
	} {
		t.Run(name, func(t *testing.T) {
			w := dialWire(t, st.Addr())
			if name == "short body" {
				frame = append(fdfs.Header{Length: 16, Cmd: fdfs.StorageProtoCmdFetchOnePathBinlog}.Append(nil), f37.request[fdfs.HeaderSize:fdfs.HeaderSize+16]...)
			}
			h, body := w.roundTrip(frame)
			if h.Status != 22 || len(body) != 0 {
				t.Fatalf("status %d, %d body bytes", h.Status, len(body))
			}
		})
	}
}

// TestFetchOnePathBinlogReplica: a file created at one storage is C there
// and c at its peer once copied; an empty store is the trailer alone.
func TestFetchOnePathBinlogReplica(t *testing.T) {
	c := startCluster(t, Options{Groups: []string{"group1"}, StoragesPerGroup: 2})
	src, peer := c.Storages()[0], c.Storages()[1]
	req := fdfs.Header{Length: fdfs.FetchOnePathBinlogRequestLen, Cmd: fdfs.StorageProtoCmdFetchOnePathBinlog}.Append(nil)
	req = fdfs.FetchOnePathBinlogRequest{Group: "group1"}.Append(req)
	if _, body := fetchStream(t, peer.Addr(), req); !bytes.Equal(body, make([]byte, 8)) {
		t.Fatalf("empty store: % x", body)
	}
	name := upload(t, src, fdfs.StorageProtoCmdUploadFile, "bin", []byte("replicated"))
	waitFor(t, "replica", func() bool { return peer.Has(name) })
	for st, op := range map[*Storage]byte{src: 'C', peer: 'c'} {
		_, body := fetchStream(t, st.Addr(), req)
		lines, err := decodeStream(body)
		if err != nil || len(lines) != 1 || lines[0].Op != op || lines[0].Filename != name {
			t.Fatalf("%s: %+v, %v", st.srv.name, lines, err)
		}
	}
}

func decodeStream(body []byte) ([]fdfs.BinlogLine, error) {
	br := fdfs.NewBinlogReader(bytes.NewReader(body))
	var out []fdfs.BinlogLine
	for {
		l, err := br.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, l)
	}
}
