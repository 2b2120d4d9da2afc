//! Disk errors through a real filesystem (issue 10, finding 3, "fsyncgate"): the first
//! failed write or fsync poisons the store, and every later call fails until it is
//! reopened. ENOSPC comes from a tiny tmpfs, EIO from ext4 on a loop device whose backing
//! file lives on a tmpfs that fills up. Both need root, `mount` and `losetup`, and
//! `mkfs.ext4` (Debian packages `mount`, `e2fsprogs`); without them the tests print why
//! they skip and pass.

mod common;

use bytes::Bytes;
use raft_core::{Entry, Index, Payload};
use raft_sled::{SledConfig, SledLogStore};
use raft_storage::{LogStore, StorageError};
use std::path::{Path, PathBuf};
use std::process::Command;

/// sled 0.34 can wait forever for a write that failed; the store gives up after this.
fn config() -> SledConfig {
    SledConfig { flush_timeout: std::time::Duration::from_secs(5), ..SledConfig::default() }
}

fn entry(index: Index, len: usize) -> Entry {
    Entry { term: 1, index, payload: Payload::Command(Bytes::from(vec![(index % 251) as u8; len])) }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

fn run(cmd: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(cmd).args(args).output().map_err(|e| format!("{cmd}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!("{cmd} {args:?}: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Mounts and loop devices created by a test, undone in reverse order when dropped.
#[derive(Default)]
struct Mounts {
    mounts: Vec<PathBuf>,
    loops: Vec<String>,
}

impl Drop for Mounts {
    fn drop(&mut self) {
        // The first mount is the tmpfs holding a loop device's backing file: unmount the
        // filesystem on the loop device and detach the loop device before it.
        while let Some(m) = self.mounts.pop() {
            let _ = run("umount", &["-l", m.to_str().unwrap_or_default()]);
            if self.mounts.len() == 1 {
                for l in self.loops.drain(..) {
                    let _ = run("losetup", &["-d", &l]);
                }
            }
        }
        for l in self.loops.drain(..) {
            let _ = run("losetup", &["-d", &l]);
        }
    }
}

/// Says why a test skips, on stderr itself (not through `eprintln!`, which the test
/// harness captures and shows only for failures).
fn skip(test: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr().lock(),
        "SKIPPED {test}: {why} (needs root, mount, losetup and mkfs.ext4: Debian packages mount and e2fsprogs)"
    );
}

fn tmpfs(mounts: &mut Mounts, at: &Path, size: &str) -> Result<(), String> {
    std::fs::create_dir_all(at).map_err(|e| e.to_string())?;
    run("mount", &["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", at.to_str().unwrap()])?;
    mounts.mounts.push(at.to_path_buf());
    Ok(())
}

/// Appends batches and syncs until a call fails; returns the error and the last index a
/// sync reported durable.
fn fill_until_error(store: &mut SledLogStore, len: usize) -> (StorageError, Index) {
    let mut synced = store.last_index();
    for _ in 0..100_000 {
        let next = store.last_index() + 1;
        let batch: Vec<Entry> = (next..next + 4).map(|i| entry(i, len)).collect();
        if let Err(e) = store.append(&batch) {
            return (e, synced);
        }
        match store.sync() {
            Err(e) => return (e, synced),
            Ok(()) => synced = store.last_index(),
        }
    }
    panic!("the filesystem never filled up");
}

/// After the first failure, every call fails.
fn assert_poisoned(store: &mut SledLogStore, first: &StorageError) {
    let next = store.last_index() + 1;
    let again = store.sync();
    assert!(again.is_err(), "sync() returned Ok after {first}");
    assert!(store.sync().is_err(), "a second sync() returned Ok after {first}");
    assert!(store.append(&[entry(next, 10)]).is_err(), "append() returned Ok after {first}");
    assert!(store.sync().is_err(), "sync() after an append returned Ok after {first}");
    let msg = again.unwrap_err().to_string();
    assert!(msg.contains(&store.path().display().to_string()), "the error does not name the store: {msg}");
}

/// Runs test `child` of this binary in a new process (sled 0.34 holds a process-wide
/// lock while a flush is stuck after a failed write, so a poisoned store can block every
/// other sled database of its process), with `env` set.
fn in_child(child: &str, env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(std::env::current_exe().expect("the test binary"));
    cmd.args(["--exact", child, "--ignored", "--nocapture", "--test-threads", "1"])
        .env("RAFT_SLED_DISK_ERROR_CHILD", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    // A store that hangs instead of failing is a failure too: the child gets 120 s.
    let dir = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    cmd.stdout(std::fs::File::create(&out_path).unwrap()).stderr(std::fs::File::create(&err_path).unwrap());
    let mut proc = cmd.spawn().expect("running the child test");
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = proc.try_wait().expect("waiting for the child test") {
            break Some(status);
        }
        if started.elapsed() > std::time::Duration::from_secs(120) {
            let _ = proc.kill();
            let _ = proc.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    eprint!("{stderr}");
    let Some(status) = status else { panic!("the child test {child} hung for 120 s:\n{stdout}\n{stderr}") };
    assert!(status.success(), "the child test {child} failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "the child test {child} did not run:\n{stdout}");
    format!("{stdout}{stderr}")
}

fn is_child() -> bool {
    std::env::var_os("RAFT_SLED_DISK_ERROR_CHILD").is_some()
}

#[test]
fn enospc_poisons_the_store_until_it_is_reopened() {
    const TEST: &str = "enospc_poisons_the_store_until_it_is_reopened";
    if !is_root() {
        return skip(TEST, "not root");
    }
    let elsewhere = tempfile::tempdir().unwrap();
    let copy = elsewhere.path().join("store");
    let out = in_child("enospc_child", &[("RAFT_SLED_COPY_TO", copy.to_str().unwrap())]);
    if out.contains("SKIPPED") || !copy.exists() {
        return skip(TEST, "the child skipped");
    }
    let synced: Index = std::fs::read_to_string(elsewhere.path().join("synced")).unwrap().trim().parse().unwrap();
    // What a restarted process finds: every synced entry.
    let store = SledLogStore::open(&copy, &config()).expect("reopening a copy on a disk with room");
    assert!(store.last_index() >= synced, "synced entries up to {synced} lost: last index {}", store.last_index());
    assert_eq!(store.entries(synced..synced + 1).unwrap()[0], entry(synced, 20_000));
}

#[test]
#[ignore = "run by enospc_poisons_the_store_until_it_is_reopened in a child process"]
fn enospc_child() {
    const TEST: &str = "enospc_child";
    assert!(is_child(), "run through enospc_poisons_the_store_until_it_is_reopened");
    let base = tempfile::tempdir().unwrap();
    let mut mounts = Mounts::default();
    if let Err(e) = tmpfs(&mut mounts, base.path(), "24m") {
        return skip(TEST, &e);
    }
    let dir = base.path().join("store");
    let mut store = SledLogStore::open(&dir, &config()).expect("opening on the tmpfs");
    let (first, synced) = fill_until_error(&mut store, 20_000);
    eprintln!("first error after index {synced} was synced: {first}");
    assert_poisoned(&mut store, &first);
    // sled keeps its lock until its stuck flush ends, which it may never do: the parent
    // opens a copy of the directory as it is now, as a restarted process would find it.
    drop(store);
    let copy = PathBuf::from(std::env::var("RAFT_SLED_COPY_TO").expect("the copy's path"));
    common::copy_dir(&dir, &copy);
    std::fs::write(copy.parent().unwrap().join("synced"), synced.to_string()).unwrap();
}

#[test]
fn eio_from_a_failing_device_poisons_the_store() {
    if !is_root() {
        return skip("eio_from_a_failing_device_poisons_the_store", "not root");
    }
    in_child("eio_child", &[]);
}

#[test]
#[ignore = "run by eio_from_a_failing_device_poisons_the_store in a child process"]
fn eio_child() {
    const TEST: &str = "eio_from_a_failing_device_poisons_the_store";
    assert!(is_child(), "run through eio_from_a_failing_device_poisons_the_store");
    for tool in ["losetup", "mkfs.ext4", "mount", "umount"] {
        if run("sh", &["-c", &format!("command -v {tool}")]).is_err() {
            return skip(TEST, &format!("{tool} not found"));
        }
    }
    let base = tempfile::tempdir().unwrap();
    let (back, fs) = (base.path().join("back"), base.path().join("fs"));
    let mut mounts = Mounts::default();
    // The backing file claims 256 MiB but its tmpfs holds 24: once ext4 writes past
    // that, the loop device fails the writes with EIO.
    if let Err(e) = tmpfs(&mut mounts, &back, "24m") {
        return skip(TEST, &e);
    }
    let image = back.join("disk.img");
    std::fs::File::create(&image).unwrap().set_len(256 << 20).unwrap();
    let device = match run("losetup", &["-f", "--show", image.to_str().unwrap()]) {
        Ok(d) => d,
        Err(e) => return skip(TEST, &e),
    };
    mounts.loops.push(device.clone());
    if let Err(e) = run("mkfs.ext4", &["-q", "-F", "-E", "lazy_itable_init=1,lazy_journal_init=1", &device]) {
        return skip(TEST, &e);
    }
    std::fs::create_dir_all(&fs).unwrap();
    if let Err(e) = run("mount", &["-o", "errors=continue", &device, fs.to_str().unwrap()]) {
        return skip(TEST, &e);
    }
    mounts.mounts.push(fs.clone());
    let dir = fs.join("store");
    let mut store = SledLogStore::open(&dir, &config()).expect("opening on the loop device");
    let (first, synced) = fill_until_error(&mut store, 100_000);
    eprintln!("first error after index {synced} was synced: {first}");
    assert_poisoned(&mut store, &first);
    drop(store);
}

#[test]
fn enospc_in_the_snapshot_store_poisons_it_alone() {
    use raft_storage::SnapshotStore;
    use std::io::Write;
    const TEST: &str = "enospc_in_the_snapshot_store_poisons_it_alone";
    if !is_root() {
        return skip(TEST, "not root");
    }
    let base = tempfile::tempdir().unwrap();
    let mut mounts = Mounts::default();
    if let Err(e) = tmpfs(&mut mounts, base.path(), "8m") {
        return skip(TEST, &e);
    }
    // The log on a disk with room, the snapshots on the full tmpfs.
    let log_dir = tempfile::tempdir().unwrap();
    let mut log = SledLogStore::open(log_dir.path(), &config()).unwrap();
    let mut snapshots = raft_sled::FileSnapshotStore::open(base.path().join("snapshots")).unwrap();
    let meta = raft_core::SnapshotMeta { index: 1, term: 1, membership: Default::default() };
    let mut w = snapshots.begin(&meta).unwrap();
    let chunk = vec![7u8; 1 << 20];
    let write_error = (0..16).find_map(|_| w.write_all(&chunk).err());
    let finish = snapshots.finish(w);
    assert!(
        write_error.is_some() || finish.is_err(),
        "16 MiB went into an 8 MiB tmpfs and neither a write nor finish failed"
    );
    let finish = finish.expect_err("finish returned Ok for a snapshot that did not fit");
    eprintln!("write error: {write_error:?}; finish: {finish}");
    assert_eq!(snapshots.latest(), None, "a failed snapshot became the latest");
    let again = snapshots.begin(&meta).expect_err("the snapshot store must be poisoned");
    assert!(matches!(again, StorageError::Poisoned { .. }), "{again:?}");
    // The log store is another store: it keeps syncing.
    log.append(&[entry(1, 100)]).unwrap();
    log.sync().expect("the log store is not poisoned by the snapshot store");
    // The store reopened on the same (still full) directory holds no snapshot.
    drop(snapshots);
    let reopened = raft_sled::FileSnapshotStore::open(base.path().join("snapshots")).unwrap();
    assert_eq!(reopened.latest(), None);
}
