// Command go-host launches a DS plugin binary the way the Delivery Station host does
// (hashicorp/go-plugin v1.7.0, gRPC, no AutoMTLS, HostConfig served through the broker) and
// prints what it observed as one JSON object on stdout. The Rust tests in tests/tests/plugin_*.rs
// run it against ds-porter and assert on the report.
//
// Modes:
//
//	go-host -plugin BIN [-rpcs manifest,metadata,schema,validate,health] [-op OP -arg A ...]...
//	go-host -plugin BIN -op OP ... -abort close|exit|kill [-abort-on TEXT] [-abort-after D]
//	go-host -plugin BIN -raw       launch without go-plugin: read stdout and the exit by hand
//	go-host -plugin BIN -bench N   N rounds of spawn → Execute → Kill, then a DS-style pair of
//	                               launches (GetManifest; Execute), durations in the report
//
// Every -op is one Execute in the same launch (one after another, or all at once with
// -concurrent); -arg and -args-file (a JSON array of strings, for values longer than an argv
// string may be) add arguments to the latest -op. -abort plays a host that goes away in the
// middle of the (single) Execute: "close" drops the gRPC connection without Shutdown and waits
// for the plugin to exit on its own, "exit" leaves at once (report printed, plugin not stopped,
// its pid in the report), "kill" calls Client.Kill as DS does when the Execute deadline passes.
//
//go:generate ./gen.sh
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/emptypb"

	pb "ds-porter.test/go-host/pluginpb"
)

// DS's handshake (pkg/plugin/grpc.go).
var handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "DS_PLUGIN_MAGIC_COOKIE",
	MagicCookieValue: "delivery-station-plugin",
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// call is one Execute: an operation and its arguments.
type call struct {
	op   string
	args []string
}

// calls gathers -op, -arg and -args-file in command-line order: -op starts an Execute, the
// others add arguments to the latest one (before any -op, to the first).
type calls struct {
	list    []call
	pending []string
}

func (c *calls) add(args ...string) {
	if n := len(c.list); n > 0 {
		c.list[n-1].args = append(c.list[n-1].args, args...)
	} else {
		c.pending = append(c.pending, args...)
	}
}

// first is the first Execute, or help with the arguments given so far.
func (c *calls) first() call {
	if len(c.list) > 0 {
		return c.list[0]
	}
	return call{op: "help", args: c.pending}
}

type opFlag struct{ c *calls }

func (f opFlag) String() string { return "" }
func (f opFlag) Set(v string) error {
	next := call{op: v}
	if len(f.c.list) == 0 {
		next.args, f.c.pending = f.c.pending, nil
	}
	f.c.list = append(f.c.list, next)
	return nil
}

type argFlag struct{ c *calls }

func (f argFlag) String() string     { return "" }
func (f argFlag) Set(v string) error { f.c.add(v); return nil }

type argsFileFlag struct{ c *calls }

func (f argsFileFlag) String() string { return "" }
func (f argsFileFlag) Set(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var args []string
	if err := json.Unmarshal(data, &args); err != nil {
		return fmt.Errorf("%s: want a JSON array of strings: %w", path, err)
	}
	f.c.add(args...)
	return nil
}

type options struct {
	plugin     string
	rpcs       string
	calls      calls
	concurrent bool
	abort      string
	abortOn    listFlag
	abortAfter time.Duration
	abortWait  time.Duration
	env        listFlag
	layout     string
	connInfo   string
	configFile string
	sigint     bool
	deadline   time.Duration
	raw        bool
	drop       bool
	bench      int
}

// dsClient is what the DS plugin dispenses: the service client plus the broker and connection.
type dsClient struct {
	client pb.DSPluginClient
	broker *plugin.GRPCBroker
	conn   *grpc.ClientConn
}

type dsPlugin struct{ plugin.NetRPCUnsupportedPlugin }

func (dsPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error {
	return errors.New("host side only")
}

func (dsPlugin) GRPCClient(_ context.Context, b *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return &dsClient{client: pb.NewDSPluginClient(c), broker: b, conn: c}, nil
}

// hostConfig serves the effective config like DS's HostConfig server.
type hostConfig struct {
	pb.UnimplementedHostConfigServer
	payload []byte
}

func (h *hostConfig) GetEffectiveConfig(context.Context, *pb.GetEffectiveConfigRequest) (*pb.GetEffectiveConfigResponse, error) {
	return &pb.GetEffectiveConfigResponse{ConfigJson: h.payload}, nil
}

// lineBuffer collects writes and splits them into lines.
type lineBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lineBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lineBuffer) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	text := strings.TrimRight(l.buf.String(), "\n")
	if text == "" {
		return []string{}
	}
	return strings.Split(text, "\n")
}

