package fs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
)

// aclBytes builds an attribute value: version, then (tag, perm, id)
// triples.
func aclBytes(version uint32, entries ...uint32) []byte {
	b := binary.LittleEndian.AppendUint32(nil, version)
	for i := 0; i+2 < len(entries); i += 3 {
		b = binary.LittleEndian.AppendUint16(b, uint16(entries[i]))
		b = binary.LittleEndian.AppendUint16(b, uint16(entries[i+1]))
		b = binary.LittleEndian.AppendUint32(b, entries[i+2])
	}
	return b
}

const none = aclUndefinedID

// Short names for the tags in the tables.
const (
	uo   = uint32(aclUserObj)
	u    = uint32(aclUser)
	gobj = uint32(aclGroupObj)
	g    = uint32(aclGroup)
	m    = uint32(aclMask)
	o    = uint32(aclOther)
)

func TestParseACL(t *testing.T) {
	minimal := []uint32{uo, 6, none, gobj, 4, none, o, 4, none}
	tests := []struct {
		name  string
		value []byte
		want  acl // nil with ok: no ACL
		ok    bool
	}{
		{"minimal", aclBytes(2, minimal...), acl{{aclUserObj, 6, none}, {aclGroupObj, 4, none}, {aclOther, 4, none}}, true},
		{"named user and group with mask", aclBytes(2, uo, 7, none, u, 4, 65534, gobj, 5, none, g, 6, 100, m, 7, none, o, 0, none),
			acl{{aclUserObj, 7, none}, {aclUser, 4, 65534}, {aclGroupObj, 5, none}, {aclGroup, 6, 100}, {aclMask, 7, none}, {aclOther, 0, none}}, true},
		{"mask without named entries", aclBytes(2, uo, 6, none, gobj, 4, none, m, 4, none, o, 4, none),
			acl{{aclUserObj, 6, none}, {aclGroupObj, 4, none}, {aclMask, 4, none}, {aclOther, 4, none}}, true},
		{"header only: no ACL", aclBytes(2), nil, true},
		{"empty", nil, nil, false},
		{"short header", []byte{2, 0, 0}, nil, false},
		{"version 1", aclBytes(1, minimal...), nil, false},
		{"partial entry", append(aclBytes(2, minimal...), 1, 0), nil, false},
		{"permission bit 8", aclBytes(2, uo, 8|6, none, gobj, 4, none, o, 4, none), nil, false},
		{"no owner", aclBytes(2, gobj, 4, none, o, 4, none), nil, false},
		{"no other", aclBytes(2, uo, 6, none, gobj, 4, none), nil, false},
		{"no owning group", aclBytes(2, uo, 6, none, o, 4, none), nil, false},
		{"named user without mask", aclBytes(2, uo, 6, none, u, 4, 1, gobj, 4, none, o, 4, none), nil, false},
		{"named group without mask", aclBytes(2, uo, 6, none, gobj, 4, none, g, 4, 1, o, 4, none), nil, false},
		{"owner twice", aclBytes(2, uo, 6, none, uo, 6, none, gobj, 4, none, o, 4, none), nil, false},
		{"group before user", aclBytes(2, uo, 6, none, gobj, 4, none, u, 4, 1, m, 4, none, o, 4, none), nil, false},
		{"mask twice", aclBytes(2, uo, 6, none, u, 4, 1, gobj, 4, none, m, 4, none, m, 4, none, o, 4, none), nil, false},
		{"entry after other", aclBytes(2, append(minimal, o, 4, none)...), nil, false},
		{"unknown tag", aclBytes(2, uo, 6, none, gobj, 4, none, 0x40, 4, none, o, 4, none), nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseACL(tt.value)
			if !tt.ok {
				if !errors.Is(err, errBadACL) {
					t.Fatalf("parseACL = %v, %v; want errBadACL", got, err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("parseACL = %v, %v; want %v", got, err, tt.want)
			}
			if got != nil && !bytes.Equal(got.encode(), tt.value) {
				t.Errorf("encode = %x; want the value parsed, %x", got.encode(), tt.value)
			}
		})
	}
}

// mustACL parses a value the test knows to be valid.
func mustACL(t *testing.T, entries ...uint32) acl {
	t.Helper()
	a, err := parseACL(aclBytes(2, entries...))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestACLModeBits(t *testing.T) {
	tests := []struct {
		name  string
		acl   []uint32
		bits  uint32
		equiv bool
	}{
		{"minimal", []uint32{uo, 6, none, gobj, 4, none, o, 0, none}, 0o640, true},
		{"mask sets the group bits", []uint32{uo, 7, none, u, 7, 65534, gobj, 7, none, m, 5, none, o, 1, none}, 0o751, false},
		{"mask alone is kept", []uint32{uo, 6, none, gobj, 6, none, m, 4, none, o, 4, none}, 0o644, false},
		{"named group", []uint32{uo, 6, none, gobj, 0, none, g, 4, 7, m, 6, none, o, 0, none}, 0o660, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bits, equiv := mustACL(t, tt.acl...).modeBits()
			if bits != tt.bits || equiv != tt.equiv {
				t.Errorf("modeBits = %#o, %v; want %#o, %v", bits, equiv, tt.bits, tt.equiv)
			}
		})
	}
}

func TestACLChmod(t *testing.T) {
	tests := []struct {
		name string
		acl  []uint32
		mode uint32
		want []uint32
	}{
		{"the mask takes the group bits; named entries stay",
			[]uint32{uo, 6, none, u, 7, 65534, gobj, 5, none, m, 7, none, o, 4, none}, 0o640,
			[]uint32{uo, 6, none, u, 7, 65534, gobj, 5, none, m, 4, none, o, 0, none}},
		{"without a mask the owning group does",
			[]uint32{uo, 6, none, gobj, 4, none, o, 4, none}, 0o751,
			[]uint32{uo, 7, none, gobj, 5, none, o, 1, none}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := mustACL(t, tt.acl...)
			orig := append(acl(nil), a...)
			got := a.chmod(tt.mode)
			if want := mustACL(t, tt.want...); !reflect.DeepEqual(got, want) {
				t.Errorf("chmod(%#o) = %v; want %v", tt.mode, got, want)
			}
			if !reflect.DeepEqual(a, orig) {
				t.Errorf("chmod changed its receiver: %v", a)
			}
			if bits, _ := got.modeBits(); bits != tt.mode&0o777 {
				t.Errorf("the chmodded ACL gives mode %#o; want %#o", bits, tt.mode&0o777)
			}
		})
	}
}

