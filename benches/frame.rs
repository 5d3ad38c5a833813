//! Frame-level throughput: decoding (header parse, unmask, and for text
//! UTF-8 validation) and encoding (header, copy, mask) of masked frames, both
//! with the bare frame codec and through a `Connection`.
//!
//! `cargo bench --bench frame`

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use wscore::frame::{FrameHeader, MAX_HEADER_LEN, OpCode, apply_mask};
use wscore::{Config, Connection, Event, Message, Role};

const SIZES: [usize; 2] = [1024, 64 * 1024];

fn masked_frame(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let key = [0x37, 0xfa, 0x21, 0x3d];
    let header = FrameHeader { fin: true, rsv: 0, opcode, mask: Some(key), payload_len: payload.len() as u64 };
    let mut head = [0; MAX_HEADER_LEN];
    let n = header.encode(&mut head);
    let mut frame = head[..n].to_vec();
    let start = frame.len();
    frame.extend_from_slice(payload);
    apply_mask(&mut frame[start..], key, 0);
    frame
}

fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("codec");
    for size in SIZES {
        let frame = masked_frame(OpCode::Binary, &vec![0xAB; size]);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("decode_unmask", size), &frame, |b, frame| {
            let mut buf = frame.clone();
            b.iter(|| {
                let (h, n) = FrameHeader::decode(black_box(&buf)).unwrap().unwrap();
                apply_mask(&mut buf[n..], h.mask.unwrap(), 0);
                black_box(&buf);
            })
        });
        let payload = vec![0xAB; size];
        group.bench_with_input(BenchmarkId::new("encode_mask", size), &payload, |b, payload| {
            let mut out = Vec::with_capacity(size + MAX_HEADER_LEN);
            b.iter(|| {
                out.clear();
                let key = [1, 2, 3, 4];
                let h = FrameHeader {
                    fin: true,
                    rsv: 0,
                    opcode: OpCode::Binary,
                    mask: Some(key),
                    payload_len: payload.len() as u64,
                };
                let mut head = [0; MAX_HEADER_LEN];
                let n = h.encode(&mut head);
                out.extend_from_slice(&head[..n]);
                out.extend_from_slice(black_box(payload));
                apply_mask(&mut out[n..], key, 0);
                black_box(&out);
            })
        });
    }
    group.finish();
}

fn connection(c: &mut Criterion) {
    let mut group = c.benchmark_group("connection");
    let mut config = Config::default();
    config.retained_buffer_capacity = 1 << 20;
    // Each frame in one receive call (the bound on unprocessed input would
    // otherwise split a 64 KiB frame in two).
    config.max_unprocessed_input = 1 << 20;
    for size in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        for (name, opcode) in [("binary", OpCode::Binary), ("text", OpCode::Text)] {
            let frame = masked_frame(opcode, &vec![b'a'; size]);
            group.bench_with_input(BenchmarkId::new(format!("server_receive_{name}"), size), &frame, |b, frame| {
                let mut server = Connection::frames_only(Role::Server, config.clone(), Duration::ZERO).unwrap();
                b.iter(|| {
                    assert_eq!(server.receive(Duration::ZERO, black_box(frame)), frame.len());
                    match server.poll_event() {
                        Some(Event::Message(m)) => black_box(m.len()),
                        other => panic!("{other:?}"),
                    };
                })
            });
        }
        let payload = vec![b'a'; size];
        group.bench_with_input(BenchmarkId::new("client_send_binary", size), &payload, |b, payload| {
            let mut client = Connection::frames_only(Role::Client, config.clone(), Duration::ZERO).unwrap();
            let mut wire = Vec::with_capacity(size + 16);
            b.iter(|| {
                client.send(Message::Binary(black_box(payload))).unwrap();
                wire.clear();
                let out = client.poll_transmit();
                wire.extend_from_slice(out);
                let n = out.len();
                client.advance_transmit(n);
                black_box(&wire);
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    targets = codec, connection
}
criterion_main!(benches);
