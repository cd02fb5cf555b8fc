package filemapd

import (
	"bytes"
	"io"
	"log/slog"
	"log/syslog"
)

// NewLogger returns the daemon's logger for a command line: text on stderr
// when it runs in the foreground or verbose, otherwise syslog (facility
// daemon, tag "dmfilemapd"), or nothing when syslog cannot be reached.
// Verbose 2 adds debug lines, verbose 3 every inotify event.
func NewLogger(a Args, stderr io.Writer) *slog.Logger {
	level := slog.LevelInfo
	switch {
	case a.Verbose >= 3:
		level = levelTrace
	case a.Verbose == 2:
		level = slog.LevelDebug
	}
	if a.Foreground || a.Verbose > 0 {
		return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	}
	w, err := syslog.New(syslog.LOG_DAEMON|syslog.LOG_INFO, "dmfilemapd")
	if err != nil {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(&syslogWriter{w: w}, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{} // syslog stamps its own time
			}
			return a
		},
	}))
}

// syslogWriter sends each line of a text handler, which starts with its
// level (the time is dropped), to syslog at the matching priority.
type syslogWriter struct{ w *syslog.Writer }

func (s *syslogWriter) Write(p []byte) (int, error) {
	line := string(bytes.TrimRight(p, "\n"))
	var err error
	switch {
	case bytes.HasPrefix(p, []byte("level=ERROR")):
		err = s.w.Err(line)
	case bytes.HasPrefix(p, []byte("level=WARN")):
		err = s.w.Warning(line)
	case bytes.HasPrefix(p, []byte("level=INFO")):
		err = s.w.Info(line)
	default:
		err = s.w.Debug(line)
	}
	if err != nil {
		return 0, err
	}
	return len(p), nil
}
