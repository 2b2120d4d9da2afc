//! The snapshot store: snapshot files in their own directory, outside sled, with their own
//! fsyncs, so that writing and syncing a large snapshot never holds up a log sync.
//!
//! `<dir>/snapshots/` holds one file per stored or in-progress snapshot
//! (`snapshot-<index>-<nonce>.bin`) and `manifest`, a checksummed record (the same format
//! as sled's records: CRC-32 ‖ postcard) naming the latest and the staged file with their
//! metadata, length and checksum. The manifest is replaced atomically: written to
//! `manifest.tmp`, fsynced, renamed over `manifest`, and the directory fsynced. A file the
//! manifest does not name is garbage (an abandoned writer, a replaced snapshot, a crash
//! before the manifest named it) and is removed at open.

use crate::record::{decode, encode};
use raft_core::{Index, SnapshotMeta};
use raft_storage::{SnapshotStore, StorageError};
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The snapshot directory's name inside a store directory.
pub const SNAPSHOT_DIR: &str = "snapshots";
/// The manifest's name inside the snapshot directory.
pub const MANIFEST_FILE: &str = "manifest";
const MANIFEST_TMP: &str = "manifest.tmp";
/// A writer fdatasyncs its file after every this many bytes. On ext4 (data=ordered) a log
/// fsync that commits the journal also waits for the writeback of other files' newly
/// allocated blocks, so a snapshot's single final fsync of hundreds of MiB could still hold
/// up a log sync; syncing as it goes bounds that to this much dirty data.
pub const WRITER_SYNC_EVERY: u64 = 8 << 20;

/// What the manifest says about one snapshot file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SnapshotFile {
    pub(crate) meta: SnapshotMeta,
    /// The file's name inside the snapshot directory.
    pub(crate) name: String,
    pub(crate) len: u64,
    pub(crate) crc: u32,
}

/// The manifest: the latest and the staged snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Manifest {
    latest: Option<SnapshotFile>,
    staged: Option<SnapshotFile>,
}

fn io_error(path: &Path, op: &'static str) -> impl FnOnce(io::Error) -> StorageError {
    let path = path.to_path_buf();
    move |source| StorageError::Io { path, op, source }
}

/// The snapshot store of a sled store directory: see the module documentation and
/// [`raft_storage::SnapshotStore`]. Every mutation is durable when it returns (its own
/// fsyncs, never sled's nor the log's), and the first failed write or fsync poisons the
/// handle until it is reopened.
#[derive(Debug)]
pub struct FileSnapshotStore {
    dir: PathBuf,
    manifest: Manifest,
    /// Distinguishes the files of writers begun in the same nanosecond.
    nonce: AtomicU64,
    poisoned: Option<String>,
}

