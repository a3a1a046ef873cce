package config

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Every line is kept (no sampling: production zap drops identical lines
// past 100 a second), and warnings carry no stack trace, in both formats.
func TestLoggerKeepsEveryLineWithoutStacks(t *testing.T) {
	for _, format := range []string{"json", "console"} {
		t.Run(format, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "log")
			cfg := Common{LogFormat: format, LogLevel: zapcore.InfoLevel}.loggerConfig()
			cfg.OutputPaths = []string{path}
			log, err := cfg.Build(zap.AddStacktrace(zapcore.DPanicLevel))
			if err != nil {
				t.Fatal(err)
			}
			const n = 300
			for range n {
				log.Warn("page undelivered, recorded in the failure log", zap.Int("status", 500))
			}
			_ = log.Sync()
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			lines := 0
			for sc := bufio.NewScanner(f); sc.Scan(); lines++ {
				if format != "json" {
					continue
				}
				var rec map[string]any
				if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
					t.Fatalf("line %d is not JSON: %v", lines+1, err)
				}
				if _, ok := rec["stacktrace"]; ok {
					t.Fatalf("a warning carries a stack trace: %s", sc.Text())
				}
			}
			if lines != n {
				t.Fatalf("%d lines of %d logged", lines, n)
			}
		})
	}
}
