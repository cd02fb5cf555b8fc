package dmioctl

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// readHex loads a hand-written golden file (format in testdata/README.md).
func readHex(t *testing.T, name string) []byte {
	t.Helper()
	text, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for n, line := range strings.Split(string(text), "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		for _, tok := range strings.Fields(line) {
			byteStr, countStr, rep := strings.Cut(tok, "*")
			b, err := hex.DecodeString(byteStr)
			if err != nil || len(b) != 1 {
				t.Fatalf("%s:%d: bad byte %q", name, n+1, tok)
			}
			count := 1
			if rep {
				if count, err = strconv.Atoi(countStr); err != nil || count < 1 {
					t.Fatalf("%s:%d: bad repeat %q", name, n+1, tok)
				}
			}
			out = append(out, bytes.Repeat(b, count)...)
		}
	}
	return out
}

// diffBytes reports the first difference between got and want.
func diffBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	for i := 0; i < len(got) && i < len(want); i++ {
		if got[i] != want[i] {
			t.Fatalf("%s: first difference at byte %d: got %#02x, want %#02x\ngot  %x\nwant %x", what, i, got[i], want[i], got, want)
		}
	}
	t.Fatalf("%s: length %d, want %d", what, len(got), len(want))
}

func TestHeaderLayout(t *testing.T) {
	var h Header
	offsets := []struct {
		name string
		got  uintptr
		want uintptr
	}{
		{"version", unsafe.Offsetof(h.Version), 0},
		{"data_size", unsafe.Offsetof(h.DataSize), 12},
		{"data_start", unsafe.Offsetof(h.DataStart), 16},
		{"target_count", unsafe.Offsetof(h.TargetCount), 20},
		{"open_count", unsafe.Offsetof(h.OpenCount), 24},
		{"flags", unsafe.Offsetof(h.Flags), 28},
		{"event_nr", unsafe.Offsetof(h.EventNr), 32},
		{"padding", unsafe.Offsetof(h.Padding), 36},
		{"dev", unsafe.Offsetof(h.Dev), 40},
		{"name", unsafe.Offsetof(h.Name), 48},
		{"uuid", unsafe.Offsetof(h.UUID), 176},
		{"data", unsafe.Offsetof(h.Data), 305},
	}
	for _, o := range offsets {
		if o.got != o.want {
			t.Errorf("offset of %s = %d, want %d", o.name, o.got, o.want)
		}
	}
	if unsafe.Sizeof(h) != HeaderSize {
		t.Errorf("sizeof header = %d, want %d", unsafe.Sizeof(h), HeaderSize)
	}
}

func TestRequestNumbers(t *testing.T) {
	// _IOWR(0xfd, nr, struct dm_ioctl) = 0xc0000000 | 312<<16 | 0xfd<<8 | nr;
	// 312<<16 = 0x01380000, so DM_VERSION is 0xc138fd00.
	cases := []struct {
		name string
		got  uint32
		want uint32
	}{
		{"DM_VERSION", ReqVersion, 0xc138fd00},
		{"DM_REMOVE_ALL", ReqRemoveAll, 0xc138fd01},
		{"DM_LIST_DEVICES", ReqListDevices, 0xc138fd02},
		{"DM_DEV_CREATE", ReqDevCreate, 0xc138fd03},
		{"DM_DEV_REMOVE", ReqDevRemove, 0xc138fd04},
		{"DM_DEV_RENAME", ReqDevRename, 0xc138fd05},
		{"DM_DEV_SUSPEND", ReqDevSuspend, 0xc138fd06},
		{"DM_DEV_STATUS", ReqDevStatus, 0xc138fd07},
		{"DM_DEV_WAIT", ReqDevWait, 0xc138fd08},
		{"DM_TABLE_LOAD", ReqTableLoad, 0xc138fd09},
		{"DM_TABLE_CLEAR", ReqTableClear, 0xc138fd0a},
		{"DM_TABLE_DEPS", ReqTableDeps, 0xc138fd0b},
		{"DM_TABLE_STATUS", ReqTableStatus, 0xc138fd0c},
		{"DM_LIST_VERSIONS", ReqListVersions, 0xc138fd0d},
		{"DM_TARGET_MSG", ReqTargetMsg, 0xc138fd0e},
		{"DM_DEV_SET_GEOMETRY", ReqDevSetGeometry, 0xc138fd0f},
		{"DM_DEV_ARM_POLL", ReqDevArmPoll, 0xc138fd10},
		{"DM_GET_TARGET_VERSION", ReqGetTargetVersion, 0xc138fd11},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
		}
	}
}

