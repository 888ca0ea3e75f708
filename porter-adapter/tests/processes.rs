//! Several processes on one store: no lost update, no corruption, and writers killed at any
//! point leave the store readable with every write whole.
//!
//! The children are this test binary run again with `PORTER_ADAPTER_CHILD` naming a role; the
//! `child` test below performs that role and does nothing in a normal run.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use porter_adapter::{BlockingAdapter, Error, Installation};
use serde_json::{Value, json};

const ROLE: &str = "PORTER_ADAPTER_CHILD";
const DIR: &str = "PORTER_ADAPTER_CHILD_DIR";
const INDEX: &str = "PORTER_ADAPTER_CHILD_INDEX";
const ROUNDS: &str = "PORTER_ADAPTER_CHILD_ROUNDS";
/// The file whose appearance starts every child at once.
const GO_FILE: &str = "go";
/// What the hammer prints once its first round is committed.
const READY: &str = "porter-adapter-child-ready";
const CHILD_DEADLINE: Duration = Duration::from_secs(120);
/// The state id and installation name the ledger writers use.
const LEDGER: &str = "ledger";
/// Overrides the seed of the kill points.
const KILL_SEED: &str = "PORTER_ADAPTER_KILL_SEED";

/// Record `n` of the ledger: `n`, a copy of it, and a pad whose length and bytes follow `n` (up
/// to 48 KiB, so most records span several database pages).
fn ledger_record(n: u64) -> Value {
    let len = usize::try_from(n * 7919 % (48 << 10)).unwrap() + 1;
    let byte = char::from(b'a' + u8::try_from(n % 26).unwrap());
    json!({"n": n, "check": n, "pad": byte.to_string().repeat(len)})
}

/// Asserts `record` is a whole ledger record and returns its `n`.
fn assert_whole(record: &Value, what: &str) -> u64 {
    let n = record["n"].as_u64().unwrap_or_else(|| {
        panic!(
            "{what}: no n in a record of {} bytes",
            record.to_string().len()
        )
    });
    assert_eq!(record["check"], json!(n), "{what}: torn record {n}");
    assert!(
        *record == ledger_record(n),
        "{what}: record {n} has a torn or foreign pad"
    );
    n
}

fn open(dir: &Path) -> BlockingAdapter {
    let mut options = common::options(&dir.join("store.db"));
    options.busy_timeout = Duration::from_secs(60);
    BlockingAdapter::open(common::settings(dir), options).unwrap()
}

fn env_number(name: &str) -> u64 {
    std::env::var(name).unwrap().parse().unwrap()
}