type executeReport struct {
	Operation  string           `json:"operation"`
	Stdout     string           `json:"stdout"`
	Stderr     string           `json:"stderr"`
	ExitCode   int32            `json:"exit_code"`
	Error      string           `json:"error"`
	Finalizers []map[string]any `json:"finalizers"`
	RPCError   string           `json:"rpc_error,omitempty"`
	Millis     float64          `json:"millis"`
	Extra      map[string]any   `json:"extra,omitempty"`
}

type report struct {
	Network       string               `json:"network,omitempty"`
	Address       string               `json:"address,omitempty"`
	Protocol      string               `json:"protocol,omitempty"`
	Version       int                  `json:"version,omitempty"`
	StartMillis   float64              `json:"start_millis"`
	RPCs          map[string]any       `json:"rpcs"`
	Pid           int                  `json:"pid,omitempty"`
	Execute       *executeReport       `json:"execute,omitempty"`
	Executes      []*executeReport     `json:"executes,omitempty"`
	Abort         *abortReport         `json:"abort,omitempty"`
	KillMillis    float64              `json:"kill_millis"`
	Exited        bool                 `json:"exited"`
	SocketRemoved bool                 `json:"socket_removed"`
	PluginStderr  []string             `json:"plugin_stderr"`
	HostLog       []string             `json:"host_log"`
	Raw           map[string]any       `json:"raw,omitempty"`
	Bench         map[string][]float64 `json:"bench,omitempty"`
	Errors        []string             `json:"errors"`
}

// abortReport says how the host went away during the Execute and what the plugin did.
type abortReport struct {
	Mode string `json:"mode"`
	// Matched: every -abort-on text was seen in one plugin stderr line before the abort.
	Matched bool `json:"matched"`
	// AfterMillis: Execute start → abort.
	AfterMillis float64 `json:"after_millis"`
	// ExitMillis: abort → plugin process gone ("close" and "kill"; -1 when it did not exit in
	// -abort-wait).
	ExitMillis float64 `json:"exit_millis"`
}

func main() {
	var o options
	flag.StringVar(&o.plugin, "plugin", "", "plugin binary")
	flag.StringVar(&o.rpcs, "rpcs", "", "comma list: manifest,metadata,schema,validate,health")
	flag.Var(opFlag{&o.calls}, "op", "Execute this operation (repeatable: one Execute each, same launch)")
	flag.Var(argFlag{&o.calls}, "arg", "argument of the latest -op (repeatable)")
	flag.Var(argsFileFlag{&o.calls}, "args-file", "file with a JSON array of arguments for the latest -op")
	flag.BoolVar(&o.concurrent, "concurrent", false, "run the Executes at the same time")
	flag.StringVar(&o.abort, "abort", "", "go away during the Execute: close | exit | kill")
	flag.Var(&o.abortOn, "abort-on", "with -abort: first wait for a plugin stderr line containing this text (repeatable: all in one line)")
	flag.DurationVar(&o.abortAfter, "abort-after", 0, "with -abort: delay after the Execute started, or after -abort-on matched")
	flag.DurationVar(&o.abortWait, "abort-wait", 10*time.Second, "with -abort: longest wait for -abort-on, and for the plugin to exit")
	flag.Var(&o.env, "env", "extra KEY=VALUE for the plugin's environment (repeatable)")
	flag.StringVar(&o.layout, "layout", "field3", "ExecuteRequest layout: field3 | field4 | env (map in 3, id in 4)")
	flag.StringVar(&o.connInfo, "conninfo", "before", "HostConfig ConnInfo: before | race | after | never | none (broker id 0)")
	flag.StringVar(&o.configFile, "config", "", "file with the HostConfig JSON payload (empty file: empty payload)")
	flag.BoolVar(&o.sigint, "sigint", false, "send SIGINT to the plugin before Execute")
	flag.DurationVar(&o.deadline, "deadline", 5*time.Minute, "Execute deadline (DS: 5m)")
	flag.BoolVar(&o.raw, "raw", false, "launch without go-plugin and check stdout/exit by hand")
	flag.BoolVar(&o.drop, "drop", false, "with -raw: close the connection instead of calling Shutdown")
	flag.IntVar(&o.bench, "bench", 0, "launch N times: spawn → Execute → Kill")
	flag.Parse()

	rep := &report{RPCs: map[string]any{}, Errors: []string{}, PluginStderr: []string{}, HostLog: []string{}}
	var err error
	switch {
	case o.raw:
		err = runRaw(o, rep)
	case o.bench > 0:
		err = runBench(o, rep)
	default:
		err = runSession(o, rep)
	}
	if err != nil {
		rep.Errors = append(rep.Errors, err.Error())
	}
	out, _ := json.Marshal(rep)
	fmt.Println(string(out))
}