func TestFlags(t *testing.T) {
	// Bit positions from dm-ioctl.h.
	flags := map[string][2]uint32{
		"DM_READONLY_FLAG":              {ReadOnlyFlag, 0},
		"DM_SUSPEND_FLAG":               {SuspendFlag, 1},
		"DM_PERSISTENT_DEV_FLAG":        {PersistentDevFlag, 3},
		"DM_STATUS_TABLE_FLAG":          {StatusTableFlag, 4},
		"DM_ACTIVE_PRESENT_FLAG":        {ActivePresentFlag, 5},
		"DM_INACTIVE_PRESENT_FLAG":      {InactivePresentFlag, 6},
		"DM_BUFFER_FULL_FLAG":           {BufferFullFlag, 8},
		"DM_SKIP_BDGET_FLAG":            {SkipBdgetFlag, 9},
		"DM_SKIP_LOCKFS_FLAG":           {SkipLockfsFlag, 10},
		"DM_NOFLUSH_FLAG":               {NoflushFlag, 11},
		"DM_QUERY_INACTIVE_TABLE_FLAG":  {QueryInactiveTableFlag, 12},
		"DM_UEVENT_GENERATED_FLAG":      {UeventGeneratedFlag, 13},
		"DM_UUID_FLAG":                  {UUIDFlag, 14},
		"DM_SECURE_DATA_FLAG":           {SecureDataFlag, 15},
		"DM_DATA_OUT_FLAG":              {DataOutFlag, 16},
		"DM_DEFERRED_REMOVE":            {DeferredRemove, 17},
		"DM_INTERNAL_SUSPEND_FLAG":      {InternalSuspendFlag, 18},
		"DM_IMA_MEASUREMENT_FLAG":       {IMAMeasurementFlag, 19},
		"DM_NAME_LIST_FLAG_HAS_UUID":    {NameListFlagHasUUID, 0},
		"DM_NAME_LIST_FLAG_DOESNT_HAVE": {NameListFlagDoesntHaveUUID, 1},
	}
	for name, f := range flags {
		if f[0] != 1<<f[1] {
			t.Errorf("%s = %#x, want bit %d", name, f[0], f[1])
		}
	}
}

