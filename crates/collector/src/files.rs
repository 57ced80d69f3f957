//! The pcapng file series: `DIR/vni-<VNI>-<n>.pcapng`, one series per VNI, rotated by size
//! and/or age, with retention limits over the whole directory.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
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

/// Files written at once, at most (one per VNI): half the descriptors the process may open
/// (its sockets, a TAP feed and the metrics listener take others), from 16 to 1,024 — 512
/// under systemd's default soft limit of 1,024. Past it, the file of the VNI written to least
/// recently is finished, and that VNI's next frame starts its next file. It bounds the
/// descriptors and buffers (128 KiB each) that a sender spraying VNIs makes the collector
/// hold: with one file per VNI it ran out of descriptors at about a thousand, and stopped.
pub fn max_open_files() -> usize {
    open_files_for(&std::fs::read_to_string("/proc/self/limits").unwrap_or_default())
}

/// [`max_open_files`] for the process limits `limits` (`/proc/self/limits`'s text): from the
/// soft limit of "Max open files" ("unlimited": the most); 128 when the line is missing.
fn open_files_for(limits: &str) -> usize {
    let soft = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().next())
        .map(|n| n.parse::<usize>().unwrap_or(usize::MAX));
    match soft {
        Some(n) => (n / 2).clamp(16, 1024),
        None => 128,
    }
}

/// Buffer of each file being written.
const FILE_BUFFER: usize = 128 << 10;

/// VNIs whose next file number is remembered; past it the memory is emptied, and a VNI's
/// next number is found again by trying names that exist already.
const MAX_REMEMBERED: usize = 1 << 16;

/// Finished files waiting for [`Syncer`]; past it, a finished file is closed unsynced.
const SYNC_QUEUE: usize = 64;

/// Puts finished files on disk (`fsync`, then the directory's) on a thread of its own: a sync
/// waits for the disk, and the writer must go on taking frames meanwhile. A file is closed
/// once synced. While frames flow the writer does not wait for it: when [`SYNC_QUEUE`] files
/// wait already (more VNIs than files may be open, all active in turn, finish a file at almost
/// every frame), the next finished file is closed unsynced, left to the kernel's writeback,
/// and said once. At exit ([`PcapngFiles::close`]) the writer waits: every file is synced.
struct Syncer {
    files: Option<SyncSender<File>>,
    thread: Option<JoinHandle<()>>,
    /// Set at exit: hand files over even when the thread is behind.
    closing: bool,
    /// Files closed unsynced because the thread was behind.
    unsynced: u64,
    /// Files the thread synced.
    synced: Arc<AtomicU64>,
}

impl Syncer {
    fn start(dir: PathBuf) -> std::io::Result<Syncer> {
        let (files, rx) = mpsc::sync_channel(SYNC_QUEUE);
        let synced = Arc::new(AtomicU64::new(0));
        let count = synced.clone();
        let thread = std::thread::Builder::new()
            .name("capture-fsync".into())
            .spawn(move || sync_finished(&rx, &dir, &count))?;
        Ok(Syncer {
            files: Some(files),
            thread: Some(thread),
            closing: false,
            unsynced: 0,
            synced,
        })
    }

    /// Hands `file` (written out) to the thread; synced here once the thread has finished (at
    /// exit), closed unsynced when the thread is behind.
    fn sync(&mut self, file: File) {
        let Some(files) = &self.files else {
            sync_file(file);
            return;
        };
        if self.closing {
            if let Err(mpsc::SendError(file)) = files.send(file) {
                sync_file(file);
            }
            return;
        }
        match files.try_send(file) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                if self.unsynced == 0 {
                    tracing::warn!(
                        waiting = SYNC_QUEUE,
                        "capture files are finished faster than the disk syncs them: \
                         further ones are closed without waiting for the disk (many VNIs \
                         active in turn? give them several collectors with --vni)"
                    );
                }
                self.unsynced += 1;
            }
            Err(TrySendError::Disconnected(file)) => {
                sync_file(file);
            }
        }
    }

    /// Returns once every file handed over is synced and closed.
    fn finish(&mut self) {
        self.files = None;
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!(
                    "the thread that puts capture files on disk failed: the last files may not be on disk"
                );
            }
        }
    }
}

