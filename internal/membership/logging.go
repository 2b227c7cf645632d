package membership

import (
	"bytes"
	"context"
	"log"
	"log/slog"
)

// memberlistLogger returns a *log.Logger for memberlist.Config.Logger that
// forwards every line to l at the level memberlist wrote in brackets.
func memberlistLogger(l *slog.Logger) *log.Logger {
	return log.New(slogWriter{l: l}, "", 0)
}

// slogWriter parses memberlist's "[LEVEL] memberlist: message" lines. The
// standard logger calls Write once per line.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	msg := bytes.TrimSpace(p)
	level := slog.LevelInfo
	if len(msg) > 0 && msg[0] == '[' {
		if end := bytes.IndexByte(msg, ']'); end > 0 {
			switch string(msg[1:end]) {
			case "DEBUG":
				level = slog.LevelDebug
			case "WARN":
				level = slog.LevelWarn
			case "ERR", "ERROR":
				level = slog.LevelError
			}
			msg = bytes.TrimSpace(msg[end+1:])
		}
	}
	ctx := context.Background()
	if !w.l.Enabled(ctx, level) {
		return len(p), nil
	}
	msg = bytes.TrimPrefix(msg, []byte("memberlist: "))
	w.l.Log(ctx, level, string(msg), "component", "memberlist")
	return len(p), nil
}
