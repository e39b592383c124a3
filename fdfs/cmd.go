package fdfs

import "strconv"

// Command codes, named after the upstream C constants in tracker/tracker_proto.h.
const (
	FdfsProtoCmdQuit       = 82
	FdfsProtoCmdActiveTest = 111 // tracker and storage both answer it
	TrackerProtoCmdResp    = 100 // the cmd of every response
	StorageProtoCmdResp    = TrackerProtoCmdResp

	TrackerProtoCmdServerListOneGroup               = 90
	TrackerProtoCmdServerListAllGroups              = 91
	TrackerProtoCmdServerListStorage                = 92
	TrackerProtoCmdServerDeleteStorage              = 93
	TrackerProtoCmdServerSetTrunkServer             = 94
	TrackerProtoCmdServerGetLeader                  = 95
	TrackerProtoCmdServerTrackerClusterStat         = 96
	TrackerProtoCmdServerStorageClusterStat         = 97
	TrackerProtoCmdServerStorageVolumnStat          = 98
	TrackerProtoCmdServerDeleteGroup                = 108
	TrackerProtoCmdServiceQueryStoreWithoutGroupOne = 101
	TrackerProtoCmdServiceQueryFetchOne             = 102
	TrackerProtoCmdServiceQueryUpdate               = 103
	TrackerProtoCmdServiceQueryStoreWithGroupOne    = 104
	TrackerProtoCmdServiceQueryFetchAll             = 105
	TrackerProtoCmdServiceQueryStoreWithoutGroupAll = 106
	TrackerProtoCmdServiceQueryStoreWithGroupAll    = 107

	StorageProtoCmdUploadFile                 = 11
	StorageProtoCmdDeleteFile                 = 12
	StorageProtoCmdSetMetadata                = 13
	StorageProtoCmdDownloadFile               = 14
	StorageProtoCmdGetMetadata                = 15
	StorageProtoCmdCreateLink                 = 20
	StorageProtoCmdUploadSlaveFile            = 21
	StorageProtoCmdQueryFileInfo              = 22
	StorageProtoCmdUploadAppenderFile         = 23
	StorageProtoCmdAppendFile                 = 24
	StorageProtoCmdModifyFile                 = 34
	StorageProtoCmdTruncateFile               = 36
	StorageProtoCmdRegenerateAppenderFilename = 38
	// A storage streams the files one store path holds; peers use it to
	// rebuild a lost disk (storage_do_fetch_binlog).
	StorageProtoCmdFetchOnePathBinlog = 26
)

// Field sizes from tracker_types.h, fdfs_global.h and libfastcommon.
const (
	FdfsProtoPkgLenSize      = 8  // every 8-byte integer in a body
	FdfsGroupNameMaxLen      = 16 // group names in request bodies; stat records add a NUL
	FdfsStorageIDMaxSize     = 16
	FdfsFileExtNameMaxLen    = 6
	FdfsFilePrefixMaxLen     = 16
	FdfsMaxMetaNameLen       = 64
	FdfsMaxMetaValueLen      = 256
	FdfsDomainNameMaxSize    = 128 // in the classic stat layouts only
	FdfsLogicFilePathLen     = 10  // "M00/00/A0/"
	FdfsFilenameBase64Length = 27
	FdfsTrunkFileInfoLen     = 16
	FdfsMaxServerID          = 1<<24 - 1
	FdfsMaxServersEachGroup  = 32

	IPv4AddressSize = 16 // INET_ADDRSTRLEN
	IPv6AddressSize = 46 // INET6_ADDRSTRLEN
	// Tracker query responses carry addresses one byte short of the C size,
	// without a NUL of their own.
	IPv4AddressFieldSize = IPv4AddressSize - 1
	IPv6AddressFieldSize = IPv6AddressSize - 1
	FdfsMaxIPPortSize    = IPv6AddressSize + 6 // "host:port" in the cluster stat records

	// Flags that QUERY_FILE_INFO carries in the status byte of its request.
	FdfsQueryFinfoFlagsNotCalcCRC32 = 1
	FdfsQueryFinfoFlagsKeepSilence  = 2

	// Set-metadata flags.
	MetaOverwrite byte = 'O'
	MetaMerge     byte = 'M'

	// Metadata separators.
	FdfsRecordSeparator byte = 0x01
	FdfsFieldSeparator  byte = 0x02
)

