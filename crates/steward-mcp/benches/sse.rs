//! The upstream SSE decoder on one large event arriving in small chunks: the time per byte must
//! stay flat as the event grows (the decoder keeps a scan offset instead of rescanning).
//!
//! Run: `cargo bench -p steward-mcp --bench sse -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use steward_mcp::sse::Decoder;

const CHUNK: usize = 512;

fn one_event_in_chunks(c: &mut Criterion) {
    let mut group = c.benchmark_group("sse_one_event_512B_chunks");
    for size in [64 * 1024, 512 * 1024, 4 * 1024 * 1024] {
        let chunk = vec![b'x'; CHUNK];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, &size| {
            b.iter(|| {
                let mut d = Decoder::new(8 * 1024 * 1024);
                d.push(b"data: ").unwrap();
                for _ in 0..size / CHUNK {
                    black_box(d.push(&chunk).unwrap());
                }
                let events = d.push(b"\n\n").unwrap();
                assert_eq!(events.len(), 1);
                black_box(events)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, one_event_in_chunks);
criterion_main!(benches);
