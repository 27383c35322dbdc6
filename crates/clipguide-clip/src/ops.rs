//! Fused CPU kernels with hand-written backward passes for the towers' hot spots.
//!
//! Why not candle's ops: `candle_nn::ops::layer_norm` and `softmax_last_dim` are fused but have no
//! backward (the gradient to the pixels silently vanishes), and their differentiable composites
//! (`layer_norm_slow`, `softmax`) run 6–10 separate passes, each allocating and each recording a
//! backward node. candle's matmul backward also always computes the gradient of *both* operands,
//! so with frozen weights every linear layer paid for a weight gradient nobody reads (for a
//! batched input, against a weight broadcast over the batch and summed again).
//!
//! Each op here is one pass forward and one pass backward, f32 on the CPU. Callers use
//! [`layer_norm`], [`softmax_last_dim`], [`quick_gelu`] and [`linear`], which fall back to
//! candle's composites on other devices and dtypes, so the same model code runs everywhere.

use crate::half_gemm::{HalfFormat, PackedWeight};
use crate::sgemm::View;
use candle_core::{
    CpuStorage, CustomOp1, CustomOp3, DType, Layout, Result, Shape, Storage, Tensor, D,
};
use rayon::prelude::*;

/// Rows per rayon task: enough work per task that scheduling stays negligible.
const MIN_ROWS_PER_TASK: usize = 16;

/// `CLIPGUIDE_UNFUSED=1` switches every op here back to candle's composites (and linear layers to
/// candle-nn's batched matmul): the "before" side of benchmarks, and a way to rule these kernels
/// out when debugging.
pub fn fused_enabled() -> bool {
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ENABLED.get_or_init(|| {
        std::env::var_os("CLIPGUIDE_UNFUSED").is_none_or(|v| v.is_empty() || v == "0")
    })
}

/// The vector instruction set this crate's CPU kernels run with here: `"avx512"` (its f32 GEMMs
/// on the `gemm` crate's AVX-512 micro-kernels, through [`crate::sgemm`], and AVX-512 elementwise
/// loops), `"avx2"` (AVX2 + FMA), or `"baseline"` (scalar GEMM, SSE2 loops). Chosen once per
/// process from the CPU and `CLIPGUIDE_ISA` (see [`isa_request`]); unset, AVX-512 runs where the
/// CPU executes 512-bit FMAs at full width ([`full_width_avx512`]) and AVX2 elsewhere. candle's
/// own matmul (training, unfused fallbacks) is not steered by this: the `gemm` crate takes its
/// AVX-512 kernels on every CPU that has them.
pub fn isa() -> &'static str {
    // Asked once: the elementwise kernels consult it on every call.
    static ISA: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();
    ISA.get_or_init(|| {
        use crate::sgemm::Kernels;
        let request = isa_request().unwrap_or(IsaRequest::Auto);
        let (avx512, avx2) = (Kernels::Avx512.runs_here(), Kernels::Avx2.runs_here());
        match request {
            IsaRequest::Avx512 if avx512 => "avx512",
            IsaRequest::Auto if avx512 && full_width_avx512() => "avx512",
            IsaRequest::Baseline => "baseline",
            _ if avx2 => "avx2",
            _ => "baseline",
        }
    })
}

/// Whether this CPU has AVX-512 and executes 512-bit FMAs at full width, so that AVX-512 GEMM
/// micro-kernels do more work per cycle than AVX2 ones (twice as much on cores with two 512-bit
/// FMA units, as much on Intel parts with one, such as some Xeon Silver: never less): Intel's
/// AVX-512 cores, and AMD from Zen 5 (family 0x1A) on. AMD's Zen 4 (family 0x19) splits each
/// 512-bit operation into two 256-bit halves, and there the AVX2 kernels measured faster
/// (BENCHMARKS.md, "AVX-512 kernels"). Other vendors: no.
pub fn full_width_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            return false;
        }
        // SAFETY: cpuid leaves 0 and 1 exist on every x86_64 CPU (`__cpuid` is a safe fn from
        // Rust 1.89 on; the block keeps older compilers building).
        #[allow(unused_unsafe)]
        let (vendor, leaf1) = unsafe {
            let l0 = std::arch::x86_64::__cpuid(0);
            let mut v = [0u8; 12];
            v[..4].copy_from_slice(&l0.ebx.to_le_bytes());
            v[4..8].copy_from_slice(&l0.edx.to_le_bytes());
            v[8..].copy_from_slice(&l0.ecx.to_le_bytes());
            (v, std::arch::x86_64::__cpuid(1).eax)
        };
        // The displayed family: base family, plus the extended family when the base is 0xF.
        let base = (leaf1 >> 8) & 0xF;
        let family = if base == 0xF {
            base + ((leaf1 >> 20) & 0xFF)
        } else {
            base
        };
        match &vendor {
            b"GenuineIntel" => true,
            b"AuthenticAMD" => family >= 0x1A,
            _ => false,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// What `CLIPGUIDE_ISA` asks of the kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsaRequest {
    /// Unset or empty: AVX-512 where the CPU runs it at full width, else AVX2.
    Auto,
    /// `avx512`: AVX-512 wherever the CPU has it (Zen 4 included).
    Avx512,
    /// `avx2`: this crate's kernels never above AVX2 + FMA (the bf16 kernel off too).
    Avx2,
    /// `baseline`: scalar GEMMs, SSE2 loops.
    Baseline,
}

/// `CLIPGUIDE_ISA`: `avx512` or `avx2` forces that path (on a CPU that has it), `baseline` the
/// scalar one, so one machine tests every dispatch path of the kernels. Unset or empty means
/// [`IsaRequest::Auto`]. An unknown value is an error here (the CLI refuses it at start); the
/// kernels then run as if it were unset.
pub fn isa_request() -> std::result::Result<IsaRequest, String> {
    match std::env::var("CLIPGUIDE_ISA").as_deref() {
        Err(_) | Ok("") => Ok(IsaRequest::Auto),
        Ok("avx512") => Ok(IsaRequest::Avx512),
        Ok("avx2") => Ok(IsaRequest::Avx2),
        Ok("baseline") => Ok(IsaRequest::Baseline),
        Ok(other) => Err(format!(
            "CLIPGUIDE_ISA={other:?} is not an instruction set the kernels know: use avx512, avx2 or baseline (or unset it)"
        )),
    }
}

/// Whether `CLIPGUIDE_ISA` lets kernels use AVX-512 (the half-precision kernels' condition; the
/// bf16 one runs on Zen 4 too, where its `vdpbf16ps` beats the f32 kernels either way).
pub(crate) fn isa_allows_avx512() -> bool {
    matches!(
        isa_request().unwrap_or(IsaRequest::Auto),
        IsaRequest::Auto | IsaRequest::Avx512
    )
}

/// How a frozen forward pass multiplies by its weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// f32 products and sums: the reference, and what every gradient goes through.
    #[default]
    F32,
    /// bf16 products with f32 sums in the linear layers (layer norms, attention and activations
    /// stay f32), as PyTorch's bf16 autocast: about twice the multiply throughput on CPUs with
    /// AVX512-BF16 ([`HalfFormat::Bf16`]). Applies to forward passes that need no gradient;
    /// elsewhere, and on other CPUs, the pass runs in f32.
    Bf16,
    /// fp16 products in the linear layers, summed in fp16 for 128 steps and then in f32
    /// (operands scaled by powers of two so nothing overflows): twice the f32 multiply rate on
    /// CPUs with AVX512-FP16 such as Intel Sapphire Rapids ([`HalfFormat::F16`]), and 3 more
    /// significant bits per operand than bf16. Same conditions as `Bf16`.
    F16,
}

impl Precision {
    /// The 16-bit format of the linear layers' products, if any.
    pub fn half_format(self) -> Option<HalfFormat> {
        match self {
            Self::F32 => None,
            Self::Bf16 => Some(HalfFormat::Bf16),
            Self::F16 => Some(HalfFormat::F16),
        }
    }

    /// The 16-bit format that really runs on this CPU (`None`: the pass runs in f32).
    pub fn half_format_here(self) -> Option<HalfFormat> {
        self.half_format().filter(|f| f.available())
    }
}

fn fused_ok(xs: &Tensor) -> bool {
    fused_enabled() && xs.device().is_cpu() && xs.dtype() == DType::F32
}

/// The contiguous f32 data of a CPU tensor's storage under `layout`.
fn contiguous_f32<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    let data = s.as_slice::<f32>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("fused op: input must be contiguous"),
    }
}

fn tensor_f32(t: &Tensor) -> Result<Vec<f32>> {
    t.flatten_all()?.to_vec1::<f32>()
}

