//! Files on this machine's side of a chat: reading one to send, guessing its MIME type,
//! keeping received files in memory (bounded) until the person saves one, and saving
//! without overwriting anything.
//!
//! Nothing received touches the disk unless the person asks with `/save N PATH`. The
//! name a sender gave is only a suggestion: it is cleaned of path separators, and a save
//! never replaces an existing file.

use bytes::Bytes;
use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use streamchat_client::session::FileInfo;

/// Received files kept in memory, at most.
pub const MAX_KEPT_FILES: usize = 64;
/// Bytes of received files kept in memory, at most (1 GiB).
pub const MAX_KEPT_BYTES: u64 = 1 << 30;

/// A received, verified file in memory.
#[derive(Debug, Clone)]
pub struct KeptFile {
    /// Its number in this chat, from 1 (`/save N PATH`).
    pub number: usize,
    /// What the announcement said.
    pub info: FileInfo,
    /// The content.
    pub data: Bytes,
}

/// The received files, numbered in arrival order; the oldest are dropped first when
/// the bounds are reached.
#[derive(Debug, Default)]
pub struct KeptFiles {
    files: VecDeque<KeptFile>,
    next_number: usize,
    bytes: u64,
}

impl KeptFiles {
    /// Keeps a file; returns its number and the numbers dropped to make room.
    pub fn keep(&mut self, info: FileInfo, data: Bytes) -> (usize, Vec<usize>) {
        self.next_number += 1;
        let number = self.next_number;
        let mut dropped = Vec::new();
        let size = data.len() as u64;
        while !self.files.is_empty()
            && (self.files.len() >= MAX_KEPT_FILES || self.bytes + size > MAX_KEPT_BYTES)
        {
            if let Some(old) = self.files.pop_front() {
                self.bytes -= old.data.len() as u64;
                dropped.push(old.number);
            }
        }
        self.bytes += size;
        self.files.push_back(KeptFile { number, info, data });
        (number, dropped)
    }

    /// The file numbered `number`, if still kept.
    pub fn get(&self, number: usize) -> Option<&KeptFile> {
        self.files.iter().find(|f| f.number == number)
    }
}

/// Why a file could not be read or saved.
#[derive(Debug, thiserror::Error)]
pub enum LocalFileError {
    /// I/O failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// Larger than the server accepts.
    #[error("{path} is {size} bytes; this server accepts files up to {max} bytes")]
    TooLarge {
        /// The path.
        path: String,
        /// Its size.
        size: u64,
        /// The server's limit.
        max: u64,
    },
    /// Not a regular file.
    #[error("{0} is not a regular file")]
    NotAFile(String),
    /// No such received file.
    #[error("there is no received file number {0} (it may have been dropped to save memory)")]
    NoSuchFile(usize),
}

/// Expands a leading `~/` to `$HOME/`.
pub fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// Reads a file to send: checks it is a regular file within `max_bytes` first.
pub async fn read_for_sending(
    path: &str,
    max_bytes: u64,
) -> Result<(String, String, Bytes), LocalFileError> {
    let full = expand_home(path);
    let io = |source| LocalFileError::Io {
        path: path.to_owned(),
        source,
    };
    let meta = tokio::fs::metadata(&full).await.map_err(io)?;
    if !meta.is_file() {
        return Err(LocalFileError::NotAFile(path.to_owned()));
    }
    if meta.len() > max_bytes {
        return Err(LocalFileError::TooLarge {
            path: path.to_owned(),
            size: meta.len(),
            max: max_bytes,
        });
    }
    let data = tokio::fs::read(&full).await.map_err(io)?;
    let name = full
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_owned());
    let mime = mime_for(&name).to_owned();
    Ok((name, mime, Bytes::from(data)))
}

/// Saves a kept file at `path` (into it, when it is a directory), never overwriting.
/// Returns the path written.
pub fn save(file: &KeptFile, path: &str) -> Result<PathBuf, LocalFileError> {
    let mut target = expand_home(path);
    if target.is_dir() {
        target = target.join(&file.info.name);
    }
    let shown = target.display().to_string();
    let io = |source| LocalFileError::Io {
        path: shown.clone(),
        source,
    };
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&target)
        .map_err(io)?;
    out.write_all(&file.data).map_err(io)?;
    out.flush().map_err(io)?;
    Ok(target)
}

/// The MIME type for a file name's extension; `application/octet-stream` when unknown.
pub fn mime_for(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "bmp" => "image/bmp",
        "mp4" | "m4v" => "video/mp4",
        "webm" => "video/webm",
        "mov" => "video/quicktime",
        "ogv" => "video/ogg",
        "mp3" => "audio/mpeg",
        "ogg" | "oga" => "audio/ogg",
        "wav" => "audio/wav",
        "pdf" => "application/pdf",
        "txt" | "log" => "text/plain",
        "md" => "text/markdown",
        "csv" => "text/csv",
        "json" => "application/json",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "tar" => "application/x-tar",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(name: &str, data: &'static [u8]) -> KeptFile {
        KeptFile {
            number: 1,
            info: FileInfo {
                id: "AAAAAAAAAAAAAAAA".into(),
                name: name.into(),
                mime: "text/plain".into(),
                size: data.len() as u64,
                chunks: 1,
                sha256: String::new(),
            },
            data: Bytes::from_static(data),
        }
    }

    #[test]
    fn saves_into_directories_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let file = kept("note.txt", b"hello");
        let written = save(&file, dir.path().to_str().unwrap()).unwrap();
        assert_eq!(written, dir.path().join("note.txt"));
        assert_eq!(std::fs::read(&written).unwrap(), b"hello");
        assert!(save(&file, written.to_str().unwrap()).is_err());
        let other = dir.path().join("copy.txt");
        save(&file, other.to_str().unwrap()).unwrap();
    }

    #[test]
    fn keeps_a_bounded_number_of_files() {
        let mut files = KeptFiles::default();
        let f = kept("a", b"x");
        for _ in 0..MAX_KEPT_FILES {
            files.keep(f.info.clone(), f.data.clone());
        }
        let (number, dropped) = files.keep(f.info.clone(), f.data.clone());
        assert_eq!(number, MAX_KEPT_FILES + 1);
        assert_eq!(dropped, vec![1]);
        assert!(files.get(1).is_none());
        assert!(files.get(2).is_some());
    }

    #[test]
    fn mime_types() {
        assert_eq!(mime_for("a.PNG"), "image/png");
        assert_eq!(mime_for("clip.webm"), "video/webm");
        assert_eq!(mime_for("noext"), "application/octet-stream");
    }
}