func newClient(o options, stderr, hostLog io.Writer) *plugin.Client {
	cmd := exec.Command(o.plugin)
	cmd.Env = append(os.Environ(), o.env...)
	return plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  handshake,
		Plugins:          map[string]plugin.Plugin{"ds-plugin": dsPlugin{}},
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Stderr:           stderr,
		Logger: hclog.New(&hclog.LoggerOptions{
			Name:       "plugin",
			Level:      hclog.Trace,
			Output:     hostLog,
			JSONFormat: true,
		}),
	})
}

func dispense(c *plugin.Client) (*dsClient, error) {
	rpc, err := c.Client()
	if err != nil {
		return nil, err
	}
	raw, err := rpc.Dispense("ds-plugin")
	if err != nil {
		return nil, err
	}
	return raw.(*dsClient), nil
}

func configPayload(o options) ([]byte, error) {
	if o.configFile == "" {
		return []byte(`{"Cache":{"Dir":""}}`), nil
	}
	return os.ReadFile(o.configFile)
}

func runSession(o options, rep *report) error {
	stderr, hostLog := &lineBuffer{}, &lineBuffer{}
	client := newClient(o, stderr, hostLog)
	defer func() {
		rep.PluginStderr = stderr.lines()
		rep.HostLog = hostLog.lines()
	}()
	start := time.Now()
	ds, err := dispense(client)
	if err != nil {
		client.Kill()
		return fmt.Errorf("start: %w", err)
	}
	rep.StartMillis = ms(time.Since(start))
	rc := client.ReattachConfig()
	rep.Network, rep.Address = rc.Addr.Network(), rc.Addr.String()
	rep.Protocol, rep.Version = string(rc.Protocol), client.NegotiatedVersion()

	ctx := context.Background()
	for _, name := range strings.Split(o.rpcs, ",") {
		if name == "" {
			continue
		}
		rep.RPCs[name] = callRPC(ctx, ds, name)
	}
	if o.sigint {
		if err := syscall.Kill(rc.Pid, syscall.SIGINT); err != nil {
			rep.Errors = append(rep.Errors, "sigint: "+err.Error())
		}
		time.Sleep(200 * time.Millisecond)
	}
	rep.Pid = rc.Pid
	if len(o.calls.list) > 0 {
		payload, err := configPayload(o)
		if err != nil {
			client.Kill()
			return err
		}
		if o.abort != "" {
			return abortSession(client, ds, o, payload, stderr, rep)
		}
		rep.Executes = executeAll(ds, o, payload)
		rep.Execute = rep.Executes[0]
	}

	killStart := time.Now()
	client.Kill()
	rep.KillMillis = ms(time.Since(killStart))
	rep.Exited = client.Exited()
	if rep.Network == "unix" {
		_, statErr := os.Stat(rep.Address)
		rep.SocketRemoved = errors.Is(statErr, os.ErrNotExist)
	}
	return nil
}