/// Runs `f` on a contiguous CPU f32 tensor's data without copying it.
pub(crate) fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(s) => Ok(f(contiguous_f32(s, layout)?)),
        _ => candle_core::bail!("fused op: expected a CPU tensor"),
    }
}

// ---------------------------------------------------------------------------------------------
// Layer norm

struct LayerNormOp {
    eps: f32,
}

/// Mean and 1/σ of one row (two passes: stable for rows with a large mean).
fn row_stats(row: &[f32], eps: f32) -> (f32, f32) {
    let n = row.len() as f32;
    let mean = row.iter().sum::<f32>() / n;
    let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    (mean, 1.0 / (var + eps).sqrt())
}

impl CustomOp3 for LayerNormOp {
    fn name(&self) -> &'static str {
        "clipguide-layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s1, l1)?;
        let w = contiguous_f32(s2, l2)?;
        let b = contiguous_f32(s3, l3)?;
        let d = w.len();
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(d * MIN_ROWS_PER_TASK)
            .zip(x.par_chunks(d * MIN_ROWS_PER_TASK))
            .for_each(|(o, x)| {
                for (o, x) in o.chunks_mut(d).zip(x.chunks(d)) {
                    let (mean, rstd) = row_stats(x, self.eps);
                    for i in 0..d {
                        o[i] = (x[i] - mean) * rstd * w[i] + b[i];
                    }
                }
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let d = w.elem_count();
        let xv = tensor_f32(x)?;
        let wv = tensor_f32(w)?;
        let gv = tensor_f32(grad)?;
        let mut dx = vec![0f32; xv.len()];
        // Per-task partial sums of dw/db, reduced afterwards (deterministic: fixed chunking).
        let partial: Vec<(Vec<f32>, Vec<f32>)> = dx
            .par_chunks_mut(d * MIN_ROWS_PER_TASK)
            .zip(xv.par_chunks(d * MIN_ROWS_PER_TASK))
            .zip(gv.par_chunks(d * MIN_ROWS_PER_TASK))
            .map(|((dx, x), g)| {
                let mut dw = vec![0f32; d];
                let mut db = vec![0f32; d];
                let mut xhat = vec![0f32; d];
                for ((dx, x), g) in dx.chunks_mut(d).zip(x.chunks(d)).zip(g.chunks(d)) {
                    let (mean, rstd) = row_stats(x, self.eps);
                    let (mut m1, mut m2) = (0f32, 0f32);
                    for i in 0..d {
                        xhat[i] = (x[i] - mean) * rstd;
                        let gw = g[i] * wv[i];
                        m1 += gw;
                        m2 += gw * xhat[i];
                        dw[i] += g[i] * xhat[i];
                        db[i] += g[i];
                    }
                    let (m1, m2) = (m1 / d as f32, m2 / d as f32);
                    for i in 0..d {
                        dx[i] = rstd * (g[i] * wv[i] - m1 - xhat[i] * m2);
                    }
                }
                (dw, db)
            })
            .collect();
        let mut dw = vec![0f32; d];
        let mut db = vec![0f32; d];
        for (pw, pb) in partial {
            for i in 0..d {
                dw[i] += pw[i];
                db[i] += pb[i];
            }
        }
        let dev = x.device();
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), dev)?),
            Some(Tensor::from_vec(dw, w.shape(), dev)?),
            Some(Tensor::from_vec(db, w.shape(), dev)?),
        ))
    }
}

/// Input gradient of layer norm only (frozen weight and bias): `x`, `g` are [rows, D].
fn layer_norm_input_grad(x: &[f32], w: &[f32], g: &[f32], eps: f32) -> Vec<f32> {
    let d = w.len();
    let mut dx = vec![0f32; x.len()];
    dx.par_chunks_mut(d * MIN_ROWS_PER_TASK)
        .zip(x.par_chunks(d * MIN_ROWS_PER_TASK))
        .zip(g.par_chunks(d * MIN_ROWS_PER_TASK))
        .for_each(|((dx, x), g)| {
            for ((dx, x), g) in dx.chunks_mut(d).zip(x.chunks(d)).zip(g.chunks(d)) {
                let (mean, rstd) = row_stats(x, eps);
                let (mut m1, mut m2) = (0f32, 0f32);
                for i in 0..d {
                    let gw = g[i] * w[i];
                    m1 += gw;
                    m2 += gw * (x[i] - mean) * rstd;
                }
                let (m1, m2) = (m1 / d as f32, m2 / d as f32);
                for i in 0..d {
                    dx[i] = rstd * (g[i] * w[i] - m1 - (x[i] - mean) * rstd * m2);
                }
            }
        });
    dx
}

/// Layer norm over the last dimension, differentiable in the input, weight and bias.
pub fn layer_norm(xs: &Tensor, weight: &Tensor, bias: &Tensor, eps: f32) -> Result<Tensor> {
    if !fused_ok(xs) || !fused_ok(weight) || !fused_ok(bias) {
        return candle_nn::ops::layer_norm_slow(xs, weight, bias, eps);
    }
    xs.contiguous()?.apply_op3(
        &weight.contiguous()?,
        &bias.contiguous()?,
        LayerNormOp { eps },
    )
}

// ---------------------------------------------------------------------------------------------
// Softmax over the last dimension

struct SoftmaxOp;

/// Softmax of one row in place; a row that is all −∞ (every key masked) becomes zeros, not NaN.
fn softmax_row(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        row.fill(0.0);
        return;
    }
    let mut sum = 0f32;
    for v in row.iter_mut() {
        *v = exp_approx(*v - max);
        sum += *v;
    }
    let inv = 1.0 / sum;
    row.iter_mut().for_each(|v| *v *= inv);
}

impl CustomOp1 for SoftmaxOp {
    fn name(&self) -> &'static str {
        "clipguide-softmax"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s, l)?;
        let d = l.shape().dims().last().copied().unwrap_or(1).max(1);
        let mut out = x.to_vec();
        out.par_chunks_mut(d * MIN_ROWS_PER_TASK)
            .for_each(|o| o.chunks_mut(d).for_each(softmax_row));
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        // dx = y ⊙ (dy − Σ dy⊙y), row by row.
        let y = tensor_f32(res)?;
        let g = tensor_f32(grad)?;
        let d = arg.dims().last().copied().unwrap_or(1).max(1);
        let mut dx = vec![0f32; y.len()];
        dx.par_chunks_mut(d * MIN_ROWS_PER_TASK)
            .zip(y.par_chunks(d * MIN_ROWS_PER_TASK))
            .zip(g.par_chunks(d * MIN_ROWS_PER_TASK))
            .for_each(|((dx, y), g)| {
                for ((dx, y), g) in dx.chunks_mut(d).zip(y.chunks(d)).zip(g.chunks(d)) {
                    let dot: f32 = y.iter().zip(g).map(|(a, b)| a * b).sum();
                    for i in 0..d {
                        dx[i] = y[i] * (g[i] - dot);
                    }
                }
            });
        Ok(Some(Tensor::from_vec(dx, arg.shape(), arg.device())?))
    }
}

/// Softmax over the last dimension, differentiable.
pub fn softmax_last_dim(xs: &Tensor) -> Result<Tensor> {
    if !fused_ok(xs) {
        return candle_nn::ops::softmax(xs, D::Minus1);
    }
    xs.contiguous()?.apply_op1(SoftmaxOp)
}

// ---------------------------------------------------------------------------------------------
// quick_gelu: x·σ(1.702·x)

struct QuickGeluOp;

const QUICK_GELU_ALPHA: f32 = 1.702;

fn sigmoid(v: f32) -> f32 {
    1.0 / (1.0 + exp_approx(-v))
}

/// `eˣ` to within 2 ulp (Cephes' `expf`: Cody–Waite reduction to `r ∈ [−ln2/2, ln2/2]`, a
/// degree-6 polynomial, then `2ⁿ` put straight into the exponent bits), with `e^x = 0` below −87.
///
/// Why not `f32::exp`: libm's is a scalar call, and quick-GELU alone needs one per MLP activation
/// forward and again backward (≈ 60 million per guidance step at ViT-B/32, 16 cutouts). This one
/// has no branches or calls, so loops over slices vectorise (8 lanes under AVX2, see
/// [`elementwise`]); no `mul_add`, so every code path gives the same bits.
#[inline(always)]
fn exp_approx(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5·2²³: adding it rounds to an integer
    let xc = x.clamp(-87.0, 88.0);
    let t = xc * std::f32::consts::LOG2_E + MAGIC;
    let n = t - MAGIC;
    let r = xc - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let mut p = 1.987_569_1e-4;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    // The low mantissa bits of `t` hold n (offset by MAGIC's), so 2ⁿ needs no float→int cast.
    let n_bits = (t.to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32);
    let scale = f32::from_bits((n_bits.wrapping_add(127) as u32) << 23);
    if x < -87.0 {
        0.0
    } else {
        e * scale
    }
}

