//! The pcapng file series: `DIR/vni-<VNI>-<n>.pcapng`, one series per VNI, rotated by size
//! and/or age, with retention limits over the whole directory.

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::sink::{Frame, FrameSink, PcapngSection};

/// How the file series is rotated and how much of it is kept.
#[derive(Clone, Debug)]
pub struct FilesConfig {
    /// Directory for the files (created if missing).
    pub dir: PathBuf,
    /// Start a new file once one reaches this many bytes.
    pub rotate_bytes: u64,
    /// Start a new file (at the next frame) once one is this old.
    pub rotate_every: Option<Duration>,
    /// Keep at most this many files, counting the ones being written; the oldest finished
    /// files are removed first. Files being written are never removed.
    pub keep_files: Option<usize>,
    /// Keep at most this many bytes of files, counting the ones being written; the oldest
    /// finished files are removed first.
    pub max_total_bytes: Option<u64>,
}

impl FilesConfig {
    /// 64 MiB files, no time rotation, everything kept.
    pub fn new(dir: PathBuf) -> FilesConfig {
        FilesConfig {
            dir,
            rotate_bytes: 64 << 20,
            rotate_every: None,
            keep_files: None,
            max_total_bytes: None,
        }
    }
}

struct Open {
    index: u32,
    opened: Instant,
    section: PcapngSection<BufWriter<File>>,
}

/// Writes the file series of every VNI. Retention counts the files this collector wrote in
/// this run (a previous run's files are left alone), over all VNIs together: the directory's
/// budget, oldest finished file first.
pub struct PcapngFiles {
    config: FilesConfig,
    open: BTreeMap<u32, Open>,
    /// Finished files, oldest first, with their sizes.
    finished: VecDeque<(PathBuf, u64)>,
    finished_bytes: u64,
    removed: u64,
}

fn path(dir: &Path, vni: u32, index: u32) -> PathBuf {
    dir.join(format!("vni-{vni}-{index}.pcapng"))
}

impl PcapngFiles {
    /// Creates the directory; files appear with their VNI's first frame.
    pub fn create(config: FilesConfig) -> std::io::Result<PcapngFiles> {
        std::fs::create_dir_all(&config.dir)?;
        Ok(PcapngFiles {
            config,
            open: BTreeMap::new(),
            finished: VecDeque::new(),
            finished_bytes: 0,
            removed: 0,
        })
    }

    /// The directory written to.
    pub fn dir(&self) -> &Path {
        &self.config.dir
    }

    /// Files removed by the retention limits so far.
    pub fn removed(&self) -> u64 {
        self.removed
    }

    fn open(&self, vni: u32, index: u32) -> std::io::Result<Open> {
        let file =
            BufWriter::with_capacity(256 << 10, File::create(path(&self.config.dir, vni, index))?);
        let mut section = PcapngSection::new(file)?;
        // Readers can open the file as soon as it exists.
        section.get_mut().flush()?;
        Ok(Open {
            index,
            opened: Instant::now(),
            section,
        })
    }

    fn due(&self, o: &Open) -> bool {
        o.section.bytes() >= self.config.rotate_bytes
            || self
                .config
                .rotate_every
                .is_some_and(|every| o.opened.elapsed() >= every)
    }

    /// Removes the oldest finished files while a limit is exceeded.
    fn enforce_retention(&mut self) {
        loop {
            let files = self.finished.len() + self.open.len();
            let bytes: u64 =
                self.finished_bytes + self.open.values().map(|o| o.section.bytes()).sum::<u64>();
            let over = self.config.keep_files.is_some_and(|n| files > n)
                || self.config.max_total_bytes.is_some_and(|n| bytes > n);
            if !over {
                return;
            }
            let Some((oldest, size)) = self.finished.pop_front() else {
                return;
            };
            self.finished_bytes -= size;
            match std::fs::remove_file(&oldest) {
                Ok(()) => {
                    self.removed += 1;
                    tracing::debug!(file = %oldest.display(), "removed by retention");
                }
                Err(e) => {
                    tracing::warn!(file = %oldest.display(), error = %e, "cannot remove old capture file")
                }
            }
        }
    }
}

impl FrameSink for PcapngFiles {
    fn write(&mut self, frame: &Frame<'_>) -> std::io::Result<()> {
        let rotate = match self.open.get(&frame.vni) {
            None => Some(0),
            Some(o) if self.due(o) => Some(o.index + 1),
            Some(_) => None,
        };
        if let Some(index) = rotate {
            if let Some(mut old) = self.open.remove(&frame.vni) {
                old.section.get_mut().flush()?;
                let size = old.section.bytes();
                self.finished_bytes += size;
                self.finished
                    .push_back((path(&self.config.dir, frame.vni, old.index), size));
            }
            let new = self.open(frame.vni, index)?;
            self.open.insert(frame.vni, new);
            self.enforce_retention();
        }
        let o = self.open.get_mut(&frame.vni).expect("opened above");
        o.section.write(frame)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        for o in self.open.values_mut() {
            o.section.get_mut().flush()?;
        }
        if self.config.max_total_bytes.is_some() {
            // The files being written grow too.
            self.enforce_retention();
        }
        Ok(())
    }
}