/// The syncing thread: each file, then the directory (new names) once per batch.
fn sync_finished(rx: &Receiver<File>, dir: &Path, synced: &AtomicU64) {
    while let Ok(file) = rx.recv() {
        let mut n = u64::from(sync_file(file));
        while let Ok(file) = rx.try_recv() {
            n += u64::from(sync_file(file));
        }
        sync_dir(dir);
        synced.fetch_add(n, Ordering::Relaxed);
    }
}

/// Whether `file` is on disk.
fn sync_file(file: File) -> bool {
    match file.sync_data() {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(error = %e, "cannot put a finished capture file on disk: its end may be lost at a power failure");
            false
        }
    }
}

fn sync_dir(dir: &Path) {
    if let Err(e) = File::open(dir).and_then(|d| d.sync_all()) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot put the capture directory's new names on disk");
    }
}

struct Open {
    index: u32,
    opened: Instant,
    /// When it was last written to, in writes of the whole series.
    last_write: u64,
    section: PcapngSection<BufWriter<File>>,
}

/// Writes the file series of every VNI. Retention counts the files this collector wrote in
/// this run (a previous run's files are left alone, and never written over: a series goes on
/// after the highest number it has in the directory), over all VNIs together: the
/// directory's budget, oldest finished file first.
pub struct PcapngFiles {
    config: FilesConfig,
    open: BTreeMap<u32, Open>,
    /// Files open at once, at most ([`max_open_files`]).
    max_open: usize,
    /// Per VNI, the number its next file takes (a cache: names taken are skipped anyway).
    next: HashMap<u32, u32>,
    /// Frames written, all VNIs together (the clock of `Open::last_write`).
    writes: u64,
    /// Finished files, oldest first, with their sizes.
    finished: VecDeque<(PathBuf, u64)>,
    finished_bytes: u64,
    removed: u64,
    syncer: Syncer,
}

fn path(dir: &Path, vni: u32, index: u32) -> PathBuf {
    dir.join(format!("vni-{vni}-{index}.pcapng"))
}

/// The VNI and number of a file of the series, from its name.
fn parse_name(name: &str) -> Option<(u32, u32)> {
    let (vni, index) = name
        .strip_prefix("vni-")?
        .strip_suffix(".pcapng")?
        .split_once('-')?;
    Some((vni.parse().ok()?, index.parse().ok()?))
}

