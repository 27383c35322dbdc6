//! Store and ANN figures for BENCHMARKS.md (issue #27): N random 512-d unit vectors written as a
//! store (f16 parts), its size on disk and write time, HNSW build time, peak RSS, query latency
//! (median and p99 of Q queries) of exact search and of the HNSW index, and recall@10 of HNSW
//! against exact search; then the exact/HNSW crossover on smaller stores.
//!
//! `cargo run --release --example store_bench -- [N=1000000] [Q=1000] [DIR=/tmp/store-bench] [exact-only|no-crossover]`
//!
//! `STRUCTURE=low-rank` replaces the uniform vectors by vectors of low intrinsic dimension, the
//! structure real embeddings have and uniform ones lack (see [`low_rank_vectors`]).
//!
//! A store (and index) already in `DIR/full` is opened and queried, not rebuilt.

use clipguide_index::ann;
use clipguide_index::manifest::{Manifest, PartInfo, VectorType};
use clipguide_index::part::{self, FileMeta, Rows};
use clipguide_index::Store;
use std::path::Path;
use std::time::Instant;

const DIM: usize = 512;
const PART_ROWS: usize = 65_536;

/// Gaussian vectors normalised (uniform on the sphere), from a fixed seed.
fn unit_vectors(n: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut uniform = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        ((s >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let mut v: Vec<f32> = (0..DIM / 2)
                .flat_map(|_| {
                    let (u1, u2) = (uniform(), uniform());
                    let r = (-2.0 * u1.ln()).sqrt();
                    let t = std::f64::consts::TAU * u2;
                    [(r * t.cos()) as f32, (r * t.sin()) as f32]
                })
                .collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter_mut().for_each(|x| *x /= norm);
            v
        })
        .collect()
}

/// Unit vectors near a random 32-dimensional subspace of the 512: `normalise(A·z + ε)` with
/// `z` ~ N(0, I₃₂), `A` a fixed random 512×32 map, `ε` isotropic noise at a fifth of the signal's
/// length. Embeddings of real images have an intrinsic dimension of a few dozen, which is what
/// graph indexes exploit; this is a stand-in for them (no real CLIP weights here), not a copy.
fn low_rank_vectors(n: usize, seed: u64) -> Vec<Vec<f32>> {
    const RANK: usize = 32;
    // The subspace is the same for every seed (seed 99); the points and the noise are not.
    let basis = unit_vectors(RANK, 99);
    let z = unit_vectors(n, seed);
    let noise = unit_vectors(n, seed ^ 0x5eed);
    z.iter()
        .zip(&noise)
        .map(|(z, e)| {
            // The first 32 coordinates of a uniform unit vector in 512-d, scaled back to a
            // Gaussian-like z (their distribution is what matters, not their scale).
            let mut v = vec![0f32; DIM];
            for (c, b) in z[..RANK].iter().zip(&basis) {
                v.iter_mut().zip(b).for_each(|(v, b)| *v += c * b);
            }
            let signal = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter_mut()
                .zip(e)
                .for_each(|(v, e)| *v += 0.2 * signal * e);
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter_mut().for_each(|x| *x /= norm);
            v
        })
        .collect()
}

/// The benchmark's vectors: uniform on the sphere, or of low intrinsic dimension with
/// `STRUCTURE=low-rank`.
fn vectors(n: usize, seed: u64) -> Vec<Vec<f32>> {
    match std::env::var("STRUCTURE").as_deref() {
        Ok("low-rank") => low_rank_vectors(n, seed),
        Ok(other) if other != "uniform" => {
            panic!("STRUCTURE={other}: expected uniform or low-rank")
        }
        _ => unit_vectors(n, seed),
    }
}

