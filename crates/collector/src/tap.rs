//! `--tap PREFIX`: the decapsulated frames of each VNI written to a Linux TAP interface of its
//! own (`<PREFIX><VNI>`), for Zeek, Suricata or Packetbeat to sniff.
//!
//! The frames must reach the sniffers and nothing else. A frame written to a TAP's file
//! descriptor is *received* by the kernel on that interface, so the collector:
//! - gives the interface no address and disables IPv6 on it before it is brought up (no
//!   link-local address, no router solicitations or other frames of the host's own);
//! - drops every frame at ingress, after the packet sockets: a `clsact` qdisc with a `matchall`
//!   filter and a `drop` action (tc), or, where the kernel lacks those, an nftables `netdev`
//!   table whose ingress chain has policy drop (`nft`). Packet sockets (tcpdump, Zeek,
//!   Suricata's AF_PACKET, Packetbeat) see a received frame before tc ingress and netfilter's
//!   ingress hook run, so they get every frame; the IP stack, bridges and routing never do. If
//!   neither can be set up, the interface is removed and the VNI's frames are counted as
//!   dropped (`tap_error`) rather than given to the host's stack.
//! - never reads from the interface.
//!
//! The interfaces are not persistent: the kernel removes each one when the collector closes
//! its descriptor, at exit or if it dies.
//!
//! The `tun` crate creates the interface (TUNSETIFF with IFF_TAP | IFF_NO_PI) and sets it up;
//! the collector itself has no `unsafe` code.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::Command;
use std::sync::Arc;

use tun::AbstractDevice;

use crate::metrics::{reason, Metrics};
use crate::sink::{Frame, FrameSink};

/// Longest prefix: a 24-bit VNI has up to 8 digits and an interface name up to 15 bytes.
pub const MAX_PREFIX_LEN: usize = 7;

/// Why a TAP prefix is refused.
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    if prefix.is_empty() || prefix.len() > MAX_PREFIX_LEN {
        return Err(format!(
            "TAP prefix {prefix:?} must be 1 to {MAX_PREFIX_LEN} characters, so that the prefix and a VNI fit in an interface name (15)"
        ));
    }
    if !prefix
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(format!(
            "TAP prefix {prefix:?} may contain only letters, digits, '-' and '_'"
        ));
    }
    Ok(())
}

/// Interfaces the TAP feed creates at most (VNIs whose creation failed count too): a sender
/// spraying VNIs (without `--vni`) must not make the collector create network interfaces
/// without end. The frames of VNIs beyond are dropped and counted as `tap_error`.
pub const MAX_TAPS: usize = 256;

/// One TAP interface per VNI, created when the VNI is first seen.
pub struct TapSink {
    prefix: String,
    metrics: Arc<Metrics>,
    /// `None`: creating the VNI's interface failed; its frames are dropped.
    taps: BTreeMap<u32, Option<Tap>>,
    /// Interfaces created at most ([`MAX_TAPS`]).
    max: usize,
    /// Whether reaching `max` was logged.
    max_told: bool,
}

/// An interface and how its ingress is closed.
struct Tap {
    device: Option<tun::Device>,
    /// The nftables table to delete after the interface (a netdev table outlives its device).
    nft_table: Option<String>,
}

impl Drop for Tap {
    fn drop(&mut self) {
        // Closing the descriptor removes the interface, and a tc qdisc with it.
        drop(self.device.take());
        if let Some(table) = &self.nft_table {
            let _ = nft(&format!("delete table netdev {table}\n"));
        }
    }
}

impl TapSink {
    pub fn new(prefix: &str, metrics: Arc<Metrics>) -> Result<TapSink, String> {
        check_prefix(prefix)?;
        Ok(TapSink {
            prefix: prefix.to_owned(),
            metrics,
            taps: BTreeMap::new(),
            max: MAX_TAPS,
            max_told: false,
        })
    }

    /// The interface name of `vni`.
    pub fn name(prefix: &str, vni: u32) -> String {
        format!("{prefix}{vni}")
    }

    /// Names of the interfaces created so far.
    pub fn interfaces(&self) -> Vec<String> {
        self.taps
            .iter()
            .filter(|(_, d)| d.is_some())
            .map(|(vni, _)| Self::name(&self.prefix, *vni))
            .collect()
    }

