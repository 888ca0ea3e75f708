package main

// Calls that are stopped: a client closed while it pulls, and exports cancelled mid-way, with
// the destination watched afterwards and with the process exiting at once.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"example.invalid/delivery-station/ds-porter/porter-ffi/go/porter"
)

// childMode names the environment variable that runs this program as the child of
// checkExportCancel: export PORTER_TEST_SIX into PORTER_CHILD_DEST, cancel after
// PORTER_CHILD_DELAY_US microseconds, print the outcome and exit at once. It prints
// "exporting" first.
const childMode = "PORTER_CHILD_EXPORT_CANCEL"

// tempPrefix starts the names of the temporary entries an export makes in its destination.
const tempPrefix = ".ds-porter-tmp-"

func checkCloseWhilePulling(t *T, work string) {
	large := env("PORTER_TEST_LARGE")
	dir := filepath.Join(work, "close-cache")
	client := open(dir)
	started := make(chan struct{})
	result := make(chan error, 1)
	go func() {
		_, err := client.Pull(context.Background(), large, &porter.PullOptions{Progress: firstBytes(started)})
		result <- err
	}()
	select {
	case <-started:
	case <-time.After(time.Minute):
		t.Check(false, "close while pulling: no bytes within a minute")
	}
	client.Close()
	select {
	case err := <-result:
		t.Check(errors.Is(err, porter.ErrClosed) && errors.Is(err, porter.KindCancelled),
			"a pull whose client was closed: %v", err)
	case <-time.After(10 * time.Second):
		t.Check(false, "the pull had not returned 10 s after Close returned")
	}
	reopened := open(dir)
	defer reopened.Close()
	t.Check(len(listIDs(t, reopened)) == 0, "a pull stopped by Close is cached")

	checkRawFreeWhilePulling(t, work)
}

// sixOptions exports every platform of PORTER_TEST_SIX.
var sixOptions = &porter.ExportOptions{AllArch: true}

// cacheSix pulls every platform of PORTER_TEST_SIX into the cache in dir.
func cacheSix(dir string) {
	client := open(dir)
	defer client.Close()
	if _, err := client.Pull(context.Background(), env("PORTER_TEST_SIX"), &porter.PullOptions{AllArch: true}); err != nil {
		fatal("pull of the six-platform index", err)
	}
}

// exportCancelled exports PORTER_TEST_SIX into dest and cancels after delay; it returns
// whether the export was cancelled (rather than finished first).
func exportCancelled(client *porter.Client, dest string, delay time.Duration) (bool, error) {
	ctx, cancel := context.WithCancel(context.Background())
	timer := time.AfterFunc(delay, cancel)
	defer timer.Stop()
	defer cancel()
	_, err := client.Export(ctx, env("PORTER_TEST_SIX"), dest, sixOptions)
	if errors.Is(err, context.Canceled) {
		return true, nil
	}
	return false, err
}

// entries lists what is below dir (relative paths), temporary entries marked.
func entries(dir string) (all, temporary []string) {
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return nil
		}
		rel, _ := filepath.Rel(dir, path)
		all = append(all, rel)
		if strings.HasPrefix(d.Name(), tempPrefix) {
			temporary = append(temporary, rel)
		}
		return nil
	})
	return all, temporary
}

// delays are the points after the start at which the exports are cancelled: early ones land
// before or during staging, late ones may find the export done.
var delays = []time.Duration{
	500 * time.Microsecond, time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond,
	8 * time.Millisecond, 16 * time.Millisecond, 32 * time.Millisecond,
}

