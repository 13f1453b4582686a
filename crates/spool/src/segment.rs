//! Segment files: naming, creation (file and directory fsynced), and reading.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// First bytes of every segment: format name and version.
pub const MAGIC: &[u8; 8] = b"TSBSPL01";

/// The file name of segment `number`.
pub fn path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:016x}.seg"))
}

/// Parses a segment file name back to its number.
pub fn number_of(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(".seg")?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// Segment numbers present in `dir`, ascending.
pub fn list(dir: &Path) -> std::io::Result<Vec<u64>> {
    let mut numbers = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(number) = entry.file_name().to_str().and_then(number_of) {
            numbers.push(number);
        }
    }
    numbers.sort_unstable();
    Ok(numbers)
}

/// Makes directory entry changes (create, unlink) durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates segment `number` with its header, fsyncs it and the directory, and returns it
/// opened for appending. Fails if the file exists: segment numbers are never reused.
pub fn create(dir: &Path, number: u64) -> std::io::Result<File> {
    let path = path(dir, number);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    let result = file
        .write_all(MAGIC)
        .and_then(|()| file.sync_all())
        .and_then(|()| sync_dir(dir));
    if let Err(err) = result {
        // Leave no half-made segment behind; recovery would also drop it, but ENOSPC
        // handling wants the space back now.
        let _ = std::fs::remove_file(&path);
        return Err(err);
    }
    Ok(file)
}

/// Reads `len` bytes at `offset` of an open segment.
pub fn read_at(file: &File, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, offset)?;
    Ok(buf)
}
