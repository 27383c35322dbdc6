//! bf16 products with f32 sums for forward-only inference, on CPUs with AVX512-BF16.
//!
//! Why our own kernel: the `gemm` crate has no bf16 dot-product micro-kernels, and `vdpbf16ps`
//! does twice the multiply-adds of an f32 FMA per instruction. Embedding images for an index or an
//! evaluation needs no gradient, so its frozen linear layers can round their inputs and weights to
//! bf16 (8 significant bits) and sum in f32, as PyTorch's bf16 autocast does.
//!
//! Layout: a weight `W` [n, k] is packed once into panels of [`NR`] output columns; inside a panel,
//! each pair of input features (2p, 2p+1) is one `u32` per column (low half feature 2p), the
//! operand layout of `vdpbf16ps`. Activations are converted row by row into the same pairs. A
//! micro-kernel keeps an `R`×[`NR`] tile of sums in registers (`R` ≤ [`MR`]) over the whole `k`, then
//! applies the [`Epilogue`] (bias, activation, residual) while the tile is still in cache, so those
//! cost no extra pass over memory.

use rayon::prelude::*;

use crate::ops::FusedActivation;

/// Output columns per packed panel: two 16-lane registers.
const NR: usize = 32;
/// Rows per micro-tile: 12 × 2 accumulators + 2 weight registers + 1 broadcast ≤ 32 registers.
const MR: usize = 12;
/// Rows per parallel task (a multiple of [`MR`]): its bf16 activations stay in L2 while every
/// panel of the task's columns passes by.
const ROWS_PER_TASK: usize = 4 * MR;
/// Panels per parallel task.
const PANELS_PER_TASK: usize = 8;

/// Whether this CPU runs the bf16 kernel: AVX-512F and AVX512-BF16, and `CLIPGUIDE_ISA` does not
/// cap the kernels below AVX-512 (see [`crate::ops::isa`]).
pub fn available() -> bool {
    static OK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OK.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            crate::ops::isa_allows_avx512()
                && std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bf16")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// f32 → bf16 bits, rounding to nearest even (what `vcvtne2ps2bf16` does for normal numbers).
fn bf16_bits(x: f32) -> u16 {
    let b = x.to_bits();
    if x.is_nan() {
        // Keep it a NaN whatever the payload's low bits.
        return ((b >> 16) | 0x40) as u16;
    }
    ((b + 0x7fff + ((b >> 16) & 1)) >> 16) as u16
}

/// The bf16 value of `x`, as f32 (for tests and reference sums).
pub fn round_to_bf16(x: f32) -> f32 {
    f32::from_bits((bf16_bits(x) as u32) << 16)
}

/// A weight `W` [n, k] packed for [`matmul`]; see the module docs for the layout.
pub struct PackedWeight {
    n: usize,
    k: usize,
    pairs: usize,
    data: Vec<u32>,
}

impl std::fmt::Debug for PackedWeight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PackedWeight {{ n: {}, k: {} }}", self.n, self.k)
    }
}

impl PackedWeight {
    /// Packs a row-major `w` [n, k] (a linear layer's [out, in] weight).
    pub fn pack(w: &[f32], n: usize, k: usize) -> Self {
        assert_eq!(w.len(), n * k, "weight is not [n, k]");
        let pairs = k.div_ceil(2);
        let mut data = vec![0u32; n.div_ceil(NR) * pairs * NR];
        data.par_chunks_mut(pairs * NR)
            .enumerate()
            .for_each(|(p, panel)| {
                for j in 0..NR.min(n - p * NR) {
                    let row = &w[(p * NR + j) * k..][..k];
                    for (q, pair) in row.chunks(2).enumerate() {
                        let lo = bf16_bits(pair[0]) as u32;
                        let hi = pair.get(1).map_or(0, |&v| bf16_bits(v) as u32);
                        panel[q * NR + j] = lo | (hi << 16);
                    }
                }
            });
        Self { n, k, pairs, data }
    }

    pub fn rows(&self) -> usize {
        self.n
    }

    pub fn cols(&self) -> usize {
        self.k
    }
}

/// What happens to each output after its sum: `act(sum + bias) + residual`, each part optional.
#[derive(Clone, Copy, Default)]
pub struct Epilogue<'a> {
    /// [n]
    pub bias: Option<&'a [f32]>,
    pub act: Option<FusedActivation>,
    /// [m, n], added last (a residual connection).
    pub residual: Option<&'a [f32]>,
}