func callRPC(ctx context.Context, ds *dsClient, name string) any {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var (
		resp any
		err  error
	)
	switch name {
	case "manifest":
		resp, err = ds.client.GetManifest(ctx, &pb.GetManifestRequest{})
	case "metadata":
		resp, err = ds.client.GetMetadata(ctx, &pb.GetMetadataRequest{})
	case "schema":
		resp, err = ds.client.GetSchema(ctx, &pb.GetSchemaRequest{})
	case "validate":
		resp, err = ds.client.ValidateConfig(ctx, &pb.ValidateConfigRequest{Config: map[string]string{"anything": "1"}})
	case "validate-bad":
		resp, err = ds.client.ValidateConfig(ctx, &pb.ValidateConfigRequest{Config: map[string]string{"registry": "not a host", "log_level": "loud"}})
	case "health":
		resp, err = grpc_health_v1.NewHealthClient(ds.conn).Check(ctx, &grpc_health_v1.HealthCheckRequest{Service: "plugin"})
		if err == nil {
			resp = map[string]any{"status": resp.(*grpc_health_v1.HealthCheckResponse).GetStatus().String()}
		}
	default:
		err = fmt.Errorf("unknown rpc %q", name)
	}
	if err != nil {
		return map[string]any{"rpc_error": err.Error()}
	}
	return resp
}

// executeAll runs every -op in this launch, one after another or (-concurrent) all at once.
func executeAll(ds *dsClient, o options, payload []byte) []*executeReport {
	reports := make([]*executeReport, len(o.calls.list))
	pending := make([]<-chan *executeReport, len(o.calls.list))
	for i, c := range o.calls.list {
		pending[i] = startExecute(ds, o, c, payload)
		if !o.concurrent {
			reports[i] = <-pending[i]
		}
	}
	if o.concurrent {
		for i, done := range pending {
			reports[i] = <-done
		}
	}
	return reports
}

// abortSession starts the one Execute and goes away in its middle as -abort says: once a
// plugin stderr line holds every -abort-on text (or -abort-wait passed), and -abort-after later.
func abortSession(client *plugin.Client, ds *dsClient, o options, payload []byte, stderr *lineBuffer, rep *report) error {
	if len(o.calls.list) != 1 {
		client.Kill()
		return errors.New("-abort needs exactly one -op")
	}
	start := time.Now()
	done := startExecute(ds, o, o.calls.list[0], payload)
	ab := &abortReport{Mode: o.abort, ExitMillis: -1}
	rep.Abort = ab
	finishedFirst := func(r *executeReport) error {
		rep.Execute = r
		client.Kill()
		return errors.New("the Execute finished before the abort")
	}
	deadline := time.Now().Add(o.abortWait)
	for !ab.Matched && time.Now().Before(deadline) {
		ab.Matched = lineWithAll(stderr.lines(), o.abortOn)
		select {
		case r := <-done:
			return finishedFirst(r)
		case <-time.After(10 * time.Millisecond):
		}
	}
	select {
	case r := <-done:
		return finishedFirst(r)
	case <-time.After(o.abortAfter):
	}
	ab.AfterMillis = ms(time.Since(start))
	aborted := time.Now()
	switch o.abort {
	case "exit":
		// main prints the report and the host process ends; nothing stops the plugin.
		return nil
	case "close":
		_ = ds.conn.Close()
		ab.ExitMillis = waitExited(client, o.abortWait)
	case "kill":
		client.Kill()
		rep.KillMillis = ms(time.Since(aborted))
		if client.Exited() {
			ab.ExitMillis = rep.KillMillis
		}
	default:
		client.Kill()
		return fmt.Errorf("unknown -abort %q", o.abort)
	}
	select {
	case r := <-done:
		rep.Execute = r
	case <-time.After(5 * time.Second):
	}
	// Never leave the plugin behind, whatever it did.
	client.Kill()
	rep.Exited = client.Exited()
	if rep.Network == "unix" {
		_, statErr := os.Stat(rep.Address)
		rep.SocketRemoved = errors.Is(statErr, os.ErrNotExist)
	}
	return nil
}

// lineWithAll: some line contains every text (no texts: true).
func lineWithAll(lines, texts []string) bool {
	if len(texts) == 0 {
		return true
	}
	for _, line := range lines {
		all := true
		for _, t := range texts {
			all = all && strings.Contains(line, t)
		}
		if all {
			return true
		}
	}
	return false
}