/// Runs `body` compiled for AVX-512 or AVX2 as [`isa`] says (the build targets baseline
/// x86-64, where the same loop gets 4-lane SSE2), else as is. `body` must be `#[inline(always)]`.
macro_rules! elementwise {
    ($body:ident($($arg:expr),*)) => {{
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx2")]
            unsafe fn avx2(f: impl FnOnce()) {
                f()
            }
            #[target_feature(enable = "avx512f")]
            unsafe fn avx512(f: impl FnOnce()) {
                f()
            }
            match isa() {
                // SAFETY: `isa` names an instruction set only when the CPU reports it.
                "avx512" => unsafe { avx512(|| $body($($arg),*)) },
                "avx2" => unsafe { avx2(|| $body($($arg),*)) },
                _ => $body($($arg),*),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        $body($($arg),*);
    }};
}
pub(crate) use elementwise;

#[inline(always)]
fn quick_gelu_into(x: &[f32], out: &mut [f32]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = v * sigmoid(QUICK_GELU_ALPHA * v);
    }
}

/// `act(sum + bias) + residual` for one row of a tile into `dst`: the half-precision kernels'
/// epilogue. The passes run in one function compiled for the widest ISA, so each store is read
/// back at its own width (narrower stores read by wider loads stall store forwarding). `dst` may
/// be uninitialised: the first pass writes every element.
pub(crate) fn finish_row_into(
    sums: &[f32],
    bias: Option<&[f32]>,
    act: Option<FusedActivation>,
    residual: Option<&[f32]>,
    dst: &mut [std::mem::MaybeUninit<f32>],
) {
    elementwise!(finish_row_body(sums, bias, act, residual, dst))
}

#[inline(always)]
fn finish_row_body(
    sums: &[f32],
    bias: Option<&[f32]>,
    act: Option<FusedActivation>,
    residual: Option<&[f32]>,
    dst: &mut [std::mem::MaybeUninit<f32>],
) {
    assert_eq!(dst.len(), sums.len(), "one output for each sum");
    match bias {
        Some(b) => dst
            .iter_mut()
            .zip(sums.iter().zip(b))
            .for_each(|(d, (s, b))| {
                d.write(s + b);
            }),
        None => dst.iter_mut().zip(sums).for_each(|(d, s)| {
            d.write(*s);
        }),
    }
    // SAFETY: every element was written just above (the lengths are equal), and
    // `MaybeUninit<f32>` has `f32`'s layout.
    let dst = unsafe { &mut *(dst as *mut [std::mem::MaybeUninit<f32>] as *mut [f32]) };
    match act {
        Some(FusedActivation::QuickGelu) => quick_gelu_in_place(dst),
        Some(FusedActivation::GeluErf) => dst.iter_mut().for_each(|v| *v = gelu_erf_scalar(*v)),
        None => {}
    }
    if let Some(r) = residual {
        dst.iter_mut().zip(r).for_each(|(d, r)| *d += r);
    }
}

/// [`quick_gelu_into`] on a buffer of its own, with the same arithmetic (so the same bits).
#[inline(always)]
fn quick_gelu_in_place(x: &mut [f32]) {
    for v in x {
        *v *= sigmoid(QUICK_GELU_ALPHA * *v);
    }
}

#[inline(always)]
fn quick_gelu_grad_into(x: &[f32], g: &[f32], dx: &mut [f32]) {
    for ((dx, &v), &g) in dx.iter_mut().zip(x).zip(g) {
        let s = sigmoid(QUICK_GELU_ALPHA * v);
        *dx = g * (s + QUICK_GELU_ALPHA * v * s * (1.0 - s));
    }
}

impl CustomOp1 for QuickGeluOp {
    fn name(&self) -> &'static str {
        "clipguide-quick-gelu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s, l)?;
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(4096)
            .zip(x.par_chunks(4096))
            .for_each(|(o, x)| elementwise!(quick_gelu_into(x, o)));
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let dx = quick_gelu_grad(&tensor_f32(arg)?, &tensor_f32(grad)?);
        Ok(Some(Tensor::from_vec(dx, arg.shape(), arg.device())?))
    }
}

/// d/dx of x·σ(αx) times the output gradient `g`.
fn quick_gelu_grad(x: &[f32], g: &[f32]) -> Vec<f32> {
    let mut dx = vec![0f32; x.len()];
    dx.par_chunks_mut(4096)
        .zip(x.par_chunks(4096))
        .zip(g.par_chunks(4096))
        .for_each(|((dx, x), g)| elementwise!(quick_gelu_grad_into(x, g, dx)));
    dx
}

/// `x·σ(1.702·x)`, differentiable.
pub fn quick_gelu(xs: &Tensor) -> Result<Tensor> {
    if !fused_ok(xs) {
        return xs.mul(&candle_nn::ops::sigmoid(&(xs * QUICK_GELU_ALPHA as f64)?)?);
    }
    xs.contiguous()?.apply_op1(QuickGeluOp)
}

// ---------------------------------------------------------------------------------------------
// Exact GELU: x·Φ(x) = x·(1 + erf(x/√2))/2 (HF ViT, OpenCLIP without quick_gelu)

struct GeluErfOp;

/// The same formula and `erf` as candle's `gelu_erf`, so both paths give the same bits.
#[inline(always)]
fn gelu_erf_into(x: &[f32], out: &mut [f32]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = gelu_erf_scalar(v);
    }
}

#[inline(always)]
fn gelu_erf_scalar(v: f32) -> f32 {
    (candle_core::cpu::erf::erf_f32(v * std::f32::consts::FRAC_1_SQRT_2) + 1.0) * 0.5 * v
}

/// d/dx x·Φ(x) = Φ(x) + x·φ(x), times the output gradient.
#[inline(always)]
fn gelu_erf_grad_into(x: &[f32], g: &[f32], dx: &mut [f32]) {
    const INV_SQRT_2PI: f32 = 0.398_942_3;
    for ((dx, &v), &g) in dx.iter_mut().zip(x).zip(g) {
        let cdf = (candle_core::cpu::erf::erf_f32(v * std::f32::consts::FRAC_1_SQRT_2) + 1.0) * 0.5;
        let pdf = INV_SQRT_2PI * exp_approx(-0.5 * v * v);
        *dx = g * (cdf + v * pdf);
    }
}

impl CustomOp1 for GeluErfOp {
    fn name(&self) -> &'static str {
        "clipguide-gelu-erf"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s, l)?;
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(4096)
            .zip(x.par_chunks(4096))
            .for_each(|(o, x)| gelu_erf_into(x, o));
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let dx = gelu_erf_grad(&tensor_f32(arg)?, &tensor_f32(grad)?);
        Ok(Some(Tensor::from_vec(dx, arg.shape(), arg.device())?))
    }
}

fn gelu_erf_grad(x: &[f32], g: &[f32]) -> Vec<f32> {
    let mut dx = vec![0f32; x.len()];
    dx.par_chunks_mut(4096)
        .zip(x.par_chunks(4096))
        .zip(g.par_chunks(4096))
        .for_each(|((dx, x), g)| gelu_erf_grad_into(x, g, dx));
    dx
}

/// Exact (erf) GELU, differentiable, with a hand-written backward.
pub fn gelu_erf(xs: &Tensor) -> Result<Tensor> {
    if !fused_ok(xs) {
        return xs.gelu_erf();
    }
    xs.contiguous()?.apply_op1(GeluErfOp)
}

/// The MLP activations the fused layer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FusedActivation {
    QuickGelu,
    GeluErf,
}

impl FusedActivation {
    fn forward(self, a: &Tensor) -> Result<Tensor> {
        match self {
            Self::QuickGelu => a.apply_op1_no_bwd(&QuickGeluOp),
            Self::GeluErf => a.apply_op1_no_bwd(&GeluErfOp),
        }
    }

