//! Output files that appear only complete.
//!
//! A regular file is written under a temporary name in its own folder (`.NAME.tmp-PID`, hidden and
//! obviously not an output) and renamed onto its name only once every byte is written and synced,
//! so a reader never finds a cut-off file under an output's name. The temporary file is removed on
//! any error; a killed process can leave one behind, never a file under the output's name, and
//! the next write of that output removes it once its process is gone.
//!
//! Special files (`/dev/null`, `/dev/stdout`, a FIFO, anything under `/dev/` or `/proc/`) cannot
//! be renamed onto: they are written directly, and never removed.

use anyhow::{Context, Result};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

fn write_failed(path: &Path) -> String {
    format!("[WriteFailed] cannot write {}", path.display())
}

/// Whether `path` names something other than a regular file we may replace: a device, a FIFO, a
/// socket, or anything under `/dev/` or `/proc/`, directly or through a link (`/dev/stdout` can
/// resolve to a regular file the shell opened for us: it must be written through, never
/// replaced).
pub fn is_special(path: &Path) -> bool {
    let under_dev = |p: &Path| p.starts_with("/dev") || p.starts_with("/proc");
    if std::path::absolute(path).is_ok_and(|p| under_dev(&p))
        || std::fs::canonicalize(path).is_ok_and(|p| under_dev(&p))
    {
        return true;
    }
    std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir())
}

/// The temporary file `path` is written to before it is renamed onto `path`, or `None` when
/// `path` is special and written directly. A symbolic link at `path` is replaced by the file.
fn temporary_for(path: &Path) -> Result<Option<PathBuf>> {
    if is_special(path) {
        return Ok(None);
    }
    let name = path
        .file_name()
        .with_context(|| format!("{}: it names a folder, not a file", write_failed(path)))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    Ok(Some(path.with_file_name(tmp_name)))
}

/// Removes the temporary files of `path` that killed processes left (`.NAME.tmp-PID` whose
/// process is gone): where processes can be looked up (`/proc`), never a live writer's file.
/// Best effort: a leftover that cannot be removed stays, harmless.
fn remove_dead_temporaries(path: &Path) {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return;
    }
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return;
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let prefix = format!(".{name}.tmp-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(pid) = file.to_str().and_then(|f| f.strip_prefix(&prefix)) else {
            continue;
        };
        let alive = pid
            .parse::<u32>()
            .map(|p| p == std::process::id() || proc.join(pid).exists());
        if alive == Ok(false) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// An output file being written: buffered, checked at every step, and closed only by
/// [`Output::finish`]. Dropped unfinished (an error), its temporary file is removed.
pub struct Output {
    path: PathBuf,
    out: BufWriter<File>,
    pending: Pending,
}

impl Output {
    /// Starts writing `path` (creating its folder): a temporary file beside it, or `path` itself
    /// when it is special.
    ///
    /// # Errors
    /// `[WriteFailed]` naming the folder or file.
    pub fn create(path: &Path) -> Result<Output> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !is_special(path)
        {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("[WriteFailed] cannot create folder {}", dir.display()))?;
        }
        let tmp = temporary_for(path)?;
        if tmp.is_some() {
            remove_dead_temporaries(path);
        }
        // (A temporary file left by a killed process with the same id is truncated.)
        let file =
            File::create(tmp.as_deref().unwrap_or(path)).with_context(|| write_failed(path))?;
        let pending = Pending {
            path: path.to_path_buf(),
            tmp,
        };
        Ok(Output {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(1 << 20, file),
            pending,
        })
    }

    /// Appends `bytes`.
    ///
    /// # Errors
    /// `[WriteFailed]` naming the file (a full disk, a failing device).
    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.out
            .write_all(bytes)
            .with_context(|| write_failed(&self.path))
    }

    /// Flushes the file and asks the file system to commit it; the file keeps its temporary name
    /// until [`Finished::commit`].
    ///
    /// # Errors
    /// `[WriteFailed]` naming the file.
    pub fn finish(self) -> Result<Finished> {
        let context = || write_failed(&self.path);
        let Output { out, pending, .. } = self;
        let file = out
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(context)?;
        match file.sync_all() {
            // Devices and pipes (/dev/null) cannot be synced; what was written reached them.
            Err(e) if e.raw_os_error() == Some(22) => {}
            r => r.with_context(context)?,
        }
        Ok(Finished(pending))
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.out.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// An output's name and its temporary file, removed if dropped uncommitted.
struct Pending {
    path: PathBuf,
    /// `None` for a special file written directly.
    tmp: Option<PathBuf>,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// A complete output file still under its temporary name.
pub struct Finished(Pending);

impl Finished {
    /// Renames the file onto its name (replacing an earlier file there) and syncs the folder.
    ///
    /// # Errors
    /// `[WriteFailed]` naming the file; the temporary file is removed.
    pub fn commit(mut self) -> Result<()> {
        let Some(tmp) = self.0.tmp.take() else {
            return Ok(());
        };
        let path = &self.0.path;
        if let Err(e) = std::fs::rename(&tmp, path) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e).with_context(|| write_failed(path));
        }
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        // Makes the rename itself durable; file systems that cannot sync a folder say EINVAL.
        match File::open(dir).and_then(|d| d.sync_all()) {
            Err(e) if e.raw_os_error() == Some(22) => Ok(()),
            r => r.with_context(|| write_failed(path)),
        }
    }
}

/// Commits files in order (see [`Finished::commit`]); the first failure stops and removes the
/// temporary files not yet committed.
///
/// # Errors
/// `[WriteFailed]` naming the file.
pub fn commit_all(files: Vec<Finished>) -> Result<()> {
    files.into_iter().try_for_each(Finished::commit)
}

/// Removes `path` if it is a regular file (an earlier run's output); a special file, a missing
/// file and a folder are left alone.
///
/// # Errors
/// `[WriteFailed]` naming the file.
pub fn remove_stale(path: &Path) -> Result<()> {
    if is_special(path) {
        return Ok(());
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if !m.is_dir() => std::fs::remove_file(path)
            .with_context(|| format!("[WriteFailed] cannot remove {}", path.display())),
        _ => Ok(()),
    }
}

/// Refuses two outputs of one command that name the same file (`--impressions OUT/summary.json`):
/// each would be renamed onto the other. `outputs` are (what, path); special files (`/dev/null`)
/// may be given more than once.
///
/// # Errors
/// `[InvalidArgument]` naming both.
pub fn distinct(outputs: &[(&str, &Path)]) -> Result<()> {
    let norm = |p: &Path| {
        let mut out = PathBuf::new();
        for c in std::path::absolute(p)
            .unwrap_or_else(|_| p.to_path_buf())
            .components()
        {
            match c {
                std::path::Component::CurDir => {}
                std::path::Component::ParentDir => {
                    out.pop();
                }
                other => out.push(other),
            }
        }
        out
    };
    for (i, (what, path)) in outputs.iter().enumerate() {
        if is_special(path) {
            continue;
        }
        if let Some((other, _)) = outputs[..i].iter().find(|(_, p)| norm(p) == norm(path)) {
            anyhow::bail!(
                "[InvalidArgument] {what} and {other} are the same file, {}: give each output its own file",
                path.display()
            );
        }
    }
    Ok(())
}