/// Raw output pointer shared by tasks that write disjoint tiles.
#[derive(Clone, Copy)]
struct Out(*mut f32);
// SAFETY: every task writes its own rows × columns of the buffer and nothing reads them meanwhile.
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

/// `act(x·Wᵀ + bias) + residual` for `x` [m, k] row-major, `w` packed from [n, k]: [m, n].
///
/// Call only where [`available`] says so; elsewhere it panics (the fused layer checks first).
pub fn matmul(x: &[f32], m: usize, w: &PackedWeight, ep: Epilogue<'_>) -> Vec<f32> {
    assert!(
        available(),
        "bf16 matmul called on a CPU without AVX512-BF16"
    );
    let (n, k, pairs) = (w.n, w.k, w.pairs);
    assert_eq!(x.len(), m * k, "input is not [m, k]");
    assert!(ep.bias.is_none_or(|b| b.len() == n), "bias is not [n]");
    assert!(
        ep.residual.is_none_or(|r| r.len() == m * n),
        "residual is not [m, n]"
    );
    let xb = to_pairs(x, m, k, pairs);
    let mut out: Vec<f32> = Vec::with_capacity(m * n);
    let dst = Out(out.as_mut_ptr());
    let panels = n.div_ceil(NR);
    let col_tasks = panels.div_ceil(PANELS_PER_TASK);
    let tasks = m.div_ceil(ROWS_PER_TASK) * col_tasks;
    (0..tasks).into_par_iter().for_each(|t| {
        let (rb, cb) = (t / col_tasks, t % col_tasks);
        let rows = rb * ROWS_PER_TASK..((rb + 1) * ROWS_PER_TASK).min(m);
        let panel_range = cb * PANELS_PER_TASK..((cb + 1) * PANELS_PER_TASK).min(panels);
        for p in panel_range {
            let b = &w.data[p * pairs * NR..][..pairs * NR];
            let col0 = p * NR;
            let cols = NR.min(n - col0);
            let mut r0 = rows.start;
            while r0 < rows.end {
                let r = MR.min(rows.end - r0);
                let tile = Tile {
                    a: &xb[r0 * pairs..(r0 + r) * pairs],
                    pairs,
                    b,
                    row0: r0,
                    col0,
                    cols,
                    n,
                };
                // SAFETY: `available` checked the CPU features; the tile covers rows r0..r0+r and
                // columns col0..col0+cols of `out`, which no other task writes.
                unsafe { tile.run(r, dst, &ep) };
                r0 += r;
            }
        }
    });
    // SAFETY: the tasks above wrote every one of the m·n outputs.
    unsafe { out.set_len(m * n) };
    out
}

/// Rows of `x` [m, k] as bf16 pairs [m, pairs] (a zero pads an odd `k`).
fn to_pairs(x: &[f32], m: usize, k: usize, pairs: usize) -> Vec<u32> {
    let mut xb = vec![0u32; m * pairs];
    xb.par_chunks_mut(pairs * 16)
        .zip(x.par_chunks(k * 16))
        .for_each(|(dst, src)| {
            for (d, s) in dst.chunks_mut(pairs).zip(src.chunks(k)) {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: only reached through `matmul`, after `available`.
                unsafe {
                    x86::row_to_pairs(s, d)
                }
                #[cfg(not(target_arch = "x86_64"))]
                unreachable!("bf16 kernel on a CPU without AVX512-BF16: {s:?} {d:?}");
            }
        });
    xb
}

/// One micro-tile's operands: `a` [r, pairs] bf16 rows, `b` one packed panel.
struct Tile<'a> {
    a: &'a [u32],
    pairs: usize,
    b: &'a [u32],
    row0: usize,
    col0: usize,
    cols: usize,
    n: usize,
}