impl FileSnapshotStore {
    /// Opens the snapshot store in `dir` (a store's `snapshots/` directory), creating it if
    /// needed. Refuses a manifest that fails its checksum or does not decode, and a named
    /// file that is missing or has the wrong length ([`StorageError::CorruptRecord`]);
    /// removes every file the manifest does not name.
    pub fn open(dir: impl AsRef<Path>) -> Result<FileSnapshotStore, StorageError> {
        let dir = dir.as_ref().to_path_buf();
        if !dir.exists() {
            fs::create_dir_all(&dir).map_err(io_error(&dir, "creating the snapshot directory"))?;
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent)?;
            }
        }
        let corrupt = |reason: String| StorageError::CorruptRecord {
            path: dir.join(MANIFEST_FILE),
            record: "snapshot manifest",
            reason,
        };
        let manifest_path = dir.join(MANIFEST_FILE);
        let manifest = match fs::read(&manifest_path) {
            Ok(bytes) => decode::<Manifest>(&bytes).map_err(|e| corrupt(e.to_string()))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Manifest::default(),
            Err(e) => return Err(io_error(&manifest_path, "reading the snapshot manifest")(e)),
        };
        for file in manifest.latest.iter().chain(&manifest.staged) {
            let path = dir.join(&file.name);
            let len = fs::metadata(&path).map_err(io_error(&path, "checking a snapshot file"))?.len();
            if len != file.len {
                return Err(StorageError::CorruptRecord {
                    path: path.clone(),
                    record: "snapshot data",
                    reason: format!("{len} bytes, {} recorded (snapshot index {})", file.len, file.meta.index),
                });
            }
        }
        let keep: Vec<&str> = manifest.latest.iter().chain(&manifest.staged).map(|f| f.name.as_str()).collect();
        let mut removed = false;
        for entry in fs::read_dir(&dir).map_err(io_error(&dir, "listing snapshot files"))? {
            let entry = entry.map_err(io_error(&dir, "listing snapshot files"))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name != MANIFEST_FILE && !keep.contains(&name.as_str()) {
                // Best effort: a file left behind is removed at the next open.
                removed |= fs::remove_file(entry.path()).is_ok();
            }
        }
        if removed {
            sync_dir(&dir)?;
        }
        Ok(FileSnapshotStore { dir, manifest, nonce: AtomicU64::new(0), poisoned: None })
    }

    fn check_poisoned(&self) -> Result<(), StorageError> {
        match &self.poisoned {
            None => Ok(()),
            Some(cause) => Err(StorageError::Poisoned { path: self.dir.clone(), cause: cause.clone() }),
        }
    }

    /// Runs a mutation: refused once poisoned, and its failure poisons the store.
    fn mutate<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, StorageError>) -> Result<T, StorageError> {
        self.check_poisoned()?;
        let result = f(self);
        if let Err(e) = &result {
            // Misuse rejected before anything was written leaves the store as it was.
            if !matches!(e, StorageError::NothingStaged { .. } | StorageError::StaleSnapshot { .. }) {
                tracing::error!(target: "raft::storage", path = %self.dir.display(), error = %e, "poisoning the snapshot store");
                self.poisoned = Some(e.to_string());
            }
        }
        result
    }

    /// Replaces the manifest durably, then removes the files it no longer names.
    fn write_manifest(&mut self, manifest: Manifest) -> Result<(), StorageError> {
        let tmp = self.dir.join(MANIFEST_TMP);
        let mut f = File::create(&tmp).map_err(io_error(&tmp, "creating the snapshot manifest"))?;
        f.write_all(&encode(&manifest)).map_err(io_error(&tmp, "writing the snapshot manifest"))?;
        f.sync_all().map_err(io_error(&tmp, "fsyncing the snapshot manifest"))?;
        drop(f);
        let path = self.dir.join(MANIFEST_FILE);
        fs::rename(&tmp, &path).map_err(io_error(&path, "renaming the snapshot manifest into place"))?;
        // Makes the rename durable, and with it the new snapshot file's directory entry.
        sync_dir(&self.dir)?;
        let old = std::mem::replace(&mut self.manifest, manifest);
        for file in old.latest.iter().chain(&old.staged) {
            let named = self.manifest.latest.iter().chain(&self.manifest.staged).any(|f| f.name == file.name);
            if !named {
                // Best effort, not synced: `open` removes any file the manifest does not
                // name. A reader that has it open keeps reading it.
                let _ = fs::remove_file(self.dir.join(&file.name));
            }
        }
        Ok(())
    }

    fn open_file(
        &self,
        file: Option<&SnapshotFile>,
    ) -> Result<Option<(SnapshotMeta, FileSnapshotReader)>, StorageError> {
        self.check_poisoned()?;
        let Some(file) = file else { return Ok(None) };
        Ok(Some((file.meta.clone(), FileSnapshotReader::open(&self.dir, file)?)))
    }
}

impl SnapshotStore for FileSnapshotStore {
    type Writer = FileSnapshotWriter;
    type Reader = FileSnapshotReader;

    fn path(&self) -> &Path {
        &self.dir
    }

