//! The fixture set of the pull conformance cases (`spec/ds-contract.md` §12, cases 45–69).

use crate::layer::LayerSpec;
use crate::publish::{
    Published, PublishedIndex, publish_docker_list, publish_index, publish_single,
};
use crate::registry::Registry;

/// Everything [`publish_standard`] published, all under tag `1.0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandardFixtures {
    /// `demo/app:1.0`: single manifest, one binary layer titled `app`.
    pub app: Published,
    /// `demo/tool:1.0`: index with linux/amd64, linux/arm64 (layer title `tool`) and
    /// windows/amd64 (`tool.exe`), distinct contents, index annotations `{name: porter}`.
    pub tool: PublishedIndex,
    /// `demo/untitled:1.0`: single manifest, one untitled binary layer.
    pub untitled: Published,
    /// `demo/winidx:1.0`: index with linux/amd64 and windows/amd64, both layers untitled.
    pub winidx: PublishedIndex,
    /// `demo/archive:1.0`: single manifest, one tar+gzip layer holding dir `bin/` and file
    /// `bin/tool` (mode 0755, contents [`StandardFixtures::ARCHIVE_TOOL`]).
    pub archive: Published,
    /// `demo/twolayers:1.0`: single manifest, two binary layers titled `one` and `two`.
    pub twolayers: Published,
    /// `demo/plugininfo:1.0`: index (linux/amd64, linux/arm64, layer title `plugin`) with
    /// annotations `ds.plugin.name=x`, `ds.plugin.version=1`, `ds.plugin.param.a=b`.
    pub plugininfo: PublishedIndex,
    /// `demo/finalizer:1.0`: index (linux/amd64, linux/arm64, layer title `tool`) with
    /// annotation `ds.finalizer=uploader`.
    pub finalizer: PublishedIndex,
    /// `demo/dockerlist:1.0`: Docker manifest list with linux/amd64 and linux/arm64, each one
    /// tar+gzip layer holding file `tool`.
    pub dockerlist: PublishedIndex,
}

impl StandardFixtures {
    /// Contents of `bin/tool` in `demo/archive:1.0`.
    pub const ARCHIVE_TOOL: &'static [u8] = b"#!/bin/sh\necho archived tool\n";

    /// Contents of the `demo/tool:1.0` layer for `os/arch` (`linux/amd64`, `linux/arm64`,
    /// `windows/amd64`).
    pub fn tool_contents(platform: &str) -> Vec<u8> {
        format!("tool for {platform}\n").into_bytes()
    }
}

/// Publishes the standard fixtures to `reg`. The digests are the same in every run.
pub async fn publish_standard(reg: &Registry) -> StandardFixtures {
    let tool_entry = |platform: &'static str, title: &str| {
        (
            platform,
            vec![LayerSpec::binary(
                title,
                StandardFixtures::tool_contents(platform),
            )],
        )
    };
    let two_linux = |title: &str, what: &str| {
        ["linux/amd64", "linux/arm64"]
            .into_iter()
            .map(|platform| {
                (
                    platform,
                    vec![LayerSpec::binary(title, format!("{what} for {platform}\n"))],
                )
            })
            .collect::<Vec<_>>()
    };

    let app = publish_single(
        reg,
        "demo/app:1.0",
        &[LayerSpec::binary("app", b"#!/bin/sh\necho app\n".to_vec())],
        &[],
    )
    .await;
    let tool = publish_index(
        reg,
        "demo/tool:1.0",
        &[
            tool_entry("linux/amd64", "tool"),
            tool_entry("linux/arm64", "tool"),
            tool_entry("windows/amd64", "tool.exe"),
        ],
        &[("name", "porter")],
    )
    .await;
    let untitled = publish_single(
        reg,
        "demo/untitled:1.0",
        &[LayerSpec::untitled(b"untitled tool\n".to_vec())],
        &[],
    )
    .await;
    let winidx = publish_index(
        reg,
        "demo/winidx:1.0",
        &[
            (
                "linux/amd64",
                vec![LayerSpec::untitled(b"untitled linux tool\n".to_vec())],
            ),
            (
                "windows/amd64",
                vec![LayerSpec::untitled(b"untitled windows tool\r\n".to_vec())],
            ),
        ],
        &[],
    )
    .await;
    let archive = publish_single(
        reg,
        "demo/archive:1.0",
        &[LayerSpec::targz(
            &[("bin/tool", 0o755, StandardFixtures::ARCHIVE_TOOL)],
            &["bin/"],
        )],
        &[],
    )
    .await;
    let twolayers = publish_single(
        reg,
        "demo/twolayers:1.0",
        &[
            LayerSpec::binary("one", b"layer one\n".to_vec()),
            LayerSpec::binary("two", b"layer two\n".to_vec()),
        ],
        &[],
    )
    .await;
    let plugininfo = publish_index(
        reg,
        "demo/plugininfo:1.0",
        &two_linux("plugin", "plugin"),
        &[
            ("ds.plugin.name", "x"),
            ("ds.plugin.version", "1"),
            ("ds.plugin.param.a", "b"),
        ],
    )
    .await;
    let finalizer = publish_index(
        reg,
        "demo/finalizer:1.0",
        &two_linux("tool", "finalized tool"),
        &[("ds.finalizer", "uploader")],
    )
    .await;
    let dockerlist = publish_docker_list(
        reg,
        "demo/dockerlist:1.0",
        &["linux/amd64", "linux/arm64"].map(|platform| {
            (
                platform,
                vec![LayerSpec::targz(
                    &[(
                        "tool",
                        0o755,
                        format!("docker tool for {platform}\n").as_bytes(),
                    )],
                    &[],
                )],
            )
        }),
    )
    .await;

    StandardFixtures {
        app,
        tool,
        untitled,
        winidx,
        archive,
        twolayers,
        plugininfo,
        finalizer,
        dockerlist,
    }
}