/// Peak resident memory since the last reset, in MiB (Linux).
fn peak_rss_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn write_store(dir: &Path, vectors: &[Vec<f32>], with_ann: bool) -> (f64, f64) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let t = Instant::now();
    let mut m = Manifest::new("bench-random", DIM, VectorType::F16);
    let mut all = Rows::new(DIM, VectorType::F16);
    for (i, chunk) in vectors.chunks(PART_ROWS).enumerate() {
        let mut rows = Rows::new(DIM, VectorType::F16);
        for (j, v) in chunk.iter().enumerate() {
            let k = i * PART_ROWS + j;
            let meta = FileMeta {
                path: format!("img/{k:08}.jpg"),
                size: 1000 + k as u64,
                mtime_ns: k as i64,
                hash: format!("{k:032x}"),
            };
            rows.push(meta, v);
        }
        let file = format!("part-{i:05}.parquet");
        let xxh3 = part::write(&dir.join(&file), &rows, "bench-random").unwrap();
        m.parts.push(PartInfo {
            file,
            rows: rows.len(),
            xxh3,
        });
        m.next_part += 1;
        all.append(&rows);
    }
    let write_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    if with_ann {
        // Always: the figures below are for the index whatever the calibration says; the line
        // it prints says whether `AnnPolicy::Auto` (the default) would have kept it.
        ann::refresh(dir, &mut m, &all, ann::AnnPolicy::Always { min_rows: 0 }).unwrap();
        let c = m
            .index
            .as_ref()
            .and_then(|i| i.calibration.clone())
            .unwrap();
        println!(
            "  calibration at {} rows: ef {}, recall@10 {:.3}, {:.2} ms against {:.2} ms exact: {}",
            c.rows,
            c.expansion_search,
            c.recall_permille as f64 / 1000.0,
            c.ann_us as f64 / 1000.0,
            c.exact_us as f64 / 1000.0,
            if ann::worth_keeping(&c) {
                "kept by default"
            } else {
                "not kept by default"
            }
        );
    }
    let ann_s = t.elapsed().as_secs_f64();
    m.write(&dir.join("manifest.json")).unwrap();
    (write_s, ann_s)
}

fn percentile(xs: &mut [f64], p: f64) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[((xs.len() - 1) as f64 * p).round() as usize]
}

fn dir_mib(dir: &Path, ext: &str) -> f64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == ext))
        .map(|e| e.metadata().unwrap().len() as f64)
        .sum::<f64>()
        / (1 << 20) as f64
}

fn median_p99(mut xs: Vec<f64>) -> (f64, f64) {
    (percentile(&mut xs, 0.5), percentile(&mut xs, 0.99))
}

/// Exact top 10 of every query, and its (median, p99) ms.
fn exact(store: &Store, qs: &[Vec<f32>]) -> (Vec<Vec<usize>>, (f64, f64)) {
    let mut t_ms = vec![];
    let tops = qs
        .iter()
        .map(|q| {
            let t = Instant::now();
            let h = store.search_exact(q, 10).unwrap();
            t_ms.push(t.elapsed().as_secs_f64() * 1e3);
            h.into_iter().map(|h| h.row).collect()
        })
        .collect();
    (tops, median_p99(t_ms))
}

/// HNSW recall@10 against `truth` and (median, p99) ms at beam width `ef`.
fn hnsw(store: &Store, qs: &[Vec<f32>], truth: &[Vec<usize>], ef: usize) -> (f64, (f64, f64)) {
    store.set_ann_expansion(ef);
    let (mut t_ms, mut hit) = (vec![], 0usize);
    for (q, t) in qs.iter().zip(truth) {
        let start = Instant::now();
        let h = store.search(q, 10).unwrap();
        t_ms.push(start.elapsed().as_secs_f64() * 1e3);
        hit += h.iter().filter(|h| t.contains(&h.row)).count();
    }
    (hit as f64 / (10 * qs.len()) as f64, median_p99(t_ms))
}