    fn begin(&self, meta: &SnapshotMeta) -> Result<FileSnapshotWriter, StorageError> {
        self.check_poisoned()?;
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let nonce = self.nonce.fetch_add(1, Ordering::Relaxed);
        let name = format!("snapshot-{:020}-{nanos:x}-{nonce}.bin", meta.index);
        FileSnapshotWriter::create(&self.dir, name, meta)
    }

    fn finish(&mut self, writer: FileSnapshotWriter) -> Result<bool, StorageError> {
        self.mutate(|s| {
            if s.manifest.latest.as_ref().is_some_and(|l| l.meta.index > writer.meta.index) {
                // Dropping the writer deletes its file.
                return Ok(false);
            }
            let file = writer.complete()?;
            let manifest = Manifest { latest: Some(file), staged: s.manifest.staged.clone() };
            s.write_manifest(manifest)?;
            Ok(true)
        })
    }

    fn latest(&self) -> Option<SnapshotMeta> {
        self.manifest.latest.as_ref().map(|f| f.meta.clone())
    }

    fn open_latest(&self) -> Result<Option<(SnapshotMeta, FileSnapshotReader)>, StorageError> {
        self.open_file(self.manifest.latest.as_ref())
    }

    fn stage(&mut self, writer: FileSnapshotWriter) -> Result<(), StorageError> {
        self.mutate(|s| {
            let file = writer.complete()?;
            let manifest = Manifest { latest: s.manifest.latest.clone(), staged: Some(file) };
            s.write_manifest(manifest)
        })
    }

    fn staged(&self) -> Option<SnapshotMeta> {
        self.manifest.staged.as_ref().map(|f| f.meta.clone())
    }

    fn open_staged(&self) -> Result<Option<(SnapshotMeta, FileSnapshotReader)>, StorageError> {
        self.open_file(self.manifest.staged.as_ref())
    }

    fn promote(&mut self) -> Result<SnapshotMeta, StorageError> {
        self.mutate(|s| {
            let Some(staged) = s.manifest.staged.clone() else {
                return Err(StorageError::NothingStaged { path: s.dir.clone() });
            };
            if let Some(latest) = s.manifest.latest.as_ref().filter(|l| l.meta.index > staged.meta.index) {
                return Err(StorageError::StaleSnapshot {
                    path: s.dir.clone(),
                    index: staged.meta.index,
                    latest: latest.meta.index,
                });
            }
            let meta = staged.meta.clone();
            s.write_manifest(Manifest { latest: Some(staged), staged: None })?;
            Ok(meta)
        })
    }

    fn discard_staged(&mut self) -> Result<(), StorageError> {
        self.mutate(|s| {
            if s.manifest.staged.is_none() {
                return Ok(());
            }
            s.write_manifest(Manifest { latest: s.manifest.latest.clone(), staged: None })
        })
    }
}

/// Streams a snapshot into a new file of the snapshot directory, computing its checksum.
/// Hand it to `finish` or `stage`; dropping it instead deletes the file.
#[derive(Debug)]
pub struct FileSnapshotWriter {
    meta: SnapshotMeta,
    path: PathBuf,
    name: String,
    file: Option<BufWriter<File>>,
    hasher: crc32fast::Hasher,
    len: u64,
    /// The length covered by the last intermediate fdatasync.
    synced: u64,
    /// The first failed write or fsync: the writer cannot be finished or staged after it
    /// (a later fsync could succeed over pages the kernel dropped).
    failed: Option<String>,
}

