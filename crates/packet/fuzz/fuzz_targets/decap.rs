//! VXLAN decapsulation of arbitrary frames and UDP payloads: no panic, and what is returned
//! lies inside the input and re-encapsulates to the same payload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tmirror_packet::*;

fuzz_target!(|data: &[u8]| {
    let mut buf = [0u8; 70_000];
    for port in [
        VXLAN_PORT,
        u16::from_be_bytes([data.first().copied().unwrap_or(0), 0xb5]),
    ] {
        if let Ok(d) = decapsulate_frame(data, port) {
            let start = d.inner.as_ptr() as usize - data.as_ptr() as usize;
            assert!(start >= 14 + 20 + 8 + 8);
            assert!(start + d.inner.len() <= data.len());
            assert!(!d.inner.is_empty());
        }
    }
    if let Ok(d) = decapsulate_payload(data) {
        assert_eq!(d.inner, &data[8..]);
        let n = encapsulate_payload(d.vni, d.inner, &mut buf).unwrap();
        let again = decapsulate_payload(&buf[..n]).unwrap();
        assert_eq!(again, d);
    }
});