/// The smallest beam width reaching recall@10 ≥ 0.95 on the tuning queries.
fn tune(store: &Store, tuning: &[Vec<f32>]) -> usize {
    let (truth, _) = exact(store, tuning);
    for ef in [
        64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072,
    ] {
        let (r, (m, _)) = hnsw(store, tuning, &truth, ef);
        println!("  tuning: ef {ef}: recall@10 {r:.3}, median {m:.2} ms");
        if r >= 0.95 {
            return ef;
        }
    }
    131072
}

/// Exact and HNSW (at the beam width tuned on other queries) on held-out queries.
fn report(store: &Store, tuning: &[Vec<f32>], held_out: &[Vec<f32>]) -> String {
    let ef = tune(store, tuning);
    let (truth, (em, ep)) = exact(store, held_out);
    let (r, (am, ap)) = hnsw(store, held_out, &truth, ef);
    format!(
        "{} held-out queries: exact median {em:.2} ms p99 {ep:.2} ms; hnsw (ef {ef}) median {am:.2} ms p99 {ap:.2} ms; recall@10 {r:.4}",
        held_out.len()
    )
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(1_000_000, |a| a.parse().unwrap());
    let q: usize = args.next().map_or(1000, |a| a.parse().unwrap());
    let root = std::path::PathBuf::from(args.next().unwrap_or_else(|| "/tmp/store-bench".into()));
    // `exact-only`: the store and exact search at N, without the crossover and HNSW;
    // `no-crossover`: the store, exact search and HNSW at N only.
    let mode = args.next();
    let with_ann = mode.as_deref() != Some("exact-only");
    let crossover = mode.is_none();
    println!("threads: {:?}", std::thread::available_parallelism());
    // Beam widths are tuned on one query set and reported on another.
    let tuning = vectors(100, 2);
    let held_out = vectors(q, 3);

    for &m in &[20_000usize, 50_000, 100_000] {
        if m >= n || !crossover {
            break;
        }
        let dir = root.join(format!("n{m}"));
        let (_, ann_s) = write_store(&dir, &vectors(m, 1), true);
        let s = Store::open(&dir).unwrap();
        println!(
            "n={m} (HNSW built and calibrated in {ann_s:.1} s): {}",
            report(&s, &tuning, &held_out[..held_out.len().min(200)])
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    let dir = root.join("full");
    // With a store already written (and its index, unless exact-only), this process only opens
    // and queries it, so its peak RSS is the query side's.
    let written =
        dir.join("manifest.json").exists() && (!with_ann || dir.join("index.usearch").exists());
    if !written {
        let t = Instant::now();
        let vectors = vectors(n, 1);
        println!(
            "generated {n} vectors in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        reset_peak_rss();
        let (write_s, ann_s) = write_store(&dir, &vectors, with_ann);
        let build_rss = peak_rss_mib();
        drop(vectors);
        println!(
            "store: {:.1} MiB parquet + {:.1} MiB index.usearch; parts written in {write_s:.1} s, HNSW built, calibrated and saved in {ann_s:.1} s; peak RSS while building {build_rss:.0} MiB (vectors in memory included)",
            dir_mib(&dir, "parquet"),
            dir_mib(&dir, "usearch")
        );
    }
    reset_peak_rss();
    let t = Instant::now();
    let s = Store::open(&dir).unwrap();
    println!(
        "opened (parts and index read and checksummed) in {:.1} s; peak RSS {:.0} MiB",
        t.elapsed().as_secs_f64(),
        peak_rss_mib()
    );
    if with_ann {
        assert!(s.has_ann());
        let r = report(&s, &tuning, &held_out);
        println!("n={n}: {r}; peak RSS {:.0} MiB", peak_rss_mib());
    } else {
        let (_, (em, ep)) = exact(&s, &held_out);
        println!(
            "n={n}: {} queries: exact median {em:.2} ms p99 {ep:.2} ms; peak RSS {:.0} MiB",
            held_out.len(),
            peak_rss_mib()
        );
    }
}