// waitExited polls until the plugin process is gone: milliseconds waited, or -1.
func waitExited(client *plugin.Client, limit time.Duration) float64 {
	start := time.Now()
	for {
		if client.Exited() {
			return ms(time.Since(start))
		}
		if time.Since(start) >= limit {
			return -1
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startExecute starts one Execute with the requested layout and ConnInfo timing; the report
// arrives on the returned channel.
func startExecute(ds *dsClient, o options, c call, payload []byte) <-chan *executeReport {
	var id uint32
	serve := func() {}
	if o.connInfo != "none" {
		id = ds.broker.NextId()
		serve = func() {
			go ds.broker.AcceptAndServe(id, func(opts []grpc.ServerOption) *grpc.Server {
				s := grpc.NewServer(opts...)
				pb.RegisterHostConfigServer(s, &hostConfig{payload: payload})
				return s
			})
		}
	}
	switch o.connInfo {
	case "before":
		serve()
		time.Sleep(200 * time.Millisecond)
	case "race": // what DS does: AcceptAndServe in a goroutine, Execute at once
		serve()
	}
	done := make(chan *executeReport, 1)
	start := time.Now()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), o.deadline)
		defer cancel()
		resp := &pb.ExecuteResponse{}
		var err error
		switch o.layout {
		case "field3":
			resp, err = ds.client.Execute(ctx, &pb.ExecuteRequest{Operation: c.op, Args: c.args, HostConfigBrokerId: id})
		case "field4", "env":
			legacy := &pb.LegacyExecuteRequest{Operation: c.op, Args: c.args, HostConfigBrokerId: id}
			if o.layout == "env" {
				legacy.Env = map[string]string{"K": "V"}
			}
			err = ds.conn.Invoke(ctx, "/plugin.DSPlugin/Execute", legacy, resp)
		default:
			err = fmt.Errorf("unknown layout %q", o.layout)
		}
		r := &executeReport{Operation: c.op, Millis: ms(time.Since(start)), Finalizers: []map[string]any{}}
		if err != nil {
			r.RPCError = err.Error()
		} else {
			r.Stdout, r.Stderr, r.ExitCode, r.Error = resp.Stdout, resp.Stderr, resp.ExitCode, resp.Error
			for _, f := range resp.Finalizers {
				args := f.Args
				if args == nil {
					args = []string{}
				}
				r.Finalizers = append(r.Finalizers, map[string]any{"name": f.Name, "operation": f.Operation, "args": args})
			}
		}
		done <- r
	}()
	if o.connInfo == "after" {
		time.Sleep(300 * time.Millisecond)
		serve()
	}
	return done
}

