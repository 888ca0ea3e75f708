#!/usr/bin/env python3
"""ds-porter benchmarks against skopeo, the ORAS Python SDK, curl and a Go go-plugin plugin.

Starts a loopback distribution registry, creates the fixtures, runs every case for ds-porter and
its peers alternately (the machine is shared and noisy, so only ratios measured in the same run
mean anything) and prints one Markdown table: median wall time, MB/s, peak RSS, bytes the
registry sent or received, and each peer's time as a ratio to ds-porter's.

Usage: bench.py [--runs N] [--quick] [--out FILE] [--only 1,4,...] [--porter BIN] [--baseline BIN]
(run through `make bench`)
"""

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PORTER = os.path.join(ROOT, "target", "release", "ds-porter")
GO_HOST = os.path.join(ROOT, "target", "go-host", "go-host")
REF_PLUGIN = os.path.join(ROOT, "target", "go-host", "refplugin")
BENCH_CGO = os.path.join(ROOT, "target", "bench-cgo")
HANDSHAKE = os.path.join(ROOT, "target", "bench-handshake")
FLOOR = os.path.join(ROOT, "target", "bench-floor")
VENV_PY = os.path.join(ROOT, "target", "bench-venv", "bin", "python")
MIB = 1 << 20


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    """docker-registry on 127.0.0.1 with an access log we can count bytes from."""

    LINE = re.compile(r'"(GET|HEAD|PUT|POST|PATCH) (\S+) HTTP/[0-9.]+" (\d+) (\d+)')

    def __init__(self, work):
        self.dir = os.path.join(work, "registry")
        os.makedirs(self.dir)
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        config = os.path.join(self.dir, "config.yml")
        with open(config, "w") as f:
            f.write(
                "version: 0.1\nlog:\n  level: error\n  formatter: json\n"
                f"storage:\n  filesystem:\n    rootdirectory: {self.dir}/data\n  delete:\n    enabled: true\n"
                f"http:\n  addr: {self.host}\n"
            )
        self.log_path = os.path.join(self.dir, "access.log")
        self.log = open(self.log_path, "ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        self.proc = subprocess.Popen(["docker-registry", "serve", config], stdout=self.log, stderr=subprocess.DEVNULL, env=env)
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1)
                return
            except Exception:
                time.sleep(0.1)
        raise SystemExit("docker-registry did not start")

    def mark(self):
        self.sync()
        return os.path.getsize(self.log_path)

    def sync(self):
        # The access log line is written after the response; a marker request flushes ordering.
        token = f"bench-sync-{time.time_ns()}"
        urllib.request.urlopen(f"http://{self.host}/v2/?{token}", timeout=5).read()
        deadline = time.time() + 5
        while time.time() < deadline:
            with open(self.log_path, "rb") as f:
                if token.encode() in f.read():
                    return
            time.sleep(0.01)

    def traffic_since(self, mark):
        """(bytes sent in blob GET responses, number of blob GETs, number of upload requests that
        carry bytes: PATCH and PUT of an upload session; mounts and session openings excluded)."""
        self.sync()
        with open(self.log_path, "rb") as f:
            f.seek(mark)
            text = f.read().decode(errors="replace")
        sent = gets = uploads = 0
        for m in self.LINE.finditer(text):
            method, path, _status, size = m.groups()
            if method == "GET" and "/blobs/sha256:" in path:
                sent += int(size)
                gets += 1
            if "/blobs/uploads" in path and method in ("PATCH", "PUT"):
                uploads += 1
        return sent, gets, uploads

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def run(cmd, env=None, cwd=None):
    """Runs a command under GNU time; returns (wall seconds, peak RSS KiB).

    Peak RSS comes from `/usr/bin/time -f %M`: a child forked from this Python process would
    report Python's own RSS as its floor (ru_maxrss survives execve)."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss_file:
        start = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss_file.name] + cmd, env=env, cwd=cwd,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[-2000:]}")
        lines = [l for l in rss_file.read().split() if l.strip().isdigit()]
    return wall, int(lines[-1]) if lines else 0


def write_random(path, size, seed):
    h = hashlib.sha256()
    rnd = hashlib.sha256(seed.encode()).digest()
    # A fast deterministic stream: one random MiB, varied per MiB so nothing compresses or dedups.
    base = os.urandom(MIB)
    with open(path, "wb") as f:
        for i in range(size // MIB):
            chunk = (i.to_bytes(8, "little") + rnd[:8]) + base[16:]
            f.write(chunk)
            h.update(chunk)
    return "sha256:" + h.hexdigest(), size


def write_blob(layout, data_path=None, data=None):
    blobs = os.path.join(layout, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)
    if data is not None:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, digest[7:]), "wb") as f:
            f.write(data)
        return digest, len(data)
    h = hashlib.sha256()
    with open(data_path, "rb") as f:
        for chunk in iter(lambda: f.read(MIB), b""):
            h.update(chunk)
    digest = "sha256:" + h.hexdigest()
    os.replace(data_path, os.path.join(blobs, digest[7:]))
    return digest, os.path.getsize(os.path.join(blobs, digest[7:]))


EMPTY = {"mediaType": "application/vnd.oci.empty.v1+json",
         "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "size": 2}
LAYER_TYPE = "application/vnd.example.bench.part.v1+binary"


def make_big_layout(work, layers, layer_size):
    """An OCI layout `big:1` holding one manifest with `layers` random layers."""
    layout = os.path.join(work, "big-layout")
    os.makedirs(layout)
    write_blob(layout, data=b"{}")
    descs = []
    for i in range(layers):
        tmp = os.path.join(work, f"layer{i}")
        write_random(tmp, layer_size, f"layer{i}")
        digest, size = write_blob(layout, data_path=tmp)
        descs.append({"mediaType": LAYER_TYPE, "digest": digest, "size": size,
                      "annotations": {"org.opencontainers.image.title": f"part{i}.bin"}})
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "artifactType": "application/vnd.example.bench", "config": EMPTY, "layers": descs}).encode()
    mdigest, msize = write_blob(layout, data=manifest)
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                   "digest": mdigest, "size": msize, "annotations": {"org.opencontainers.image.ref.name": "1"}}]}, f)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    return layout, descs


def median(xs):
    return statistics.median(xs)


class Results:
    def __init__(self):
        self.rows = []

    def add(self, case, tool, walls, rss, nbytes=None, note=""):
        self.rows.append({"case": case, "tool": tool, "wall": median(walls), "runs": len(walls),
                          "rss": max(rss) if rss else None, "bytes": nbytes, "note": note})
        # Each row as it is measured, so a later failing case loses nothing already measured.
        print(f"[row] {case} | {tool} | {median(walls) * 1000:.1f} ms | rss {max(rss) if rss else '-'} KiB"
              f" | bytes {nbytes} {note}", file=sys.stderr, flush=True)

    def table(self):
        out = ["| case | tool | median wall | MB/s | peak RSS | registry bytes | ratio (tool ÷ ds-porter) |",
               "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
        base = {}
        for r in self.rows:
            if r["tool"] == "ds-porter":
                base.setdefault(r["case"], r["wall"])
        for r in self.rows:
            b = base.get(r["case"])
            ratio = "1.00" if r["tool"] == "ds-porter" else (f"{r['wall'] / b:.2f}" if b else "–")
            mbps = f"{r['bytes'] / MIB / r['wall']:.0f}" if r["bytes"] else "–"
            rss = f"{r['rss'] / 1024:.1f} MiB" if r["rss"] else "–"
            nbytes = f"{r['bytes']:,}" if r["bytes"] is not None else "–"
            wall = f"{r['wall'] * 1000:.1f} ms" if r["wall"] < 1 else f"{r['wall']:.2f} s"
            out.append(f"| {r['case']} | {r['tool']}{(' ' + r['note']) if r['note'] else ''} | {wall} | {mbps} | {rss} | {nbytes} | {ratio} |")
        return "\n".join(out)


def porter_env(cache):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DS_")}
    env["DS_CACHE_DIR"] = cache
    env["HOME"] = os.path.dirname(cache)
    return env


def alternate(runs, fns, reg=None):
    """Calls each fn once per round, rounds alternating, returning per-fn lists of results; with
    `reg`, also the registry bytes each fn's first call transferred."""
    out = {name: [] for name in fns}
    traffic = {}
    for _ in range(runs):
        for name, fn in fns.items():
            m = reg.mark() if reg else None
            out[name].append(fn())
            if reg:
                traffic.setdefault(name, reg.traffic_since(m)[0])
    return (out, traffic) if reg else out