    fn grad(self, a: &[f32], g: &[f32]) -> Vec<f32> {
        match self {
            Self::QuickGelu => quick_gelu_grad(a, g),
            Self::GeluErf => gelu_erf_grad(a, g),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Linear layer with a frozen weight

/// How a frozen weight `W` [out, in] enters a product with a row-major activation matrix.
#[derive(Clone, Copy)]
enum WeightSide {
    /// `x·Wᵀ`: the layer's forward, [rows, in] → [rows, out].
    Transposed,
    /// `g·W`: the input gradient, [rows, out] → [rows, in].
    AsIs,
}

/// `x·Wᵀ + b` or `g·W` with a frozen `weight` [out, in], as one multi-threaded GEMM.
///
/// Why not candle's matmul: it zero-fills its output on one thread before the GEMM, and a bias
/// then costs another pass over the output. Here the output starts as the bias rows (or zeros),
/// written in parallel, and the GEMM accumulates onto it.
fn frozen_matmul(
    x: &[f32],
    rows: usize,
    weight: &Tensor,
    side: WeightSide,
    bias: Option<&Tensor>,
) -> Result<Vec<f32>> {
    let (wo, wi) = weight.dims2()?;
    let (k, n) = match side {
        WeightSide::Transposed => (wi, wo),
        WeightSide::AsIs => (wo, wi),
    };
    if x.len() != rows * k {
        candle_core::bail!(
            "linear: input has {} features, the weight expects {k}",
            x.len() / rows.max(1)
        );
    }
    let bias = bias.map(tensor_f32).transpose()?;
    let mut out: Vec<f32> = Vec::with_capacity(rows * n);
    out.spare_capacity_mut()
        .par_chunks_mut((n * MIN_ROWS_PER_TASK).max(1))
        .for_each(|chunk| {
            for row in chunk.chunks_mut(n) {
                match &bias {
                    Some(b) => row.iter_mut().zip(b).for_each(|(o, b)| {
                        o.write(*b);
                    }),
                    None => row.iter_mut().for_each(|o| {
                        o.write(0.0);
                    }),
                }
            }
        });
    // SAFETY: every element was written just above.
    unsafe { out.set_len(rows * n) };
    with_f32(weight, |w| {
        let (rs, cs) = match side {
            // Wᵀ[kk, j] = W[j, kk]
            WeightSide::Transposed => (1, wi as isize),
            WeightSide::AsIs => (wi as isize, 1),
        };
        // SAFETY: x is [rows, k] row-major, W viewed as [k, n] under (rs, cs) stays inside `w`,
        // and `out` is this call's own [rows, n] buffer.
        unsafe {
            crate::sgemm::sgemm(
                (rows, n, k),
                out.as_mut_ptr(),
                n as isize,
                1,
                bias.is_some(),
                View::rows(x, 0, k),
                View {
                    ptr: w.as_ptr(),
                    rs,
                    cs,
                },
                1.0,
                gemm::Parallelism::Rayon(rayon::current_num_threads()),
            )
        }
    })?;
    Ok(out)
}

/// `g·W` for a frozen weight on a contiguous CPU f32 gradient `g` [rows, out] → [rows, in].
fn frozen_input_grad(g: &Tensor, weight: &Tensor) -> Result<Tensor> {
    let (rows, _) = g.dims2()?;
    let v = with_f32(g, |g| {
        frozen_matmul(g, rows, weight, WeightSide::AsIs, None)
    })??;
    Tensor::from_vec(v, (rows, weight.dim(1)?), g.device())
}

/// `x·Wᵀ + b` whose backward gives only the input gradient.
struct FrozenLinearOp {
    /// [out, in]
    weight: Tensor,
    bias: Option<Tensor>,
}

impl CustomOp1 for FrozenLinearOp {
    fn name(&self) -> &'static str {
        "clipguide-frozen-linear"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (rows, _) = l.shape().dims2()?;
        let n = self.weight.dim(0)?;
        // One GEMM over all rows (batch × tokens): [rows, k] · [k, n].
        let out = frozen_matmul(
            contiguous_f32(s, l)?,
            rows,
            &self.weight,
            WeightSide::Transposed,
            self.bias.as_ref(),
        )?;
        Ok((CpuStorage::F32(out), Shape::from((rows, n))))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(frozen_input_grad(&grad.contiguous()?, &self.weight)?))
    }
}

/// `x·Wᵀ (+ b)` over the last dimension of `xs` (any leading dims), as one GEMM.
///
/// With a frozen weight (a plain tensor, not a `Var`) on the CPU, the backward computes only the
/// input gradient; with a `Var` weight (training) it is candle's matmul, weight gradient included.
pub fn linear(xs: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    if !fused_enabled() {
        // candle-nn's Linear: batched matmul against the weight broadcast over the batch.
        let y = xs.broadcast_matmul(&weight.t()?)?;
        return match bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        };
    }
    let dims = xs.dims().to_vec();
    let k = *dims.last().unwrap_or(&1);
    let rows = xs.elem_count() / k.max(1);
    let n = weight.dim(0)?;
    let x2 = xs.reshape((rows, k))?;
    let frozen = !weight.track_op() && bias.is_none_or(|b| !b.track_op());
    let y = if frozen && fused_ok(xs) && fused_ok(weight) {
        x2.contiguous()?.apply_op1(FrozenLinearOp {
            weight: weight.contiguous()?,
            bias: bias.cloned(),
        })?
    } else {
        let y = x2.matmul(&weight.t()?)?;
        match bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        }
    };
    let mut out = dims;
    *out.last_mut().expect("rank ≥ 1") = n;
    y.reshape(out)
}

// ---------------------------------------------------------------------------------------------
// Multi-head attention core: softmax(q·kᵀ·scale + mask)·v from packed projections

/// Attention over a packed `[B, L, 3·D]` tensor (q | k | v, heads contiguous inside each) to
/// `[B, L, D]`. One task per (batch, head); the L×L probabilities are recomputed in the backward
/// instead of stored (L ≤ 77 here, so that is cheaper than keeping them).
struct AttentionOp {
    heads: usize,
    scale: f32,
    /// Additive [L, L] mask (the text tower's causal mask), if any.
    mask: Option<std::sync::Arc<Vec<f32>>>,
}

// Attention works on raw views (`crate::sgemm::View`): each (batch, head) of the packed q|k|v
// buffer is a strided sub-matrix (rows 3·D apart) that the GEMM multiplies in place, so no head
// is copied out.

/// A destination pointer shared by rayon tasks that write disjoint parts of one buffer.
#[derive(Clone, Copy)]
struct SharedOut(*mut f32);
// SAFETY: every task writes a region (one head's columns of its own batch rows) no other task
// touches, and the buffer outlives the parallel loop that uses it.
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

impl SharedOut {
    /// The pointer `offset` elements in. A method (not `.0`) so closures capture the whole
    /// `Send` wrapper rather than the bare pointer field.
    ///
    /// # Safety
    /// `offset` must stay inside the buffer.
    unsafe fn at(self, offset: usize) -> *mut f32 {
        self.0.add(offset)
    }
}

/// `dst[m, n] = alpha · a[m, k] · b[k, n]` (row stride `dst_rs`, unit column stride), one thread.
///
/// # Safety
/// `a`, `b` and `dst` must address valid m×k, k×n and m×n matrices under their strides, and no
/// other thread may touch the destination region meanwhile.
unsafe fn gemm_view(
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    dst_rs: usize,
    a: View,
    b: View,
    alpha: f32,
) {
    crate::sgemm::sgemm(
        (m, n, k),
        dst,
        dst_rs as isize,
        1,
        false,
        a,
        b,
        alpha,
        gemm::Parallelism::None,
    )
}

impl AttentionOp {
    /// Row-major [rows, L] probabilities of the first `rows` queries of head `h`: `blk` is one
    /// batch's [L, 3D] block of packed q|k|v.
    fn probs(&self, blk: &[f32], l: usize, d: usize, h: usize, rows: usize) -> Vec<f32> {
        let dh = d / self.heads;
        let mut p = vec![0f32; rows * l];
        let q = View::rows(blk, h * dh, 3 * d);
        let k = View::rows(blk, d + h * dh, 3 * d);
        // SAFETY: q is [rows, dh] and kᵀ [dh, L] inside `blk`; p is this call's own [rows, L].
        unsafe { gemm_view((rows, l, dh), p.as_mut_ptr(), l, q, k.t(), self.scale) };
        for (i, pi) in p.chunks_mut(l).enumerate() {
            if let Some(m) = &self.mask {
                pi.iter_mut().zip(&m[i * l..]).for_each(|(v, m)| *v += m);
            }
            softmax_row(pi);
        }
        p
    }
}

impl CustomOp1 for AttentionOp {
    fn name(&self) -> &'static str {
        "clipguide-attention"
    }

    fn cpu_fwd(&self, s: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let qkv = contiguous_f32(s, layout)?;
        let (b, l, d3) = layout.shape().dims3()?;
        Ok((
            CpuStorage::F32(self.forward_with_probs(qkv, b, l, l).0),
            Shape::from((b, l, d3 / 3)),
        ))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let (b, l, _) = arg.dims3()?;
        let out = self.backward_slice(&tensor_f32(arg)?, &tensor_f32(grad)?, b, l, l, None);
        Ok(Some(Tensor::from_vec(out, arg.shape(), arg.device())?))
    }
}

