//! Generates the gRPC code for the go-plugin server from `../proto` with a vendored `protoc`,
//! so building needs no system protobuf compiler.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../proto");
    let protos = [
        proto_dir.join("ds_plugin.proto"),
        proto_dir.join("go_plugin.proto"),
    ];
    for proto in &protos {
        println!("cargo:rerun-if-changed={}", proto.display());
    }

    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    // `ExecuteRequest` is decoded by hand: hosts disagree on its field 3 (ds-contract §2.3).
    config.extern_path(
        ".plugin.ExecuteRequest",
        "crate::plugin::proto::ExecuteRequest",
    );

    let includes = [proto_dir, protoc_bin_vendored::include_path()?];
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .build_transport(false)
        .compile_with_config(config, &protos, &includes)?;
    Ok(())
}
