//go:build !unix

package spend

import "os"

// lockDir opens path as the spool's lock file. Without flock the directory is not
// protected from a second writer: give each writer its own spool directory.
func lockDir(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
}