impl AttentionOp {
    /// [B, L, 3D] packed q|k|v → the outputs of the first `rows` queries [B, rows, D] (all L, or
    /// 1 for the class token alone), with each (batch, head)'s [rows, L] probabilities for
    /// [`Self::backward_slice`]. One task per (batch, head); the products are GEMMs on strided
    /// views, and each task writes its head's columns of the output in place.
    fn forward_with_probs(
        &self,
        qkv: &[f32],
        b: usize,
        l: usize,
        rows: usize,
    ) -> (Vec<f32>, Vec<Vec<f32>>) {
        let d3 = qkv.len() / (b * l);
        let d = d3 / 3;
        let dh = d / self.heads;
        let mut out = vec![0f32; b * rows * d];
        let dst = SharedOut(out.as_mut_ptr());
        let probs: Vec<Vec<f32>> = (0..b * self.heads)
            .into_par_iter()
            .map(|t| {
                let (bi, h) = (t / self.heads, t % self.heads);
                let blk = &qkv[bi * l * d3..(bi + 1) * l * d3];
                let p = self.probs(blk, l, d, h, rows);
                let v = View::rows(blk, 2 * d + h * dh, d3);
                let pv = View::rows(&p, 0, l);
                // SAFETY: this task alone writes columns h·dh.. of rows bi·rows.. of `out`.
                unsafe {
                    let o = dst.at(bi * rows * d + h * dh);
                    gemm_view((rows, dh, l), o, d, pv, v, 1.0);
                }
                p
            })
            .collect();
        (out, probs)
    }

    /// Gradient w.r.t. packed q|k|v [B, L, 3D] from the gradient of the first `rows` queries'
    /// outputs [B, rows, D]; `probs` from [`Self::forward_with_probs`] saves recomputing them.
    fn backward_slice(
        &self,
        qkv: &[f32],
        go: &[f32],
        b: usize,
        l: usize,
        rows: usize,
        probs: Option<&[Vec<f32>]>,
    ) -> Vec<f32> {
        let d3 = qkv.len() / (b * l);
        let d = d3 / 3;
        let dh = d / self.heads;
        // dq of query rows that were not computed stays zero.
        let mut out = vec![0f32; b * l * d3];
        let dst = SharedOut(out.as_mut_ptr());
        (0..b * self.heads).into_par_iter().for_each(|t| {
            let (bi, h) = (t / self.heads, t % self.heads);
            let blk = &qkv[bi * l * d3..(bi + 1) * l * d3];
            let recomputed;
            let p: &[f32] = match probs {
                Some(p) => &p[t],
                None => {
                    recomputed = self.probs(blk, l, d, h, rows);
                    &recomputed
                }
            };
            let q = View::rows(blk, h * dh, d3);
            let k = View::rows(blk, d + h * dh, d3);
            let v = View::rows(blk, 2 * d + h * dh, d3);
            let g = View::rows(go, bi * rows * d + h * dh, d);
            let pv = View::rows(p, 0, l);
            // dP = dO·vᵀ, then the softmax backward row by row: dS = P∘(dP − rowsum(P∘dP))·scale.
            let mut ds = vec![0f32; rows * l];
            // SAFETY: dO is [rows, dh], vᵀ [dh, L]; ds is this task's own [rows, L].
            unsafe { gemm_view((rows, l, dh), ds.as_mut_ptr(), l, g, v.t(), 1.0) };
            for (dsi, pi) in ds.chunks_mut(l).zip(p.chunks(l)) {
                let rowdot: f32 = dsi.iter().zip(pi).map(|(a, b)| a * b).sum();
                dsi.iter_mut()
                    .zip(pi)
                    .for_each(|(s, p)| *s = p * (*s - rowdot) * self.scale);
            }
            let dsv = View::rows(&ds, 0, l);
            // SAFETY: this task alone writes head h's q, k and v columns of batch bi's rows.
            unsafe {
                let base = dst.at(bi * l * d3 + h * dh);
                gemm_view((rows, dh, l), base, d3, dsv, k, 1.0); // dQ = dS·K
                gemm_view((l, dh, rows), base.add(d), d3, dsv.t(), q, 1.0); // dK = dSᵀ·Q
                gemm_view((l, dh, rows), base.add(2 * d), d3, pv.t(), g, 1.0); // dV = Pᵀ·dO
            }
        });
        out
    }
}

/// `softmax(q·kᵀ·scale + mask)·v` per head from packed `qkv` [B, L, 3·D] (q | k | v) to
/// [B, L, D], differentiable in `qkv`. `mask`: additive, [1, 1, L, L] or [L, L].
///
/// The fused kernel needs a CPU f32 input; elsewhere the same maths runs as candle ops.
pub fn attention(qkv: &Tensor, heads: usize, scale: f64, mask: Option<&Tensor>) -> Result<Tensor> {
    let (b, l, d3) = qkv.dims3()?;
    let d = d3 / 3;
    let mask_ok = mask.is_none_or(|m| m.elem_count() == l * l);
    if fused_ok(qkv) && mask_ok {
        let mask = match mask {
            Some(m) => Some(std::sync::Arc::new(tensor_f32(&m.to_dtype(DType::F32)?)?)),
            None => None,
        };
        return qkv.contiguous()?.apply_op1(AttentionOp {
            heads,
            scale: scale as f32,
            mask,
        });
    }
    let dh = d / heads;
    let split = |i: usize| -> Result<Tensor> {
        qkv.narrow(2, i * d, d)?
            .reshape((b, l, heads, dh))?
            .transpose(1, 2)?
            .contiguous()
    };
    let (q, k, v) = (split(0)?, split(1)?, split(2)?);
    let mut scores = (q.matmul(&k.t()?)? * scale)?;
    if let Some(m) = mask {
        scores = scores.broadcast_add(m)?;
    }
    let probs = softmax_last_dim(&scores)?;
    probs.matmul(&v)?.transpose(1, 2)?.reshape((b, l, d))
}

// ---------------------------------------------------------------------------------------------
// A whole pre-norm encoder layer with frozen weights

/// The weights of one frozen pre-norm layer, as [`frozen_layer`] takes them.
#[derive(Debug, Clone)]
pub struct FrozenLayerWeights {
    pub act: FusedActivation,
    pub ln1: (Tensor, Tensor),
    pub ln2: (Tensor, Tensor),
    pub eps: f32,
    /// Packed [3D, D] q|k|v projection and its bias.
    pub qkv: (Tensor, Option<Tensor>),
    pub out: (Tensor, Option<Tensor>),
    pub fc1: (Tensor, Option<Tensor>),
    pub fc2: (Tensor, Option<Tensor>),
    pub heads: usize,
    pub scale: f32,
    /// The four weights packed for each half-precision format, made on first use and shared by
    /// clones.
    pub half: std::sync::Arc<PerHalfFormat<HalfWeights>>,
}

/// One lazily made value per [`HalfFormat`].
#[derive(Debug)]
pub struct PerHalfFormat<T>([std::sync::OnceLock<T>; 2]);

impl<T> Default for PerHalfFormat<T> {
    fn default() -> Self {
        Self(Default::default())
    }
}

impl<T> PerHalfFormat<T> {
    /// The value for `format`, made by `make` the first time.
    pub fn get_or_try_init(
        &self,
        format: HalfFormat,
        make: impl FnOnce() -> Result<T>,
    ) -> Result<&T> {
        let cell = &self.0[format as usize];
        match cell.get() {
            Some(v) => Ok(v),
            None => {
                let v = make()?;
                Ok(cell.get_or_init(|| v))
            }
        }
    }
}

/// A layer's linear weights packed for one half-precision kernel.
#[derive(Debug)]
pub struct HalfWeights {
    qkv: PackedWeight,
    out: PackedWeight,
    fc1: PackedWeight,
    fc2: PackedWeight,
}

impl HalfWeights {
    fn pack(w: &FrozenLayerWeights, format: HalfFormat) -> Result<Self> {
        let pack = |(t, _): &(Tensor, Option<Tensor>)| -> Result<PackedWeight> {
            let (n, k) = t.dims2()?;
            with_f32(t, |v| PackedWeight::pack(v, n, k, format))
        };
        Ok(Self {
            qkv: pack(&w.qkv)?,
            out: pack(&w.out)?,
            fc1: pack(&w.fc1)?,
            fc2: pack(&w.fc2)?,
        })
    }
}

