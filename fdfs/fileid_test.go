package fdfs

import (
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"
)

func TestParseFileIDFixtures(t *testing.T) {
	tests := []struct {
		id       string
		created  int64
		size     int64
		crc      uint32
		appender bool
		slave    bool
		ext      string
	}{
		// 15-upload-file: 27 bytes whose IEEE CRC32 is 0x9b508b7d.
		{"group1/" + fixtureRemote, 0x6b06bb37, int64(len(fixtureContent)), crc32.ChecksumIEEE([]byte(fixtureContent)), false, false, "txt"},
		// 16-upload-appender-file: the name carries only the appender flag.
		{"group1/" + fixtureAppender, 0x6b06bb3a, -1, 0, true, false, "txt"},
		// 26: the regenerated name carries the size and CRC32 that
		// 25-query-file-info reported for the appender file.
		{"group1/M00/00/A0/fwAAAWsGuzyARp_UAAAAF0lbpv0343.txt", 0x6b06bb3c, 23, 0x495ba6fd, false, false, "txt"},
		// 32-upload-slave-file: longer than a normal name, so a slave.
		{"group1/M00/00/A0/fwAAAWsGuz6AAOsqAAAAG5tQi30880_big.txt", 0x6b06bb3e, -1, 0, false, true, "txt"},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			f, err := ParseFileID(tt.id)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "group", f.Group, "group1")
			eq(t, "store path", f.StorePathIndex, 0)
			eq(t, "remote", f.Remote, strings.TrimPrefix(tt.id, "group1/"))
			eq(t, "string", f.String(), tt.id)
			eq(t, "source", f.SourceIP.String(), "127.0.0.1")
			eq(t, "source id", f.SourceID, 0)
			eq(t, "created", f.CreateTime.Unix(), tt.created)
			eq(t, "size", f.Size, tt.size)
			eq(t, "crc32", f.CRC32, tt.crc)
			eq(t, "appender", f.Appender, tt.appender)
			eq(t, "slave", f.Slave, tt.slave)
			eq(t, "trunk", f.Trunk, false)
			eq(t, "ext", f.Ext, tt.ext)
		})
	}
}

func TestParseFileIDRejects(t *testing.T) {
	good := "group1/" + fixtureRemote
	bad := []string{
		"",
		"group1",
		"/" + fixtureRemote,
		"group-1/" + fixtureRemote,             // '-' is not allowed in a group name
		"group12345678901234/" + fixtureRemote, // 17 bytes
		"group1/M00/00/A0/short.txt",           // too short
		"group1/X00/00/A0/fwAAAWsGuzeADm3SAAAAG5tQi30758.txt", // no 'M'
		"group1/M0g/00/A0/fwAAAWsGuzeADm3SAAAAG5tQi30758.txt", // not hex
		"group1/M00/00/a0/fwAAAWsGuzeADm3SAAAAG5tQi30758.txt", // lower-case hex
		"group1/M00/00/A0/fwAAAWsGuzeADm3SAAAAG5tQi3+758.txt", // '+' is not in the alphabet
		"group1/M00/00/A0/fwAAAWsGuzeADm3SAAAAG5tQi30758.txt/..",
		"group1/M00/00/A0/fwAAAWsGuzeADm3SAAAAG5tQi30758.toolong",
		good + strings.Repeat("a", MaxFilenameLen),
	}
	for _, id := range bad {
		if _, err := ParseFileID(id); !errors.Is(err, ErrBadFileID) {
			t.Errorf("ParseFileID(%q) = %v, want ErrBadFileID", id, err)
		}
	}
}

func TestParseFileIDServerID(t *testing.T) {
	name, err := GenerateRemoteName(NameParams{StorePathIndex: 0x1F, SourceID: 100001, CreateTime: time.Unix(1795602717, 0),
		Size: 5, CRC32: 7, Ext: "", Rand: rand.New(rand.NewPCG(1, 2))})
	if err != nil {
		t.Fatal(err)
	}
	f, err := ParseFileID("g2/" + name)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "source id", f.SourceID, 100001)
	if f.SourceIP != nil {
		t.Errorf("source ip %v, want nil", f.SourceIP)
	}
	eq(t, "store path", f.StorePathIndex, 0x1F)
	eq(t, "ext", f.Ext, "")
	eq(t, "size", f.Size, 5)
	eq(t, "len", len(name), normalLogicFilenameLen)
}

func TestGenerateRemoteNameRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	created := time.Unix(1795602717, 0)
	for _, tt := range []struct {
		size     int64
		appender bool
		ext      string
	}{
		{0, false, "txt"},
		{27, false, "jpg"},
		{1<<32 - 1, false, "tar.gz"},
		{5 << 32, false, "bin"}, // 20 GiB: stored without the random half
		{0, true, "log"},
		{12345, false, ""},
	} {
		name, err := GenerateRemoteName(NameParams{StorePathIndex: 2, SourceIP: net.IPv4(10, 1, 2, 3), CreateTime: created,
			Size: tt.size, Appender: tt.appender, CRC32: 0xdeadbeef, Ext: tt.ext, SubdirCountPerPath: 16, Rand: rng})
		if err != nil {
			t.Fatal(err)
		}
		f, err := ParseFileID("group9/" + name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		eq(t, name+" path", f.StorePathIndex, 2)
		if hi, lo := hexVal(name[4])<<4|hexVal(name[5]), hexVal(name[7])<<4|hexVal(name[8]); hi >= 16 || lo >= 16 {
			t.Errorf("%s: subdirs %d/%d beyond 16", name, hi, lo)
		}
		eq(t, name+" ip", f.SourceIP.String(), "10.1.2.3")
		eq(t, name+" time", f.CreateTime, created)
		eq(t, name+" appender", f.Appender, tt.appender)
		eq(t, name+" ext", f.Ext, tt.ext)
		eq(t, name+" slave", f.Slave, false)
		if tt.appender {
			eq(t, name+" size", f.Size, -1)
		} else {
			eq(t, name+" size", f.Size, tt.size)
			eq(t, name+" crc", f.CRC32, 0xdeadbeef)
		}
	}
	for _, p := range []NameParams{
		{StorePathIndex: 256, SourceIP: net.IPv4(1, 2, 3, 4)},
		{SourceIP: net.ParseIP("::1")},
		{SourceIP: net.IPv4(1, 2, 3, 4), Ext: "toolong"},
		{SourceIP: net.IPv4(1, 2, 3, 4), Ext: "a/b"},
		{SourceIP: net.IPv4(1, 2, 3, 4), Size: -1},
		{SourceID: FdfsMaxServerID + 1},
	} {
		if _, err := GenerateRemoteName(p); err == nil {
			t.Errorf("GenerateRemoteName(%+v) succeeded", p)
		}
	}
}

func TestSlaveRemoteName(t *testing.T) {
	master := "M00/00/A0/fwAAAWsGuz6AAOsqAAAAG5tQi30880.txt"
	base := strings.TrimSuffix(master, ".txt")
	for _, tt := range []struct{ prefix, ext, want string }{
		{"_big", "txt", base + "_big.txt"},
		{"_150x150", "jpg", base + "_150x150.jpg"},
		{"-s", "", base + "-s"},
		{"", "png", base + ".png"},
	} {
		got, err := SlaveRemoteName(master, tt.prefix, tt.ext)
		if err != nil || got != tt.want {
			t.Errorf("SlaveRemoteName(%q, %q) = %q, %v; want %q", tt.prefix, tt.ext, got, err, tt.want)
		}
	}
	for _, tt := range []struct{ master, prefix, ext string }{
		{master, "", "txt"}, // same name as the master
		{master, "-m", ""},  // the metadata file's name
		{"M00/short", "_a", "txt"},
	} {
		if got, err := SlaveRemoteName(tt.master, tt.prefix, tt.ext); err == nil {
			t.Errorf("SlaveRemoteName(%q, %q, %q) = %q, want an error", tt.master, tt.prefix, tt.ext, got)
		}
	}
}

func TestFileExt(t *testing.T) {
	for name, want := range map[string]string{
		"hello.txt":        "txt",
		"archive.tar.gz":   "tar.gz",
		"photo.jpeg":       "jpeg",
		"a.b.c.d":          "c.d",
		"noext":            "",
		"dir.d/file":       "",
		"x.toolongext":     "",
		"report.final.pdf": "pdf", // "final.pdf" is over 6 bytes
		".bashrc":          "bashrc",
		"trailingdot.":     "",
		"a.j-g":            "j-g",
		"a.x_y":            "x_y",
		// The storage refuses what is not a letter, digit, -, _ or .:
		// the last part alone, else none.
		"a.b~c":    "",
		"x.b~c.gz": "gz",
		"a.ß":      "",
		"a b.c d":  "",
	} {
		if got := FileExt(name); got != want {
			t.Errorf("FileExt(%q) = %q, want %q", name, got, want)
		}
	}
}