// goldenHeader is the header described in testdata/header.hex.
func goldenHeader(t *testing.T) Header {
	h := Header{
		Version:     [3]uint32{4, 47, 0},
		DataSize:    16384,
		DataStart:   312,
		TargetCount: 2,
		OpenCount:   2,
		Flags:       ActivePresentFlag | UUIDFlag,
		EventNr:     7,
		Dev:         unix.Mkdev(253, 3),
	}
	if err := h.SetName("lab0"); err != nil {
		t.Fatal(err)
	}
	if err := h.SetUUID("LAB-0001"); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHeaderGolden(t *testing.T) {
	want := readHex(t, "header.hex")
	h := goldenHeader(t)
	got := make([]byte, HeaderSize)
	h.Marshal(got)
	diffBytes(t, "Marshal", got, want)

	var back Header
	if err := back.Unmarshal(want); err != nil {
		t.Fatal(err)
	}
	if back != h {
		t.Errorf("Unmarshal = %+v, want %+v", back, h)
	}
	if back.NameString() != "lab0" || back.UUIDString() != "LAB-0001" {
		t.Errorf("name/uuid = %q/%q", back.NameString(), back.UUIDString())
	}
	if err := back.Unmarshal(want[:HeaderSize-1]); err == nil {
		t.Error("Unmarshal of a short buffer succeeded")
	}
}

func TestHeaderStrings(t *testing.T) {
	var h Header
	// Setting a shorter name must clear the tail of a longer one.
	if err := h.SetName(strings.Repeat("x", NameLen-1)); err != nil {
		t.Fatalf("longest name: %v", err)
	}
	if err := h.SetName("ab"); err != nil || h.NameString() != "ab" {
		t.Fatalf("SetName(ab) = %v, name %q", err, h.NameString())
	}
	if !bytes.Equal(h.Name[2:], make([]byte, NameLen-2)) {
		t.Error("SetName left bytes of the previous name")
	}
	if err := h.SetName(strings.Repeat("x", NameLen)); err == nil || !strings.Contains(err.Error(), "limit is 127") {
		t.Errorf("overlong name: %v", err)
	}
	if err := h.SetUUID(strings.Repeat("u", UUIDLen-1)); err != nil {
		t.Errorf("longest uuid: %v", err)
	}
	if err := h.SetUUID(strings.Repeat("u", UUIDLen)); err == nil {
		t.Error("overlong uuid accepted")
	}
	if err := h.SetName("a\x00b"); err == nil {
		t.Error("name with NUL accepted")
	}
}

func TestTableLoadRequestGolden(t *testing.T) {
	want := readHex(t, "table_load_request.hex")
	payload, err := AppendTargetSpecs(nil, []TargetSpec{
		{SectorStart: 0, Length: 2048, TargetType: "linear", Params: "7:0 0"},
		{SectorStart: 2048, Length: 1024, TargetType: "zero"},
		{SectorStart: 3072, Length: 4096, TargetType: "flakey", Params: "7:1 8 1 2 1 drop_writes"},
	})
	if err != nil {
		t.Fatal(err)
	}
	h := Header{Version: [3]uint32{VersionMajor, VersionMinor, VersionPatch}, TargetCount: 3}
	if err := h.SetName("lab0"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, HeaderSize+len(payload))
	if err := PrepareRequest(buf, &h, payload); err != nil {
		t.Fatal(err)
	}
	diffBytes(t, "table load request", buf, want)
}

func TestMessageRequestGolden(t *testing.T) {
	want := readHex(t, "message_request.hex")
	payload := AppendTargetMsg(nil, 2048, "@stats_list")
	h := Header{Version: [3]uint32{VersionMajor, VersionMinor, VersionPatch}}
	if err := h.SetName("lab0"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, HeaderSize+len(payload))
	if err := PrepareRequest(buf, &h, payload); err != nil {
		t.Fatal(err)
	}
	diffBytes(t, "message request", buf, want)

	if err := PrepareRequest(make([]byte, HeaderSize+len(payload)-1), &h, payload); err == nil {
		t.Error("PrepareRequest into a too-small buffer succeeded")
	}
}

func TestAppendTargetSpecsErrors(t *testing.T) {
	cases := []struct {
		spec TargetSpec
		want string
	}{
		{TargetSpec{Length: 1}, "empty target type"},
		{TargetSpec{Length: 1, TargetType: strings.Repeat("t", MaxTypeName)}, "longer than 15"},
		{TargetSpec{Length: 1, TargetType: "linear", Params: "a\x00b"}, "NUL"},
	}
	for _, c := range cases {
		_, err := AppendTargetSpecs(nil, []TargetSpec{c.spec})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("AppendTargetSpecs(%+v) = %v, want error containing %q", c.spec, err, c.want)
		}
	}
	// The longest valid type name still leaves its NUL inside the field.
	b, err := AppendTargetSpecs(nil, []TargetSpec{{Length: 1, TargetType: strings.Repeat("t", MaxTypeName-1)}})
	if err != nil || b[24+MaxTypeName-1] != 0 {
		t.Errorf("15-byte type: %v", err)
	}
}

