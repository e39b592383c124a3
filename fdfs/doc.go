// Package fdfs speaks the FastDFS V6 wire protocol: the 10-byte header, one
// small type per tracker and storage message, file IDs, a connection pool and
// a client that finds storages through the trackers.
//
// Message types encode with an append-style Append method and decode with a
// DecodeX function that checks every length before it reads and never
// panics. They are shared by the client here and by the in-process server in
// localcluster, so they describe bytes only and know nothing about connections.
//
// The package imports nothing else of this project. It never exits the
// process and logs only through the *slog.Logger it is given.
package fdfs
