package fdfs

import (
	"reflect"
	"testing"
)

// seedFromFixtures adds every captured request and response body, and every
// whole frame, to the corpus: real frames are the best starting points.
func seedFromFixtures(f *testing.F) {
	for _, name := range allFixtureNames(f) {
		fx := loadFixture(f, name)
		f.Add(fx.request.body)
		f.Add(fx.response.body)
		f.Add(fx.request.raw)
		f.Add(fx.response.raw)
	}
}

// fuzzDecoder checks that decode never panics and that whatever it accepts
// encodes back to bytes it decodes to the same value.
func fuzzDecoder[T any](f *testing.F, decode func([]byte) (T, error), encode func(T) []byte) {
	seedFromFixtures(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decode(b)
		if err != nil {
			return
		}
		again, err := decode(encode(v))
		if err != nil {
			t.Fatalf("re-encoded %+v does not decode: %v", v, err)
		}
		if !reflect.DeepEqual(v, again) {
			t.Fatalf("round trip changed the value\nfirst  %+v\nsecond %+v", v, again)
		}
	})
}

type appender interface{ Append([]byte) []byte }

func enc[T appender](v T) []byte { return v.Append(nil) }

func FuzzDecodeHeader(f *testing.F) { fuzzDecoder(f, DecodeHeader, enc[Header]) }
func FuzzDecodeGroupRequest(f *testing.F) {
	fuzzDecoder(f, DecodeGroupRequest, enc[GroupRequest])
}
func FuzzDecodeListStoragesRequest(f *testing.F) {
	fuzzDecoder(f, DecodeListStoragesRequest, enc[ListStoragesRequest])
}
func FuzzDecodeFileRequest(f *testing.F) { fuzzDecoder(f, DecodeFileRequest, enc[FileRequest]) }
func FuzzDecodeQueryStoreResponse(f *testing.F) {
	fuzzDecoder(f, DecodeQueryStoreResponse, enc[QueryStoreResponse])
}
func FuzzDecodeQueryStoreAllResponse(f *testing.F) {
	fuzzDecoder(f, DecodeQueryStoreAllResponse, enc[QueryStoreAllResponse])
}
func FuzzDecodeQueryFetchResponse(f *testing.F) {
	fuzzDecoder(f, DecodeQueryFetchResponse, enc[QueryFetchResponse])
}
func FuzzDecodeQueryFetchAllResponse(f *testing.F) {
	fuzzDecoder(f, DecodeQueryFetchAllResponse, enc[QueryFetchAllResponse])
}
func FuzzDecodeGetLeaderResponse(f *testing.F) {
	fuzzDecoder(f, DecodeGetLeaderResponse, enc[GetLeaderResponse])
}
func FuzzDecodeTrackerClusterStatRequest(f *testing.F) {
	fuzzDecoder(f, DecodeTrackerClusterStatRequest, enc[TrackerClusterStatRequest])
}
func FuzzDecodeTrackerClusterStatResponse(f *testing.F) {
	fuzzDecoder(f, DecodeTrackerClusterStatResponse, enc[TrackerClusterStatResponse])
}
func FuzzDecodeStorageClusterStatRequest(f *testing.F) {
	fuzzDecoder(f, DecodeStorageClusterStatRequest, enc[StorageClusterStatRequest])
}
func FuzzDecodeStorageClusterStatResponse(f *testing.F) {
	fuzzDecoder(f, DecodeStorageClusterStatResponse, enc[StorageClusterStatResponse])
}
func FuzzDecodeVolumnStatRequest(f *testing.F) {
	fuzzDecoder(f, DecodeVolumnStatRequest, enc[VolumnStatRequest])
}
func FuzzDecodeVolumnStatResponse(f *testing.F) {
	fuzzDecoder(f, DecodeVolumnStatResponse, enc[VolumnStatResponse])
}
func FuzzDecodeUploadFileRequest(f *testing.F) {
	fuzzDecoder(f, DecodeUploadFileRequest, enc[UploadFileRequest])
}
func FuzzDecodeUploadSlaveFileRequest(f *testing.F) {
	fuzzDecoder(f, DecodeUploadSlaveFileRequest, enc[UploadSlaveFileRequest])
}
func FuzzDecodeAppendFileRequest(f *testing.F) {
	fuzzDecoder(f, DecodeAppendFileRequest, enc[AppendFileRequest])
}
func FuzzDecodeModifyFileRequest(f *testing.F) {
	fuzzDecoder(f, DecodeModifyFileRequest, enc[ModifyFileRequest])
}
func FuzzDecodeTruncateFileRequest(f *testing.F) {
	fuzzDecoder(f, DecodeTruncateFileRequest, enc[TruncateFileRequest])
}
func FuzzDecodeDownloadFileRequest(f *testing.F) {
	fuzzDecoder(f, DecodeDownloadFileRequest, enc[DownloadFileRequest])
}
func FuzzDecodeSetMetadataRequest(f *testing.F) {
	fuzzDecoder(f, DecodeSetMetadataRequest, enc[SetMetadataRequest])
}
func FuzzDecodeRegenerateAppenderFilenameRequest(f *testing.F) {
	fuzzDecoder(f, DecodeRegenerateAppenderFilenameRequest, enc[RegenerateAppenderFilenameRequest])
}
func FuzzDecodeFileIDResponse(f *testing.F) {
	fuzzDecoder(f, DecodeFileIDResponse, enc[FileIDResponse])
}
func FuzzDecodeQueryFileInfoResponse(f *testing.F) {
	fuzzDecoder(f, DecodeQueryFileInfoResponse, enc[QueryFileInfoResponse])
}

