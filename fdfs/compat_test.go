package fdfs_test

import (
	"bytes"
	"context"
	"net"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"fdfsfs/fdfs"
	"fdfsfs/fdfs/localcluster"
)

// compatVersions are the releases `fdfsfs local --compat` is documented
// to answer as, one per distinct record layout (and 6.10, the last
// classic one).
var compatVersions = []string{"5.11", "6.10", "6.11", "6.12", "6.13.0", "6.16"}

// clusterView is what a client learns from the tracker's list commands,
// with the per-run values (ports, times) checked and left out, so that
// views from different layouts compare equal.
type clusterView struct {
	Groups   []groupView
	One      groupView
	Storages []storageView
}

type groupView struct {
	Name                               string
	TotalMB, FreeMB, StorageCount      int64
	Active                             int64 // active_count, or readable_server_count since V6.13
	StorePathCount, SubdirCountPerPath int64
	CurrentTrunkFileID                 int64
}

type storageView struct {
	Status          byte
	ID, IPAddr      string
	Version         string
	TotalMB, FreeMB int64
	StorePathCount  int64
	UploadPriority  int64
	SuccessUploads  int64
}

const (
	compatTotalMB = 512000
	compatFreeMB  = 123456
	// localcluster reports http.server_port's default in the classic layouts.
	classicHTTPPort = 8888
)

func activeOf(g fdfs.GroupStat) int64 {
	if g.ActiveCount > 0 {
		return g.ActiveCount
	}
	return g.ReadableServerCount
}

