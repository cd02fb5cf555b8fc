package vm

import (
	"bufio"
	"fmt"
	"io"
	"os"
)

// cpioWriter writes an archive in the "newc" format the kernel unpacks as an
// initramfs (see the kernel's Documentation/driver-api/early-userspace/
// buffer-format.rst): every entry is a 110-byte ASCII header of thirteen
// 8-digit hex fields after the magic "070701", then the NUL-terminated name,
// then the data, each padded to a multiple of four bytes.
type cpioWriter struct {
	w   *bufio.Writer
	off int64
	ino uint32
	err error
}

func newCPIOWriter(w io.Writer) *cpioWriter {
	return &cpioWriter{w: bufio.NewWriterSize(w, 1<<20), ino: 1}
}

const (
	cpioModeDir  = 0o040000
	cpioModeFile = 0o100000
	cpioModeChr  = 0o020000
	cpioModeLink = 0o120000
)

func (c *cpioWriter) write(p []byte) {
	if c.err != nil {
		return
	}
	n, err := c.w.Write(p)
	c.off += int64(n)
	c.err = err
}

func (c *cpioWriter) pad() {
	if r := c.off % 4; r != 0 {
		c.write(make([]byte, 4-r))
	}
}

func (c *cpioWriter) header(name string, mode uint32, size int64, rmajor, rminor uint32) {
	c.ino++
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		c.ino, mode, 0, 0, 1, 0, size, 0, 0, rmajor, rminor, len(name)+1, 0)
	c.write([]byte(hdr))
	c.write([]byte(name))
	c.write([]byte{0})
	c.pad()
}

// Dir adds a directory.
func (c *cpioWriter) Dir(name string, perm uint32) {
	c.header(name, cpioModeDir|perm, 0, 0, 0)
}

// CharDev adds a character device node.
func (c *cpioWriter) CharDev(name string, perm, major, minor uint32) {
	c.header(name, cpioModeChr|perm, 0, major, minor)
}

// Bytes adds a regular file with the given contents.
func (c *cpioWriter) Bytes(name string, perm uint32, data []byte) {
	c.header(name, cpioModeFile|perm, int64(len(data)), 0, 0)
	c.write(data)
	c.pad()
}

// File adds a regular file copied from the host path src.
func (c *cpioWriter) File(name string, perm uint32, src string) {
	if c.err != nil {
		return
	}
	f, err := os.Open(src)
	if err != nil {
		c.err = err
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		c.err = err
		return
	}
	c.header(name, cpioModeFile|perm, st.Size(), 0, 0)
	if c.err != nil {
		return
	}
	n, err := io.Copy(c.w, f)
	c.off += n
	if err == nil && n != st.Size() {
		err = fmt.Errorf("%s changed size while being archived", src)
	}
	if err != nil {
		c.err = err
		return
	}
	c.pad()
}

// Close writes the trailer and flushes; it returns the first error met.
func (c *cpioWriter) Close() error {
	c.header("TRAILER!!!", 0, 0, 0, 0)
	if c.err == nil {
		c.err = c.w.Flush()
	}
	return c.err
}
