#!/usr/bin/env python3
"""Writes examples/store: an OCI image layout holding a multi-arch "hello" DS plugin.

The layout is what `ds-porter push` writes to a registry for a plugin release
(spec/ds-contract.md §7.11): an OCI index tagged 1.0.0 with one OCI 1.1 artifact manifest per
platform, each with the empty config and one layer titled `ds-hello` (`ds-hello.exe` on
windows). Every byte is fixed (no clock, no randomness), so running this again rewrites the
same files: `python3 examples/make-store.py && git status examples/store` shows no change.

Python 3 standard library only.
"""

import hashlib
import json
import shutil
from pathlib import Path

STORE = Path(__file__).resolve().parent / "store"
TAG = "1.0.0"
CREATED = "2024-01-01T00:00:00Z"

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"
PLUGIN_BINARY = "application/vnd.delivery-station.plugin.v1+binary"
PLUGIN_INDEX = "application/vnd.delivery-station.plugin.index.v1+json"
TITLE = "org.opencontainers.image.title"

PLATFORMS = [
    ("linux", "amd64"),
    ("linux", "arm64"),
    ("darwin", "amd64"),
    ("darwin", "arm64"),
    ("windows", "amd64"),
    ("windows", "arm64"),
]

INDEX_ANNOTATIONS = {
    TITLE: "hello",
    "ds.plugin.name": "hello",
    "ds.plugin.version": TAG,
}


def encode(value):
    """Compact JSON with the keys in the order given (Go struct order; maps pre-sorted)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def sorted_map(pairs):
    """An annotation map as Go's encoding/json writes it: keys sorted."""
    return dict(sorted(pairs.items()))


def write_blob(data):
    digest = hashlib.sha256(data).hexdigest()
    (STORE / "blobs" / "sha256" / digest).write_bytes(data)
    return f"sha256:{digest}", len(data)


def layer_contents(os_name, arch):
    message = f"hello from ds-hello ({os_name}/{arch})"
    if os_name == "windows":
        # A batch script (CRLF, as cmd.exe expects), named ds-hello.exe only because DS expects
        # an .exe on windows; see examples/README.md.
        return f"@echo off\r\necho {message}\r\n".encode()
    return f'#!/bin/sh\necho "{message}"\n'.encode()


def platform_manifest(os_name, arch, config):
    title = "ds-hello.exe" if os_name == "windows" else "ds-hello"
    layer_digest, layer_size = write_blob(layer_contents(os_name, arch))
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": PLUGIN_BINARY,
        "config": config,
        "layers": [
            {
                "mediaType": PLUGIN_BINARY,
                "digest": layer_digest,
                "size": layer_size,
                "annotations": {TITLE: title},
            }
        ],
        "annotations": {"org.opencontainers.image.created": CREATED},
    }
    digest, size = write_blob(encode(manifest))
    return {
        "mediaType": OCI_MANIFEST,
        "digest": digest,
        "size": size,
        "annotations": sorted_map(
            {
                "org.opencontainers.image.created": CREATED,
                "os": os_name,
                "architecture": arch,
            }
        ),
        "platform": {"architecture": arch, "os": os_name},
        "artifactType": PLUGIN_BINARY,
    }


def main():
    if STORE.exists():
        shutil.rmtree(STORE)
    (STORE / "blobs" / "sha256").mkdir(parents=True)

    config_digest, config_size = write_blob(b"{}")
    config = {
        "mediaType": EMPTY_CONFIG,
        "digest": config_digest,
        "size": config_size,
        "data": "e30=",
    }
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "artifactType": PLUGIN_INDEX,
        "manifests": [platform_manifest(o, a, config) for o, a in PLATFORMS],
        "annotations": sorted_map(INDEX_ANNOTATIONS),
    }
    index_digest, index_size = write_blob(encode(index))

    (STORE / "oci-layout").write_bytes(encode({"imageLayoutVersion": "1.0.0"}))
    layout_index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": OCI_INDEX,
                "digest": index_digest,
                "size": index_size,
                "annotations": {"org.opencontainers.image.ref.name": TAG},
                "artifactType": PLUGIN_INDEX,
            }
        ],
    }
    (STORE / "index.json").write_bytes(encode(layout_index))
    print(f"wrote {STORE}: {TAG} -> {index_digest}")


if __name__ == "__main__":
    main()