// TestCompatListCommands starts the cluster in each compat mode and checks
// that our client decodes the list commands to the same values in all of
// them, and that the storage commands work unchanged.
func TestCompatListCommands(t *testing.T) {
	views := map[string]clusterView{}
	for _, version := range compatVersions {
		t.Run(version, func(t *testing.T) {
			layout, err := fdfs.ParseStatLayout(version)
			if err != nil {
				t.Fatal(err)
			}
			classic := layout == fdfs.StatLayoutV5_11 || layout == fdfs.StatLayoutV6_11 || layout == fdfs.StatLayoutV6_12
			c := localcluster.ForTest(t, localcluster.Options{
				Groups: []string{"group1", "group2"}, StoragesPerGroup: 2,
				Layout: layout, TotalMB: compatTotalMB, FreeMB: compatFreeMB,
			})
			ports := map[string]int64{} // group -> its first storage's port
			storagePort := map[string]int64{}
			for _, st := range c.Storages() {
				_, p, _ := net.SplitHostPort(st.Addr())
				n, _ := strconv.ParseInt(p, 10, 64)
				storagePort[st.Addr()] = n
				if _, ok := ports[st.Group()]; !ok {
					ports[st.Group()] = n
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()

			// A client told the server's version, as a deployment would
			// configure it, and one that works the layout out itself.
			for _, client := range []struct {
				name   string
				layout fdfs.StatLayout
			}{{"configured", layout}, {"detecting", 0}} {
				cl, err := fdfs.NewClient(fdfs.Config{Trackers: c.TrackerAddrs(), StatLayout: client.layout})
				if err != nil {
					t.Fatal(err)
				}
				defer cl.Close()
				if client.layout == 0 && layout == fdfs.StatLayoutV6_13_0 {
					// V6.13.0's group record has the classic 105 bytes
					// with other fields in them; a detecting client can
					// only tell from a storage record (509 bytes) first.
					if _, err := cl.ListStorages(ctx, "group1", ""); err != nil {
						t.Fatal(err)
					}
				}

				content := []byte("compat " + version)
				id, err := cl.Upload(ctx, "group1", "txt", bytes.NewReader(content), int64(len(content)))
				if err != nil {
					t.Fatalf("%s: upload: %v", client.name, err)
				}
				storageCommands(ctx, t, cl, id, content)

				var v clusterView
				gs, err := cl.ListGroups(ctx)
				if err != nil {
					t.Fatalf("%s: list groups: %v", client.name, err)
				}
				for _, g := range gs {
					checkGroupExtras(t, client.name, g, classic, ports[g.Name])
					v.Groups = append(v.Groups, groupOf(g))
				}
				one, err := cl.ListOneGroup(ctx, "group2")
				if err != nil {
					t.Fatalf("%s: list one group: %v", client.name, err)
				}
				checkGroupExtras(t, client.name, one, classic, ports["group2"])
				v.One = groupOf(one)
				ss, err := cl.ListStorages(ctx, "group1", "")
				if err != nil {
					t.Fatalf("%s: list storages: %v", client.name, err)
				}
				var uploads int64
				for _, s := range ss {
					if want := storagePort[s.IPAddr+":"+strconv.FormatInt(s.StoragePort, 10)]; want == 0 {
						t.Errorf("%s: storage port %d is none of the cluster's", client.name, s.StoragePort)
					}
					if classic && s.StorageHTTPPort != classicHTTPPort {
						t.Errorf("%s: storage HTTP port %d, want %d", client.name, s.StorageHTTPPort, classicHTTPPort)
					}
					if !classic && (s.StorageHTTPPort != 0 || s.RWMode != 6) {
						t.Errorf("%s: HTTP port %d, rw_mode %d: want 0 and 6 (R_OK|W_OK)", client.name, s.StorageHTTPPort, s.RWMode)
					}
					uploads += s.Stat.SuccessUploadCount
					s.Stat.SuccessUploadCount = 0
					v.Storages = append(v.Storages, storageOf(s))
				}
				// Which of the two storages took the uploads is the
				// tracker's round robin; the group's sum is not.
				v.Storages[0].SuccessUploads = uploads
				if prev, ok := views[client.name]; ok && !reflect.DeepEqual(prev, v) {
					t.Errorf("%s client: %s decodes differently from %s:\n%+v\nwant\n%+v", client.name, version, compatVersions[0], v, prev)
				} else if !ok {
					views[client.name] = v
				}
				checkExpected(t, client.name, v)
			}
		})
	}
}

func groupOf(g fdfs.GroupStat) groupView {
	return groupView{g.Name, g.TotalMB, g.FreeMB, g.StorageCount, activeOf(g), g.StorePathCount, g.SubdirCountPerPath, g.CurrentTrunkFileID}
}

func storageOf(s fdfs.StorageStat) storageView {
	return storageView{s.Status, s.ID, s.IPAddr, s.Version, s.TotalMB, s.FreeMB, s.StorePathCount, s.UploadPriority, s.Stat.SuccessUploadCount}
}

// checkGroupExtras checks what differs between layouts: the classic ones
// carry the HTTP port and active_count, the later ones readable and
// writable counts instead.
func checkGroupExtras(t *testing.T, client string, g fdfs.GroupStat, classic bool, port int64) {
	t.Helper()
	if g.StoragePort != port {
		t.Errorf("%s: %s storage port %d, want %d", client, g.Name, g.StoragePort, port)
	}
	if classic {
		if g.StorageHTTPPort != classicHTTPPort || g.ActiveCount != 2 || g.ReadableServerCount != 0 {
			t.Errorf("%s: %s classic fields: http port %d, active %d, readable %d; want %d, 2, 0",
				client, g.Name, g.StorageHTTPPort, g.ActiveCount, g.ReadableServerCount, classicHTTPPort)
		}
		return
	}
	if g.StorageHTTPPort != 0 || g.ActiveCount != 0 || g.ReadableServerCount != 2 || g.WritableServerCount != 2 {
		t.Errorf("%s: %s: http port %d, active %d, readable %d, writable %d; want 0, 0, 2, 2",
			client, g.Name, g.StorageHTTPPort, g.ActiveCount, g.ReadableServerCount, g.WritableServerCount)
	}
}

// checkExpected pins the shared view to what the cluster was started with.
func checkExpected(t *testing.T, client string, v clusterView) {
	t.Helper()
	var names []string
	for _, g := range v.Groups {
		names = append(names, g.Name)
		if g.TotalMB != compatTotalMB || g.FreeMB != compatFreeMB || g.StorageCount != 2 || g.Active != 2 {
			t.Errorf("%s: group %+v: want %d/%d MB, 2 storages, 2 active", client, g, compatTotalMB, compatFreeMB)
		}
	}
	if strings.Join(names, " ") != "group1 group2" || v.One.Name != "group2" {
		t.Errorf("%s: groups %q, one group %q", client, names, v.One.Name)
	}
	if len(v.Storages) != 2 {
		t.Fatalf("%s: %d storages in group1, want 2", client, len(v.Storages))
	}
	for _, s := range v.Storages {
		if s.Status != fdfs.FdfsStorageStatusActive || s.IPAddr != "127.0.0.1" || s.TotalMB != compatTotalMB || s.FreeMB != compatFreeMB {
			t.Errorf("%s: storage %+v: want ACTIVE 127.0.0.1 %d/%d MB", client, s, compatTotalMB, compatFreeMB)
		}
	}
	if v.Storages[0].SuccessUploads < 1 {
		t.Errorf("%s: no successful upload counted in group1", client)
	}
}

// storageCommands runs the storage commands a mount uses on a file.
func storageCommands(ctx context.Context, t *testing.T, cl *fdfs.Client, id string, content []byte) {
	t.Helper()
	var got bytes.Buffer
	if _, err := cl.Download(ctx, id, 0, 0, &got); err != nil || !bytes.Equal(got.Bytes(), content) {
		t.Fatalf("download: %v, %q", err, got.Bytes())
	}
	info, err := cl.QueryFileInfo(ctx, id)
	if err != nil || info.FileSize != int64(len(content)) || info.SourceIP != "127.0.0.1" {
		t.Fatalf("query file info: %v, %+v", err, info)
	}
	if err := cl.SetMetadata(ctx, id, map[string]string{"k": "v"}, fdfs.MetaOverwrite); err != nil {
		t.Fatalf("set metadata: %v", err)
	}
	if meta, err := cl.GetMetadata(ctx, id); err != nil || meta["k"] != "v" {
		t.Fatalf("get metadata: %v, %v", err, meta)
	}
	app, err := cl.UploadAppender(ctx, "group2", "", bytes.NewReader(content), int64(len(content)))
	if err != nil {
		t.Fatalf("upload appender: %v", err)
	}
	if err := cl.Modify(ctx, app, 0, strings.NewReader("C"), 1); err != nil {
		t.Fatalf("modify: %v", err)
	}
	if err := cl.Truncate(ctx, app, 3); err != nil {
		t.Fatalf("truncate: %v", err)
	}
	got.Reset()
	if _, err := cl.Download(ctx, app, 0, 0, &got); err != nil || got.String() != "Com" {
		t.Fatalf("appender after modify and truncate: %v, %q", err, got.String())
	}
	if err := cl.Delete(ctx, app); err != nil {
		t.Fatalf("delete: %v", err)
	}
}