impl Tile<'_> {
    /// # Safety
    /// The CPU has AVX-512F and AVX512-BF16; `dst` is an [m, n] buffer whose rows
    /// `row0..row0 + r`, columns `col0..col0 + cols`, nobody else touches meanwhile.
    unsafe fn run(&self, r: usize, dst: Out, ep: &Epilogue<'_>) {
        #[cfg(target_arch = "x86_64")]
        {
            macro_rules! dispatch {
                ($($n:literal)*) => {
                    match r {
                        $($n => x86::tile::<$n>(self, dst, ep),)*
                        _ => unreachable!("tile of {r} rows"),
                    }
                };
            }
            dispatch!(1 2 3 4 5 6 7 8 9 10 11 12)
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!(
            "bf16 kernel on a CPU without AVX512-BF16: {r} {} {}",
            dst.0 as usize,
            ep.bias.is_some()
        )
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Epilogue, Out, Tile, NR};
    use std::arch::x86_64::*;

    /// One row of f32 into bf16 pairs, 32 values per `vcvtne2ps2bf16`.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn row_to_pairs(src: &[f32], dst: &mut [u32]) {
        let mut buf = [0f32; 32];
        for (i, d) in dst.chunks_mut(16).enumerate() {
            let s = &src[i * 32..src.len().min(i * 32 + 32)];
            let p = if s.len() == 32 && d.len() == 16 {
                s.as_ptr()
            } else {
                // The row's ragged end, zero-padded (only ever the last chunk).
                buf[..s.len()].copy_from_slice(s);
                buf[s.len()..].fill(0.0);
                buf.as_ptr()
            };
            let lo = _mm512_loadu_ps(p);
            let hi = _mm512_loadu_ps(p.add(16));
            let v: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(hi, lo));
            if d.len() == 16 {
                _mm512_storeu_si512(d.as_mut_ptr().cast(), v);
            } else {
                let mut tmp = [0u32; 16];
                _mm512_storeu_si512(tmp.as_mut_ptr().cast(), v);
                d.copy_from_slice(&tmp[..d.len()]);
            }
        }
    }

    /// The `R`-row micro-kernel: sums over all pairs in registers, then the epilogue.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn tile<const R: usize>(t: &Tile<'_>, dst: Out, ep: &Epilogue<'_>) {
        let mut acc = [[_mm512_setzero_ps(); 2]; R];
        let a = t.a.as_ptr();
        let b = t.b.as_ptr();
        for q in 0..t.pairs {
            let b0: __m512bh = std::mem::transmute(_mm512_loadu_si512(b.add(q * NR).cast()));
            let b1: __m512bh = std::mem::transmute(_mm512_loadu_si512(b.add(q * NR + 16).cast()));
            for (r, acc) in acc.iter_mut().enumerate() {
                let x: __m512bh =
                    std::mem::transmute(_mm512_set1_epi32(*a.add(r * t.pairs + q) as i32));
                acc[0] = _mm512_dpbf16_ps(acc[0], x, b0);
                acc[1] = _mm512_dpbf16_ps(acc[1], x, b1);
            }
        }
        let mut row = [0f32; NR];
        for (r, acc) in acc.iter().enumerate() {
            _mm512_storeu_ps(row.as_mut_ptr(), acc[0]);
            _mm512_storeu_ps(row.as_mut_ptr().add(16), acc[1]);
            let row = &mut row[..t.cols];
            if let Some(bias) = ep.bias {
                row.iter_mut()
                    .zip(&bias[t.col0..])
                    .for_each(|(v, b)| *v += b);
            }
            if let Some(act) = ep.act {
                act.apply_in_place(row);
            }
            let at = (t.row0 + r) * t.n + t.col0;
            if let Some(res) = ep.residual {
                row.iter_mut().zip(&res[at..]).for_each(|(v, r)| *v += r);
            }
            std::ptr::copy_nonoverlapping(row.as_ptr(), dst.0.add(at), t.cols);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(len: usize, seed: u32) -> Vec<f32> {
        // A small LCG: values in [-1, 1) with no two rows alike.
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(12345);
        (0..len)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (s >> 8) as f32 / (1u32 << 23) as f32 - 1.0
            })
            .collect()
    }

    /// Whether the kernel can run here; where it cannot, that must be because the CPU lacks the
    /// instructions or `CLIPGUIDE_ISA` caps them (the layer tests in `ops` then check that a bf16
    /// request gives the f32 result).
    fn kernel_runs_here() -> bool {
        #[cfg(target_arch = "x86_64")]
        let cpu_has = std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bf16");
        #[cfg(not(target_arch = "x86_64"))]
        let cpu_has = false;
        assert_eq!(
            available(),
            cpu_has && crate::ops::isa_allows_avx512(),
            "bf16 kernel availability disagrees with the CPU flags and CLIPGUIDE_ISA"
        );
        available()
    }

    /// The product of the bf16-rounded operands, summed in f64.
    fn reference(x: &[f32], m: usize, w: &[f32], n: usize, k: usize) -> Vec<f32> {
        let mut out = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k)
                    .map(|p| {
                        round_to_bf16(x[i * k + p]) as f64 * round_to_bf16(w[j * k + p]) as f64
                    })
                    .sum::<f64>() as f32;
            }
        }
        out
    }

    #[test]
    fn rounding_is_to_nearest_even() {
        // 1 + 2⁻⁸ is halfway between two bf16 values: ties go to the even one (1.0).
        assert_eq!(round_to_bf16(1.0 + 1.0 / 256.0), 1.0);
        // 1 + 3·2⁻⁸ is halfway too: the even neighbour is 1 + 2⁻⁶.
        assert_eq!(round_to_bf16(1.0 + 3.0 / 256.0), 1.0 + 1.0 / 64.0);
        assert_eq!(round_to_bf16(-2.5), -2.5);
        assert!(round_to_bf16(f32::NAN).is_nan());
    }

    #[test]
    fn matches_the_rounded_product_for_ragged_shapes() {
        if !kernel_runs_here() {
            return;
        }
        // Odd k, columns not a multiple of the panel, rows not a multiple of the tile.
        for &(m, n, k) in &[
            (1, 1, 1),
            (13, 33, 7),
            (50, 70, 96),
            (97, 64, 33),
            // Several column tasks (more than 8 panels), and k ≡ 31 (mod 32).
            (50, 300, 63),
        ] {
            let x = data(m * k, 1);
            let w = data(n * k, 2);
            let bias = data(n, 3);
            let res = data(m * n, 4);
            let packed = PackedWeight::pack(&w, n, k);
            let got = matmul(
                &x,
                m,
                &packed,
                Epilogue {
                    bias: Some(&bias),
                    act: None,
                    residual: Some(&res),
                },
            );
            let want = reference(&x, m, &w, n, k);
            for i in 0..m * n {
                let e = want[i] + bias[i % n] + res[i];
                assert!(
                    (got[i] - e).abs() <= 1e-4 * (1.0 + e.abs()),
                    "({m}, {n}, {k}) element {i}: {} vs {e}",
                    got[i]
                );
            }
        }
    }

    #[test]
    fn activation_epilogue_is_the_activation_of_the_biased_sum() {
        if !kernel_runs_here() {
            return;
        }
        let (m, n, k) = (5, 40, 16);
        let (x, w, bias) = (data(m * k, 5), data(n * k, 6), data(n, 7));
        let packed = PackedWeight::pack(&w, n, k);
        let plain = matmul(
            &x,
            m,
            &packed,
            Epilogue {
                bias: Some(&bias),
                ..Default::default()
            },
        );
        let quick_gelu = |v: f32| v / (1.0 + (-1.702 * v).exp());
        // x·Φ(x) with Φ from erf's Abramowitz–Stegun 7.1.26 (|error| < 1.5·10⁻⁷).
        let gelu = |v: f32| {
            let z = (v as f64 / std::f64::consts::SQRT_2).abs();
            let t = 1.0 / (1.0 + 0.327_591_1 * z);
            let poly = t
                * (0.254_829_592
                    + t * (-0.284_496_736
                        + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
            let erf = (1.0 - poly * (-z * z).exp()).copysign(v as f64);
            (v as f64 * 0.5 * (1.0 + erf)) as f32
        };
        for (act, f) in [
            (
                FusedActivation::QuickGelu,
                &quick_gelu as &dyn Fn(f32) -> f32,
            ),
            (FusedActivation::GeluErf, &gelu),
        ] {
            let got = matmul(
                &x,
                m,
                &packed,
                Epilogue {
                    bias: Some(&bias),
                    act: Some(act),
                    residual: None,
                },
            );
            for (p, a) in plain.iter().zip(&got) {
                let want = f(*p);
                assert!((a - want).abs() < 1e-5, "{act:?}: {a} vs {want}");
            }
        }
    }
}
