//! Half-precision products for forward-only inference: bf16 (AVX512-BF16) or fp16 (AVX512-FP16).
//!
//! Why our own kernels: the `gemm` crate has no half-precision dot-product micro-kernels, and both
//! formats do twice the multiply-adds of an f32 FMA per instruction where the CPU has them
//! (`vdpbf16ps`: 32 products per instruction; `vfmadd231ph`: 32 lanes at two per cycle on Intel
//! Sapphire Rapids). Embedding images for an index or an evaluation needs no gradient, so its
//! frozen linear layers can round their inputs and weights and sum at lower precision, as
//! PyTorch's autocast does.
//!
//! - **bf16** ([`HalfFormat::Bf16`]): 8 significant bits per operand, every sum in f32. A weight
//!   `W` [n, k] is packed once into panels of 32 output columns; inside a panel each pair of input
//!   features (2p, 2p+1) is one `u32` per column (low half feature 2p), the operand layout of
//!   `vdpbf16ps`. Activations are converted row by row into the same pairs.
//! - **fp16** ([`HalfFormat::F16`]): 11 significant bits per operand, products summed in fp16 for
//!   [`F16_CHUNK`] steps, then added into f32 sums. fp16 has a narrow range (±65504), so both
//!   operands are scaled by powers of two (exact) before rounding: the weight so its largest entry
//!   is in [1, 2), each activation row so its largest is in [2¹³, 2¹⁴) / [`F16_CHUNK`]; after
//!   rounding a product is at most 2¹⁵ / [`F16_CHUNK`], so a chunk's sum is at most 2¹⁵ (rounding
//!   is monotone and those sums are exact in fp16), and the f32 flush undoes both scales. Panels hold 64 output columns, one `u16` per
//!   column and feature (two columns per `u32`); each activation is stored twice in a `u32` so a
//!   32-bit broadcast (a plain load on Intel, where a 16-bit one needs a shuffle) fills a register.
//!
//! Either way a panel step is 32 `u32`s, and a micro-kernel keeps an `R`×panel tile of sums in
//! registers (`R` ≤ [`MR`]) over the whole `k`, then applies the [`Epilogue`] (bias, activation,
//! residual) while the tile is still in cache, so those cost no extra pass over memory.

use rayon::prelude::*;

use crate::ops::FusedActivation;

/// `u32`s per panel step: two 16-lane registers (32 bf16 columns of pairs, or 64 fp16 columns).
const STEP: usize = 32;
/// Rows per micro-tile: 12 × 2 accumulators + 2 weight registers + 1 broadcast ≤ 32 registers.
const MR: usize = 12;
/// Rows per parallel task (a multiple of [`MR`]): its converted activations stay in L2 while every
/// panel of the task's columns passes by.
const ROWS_PER_TASK: usize = 4 * MR;
/// Panels per parallel task.
const PANELS_PER_TASK: usize = 8;
/// fp16 products summed in fp16 before they join the f32 sums. Shorter chunks round less and
/// flush more often; BENCHMARKS.md ("fp16 embedding path") has the measured choice.
pub const F16_CHUNK: usize = 128;
/// Each activation row is scaled so its largest entry is below this and each weight so its
/// largest is below 2: rounded to fp16 they are at most this and 2, so a chunk's sum is at most
/// [`F16_CHUNK`] · 2 · 2¹⁴ / [`F16_CHUNK`] = 2¹⁵, clear of fp16's 65504.
const F16_ROW_TOP: f32 = (1 << 14) as f32 / F16_CHUNK as f32;

/// The 16-bit format of the products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HalfFormat {
    /// bfloat16 operands, f32 sums (AVX512-BF16).
    Bf16,
    /// IEEE fp16 operands, fp16 sums over [`F16_CHUNK`] steps then f32 (AVX512-FP16).
    F16,
}

