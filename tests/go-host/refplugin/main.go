// Command refplugin is the peer for ds-porter's start-up benchmark: a minimal DS plugin written
// with hashicorp/go-plugin v1.7.0 whose `list` does what ds-porter's does (host config through
// the broker, read <Cache.Dir>/porter/*/metadata.json, print the JSON list).
package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"

	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pb "ds-porter.test/go-host/pluginpb"
)

type server struct {
	pb.UnimplementedDSPluginServer
	broker *plugin.GRPCBroker
}

func (s *server) GetManifest(context.Context, *pb.GetManifestRequest) (*pb.GetManifestResponse, error) {
	return &pb.GetManifestResponse{Name: "refplugin", Version: "0.0.0"}, nil
}

func (s *server) Execute(ctx context.Context, req *pb.ExecuteRequest) (*pb.ExecuteResponse, error) {
	fail := func(err error) (*pb.ExecuteResponse, error) {
		return &pb.ExecuteResponse{ExitCode: 1, Error: err.Error()}, nil
	}
	conn, err := s.broker.Dial(req.HostConfigBrokerId)
	if err != nil {
		return fail(err)
	}
	defer conn.Close()
	resp, err := pb.NewHostConfigClient(conn).GetEffectiveConfig(ctx, &pb.GetEffectiveConfigRequest{})
	if err != nil {
		return fail(err)
	}
	var cfg struct{ Cache struct{ Dir string } }
	if err := json.Unmarshal(resp.ConfigJson, &cfg); err != nil {
		return fail(err)
	}
	dir := filepath.Join(cfg.Cache.Dir, "porter")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fail(err)
	}
	var list []map[string]any
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name(), "metadata.json"))
		if err != nil {
			continue
		}
		var entry map[string]any
		if json.Unmarshal(data, &entry) == nil {
			list = append(list, entry)
		}
	}
	out, _ := json.Marshal(list)
	return &pb.ExecuteResponse{Stdout: string(out) + "\n"}, nil
}

type dsPlugin struct{ plugin.NetRPCUnsupportedPlugin }

func (dsPlugin) GRPCServer(b *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterDSPluginServer(s, &server{broker: b})
	return nil
}

func (dsPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (interface{}, error) {
	return nil, nil
}

func main() {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: plugin.HandshakeConfig{
			ProtocolVersion:  1,
			MagicCookieKey:   "DS_PLUGIN_MAGIC_COOKIE",
			MagicCookieValue: "delivery-station-plugin",
		},
		Plugins:    map[string]plugin.Plugin{"ds-plugin": dsPlugin{}},
		GRPCServer: plugin.DefaultGRPCServer,
	})
}
