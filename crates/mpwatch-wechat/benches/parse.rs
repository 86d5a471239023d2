//! Parsing speed over the real fixture pages: `cargo bench -p mpwatch-wechat`.
//! Results and the comparison with parsel + lxml are in docs/benchmarks.md.

use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mpwatch_wechat::page::parse_page;

fn load(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/pages/{name}.html.zst"));
    zstd::decode_all(std::fs::read(path).expect("fixture").as_slice()).expect("decompress")
}

const MODERN_PAGES: &[&str] = &[
    "article_2025_normal_a",
    "article_2025_normal_b",
    "article_2025_with_author",
    "picture_2025_a",
    "picture_2025_b",
    "repost_2025_a",
    "repost_2025_b",
    "text_2025_a",
    "text_2025_b",
];

fn pages(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_page");
    for name in MODERN_PAGES.iter().chain(&["article_2018_raw_original", "deleted_2025_zh"]) {
        let page = load(name);
        group.throughput(Throughput::Bytes(page.len() as u64));
        group.bench_function(*name, |b| b.iter(|| parse_page(std::hint::black_box(&page))));
    }
    group.finish();
}

/// The 10 MB hostile inputs of the robustness tests, pages and article bodies: linear
/// time means milliseconds, not seconds.
fn hostile(c: &mut Criterion) {
    let mut group = c.benchmark_group("hostile_10mb");
    group.sample_size(10);
    let size = 10 * 1024 * 1024;
    for (name, input) in
        mpwatch_wechat::hostile_inputs(size).into_iter().chain(mpwatch_wechat::hostile_article_bodies(size))
    {
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_function(name, |b| b.iter(|| parse_page(std::hint::black_box(&input))));
    }
    group.finish();
}

criterion_group!(benches, pages, hostile);
criterion_main!(benches);
