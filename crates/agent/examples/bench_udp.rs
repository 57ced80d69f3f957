//! The traffic source of `bench/dataplane.sh`: sends UDP datagrams of a fixed payload size to
//! one destination for a fixed time, as fast as one core allows or paced to a given rate, and
//! prints how many it sent as one JSON line. Std only (one `send` per datagram): what it costs
//! is the same in every compared case, which is all the benchmark needs of it.
//!
//! `bench_udp DEST:PORT PAYLOAD_BYTES SECONDS [PACKETS_PER_SECOND]`

use std::net::{ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: bench_udp DEST:PORT PAYLOAD_BYTES SECONDS [PACKETS_PER_SECOND]");
        std::process::exit(2);
    }
    let dest = &args[1];
    let payload: usize = args[2].parse().expect("payload bytes");
    let seconds: f64 = args[3].parse().expect("seconds");
    let rate: Option<f64> = args.get(4).map(|r| r.parse().expect("packets per second"));

    // A socket of the destination's family (the IPv6 underlay of bench/dataplane.sh).
    let to = dest
        .to_socket_addrs()
        .expect("DEST:PORT")
        .next()
        .expect("an address");
    let any = if to.is_ipv6() { "[::]:0" } else { "0.0.0.0:0" };
    let socket = UdpSocket::bind(any).expect("bind");
    socket.connect(to).expect("connect");
    let buf = vec![0x5a_u8; payload];
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(seconds);
    let (mut sent, mut errors) = (0u64, 0u64);
    match rate {
        None => {
            // Check the clock every 1,024 datagrams only.
            'outer: loop {
                for _ in 0..1024 {
                    match socket.send(&buf) {
                        Ok(_) => sent += 1,
                        Err(_) => errors += 1,
                    }
                }
                if Instant::now() >= end {
                    break 'outer;
                }
            }
        }
        Some(rate) => {
            // Every tick, send what is due by now, then sleep: a steady rate without spinning.
            let tick = Duration::from_micros(500);
            loop {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                let due = ((now - start).as_secs_f64() * rate) as u64;
                while sent + errors < due {
                    match socket.send(&buf) {
                        Ok(_) => sent += 1,
                        Err(_) => errors += 1,
                    }
                }
                std::thread::sleep(tick);
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "{{\"sent\": {sent}, \"errors\": {errors}, \"seconds\": {elapsed:.3}, \"rate\": {:.0}}}",
        sent as f64 / elapsed
    );
}
