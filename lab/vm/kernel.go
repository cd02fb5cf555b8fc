package vm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultKernelPackage is the Debian meta package whose dependency names the
// current stock kernel image package.
const DefaultKernelPackage = "linux-image-amd64"

// Kernel is a kernel image together with its module tree, laid out as a
// package unpacks it: Root/boot/vmlinuz-VERSION and Root/lib/modules/VERSION.
type Kernel struct {
	Version string // uname -r of the guest, e.g. "6.1.0-57-amd64"
	Image   string // path of the bzImage/vmlinuz
	Root    string // directory holding lib/modules/Version
}

// ModulesDir is the kernel's module directory, Root/lib/modules/Version.
func (k Kernel) ModulesDir() string {
	return filepath.Join(k.Root, "lib", "modules", k.Version)
}

// CacheDir is where dmfm keeps downloaded kernels and other lab state:
// $DMFM_CACHE_DIR, else $XDG_CACHE_HOME/dmfm, else ~/.cache/dmfm.
func CacheDir() (string, error) {
	if d := os.Getenv("DMFM_CACHE_DIR"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find a cache directory (set DMFM_CACHE_DIR): %w", err)
	}
	return filepath.Join(d, "dmfm"), nil
}

// KernelFromImage describes a kernel given by the path of its image. The
// module tree is looked for beside it: IMAGE/../lib/modules/VERSION (an
// unpacked package, VERSION taken from the vmlinuz-VERSION file name) or
// IMAGE/../../lib/modules/VERSION (the image inside boot/).
func KernelFromImage(image string) (Kernel, error) {
	image, err := filepath.Abs(image)
	if err != nil {
		return Kernel{}, err
	}
	if _, err := os.Stat(image); err != nil {
		return Kernel{}, fmt.Errorf("kernel image: %w", err)
	}
	base := filepath.Base(image)
	ver, ok := strings.CutPrefix(base, "vmlinuz-")
	if !ok {
		return Kernel{}, fmt.Errorf("kernel image %s: name it vmlinuz-VERSION so its modules (lib/modules/VERSION) can be found", image)
	}
	for _, root := range []string{filepath.Dir(image), filepath.Dir(filepath.Dir(image))} {
		k := Kernel{Version: ver, Image: image, Root: root}
		if st, err := os.Stat(k.ModulesDir()); err == nil && st.IsDir() {
			if err := ensureDepmod(k); err != nil {
				return Kernel{}, err
			}
			return k, nil
		}
	}
	return Kernel{}, fmt.Errorf("kernel image %s: no lib/modules/%s beside it or one level up", image, ver)
}

// EnsureKernel returns Debian's current stock kernel from the cache,
// downloading and unpacking it first if needed. It needs apt-get, dpkg-deb
// and depmod on the host; progress goes to progress.
func EnsureKernel(ctx context.Context, progress io.Writer) (Kernel, error) {
	cache, err := CacheDir()
	if err != nil {
		return Kernel{}, err
	}
	kdir := filepath.Join(cache, "kernels")
	if err := os.MkdirAll(kdir, 0o755); err != nil {
		return Kernel{}, fmt.Errorf("kernel cache: %w", err)
	}
	pkg, err := cachedKernelPackage(ctx, kdir)
	if err != nil {
		return Kernel{}, err
	}
	ver := strings.TrimPrefix(pkg, "linux-image-")
	k := Kernel{Version: ver, Root: filepath.Join(kdir, ver)}
	k.Image = filepath.Join(k.Root, "boot", "vmlinuz-"+ver)
	// A kernel is renamed into place complete, with its module index: if
	// the index is there, so is the kernel, and no lock is needed.
	if _, err := os.Stat(filepath.Join(k.ModulesDir(), "modules.dep")); err == nil {
		return k, nil
	}
	unlock, err := lockFile(filepath.Join(kdir, ".lock"))
	if err != nil {
		return Kernel{}, err
	}
	defer unlock()
	if _, err := os.Stat(filepath.Join(k.ModulesDir(), "modules.dep")); err == nil {
		return k, nil // fetched while we waited for the lock
	}

	fmt.Fprintf(progress, "dmfm lab: fetching kernel package %s (once; cached in %s)\n", pkg, kdir)
	tmp, err := os.MkdirTemp(kdir, ".fetch-")
	if err != nil {
		return Kernel{}, err
	}
	defer os.RemoveAll(tmp)
	if err := run(ctx, tmp, "apt-get", "download", "-q", pkg); err != nil {
		return Kernel{}, fmt.Errorf("download %s (is apt's package list up to date? try `apt-get update`): %w", pkg, err)
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		return Kernel{}, fmt.Errorf("download %s: expected one .deb, found %d", pkg, len(debs))
	}
	fmt.Fprintf(progress, "dmfm lab: unpacking %s\n", filepath.Base(debs[0]))
	root := filepath.Join(tmp, "root")
	if err := run(ctx, tmp, "dpkg-deb", "-x", debs[0], root); err != nil {
		return Kernel{}, fmt.Errorf("unpack %s: %w", debs[0], err)
	}
	staged := Kernel{Version: ver, Root: root, Image: filepath.Join(root, "boot", "vmlinuz-"+ver)}
	if err := ensureDepmod(staged); err != nil {
		return Kernel{}, err
	}
	os.RemoveAll(k.Root)
	if err := os.Rename(root, k.Root); err != nil {
		return Kernel{}, fmt.Errorf("install kernel into cache: %w", err)
	}
	fmt.Fprintf(progress, "dmfm lab: kernel %s ready\n", ver)
	return k, nil
}

