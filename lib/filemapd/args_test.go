package filemapd

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name    string
		argv    []string
		want    Args
		wantErr string // substring; "" = no error
	}{
		{"minimal inode", []string{"3", "0", "/mnt/f", "inode"}, Args{FD: 3, GroupID: 0, Path: "/mnt/f", Mode: ModeInode}, ""},
		{"minimal path", []string{"7", "12", "/mnt/f", "path"}, Args{FD: 7, GroupID: 12, Path: "/mnt/f", Mode: ModePath}, ""},
		{"foreground", []string{"3", "1", "/f", "inode", "1"}, Args{FD: 3, GroupID: 1, Path: "/f", Foreground: true}, ""},
		{"background verbose", []string{"3", "1", "/f", "path", "0", "3"}, Args{FD: 3, GroupID: 1, Path: "/f", Mode: ModePath, Verbose: 3}, ""},
		{"8-digit group", []string{"3", "12345678", "/f", "inode"}, Args{FD: 3, GroupID: 12345678, Path: "/f"}, ""},
		{"10-digit fd and group", []string{"1234567890", "9876543210", "/f", "inode"}, Args{FD: 1234567890, GroupID: 9876543210, Path: "/f"}, ""},
		{"max uint64 group", []string{"3", "18446744073709551615", "/f", "inode"}, Args{FD: 3, GroupID: 1<<64 - 1, Path: "/f"}, ""},
		{"path with spaces", []string{"3", "5", "/mnt/a b/c d", "inode"}, Args{FD: 3, GroupID: 5, Path: "/mnt/a b/c d"}, ""},

		{"no args", nil, Args{}, "need at least 4 arguments"},
		{"three args", []string{"3", "1", "/f"}, Args{}, "need at least 4 arguments"},
		{"seven args", []string{"3", "1", "/f", "inode", "0", "0", "x"}, Args{}, "too many arguments"},
		{"fd not a number", []string{"x", "1", "/f", "inode"}, Args{}, `bad fd "x"`},
		{"fd negative", []string{"-1", "1", "/f", "inode"}, Args{}, `bad fd "-1"`},
		{"fd too big", []string{"4294967296", "1", "/f", "inode"}, Args{}, `bad fd "4294967296"`},
		{"group not a number", []string{"3", "g1", "/f", "inode"}, Args{}, `bad group_id "g1"`},
		{"group negative", []string{"3", "-2", "/f", "inode"}, Args{}, `bad group_id "-2"`},
		{"group hex", []string{"3", "0x10", "/f", "inode"}, Args{}, `bad group_id "0x10"`},
		{"group overflow", []string{"3", "18446744073709551616", "/f", "inode"}, Args{}, `bad group_id "18446744073709551616"`},
		{"group empty", []string{"3", "", "/f", "inode"}, Args{}, `bad group_id ""`},
		{"relative path", []string{"3", "1", "f", "inode"}, Args{}, `bad abs_path "f"`},
		{"empty path", []string{"3", "1", "", "inode"}, Args{}, `bad abs_path ""`},
		{"bad mode", []string{"3", "1", "/f", "name"}, Args{}, `bad mode "name"`},
		{"mode case", []string{"3", "1", "/f", "INODE"}, Args{}, `bad mode "INODE"`},
		{"bad foreground", []string{"3", "1", "/f", "inode", "2"}, Args{}, `bad foreground "2"`},
		{"foreground word", []string{"3", "1", "/f", "inode", "yes"}, Args{}, `bad foreground "yes"`},
		{"verbose too high", []string{"3", "1", "/f", "inode", "0", "4"}, Args{}, `bad verbose "4"`},
		{"verbose negative", []string{"3", "1", "/f", "inode", "0", "-1"}, Args{}, `bad verbose "-1"`},
		{"help among others", []string{"--help", "1", "/f", "inode"}, Args{}, `bad fd "--help"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseArgs(tc.argv)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseArgs(%q) error = %v, want one containing %q", tc.argv, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseArgs(%q): %v", tc.argv, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("ParseArgs(%q) = %+v, want %+v", tc.argv, got, tc.want)
			}
			// What Argv writes parses back to the same thing.
			again, err := ParseArgs(got.Argv())
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Fatalf("ParseArgs(%q) = %+v, %v; want %+v", got.Argv(), again, err, got)
			}
		})
	}
}

func TestParseArgsHelp(t *testing.T) {
	for _, h := range []string{"-h", "-help", "--help"} {
		if _, err := ParseArgs([]string{h}); !errors.Is(err, ErrHelp) {
			t.Errorf("ParseArgs(%q) = %v, want ErrHelp", h, err)
		}
	}
}

func TestArgvFormat(t *testing.T) {
	a := Args{FD: 3, GroupID: 123456789012, Path: "/mnt/x", Mode: ModePath, Foreground: true, Verbose: 2}
	want := []string{"3", "123456789012", "/mnt/x", "path", "1", "2"}
	if got := a.Argv(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Argv() = %q, want %q", got, want)
	}
}

func TestParseMode(t *testing.T) {
	for _, m := range []Mode{ModeInode, ModePath} {
		got, err := ParseMode(m.String())
		if err != nil || got != m {
			t.Errorf("ParseMode(%q) = %v, %v; want %v", m.String(), got, err, m)
		}
	}
	if _, err := ParseMode(""); err == nil {
		t.Error("ParseMode(\"\") succeeded")
	}
	if s := Mode(9).String(); s != "Mode(9)" {
		t.Errorf("Mode(9).String() = %q", s)
	}
}