func TestACLInherit(t *testing.T) {
	named := []uint32{uo, 7, none, u, 7, 65534, gobj, 5, none, m, 7, none, o, 5, none}
	tests := []struct {
		name       string
		def        []uint32
		mode       uint32
		dir        bool
		wantAccess []uint32 // nil: none
		wantMode   uint32
	}{
		{"file 0666: mask rw-, named user's rwx kept", named, 0o666, false,
			[]uint32{uo, 6, none, u, 7, 65534, gobj, 5, none, m, 6, none, o, 4, none}, 0o664},
		{"directory 0777 takes the default whole", named, 0o777, true, named, 0o775},
		{"file 0600: no group or other", named, 0o600, false,
			[]uint32{uo, 6, none, u, 7, 65534, gobj, 5, none, m, 0, none, o, 0, none}, 0o600},
		{"minimal default: mode only, no access ACL", []uint32{uo, 7, none, gobj, 0, none, o, 0, none}, 0o666, false, nil, 0o600},
		{"set-ID bits pass", []uint32{uo, 7, none, gobj, 7, none, o, 7, none}, 0o4755, false, nil, 0o4755},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			def := mustACL(t, tt.def...)
			access, dflt, mode := def.inherit(tt.mode, tt.dir)
			var want acl
			if tt.wantAccess != nil {
				want = mustACL(t, tt.wantAccess...)
			}
			if !reflect.DeepEqual(access, want) || mode != tt.wantMode {
				t.Errorf("inherit(%#o) = %v, mode %#o; want %v, mode %#o", tt.mode, access, mode, want, tt.wantMode)
			}
			if tt.dir != (dflt != nil) || (dflt != nil && !reflect.DeepEqual(dflt, def)) {
				t.Errorf("default ACL inherited: %v (directory: %v)", dflt, tt.dir)
			}
			if access != nil {
				if bits, _ := access.modeBits(); bits != mode&0o777 {
					t.Errorf("access ACL gives mode %#o; the inode has %#o", bits, mode&0o777)
				}
			}
		})
	}
}

// FuzzParseACL: any bytes either parse to an ACL that encodes back to a
// value that parses to the same ACL and passes valid, or fail with
// errBadACL; never a panic.
func FuzzParseACL(f *testing.F) {
	f.Add(aclBytes(2, uo, 6, none, gobj, 4, none, o, 4, none))
	f.Add(aclBytes(2, uo, 7, none, u, 4, 65534, gobj, 5, none, g, 6, 100, m, 7, none, o, 0, none))
	f.Add(aclBytes(2))
	f.Add([]byte{2, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := parseACL(b)
		if err != nil {
			if !errors.Is(err, errBadACL) {
				t.Fatalf("error %v is not errBadACL", err)
			}
			return
		}
		if a == nil {
			return
		}
		again, err := parseACL(a.encode())
		if err != nil || !reflect.DeepEqual(normalIDs(again), normalIDs(a)) {
			t.Fatalf("%v encodes to %x, which parses to %v, %v", a, a.encode(), again, err)
		}
		mode := uint32(len(b)) & 0o777
		if bits, _ := a.chmod(mode).modeBits(); bits != mode {
			t.Fatalf("chmod(%#o) of %v gives mode %#o", mode, a, bits)
		}
		access, _, m := a.inherit(0o777, false)
		if access != nil {
			if err := access.valid(); err != nil {
				t.Fatalf("inherited ACL %v: %v", access, err)
			}
			if bits, _ := access.modeBits(); bits != m&0o777 {
				t.Fatalf("inherited ACL %v gives mode %#o; inode has %#o", access, bits, m)
			}
		}
	})
}

// normalIDs is a with the IDs encode does not keep made undefined.
func normalIDs(a acl) acl {
	out := append(acl(nil), a...)
	for i := range out {
		if out[i].Tag != aclUser && out[i].Tag != aclGroup {
			out[i].ID = aclUndefinedID
		}
	}
	return out
}