impl HalfFormat {
    /// Whether this CPU runs the format's kernel: AVX-512F and the format's extension, and
    /// `CLIPGUIDE_ISA` does not cap the kernels below AVX-512 (see [`crate::ops::isa`]).
    pub fn available(self) -> bool {
        static OK: std::sync::OnceLock<[bool; 2]> = std::sync::OnceLock::new();
        let ok = OK.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            {
                let base = crate::ops::isa_allows_avx512()
                    && std::arch::is_x86_feature_detected!("avx512f");
                [
                    base && std::arch::is_x86_feature_detected!("avx512bf16"),
                    base && std::arch::is_x86_feature_detected!("avx512fp16"),
                ]
            }
            #[cfg(not(target_arch = "x86_64"))]
            {
                [false, false]
            }
        });
        ok[self as usize]
    }

    /// Output columns per packed panel.
    fn panel_cols(self) -> usize {
        match self {
            Self::Bf16 => STEP,
            Self::F16 => 2 * STEP,
        }
    }

    /// Panel steps for `k` input features: pairs for bf16, single features for fp16.
    fn steps(self, k: usize) -> usize {
        match self {
            Self::Bf16 => k.div_ceil(2),
            Self::F16 => k,
        }
    }
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

/// f32 → IEEE fp16 bits, rounding to nearest even, subnormals kept, overflow to ±∞ (what
/// `vcvtps2phx` does). Packing runs once per weight, so a portable version serves.
fn f16_bits(x: f32) -> u16 {
    let b = x.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let abs = b & 0x7fff_ffff;
    if abs > 0x7f80_0000 {
        return sign | 0x7e00; // NaN
    }
    let exp = (abs >> 23) as i32 - 127;
    if exp > 15 {
        return sign | 0x7c00; // ±∞ (also for f32 ∞)
    }
    // Shift the 24-bit significand down to the fp16 grid: 10 fraction bits for normals, fewer
    // for subnormals (exponent below -14), then round half to even.
    let (mant, shift) = if exp >= -14 {
        ((abs & 0x007f_ffff) | 0x0080_0000, 13)
    } else {
        (
            (abs & 0x007f_ffff) | 0x0080_0000,
            (13 + (-14 - exp)).min(25) as u32,
        )
    };
    if abs < 0x3300_0000 {
        return sign; // below half the smallest subnormal
    }
    let half = 1u32 << (shift - 1);
    let rest = mant & ((1u32 << shift) - 1);
    let mut q = mant >> shift;
    if rest > half || (rest == half && q & 1 == 1) {
        q += 1;
    }
    // For normals q carries the implicit bit (1 << 10); adding the biased exponent's field
    // moves a carry out of the fraction into the exponent, as rounding up should.
    let bits = if exp >= -14 {
        (((exp + 14) as u32) << 10) + q
    } else {
        q
    };
    sign | bits as u16
}

/// The fp16 value of `x`, as f32 (for tests and reference sums).
pub fn round_to_f16(x: f32) -> f32 {
    let h = f16_bits(x) as u32;
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let (e, f) = ((h >> 10) & 0x1f, h & 0x3ff);
    sign * match e {
        0 => f as f32 * 2f32.powi(-24),
        31 if f == 0 => f32::INFINITY,
        31 => f32::NAN,
        _ => (1.0 + f as f32 / 1024.0) * 2f32.powi(e as i32 - 15),
    }
}

/// The power of two `s` with `top · s` in [`lo`, 2·`lo`) (1 for a zero or non-finite `top`),
/// within f32's normal powers of two (2⁻¹²⁶ to 2¹²⁷): a `top` too small or too large to reach the
/// interval gets the nearest of those, so nothing overflows and the caller's products stay finite.
fn pow2_scale(top: f32, lo: f32) -> f32 {
    if top == 0.0 || !top.is_finite() {
        return 1.0;
    }
    let e = (lo.log2().floor() - top.log2().floor()) as i32;
    let pow2 = |e: i32| f32::from_bits(((e.clamp(-126, 127) + 127) as u32) << 23);
    let mut e = e.clamp(-126, 127);
    // log2 may round across a power of two: one step either way corrects it.
    if top * pow2(e) >= 2.0 * lo && e > -126 {
        e -= 1;
    }
    if top * pow2(e) < lo && e < 127 {
        e += 1;
    }
    pow2(e)
}

/// A weight `W` [n, k] packed for [`matmul`]; see the module docs for the layout.
pub struct PackedWeight {
    format: HalfFormat,
    n: usize,
    k: usize,
    steps: usize,
    /// What the packed values were multiplied by (a power of two; 1 for bf16).
    scale: f32,
    data: Vec<u32>,
}

impl std::fmt::Debug for PackedWeight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PackedWeight {{ format: {:?}, n: {}, k: {} }}",
            self.format, self.n, self.k
        )
    }
}

