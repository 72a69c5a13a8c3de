package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// serverPackage is the server the benchmark measures, built once per run.
const serverPackage = "github.com/cpis-fhir/cpis/cmd/cpisd"

// Timeouts of the server's life cycle.
const (
	readyTimeout = 2 * time.Minute
	stopTimeout  = time.Minute
)

// buildServer compiles cmd/cpisd into dir, as `make build` would (no race
// detector, no debug build), and returns the binary's path.
func buildServer(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "cpisd")
	goCmd, err := exec.LookPath("go") // go test and go run put their own go first on PATH
	if err != nil {
		return "", fmt.Errorf("building %s needs the go command on PATH: %w", serverPackage, err)
	}
	cmd := exec.CommandContext(ctx, goCmd, "build", "-trimpath", "-o", bin, serverPackage)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building %s: %w\n%s", serverPackage, err, out)
	}
	return bin, nil
}

// server is cpisd running as a child process.
type server struct {
	cmd     *exec.Cmd
	url     string
	pprof   string // host:port of its profile listener; empty if it has none
	logPath string
	exited  chan struct{} // closed when the process has been waited for
	waitErr error
}

// startServer runs bin in dev mode (its own token issuer) on a free
// loopback port, on the given store, logging to logPath, and waits until
// it is ready.
func startServer(ctx context.Context, bin string, l *loaded, extraEnv map[string]string, profile bool, logPath string) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	var pprofAddr string
	if profile {
		if pprofAddr, err = freeAddr(); err != nil {
			return nil, err
		}
		extraEnv = withEnv(extraEnv, "CPIS_PPROF_ADDR", pprofAddr)
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(bin)
	cmd.Env = serverEnv(addr, l, extraEnv)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting cpisd: %w", err)
	}
	s := &server{cmd: cmd, url: "http://" + addr, pprof: pprofAddr, logPath: logPath, exited: make(chan struct{})}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(ctx); err != nil {
		s.kill()
		return nil, fmt.Errorf("%w\n%s", err, s.logTail())
	}
	return s, nil
}

// serverEnv is the whole environment of the server: nothing of the
// caller's CPIS_* settings leaks in, so it is always dev mode on l.
func serverEnv(addr string, l *loaded, extra map[string]string) []string {
	env := []string{"CPIS_ADDR=" + addr, "CPIS_DATA_DIR=" + l.dataDir, "PATH=/usr/bin:/bin", "TZ=UTC"}
	if l.dbURL != "" {
		env = append(env, "CPIS_DATABASE_URL="+l.dbURL)
	}
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	return env
}

// withEnv is env with one more variable, leaving env unchanged.
func withEnv(env map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for k, v := range env {
		out[k] = v
	}
	return out
}

// freeAddr finds a loopback port nothing listens on.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitReady polls /readyz until it answers 200, the process dies or the
// timeout passes.
func (s *server) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(readyTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("cpisd exited while starting: %v", s.waitErr)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		resp, err := http.Get(s.url + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return errors.New("cpisd did not become ready in time")
}

// token gets a bearer token for a persona from the dev issuer.
func (s *server) token(ctx context.Context, persona string) (string, error) {
	body, _ := json.Marshal(map[string]string{"persona": persona})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url+"/dev/token", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != http.StatusOK || tok.AccessToken == "" {
		return "", fmt.Errorf("POST /dev/token for %s: status %d, %v", persona, resp.StatusCode, err)
	}
	return tok.AccessToken, nil
}

// pid is the server's process id.
func (s *server) pid() int { return s.cmd.Process.Pid }

// stop sends SIGTERM, as an orchestrator would, and waits: the server
// drains and must exit with status 0.
func (s *server) stop() error {
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-s.exited:
	case <-time.After(stopTimeout):
		s.kill()
		return errors.New("cpisd did not stop within a minute of SIGTERM")
	}
	if s.waitErr != nil {
		return fmt.Errorf("cpisd exited with %v\n%s", s.waitErr, s.logTail())
	}
	return nil
}

// kill ends the server at once; used only when it failed already.
func (s *server) kill() {
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// logTail is the end of the server's log, for error messages.
func (s *server) logTail() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return "cpisd log (" + s.logPath + "), last lines:\n" + strings.Join(lines[max(0, len(lines)-10):], "\n")
}