def main():
    global PORTER
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="small sizes, for checking the harness")
    ap.add_argument("--out", default=None)
    ap.add_argument("--only", default="", help="comma list of case numbers to run (default: all)")
    ap.add_argument("--porter", default=PORTER, help="the ds-porter binary to measure")
    ap.add_argument("--baseline", default=None,
                    help="another ds-porter binary (an earlier commit) measured beside it in cases 2, 4, 11 and 12")
    args = ap.parse_args()
    PORTER = args.porter
    baseline = args.baseline
    layer_size = (8 if args.quick else 256) * MIB
    plat_size = (2 if args.quick else 20) * MIB
    runs = max(1, args.runs)
    selected = {c.strip() for c in args.only.split(",") if c.strip()}

    def want(case):
        return not selected or case in selected

    work = tempfile.mkdtemp(prefix="ds-porter-bench-")
    reg = Registry(work)
    res = Results()
    try:
        host = reg.host
        # Fixtures.
        layout, layers, big_total = None, [], 0
        if want("1") or want("5") or want("11") or want("15"):
            layout, layers = make_big_layout(work, 4, layer_size)
            big_total = sum(l["size"] for l in layers)
            subprocess.run(["skopeo", "copy", "-q", "--dest-tls-verify=false", f"oci:{layout}:1", f"docker://{host}/bench/big:1"], check=True)
        plat_dir = os.path.join(work, "plat")
        os.makedirs(plat_dir)
        platforms = ["linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64", "windows/amd64", "windows/arm64"]
        yaml = ["manifests:"]
        for p in platforms:
            name = p.replace("/", "-")
            write_random(os.path.join(plat_dir, name), plat_size, name)
            yaml += [f"  - platform: {p}", f"    path: {name}"]
        with open(os.path.join(plat_dir, "ds.manifest.yaml"), "w") as f:
            f.write("\n".join(yaml) + "\n")
        plat = f"{host}/bench/plat:1"
        env0 = porter_env(os.path.join(work, "fixture-cache"))
        subprocess.run([PORTER, "push", "--manifest", os.path.join(plat_dir, "ds.manifest.yaml"), f"{host}/bench/plat:1", "--insecure"],
                       check=True, env=env0, stdout=subprocess.DEVNULL)

        counter = [0]

        def fresh(name):
            """A new run directory; the previous run's directory goes (1 GiB cases fill disks)."""
            counter[0] += 1
            shutil.rmtree(os.path.join(work, "runs"), ignore_errors=True)
            d = os.path.join(work, "runs", f"{name}-{counter[0]}")
            os.makedirs(d)
            return d

        if want("1"):
            # Case 1: cold pull of 1 GiB.
            big = f"{host}/bench/big:1"
            blobs = [l["digest"] for l in layers]

            def porter_cold():
                d = fresh("porter")
                return run([PORTER, "pull", big, "--insecure"], env=porter_env(os.path.join(d, "cache")))

            def skopeo_cold():
                d = fresh("skopeo")
                return run(["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{big}", f"oci:{d}/layout:1"])

            def oras_cold():
                d = fresh("oras")
                code = ("import oras.client,sys; c=oras.client.OrasClient(hostname=sys.argv[1], insecure=True); "
                        "c.pull(target=sys.argv[2], outdir=sys.argv[3])")
                return run([VENV_PY, "-c", code, host, big, d])

            def curl_cold():
                d = fresh("curl")
                cmd = ["curl", "-sf", "--parallel", "--parallel-max", "4"]
                for b in blobs:
                    cmd += ["-o", os.path.join(d, b[7:]), f"http://{host}/v2/bench/big/blobs/{b}"]
                return run(cmd)

            tools = {"ds-porter": porter_cold, "skopeo copy docker:// oci:": skopeo_cold, "curl (4 parallel, files)": curl_cold}
            if os.path.exists(VENV_PY):
                tools["oras-py pull"] = oras_cold
            out, marks = alternate(runs, tools, reg)
            for name, vals in out.items():
                res.add("1. cold pull 1 GiB (4 × 256 MiB)" if not args.quick else "1. cold pull (quick)", name,
                        [v[0] for v in vals], [v[1] for v in vals], marks[name])

        if want("2") or want("3"):
            # Case 2 and 3: one platform of six (pull + export), and all six.

            def porter_one():
                d = fresh("p1")
                return run([PORTER, "pull", plat, "--insecure", "--platform", "linux/arm64", "-o", os.path.join(d, "out")],
                           env=porter_env(os.path.join(d, "cache")))

            def skopeo_one():
                d = fresh("s1")
                return run(["skopeo", "copy", "-q", "--src-tls-verify=false", "--override-os", "linux", "--override-arch", "arm64",
                            f"docker://{plat}", f"oci:{d}/layout:1"])

            def porter_all():
                d = fresh("pa")
                return run([PORTER, "pull", plat, "--insecure", "--all-arch", "-o", os.path.join(d, "out")],
                           env=porter_env(os.path.join(d, "cache")))

            def skopeo_all():
                d = fresh("sa")
                return run(["skopeo", "copy", "-q", "--all", "--src-tls-verify=false", f"docker://{plat}", f"oci:{d}/layout:1"])

            one = {"ds-porter": porter_one, "skopeo --override-os/arch": skopeo_one}
            if baseline:
                def baseline_one():
                    d = fresh("b1")
                    return run([baseline, "pull", plat, "--insecure", "--platform", "linux/arm64", "-o", os.path.join(d, "out")],
                               env=porter_env(os.path.join(d, "cache")))
                one["ds-porter (baseline)"] = baseline_one
            for case, fns in [("2. pull + export 1 of 6 platforms (6 × 20 MiB)", one),
                              ("3. pull all 6 platforms", {"ds-porter": porter_all, "skopeo copy --all": skopeo_all})]:
                out, traffic = alternate(runs, fns, reg)
                for name, vals in out.items():
                    res.add(case, name, [v[0] for v in vals], [v[1] for v in vals], traffic[name])

        if want("4"):
            # Case 4: warm re-pull by tag and by digest.
            warm = fresh("warm")
            wenv = porter_env(os.path.join(warm, "cache"))
            run([PORTER, "pull", plat, "--insecure", "--all-arch"], env=wenv)
            digest = json.loads(subprocess.run([PORTER, "list"], env=wenv, capture_output=True, check=True).stdout)[0]["digest"]
            swarm = os.path.join(warm, "skopeo")
            run(["skopeo", "copy", "-q", "--all", "--src-tls-verify=false", f"docker://{plat}", f"oci:{swarm}:1"])
            fns = {
                "ds-porter": lambda: run([PORTER, "pull", plat, "--insecure", "--all-arch"], env=wenv),
                "ds-porter (by digest)": lambda: run([PORTER, "pull", f"{host}/bench/plat@{digest}", "--insecure", "--all-arch"], env=wenv),
                "skopeo copy --all (warm)": lambda: run(["skopeo", "copy", "-q", "--all", "--src-tls-verify=false", f"docker://{plat}", f"oci:{swarm}:1"]),
            }
            if baseline:
                fns["ds-porter (baseline)"] = lambda: run([baseline, "pull", plat, "--insecure", "--all-arch"], env=wenv)
            out, traffic = alternate(runs, fns, reg)
            for name, vals in out.items():
                res.add("4. warm re-pull (cached, unchanged)", name, [v[0] for v in vals], [v[1] for v in vals], traffic[name])

        if want("5"):
            # Case 5: push of 1 GiB (4 layers), fresh repository each run, then a re-push.
            blobdir = os.path.join(layout, "blobs", "sha256")
            rel = os.path.join(work, "release")
            os.makedirs(rel)
            yaml = ["manifests:"]
            for i, l in enumerate(layers):
                yaml += [f"  - platform: linux/p{i}", f"    path: {os.path.join(blobdir, l['digest'][7:])}"]
            with open(os.path.join(rel, "ds.manifest.yaml"), "w") as f:
                f.write("\n".join(yaml).replace("linux/p0", "linux/amd64").replace("linux/p1", "linux/arm64")
                        .replace("linux/p2", "darwin/amd64").replace("linux/p3", "darwin/arm64") + "\n")

            def porter_push(*extra):
                # A fresh cache each time: nothing remembered about the files or the registry.
                counter[0] += 1
                cold = os.path.join(work, "push-cold", "cache")
                shutil.rmtree(os.path.dirname(cold), ignore_errors=True)
                os.makedirs(os.path.dirname(cold))
                return run([PORTER, "push", "--manifest", os.path.join(rel, "ds.manifest.yaml"), f"{host}/push/p{counter[0]}:1", "--insecure", *extra],
                           env=porter_env(cold))

            def skopeo_push():
                counter[0] += 1
                return run(["skopeo", "copy", "-q", "--dest-tls-verify=false", f"oci:{layout}:1", f"docker://{host}/push/s{counter[0]}:1"])

            def curl_push():
                counter[0] += 1
                repo = f"push/c{counter[0]}"
                start = time.perf_counter()
                peak = 0
                for l in layers:
                    req = urllib.request.Request(f"http://{host}/v2/{repo}/blobs/uploads/", method="POST")
                    loc = urllib.request.urlopen(req).headers["Location"]
                    url = (loc if loc.startswith("http") else f"http://{host}{loc}") + ("&" if "?" in loc else "?") + f"digest={l['digest']}"
                    _, rss = run(["curl", "-sf", "-X", "PUT", "-H", "Content-Type: application/octet-stream", "-T", os.path.join(blobdir, l["digest"][7:]), url])
                    peak = max(peak, rss)
                return time.perf_counter() - start, peak

            fns = {"ds-porter": porter_push, "skopeo copy oci: docker://": skopeo_push, "curl -T (monolithic, sequential)": curl_push}
            if baseline:
                def baseline_push():
                    counter[0] += 1
                    cold = os.path.join(work, "push-cold-baseline", "cache")
                    shutil.rmtree(os.path.dirname(cold), ignore_errors=True)
                    os.makedirs(os.path.dirname(cold))
                    return run([baseline, "push", "--manifest", os.path.join(rel, "ds.manifest.yaml"), f"{host}/push/b{counter[0]}:1", "--insecure"],
                               env=porter_env(cold))
                fns["ds-porter (baseline)"] = baseline_push
            out = alternate(runs, fns)
            for name, vals in out.items():
                res.add("5. push 1 GiB (4 × 256 MiB)", name, [v[0] for v in vals], [v[1] for v in vals], big_total)

            # 5c: into a new repository of a registry that already holds the blobs in another
            # repository: ds-porter's cache pushed them there before (as skopeo's blob-info
            # cache knows from its own pushes above).
            seen_cache = os.path.join(work, "push-seen", "cache")
            os.makedirs(os.path.dirname(seen_cache), exist_ok=True)
            run([PORTER, "push", "--manifest", os.path.join(rel, "ds.manifest.yaml"), f"{host}/push/seen:1", "--insecure"],
                env=porter_env(seen_cache))

            def porter_mount():
                counter[0] += 1
                return run([PORTER, "push", "--manifest", os.path.join(rel, "ds.manifest.yaml"), f"{host}/push/m{counter[0]}:1", "--insecure"],
                           env=porter_env(seen_cache))

            m = reg.mark()
            out = alternate(runs, {"ds-porter": porter_mount, "skopeo copy oci: docker:// (blob-info cache)": skopeo_push})
            uploaded = reg.traffic_since(m)[2]
            for name, vals in out.items():
                res.add("5c. push 1 GiB into another repository of a registry holding the blobs", name,
                        [v[0] for v in vals], [v[1] for v in vals], 0,
                        note=f"({uploaded} blob uploads by either tool)" if name == "ds-porter" else "")

            # 5d: chunked uploads, 4 MiB chunks, cold cache.
            out = alternate(runs, {"ds-porter": lambda: porter_push("--chunk-size", "4MiB"),
                                   "ds-porter (one request per blob)": porter_push})
            for name, vals in out.items():
                res.add("5d. push 1 GiB in 4 MiB chunks", name, [v[0] for v in vals], [v[1] for v in vals], big_total)
            repush_ref = f"{host}/push/again:1"
            run([PORTER, "push", "--manifest", os.path.join(rel, "ds.manifest.yaml"), repush_ref, "--insecure"], env=porter_env(os.path.join(work, "push-cache")))
            m = reg.mark()
            walls, rsss = [], []
            for _ in range(runs):
                w, rss = run([PORTER, "push", "--manifest", os.path.join(rel, "ds.manifest.yaml"), repush_ref, "--insecure"], env=porter_env(os.path.join(work, "push-cache")))
                walls.append(w)
                rsss.append(rss)
            uploads = reg.traffic_since(m)[2]
            res.add("5b. re-push unchanged", "ds-porter", walls, rsss, 0, note=f"({uploads} upload requests)")

        if want("13"):
            # Case 13: what verification costs on export. The 1 GiB artifact is cached; a warm
            # re-export reads every cached blob, hashes it and writes it out in one pass. Peers:
            # the hash alone (sha256sum) and the copy alone (cp) of the same four blobs.
            big = f"{host}/bench/big:1"
            vcache = os.path.join(work, "verify", "cache")
            os.makedirs(os.path.dirname(vcache), exist_ok=True)
            run([PORTER, "pull", big, "--insecure"], env=porter_env(vcache))
            cached = [os.path.join(vcache, "porter", "blobs", "sha256", l["digest"][7:]) for l in layers]

            def porter_export():
                d = fresh("vx")
                return run([PORTER, "pull", big, "--insecure", "--offline", "-o", os.path.join(d, "out")], env=porter_env(vcache))

            def cp_blobs():
                d = fresh("cp")
                return run(["cp", *cached, d])

            out = alternate(runs, {"ds-porter": porter_export,
                                   "sha256sum of the cached blobs": lambda: run(["sha256sum", *cached]),
                                   "cp of the cached blobs": cp_blobs})
            for name, vals in out.items():
                res.add("13. warm export of 1 GiB, every byte verified", name, [v[0] for v in vals], [v[1] for v in vals], big_total)

        if want("14"):
            # Case 14: what signature verification costs: one platform of six, signed with DS's
            # scheme, pulled and exported with the policy strict (the key trusted) and disabled.
            keydir = os.path.join(work, "keys")
            subprocess.run([PORTER, "key", "generate", "--out", keydir], check=True, env=env0, stdout=subprocess.DEVNULL)
            signed = f"{host}/bench/signed:1"
            subprocess.run([PORTER, "push", "--manifest", os.path.join(plat_dir, "ds.manifest.yaml"), signed, "--insecure",
                            "--sign-key", os.path.join(keydir, "ds-signing-key.pem")], check=True, env=env0, stdout=subprocess.DEVNULL)
            configs = {}
            for mode in ("strict", "disabled"):
                policy = {"mode": mode}
                if mode == "strict":
                    policy["public_keys"] = [os.path.join(keydir, "ds-signing-key.pub")]
                configs[mode] = os.path.join(work, f"{mode}.yaml")
                with open(configs[mode], "w") as f:
                    json.dump({"settings": {"porter": {"signature": policy}}}, f)

            def signed_one(mode):
                d = fresh("sig")
                return run([PORTER, "pull", signed, "--insecure", "--platform", "linux/arm64", "--config", configs[mode],
                            "-o", os.path.join(d, "out")], env=porter_env(os.path.join(d, "cache")))

            out = alternate(runs, {"ds-porter": lambda: signed_one("strict"),
                                   "ds-porter, signatures disabled": lambda: signed_one("disabled")})
            # The check itself, as the engine times it.
            d = fresh("sigdebug")
            proc = subprocess.run([PORTER, "pull", signed, "--insecure", "--platform", "linux/arm64", "--config", configs["strict"],
                                   "--log-level", "debug", "-o", os.path.join(d, "out")], env=porter_env(os.path.join(d, "cache")),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True)
            m = re.search(r"elapsed_us=(\d+)", proc.stderr.decode(errors="replace"))
            note = f"(check: {int(m.group(1)) / 1000:.2f} ms)" if m else ""
            for name, vals in out.items():
                res.add("14. 1 of 6 platforms, DS signature checked (strict)", name, [v[0] for v in vals], [v[1] for v in vals],
                        None, note=note if name == "ds-porter" else "")

        if want("15"):
            # Case 15: copy 1 GiB registry → another registry, a fresh, empty destination registry
            # for every run (so no tool can mount from an earlier run's copy) and a fresh cache for
            # ds-porter, against skopeo copy and oras-py (pull to a directory, then push).
            big = f"{host}/bench/big:1"

            def into_fresh_registry(copy):
                counter[0] += 1
                dest_work = os.path.join(work, f"dest-{counter[0]}")
                os.makedirs(dest_work)
                dest = Registry(dest_work)
                try:
                    return copy(dest.host)
                finally:
                    dest.stop()
                    shutil.rmtree(dest_work, ignore_errors=True)

            def porter_copy(dest):
                d = fresh("copy")
                return run([PORTER, "copy", big, f"{dest}/copy/big:1", "--insecure"], env=porter_env(os.path.join(d, "cache")))

            def skopeo_copy(dest):
                fresh("skopeo-copy")
                return run(["skopeo", "copy", "-q", "--src-tls-verify=false", "--dest-tls-verify=false",
                            f"docker://{big}", f"docker://{dest}/copy/big:1"])

            def oras_copy(dest):
                d = fresh("oras-copy")
                code = ("import oras.client,sys,os; c=oras.client.OrasClient(hostname=sys.argv[1], insecure=True); "
                        "files=c.pull(target=sys.argv[2], outdir=sys.argv[4]); "
                        "o=oras.client.OrasClient(hostname=sys.argv[3], insecure=True); "
                        "os.chdir(sys.argv[4]); o.push(target=sys.argv[5], files=[os.path.basename(f) for f in files])")
                return run([VENV_PY, "-c", code, host, big, dest, d, f"{dest}/copy/big:1"])

            def curl_upload_floor(dest):
                # Not a copy: the four blobs uploaded from local files, 4 at once, monolithic
                # PUTs — what the destination registry alone takes to receive 1 GiB here.
                fresh("curl-floor")
                blob_dir = os.path.join(layout, "blobs", "sha256")
                cmd = ["curl", "-sf", "--parallel", "--parallel-max", "4", "-H", "Content-Type: application/octet-stream"]
                for l in layers:
                    req = urllib.request.Request(f"http://{dest}/v2/copy/floor/blobs/uploads/", method="POST")
                    loc = urllib.request.urlopen(req).headers["Location"]
                    url = (loc if loc.startswith("http") else f"http://{dest}{loc}") + ("&" if "?" in loc else "?") + f"digest={l['digest']}"
                    cmd += ["-T", os.path.join(blob_dir, l["digest"][7:]), url]
                return run(cmd)

            tools = {"ds-porter": lambda: into_fresh_registry(porter_copy),
                     "skopeo copy docker:// docker://": lambda: into_fresh_registry(skopeo_copy),
                     "curl -T ×4 at once, upload alone (the destination's floor)": lambda: into_fresh_registry(curl_upload_floor)}
            if os.path.exists(VENV_PY):
                tools["oras-py pull + push"] = lambda: into_fresh_registry(oras_copy)
            out = alternate(runs, tools)
            for name, vals in out.items():
                res.add("15. copy 1 GiB registry → registry", name, [v[0] for v in vals], [v[1] for v in vals], big_total)

        if want("16"):
            # Case 16: inspect the 6-platform index (ds-porter reads the index and all six manifests),
            # against skopeo inspect (index, this platform's manifest and config) and --raw (index).
            # skopeo's non-raw inspect refuses artifacts (empty config), so its peer for what
            # ds-porter reads is `inspect --raw` of the index and of each of the six manifests.
            d = fresh("inspect")
            ienv = porter_env(os.path.join(d, "cache"))
            index = json.loads(subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{plat}"],
                                              capture_output=True, check=True).stdout)
            repo = plat.rsplit(":", 1)[0]
            children = [f"docker://{repo}@{m['digest']}" for m in index["manifests"]]

            def skopeo_all():
                total = [0.0, 0]
                for ref in [f"docker://{plat}"] + children:
                    w, rss = run(["skopeo", "inspect", "--raw", "--tls-verify=false", ref])
                    total[0] += w
                    total[1] = max(total[1], rss or 0)
                return total[0], total[1]

            out = alternate(runs, {
                "ds-porter": lambda: run([PORTER, "inspect", plat, "--insecure"], env=ienv),
                "ds-porter inspect --raw": lambda: run([PORTER, "inspect", plat, "--insecure", "--raw"], env=ienv),
                "skopeo inspect --raw, index + 6 manifests (7 runs)": skopeo_all,
                "skopeo inspect --raw, index only": lambda: run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{plat}"]),
            })
            for name, vals in out.items():
                res.add("16. inspect a 6-platform index", name, [v[0] for v in vals], [v[1] for v in vals], None,
                        note={"ds-porter": "(index + 6 manifests, one run)", "ds-porter inspect --raw": "(index only)"}.get(name, ""))

        if want("6"):
            # Case 6: plugin round trips through the go-plugin host.
            if os.path.exists(GO_HOST) and os.path.exists(REF_PLUGIN):
                pwork = fresh("plugin")
                cfg = os.path.join(pwork, "config.json")
                with open(cfg, "w") as f:
                    json.dump({"Cache": {"Dir": os.path.join(pwork, "cache")}}, f)

                def host_bench(plugin):
                    """Timed inside the host: (spawn → Execute result, spawn → process gone, a DS-style
                    pair of launches: GetManifest in one, Execute in the next) in seconds."""
                    out = subprocess.run([GO_HOST, "-plugin", plugin, "-config", cfg, "-bench", "1", "-op", "list"],
                                         capture_output=True, check=True).stdout
                    b = json.loads(out)["bench"]
                    return b["result_millis"][0] / 1000, b["total_millis"][0] / 1000, b["ds_style_millis"][0] / 1000

                n = max(runs, 20)
                peers = [("ds-porter", PORTER), ("Go go-plugin plugin", REF_PLUGIN)]
                results = {name: [] for name, _ in peers}
                totals = {name: [] for name, _ in peers}
                styles = {name: [] for name, _ in peers}
                for _ in range(n):
                    for name, plugin in peers:
                        r, t, d = host_bench(plugin)
                        results[name].append(r)
                        totals[name].append(t)
                        styles[name].append(d)
                for name, _ in peers:
                    res.add("6a. plugin spawn → list result (timed in the host)", name, results[name], [])
                    res.add("6b. plugin spawn → exited after Shutdown (timed in the host)", name, totals[name], [])
                    res.add("6c. DS-style call: GetManifest launch + Execute launch (timed in the host)", name,
                            styles[name], [])
                if os.path.exists(HANDSHAKE):
                    # Start → handshake line: posix_spawn to the first stdout line, timed in C.
                    timed = peers + ([("exec floor: a C program printing the line", FLOOR)] if os.path.exists(FLOOR) else [])
                    out = subprocess.run([HANDSHAKE, str(max(runs, 20) * 5)] + [p for _, p in timed],
                                         capture_output=True, check=True, text=True).stdout.split("\n")
                    for (name, _), line in zip(timed, out):
                        res.add("6d. plugin spawn → handshake line (timed in C, incl. exec)", name,
                                [float(line.split()[-1]) / 1000], [])

        if want("8") and os.path.exists(BENCH_CGO) and os.path.exists(GO_HOST):
            # Case 8: case 2's pull + export of one platform, in process through cgo (client open,
            # pull, close), against the plugin path (spawn → Execute result, in the host) and the CLI.
            def ffi_one():
                d = fresh("ffi")
                env = dict(os.environ, PORTER_BENCH_RUNS="1", PORTER_BENCH_REF=plat, PORTER_BENCH_PLATFORM="linux/arm64",
                           PORTER_TEST_REGISTRY=host, PORTER_TEST_WORKDIR=d)
                out = subprocess.run([BENCH_CGO], env=env, capture_output=True, check=True).stdout
                return json.loads(out)["millis"][0] / 1000

            def plugin_one():
                d = fresh("plug")
                cfg = os.path.join(d, "config.json")
                with open(cfg, "w") as f:
                    json.dump({"Cache": {"Dir": os.path.join(d, "cache")}, "Registry": {"InsecureRegistries": [host]}}, f)
                cmd = [GO_HOST, "-plugin", PORTER, "-config", cfg, "-bench", "1", "-op", "pull"]
                for a in [plat, "--platform", "linux/arm64", "-o", os.path.join(d, "out")]:
                    cmd += ["-arg", a]
                rep = json.loads(subprocess.run(cmd, capture_output=True, check=True).stdout)
                if rep.get("errors"):
                    raise SystemExit(f"plugin pull failed: {rep['errors']}")
                return rep["bench"]["result_millis"][0] / 1000

            def cli_one():
                d = fresh("cli8")
                return run([PORTER, "pull", plat, "--insecure", "--platform", "linux/arm64", "-o", os.path.join(d, "out")],
                           env=porter_env(os.path.join(d, "cache")))[0]

            fns = {"ds-porter": ffi_one, "ds-porter plugin": plugin_one, "ds-porter CLI": cli_one}
            notes = {"ds-porter": "(through cgo, in process)", "ds-porter plugin": "(spawn → result, timed in the host)",
                     "ds-porter CLI": "(one process)"}
            out = alternate(runs, fns)
            for name, vals in out.items():
                res.add("8. FFI path: pull + export 1 of 6 platforms", name, vals, [], note=notes[name])

        def concurrent(binary, refs, cache):
            """Starts one `pull` of each of `refs` at once into `cache`; (wall until the last one is
            done, the largest peak RSS)."""
            start = time.perf_counter()
            procs = []
            for ref in refs:
                rss = tempfile.NamedTemporaryFile("r", suffix=".rss")
                procs.append((rss, subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", rss.name, binary, "pull", ref, "--insecure"],
                                                    env=porter_env(cache), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)))
            peak = 0
            for rss, proc in procs:
                _, err = proc.communicate()
                if proc.returncode != 0:
                    raise RuntimeError(f"concurrent pull failed ({proc.returncode}): {err.decode(errors='replace')[-2000:]}")
                lines = [l for l in rss.read().split() if l.strip().isdigit()]
                peak = max(peak, int(lines[-1]) if lines else 0)
                rss.close()
            return time.perf_counter() - start, peak

        pullers = {"ds-porter": PORTER}
        if baseline:
            pullers["ds-porter (baseline)"] = baseline

        if want("11"):
            # Case 11: 8 cold pulls of one 1 GiB artifact at once into one cache, against one pull.
            big = f"{host}/bench/big:1"
            fns = {"ds-porter": lambda: concurrent(PORTER, [big], os.path.join(fresh("c1"), "cache"))}
            for name, binary in pullers.items():
                fns[f"{name} ×8 (last done)"] = lambda b=binary: concurrent(b, [big] * 8, os.path.join(fresh("c8"), "cache"))
            out, traffic = alternate(runs, fns, reg)
            for name, vals in out.items():
                res.add("11. 8 concurrent cold pulls of one 1 GiB artifact into one cache (vs one pull)", name,
                        [v[0] for v in vals], [v[1] for v in vals], traffic[name])

        if want("12"):
            # Case 12: 8 pulls of 8 different artifacts (64 MiB each) at once into one cache.
            size = (4 if args.quick else 64) * MIB
            refs = []
            for i in range(8):
                path = os.path.join(work, f"artifact{i}.bin")
                write_random(path, size, f"artifact{i}")
                ref = f"{host}/bench/many{i}:1"
                subprocess.run([PORTER, "push", path, ref, "--insecure"], check=True, env=env0, stdout=subprocess.DEVNULL)
                refs.append(ref)
            fns = {name: (lambda b=binary: concurrent(b, refs, os.path.join(fresh("m8"), "cache"))) for name, binary in pullers.items()}
            out, traffic = alternate(runs, fns, reg)
            for name, vals in out.items():
                res.add("12. 8 concurrent cold pulls of 8 different artifacts (8 × 64 MiB), one cache", name,
                        [v[0] for v in vals], [v[1] for v in vals], traffic[name])

        if want("7"):
            # Case 7: list with 200 and 10,000 cached artifacts.
            for count in (200, 10000):
                lwork = fresh(f"list{count}")
                cache = os.path.join(lwork, "cache")
                root = os.path.join(cache, "porter")
                os.makedirs(root)
                for i in range(count):
                    hexid = hashlib.sha256(str(i).encode()).hexdigest()
                    d = os.path.join(root, hexid[:16])
                    os.makedirs(d)
                    with open(os.path.join(d, "metadata.json"), "w") as f:
                        json.dump({"id": hexid[:16], "reference": f"{host}/demo/a{i}:1", "digest": "sha256:" + hexid,
                                   "size": 1000, "local_path": d, "metadata": {"name": "x"}, "cached": True,
                                   "cached_at": "2026-01-01T00:00:00Z"}, f, indent=2)
                env = porter_env(cache)
                vals = [run([PORTER, "list"], env=env) for _ in range(runs)]
                res.add(f"7. list {count:,} cached artifacts", "ds-porter", [v[0] for v in vals], [v[1] for v in vals])
    finally:
        reg.stop()
        shutil.rmtree(work, ignore_errors=True)

    notes = (f"Machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}; "
             f"{runs} alternating runs per case (case 6: {max(runs, 20)}), medians; registry bytes from the "
             f"registry's access log (blob bytes sent for pulls, blob bytes uploaded for pushes).")
    text = res.table() + "\n\n" + notes + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    sys.exit(main())
