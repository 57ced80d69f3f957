//! Where decapsulated frames go: the [`FrameSink`] trait and the pcapng encoding that the file
//! series and the live stream share.

use std::collections::HashMap;
use std::io::Write;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::DataLink;

/// One decapsulated frame: the inner Ethernet frame of a VXLAN datagram, its VNI, the outer
/// (underlay) source address it came from and when it was received.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    pub vni: u32,
    pub source: IpAddr,
    pub at: SystemTime,
    pub data: &'a [u8],
}

/// A destination for decapsulated frames. The collector's writer thread owns every sink and
/// calls them in order; an error from `write` or `flush` stops the collector (a full disk, a
/// closed pipe), so a sink that can lose single frames without harm (a TAP) counts and swallows
/// those errors itself.
pub trait FrameSink: Send {
    /// Takes one frame. May buffer.
    fn write(&mut self, frame: &Frame<'_>) -> std::io::Result<()>;
    /// Makes everything taken so far visible to readers. Called after each batch of frames and
    /// at least every 200 ms while frames arrive.
    fn flush(&mut self) -> std::io::Result<()>;
}

pub(crate) fn pcap_io(e: pcap_file::PcapError) -> std::io::Error {
    match e {
        pcap_file::PcapError::IoError(e) => e,
        other => std::io::Error::other(other.to_string()),
    }
}

/// The name of the pcapng interface of frames of `vni` from outer source `source`.
pub fn interface_name(vni: u32, source: IpAddr) -> String {
    format!("vni{vni}@{source}")
}

/// One pcapng section: the section header, then one interface description block per
/// (VNI, outer source address) as they first appear, then the frames. The interface's
/// `if_name` is `vni<VNI>@<outer source>` and its `if_description` says the same in words, so
/// two tenants' identical inner addresses stay apart in Wireshark (`frame.interface_name`) and
/// in any pcapng reader.
pub(crate) struct PcapngSection<W: Write> {
    writer: PcapNgWriter<W>,
    interfaces: HashMap<(u32, IpAddr), u32>,
    bytes: u64,
}

impl<W: Write> PcapngSection<W> {
    pub fn new(w: W) -> std::io::Result<Self> {
        let writer = PcapNgWriter::new(w).map_err(pcap_io)?;
        Ok(PcapngSection {
            writer,
            interfaces: HashMap::new(),
            // The section header block pcap-file writes without options.
            bytes: 28,
        })
    }

    /// Bytes written so far (the block framing included).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn write(&mut self, frame: &Frame<'_>) -> std::io::Result<()> {
        let key = (frame.vni, frame.source);
        let id = match self.interfaces.get(&key) {
            Some(id) => *id,
            None => {
                let id = self.interfaces.len() as u32;
                let block = InterfaceDescriptionBlock {
                    linktype: DataLink::ETHERNET,
                    snaplen: 0,
                    options: vec![
                        InterfaceDescriptionOption::IfName(
                            interface_name(frame.vni, frame.source).into(),
                        ),
                        InterfaceDescriptionOption::IfDescription(
                            format!("VXLAN VNI {} from {}", frame.vni, frame.source).into(),
                        ),
                        // pcap-file writes timestamps in nanoseconds; without this option
                        // readers assume microseconds and put every frame far in the future.
                        InterfaceDescriptionOption::IfTsResol(9),
                    ],
                };
                self.bytes += self.writer.write_pcapng_block(block).map_err(pcap_io)? as u64;
                self.interfaces.insert(key, id);
                id
            }
        };
        let block = EnhancedPacketBlock {
            interface_id: id,
            timestamp: frame.at.duration_since(UNIX_EPOCH).unwrap_or_default(),
            original_len: frame.data.len() as u32,
            data: std::borrow::Cow::Borrowed(frame.data),
            options: vec![],
        };
        self.bytes += self.writer.write_pcapng_block(block).map_err(pcap_io)? as u64;
        Ok(())
    }

    pub fn get_mut(&mut self) -> &mut W {
        self.writer.get_mut()
    }
}

/// One live pcapng stream of every VNI (for `--out -`): `tmirror capture --out - | tshark -r -`.
pub struct PcapngStream<W: Write + Send> {
    section: PcapngSection<std::io::BufWriter<W>>,
}

impl<W: Write + Send> PcapngStream<W> {
    /// Writes the section header at once, so a reader can open the stream before any frame.
    pub fn new(w: W) -> std::io::Result<Self> {
        let mut section = PcapngSection::new(std::io::BufWriter::with_capacity(256 << 10, w))?;
        section.get_mut().flush()?;
        Ok(PcapngStream { section })
    }
}

impl<W: Write + Send> FrameSink for PcapngStream<W> {
    fn write(&mut self, frame: &Frame<'_>) -> std::io::Result<()> {
        self.section.write(frame)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.section.get_mut().flush()
    }
}