impl PackedWeight {
    /// Packs a row-major `w` [n, k] (a linear layer's [out, in] weight) in `format`.
    pub fn pack(w: &[f32], n: usize, k: usize, format: HalfFormat) -> Self {
        assert_eq!(w.len(), n * k, "weight is not [n, k]");
        let steps = format.steps(k);
        let cols = format.panel_cols();
        let scale = match format {
            HalfFormat::Bf16 => 1.0,
            HalfFormat::F16 => pow2_scale(w.iter().fold(0f32, |m, v| m.max(v.abs())), 1.0),
        };
        let mut data = vec![0u32; n.div_ceil(cols) * steps * STEP];
        data.par_chunks_mut(steps * STEP)
            .enumerate()
            .for_each(|(p, panel)| {
                for j in 0..cols.min(n - p * cols) {
                    let row = &w[(p * cols + j) * k..][..k];
                    match format {
                        HalfFormat::Bf16 => {
                            for (q, pair) in row.chunks(2).enumerate() {
                                let lo = bf16_bits(pair[0]) as u32;
                                let hi = pair.get(1).map_or(0, |&v| bf16_bits(v) as u32);
                                panel[q * STEP + j] = lo | (hi << 16);
                            }
                        }
                        HalfFormat::F16 => {
                            // Column j is the (j % 2) half of u32 j / 2 in each step.
                            for (q, &v) in row.iter().enumerate() {
                                let h = f16_bits(v * scale) as u32;
                                panel[q * STEP + j / 2] |= h << (16 * (j % 2));
                            }
                        }
                    }
                }
            });
        Self {
            format,
            n,
            k,
            steps,
            scale,
            data,
        }
    }