impl PcapngFiles {
    /// Creates the directory; files appear with their VNI's first frame, numbered after
    /// those the directory holds already.
    pub fn create(config: FilesConfig) -> std::io::Result<PcapngFiles> {
        std::fs::create_dir_all(&config.dir)?;
        let mut next: HashMap<u32, u32> = HashMap::new();
        for entry in std::fs::read_dir(&config.dir)? {
            let name = entry?.file_name();
            if let Some((vni, index)) = name.to_str().and_then(parse_name) {
                let n = next.entry(vni).or_default();
                *n = (*n).max(index.saturating_add(1));
            }
        }
        if next.len() > MAX_REMEMBERED {
            next.clear();
        }
        let syncer = Syncer::start(config.dir.clone())?;
        Ok(PcapngFiles {
            config,
            open: BTreeMap::new(),
            max_open: max_open_files(),
            next,
            writes: 0,
            finished: VecDeque::new(),
            finished_bytes: 0,
            removed: 0,
            syncer,
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

    /// Starts the next file of `vni`'s series: the first number whose name is free (a file
    /// is never written over).
    fn open(&mut self, vni: u32) -> std::io::Result<Open> {
        let mut index = self.next.get(&vni).copied().unwrap_or(0);
        let file = loop {
            let created = OpenOptions::new().write(true).create_new(true).open(path(
                &self.config.dir,
                vni,
                index,
            ));
            match created {
                Ok(f) => break f,
                Err(e) if e.kind() == ErrorKind::AlreadyExists && index < u32::MAX => index += 1,
                Err(e) => return Err(e),
            }
        };
        if self.next.len() >= MAX_REMEMBERED && !self.next.contains_key(&vni) {
            self.next.clear();
        }
        self.next.insert(vni, index.saturating_add(1));
        let mut section = PcapngSection::new(BufWriter::with_capacity(FILE_BUFFER, file))?;
        // Readers can open the file as soon as it exists.
        section.get_mut().flush()?;
        Ok(Open {
            index,
            opened: Instant::now(),
            last_write: self.writes,
            section,
        })
    }

    /// Ends `old`, the file of `vni`: written out, handed to the syncer, and counted with the
    /// finished files.
    fn finish(&mut self, vni: u32, mut old: Open) -> std::io::Result<()> {
        old.section.get_mut().flush()?;
        let size = old.section.bytes();
        let file = old
            .section
            .into_inner()
            .into_inner()
            .map_err(|e| e.into_error())?;
        self.syncer.sync(file);
        self.finished_bytes += size;
        self.finished
            .push_back((path(&self.config.dir, vni, old.index), size));
        Ok(())
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
    fn name(&self) -> String {
        format!("the pcapng files in {}", self.config.dir.display())
    }

    fn write(&mut self, frame: &Frame<'_>) -> std::io::Result<()> {
        let rotate = match self.open.get(&frame.vni) {
            None => true,
            Some(o) => self.due(o),
        };
        if rotate {
            if let Some(old) = self.open.remove(&frame.vni) {
                self.finish(frame.vni, old)?;
            } else if self.open.len() >= self.max_open {
                let idle = self
                    .open
                    .iter()
                    .min_by_key(|(_, o)| o.last_write)
                    .map(|(vni, _)| *vni)
                    .expect("files are open");
                let old = self.open.remove(&idle).expect("just found");
                self.finish(idle, old)?;
            }
            let new = self.open(frame.vni)?;
            self.open.insert(frame.vni, new);
            self.enforce_retention();
        }
        self.writes += 1;
        let o = self.open.get_mut(&frame.vni).expect("opened above");
        o.last_write = self.writes;
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

    /// Every file finished and on disk.
    fn close(&mut self) -> std::io::Result<()> {
        self.syncer.closing = true;
        let open = std::mem::take(&mut self.open);
        let mut result = Ok(());
        for (vni, o) in open {
            if let Err(e) = self.finish(vni, o) {
                result = result.and(Err(e));
            }
        }
        self.syncer.finish();
        sync_dir(&self.config.dir);
        tracing::debug!(
            synced = self.syncer.synced.load(Ordering::Relaxed),
            closed_unsynced = self.syncer.unsynced,
            "capture files finished"
        );
        result
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::SystemTime;

    use super::{max_open_files, FilesConfig, PcapngFiles};
    use crate::sink::{Frame, FrameSink};

    fn frame(vni: u32, data: &[u8]) -> Frame<'_> {
        Frame {
            vni,
            source: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)),
            at: SystemTime::now(),
            data,
        }
    }

    #[test]
    fn open_files_follow_the_soft_descriptor_limit() {
        let limits = |soft: &str| {
            format!(
                "Limit                     Soft Limit           Hard Limit           Units\n\
                 Max processes             95263                95263                processes\n\
                 Max open files            {soft:<20} 524288               files\n"
            )
        };
        assert_eq!(super::open_files_for(&limits("1024")), 512);
        assert_eq!(super::open_files_for(&limits("4096")), 1024);
        assert_eq!(super::open_files_for(&limits("20")), 16);
        assert_eq!(super::open_files_for(&limits("unlimited")), 1024);
        assert_eq!(
            super::open_files_for("Max processes 10 10 processes\n"),
            128
        );
    }

    /// A collector restarted on its directory goes on with each series after the files the
    /// directory holds, and writes none over.
    #[test]
    fn a_restart_never_writes_over_a_previous_runs_files() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "vni-7-0.pcapng",
            "vni-7-1.pcapng",
            "vni-9-4.pcapng",
            "notes.txt",
        ] {
            std::fs::write(dir.path().join(name), b"earlier run").unwrap();
        }
        let mut files = PcapngFiles::create(FilesConfig::new(dir.path().to_path_buf())).unwrap();
        for vni in [7, 9, 10] {
            files.write(&frame(vni, &[0u8; 60])).unwrap();
        }
        files.flush().unwrap();
        for name in ["vni-7-0.pcapng", "vni-7-1.pcapng", "vni-9-4.pcapng"] {
            assert_eq!(
                std::fs::read(dir.path().join(name)).unwrap(),
                b"earlier run",
                "{name}"
            );
        }
        for name in ["vni-7-2.pcapng", "vni-9-5.pcapng", "vni-10-0.pcapng"] {
            assert!(dir.path().join(name).exists(), "{name}");
        }
    }

    /// A sender spraying VNIs makes the collector hold at most max_open_files() files open
    /// (here 64); the least recently written is finished, and its VNI's next frame starts its
    /// next file.
    #[test]
    fn spraying_vnis_keeps_a_bounded_number_of_files_open() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = PcapngFiles::create(FilesConfig::new(dir.path().to_path_buf())).unwrap();
        assert_eq!(files.max_open, max_open_files());
        assert!((16..=1024).contains(&files.max_open));
        files.max_open = 64;
        let vnis = 2 * files.max_open as u32;
        for vni in 0..vnis {
            files.write(&frame(vni, &[1u8; 60])).unwrap();
            assert!(
                files.open.len() <= files.max_open,
                "{} open",
                files.open.len()
            );
        }
        files.write(&frame(0, &[2u8; 60])).unwrap();
        files.flush().unwrap();
        let written = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(
            written,
            vnis as usize + 1,
            "one file per VNI, and VNI 0's second"
        );
        assert!(dir.path().join("vni-0-1.pcapng").exists());
        assert_eq!(files.open.len(), files.max_open);
    }