func checkExportCancel(t *T, work string) {
	cache := filepath.Join(work, "six-cache")
	cacheSix(cache)
	client := open(cache)
	defer client.Close()

	// Cancelled in this process: nothing is there when the call returns, and nothing appears
	// in the second after.
	cancelled := 0
	for i, delay := range delays {
		dest := filepath.Join(work, fmt.Sprintf("six-export-%d", i))
		if err := os.MkdirAll(dest, 0o755); err != nil {
			fatal("mkdir", err)
		}
		stopped, err := exportCancelled(client, dest, delay)
		if !t.Check(err == nil, "export cancelled after %v: %v", delay, err) || !stopped {
			continue
		}
		cancelled++
		for poll := 0; poll < 20; poll++ {
			all, _ := entries(dest)
			if !t.Check(len(all) == 0, "export cancelled after %v: %v in the destination %v later", delay, all, time.Duration(poll)*50*time.Millisecond) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	t.Check(cancelled > 0, "no export was cancelled before it finished (delays %v)", delays)

	// Cancelled in a child process that exits as soon as the call returns: no temporary entry
	// is left behind.
	cancelled = 0
	for i, delay := range delays {
		dest := filepath.Join(work, fmt.Sprintf("six-exit-%d", i))
		outcome := runChildExport(t, cache, dest, delay)
		all, temporary := entries(dest)
		t.Check(len(temporary) == 0, "child cancelled after %v and exited: temporary entries %v", delay, temporary)
		switch outcome {
		case "cancelled":
			cancelled++
			t.Check(len(all) == 0, "child cancelled after %v: %v in the destination", delay, all)
		case "exported":
		default:
			t.Check(false, "child export after %v: %s", delay, outcome)
		}
	}
	t.Check(cancelled > 0, "no child export was cancelled before it finished (delays %v)", delays)

	// Killed mid-export: what the dead process staged is removed by the next export there.
	left := 0
	for i, delay := range delays {
		dest := filepath.Join(work, fmt.Sprintf("six-killed-%d", i))
		killChildExport(t, cache, dest, delay*4)
		if _, temporary := entries(dest); len(temporary) == 0 {
			continue
		}
		left++
		_, err := client.Export(context.Background(), env("PORTER_TEST_SIX"), dest, sixOptions)
		_, temporary := entries(dest)
		t.Check(err == nil && len(temporary) == 0, "export after a killed one: %v, temporary entries %v", err, temporary)
	}
	t.Check(left > 0, "no killed child export left staging behind (delays %v)", delays)
}

// killChildExport starts the export child (which would not cancel within a minute) and kills
// it with SIGKILL delay after it starts exporting.
func killChildExport(t *T, cache, dest string, delay time.Duration) {
	cmd := childCommand(context.Background(), cache, dest, time.Minute)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		fatal("pipe", err)
	}
	if err := cmd.Start(); err != nil {
		fatal("start the child", err)
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if t.Check(strings.TrimSpace(line) == "exporting", "child said %q", line) {
		time.Sleep(delay)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

// childCommand is this program as the export child.
func childCommand(ctx context.Context, cache, dest string, delay time.Duration) *exec.Cmd {
	self, err := os.Executable()
	if err != nil {
		fatal("executable", err)
	}
	cmd := exec.CommandContext(ctx, self)
	cmd.Env = append(os.Environ(), childMode+"="+cache, "PORTER_CHILD_DEST="+dest,
		"PORTER_CHILD_DELAY_US="+strconv.FormatInt(delay.Microseconds(), 10))
	cmd.Stderr = os.Stderr
	return cmd
}

// runChildExport runs this program as the export child and returns the outcome it printed.
func runChildExport(t *T, cache, dest string, delay time.Duration) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := childCommand(ctx, cache, dest, delay).Output()
	if !t.Check(err == nil, "child export: %v", err) {
		return "failed"
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

// runChild is the export child: it prints "exporting", then "cancelled", "exported" or the
// error, and exits without closing anything.
func runChild() {
	client := open(os.Getenv(childMode))
	dest := os.Getenv("PORTER_CHILD_DEST")
	micros, err := strconv.Atoi(os.Getenv("PORTER_CHILD_DELAY_US"))
	if err != nil {
		fatal("PORTER_CHILD_DELAY_US", err)
	}
	fmt.Println("exporting")
	stopped, err := exportCancelled(client, dest, time.Duration(micros)*time.Microsecond)
	w := bufio.NewWriter(os.Stdout)
	switch {
	case err != nil:
		fmt.Fprintln(w, err)
	case stopped:
		fmt.Fprintln(w, "cancelled")
	default:
		fmt.Fprintln(w, "exported")
	}
	w.Flush()
	os.Exit(0)
}