    pub fn format(&self) -> HalfFormat {
        self.format
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

/// Activations converted for one format: `a` [m, steps] rows and, for fp16, what each row's
/// sums must be multiplied by to undo both scales.
struct Converted {
    a: Vec<u32>,
    unscale: Vec<f32>,
}

/// `act(x·Wᵀ + bias) + residual` for `x` [m, k] row-major, `w` packed from [n, k]: [m, n].
///
/// Call only where `w.format().available()`; elsewhere it panics (the fused layer checks first).
pub fn matmul(x: &[f32], m: usize, w: &PackedWeight, ep: Epilogue<'_>) -> Vec<f32> {
    assert!(
        w.format.available(),
        "{:?} matmul called on a CPU without its instructions",
        w.format
    );
    let (n, k, steps) = (w.n, w.k, w.steps);
    assert_eq!(x.len(), m * k, "input is not [m, k]");
    assert!(ep.bias.is_none_or(|b| b.len() == n), "bias is not [n]");
    assert!(
        ep.residual.is_none_or(|r| r.len() == m * n),
        "residual is not [m, n]"
    );
    let conv = match w.format {
        HalfFormat::Bf16 => Converted {
            a: to_pairs(x, m, k, steps),
            unscale: Vec::new(),
        },
        HalfFormat::F16 => to_f16_rows(x, m, k, w.scale),
    };
    let mut out: Vec<f32> = Vec::with_capacity(m * n);
    let dst = Out(out.as_mut_ptr());
    let cols_per_panel = w.format.panel_cols();
    let panels = n.div_ceil(cols_per_panel);
    let col_tasks = panels.div_ceil(PANELS_PER_TASK);
    let tasks = m.div_ceil(ROWS_PER_TASK) * col_tasks;
    (0..tasks).into_par_iter().for_each(|t| {
        let (rb, cb) = (t / col_tasks, t % col_tasks);
        let rows = rb * ROWS_PER_TASK..((rb + 1) * ROWS_PER_TASK).min(m);
        let panel_range = cb * PANELS_PER_TASK..((cb + 1) * PANELS_PER_TASK).min(panels);
        for p in panel_range {
            let b = &w.data[p * steps * STEP..][..steps * STEP];
            let col0 = p * cols_per_panel;
            let cols = cols_per_panel.min(n - col0);
            let mut r0 = rows.start;
            while r0 < rows.end {
                let r = MR.min(rows.end - r0);
                let tile = Tile {
                    a: &conv.a[r0 * steps..(r0 + r) * steps],
                    unscale: conv.unscale.get(r0..r0 + r).unwrap_or(&[]),
                    steps,
                    b,
                    row0: r0,
                    col0,
                    cols,
                    n,
                };
                // SAFETY: `available` checked the CPU features; the tile covers rows r0..r0+r and
                // columns col0..col0+cols of `out`, which no other task writes.
                unsafe { tile.run(w.format, r, dst, &ep) };
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

/// Rows of `x` [m, k] as scaled fp16, each stored twice in a `u32` [m, k], and each row's
/// unscale factor (see the module docs).
fn to_f16_rows(x: &[f32], m: usize, k: usize, w_scale: f32) -> Converted {
    let mut a: Vec<u32> = Vec::with_capacity(m * k);
    let mut unscale = vec![0f32; m];
    a.spare_capacity_mut()
        .par_chunks_mut(k * 16)
        .zip(unscale.par_chunks_mut(16))
        .zip(x.par_chunks(k * 16))
        .for_each(|((dst, un), src)| {
            for ((d, u), s) in dst.chunks_mut(k).zip(un).zip(src.chunks(k)) {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: only reached through `matmul`, after `available`; the conversion
                // writes every element of `d`.
                unsafe {
                    let scale = pow2_scale(x86::max_abs(s), F16_ROW_TOP / 2.0);
                    // In f64: the two scales' product may leave f32's range.
                    *u = (1.0 / (scale as f64 * w_scale as f64)) as f32;
                    x86::row_to_f16_doubled(s, scale, d)
                }
                #[cfg(not(target_arch = "x86_64"))]
                unreachable!("fp16 kernel on a CPU without AVX512-FP16: {s:?} {d:?} {u}");
            }
        });
    // SAFETY: the rows above wrote all m·k elements.
    unsafe { a.set_len(m * k) };
    Converted { a, unscale }
}

/// One micro-tile's operands: `a` [r, steps] converted rows, `b` one packed panel.
struct Tile<'a> {
    a: &'a [u32],
    /// fp16 only: [r] factors undoing the scales.
    unscale: &'a [f32],
    steps: usize,
    b: &'a [u32],
    row0: usize,
    col0: usize,
    cols: usize,
    n: usize,
}

impl Tile<'_> {
    /// # Safety
    /// The CPU has `format`'s instructions; `dst` is an [m, n] buffer whose rows
    /// `row0..row0 + r`, columns `col0..col0 + cols`, nobody else touches meanwhile.
    unsafe fn run(&self, format: HalfFormat, r: usize, dst: Out, ep: &Epilogue<'_>) {
        #[cfg(target_arch = "x86_64")]
        {
            macro_rules! dispatch {
                ($kernel:ident; $($n:literal)*) => {
                    match r {
                        $($n => x86::$kernel::<$n>(self, dst, ep),)*
                        _ => unreachable!("tile of {r} rows"),
                    }
                };
            }
            match format {
                HalfFormat::Bf16 => dispatch!(tile_bf16; 1 2 3 4 5 6 7 8 9 10 11 12),
                HalfFormat::F16 => dispatch!(tile_f16; 1 2 3 4 5 6 7 8 9 10 11 12),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!(
            "{format:?} kernel on a CPU without its instructions: {r} {} {}",
            dst.0 as usize,
            ep.bias.is_some()
        )
    }

    /// Bias, activation and residual on one row of sums, written into `dst`.
    ///
    /// # Safety
    /// As [`Self::run`], for row `r` of the tile.
    unsafe fn finish_row(&self, r: usize, row: &[f32], dst: Out, ep: &Epilogue<'_>) {
        let at = (self.row0 + r) * self.n + self.col0;
        // Uninitialised until written: `finish_row_into` writes every element first.
        let out = std::slice::from_raw_parts_mut(
            dst.0.add(at).cast::<std::mem::MaybeUninit<f32>>(),
            self.cols,
        );
        crate::ops::finish_row_into(
            &row[..self.cols],
            ep.bias.map(|b| &b[self.col0..self.col0 + self.cols]),
            ep.act,
            ep.residual.map(|res| &res[at..at + self.cols]),
            out,
        );
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Epilogue, Out, Tile, F16_CHUNK, STEP};
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

    /// The largest |v| of a row (a NaN may or may not be passed over: that row's outputs are NaN
    /// either way).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn max_abs(src: &[f32]) -> f32 {
        let mut top = _mm512_setzero_ps();
        let mut chunks = src.chunks_exact(16);
        for c in &mut chunks {
            top = _mm512_max_ps(top, _mm512_abs_ps(_mm512_loadu_ps(c.as_ptr())));
        }
        let tail = chunks.remainder().iter().fold(0f32, |t, v| t.max(v.abs()));
        _mm512_reduce_max_ps(top).max(tail)
    }

    /// One row of f32, times `scale`, into fp16 stored twice per `u32`, 16 values per
    /// `vcvtps2phx`.
    #[target_feature(enable = "avx512f,avx512fp16")]
    pub(super) unsafe fn row_to_f16_doubled(
        src: &[f32],
        scale: f32,
        dst: &mut [std::mem::MaybeUninit<u32>],
    ) {
        let s = _mm512_set1_ps(scale);
        let mut chunks = src.chunks_exact(16);
        let mut out = dst.chunks_exact_mut(16);
        for (c, d) in (&mut chunks).zip(&mut out) {
            let h = _mm512_castph_si512(_mm512_castph256_ph512(_mm512_cvtxps_ph(_mm512_mul_ps(
                _mm512_loadu_ps(c.as_ptr()),
                s,
            ))));
            // Each 16-bit value into both halves of its 32-bit lane.
            let w = _mm512_cvtepu16_epi32(_mm512_castsi512_si256(h));
            _mm512_storeu_si512(
                d.as_mut_ptr().cast(),
                _mm512_or_si512(w, _mm512_slli_epi32(w, 16)),
            );
        }
        for (v, d) in chunks.remainder().iter().zip(out.into_remainder()) {
            let h = super::f16_bits(v * scale) as u32;
            d.write(h | (h << 16));
        }
    }

    /// The `R`-row bf16 micro-kernel: sums over all pairs in registers, then the epilogue.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn tile_bf16<const R: usize>(t: &Tile<'_>, dst: Out, ep: &Epilogue<'_>) {
        let mut acc = [[_mm512_setzero_ps(); 2]; R];
        let a = t.a.as_ptr();
        let b = t.b.as_ptr();
        for q in 0..t.steps {
            let b0: __m512bh = std::mem::transmute(_mm512_loadu_si512(b.add(q * STEP).cast()));
            let b1: __m512bh = std::mem::transmute(_mm512_loadu_si512(b.add(q * STEP + 16).cast()));
            for (r, acc) in acc.iter_mut().enumerate() {
                let x: __m512bh =
                    std::mem::transmute(_mm512_set1_epi32(*a.add(r * t.steps + q) as i32));
                acc[0] = _mm512_dpbf16_ps(acc[0], x, b0);
                acc[1] = _mm512_dpbf16_ps(acc[1], x, b1);
            }
        }
        let mut row = [0f32; STEP];
        for (r, acc) in acc.iter().enumerate() {
            _mm512_storeu_ps(row.as_mut_ptr(), acc[0]);
            _mm512_storeu_ps(row.as_mut_ptr().add(16), acc[1]);
            t.finish_row(r, &row, dst, ep);
        }
    }

    /// fp16 sums of 32 lanes into f32 sums: `sums[0..32] += unscale · h` (lanes in order).
    #[inline]
    #[target_feature(enable = "avx512f,avx512fp16")]
    unsafe fn flush(h: __m512h, unscale: __m512, sums: *mut f32) {
        let bits = _mm512_castph_si512(h);
        let lo = _mm512_cvtxph_ps(_mm256_castsi256_ph(_mm512_castsi512_si256(bits)));
        let hi = _mm512_cvtxph_ps(_mm256_castsi256_ph(_mm512_extracti64x4_epi64::<1>(bits)));
        _mm512_storeu_ps(sums, _mm512_fmadd_ps(lo, unscale, _mm512_loadu_ps(sums)));
        _mm512_storeu_ps(
            sums.add(16),
            _mm512_fmadd_ps(hi, unscale, _mm512_loadu_ps(sums.add(16))),
        );
    }

    /// The `R`-row fp16 micro-kernel: fp16 sums in registers over [`F16_CHUNK`] steps, flushed
    /// into f32 sums (unscaled) in a stack tile, then the epilogue.
    #[target_feature(enable = "avx512f,avx512fp16")]
    pub(super) unsafe fn tile_f16<const R: usize>(t: &Tile<'_>, dst: Out, ep: &Epilogue<'_>) {
        let mut sums = [[0f32; 2 * STEP]; R];
        let a = t.a.as_ptr();
        let b = t.b.as_ptr();
        let mut q0 = 0;
        while q0 < t.steps {
            let q1 = (q0 + F16_CHUNK).min(t.steps);
            let mut acc = [[_mm512_setzero_ph(); 2]; R];
            for q in q0..q1 {
                let b0 = _mm512_castsi512_ph(_mm512_loadu_si512(b.add(q * STEP).cast()));
                let b1 = _mm512_castsi512_ph(_mm512_loadu_si512(b.add(q * STEP + 16).cast()));
                for (r, acc) in acc.iter_mut().enumerate() {
                    let x = _mm512_castsi512_ph(_mm512_set1_epi32(*a.add(r * t.steps + q) as i32));
                    acc[0] = _mm512_fmadd_ph(x, b0, acc[0]);
                    acc[1] = _mm512_fmadd_ph(x, b1, acc[1]);
                }
            }
            for r in 0..R {
                // Register 0 holds columns 0..32 (u32s 0..16), register 1 columns 32..64. The
                // factor is broadcast here, not kept: the accumulators need the registers.
                let unscale = _mm512_set1_ps(t.unscale[r]);
                flush(acc[r][0], unscale, sums[r].as_mut_ptr());
                flush(acc[r][1], unscale, sums[r].as_mut_ptr().add(STEP));
            }
            q0 = q1;
        }
        for (r, row) in sums.iter_mut().enumerate() {
            t.finish_row(r, row, dst, ep);
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

    /// The formats whose kernels run here. Where one does not, that must be because the CPU
    /// lacks the instructions or `CLIPGUIDE_ISA` caps them (the layer tests in `ops` then check
    /// that a half-precision request gives the f32 result).
    fn formats_here() -> Vec<HalfFormat> {
        [HalfFormat::Bf16, HalfFormat::F16]
            .into_iter()
            .filter(|&f| {
                #[cfg(target_arch = "x86_64")]
                let cpu_has = std::arch::is_x86_feature_detected!("avx512f")
                    && match f {
                        HalfFormat::Bf16 => std::arch::is_x86_feature_detected!("avx512bf16"),
                        HalfFormat::F16 => std::arch::is_x86_feature_detected!("avx512fp16"),
                    };
                #[cfg(not(target_arch = "x86_64"))]
                let cpu_has = false;
                assert_eq!(
                    f.available(),
                    cpu_has && crate::ops::isa_allows_avx512(),
                    "{f:?} kernel availability disagrees with the CPU flags and CLIPGUIDE_ISA"
                );
                f.available()
            })
            .collect()
    }

    /// The product of the operands rounded to `format` (bf16 as they are; fp16 after the
    /// power-of-two scales, which are exact), summed in f64.
    fn reference(
        x: &[f32],
        m: usize,
        w: &[f32],
        n: usize,
        k: usize,
        format: HalfFormat,
    ) -> Vec<f32> {
        let top = |v: &[f32]| v.iter().fold(0f32, |t, a| t.max(a.abs()));
        let w_scale = pow2_scale(top(w), 1.0);
        let mut out = vec![0f32; m * n];
        for i in 0..m {
            let xr = &x[i * k..][..k];
            let x_scale = pow2_scale(top(xr), F16_ROW_TOP / 2.0);
            for j in 0..n {
                out[i * n + j] = (0..k)
                    .map(|p| match format {
                        HalfFormat::Bf16 => {
                            round_to_bf16(xr[p]) as f64 * round_to_bf16(w[j * k + p]) as f64
                        }
                        HalfFormat::F16 => {
                            round_to_f16(xr[p] * x_scale) as f64
                                * round_to_f16(w[j * k + p] * w_scale) as f64
                                / (x_scale as f64 * w_scale as f64)
                        }
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
    fn f16_rounding_is_to_nearest_even_with_subnormals_and_overflow() {
        // 1 + 2⁻¹¹ is halfway between two fp16 values: ties go to the even one (1.0).
        assert_eq!(round_to_f16(1.0 + 2f32.powi(-11)), 1.0);
        assert_eq!(
            round_to_f16(1.0 + 3.0 * 2f32.powi(-11)),
            1.0 + 2f32.powi(-9)
        );
        assert_eq!(round_to_f16(-2.5), -2.5);
        assert_eq!(round_to_f16(65504.0), 65504.0);
        // Rounding up out of the largest binade overflows.
        assert_eq!(round_to_f16(65520.0), f32::INFINITY);
        assert_eq!(round_to_f16(-1e9), f32::NEG_INFINITY);
        // The smallest subnormal, a tie below it (to zero, even) and a tie above it (to 2⁻²³).
        assert_eq!(round_to_f16(2f32.powi(-24)), 2f32.powi(-24));
        assert_eq!(round_to_f16(2f32.powi(-25)), 0.0);
        assert_eq!(round_to_f16(1.5 * 2f32.powi(-24)), 2f32.powi(-23));
        // A subnormal rounding up into the normals.
        assert_eq!(
            round_to_f16(2f32.powi(-14) * (1.0 - 2f32.powi(-12))),
            2f32.powi(-14)
        );
        assert!(round_to_f16(f32::NAN).is_nan());
    }

    #[test]
    fn f16_packing_agrees_with_the_cpu_conversion() {
        if !formats_here().contains(&HalfFormat::F16) {
            return;
        }
        // Values across fp16's range, subnormals, ties and overflow: the portable rounding used
        // to pack weights must equal `vcvtps2phx`, which converts the activations.
        let mut values = vec![
            1.0 + 2f32.powi(-11),
            1.0 + 3.0 * 2f32.powi(-11),
            65504.0,
            65519.0,
            65520.0,
            -1e9,
            2f32.powi(-24),
            2f32.powi(-25),
            2f32.powi(-25) * 1.000_001,
            1.5 * 2f32.powi(-24),
            2f32.powi(-14) * (1.0 - 2f32.powi(-12)),
            1e-40,
            -0.0,
            f32::INFINITY,
            3.0,
            -2.5,
        ];
        // The edge cases above fill one 16-lane conversion; these go through it too.
        values.extend(
            data(4096, 9)
                .iter()
                .enumerate()
                .map(|(i, v)| v * 2f32.powi((i % 48) as i32 - 30)),
        );
        assert_eq!(
            values.len() % 16,
            0,
            "every value must go through vcvtps2phx"
        );
        let mut doubled = vec![std::mem::MaybeUninit::new(0u32); values.len()];
        // SAFETY: the CPU has AVX512-FP16 (checked above).
        #[cfg(target_arch = "x86_64")]
        unsafe {
            x86::row_to_f16_doubled(&values, 1.0, &mut doubled)
        };
        // SAFETY: initialised above.
        let doubled: Vec<u32> = doubled.iter().map(|d| unsafe { d.assume_init() }).collect();
        for (v, d) in values.iter().zip(&doubled) {
            assert_eq!(d >> 16, d & 0xffff, "{v}: the two halves differ");
            assert_eq!(f16_bits(*v) as u32, d & 0xffff, "{v}");
        }
    }

    #[test]
    fn pow2_scale_reaches_its_interval_or_the_nearest_normal_power() {
        for &(top, lo) in &[
            (1.0, 1.0),
            (1.5, 1.0),
            (2.0, 1.0),
            (0.75, 64.0),
            (127.99, 64.0),
            (1e-30, 64.0),
            (1e-38, 64.0),
            (1e-44, 64.0),
            (3e38, 1.0),
            (f32::MAX, 64.0),
            (f32::MIN_POSITIVE, 1.0),
        ] {
            let s = pow2_scale(top, lo);
            assert!(
                s.is_normal() && s.to_bits() & 0x007f_ffff == 0,
                "{top}, {lo}: {s} is not a normal power of two"
            );
            let scaled = top as f64 * s as f64;
            let (lo, max_s, min_s) = (lo as f64, 2f32.powi(127), 2f32.powi(-126));
            assert!(
                (lo..2.0 * lo).contains(&scaled)
                    || (scaled < lo && s == max_s)
                    || (scaled >= 2.0 * lo && s == min_s),
                "{top}, {lo}: scale {s} gives {scaled}"
            );
        }
        assert_eq!(pow2_scale(0.0, 64.0), 1.0);
        assert_eq!(pow2_scale(f32::INFINITY, 64.0), 1.0);
    }

    /// The overflow bound at its edge: activations that round up to the row bound and weights
    /// that round up to 2 make every chunk's fp16 sum exactly 2¹⁵, which must stay finite; and
    /// rows far outside fp16's range are scaled into it.
    #[test]
    fn f16_sums_at_the_bound_and_extreme_rows_stay_finite() {
        if !formats_here().contains(&HalfFormat::F16) {
            return;
        }
        let k = 3 * F16_CHUNK;
        let top = F16_ROW_TOP * (1.0 - 1e-4);
        let mut x = vec![top; k];
        x.extend(vec![1e30f32; k]);
        x.extend(vec![1e-30f32; k]);
        let w = vec![1.9999f32; k];
        let got = matmul(
            &x,
            3,
            &PackedWeight::pack(&w, 1, k, HalfFormat::F16),
            Epilogue::default(),
        );
        for (row, value) in [(0, top), (1, 1e30), (2, 1e-30)] {
            let want = k as f64 * value as f64 * 1.9999;
            // Equal positive products are fp16 summation's worst case: each add rounds the same
            // way once the sum's ulp passes the product's remainder (0.65 % off here; the bound
            // is F16_CHUNK · 2⁻¹¹ = 6 %). Row 0's products are exact powers of two: 0.01 %.
            assert!(
                got[row].is_finite() && ((got[row] as f64 - want) / want).abs() < 1e-2,
                "row {row}: {} vs {want}",
                got[row]
            );
        }
    }

    #[test]
    fn matches_the_rounded_product_for_ragged_shapes() {
        for format in formats_here() {
            // Odd k, columns not a multiple of the panel, rows not a multiple of the tile.
            for &(m, n, k) in &[
                (1, 1, 1),
                (13, 33, 7),
                (50, 70, 96),
                (97, 64, 33),
                // Several column tasks (more than 8 panels), k ≡ 31 (mod 32), several fp16 chunks.
                (50, 300, 63),
                (30, 130, 200),
            ] {
                let mut x = data(m * k, 1);
                // Rows of very different sizes: the fp16 row scales must follow each.
                for (i, v) in x.iter_mut().enumerate() {
                    *v *= 2f32.powi((i / k % 9) as i32 * 3 - 12);
                }
                let w = data(n * k, 2);
                let bias = data(n, 3);
                let res = data(m * n, 4);
                let packed = PackedWeight::pack(&w, n, k, format);
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
                let want = reference(&x, m, &w, n, k, format);
                for i in 0..m * n {
                    let e = want[i] + bias[i % n] + res[i];
                    // A recursive sum of n terms in a format of unit roundoff u is off by at most
                    // n·u·Σ|term| (Higham): bf16 sums all k products in f32; fp16 sums
                    // F16_CHUNK products in fp16, then the chunks in f32. Σ|product| of the
                    // unrounded operands, 1 % up for their rounding.
                    let (r, j) = (i / n, i % n);
                    let abs_sum: f32 = 1.01
                        * (0..k)
                            .map(|p| (x[r * k + p] * w[j * k + p]).abs())
                            .sum::<f32>();
                    let f32_sums = k as f32 * 2f32.powi(-24) * abs_sum;
                    let tol = 1e-6 * (1.0 + e.abs())
                        + f32_sums
                        + match format {
                            HalfFormat::Bf16 => 0.0,
                            HalfFormat::F16 => F16_CHUNK as f32 * 2f32.powi(-11) * abs_sum,
                        };
                    assert!(
                        (got[i] - e).abs() <= tol,
                        "{format:?} ({m}, {n}, {k}) element {i}: {} vs {e}",
                        got[i]
                    );
                }
            }
        }
    }

    #[test]
    fn activation_epilogue_is_the_activation_of_the_biased_sum() {
        for format in formats_here() {
            epilogue_case(format);
        }
    }

    fn epilogue_case(format: HalfFormat) {
        let (m, n, k) = (5, 40, 16);
        let (x, w, bias) = (data(m * k, 5), data(n * k, 6), data(n, 7));
        let packed = PackedWeight::pack(&w, n, k, format);
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
                assert!((a - want).abs() < 1e-5, "{format:?} {act:?}: {a} vs {want}");
            }
        }
    }
}
