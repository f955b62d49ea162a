//! Micro-benchmarks of the engine (criterion) and a chart of the results (image).
use criterion::{black_box, Criterion};

/// Registers the engine's benchmarks.
pub fn register(c: &mut Criterion) {
    let data: Vec<Vec<u8>> = (0..64u8).map(|i| vec![i; 4096]).collect();
    c.bench_function("digests", |b| b.iter(|| engine::digests(black_box(&data))));
}

/// A bar chart of values, one column per value, as a grey image.
pub fn chart(values: &[u32], height: u32) -> image::GrayImage {
    let max = values.iter().copied().max().unwrap_or(1).max(1);
    image::GrayImage::from_fn(values.len() as u32, height, |x, y| {
        let h = values[x as usize] * height / max;
        image::Luma([if height - y <= h { 255 } else { 0 }])
    })
}
