package main

// Benchmark mode (bench/bench.py, case 8): the FFI path of a DS-style pull, through the Go
// package. Each run opens a client on a fresh cache, pulls one platform of an index and exports
// it, and closes the client, timed in process; the durations go to stdout as JSON. Set:
//
//	PORTER_BENCH_RUNS      how many runs (1–1000)
//	PORTER_BENCH_REF       the reference to pull
//	PORTER_BENCH_PLATFORM  the platform to export, e.g. linux/arm64
//	PORTER_TEST_REGISTRY   the registry host (plain HTTP)
//	PORTER_TEST_WORKDIR    an empty directory for the caches and exports

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"example.invalid/delivery-station/ds-porter/porter-ffi/go/porter"
)

func runBench() {
	runs, err := strconv.Atoi(env("PORTER_BENCH_RUNS"))
	if err != nil || runs < 1 || runs > 1000 {
		fmt.Fprintln(os.Stderr, "PORTER_BENCH_RUNS must be 1–1000")
		os.Exit(2)
	}
	ref, platform := env("PORTER_BENCH_REF"), env("PORTER_BENCH_PLATFORM")
	registry, work := env("PORTER_TEST_REGISTRY"), env("PORTER_TEST_WORKDIR")
	millis := make([]float64, 0, runs)
	for i := 0; i < runs; i++ {
		dir := filepath.Join(work, fmt.Sprintf("run%d", i))
		cfg := porter.Config{
			Cache:    &porter.CacheConfig{Dir: filepath.Join(dir, "cache")},
			Registry: &porter.RegistryConfig{InsecureRegistries: []string{registry}},
		}
		options := &porter.PullOptions{Platforms: []string{platform}, Output: filepath.Join(dir, "out")}
		start := time.Now()
		client, err := porter.Open(cfg)
		if err != nil {
			fatal("client", err)
		}
		if _, err := client.Pull(context.Background(), ref, options); err != nil {
			fatal("pull", err)
		}
		client.Close()
		millis = append(millis, float64(time.Since(start).Microseconds())/1000)
		if err := os.RemoveAll(dir); err != nil {
			fatal("cleanup", err)
		}
	}
	out, _ := json.Marshal(map[string][]float64{"millis": millis})
	fmt.Println(string(out))
}