func TestParseNameList(t *testing.T) {
	cases := []struct {
		file string
		want []NameListEntry
	}{
		{"list_devices_uuid.hex", []NameListEntry{
			{Dev: unix.Mkdev(253, 0), Name: "lab0", HasEventNr: true, EventNr: 3, Flags: NameListFlagHasUUID, UUID: "LAB-0001"},
			{Dev: unix.Mkdev(253, 1), Name: "scratch", HasEventNr: true, EventNr: 0, Flags: NameListFlagDoesntHaveUUID},
		}},
		{"list_devices_noflags.hex", []NameListEntry{
			{Dev: unix.Mkdev(253, 0), Name: "lab0", HasEventNr: true, EventNr: 3},
			{Dev: unix.Mkdev(253, 1), Name: "scratch", HasEventNr: true, EventNr: 5},
		}},
		{"list_devices_old.hex", []NameListEntry{
			{Dev: unix.Mkdev(253, 0), Name: "lab0"},
			{Dev: unix.Mkdev(253, 1), Name: "scratch"},
		}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			got, err := ParseNameList(readHex(t, c.file))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func TestParseNameListEdges(t *testing.T) {
	valid := readHex(t, "list_devices_uuid.hex")
	// The kernel reports an empty list as no payload at all.
	if got, err := ParseNameList(nil); err != nil || got != nil {
		t.Errorf("empty payload: %v, %v", got, err)
	}
	// Older kernels left a zero dev as the "no devices" marker.
	if got, err := ParseNameList(make([]byte, 16)); err != nil || got != nil {
		t.Errorf("zero dev marker: %v, %v", got, err)
	}
	corrupt := []struct {
		name string
		data []byte
	}{
		{"truncated in name", valid[:15]},
		{"uuid cut short", valid[:38]},
		{"next past end", func() []byte { b := bytes.Clone(valid); b[8] = 0xf0; return b }()},
		{"misaligned next", func() []byte { b := bytes.Clone(valid); b[8] = 0x2c; return b }()},
		{"second record truncated", valid[:60]},
	}
	for _, c := range corrupt {
		if _, err := ParseNameList(c.data); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
}

func TestParseTargetVersions(t *testing.T) {
	data := readHex(t, "versions.hex")
	got, err := ParseTargetVersions(data)
	if err != nil {
		t.Fatal(err)
	}
	want := []TargetVersion{
		{"linear", [3]uint32{1, 4, 0}},
		{"zero", [3]uint32{1, 2, 0}},
		{"striped", [3]uint32{1, 6, 0}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if _, err := ParseTargetVersions(data[:30]); err == nil {
		t.Error("truncated versions parsed")
	}
	bad := bytes.Clone(data)
	bad[0] = 0x13 // next not aligned
	if _, err := ParseTargetVersions(bad); err == nil {
		t.Error("misaligned next accepted")
	}
}

func TestParseDeps(t *testing.T) {
	data := readHex(t, "deps.hex")
	got, err := ParseDeps(data)
	if err != nil {
		t.Fatal(err)
	}
	want := []uint64{unix.Mkdev(7, 0), unix.Mkdev(7, 1), unix.Mkdev(259, 65536)}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#x, want %#x", got, want)
	}
	if unix.Major(got[2]) != 259 || unix.Minor(got[2]) != 65536 {
		t.Errorf("huge_encode_dev value %#x decodes to %d:%d", got[2], unix.Major(got[2]), unix.Minor(got[2]))
	}
	if got, err := ParseDeps(nil); err != nil || len(got) != 0 {
		t.Errorf("no payload: %v, %v", got, err)
	}
	if _, err := ParseDeps(data[:len(data)-1]); !errors.Is(err, errTruncated) {
		t.Errorf("truncated deps: %v", err)
	}
}

func TestParseTargetSpecs(t *testing.T) {
	data := readHex(t, "table_status.hex")
	got, err := ParseTargetSpecs(data, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := []TargetSpec{
		{SectorStart: 0, Length: 2048, TargetType: "linear", Params: "7:0 0"},
		{SectorStart: 2048, Length: 4096, TargetType: "linear", Params: "7:1 2048"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if _, err := ParseTargetSpecs(data, 3); err == nil {
		t.Error("asking for more specs than present succeeded")
	}
	if _, err := ParseTargetSpecs(data[:96], 2); err == nil {
		t.Error("unterminated parameters accepted")
	}
	if got, err := ParseTargetSpecs(nil, 0); err != nil || got != nil {
		t.Errorf("zero targets: %v, %v", got, err)
	}
}

// TestLoadPayloadParsesBack checks that the request encoder and the reply
// decoder agree on the spec record once next is rebased, for many parameter
// lengths (every padding case).
func TestLoadPayloadParsesBack(t *testing.T) {
	var specs []TargetSpec
	var start uint64
	for n := range 20 {
		specs = append(specs, TargetSpec{SectorStart: start, Length: 8, TargetType: "linear", Params: strings.Repeat("p", n)})
		start += 8
	}
	payload, err := AppendTargetSpecs(nil, specs)
	if err != nil {
		t.Fatal(err)
	}
	// Convert relative next fields to reply-style absolute offsets.
	off := 0
	for range specs {
		next := int(le.Uint32(payload[off+20:]))
		if next%Align != 0 || next < TargetSpecSize+1 {
			t.Fatalf("spec at %d: next %d", off, next)
		}
		le.PutUint32(payload[off+20:], uint32(off+next))
		off += next
	}
	if off != len(payload) {
		t.Fatalf("records cover %d of %d bytes", off, len(payload))
	}
	got, err := ParseTargetSpecs(payload, uint32(len(specs)))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, specs) {
		t.Errorf("round trip differs:\n%+v\n%+v", got, specs)
	}
}

func TestReplyData(t *testing.T) {
	buf := make([]byte, 1024)
	cases := []struct {
		start, size uint32
		want        int // payload length, -1 for error
	}{
		{312, 305, 0}, // no payload: data_size = offsetof(data)
		{312, 312, 0},
		{312, 400, 88},
		{312, 1024, 712},
		{312, 1025, -1},
		{100, 400, -1},
	}
	for _, c := range cases {
		h := Header{DataStart: c.start, DataSize: c.size}
		got, err := ReplyData(buf, &h)
		switch {
		case c.want < 0 && err == nil:
			t.Errorf("start %d size %d: no error", c.start, c.size)
		case c.want >= 0 && (err != nil || len(got) != c.want):
			t.Errorf("start %d size %d: %d bytes, %v; want %d", c.start, c.size, len(got), err, c.want)
		}
	}
}

func TestAlignUp(t *testing.T) {
	for n, want := range map[int]int{0: 0, 1: 8, 7: 8, 8: 8, 9: 16, 41: 48, 64: 64} {
		if got := AlignUp(n); got != want {
			t.Errorf("AlignUp(%d) = %d, want %d", n, got, want)
		}
	}
}

func TestIoctlShortBuffer(t *testing.T) {
	err := Ioctl(^uintptr(0), ReqVersion, make([]byte, HeaderSize-1))
	if err == nil || !strings.Contains(err.Error(), "smaller than the header") {
		t.Errorf("short buffer: %v", err)
	}
	// A bad descriptor reaches the kernel and comes back as EBADF.
	if err := Ioctl(^uintptr(0), ReqVersion, make([]byte, HeaderSize)); !errors.Is(err, unix.EBADF) {
		t.Errorf("bad fd: %v", err)
	}
}

func ExampleRequest() {
	fmt.Printf("%#x\n", Request(CmdTableLoad))
	// Output: 0xc138fd09
}
