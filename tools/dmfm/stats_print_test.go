package main

import (
	"bytes"
	"os"
	"testing"

	"github.com/dmfm/dmfm/lib/dmstats"
	"github.com/rogpeppe/go-internal/txtar"
)

// TestPrintFixture prints recorded regions as text (the kernel's rows,
// unchanged) and as JSON, against the golden files of testdata/print.txtar.
func TestPrintFixture(t *testing.T) {
	const path = "testdata/print.txtar"
	ar, err := txtar.ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, f := range ar.Files {
		files[f.Name] = string(f.Data)
	}
	d := device{Name: "vg-data", UUID: "LVM-abc", Major: 253, Minor: 4}
	m := fixtureMessenger{dev: d.Name, replies: files}
	regions, err := dmstats.New(m).List("")
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if _, err := printRegions(&text, m, d, regions, false, false); err != nil {
		t.Fatal(err)
	}
	if want := files["vg-data: @stats_print 0"] + files["vg-data: @stats_print 1"]; text.String() != want {
		t.Errorf("text output %q, want the kernel's rows %q", text.String(), want)
	}
	dj, err := printRegions(nil, m, d, regions, false, true)
	if err != nil {
		t.Fatal(err)
	}
	var js bytes.Buffer
	if err := writeJSON(&js, printJSON{Devices: []printDeviceJSON{dj}}); err != nil {
		t.Fatal(err)
	}
	if *update {
		var kept []txtar.File
		for _, f := range ar.Files {
			if f.Name != "want.json" {
				kept = append(kept, f)
			}
		}
		ar.Files = append(kept, txtar.File{Name: "want.json", Data: js.Bytes()})
		if err := os.WriteFile(path, txtar.Format(ar), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if js.String() != files["want.json"] {
		t.Errorf("JSON differs\n--- got\n%s--- want\n%s", js.String(), files["want.json"])
	}
}
