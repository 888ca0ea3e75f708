package porter_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"

	"example.invalid/delivery-station/ds-porter/porter-ffi/go/porter"
)

// store is the repository's example artifact: an OCI image layout holding the six-platform
// plugin "hello" (examples/README.md), so the examples need no registry.
const store = "oci:../../../examples/store:1.0.0"

// Pull one platform of an artifact into a fresh cache, export it, and list the cache.
func Example() {
	dir, err := os.MkdirTemp("", "porter-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	client, err := porter.Open(porter.Config{Cache: &porter.CacheConfig{Dir: dir}})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	ctx := context.Background()
	artifact, err := client.Pull(ctx, store, &porter.PullOptions{
		Platforms: []string{"linux/arm64"},
		Output:    filepath.Join(dir, "dist"),
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(artifact.PluginInfo.PluginName, artifact.PluginInfo.Version)
	for _, file := range artifact.ExportedFiles {
		fmt.Println(strings.TrimPrefix(file, dir))
	}

	cached, err := client.List(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(cached), "cached, id", cached[0].ID == artifact.ID)
	// Output:
	// hello 1.0.0
	// /dist/linux/arm64/ds-hello
	// 1 cached, id true
}

// Failures carry a Kind that errors.Is recognises.
func ExampleError() {
	dir, err := os.MkdirTemp("", "porter-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	client, err := porter.Open(porter.Config{Cache: &porter.CacheConfig{Dir: dir}})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	_, err = client.Pull(context.Background(), "oci:"+filepath.Join(dir, "no-such-layout")+":1.0", nil)
	fmt.Println(errors.Is(err, porter.KindNotFound))

	_, err = porter.Open(map[string]any{"Cache": map[string]any{"Dri": dir}})
	var e *porter.Error
	fmt.Println(errors.As(err, &e), e.Kind, strings.Contains(e.Message, "unknown key Cache.Dri"))
	// Output:
	// true
	// true invalid_input true
}

// An existing file at the destination is replaced only with Overwrite.
func ExampleClient_Export() {
	dir, err := os.MkdirTemp("", "porter-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	client, err := porter.Open(porter.Config{Cache: &porter.CacheConfig{Dir: dir}})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	ctx := context.Background()
	if _, err := client.Pull(ctx, store, &porter.PullOptions{AllArch: true}); err != nil {
		log.Fatal(err)
	}

	target := filepath.Join(dir, "hello.bin")
	if err := os.WriteFile(target, []byte("mine"), 0o644); err != nil {
		log.Fatal(err)
	}
	_, err = client.Export(ctx, store, target, nil)
	fmt.Println(errors.Is(err, porter.KindInvalidInput))
	kept, _ := os.ReadFile(target)
	fmt.Println(string(kept))

	_, err = client.Export(ctx, store, target, &porter.ExportOptions{Overwrite: true})
	fmt.Println(err)
	// Output:
	// true
	// mine
	// <nil>
}

// Inspect describes an artifact without downloading its layers; Copy keeps every digest.
func ExampleClient_Inspect() {
	dir, err := os.MkdirTemp("", "porter-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	client, err := porter.Open(porter.Config{Cache: &porter.CacheConfig{Dir: dir}})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	ctx := context.Background()

	found, err := client.Inspect(ctx, store, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(found.Source, found.Annotations["ds.plugin.name"], len(found.Platforms), "platforms")
	for _, p := range found.Platforms[:2] {
		fmt.Println(p.Platform, len(p.Layers), "layer")
	}

	copied, err := client.Copy(ctx, store, "oci:"+filepath.Join(dir, "airgap"), nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(copied.Digest == found.Digest, strings.TrimPrefix(copied.Destination, "oci:"+dir))
	// Output:
	// layout hello 6 platforms
	// linux/amd64 1 layer
	// linux/arm64 1 layer
	// true /airgap:1.0.0
}

// Progress arrives on the calling goroutine while the call runs.
func ExampleProgressFunc() {
	dir, err := os.MkdirTemp("", "porter-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	client, err := porter.Open(porter.Config{Cache: &porter.CacheConfig{Dir: dir}})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	var started, done int
	_, err = client.Pull(context.Background(), store, &porter.PullOptions{
		Platforms: []string{"linux/amd64"},
		Progress: func(ev porter.ProgressEvent) {
			switch ev.Kind {
			case porter.ProgressStarted:
				started++
			case porter.ProgressDone:
				done++
			}
		},
	})
	fmt.Println(err, started > 0, started == done)
	// Output:
	// <nil> true true
}
