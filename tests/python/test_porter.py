"""ds-porter's engine from Python, through the uniffi-generated module `porter`.

tests/tests/ffi_callers.rs generates the module from libporter_ffi.so, starts the registry,
publishes the fixtures and runs this script with the environment documented in
tests/cgo/main.go (PORTER_TEST_REGISTRY, PORTER_TEST_TOOL, ...). Standard library only.
Exits 0 when every check passed, 1 otherwise.
"""

import hashlib
import json
import os
import sys
import threading
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

import porter

ENV = {name: os.environ[name] for name in (
    "PORTER_TEST_REGISTRY", "PORTER_TEST_TOOL", "PORTER_TEST_TOOL_ID", "PORTER_TEST_REFS",
    "PORTER_TEST_LARGE", "PORTER_TEST_WORKDIR")}
REGISTRY = ENV["PORTER_TEST_REGISTRY"]
TOOL = ENV["PORTER_TEST_TOOL"]
WORK = ENV["PORTER_TEST_WORKDIR"]


def new_client(cache="cache"):
    config = {"Cache": {"Dir": os.path.join(WORK, cache)},
              "Registry": {"InsecureRegistries": [REGISTRY]}}
    return porter.PorterClient(json.dumps(config))


class Events(porter.ProgressListener):
    """Collects progress events; optionally runs `hook` on each."""

    def __init__(self, hook=None):
        self.events = []
        self.lock = threading.Lock()
        self.hook = hook

    def on_progress(self, event):
        with self.lock:
            self.events.append(event)
        if self.hook:
            self.hook(event)


