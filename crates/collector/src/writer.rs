//! One VNI's series of pcapng files, rotated by size.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::DataLink;

/// Writes `vni-<VNI>-<n>.pcapng`, starting a new file when one reaches the rotation size.
pub struct VniWriter {
    dir: PathBuf,
    vni: u32,
    rotate_bytes: u64,
    index: u32,
    written: u64,
    writer: PcapNgWriter<BufWriter<File>>,
}

fn io(e: pcap_file::PcapError) -> std::io::Error {
    match e {
        pcap_file::PcapError::IoError(e) => e,
        other => std::io::Error::other(other.to_string()),
    }
}

fn open(dir: &Path, vni: u32, index: u32) -> std::io::Result<PcapNgWriter<BufWriter<File>>> {
    let path = dir.join(format!("vni-{vni}-{index}.pcapng"));
    let file = BufWriter::with_capacity(256 << 10, File::create(&path)?);
    let mut writer = PcapNgWriter::new(file).map_err(io)?;
    let interface = InterfaceDescriptionBlock {
        linktype: DataLink::ETHERNET,
        snaplen: 0,
        options: vec![],
    };
    writer.write_pcapng_block(interface).map_err(io)?;
    // Readers can open the file as soon as it exists.
    writer.get_mut().flush()?;
    Ok(writer)
}

impl VniWriter {
    /// Opens the first file of `vni` in `dir`.
    pub fn create(dir: &Path, vni: u32, rotate_bytes: u64) -> std::io::Result<VniWriter> {
        Ok(VniWriter {
            dir: dir.to_owned(),
            vni,
            rotate_bytes,
            index: 0,
            written: 0,
            writer: open(dir, vni, 0)?,
        })
    }

    /// Files started so far.
    pub fn files(&self) -> u32 {
        self.index + 1
    }

    /// Appends one frame received at `at`.
    pub fn write(&mut self, frame: &[u8], at: SystemTime) -> std::io::Result<()> {
        if self.written >= self.rotate_bytes {
            self.writer.get_mut().flush()?;
            self.index += 1;
            self.written = 0;
            self.writer = open(&self.dir, self.vni, self.index)?;
        }
        let block = EnhancedPacketBlock {
            interface_id: 0,
            timestamp: at.duration_since(UNIX_EPOCH).unwrap_or_default(),
            original_len: frame.len() as u32,
            data: std::borrow::Cow::Borrowed(frame),
            options: vec![],
        };
        self.writer.write_pcapng_block(block).map_err(io)?;
        // 32 bytes of block framing plus the data padded to 4 bytes.
        self.written += 32 + frame.len().div_ceil(4) as u64 * 4;
        Ok(())
    }

    /// Makes everything written so far readable by other programs.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.writer.get_mut().flush()
    }
}