/// `x + layer_norm_input_grad(…)`: the input gradient of a frozen layer norm on `x` for the
/// upstream gradient `g`, plus the residual gradient that skips the norm, as [rows, D].
fn layer_norm_grad_plus(
    x: &Tensor,
    weight: &Tensor,
    g: &Tensor,
    residual: &Tensor,
    eps: f32,
) -> Result<Tensor> {
    let v = with_f32(weight, |w| {
        with_f32(x, |x| {
            with_f32(g, |g| {
                with_f32(residual, |r| {
                    let mut v = layer_norm_input_grad(x, w, g, eps);
                    v.iter_mut().zip(r).for_each(|(v, r)| *v += r);
                    v
                })
            })
        })
    })????;
    Tensor::from_vec(v, x.shape(), x.device())
}

impl FrozenLayerWeights {
    fn attention(&self, mask: Option<std::sync::Arc<Vec<f32>>>) -> AttentionOp {
        AttentionOp {
            heads: self.heads,
            scale: self.scale,
            mask,
        }
    }

    fn lin(x: &Tensor, (w, b): &(Tensor, Option<Tensor>)) -> Result<Tensor> {
        x.apply_op1_no_bwd(&FrozenLinearOp {
            weight: w.clone(),
            bias: b.clone(),
        })
    }

    fn ln(&self, x: &Tensor, (g, b): &(Tensor, Tensor)) -> Result<Tensor> {
        x.apply_op3_no_bwd(g, b, &LayerNormOp { eps: self.eps })
    }

    /// Attention half up to the packed projections: `ln1(x)·Wqkv` for `x` [B·L, D].
    fn qkv(&self, x: &Tensor) -> Result<Tensor> {
        Self::lin(&self.ln(x, &self.ln1)?, &self.qkv)
    }

    /// MLP half with its residual: `h + fc2(gelu(fc1(ln2(h))))` as a flat vector (written
    /// straight into the output buffer), and the pre-activation `a` the backward needs.
    fn mlp(&self, h: &Tensor) -> Result<(Vec<f32>, Tensor)> {
        let a = Self::lin(&self.ln(h, &self.ln2)?, &self.fc1)?;
        let m = Self::lin(&self.act.forward(&a)?, &self.fc2)?;
        let y = with_f32(h, |h| {
            with_f32(&m, |m| h.iter().zip(m).map(|(h, m)| h + m).collect())
        })??;
        Ok((y, a))
    }

    /// Gradient w.r.t. `h` of [`Self::mlp`] (residual included) for the output gradient `dy`.
    fn mlp_backward(&self, h: &Tensor, a: &Tensor, dy: &Tensor) -> Result<Tensor> {
        let dg = frozen_input_grad(dy, &self.fc2.0)?;
        let da = with_f32(a, |a| with_f32(&dg, |g| self.act.grad(a, g)))??;
        let dl2 = frozen_input_grad(&Tensor::from_vec(da, dg.shape(), dg.device())?, &self.fc1.0)?;
        layer_norm_grad_plus(h, &self.ln2.0, &dl2, dy, self.eps)
    }

    /// Gradient w.r.t. `x` of the attention half's `ln1 → qkv` for the packed-projection
    /// gradient `dqkv` [B·L, 3D], plus the `residual` gradient.
    fn qkv_backward(&self, x: &Tensor, dqkv: Vec<f32>, residual: &Tensor) -> Result<Tensor> {
        let (rows, d) = x.dims2()?;
        let dl1 = frozen_input_grad(
            &Tensor::from_vec(dqkv, (rows, 3 * d), x.device())?,
            &self.qkv.0,
        )?;
        layer_norm_grad_plus(x, &self.ln1.0, &dl1, residual, self.eps)
    }
}

/// Activations the backward needs, kept from the forward.
struct LayerSaved {
    /// Input [B·L, D].
    x: Tensor,
    qkv: Tensor,
    /// Attention probabilities per (batch, head).
    probs: Vec<Vec<f32>>,
    /// Attention-half output (the MLP's input): [B·L, D], or [B, D] for the class token alone.
    h: Tensor,
    a: Tensor,
}

/// `y = h + fc2(gelu(fc1(ln2(h))))`, `h = x + out(attn(qkv(ln1(x))))` as one graph node.
///
/// Why: with frozen weights the layer has one input that needs a gradient. As separate candle
/// ops it is ~25 graph nodes, and candle's backward allocates a zeroed gradient buffer and adds
/// into it for every input of every node; here the backward is nine passes written out
/// (three GEMMs against the weights, the attention and two layer-norm input gradients, and the
/// residual sums), with the forward's activations kept in the op instead of the graph.
///
/// With `cls_only` the output is row 0 (the class token) alone, [B, D]: the pooled embedding
/// depends on the last layer only through that row, so the layer needs keys and values for every
/// token but the attention output, out-projection and MLP for the class token alone — three
/// quarters of the layer's FLOPs (≈ 6 % of a ViT-B/32 pass) skipped forward and backward.
struct FrozenLayerOp {
    w: FrozenLayerWeights,
    mask: Option<std::sync::Arc<Vec<f32>>>,
    cls_only: bool,
    precision: Precision,
    /// Keep activations for the backward (only when the input is tracked).
    save: bool,
    saved: std::sync::Mutex<Option<LayerSaved>>,
}

impl FrozenLayerOp {
    /// Query rows computed per image: all `l`, or the class token's.
    fn rows(&self, l: usize) -> usize {
        if self.cls_only {
            1
        } else {
            l
        }
    }

    /// x: [B·L, D] → (y as a flat vector, saved activations).
    fn run(&self, x: Tensor, b: usize, l: usize) -> Result<(Vec<f32>, LayerSaved)> {
        let w = &self.w;
        let d = x.dim(1)?;
        let rows = self.rows(l);
        let qkv = w.qkv(&x)?;
        let attention = w.attention(self.mask.clone());
        let (ctx, probs) = with_f32(&qkv, |q| attention.forward_with_probs(q, b, l, rows))?;
        let ctx = Tensor::from_vec(ctx, (b * rows, d), x.device())?;
        let x_rows = if self.cls_only {
            // Class-token rows of the input: row 0 of every image.
            x.reshape((b, l, d))?.narrow(1, 0, 1)?.reshape((b, d))?
        } else {
            x.clone()
        };
        let h = (x_rows + FrozenLayerWeights::lin(&ctx, &w.out)?)?;
        let (y, a) = w.mlp(&h)?;
        Ok((
            y,
            LayerSaved {
                x,
                qkv,
                probs,
                h,
                a,
            },
        ))
    }
}

impl FrozenLayerOp {
    /// The forward alone with half-precision linear layers, each with its bias, activation or
    /// residual applied in the kernel's epilogue: x [B·L, D] → y as a flat vector.
    fn run_half(&self, x: &Tensor, b: usize, l: usize, format: HalfFormat) -> Result<Vec<f32>> {
        use crate::half_gemm::{matmul, Epilogue};
        let w = &self.w;
        let packed = w
            .half
            .get_or_try_init(format, || HalfWeights::pack(w, format))?;
        let bias = |(_, b): &(Tensor, Option<Tensor>)| b.as_ref().map(tensor_f32).transpose();
        let (qkv_b, out_b, fc1_b, fc2_b) =
            (bias(&w.qkv)?, bias(&w.out)?, bias(&w.fc1)?, bias(&w.fc2)?);
        let d = x.dim(1)?;
        let rows = self.rows(l);
        let n_all = b * l;
        let qkv = with_f32(&w.ln(x, &w.ln1)?, |xn| {
            matmul(
                xn,
                n_all,
                &packed.qkv,
                Epilogue {
                    bias: qkv_b.as_deref(),
                    ..Default::default()
                },
            )
        })?;
        let (ctx, _) = w
            .attention(self.mask.clone())
            .forward_with_probs(&qkv, b, l, rows);
        let m = b * rows;
        let h = with_f32(x, |x| {
            // The residual: every row, or the class tokens' (row 0 of each image).
            let cls_rows: Vec<f32>;
            let x_rows = if self.cls_only {
                cls_rows = x.chunks(l * d).flat_map(|img| &img[..d]).copied().collect();
                &cls_rows[..]
            } else {
                x
            };
            matmul(
                &ctx,
                m,
                &packed.out,
                Epilogue {
                    bias: out_b.as_deref(),
                    act: None,
                    residual: Some(x_rows),
                },
            )
        })?;
        let hn = w.ln(&Tensor::from_slice(&h, (m, d), x.device())?, &w.ln2)?;
        let a = with_f32(&hn, |hn| {
            matmul(
                hn,
                m,
                &packed.fc1,
                Epilogue {
                    bias: fc1_b.as_deref(),
                    act: Some(w.act),
                    residual: None,
                },
            )
        })?;
        Ok(matmul(
            &a,
            m,
            &packed.fc2,
            Epilogue {
                bias: fc2_b.as_deref(),
                act: None,
                residual: Some(&h),
            },
        ))
    }
}