    /// The descriptors this process holds on files in `dir`.
    fn descriptors_in(dir: &std::path::Path) -> usize {
        let dir = dir.canonicalize().unwrap();
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
            .filter(|target| target.starts_with(&dir))
            .count()
    }

    /// Rotated files go to the syncer, which closes each once it is on disk; closing the
    /// series returns once every file, the ones being written included (more than the
    /// syncer's queue holds), is synced and closed, and leaves every frame in its file.
    #[test]
    fn closing_the_series_puts_every_file_on_disk_and_closes_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = FilesConfig::new(dir.path().to_path_buf());
        config.rotate_bytes = 2_000;
        let mut files = PcapngFiles::create(config).unwrap();
        files.max_open = 1024;
        let vnis = 2 * super::SYNC_QUEUE as u32;
        for i in 0..1000u32 {
            files.write(&frame(i % vnis, &[i as u8; 400])).unwrap();
        }
        assert!(files.finished.len() >= vnis as usize);
        assert_eq!(files.open.len(), vnis as usize);
        files.close().unwrap();
        assert!(files.open.is_empty());
        let written = std::fs::read_dir(dir.path()).unwrap().count() as u64;
        let synced = files
            .syncer
            .synced
            .load(std::sync::atomic::Ordering::Relaxed);
        // While frames flow a file may be closed unsynced (the thread behind); at exit
        // none is.
        assert_eq!(synced + files.syncer.unsynced, written);
        assert!(synced >= u64::from(vnis), "{synced} synced");
        assert_eq!(descriptors_in(dir.path()), 0, "every file closed");
        let mut frames = 0;
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            let mut reader = pcap_file::pcapng::PcapNgReader::new(&data[..]).unwrap();
            while let Some(block) = reader.next_block() {
                if let pcap_file::pcapng::Block::EnhancedPacket(_) = block.unwrap() {
                    frames += 1;
                }
            }
        }
        assert_eq!(frames, 1000);
    }
}