impl FileSnapshotWriter {
    fn create(dir: &Path, name: String, meta: &SnapshotMeta) -> Result<Self, StorageError> {
        let path = dir.join(&name);
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_error(&path, "creating a snapshot file"))?;
        Ok(FileSnapshotWriter {
            meta: meta.clone(),
            path,
            name,
            file: Some(BufWriter::with_capacity(1 << 20, file)),
            hasher: crc32fast::Hasher::new(),
            len: 0,
            synced: 0,
            failed: None,
        })
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes and fsyncs the file; its directory entry becomes durable with the manifest.
    fn complete(mut self) -> Result<SnapshotFile, StorageError> {
        if let Some(cause) = &self.failed {
            return Err(StorageError::Io {
                path: self.path.clone(),
                op: "finishing a snapshot file whose earlier write or fsync failed",
                source: io::Error::other(cause.clone()),
            });
        }
        let file = self.file.take().expect("a writer is completed once");
        let file =
            file.into_inner().map_err(|e| e.into_error()).map_err(io_error(&self.path, "writing a snapshot file"))?;
        file.sync_all().map_err(io_error(&self.path, "fsyncing a snapshot file"))?;
        let hasher = std::mem::take(&mut self.hasher);
        Ok(SnapshotFile { meta: self.meta.clone(), name: self.name.clone(), len: self.len, crc: hasher.finalize() })
    }
}

impl Write for FileSnapshotWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let result = self.write_inner(buf);
        if let Err(e) = &result {
            self.failed.get_or_insert_with(|| e.to_string());
        }
        result
    }

    fn flush(&mut self) -> io::Result<()> {
        let result = self.file.as_mut().expect("a completed writer is consumed").flush();
        if let Err(e) = &result {
            self.failed.get_or_insert_with(|| e.to_string());
        }
        result
    }
}

impl FileSnapshotWriter {
    fn write_inner(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(cause) = &self.failed {
            return Err(io::Error::other(format!("an earlier write or fsync of this snapshot failed: {cause}")));
        }
        let file = self.file.as_mut().expect("a completed writer is consumed");
        let n = file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        if self.len - self.synced >= WRITER_SYNC_EVERY {
            file.flush()?;
            file.get_ref().sync_data()?;
            self.synced = self.len;
        }
        Ok(n)
    }
}

impl Drop for FileSnapshotWriter {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            // Abandoned: no manifest names the file; best effort (`open` removes it too).
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Streams a stored snapshot out, verifying its length and checksum: the read that reaches
/// the recorded length (or the end of the file) fails with `io::ErrorKind::InvalidData` if
/// either is wrong.
#[derive(Debug)]
pub struct FileSnapshotReader {
    path: PathBuf,
    index: Index,
    file: BufReader<File>,
    hasher: crc32fast::Hasher,
    read: u64,
    len: u64,
    crc: u32,
}

impl FileSnapshotReader {
    fn open(dir: &Path, record: &SnapshotFile) -> Result<Self, StorageError> {
        let path = dir.join(&record.name);
        let file = File::open(&path).map_err(io_error(&path, "opening a snapshot file"))?;
        Ok(FileSnapshotReader {
            path,
            index: record.meta.index,
            file: BufReader::with_capacity(1 << 20, file),
            hasher: crc32fast::Hasher::new(),
            read: 0,
            len: record.len,
            crc: record.crc,
        })
    }

    /// The snapshot file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Read for FileSnapshotReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        let bad = |what: String| {
            let e = StorageError::CorruptSnapshot { path: self.path.clone(), index: self.index, reason: what };
            io::Error::new(io::ErrorKind::InvalidData, e)
        };
        if self.read > self.len {
            return Err(bad(format!("longer than the recorded {} bytes", self.len)));
        }
        if n == 0 && !buf.is_empty() && self.read != self.len {
            return Err(bad(format!("{} bytes, {} recorded", self.read, self.len)));
        }
        // Checked as soon as the recorded length is reached, not only at end of file: a
        // reader that knows the length (`read_exact`) never asks past it.
        if self.read == self.len && (n > 0 || self.len == 0) {
            let computed = self.hasher.clone().finalize();
            if computed != self.crc {
                return Err(bad(format!("checksum mismatch: recorded {:#010x}, computed {computed:#010x}", self.crc)));
            }
        }
        Ok(n)
    }
}

/// fsyncs a directory, making the creation, renaming or removal of its entries durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|source| StorageError::Io {
        path: dir.to_path_buf(),
        op: "fsyncing a directory",
        source,
    })
}