var cmdNames = map[byte]string{
	FdfsProtoCmdQuit:                                "QUIT",
	FdfsProtoCmdActiveTest:                          "ACTIVE_TEST",
	TrackerProtoCmdResp:                             "RESP",
	TrackerProtoCmdServerListOneGroup:               "SERVER_LIST_ONE_GROUP",
	TrackerProtoCmdServerListAllGroups:              "SERVER_LIST_ALL_GROUPS",
	TrackerProtoCmdServerListStorage:                "SERVER_LIST_STORAGE",
	TrackerProtoCmdServerDeleteStorage:              "SERVER_DELETE_STORAGE",
	TrackerProtoCmdServerSetTrunkServer:             "SERVER_SET_TRUNK_SERVER",
	TrackerProtoCmdServerGetLeader:                  "SERVER_GET_LEADER",
	TrackerProtoCmdServerTrackerClusterStat:         "SERVER_TRACKER_CLUSTER_STAT",
	TrackerProtoCmdServerStorageClusterStat:         "SERVER_STORAGE_CLUSTER_STAT",
	TrackerProtoCmdServerStorageVolumnStat:          "SERVER_STORAGE_VOLUMN_STAT",
	TrackerProtoCmdServerDeleteGroup:                "SERVER_DELETE_GROUP",
	TrackerProtoCmdServiceQueryStoreWithoutGroupOne: "SERVICE_QUERY_STORE_WITHOUT_GROUP_ONE",
	TrackerProtoCmdServiceQueryFetchOne:             "SERVICE_QUERY_FETCH_ONE",
	TrackerProtoCmdServiceQueryUpdate:               "SERVICE_QUERY_UPDATE",
	TrackerProtoCmdServiceQueryStoreWithGroupOne:    "SERVICE_QUERY_STORE_WITH_GROUP_ONE",
	TrackerProtoCmdServiceQueryFetchAll:             "SERVICE_QUERY_FETCH_ALL",
	TrackerProtoCmdServiceQueryStoreWithoutGroupAll: "SERVICE_QUERY_STORE_WITHOUT_GROUP_ALL",
	TrackerProtoCmdServiceQueryStoreWithGroupAll:    "SERVICE_QUERY_STORE_WITH_GROUP_ALL",
	StorageProtoCmdUploadFile:                       "UPLOAD_FILE",
	StorageProtoCmdDeleteFile:                       "DELETE_FILE",
	StorageProtoCmdSetMetadata:                      "SET_METADATA",
	StorageProtoCmdDownloadFile:                     "DOWNLOAD_FILE",
	StorageProtoCmdGetMetadata:                      "GET_METADATA",
	StorageProtoCmdCreateLink:                       "CREATE_LINK",
	StorageProtoCmdUploadSlaveFile:                  "UPLOAD_SLAVE_FILE",
	StorageProtoCmdQueryFileInfo:                    "QUERY_FILE_INFO",
	StorageProtoCmdUploadAppenderFile:               "UPLOAD_APPENDER_FILE",
	StorageProtoCmdAppendFile:                       "APPEND_FILE",
	StorageProtoCmdModifyFile:                       "MODIFY_FILE",
	StorageProtoCmdTruncateFile:                     "TRUNCATE_FILE",
	StorageProtoCmdRegenerateAppenderFilename:       "REGENERATE_APPENDER_FILENAME",
	StorageProtoCmdFetchOnePathBinlog:               "FETCH_ONE_PATH_BINLOG",
}

// CmdName returns the upstream name of a command without its prefix, or
// "cmd N" for one this package does not know.
func CmdName(cmd byte) string {
	if n, ok := cmdNames[cmd]; ok {
		return n
	}
	return "cmd " + strconv.Itoa(int(cmd))
}
