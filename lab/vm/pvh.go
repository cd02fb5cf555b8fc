package vm

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// A compressed bzImage spends seconds of emulated time under TCG unpacking
// itself before the kernel proper starts. qemu can instead load the kernel's
// uncompressed ELF image and enter it at its PVH entry point (the Xen
// PHYS32_ENTRY note, present when the kernel has CONFIG_PVH), so the image
// is unpacked once on the host and cached.

// xenNotePhys32Entry is the ELF note type (owner "Xen") that marks the
// 32-bit PVH entry point.
const xenNotePhys32Entry = 18

// payloadCodec names the decompressor for a bzImage payload from its first
// bytes, and whether the build appended the uncompressed size (a 32-bit
// little-endian word) after the compressed stream, as it does for every
// method but gzip (see the kernel's arch/x86/boot/compressed/Makefile).
func payloadCodec(p []byte) (tool []string, sizeAppended bool, ok bool) {
	switch {
	case bytes.HasPrefix(p, []byte{0x1f, 0x8b}):
		return []string{"gzip", "-dc"}, false, true
	case bytes.HasPrefix(p, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return []string{"xz", "-dc", "--single-stream"}, true, true
	case bytes.HasPrefix(p, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return []string{"zstd", "-dc"}, true, true
	case bytes.HasPrefix(p, []byte{0x5d, 0x00, 0x00}):
		return []string{"xz", "-dc", "--format=lzma"}, true, true
	case bytes.HasPrefix(p, []byte("BZh")):
		return []string{"bzip2", "-dc"}, true, true
	case bytes.HasPrefix(p, []byte{0x02, 0x21, 0x4c, 0x18}):
		return []string{"lz4", "-dc"}, true, true
	case bytes.HasPrefix(p, []byte{0x89, 'L', 'Z', 'O'}):
		return []string{"lzop", "-dc"}, true, true
	}
	return nil, false, false
}

// bzPayload returns the compressed kernel inside a bzImage, located by the
// payload_offset and payload_length fields of the setup header (boot
// protocol 2.08 and later, see the kernel's Documentation/arch/x86/boot.rst).
func bzPayload(img []byte) ([]byte, error) {
	if len(img) < 0x250 || string(img[0x202:0x206]) != "HdrS" {
		return nil, errors.New("not a bzImage (no HdrS setup header)")
	}
	if v := binary.LittleEndian.Uint16(img[0x206:]); v < 0x208 {
		return nil, fmt.Errorf("boot protocol %d.%02d has no payload fields", v>>8, v&0xff)
	}
	setupSects := int(img[0x1f1])
	if setupSects == 0 {
		setupSects = 4
	}
	start := (setupSects + 1) * 512
	off := int(binary.LittleEndian.Uint32(img[0x248:]))
	n := int(binary.LittleEndian.Uint32(img[0x24c:]))
	if start+off+n > len(img) || n == 0 {
		return nil, fmt.Errorf("payload at %d+%d (%d bytes) lies outside the %d-byte image", start, off, n, len(img))
	}
	return img[start+off : start+off+n], nil
}

// unpackBzImage returns the uncompressed ELF kernel inside a bzImage.
func unpackBzImage(img []byte) ([]byte, error) {
	payload, err := bzPayload(img)
	if err != nil {
		return nil, err
	}
	tool, sized, ok := payloadCodec(payload)
	if !ok {
		return nil, fmt.Errorf("unknown payload compression (magic % x)", payload[:min(len(payload), 6)])
	}
	want := -1
	if sized {
		if len(payload) < 4 {
			return nil, errors.New("payload too short")
		}
		want = int(binary.LittleEndian.Uint32(payload[len(payload)-4:]))
		payload = payload[:len(payload)-4]
	}
	cmd := exec.Command(tool[0], tool[1:]...)
	cmd.Stdin = bytes.NewReader(payload)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %s", strings.Join(tool, " "), err, strings.TrimSpace(stderr.String()))
	}
	if want >= 0 && len(out) != want {
		return nil, fmt.Errorf("%s gave %d bytes, the image says %d", tool[0], len(out), want)
	}
	return out, nil
}

// hasPVHEntry reports whether an ELF kernel has a PVH entry point.
func hasPVHEntry(r io.ReaderAt) (bool, error) {
	f, err := elf.NewFile(r)
	if err != nil {
		return false, err
	}
	defer f.Close()
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 {
		return false, nil
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		b, err := io.ReadAll(p.Open())
		if err != nil {
			return false, fmt.Errorf("read notes: %w", err)
		}
		for len(b) >= 12 {
			namesz := int(binary.LittleEndian.Uint32(b))
			descsz := int(binary.LittleEndian.Uint32(b[4:]))
			typ := binary.LittleEndian.Uint32(b[8:])
			nameEnd := 12 + (namesz+3)&^3
			end := nameEnd + (descsz+3)&^3
			if namesz < 0 || descsz < 0 || end > len(b) {
				break
			}
			if typ == xenNotePhys32Entry && string(bytes.TrimRight(b[12:12+namesz], "\x00")) == "Xen" {
				return true, nil
			}
			b = b[end:]
		}
	}
	return false, nil
}

// pvhImage returns an uncompressed ELF image of k with a PVH entry point,
// unpacked from k.Image once and cached (one entry per image path, redone
// when the image changes), or "" when k.Image cannot be booted that way: no
// PVH support, or a payload this host cannot decompress (said once on
// progress). qemu then boots k.Image as it is.
func pvhImage(k Kernel, progress io.Writer) (string, error) {
	f, err := os.Open(k.Image)
	if err != nil {
		return "", fmt.Errorf("kernel image: %w", err)
	}
	var magic [4]byte
	_, rerr := io.ReadFull(f, magic[:])
	st, serr := f.Stat()
	f.Close()
	if rerr == nil && string(magic[:]) == elf.ELFMAG {
		return "", nil // already an ELF image: qemu enters it through PVH if it can
	}
	if serr != nil {
		return "", fmt.Errorf("kernel image: %w", serr)
	}
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, "vmlinux")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("vmlinux cache: %w", err)
	}
	sum := sha256.Sum256([]byte(k.Image))
	path := filepath.Join(dir, "vmlinux-"+k.Version+"-"+hex.EncodeToString(sum[:8]))
	stamp := fmt.Sprintf("%d %d %s\n", st.Size(), st.ModTime().UnixNano(), k.Image)
	// The .source file records which image the entry was made from; with no
	// image beside it, the verdict was "boot the compressed image".
	cached := func() (string, bool) {
		if b, err := os.ReadFile(path + ".source"); err != nil || string(b) != stamp {
			return "", false
		}
		if _, err := os.Stat(path); err != nil {
			return "", true
		}
		return path, true
	}
	if p, ok := cached(); ok {
		return p, nil
	}
	unlock, err := lockFile(filepath.Join(dir, ".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if p, ok := cached(); ok {
		return p, nil
	}
	os.Remove(path + ".source")
	os.Remove(path)
	pruneVmlinuxCache(dir)
	img, err := os.ReadFile(k.Image)
	if err != nil {
		return "", fmt.Errorf("kernel image: %w", err)
	}
	fmt.Fprintf(progress, "dmfm lab: unpacking %s for direct boot (once; cached in %s)\n", filepath.Base(k.Image), dir)
	out, err := unpackBzImage(img)
	if err == nil {
		var ok bool
		if ok, err = hasPVHEntry(bytes.NewReader(out)); err == nil && !ok {
			err = errors.New("no PVH entry point (CONFIG_PVH)")
		}
	}
	if err == nil {
		if err := writeFileAtomic(path, out); err != nil {
			return "", fmt.Errorf("vmlinux cache: %w", err)
		}
	} else {
		fmt.Fprintf(progress, "dmfm lab: booting %s as it is, which is slower: %v\n", k.Image, err)
	}
	if err := writeFileAtomic(path+".source", []byte(stamp)); err != nil {
		return "", fmt.Errorf("vmlinux cache: %w", err)
	}
	p, _ := cached()
	return p, nil
}

// pruneVmlinuxCache removes cached images whose source image is gone or has
// changed.
func pruneVmlinuxCache(dir string) {
	srcs, _ := filepath.Glob(filepath.Join(dir, "vmlinux-*.source"))
	for _, s := range srcs {
		b, err := os.ReadFile(s)
		if err != nil {
			continue
		}
		var size, mtime int64
		var src string
		if _, err := fmt.Sscanf(string(b), "%d %d", &size, &mtime); err == nil {
			if f := strings.SplitN(strings.TrimSuffix(string(b), "\n"), " ", 3); len(f) == 3 {
				src = f[2]
			}
		}
		if st, err := os.Stat(src); err == nil && src != "" && st.Size() == size && st.ModTime().UnixNano() == mtime {
			continue
		}
		os.Remove(strings.TrimSuffix(s, ".source"))
		os.Remove(s)
	}
}
