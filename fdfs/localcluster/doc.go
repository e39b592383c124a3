// Package localcluster is an in-process FastDFS-compatible cluster: trackers
// and storages that speak the V6 wire protocol on loopback, with the file
// store on local disk. It backs `fdfsfs local`, the mount's embedded default,
// and every test that needs a cluster; fault knobs (fail the next command,
// delay, drop connections, stop a storage) serve the tests.
//
// It imports only fdfs and never listens beyond the address it is given.
package localcluster