impl CustomOp1 for FrozenLayerOp {
    fn name(&self) -> &'static str {
        "clipguide-frozen-layer"
    }

    fn cpu_fwd(&self, s: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, l, d) = layout.shape().dims3()?;
        let x = Tensor::from_slice(
            contiguous_f32(s, layout)?,
            (b * l, d),
            &candle_core::Device::Cpu,
        )?;
        if let Some(format) = self.precision.half_format_here().filter(|_| !self.save) {
            let y = self.run_half(&x, b, l, format)?;
            let shape = if self.cls_only {
                Shape::from((b, d))
            } else {
                layout.shape().clone()
            };
            return Ok((CpuStorage::F32(y), shape));
        }
        let (y, saved) = self.run(x, b, l)?;
        if self.save {
            *self.saved.lock().expect("layer cache lock") = Some(saved);
        }
        let shape = if self.cls_only {
            Shape::from((b, d))
        } else {
            layout.shape().clone()
        };
        Ok((CpuStorage::F32(y), shape))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let (b, l, d) = arg.dims3()?;
        let saved = match self.saved.lock().expect("layer cache lock").take() {
            Some(s) => s,
            // Not kept (or a second backward): recompute.
            None => self.run(arg.reshape((b * l, d))?.detach(), b, l)?.1,
        };
        let w = &self.w;
        let rows = self.rows(l);
        let dy = grad.reshape((b * rows, d))?.contiguous()?;
        // MLP: y = h + fc2(gelu(fc1(ln2(h)))).
        let dh = w.mlp_backward(&saved.h, &saved.a, &dy)?;
        // Attention: h = x + out(attn(qkv(ln1(x)))).
        let dctx = frozen_input_grad(&dh, &w.out.0)?;
        let attention = w.attention(self.mask.clone());
        let dqkv = with_f32(&saved.qkv, |q| {
            with_f32(&dctx, |g| {
                attention.backward_slice(q, g, b, l, rows, Some(&saved.probs))
            })
        })??;
        // The residual reaches the computed rows only (all of them, or the class tokens).
        let residual = if self.cls_only && l > 1 {
            let zeros = Tensor::zeros((b, l - 1, d), DType::F32, dh.device())?;
            Tensor::cat(&[&dh.reshape((b, 1, d))?, &zeros], 1)?.reshape((b * l, d))?
        } else {
            dh
        };
        let dx = w.qkv_backward(&saved.x, dqkv, &residual)?;
        Ok(Some(dx.reshape((b, l, d))?))
    }
}

fn frozen_layer_op(
    xs: &Tensor,
    weights: &FrozenLayerWeights,
    mask: Option<&Tensor>,
    cls_only: bool,
    precision: Precision,
) -> Result<Option<Tensor>> {
    let (_, l, _) = xs.dims3()?;
    if !fused_ok(xs) || mask.is_some_and(|m| m.elem_count() != l * l) {
        return Ok(None);
    }
    let mask = match mask {
        Some(m) => Some(std::sync::Arc::new(tensor_f32(&m.to_dtype(DType::F32)?)?)),
        None => None,
    };
    let op = FrozenLayerOp {
        w: weights.clone(),
        mask,
        cls_only,
        precision,
        save: xs.track_op(),
        saved: std::sync::Mutex::new(None),
    };
    Ok(Some(xs.contiguous()?.apply_op1(op)?))
}

/// One frozen pre-norm encoder layer on `xs` [B, L, D] as a single fused node (see
/// [`FrozenLayerOp`]); `None` when the fused path does not apply (not CPU f32, or a mask of
/// another shape), so the caller runs the layer op by op. `precision` applies when `xs` needs no
/// gradient (see [`Precision`]).
pub fn frozen_layer(
    xs: &Tensor,
    weights: &FrozenLayerWeights,
    mask: Option<&Tensor>,
    precision: Precision,
) -> Result<Option<Tensor>> {
    frozen_layer_op(xs, weights, mask, false, precision)
}