class PorterFromPython(unittest.TestCase):
    def test_version(self):
        self.assertTrue(porter.version())

    def test_pull_with_platforms_exports_and_reports_progress(self):
        client = new_client("pull")
        self.assertEqual(client.list(), [])
        events = Events()
        out = os.path.join(WORK, "py-pulled")
        artifact = client.pull(TOOL, porter.PullOptions(platforms=["linux/amd64"], output=out),
                               listener=events)
        self.assertEqual(artifact.id, ENV["PORTER_TEST_TOOL_ID"])
        self.assertEqual(artifact.reference, TOOL)
        self.assertTrue(artifact.digest.startswith("sha256:"))
        exported = os.path.join(out, "linux", "amd64", "tool")
        self.assertEqual(artifact.exported_files, [exported])
        with open(exported) as f:
            self.assertEqual(f.read(), "tool for linux/amd64\n")
        self.assertEqual(json.loads(artifact.json)["id"], artifact.id)
        started = [e for e in events.events if isinstance(e, porter.ProgressEvent.STARTED)]
        done = [e for e in events.events if isinstance(e, porter.ProgressEvent.DONE)]
        self.assertTrue(started and len(started) == len(done), events.events)
        self.assertIn("tool", [e.title for e in started])

        self.assertEqual([a.id for a in client.list()], [artifact.id])

        client.pull(TOOL, porter.PullOptions(all_arch=True))
        target = os.path.join(WORK, "py-exported")
        exported = client.export(TOOL, target, porter.ExportOptions(platforms=["linux/arm64"]))
        with open(os.path.join(target, "linux", "arm64", "tool")) as f:
            self.assertEqual(f.read(), "tool for linux/arm64\n")
        self.assertEqual(exported.id, artifact.id)

    def test_errors_are_typed(self):
        client = new_client("errors")
        with self.assertRaises(porter.PorterError.InvalidInput) as bad:
            client.pull("Not A Reference")
        self.assertIn("Not A Reference", bad.exception.message)
        with self.assertRaises(porter.PorterError.Network) as unreachable:
            client.pull("127.0.0.1:1/demo/tool:1.0", porter.PullOptions(insecure=True))
        self.assertIn("127.0.0.1:1", unreachable.exception.message)
        with self.assertRaises(porter.PorterError.NotFound):
            client.pull(REGISTRY + "/demo/missing:1.0")
        with self.assertRaises(porter.PorterError.InvalidInput):
            client.pull(TOOL, porter.PullOptions(all_arch=True, platforms=["linux/amd64"]))
        with self.assertRaises(porter.PorterError.NotFound):
            client.export(REGISTRY + "/demo/never-pulled:1.0", os.path.join(WORK, "never"))
        with self.assertRaises(porter.PorterError.InvalidInput):
            porter.PorterClient("{")

    def test_a_damaged_cached_blob_is_refused_offline_and_fetched_again_online(self):
        client = new_client("damaged")
        client.pull(TOOL, porter.PullOptions(platforms=["linux/amd64"]))
        blobs = os.path.join(WORK, "damaged", "porter", "blobs", "sha256")
        damaged = []
        for name in os.listdir(blobs):
            path = os.path.join(blobs, name)
            with open(path, "rb") as f:
                data = f.read()
            if data.startswith(b"tool for"):
                with open(path, "wb") as f:
                    f.write(data[:-1] + bytes([data[-1] ^ 1]))
                damaged.append("sha256:" + name)
        self.assertEqual(len(damaged), 1)
        out = os.path.join(WORK, "py-damaged")
        with self.assertRaises(porter.PorterError.CacheCorrupt) as refused:
            client.pull(TOOL, porter.PullOptions(platforms=["linux/amd64"], output=out,
                                                 offline=True))
        self.assertIn(damaged[0], refused.exception.message)
        self.assertIn("is damaged", refused.exception.message)
        self.assertNotIn("--", refused.exception.message)
        self.assertFalse(os.path.exists(os.path.join(out, "linux", "amd64", "tool")))
        client.pull(TOOL, porter.PullOptions(platforms=["linux/amd64"], output=out))
        with open(os.path.join(out, "linux", "amd64", "tool"), "rb") as f:
            self.assertEqual(f.read(), b"tool for linux/amd64\n")

    def test_options_and_configuration_refuse_what_they_do_not_know(self):
        with self.assertRaises(porter.PorterError.InvalidInput) as typo:
            porter.PorterClient(json.dumps({"Cache": {"Dir": os.path.join(WORK, "typo")},
                                            "Registry": {"Mirrors": [], "Insecure": True}}))
        self.assertIn("unknown key Registry.Insecure", typo.exception.message)
        client = new_client("rules")
        with self.assertRaises(porter.PorterError.InvalidInput) as empty:
            client.pull(TOOL, porter.PullOptions(output=""))
        self.assertIn("output is empty", empty.exception.message)
        with self.assertRaises(porter.PorterError.InvalidInput) as also_empty:
            client.export(TOOL, "")
        self.assertEqual(empty.exception.message, also_empty.exception.message)
        with self.assertRaises(porter.PorterError.InvalidInput) as retries:
            client.pull(TOOL, porter.PullOptions(retries=21))
        self.assertIn("retries must be at most 20", retries.exception.message)

    def test_an_existing_file_is_replaced_only_with_overwrite(self):
        client = new_client("overwrite")
        target = os.path.join(WORK, "py-mine.bin")
        with open(target, "w") as f:
            f.write("mine")
        with self.assertRaises(porter.PorterError.InvalidInput) as refused:
            client.pull(TOOL, porter.PullOptions(output=target))
        self.assertIn('"overwrite": true', refused.exception.message)
        with open(target) as f:
            self.assertEqual(f.read(), "mine")
        client.pull(TOOL, porter.PullOptions(output=target, overwrite=True))
        with open(target) as f:
            self.assertTrue(f.read().startswith("tool for "))

    def test_a_call_past_its_timeout_is_stopped(self):
        client = new_client("timeout")
        with self.assertRaises(porter.PorterError.TimedOut) as late:
            client.pull(ENV["PORTER_TEST_LARGE"], porter.PullOptions(timeout_ms=20))
        self.assertIn("timeout_ms (20 ms)", late.exception.message)
        self.assertEqual(client.list(), [])

    def test_close_cancels_running_calls_and_refuses_new_ones(self):
        client = new_client("close")
        first_bytes = threading.Event()
        outcome = []

        def on_bytes(event):
            if isinstance(event, porter.ProgressEvent.BYTES):
                first_bytes.set()

        def pull():
            try:
                client.pull(ENV["PORTER_TEST_LARGE"], listener=Events(on_bytes))
                outcome.append("pulled")
            except porter.PorterError.Cancelled:
                outcome.append("cancelled")

        thread = threading.Thread(target=pull)
        thread.start()
        self.assertTrue(first_bytes.wait(60))
        client.close()
        thread.join(10)
        self.assertEqual(outcome, ["cancelled"])
        with self.assertRaises(porter.PorterError.Cancelled):
            client.list()

    def test_concurrent_pulls_from_threads(self):
        client = new_client("concurrent")
        refs = ENV["PORTER_TEST_REFS"].split(",") * 2
        with ThreadPoolExecutor(max_workers=len(refs)) as pool:
            artifacts = list(pool.map(client.pull, refs))
        ids = {a.reference: a.id for a in artifacts}
        self.assertEqual(len(ids), len(refs) // 2)
        self.assertEqual(sorted(a.id for a in client.list()), sorted(set(ids.values())))

    def test_cancel_from_another_thread(self):
        client = new_client("cancel")
        cancellation = porter.Cancellation()
        first_bytes = threading.Event()
        cancelled = threading.Event()

        def hold_until_cancelled(event):
            if isinstance(event, porter.ProgressEvent.BYTES) and not first_bytes.is_set():
                first_bytes.set()
                cancelled.wait(60)

        def canceller():
            first_bytes.wait(60)
            cancellation.cancel()
            cancelled.set()

        thread = threading.Thread(target=canceller)
        thread.start()
        with self.assertRaises(porter.PorterError.Cancelled):
            client.pull(ENV["PORTER_TEST_LARGE"], listener=Events(hold_until_cancelled),
                        cancellation=cancellation)
        thread.join(60)
        self.assertTrue(first_bytes.is_set())
        self.assertEqual(client.list(), [])
        # Stays cancelled; a fresh pull completes.
        with self.assertRaises(porter.PorterError.Cancelled):
            client.pull(TOOL, cancellation=cancellation)
        artifact = client.pull(ENV["PORTER_TEST_LARGE"])
        self.assertEqual([a.id for a in client.list()], [artifact.id])

    def test_a_listener_calling_the_client_is_refused(self):
        client = new_client("reentry")
        outcomes = []

        def call_back_in(_event):
            try:
                client.pull(TOOL)
                outcomes.append("ok")
            except porter.PorterError.Other as e:
                outcomes.append(e.message)

        client.pull(TOOL, porter.PullOptions(platforms=["linux/arm64"]),
                    listener=Events(call_back_in))
        self.assertTrue(outcomes)
        self.assertTrue(all("progress callback" in o for o in outcomes), outcomes)

    def test_push_then_pull(self):
        client = new_client("push")
        source = os.path.join(WORK, "py-push", "hello")
        os.makedirs(os.path.dirname(source), exist_ok=True)
        with open(source, "w") as f:
            f.write("hello from python\n")
        os.chmod(source, 0o755)
        target = REGISTRY + "/python/hello:1.0"
        pushed = client.push(source, target, porter.PushOptions(insecure=True))
        self.assertEqual(pushed.reference, target)
        out = os.path.join(WORK, "py-hello.bin")
        pulled = client.pull(target, porter.PullOptions(output=out))
        self.assertEqual(pulled.digest, pushed.digest)
        with open(out) as f:
            self.assertEqual(f.read(), "hello from python\n")
        with self.assertRaises(porter.PorterError) as missing:
            client.push(os.path.join(WORK, "no-such-file"), target)
        self.assertIn("no-such-file", str(missing.exception))

    def test_cache_verify_and_prune(self):
        client = new_client("cache-commands")
        client.pull(TOOL)
        report = client.cache_verify()
        self.assertGreater(report.checked, 0)
        self.assertEqual((report.corrupt, report.missing), ([], []))
        pruned = client.cache_prune(porter.PruneOptions(max_size_bytes=0))
        self.assertEqual(pruned.removed, [ENV["PORTER_TEST_TOOL_ID"]])
        self.assertEqual(client.list(), [])

    def test_inspect_of_an_index_and_its_raw_root(self):
        client = new_client("inspect")
        found = client.inspect(TOOL)
        self.assertEqual(found.reference, TOOL)
        self.assertEqual(found.source, "registry")
        self.assertEqual([p.platform for p in found.platforms],
                         ["linux/amd64", "linux/arm64", "windows/amd64"])
        self.assertTrue(all(p.layers and p.config for p in found.platforms))
        self.assertEqual("sha256:" + hashlib.sha256(found.raw).hexdigest(), found.digest)
        self.assertEqual(json.loads(found.json)["digest"], found.digest)
        self.assertEqual(client.list(), [])
        with self.assertRaises(porter.PorterError.NotFound):
            client.inspect(TOOL, porter.InspectOptions(offline=True))
        with self.assertRaises(porter.PorterError.InvalidInput):
            client.inspect("Not A Reference")

    def test_tags_with_a_semver_constraint(self):
        client = new_client("tags")
        source = os.path.join(WORK, "py-versions")
        with open(source, "w") as f:
            f.write("versions\n")
        repo = REGISTRY + "/python/versions"
        for tag in ("0.9.0", "1.1.0", "1.3.0", "2.0.0"):
            client.push(source, f"{repo}:{tag}", porter.PushOptions(insecure=True,
                                                                  tag_latest=False))
        listed = client.tags(repo, porter.TagsOptions(semver="^1", page_size=1))
        self.assertEqual((listed.repository, listed.constraint, listed.tags),
                         (repo, "^1", ["1.1.0", "1.3.0"]))
        self.assertEqual(client.tags(repo, porter.TagsOptions(latest=True)).tags, ["2.0.0"])
        self.assertIsNone(client.tags(repo).constraint)
        with self.assertRaises(porter.PorterError.NotFound):
            client.tags(repo, porter.TagsOptions(semver="^3", latest=True))
        with self.assertRaises(porter.PorterError.InvalidInput) as bad:
            client.tags(repo, porter.TagsOptions(semver="one"))
        self.assertIn("invalid version constraint", bad.exception.message)

    def test_copy_to_a_layout_keeps_the_digest(self):
        client = new_client("copy")
        events = Events()
        layout = "oci:" + os.path.join(WORK, "py-layout")
        copied = client.copy(TOOL, layout, listener=events)
        self.assertEqual(copied.digest, copied.source_digest)
        self.assertFalse(copied.subset)
        self.assertEqual(len(copied.platforms), 3)
        self.assertTrue(events.events)
        self.assertEqual(client.inspect(copied.destination).digest, copied.digest)
        subset = client.copy(TOOL, layout + ":arm", porter.CopyOptions(platforms=["linux/arm64"]))
        self.assertTrue(subset.subset)
        self.assertEqual(json.loads(subset.json)["platforms"], ["linux/arm64"])
        with self.assertRaises(porter.PorterError.InvalidInput):
            client.copy(TOOL, layout, porter.CopyOptions(all_arch=True, platforms=["linux/amd64"]))
        cancellation = porter.Cancellation()
        cancellation.cancel()
        with self.assertRaises(porter.PorterError.Cancelled):
            client.copy(TOOL, layout + ":never", cancellation=cancellation)

    def test_cache_remove(self):
        client = new_client("remove")
        artifact = client.pull(TOOL)
        with self.assertRaises(porter.PorterError.NotFound) as unknown:
            client.cache_remove([artifact.id, "no-such-artifact"])
        self.assertIn("no-such-artifact", unknown.exception.message)
        self.assertEqual(len(client.list()), 1)
        with self.assertRaises(porter.PorterError.InvalidInput):
            client.cache_remove([])
        removed = client.cache_remove([artifact.id])
        self.assertEqual(removed.removed, [artifact.id])
        self.assertGreater(removed.freed_bytes, 0)
        self.assertEqual(client.list(), [])

    def test_adapter_requests(self):
        adapter = porter.PorterAdapterClient(
            json.dumps({"Cache": {"Dir": os.path.join(WORK, "adapter-cache")},
                        "Registry": {"InsecureRegistries": [REGISTRY]}}),
            json.dumps({"store_path": os.path.join(WORK, "adapter", "store.db")}))

        def call(**request):
            return json.loads(adapter.call(json.dumps(request)))

        source = os.path.join(WORK, "py-bundle.json")
        with open(source, "w") as f:
            f.write('{"bundle":"py"}')
        reference = REGISTRY + "/python/bundle:v1"
        pushed = call(op="push_bundle", reference=reference, source=source,
                      media_type="application/vnd.ds.bundle.v1+json")
        out = os.path.join(WORK, "py-bundle.out")
        pulled = call(op="pull_bundle", reference=reference, output=out)
        self.assertEqual(pulled["digest"], pushed["digest"])
        with open(out) as f:
            self.assertEqual(f.read(), '{"bundle":"py"}')
        self.assertIn("v1", call(op="list_installations", repository=REGISTRY + "/python/bundle"))

        call(op="store_installation_state", id="py", value={"n": 1.5})
        self.assertEqual(call(op="get_installation_state", id="py"), {"n": 1.5})
        event = call(op="publish", type="python.checked", data={})
        events = call(op="events_since", cursor=0, limit=10)
        self.assertEqual([e["type"] for e in events],
                         ["bundle.pushed", "bundle.pulled", "python.checked"])
        self.assertEqual(events[-1]["sequence"], event["sequence"])
        with self.assertRaises(porter.PorterError.NotFound):
            call(op="get_bundle_metadata", reference="never:1")
        with self.assertRaises(porter.PorterError.InvalidInput):
            call(op="no_such_op")


if __name__ == "__main__":
    started = time.monotonic()
    result = unittest.main(exit=False, verbosity=2).result
    print(f"python: {result.testsRun} tests in {time.monotonic() - started:.1f}s")
    sys.exit(0 if result.wasSuccessful() else 1)