    fn create(name: &str) -> Result<Tap, String> {
        let mut config = tun::Configuration::default();
        config.tun_name(name).layer(tun::Layer::L2);
        let dev = tun::create(&config).map_err(|e| format!("cannot create {name}: {e}"))?;
        let mut tap = Tap {
            device: Some(dev),
            nft_table: None,
        };
        // No IPv6 on the interface, so the kernel neither adds a link-local address nor sends
        // anything of its own from it. Absent when the kernel has no IPv6: nothing to disable.
        let v6 = format!("/proc/sys/net/ipv6/conf/{name}/disable_ipv6");
        if std::path::Path::new(&v6).exists() {
            std::fs::write(&v6, "1").map_err(|e| format!("cannot disable IPv6 on {name}: {e}"))?;
        }
        let by_tc = tc(&["qdisc", "add", "dev", name, "clsact"]).and_then(|()| {
            tc(&[
                "filter", "add", "dev", name, "ingress", "pref", "1", "matchall", "action", "drop",
            ])
        });
        if let Err(tc_error) = by_tc {
            let _ = tc(&["qdisc", "del", "dev", name, "clsact"]);
            let table = format!("tmirror-{name}");
            // Add-then-delete clears a table a killed collector left; one transaction.
            nft(&format!(
                "table netdev {table} {{}}\ndelete table netdev {table}\n\
                 table netdev {table} {{\n  chain ingress {{ type filter hook ingress device \"{name}\" priority 0; policy drop; }}\n}}\n"
            ))
            .map_err(|nft_error| {
                format!("cannot drop {name}'s frames after the sniffers: {tc_error}; {nft_error}")
            })?;
            tap.nft_table = Some(table);
        }
        tap.device
            .as_mut()
            .expect("set above")
            .enabled(true)
            .map_err(|e| format!("cannot bring {name} up: {e}"))?;
        Ok(tap)
    }
}

/// Runs `nft -f -` with `script`.
fn nft(script: &str) -> Result<(), String> {
    use std::process::Stdio;
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run nft: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| format!("cannot run nft: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("cannot run nft: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "nft failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn tc(args: &[&str]) -> Result<(), String> {
    let out = Command::new("tc")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run tc {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "tc {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl FrameSink for TapSink {
    fn name(&self) -> String {
        "the TAP feed".into()
    }

    fn write(&mut self, frame: &Frame<'_>) -> std::io::Result<()> {
        if self.taps.len() >= self.max && !self.taps.contains_key(&frame.vni) {
            if !self.max_told {
                tracing::error!(
                    vni = frame.vni,
                    interfaces = self.max,
                    "the TAP feed has as many interfaces as it creates: frames of further VNIs \
                     are dropped (give the VNIs to feed with --vni)"
                );
                self.max_told = true;
            }
            self.metrics.drop_one(reason::TAP_ERROR);
            return Ok(());
        }
        let prefix = &self.prefix;
        let dev = self.taps.entry(frame.vni).or_insert_with(|| {
            let name = Self::name(prefix, frame.vni);
            match Self::create(&name) {
                Ok(dev) => {
                    tracing::info!(interface = %name, vni = frame.vni, "TAP interface created");
                    Some(dev)
                }
                Err(e) => {
                    tracing::error!(vni = frame.vni, "{e}; the VNI's frames are dropped");
                    None
                }
            }
        });
        let ok = match dev.as_mut().and_then(|t| t.device.as_mut()) {
            Some(dev) => dev.write(frame.data).is_ok(),
            None => false,
        };
        if !ok {
            self.metrics.drop_one(reason::TAP_ERROR);
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::sync::Arc;
    use std::time::SystemTime;

    use super::TapSink;
    use crate::metrics::{reason, Metrics};
    use crate::sink::{Frame, FrameSink};

    /// Past its limit, the feed creates no interface for a new VNI: its frames are counted as
    /// dropped (here a limit of none, so that no interface is needed for the test).
    #[test]
    fn vnis_beyond_the_limit_get_no_interface() {
        let metrics = Arc::new(Metrics::new());
        let mut tap = TapSink::new("tmx", metrics.clone()).unwrap();
        tap.max = 0;
        for vni in [7, 8, 7] {
            let frame = Frame {
                vni,
                source: IpAddr::V4(Ipv4Addr::LOCALHOST),
                at: SystemTime::now(),
                data: &[0u8; 60],
            };
            tap.write(&frame).unwrap();
        }
        assert!(tap.taps.is_empty());
        assert_eq!(metrics.dropped(reason::TAP_ERROR), 3);
    }
}