/// The class token's output [B, D] of a frozen layer on `xs` [B, L, D] without a mask, computing
/// only what that row needs (see [`FrozenLayerOp`]); `None` when the fused path does not apply.
pub fn frozen_layer_cls(
    xs: &Tensor,
    weights: &FrozenLayerWeights,
    precision: Precision,
) -> Result<Option<Tensor>> {
    frozen_layer_op(xs, weights, None, true, precision)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// `CLIPGUIDE_ISA` picks the path that runs, and a forced path the CPU lacks fails here
    /// (naming it) instead of quietly testing another one.
    #[test]
    fn the_kernel_path_asked_for_is_the_one_that_runs() {
        #[cfg(target_arch = "x86_64")]
        let (avx512, avx2) = (
            std::arch::is_x86_feature_detected!("avx512f"),
            std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma"),
        );
        #[cfg(not(target_arch = "x86_64"))]
        let (avx512, avx2) = (false, false);
        match isa_request().expect("CLIPGUIDE_ISA must name a path") {
            IsaRequest::Avx512 => {
                assert!(avx512, "CLIPGUIDE_ISA=avx512, but this CPU has no AVX-512: the AVX-512 kernels cannot be tested here");
                assert_eq!(isa(), "avx512");
            }
            IsaRequest::Avx2 => {
                assert!(avx2, "CLIPGUIDE_ISA=avx2, but this CPU has no AVX2 + FMA: the AVX2 kernels cannot be tested here");
                assert_eq!(isa(), "avx2");
            }
            IsaRequest::Baseline => assert_eq!(isa(), "baseline"),
            IsaRequest::Auto => {
                let wide = avx512 && full_width_avx512();
                assert_eq!(
                    isa(),
                    if wide {
                        "avx512"
                    } else if avx2 {
                        "avx2"
                    } else {
                        "baseline"
                    }
                );
            }
        }
    }

    fn randn(shape: &[usize], seed: u64) -> Tensor {
        // A small LCG keeps the test independent of candle's unseedable RNG.
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    fn max_abs(t: &Tensor) -> f32 {
        t.abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        max_abs(&(a - b).unwrap())
    }

    /// A quick_gelu encoder layer with random frozen weights (one fused node).
    fn frozen_quick_gelu_layer(d: usize, inter: usize, heads: usize) -> crate::nn::EncoderLayer {
        use crate::config::Activation;
        use crate::nn::EncoderLayer;
        use candle_nn::{VarBuilder, VarMap};
        let vm = VarMap::new();
        EncoderLayer::new(
            d,
            inter,
            heads,
            Activation::QuickGelu,
            1e-5,
            VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu),
        )
        .unwrap();
        EncoderLayer::new(
            d,
            inter,
            heads,
            Activation::QuickGelu,
            1e-5,
            VarBuilder::from_tensors(crate::nn::frozen_copy(&vm), DType::F32, &Device::Cpu),
        )
        .unwrap()
    }

    /// Value and input gradient of `f` against the composite reference `g` (weighted sum loss).
    fn check(
        f: impl Fn(&Tensor) -> Result<Tensor>,
        g: impl Fn(&Tensor) -> Result<Tensor>,
        shape: &[usize],
    ) {
        let x = Var::from_tensor(&randn(shape, 1)).unwrap();
        let (a, b) = (f(x.as_tensor()).unwrap(), g(x.as_tensor()).unwrap());
        let w = randn(a.dims(), 2);
        assert!(
            max_diff(&a, &b) < 1e-5,
            "forward differs: {}",
            max_diff(&a, &b)
        );
        let ga = (a * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let gb = (b * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let (ga, gb) = (
            ga.get(x.as_tensor()).unwrap(),
            gb.get(x.as_tensor()).unwrap(),
        );
        assert!(
            max_diff(gb, &Tensor::zeros_like(gb).unwrap()) > 1e-3,
            "reference grad is zero"
        );
        // Relative to the gradient's size: the kernels and candle's composites sum in different
        // orders (and the scalar baseline without FMA), which moves the last bits of each sum.
        let scale = max_abs(gb).max(1.0);
        assert!(
            max_diff(ga, gb) < 1e-5 * scale,
            "gradient differs: {} (gradients up to {scale})",
            max_diff(ga, gb)
        );
    }

    #[test]
    fn layer_norm_matches_composite_in_all_three_gradients() {
        let x = Var::from_tensor(&randn(&[3, 5, 40], 1).affine(3.0, 1.5).unwrap()).unwrap();
        let w = Var::from_tensor(&randn(&[40], 2)).unwrap();
        let b = Var::from_tensor(&randn(&[40], 3)).unwrap();
        let probe = randn(&[3, 5, 40], 4);
        let fused = layer_norm(x.as_tensor(), w.as_tensor(), b.as_tensor(), 1e-5).unwrap();
        let slow =
            candle_nn::ops::layer_norm_slow(x.as_tensor(), w.as_tensor(), b.as_tensor(), 1e-5)
                .unwrap();
        assert!(max_diff(&fused, &slow) < 1e-5);
        let gf = (fused * &probe)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let gs = (slow * &probe)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        for v in [&x, &w, &b] {
            let (a, c) = (
                gf.get(v.as_tensor()).unwrap(),
                gs.get(v.as_tensor()).unwrap(),
            );
            assert!(max_diff(a, c) < 1e-4, "grad differs by {}", max_diff(a, c));
        }
    }

    #[test]
    fn attention_matches_composite_with_and_without_mask() {
        let (b, l, heads, dh) = (2, 7, 3, 10);
        let d = heads * dh;
        let mask = crate::nn::causal_mask(l, &Device::Cpu).unwrap();
        for m in [None, Some(&mask)] {
            let reference = |x: &Tensor| -> Result<Tensor> {
                let split = |i: usize| -> Result<Tensor> {
                    x.narrow(2, i * d, d)?
                        .reshape((b, l, heads, dh))?
                        .transpose(1, 2)?
                        .contiguous()
                };
                let (q, k, v) = (split(0)?, split(1)?, split(2)?);
                let mut s = (q.matmul(&k.t()?)? * 0.3)?;
                if let Some(m) = m {
                    s = s.broadcast_add(m)?;
                }
                candle_nn::ops::softmax(&s, D::Minus1)?
                    .matmul(&v)?
                    .transpose(1, 2)?
                    .reshape((b, l, d))
            };
            check(|x| attention(x, heads, 0.3, m), reference, &[b, l, 3 * d]);
        }
    }

    /// A frozen layer (one fused node) against the same weights as `Var`s (op by op).
    #[test]
    fn frozen_layer_matches_the_op_by_op_layer() {
        use crate::config::Activation;
        use crate::nn::EncoderLayer;
        use candle_nn::{VarBuilder, VarMap};
        let (d, inter, heads, l) = (24, 40, 3, 6);
        // CLIP's quick_gelu and HF ViT's exact GELU with its 1e-12 layer-norm eps.
        for (act, eps) in [(Activation::QuickGelu, 1e-5), (Activation::Gelu, 1e-12)] {
            let vm = VarMap::new();
            let trainable = EncoderLayer::new(
                d,
                inter,
                heads,
                act,
                eps,
                VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu),
            )
            .unwrap();
            // Non-trivial layer-norm parameters, so their use is checked too.
            for (name, var) in vm.data().lock().unwrap().iter() {
                if name.contains("layer_norm") {
                    let n = var.elem_count();
                    var.set(&randn(&[n], 11).affine(0.3, 1.0).unwrap()).unwrap();
                }
            }
            let tensors = crate::nn::frozen_copy(&vm);
            let frozen = EncoderLayer::new(
                d,
                inter,
                heads,
                act,
                eps,
                VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu),
            )
            .unwrap();
            assert!(frozen.is_fused() && !trainable.is_fused());
            let mask = crate::nn::causal_mask(l, &Device::Cpu).unwrap();
            for m in [None, Some(&mask)] {
                check(
                    |x| frozen.forward(x, m, Precision::F32),
                    |x| trainable.forward(x, m, Precision::F32),
                    &[2, l, d],
                );
            }
        }
    }

    /// The class-token-only last layer against row 0 of the full layer.
    #[test]
    fn cls_only_layer_matches_row_zero_of_the_full_layer() {
        let (d, inter, heads, l) = (24, 40, 3, 6);
        let layer = frozen_quick_gelu_layer(d, inter, heads);
        assert!(layer.is_fused());
        check(
            |x| layer.forward_cls(x, Precision::F32),
            |x| {
                layer
                    .forward(x, None, Precision::F32)?
                    .narrow(1, 0, 1)?
                    .squeeze(1)
            },
            &[3, l, d],
        );
    }

    /// A half-precision forward of a frozen layer (full and class-token-only, with and without a
    /// mask) against the f32 one, for each format: close where the CPU runs its kernel, the same
    /// bits where it does not; and a tracked input always goes through f32.
    #[test]
    fn half_precision_layer_is_close_to_f32_or_falls_back_to_it() {
        // Widths that are not multiples of the kernels' 32/64-column panels or 12-row tiles.
        let (d, inter, heads, l) = (48, 100, 4, 13);
        let layer = frozen_quick_gelu_layer(d, inter, heads);
        let x = randn(&[3, l, d], 21);
        let mask = crate::nn::causal_mask(l, &Device::Cpu).unwrap();
        for precision in [Precision::Bf16, Precision::F16] {
            let pairs: Vec<(Tensor, Tensor)> = vec![
                (
                    layer.forward(&x, None, Precision::F32).unwrap(),
                    layer.forward(&x, None, precision).unwrap(),
                ),
                (
                    layer.forward(&x, Some(&mask), Precision::F32).unwrap(),
                    layer.forward(&x, Some(&mask), precision).unwrap(),
                ),
                (
                    layer.forward_cls(&x, Precision::F32).unwrap(),
                    layer.forward_cls(&x, precision).unwrap(),
                ),
            ];
            let runs_half = precision.half_format_here().is_some() && layer.is_fused();
            for (f32_out, half_out) in &pairs {
                let diff = max_diff(f32_out, half_out);
                let scale = max_abs(f32_out);
                if runs_half {
                    // bf16: operands rounded to 8 significant bits (relative error 2⁻⁹ each),
                    // sums of ~100 terms: about 1 % of the output's scale at most. fp16 rounds
                    // to 11 bits and sums up to 128 terms in fp16: a few times less. Never the
                    // same bits.
                    let bound = match precision {
                        Precision::F16 => 5e-3,
                        _ => 2e-2,
                    };
                    assert!(
                        diff > 0.0 && diff < bound * scale,
                        "{precision:?} differs from f32 by {diff} (outputs up to {scale})"
                    );
                } else {
                    assert_eq!(
                        diff, 0.0,
                        "without the {precision:?} kernel the f32 path must run"
                    );
                }
            }
            // Reproducible: the same input gives the same bits (each output sums in one thread,
            // in a fixed order, whatever the thread count).
            let again = layer.forward(&x, None, precision).unwrap();
            assert_eq!(max_diff(&again, &pairs[0].1), 0.0);
            // With a gradient to keep, half precision is not used.
            let v = Var::from_tensor(&x).unwrap();
            let tracked = layer.forward(v.as_tensor(), None, precision).unwrap();
            assert_eq!(max_diff(&tracked, &pairs[0].0), 0.0);
        }
    }

    #[test]
    fn exp_approx_is_within_two_ulp_of_libm() {
        let mut worst = 0f32;
        let mut x = -87.0f32;
        while x < 88.0 {
            let (a, b) = (exp_approx(x), x.exp());
            worst = worst.max((a - b).abs() / b);
            x += 0.000_731;
        }
        assert!(worst < 2.5e-7, "relative error {worst}");
        assert_eq!(exp_approx(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_approx(-100.0), 0.0);
        assert_eq!(exp_approx(0.0), 1.0);
    }

    #[test]
    fn softmax_matches_composite() {
        check(
            softmax_last_dim,
            |x| candle_nn::ops::softmax(x, D::Minus1),
            &[4, 3, 17],
        );
    }

    #[test]
    fn quick_gelu_matches_composite() {
        check(
            quick_gelu,
            |x| x.mul(&candle_nn::ops::sigmoid(&(x * 1.702)?)?),
            &[7, 33],
        );
    }

    #[test]
    fn gelu_erf_matches_composite() {
        check(gelu_erf, |x| x.gelu_erf(), &[7, 33]);
    }

    #[test]
    fn frozen_linear_matches_matmul_and_skips_the_weight() {
        let w = randn(&[6, 10], 5);
        let b = randn(&[6], 6);
        check(
            |x| linear(x, &w, Some(&b)),
            |x| x.broadcast_matmul(&w.t()?)?.broadcast_add(&b),
            &[2, 3, 10],
        );
        // A Var weight takes the ordinary path and gets its gradient.
        let wv = Var::from_tensor(&w).unwrap();
        let x = randn(&[2, 3, 10], 7);
        let g = linear(&x, wv.as_tensor(), None)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        assert!(
            g.get(wv.as_tensor()).is_some(),
            "trainable weight got no gradient"
        );
    }
}
