//! Where decapsulated frames go: the [`FrameSink`] trait and the pcapng encoding that the file
//! series and the live stream share.

use std::collections::HashMap;
use std::io::Write;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
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
/// calls them in order; an error from `write` or `flush` (a full disk, a closed pipe) ends
/// that sink: it is given no more frames, and the collector stops once every sink has ended.
/// A sink that can lose single frames without harm (a TAP) counts and swallows those errors
/// itself.
pub trait FrameSink: Send {
    /// Takes one frame. May buffer.
    fn write(&mut self, frame: &Frame<'_>) -> std::io::Result<()>;
    /// Makes everything taken so far visible to readers. Called after each batch of frames and
    /// at least every 200 ms while frames arrive.
    fn flush(&mut self) -> std::io::Result<()>;
    /// Ends the sink at the collector's exit: everything taken is written out and, for a
    /// sink that writes files, on disk.
    fn close(&mut self) -> std::io::Result<()> {
        self.flush()
    }
    /// What the sink is, for the operator's logs.
    fn name(&self) -> String {
        "output".into()
    }
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

/// (VNI, outer source) pairs a section describes with interfaces of their own.
pub const MAX_INTERFACES: usize = 1024;

/// One pcapng section: the section header, then one interface description block per
/// (VNI, outer source address) as they first appear, then the frames. The interface's
/// `if_name` is `vni<VNI>@<outer source>` and its `if_description` says the same in words, so
/// two tenants' identical inner addresses stay apart in Wireshark (`frame.interface_name`) and
/// in any pcapng reader.
///
/// A section describes at most [`MAX_INTERFACES`] pairs: the frames of further pairs go to one
/// interface `other`, each with a comment naming its own VNI and source, so that a sender
/// spraying sources (an IPv6 prefix holds many) cannot make the collector hold interfaces
/// without end.
pub(crate) struct PcapngSection<W: Write> {
    writer: PcapNgWriter<W>,
    interfaces: HashMap<(u32, IpAddr), u32>,
    /// The interface of the pairs beyond [`MAX_INTERFACES`], once described.
    other: Option<u32>,
    bytes: u64,
}

impl<W: Write> PcapngSection<W> {
    pub fn new(w: W) -> std::io::Result<Self> {
        let writer = PcapNgWriter::new(w).map_err(pcap_io)?;
        Ok(PcapngSection {
            writer,
            interfaces: HashMap::new(),
            other: None,
            // The section header block pcap-file writes without options.
            bytes: 28,
        })
    }

    /// Bytes written so far (the block framing included).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Describes an interface of `name` and `description`; its id.
    fn describe(&mut self, name: String, description: String) -> std::io::Result<u32> {
        let id = self.interfaces.len() as u32 + u32::from(self.other.is_some());
        let block = InterfaceDescriptionBlock {
            linktype: DataLink::ETHERNET,
            snaplen: 0,
            options: vec![
                InterfaceDescriptionOption::IfName(name.into()),
                InterfaceDescriptionOption::IfDescription(description.into()),
                // pcap-file writes timestamps in nanoseconds; without this option readers
                // assume microseconds and put every frame far in the future.
                InterfaceDescriptionOption::IfTsResol(9),
            ],
        };
        self.bytes += self.writer.write_pcapng_block(block).map_err(pcap_io)? as u64;
        Ok(id)
    }

    pub fn write(&mut self, frame: &Frame<'_>) -> std::io::Result<()> {
        let key = (frame.vni, frame.source);
        let mut options = vec![];
        let id = match self.interfaces.get(&key) {
            Some(id) => *id,
            None if self.interfaces.len() < MAX_INTERFACES => {
                let id = self.describe(
                    interface_name(frame.vni, frame.source),
                    format!("VXLAN VNI {} from {}", frame.vni, frame.source),
                )?;
                self.interfaces.insert(key, id);
                id
            }
            None => {
                options.push(EnhancedPacketOption::Comment(
                    format!("VXLAN VNI {} from {}", frame.vni, frame.source).into(),
                ));
                match self.other {
                    Some(id) => id,
                    None => {
                        let id = self.describe(
                            "other".into(),
                            format!(
                                "VXLAN copies beyond the first {MAX_INTERFACES} (VNI, source) \
                                 pairs of this section; each frame's comment names its own"
                            ),
                        )?;
                        self.other = Some(id);
                        id
                    }
                }
            }
        };
        let block = EnhancedPacketBlock {
            interface_id: id,
            timestamp: frame.at.duration_since(UNIX_EPOCH).unwrap_or_default(),
            original_len: original_len(frame.data),
            data: std::borrow::Cow::Borrowed(frame.data),
            options,
        };
        self.bytes += self.writer.write_pcapng_block(block).map_err(pcap_io)? as u64;
        Ok(())
    }

    pub fn get_mut(&mut self) -> &mut W {
        self.writer.get_mut()
    }

    pub fn into_inner(self) -> W {
        self.writer.into_inner()
    }
}

/// The length of the frame the copy was cut from, as far as its headers tell: agents cut
/// copies to their session's packet length (96 bytes by default), and a reader told the
/// frame's own length shows the copy as cut ("packet size limited during capture") rather
/// than as a whole, short frame. The IP header's length after the Ethernet header and up to
/// two VLAN tags; the copy's own length when it says no more (not IP, or whole).
pub fn original_len(frame: &[u8]) -> u32 {
    let be16 = |at: usize| {
        frame
            .get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    let mut l3 = 14;
    let mut ethertype = be16(12);
    for _ in 0..2 {
        if !matches!(ethertype, Some(0x8100 | 0x88a8 | 0x9100)) {
            break;
        }
        ethertype = be16(l3 + 2);
        l3 += 4;
    }
    let said = match ethertype {
        Some(0x0800) if frame.get(l3).is_some_and(|v| v >> 4 == 4) => {
            be16(l3 + 2).map(|total| l3 + usize::from(total))
        }
        Some(0x86dd) if frame.get(l3).is_some_and(|v| v >> 4 == 6) => {
            be16(l3 + 4).map(|payload| l3 + 40 + usize::from(payload))
        }
        _ => None,
    };
    let len = said.unwrap_or(0).max(frame.len());
    u32::try_from(len).unwrap_or(u32::MAX)
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

    fn name(&self) -> String {
        "the pcapng stream".into()
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.section.get_mut().flush()
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv6Addr};
    use std::time::SystemTime;

    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketOption;
    use pcap_file::pcapng::{Block, PcapNgReader};

    use super::{original_len, Frame, PcapngSection, MAX_INTERFACES};

    /// Sources sprayed past MAX_INTERFACES share one interface, `other`, each frame naming
    /// its own VNI and source in a comment: the section holds a bounded number of them.
    #[test]
    fn sources_beyond_the_limit_share_one_interface_and_are_named_per_frame() {
        let mut section = PcapngSection::new(Vec::new()).unwrap();
        let sources = MAX_INTERFACES as u16 + 3;
        for i in 0..sources {
            let source = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i));
            let frame = Frame {
                vni: 7,
                source,
                at: SystemTime::now(),
                data: &[0u8; 60],
            };
            section.write(&frame).unwrap();
        }
        assert_eq!(section.interfaces.len(), MAX_INTERFACES);
        let bytes = section.get_mut().clone();
        let mut reader = PcapNgReader::new(&bytes[..]).unwrap();
        let (mut described, mut frames, mut commented) = (0, 0, Vec::new());
        while let Some(block) = reader.next_block() {
            match block.unwrap() {
                Block::InterfaceDescription(_) => described += 1,
                Block::EnhancedPacket(p) => {
                    frames += 1;
                    if let Some(EnhancedPacketOption::Comment(c)) = p.options.first() {
                        assert_eq!(p.interface_id as usize, MAX_INTERFACES);
                        commented.push(c.to_string());
                    }
                }
                _ => {}
            }
        }
        assert_eq!(described, MAX_INTERFACES + 1);
        assert_eq!(frames, usize::from(sources));
        assert_eq!(
            commented,
            (MAX_INTERFACES as u16..sources)
                .map(|i| format!("VXLAN VNI 7 from 2001:db8::{i:x}"))
                .collect::<Vec<_>>()
        );
    }

    /// An Ethernet header of `ethertype` with `tags` VLAN tags, then `l3`.
    fn frame(tags: usize, ethertype: u16, l3: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        for _ in 0..tags {
            f.extend([0x81, 0x00, 0x00, 0x05]);
        }
        f.extend(ethertype.to_be_bytes());
        f.extend(l3);
        f
    }

    #[test]
    fn a_cut_copy_keeps_the_length_of_the_frame_it_was_cut_from() {
        // IPv4, 1,400 bytes in all, cut to 96.
        let mut v4 = vec![0x45, 0, 0, 0];
        v4[2..4].copy_from_slice(&1386u16.to_be_bytes());
        v4.resize(82, 0);
        assert_eq!(original_len(&frame(0, 0x0800, &v4)), 1400);
        // Behind two tags.
        assert_eq!(original_len(&frame(2, 0x0800, &v4)), 1408);
        // IPv6: 40 + payload.
        let mut v6 = vec![0x60, 0, 0, 0, 0, 0];
        v6[4..6].copy_from_slice(&1000u16.to_be_bytes());
        v6.resize(60, 0);
        assert_eq!(original_len(&frame(1, 0x86dd, &v6)), 18 + 1040);
        // A whole frame padded to 60 bytes: its own length.
        let mut small = vec![0x45, 0, 0, 28];
        small.resize(46, 0);
        assert_eq!(original_len(&frame(0, 0x0800, &small)), 60);
        // Not IP, a header that is not what it says, or too short to tell.
        assert_eq!(original_len(&frame(0, 0x0806, &[0; 28])), 42);
        assert_eq!(original_len(&frame(0, 0x0800, &[0x60, 0, 0xff, 0xff])), 18);
        assert_eq!(original_len(&[0u8; 13]), 13);
    }
}
