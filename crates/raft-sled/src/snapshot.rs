//! Snapshot data as files: streamed in through a checksumming writer, made durable with
//! fsync + rename + directory fsync, streamed out through a checksum-verifying reader.

use raft_core::SnapshotMeta;
use raft_storage::StorageError;
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// What the `snapshot` tree's `data` record says about the latest snapshot file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SnapshotFile {
    pub(crate) meta: SnapshotMeta,
    /// The file's name inside the snapshot directory.
    pub(crate) name: String,
    pub(crate) len: u64,
    pub(crate) crc: u32,
}

/// Streams a snapshot into a temporary file of the store's snapshot directory. Finish it
/// with `Storage::finish_snapshot`; dropping it instead deletes the temporary file.
#[derive(Debug)]
pub struct SledSnapshotWriter {
    pub(crate) meta: SnapshotMeta,
    pub(crate) tmp_path: PathBuf,
    pub(crate) file: Option<BufWriter<File>>,
    pub(crate) hasher: crc32fast::Hasher,
    pub(crate) len: u64,
}

impl SledSnapshotWriter {
    pub(crate) fn create(dir: &Path, meta: &SnapshotMeta) -> Result<Self, StorageError> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let tmp_path = dir.join(format!("incoming-{:020}-{nanos:x}.tmp", meta.index));
        let file = File::options().write(true).create_new(true).open(&tmp_path).map_err(|source| StorageError::Io {
            path: tmp_path.clone(),
            op: "creating a snapshot file",
            source,
        })?;
        Ok(SledSnapshotWriter {
            meta: meta.clone(),
            tmp_path,
            file: Some(BufWriter::with_capacity(1 << 20, file)),
            hasher: crc32fast::Hasher::new(),
            len: 0,
        })
    }

    /// Flushes, fsyncs and renames the file to its final name in `dir`, then fsyncs `dir`.
    pub(crate) fn persist(mut self, dir: &Path) -> Result<SnapshotFile, StorageError> {
        let io = |path: &Path, op: &'static str| {
            let path = path.to_path_buf();
            move |source| StorageError::Io { path, op, source }
        };
        let file = self.file.take().expect("a writer is finished once");
        let file =
            file.into_inner().map_err(|e| e.into_error()).map_err(io(&self.tmp_path, "writing a snapshot file"))?;
        file.sync_all().map_err(io(&self.tmp_path, "fsyncing a snapshot file"))?;
        drop(file);
        let name = self
            .tmp_path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("the temporary name is ASCII")
            .replace("incoming-", "snapshot-")
            .replace(".tmp", ".bin");
        let path = dir.join(&name);
        fs::rename(&self.tmp_path, &path).map_err(io(&path, "renaming a snapshot file into place"))?;
        sync_dir(dir)?;
        let hasher = std::mem::take(&mut self.hasher);
        Ok(SnapshotFile { meta: self.meta.clone(), name, len: self.len, crc: hasher.finalize() })
    }
}

impl Write for SledSnapshotWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.as_mut().expect("a finished writer is consumed").write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().expect("a finished writer is consumed").flush()
    }
}

impl Drop for SledSnapshotWriter {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            // Abandoned: the file is not referenced by any record; best effort.
            let _ = fs::remove_file(&self.tmp_path);
        }
    }
}

/// Streams a stored snapshot out, verifying its length and checksum: the read that reaches
/// the recorded length (or the end of the file) fails with `io::ErrorKind::InvalidData` if
/// either is wrong.
#[derive(Debug)]
pub struct SledSnapshotReader {
    path: PathBuf,
    index: raft_core::Index,
    file: BufReader<File>,
    hasher: crc32fast::Hasher,
    read: u64,
    len: u64,
    crc: u32,
}

impl SledSnapshotReader {
    pub(crate) fn open(dir: &Path, record: &SnapshotFile) -> Result<Self, StorageError> {
        let path = dir.join(&record.name);
        let file = File::open(&path).map_err(|source| StorageError::Io {
            path: path.clone(),
            op: "opening a snapshot file",
            source,
        })?;
        Ok(SledSnapshotReader {
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

impl Read for SledSnapshotReader {
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
