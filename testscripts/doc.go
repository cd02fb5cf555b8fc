// Package testscripts holds the txtar scenario suites, one folder per
// subject (lab, create, grow, unlink, rename, cycles, errors, bugs), and the
// Go test (build tag "lab") that runs them in parallel with the lab's script
// commands from package lab/script. `make lab-test` runs it in the lab VM;
// `dmfm lab script FILE.txtar...` runs single scripts, bug reports included.
// See the "Report a bug" section of CONTRIBUTING.md for writing one.
package testscripts