func FuzzDecodeMetadata(f *testing.F) {
	fuzzDecoder(f, DecodeMetadata, func(m []MetaEntry) []byte { return AppendMetadata(nil, m) })
}

// FuzzPrefixLen checks that the length a server reads next is never
// negative and always covers the fixed part.
func FuzzPrefixLen(f *testing.F) {
	seedFromFixtures(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, cmd := range []byte{StorageProtoCmdUploadFile, StorageProtoCmdUploadSlaveFile, StorageProtoCmdAppendFile, StorageProtoCmdModifyFile} {
			n, err := PrefixLen(cmd, b)
			if err == nil && (n < FixedPrefixLen(cmd) || n > FixedPrefixLen(cmd)+MaxFilenameLen) {
				t.Fatalf("cmd %d: prefix length %d out of range", cmd, n)
			}
		}
	})
}

type statPair[T any] struct {
	records []T
	layout  StatLayout
}

func FuzzDecodeGroupStats(f *testing.F) {
	fuzzDecoder(f,
		func(b []byte) (statPair[GroupStat], error) {
			r, l, err := DecodeGroupStats(b, 0)
			return statPair[GroupStat]{r, l}, err
		},
		func(p statPair[GroupStat]) []byte {
			var b []byte
			for _, g := range p.records {
				b = g.Append(b, p.layout)
			}
			return b
		})
}

func FuzzDecodeStorageStats(f *testing.F) {
	fuzzDecoder(f,
		func(b []byte) (statPair[StorageStat], error) {
			r, l, err := DecodeStorageStats(b, 0)
			return statPair[StorageStat]{r, l}, err
		},
		func(p statPair[StorageStat]) []byte {
			var b []byte
			for _, s := range p.records {
				b = s.Append(b, p.layout)
			}
			return b
		})
}

// FuzzParseFileID feeds the remote names of the fixtures, with groups, and
// checks that an accepted ID prints back as itself.
func FuzzParseFileID(f *testing.F) {
	for _, id := range []string{
		"group1/" + fixtureRemote, "group1/" + fixtureAppender,
		"group1/M00/00/A0/fwAAAWsGuz6AAOsqAAAAG5tQi30880_big.txt",
		"group1/M00/00/A0/fwAAAWsGuzyARp_UAAAAF0lbpv0343.txt",
	} {
		f.Add(id)
	}
	f.Fuzz(func(t *testing.T, id string) {
		fid, err := ParseFileID(id)
		if err != nil {
			return
		}
		if fid.String() != id {
			t.Fatalf("%q parsed and printed as %q", id, fid.String())
		}
		again, err := ParseFileID(fid.String())
		if err != nil || !reflect.DeepEqual(fid, again) {
			t.Fatalf("reparse of %q: %+v, %v", id, again, err)
		}
	})
}