// runRaw launches the plugin like go-plugin does but by hand, so that everything on stdout
// after the handshake line and the exact exit after Shutdown can be observed.
func runRaw(o options, rep *report) error {
	cmd := exec.Command(o.plugin)
	cmd.Env = append(os.Environ(), append([]string{
		handshake.MagicCookieKey + "=" + handshake.MagicCookieValue,
		"PLUGIN_PROTOCOL_VERSIONS=1", "PLUGIN_MIN_PORT=10000", "PLUGIN_MAX_PORT=25000",
	}, o.env...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	stderr := &lineBuffer{}
	cmd.Stderr = stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	raw := map[string]any{}
	rep.Raw = raw
	defer func() { rep.PluginStderr = stderr.lines() }()
	reader := bufio.NewReader(stdout)
	lineCh := make(chan string, 1)
	go func() { l, _ := reader.ReadString('\n'); lineCh <- l }()
	var line string
	select {
	case line = <-lineCh:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		return errors.New("no handshake line within 10 s")
	}
	raw["handshake_millis"] = ms(time.Since(start))
	raw["handshake"] = line
	rest := &lineBuffer{}
	restDone := make(chan struct{})
	go func() { _, _ = io.Copy(rest, reader); close(restDone) }()

	fields := strings.Split(strings.TrimSpace(line), "|")
	if len(fields) < 5 {
		_ = cmd.Process.Kill()
		return fmt.Errorf("bad handshake %q", line)
	}
	network, address := fields[2], fields[3]
	target := address
	if network == "unix" {
		target = "unix://" + address
	}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithAuthority("unused"))
	if err != nil {
		_ = cmd.Process.Kill()
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	health, err := grpc_health_v1.NewHealthClient(conn).Check(ctx, &grpc_health_v1.HealthCheckRequest{Service: "plugin"})
	if err != nil {
		raw["health_error"] = err.Error()
	} else {
		raw["health"] = health.GetStatus().String()
	}
	ds := pb.NewDSPluginClient(conn)
	if m, err := ds.GetManifest(ctx, &pb.GetManifestRequest{}); err == nil {
		raw["manifest_name"] = m.Name
	}
	if o.sigint {
		_ = cmd.Process.Signal(syscall.SIGINT)
		time.Sleep(200 * time.Millisecond)
	}
	c := o.calls.first()
	if resp, err := ds.Execute(ctx, &pb.ExecuteRequest{Operation: c.op, Args: c.args}); err == nil {
		raw["execute_exit_code"] = resp.ExitCode
		raw["execute_stdout"] = resp.Stdout
		raw["execute_error"] = resp.Error
	} else {
		raw["execute_rpc_error"] = err.Error()
	}
	_, statErr := os.Stat(address)
	raw["socket_exists_before_shutdown"] = statErr == nil

	waitCh := make(chan error, 1)
	shutdownStart := time.Now()
	if o.drop {
		// A host that dies: the connection goes away without Shutdown.
		_ = conn.Close()
	} else {
		// plugin.Empty and google.protobuf.Empty are the same bytes on the wire.
		err := conn.Invoke(ctx, "/plugin.GRPCController/Shutdown", &emptypb.Empty{}, &emptypb.Empty{})
		if err != nil {
			raw["shutdown_error"] = err.Error()
		}
	}
	go func() { waitCh <- cmd.Wait() }()
	select {
	case err := <-waitCh:
		raw["exit_millis_after_shutdown"] = ms(time.Since(shutdownStart))
		raw["exit_code"] = cmd.ProcessState.ExitCode()
		if err != nil {
			raw["wait_error"] = err.Error()
		}
	case <-time.After(3 * time.Second):
		_ = cmd.Process.Kill()
		<-waitCh
		raw["exit_millis_after_shutdown"] = -1
	}
	<-restDone
	raw["stdout_after_handshake"] = strings.Join(rest.lines(), "\n")
	_, statErr = os.Stat(address)
	rep.SocketRemoved = errors.Is(statErr, os.ErrNotExist)
	rep.Network, rep.Address = network, address
	_ = conn.Close()
	return nil
}

// runBench measures spawn → Execute result (config through the broker) for N launches.
func runBench(o options, rep *report) error {
	payload, err := configPayload(o)
	if err != nil {
		return err
	}
	var results, totals, dsStyle []float64
	for i := 0; i < o.bench; i++ {
		start := time.Now()
		client := newClient(o, io.Discard, io.Discard)
		ds, err := dispense(client)
		if err != nil {
			client.Kill()
			return err
		}
		r := <-startExecute(ds, options{layout: "field3", connInfo: "race", deadline: time.Minute}, o.calls.first(), payload)
		if r.RPCError != "" || r.ExitCode != 0 {
			client.Kill()
			return fmt.Errorf("run %d: %s%s", i, r.RPCError, r.Error)
		}
		results = append(results, ms(time.Since(start)))
		client.Kill()
		totals = append(totals, ms(time.Since(start)))

		// A DS command's launches: one for GetManifest (DS reads the plugin's manifest), then
		// one for the Execute, each stopped before the next starts.
		start = time.Now()
		client = newClient(o, io.Discard, io.Discard)
		ds, err = dispense(client)
		if err != nil {
			client.Kill()
			return err
		}
		if m, ok := callRPC(context.Background(), ds, "manifest").(*pb.GetManifestResponse); !ok || m.GetName() == "" {
			client.Kill()
			return fmt.Errorf("run %d: GetManifest failed", i)
		}
		client.Kill()
		client = newClient(o, io.Discard, io.Discard)
		ds, err = dispense(client)
		if err != nil {
			client.Kill()
			return err
		}
		r = <-startExecute(ds, options{layout: "field3", connInfo: "race", deadline: time.Minute}, o.calls.first(), payload)
		client.Kill()
		if r.RPCError != "" || r.ExitCode != 0 {
			return fmt.Errorf("run %d: %s%s", i, r.RPCError, r.Error)
		}
		dsStyle = append(dsStyle, ms(time.Since(start)))
	}
	rep.Bench = map[string][]float64{"result_millis": results, "total_millis": totals, "ds_style_millis": dsStyle}
	rep.RPCs["median_result_millis"] = median(results)
	rep.RPCs["median_total_millis"] = median(totals)
	return nil
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
