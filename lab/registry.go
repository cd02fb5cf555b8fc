package lab

import (
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// The registry tracks labs this process has up, so a signal can close them.
var (
	regMu  sync.Mutex
	active = map[*Lab]bool{}
)

func register(l *Lab) {
	regMu.Lock()
	active[l] = true
	regMu.Unlock()
}

func unregister(l *Lab) {
	regMu.Lock()
	delete(active, l)
	regMu.Unlock()
}

// CloseAll closes every lab this process has up and returns how many it
// closed; errors go to stderr.
func CloseAll() int {
	regMu.Lock()
	ls := make([]*Lab, 0, len(active))
	for l := range active {
		ls = append(ls, l)
	}
	regMu.Unlock()
	for _, l := range ls {
		if err := l.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "%v\n", err)
		}
	}
	return len(ls)
}

// CloseOnSignal makes SIGINT and SIGTERM close every open lab before the
// process exits with status 130 (or 143). Tests call it from TestMain so an
// interrupted run releases its devices.
func CloseOnSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-ch
		CloseAll()
		code := 130
		if sig == syscall.SIGTERM {
			code = 143
		}
		os.Exit(code)
	}()
}