/// Waits (≤ 30 s) for the parent's go signal.
fn wait_for_go(dir: &Path) {
    let start = Instant::now();
    while !dir.join(GO_FILE).exists() {
        assert!(start.elapsed() < Duration::from_secs(30), "no go signal");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn child() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let dir = PathBuf::from(std::env::var(DIR).unwrap());
    let index = env_number(INDEX);
    match role.as_str() {
        // Read-modify-write of shared records, plus an event per round.
        "writer" => {
            let rounds = env_number(ROUNDS);
            wait_for_go(&dir);
            let adapter = open(&dir);
            for round in 0..rounds {
                adapter
                    .update_installation_state("counter", None, |current| {
                        json!(current.and_then(|v| v.as_u64()).unwrap_or(0) + 1)
                    })
                    .unwrap();
                adapter
                    .update_installation("ns", "shared", |i| {
                        let count = i.outputs.get("count").and_then(|v| v.as_u64()).unwrap_or(0);
                        i.outputs.insert("count".into(), json!(count + 1));
                    })
                    .unwrap();
                adapter
                    .publish("test.round", json!({"child": index, "round": round}))
                    .unwrap();
            }
        }
        // Everyone opens a store that does not exist yet, at the same moment.
        "opener" => {
            wait_for_go(&dir);
            let adapter = open(&dir);
            adapter
                .store_installation_state(&format!("child-{index}"), json!(index), None)
                .unwrap();
        }
        // Writes until killed, announcing the first completed round on stdout.
        "hammer" => {
            let adapter = open(&dir);
            let start = Instant::now();
            let mut round = 0u64;
            while start.elapsed() < CHILD_DEADLINE {
                adapter
                    .update_installation_state("counter", None, |current| {
                        json!(current.and_then(|v| v.as_u64()).unwrap_or(0) + 1)
                    })
                    .unwrap();
                adapter
                    .publish(
                        "test.hammer",
                        json!({"round": round, "pad": "x".repeat(4096)}),
                    )
                    .unwrap();
                if round == 0 {
                    println!("\n{READY}");
                }
                round += 1;
            }
        }
        // Writes until killed, three transactions a round, each a record whose fields all
        // follow one number; announces the first completed round on stdout.
        "ledger" => {
            let adapter = open(&dir);
            let start = Instant::now();
            let mut announced = false;
            while start.elapsed() < CHILD_DEADLINE {
                let entry = adapter
                    .update_installation_state(LEDGER, None, |current| {
                        ledger_record(current.and_then(|v| v["n"].as_u64()).unwrap_or(0) + 1)
                    })
                    .unwrap();
                let n = entry.value["n"].as_u64().unwrap();
                adapter.publish("test.ledger", ledger_record(n)).unwrap();
                let mut installation = Installation::new("ns", LEDGER, "b:1");
                installation.parameters.insert("n".into(), json!(n));
                if let Value::Object(fields) = ledger_record(n) {
                    installation.outputs = fields;
                }
                adapter.save_installation(installation).unwrap();
                if !announced {
                    println!("\n{READY}");
                    announced = true;
                }
            }
        }
        other => panic!("unknown child role {other}"),
    }
}

fn spawn(role: &str, dir: &Path, index: usize, rounds: u64, stdout: Stdio) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(DIR, dir)
        .env(INDEX, index.to_string())
        .env(ROUNDS, rounds.to_string())
        .stdout(stdout)
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Waits for every child, killing all of them if the deadline passes.
fn wait_all(children: &mut [Child]) {
    let start = Instant::now();
    for i in 0..children.len() {
        loop {
            if let Some(status) = children[i].try_wait().unwrap() {
                assert!(status.success(), "child {i} failed: {status}");
                break;
            }
            if start.elapsed() > CHILD_DEADLINE {
                for child in children.iter_mut() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                panic!("children did not finish within {CHILD_DEADLINE:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn concurrent_processes_lose_no_update() {
    const CHILDREN: usize = 4;
    const ROUNDS_EACH: u64 = 50;
    let dir = tempfile::tempdir().unwrap();
    let parent = open(dir.path());
    parent
        .save_installation(Installation::new("ns", "shared", "b:1"))
        .unwrap();

    let mut children: Vec<Child> = (0..CHILDREN)
        .map(|i| spawn("writer", dir.path(), i, ROUNDS_EACH, Stdio::null()))
        .collect();
    std::fs::write(dir.path().join(GO_FILE), b"").unwrap();
    wait_all(&mut children);

    let total = CHILDREN as u64 * ROUNDS_EACH;
    assert_eq!(
        parent.get_installation_state("counter").unwrap(),
        json!(total)
    );
    let shared = parent.get_installation("ns", "shared").unwrap();
    assert_eq!(shared.outputs["count"], json!(total));

    let events = parent.events_since(0, 10_000).unwrap();
    assert_eq!(events.len() as u64, total);
    assert!(
        events.windows(2).all(|w| w[0].sequence < w[1].sequence),
        "sequences strictly increase"
    );
    for child in 0..CHILDREN as u64 {
        let rounds: Vec<u64> = events
            .iter()
            .filter(|e| e.data["child"] == child)
            .map(|e| e.data["round"].as_u64().unwrap())
            .collect();
        assert_eq!(
            rounds,
            (0..ROUNDS_EACH).collect::<Vec<_>>(),
            "child {child}"
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(parent.adapter().check_store()).unwrap();
}

#[test]
fn processes_creating_the_store_at_once_migrate_it_once() {
    const CHILDREN: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let mut children: Vec<Child> = (0..CHILDREN)
        .map(|i| spawn("opener", dir.path(), i, 0, Stdio::null()))
        .collect();
    std::fs::write(dir.path().join(GO_FILE), b"").unwrap();
    wait_all(&mut children);

    let parent = open(dir.path());
    for i in 0..CHILDREN {
        assert_eq!(
            parent
                .get_installation_state(&format!("child-{i}"))
                .unwrap(),
            json!(i)
        );
    }
}

#[test]
fn a_killed_writer_leaves_the_store_readable() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    let mut child = spawn("hammer", dir.path(), 0, 0, Stdio::piped());
    let stdout = child.stdout.take().unwrap();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains(READY) {
                let _ = ready_tx.send(());
            }
        }
    });
    let ready = ready_rx.recv_timeout(Duration::from_secs(60));
    if ready.is_ok() {
        // Let it get well into its loop, then kill it mid-transaction (SIGKILL on unix).
        std::thread::sleep(Duration::from_millis(300));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
    ready.expect("the writer never completed a round");

    let adapter = open(dir.path());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(adapter.adapter().check_store()).unwrap();
    let counter = adapter
        .get_installation_state("counter")
        .unwrap()
        .as_u64()
        .unwrap();
    let events = adapter.events_since(0, 1_000_000).unwrap().len() as u64;
    assert!(counter >= 1);
    // Each write is all or nothing: the kill can only fall between the two transactions.
    assert!(
        events == counter || events + 1 == counter,
        "counter {counter}, events {events}"
    );
    adapter
        .update_installation_state("counter", None, |v| {
            json!(v.and_then(|v| v.as_u64()).unwrap_or(0) + 1)
        })
        .unwrap();
    assert_eq!(
        adapter.get_installation_state("counter").unwrap(),
        json!(counter + 1)
    );
    // The same store still refuses to lose track of what is missing.
    let err = adapter.get_installation_state("absent").unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }));
}

#[test]
fn writers_killed_at_random_points_leave_every_write_whole() {
    const ROUNDS: usize = 5;
    const WRITERS: usize = 2;
    /// Latest kill after the first committed round of a round's first writer.
    const MAX_DELAY_MS: u64 = 300;
    let seed = std::env::var(KILL_SEED)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0xdead_5eed);
    eprintln!("kill points seeded with {seed} (set {KILL_SEED} to repeat another run)");
    let mut rng = fastrand::Rng::with_seed(seed);
    // No store yet: the first writers create and migrate it while they may be killed.
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut kills = 0u64;
    let mut last = 0u64;
    for round in 0..ROUNDS {
        let mut first = spawn("ledger", dir.path(), 0, 0, Stdio::piped());
        let stdout = first.stdout.take().unwrap();
        let mut children = vec![first];
        children.extend((1..WRITERS).map(|i| spawn("ledger", dir.path(), i, 0, Stdio::null())));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains(READY) {
                    let _ = ready_tx.send(());
                }
            }
        });
        let ready = ready_rx.recv_timeout(Duration::from_secs(60));
        // Kill every writer at its own random point after that, in random order: some in the
        // middle of a transaction, a late starter possibly while it opens the store.
        let mut delays: Vec<(u64, usize)> = (0..WRITERS)
            .map(|i| (rng.u64(0..=MAX_DELAY_MS), i))
            .collect();
        delays.sort_unstable();
        let started = Instant::now();
        for (delay, i) in delays {
            if ready.is_ok() {
                let at = Duration::from_millis(delay);
                std::thread::sleep(at.saturating_sub(started.elapsed()));
            }
            children[i].kill().unwrap();
        }
        for child in &mut children {
            child.wait().unwrap();
        }
        reader.join().unwrap();
        ready.unwrap_or_else(|_| panic!("round {round}: no writer completed a round"));
        kills += WRITERS as u64;

        let adapter = open(dir.path());
        runtime
            .block_on(adapter.adapter().check_store())
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        let n = assert_whole(
            &adapter.get_installation_state(LEDGER).unwrap(),
            &format!("round {round}: state"),
        );
        assert!(
            n > last,
            "round {round}: the ledger did not move past {last}"
        );
        let events = adapter.events_since(0, 1_000_000).unwrap();
        let mut published: Vec<u64> = events
            .iter()
            .map(|e| assert_whole(&e.data, &format!("round {round}: event {}", e.sequence)))
            .collect();
        published.sort_unstable();
        published.dedup();
        assert_eq!(
            published.len(),
            events.len(),
            "round {round}: an n published twice"
        );
        assert!(
            published.iter().all(|p| *p <= n),
            "round {round}: event past {n}"
        );
        // A killed writer can only have stopped between its transactions: at most one
        // state update per kill lacks its event.
        assert!(
            n - events.len() as u64 <= kills,
            "round {round}: {} events for {n} updates after {kills} kills",
            events.len()
        );
        eprintln!(
            "round {round}: ledger at {n}, {} events, {kills} writers killed",
            events.len()
        );
        let installation = adapter.get_installation("ns", LEDGER).unwrap();
        let stored = assert_whole(
            &Value::Object(installation.outputs.clone()),
            &format!("round {round}: installation"),
        );
        assert_eq!(installation.parameters["n"], json!(stored));
        assert!(stored <= n);

        // The store takes new writes.
        let next = adapter
            .update_installation_state(LEDGER, None, |current| {
                ledger_record(current.and_then(|v| v["n"].as_u64()).unwrap_or(0) + 1)
            })
            .unwrap();
        assert_eq!(assert_whole(&next.value, "new write"), n + 1);
        let event = adapter
            .publish("test.ledger", ledger_record(n + 1))
            .unwrap();
        assert_eq!(
            adapter.events_since(event.sequence - 1, 10).unwrap().len(),
            1
        );
        assert_eq!(
            assert_whole(&adapter.get_installation_state(LEDGER).unwrap(), "re-read"),
            n + 1
        );
        last = n + 1;
    }
}