// aptStateFiles are what apt's answer about the kernel package depends on:
// the package lists (rewritten by apt-get update) and the pinning and source
// configuration.
var aptStateFiles = []string{"/var/lib/apt/lists", "/etc/apt/sources.list", "/etc/apt/sources.list.d",
	"/etc/apt/preferences", "/etc/apt/preferences.d"}

// aptStamp summarises the names, sizes and modification times of
// aptStateFiles and of the entries of those that are directories: it changes
// whenever apt's answer may have changed.
func aptStamp() string {
	h := sha256.New()
	for _, p := range aptStateFiles {
		st, err := os.Stat(p)
		if err != nil {
			fmt.Fprintf(h, "%s missing\n", p)
			continue
		}
		fmt.Fprintf(h, "%s %d %d\n", p, st.Size(), st.ModTime().UnixNano())
		if !st.IsDir() {
			continue
		}
		ents, _ := os.ReadDir(p)
		for _, e := range ents {
			// Only the files: apt's partial/ and lock change while it
			// downloads packages, which leaves the answer as it was.
			if !e.Type().IsRegular() || e.Name() == "lock" {
				continue
			}
			if info, err := e.Info(); err == nil {
				fmt.Fprintf(h, " %s %d %d\n", e.Name(), info.Size(), info.ModTime().UnixNano())
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// cachedKernelPackage is kernelPackage, remembered in dir until apt's state
// changes: apt-cache parses every package list each time it runs, which takes
// seconds on a loaded machine without apt's binary cache (Debian's container
// images disable it). Each answer is kept in a file named by its stamp, so
// that runs which compute stamps differently (other dmfm versions) do not
// overwrite each other's answers; answers unused for a week are removed.
func cachedKernelPackage(ctx context.Context, dir string) (string, error) {
	if p := os.Getenv("DMFM_KERNEL_PACKAGE"); p != "" {
		return p, nil
	}
	stamp := aptStamp()
	file := filepath.Join(dir, "package-"+stamp[:16])
	if b, err := os.ReadFile(file); err == nil {
		if s, pkg, ok := strings.Cut(strings.TrimSpace(string(b)), " "); ok && s == stamp && pkg != "" {
			now := time.Now()
			_ = os.Chtimes(file, now, now) // in use: keep it
			return pkg, nil
		}
	}
	pkg, err := kernelPackage(ctx)
	if err != nil {
		return "", err
	}
	// Only a cache: a failure to write it costs time, not correctness.
	_ = writeFileAtomic(file, []byte(stamp+" "+pkg+"\n"))
	old, _ := filepath.Glob(filepath.Join(dir, "package-*"))
	for _, f := range old {
		if st, err := os.Stat(f); err == nil && time.Since(st.ModTime()) > 7*24*time.Hour {
			os.Remove(f)
		}
	}
	return pkg, nil
}

// writeFileAtomic replaces path with data through a temporary file and a
// rename, so that a concurrent reader sees the old or the new content.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}

// kernelPackage asks apt which versioned image package the meta package
// depends on now.
func kernelPackage(ctx context.Context) (string, error) {
	if p := os.Getenv("DMFM_KERNEL_PACKAGE"); p != "" {
		return p, nil
	}
	out, err := exec.CommandContext(ctx, "apt-cache", "depends", DefaultKernelPackage).Output()
	if err != nil {
		return "", fmt.Errorf("ask apt which kernel %s depends on (install apt, or pass --kernel): %w", DefaultKernelPackage, err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if dep, ok := strings.CutPrefix(strings.TrimSpace(l), "Depends: "); ok && strings.HasPrefix(dep, "linux-image-") {
			return dep, nil
		}
	}
	return "", fmt.Errorf("apt knows no kernel for %s (run `apt-get update` first)", DefaultKernelPackage)
}

// ensureDepmod makes sure the module tree has its index; depmod -b works on
// the tree itself and never touches the host's /lib/modules.
func ensureDepmod(k Kernel) error {
	if _, err := os.Stat(filepath.Join(k.ModulesDir(), "modules.dep")); err == nil {
		return nil
	}
	depmod, err := exec.LookPath("depmod")
	if err != nil {
		if _, err2 := os.Stat("/usr/sbin/depmod"); err2 != nil {
			return fmt.Errorf("depmod not found (install kmod): %w", err)
		}
		depmod = "/usr/sbin/depmod"
	}
	if err := run(context.Background(), k.Root, depmod, "-b", k.Root, k.Version); err != nil {
		return fmt.Errorf("index modules of %s: %w", k.Version, err)
	}
	return nil
}

func run(ctx context.Context, dir, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// lockFile takes an exclusive flock on path, creating it, and returns the
// function that releases it.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}
