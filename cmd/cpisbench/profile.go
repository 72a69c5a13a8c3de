package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// profiler takes a CPU profile of the server during a measured run, through
// the server's opt-in profile listener (CPIS_PPROF_ADDR), when --profile
// names a directory.
type profiler struct {
	done chan error
}

// profileRun starts a CPU profile of the server at addr covering the
// measured part of a run that starts now: it waits out the warm-up, then
// profiles for the whole seconds of the measured time but the last.
func profileRun(ctx context.Context, addr, path string, warmup, duration time.Duration) *profiler {
	p := &profiler{done: make(chan error, 1)}
	secs := max(1, int(duration.Seconds())-1)
	go func() {
		select {
		case <-time.After(warmup):
		case <-ctx.Done():
			p.done <- ctx.Err()
			return
		}
		p.done <- fetchProfile(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs), path)
	}()
	return p
}

// wait returns once the profile is written, or why it was not.
func (p *profiler) wait() error {
	if p == nil {
		return nil
	}
	return <-p.done
}

func fetchProfile(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile: status %d", resp.StatusCode)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
