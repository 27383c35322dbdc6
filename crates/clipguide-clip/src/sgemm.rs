//! f32 GEMM with its micro-kernel width chosen here, at run time, per CPU.
//!
//! Why not `gemm::gemm`: the `gemm` crate picks its AVX-512 micro-kernels whenever it is built
//! with `x86-v4` and the CPU has AVX-512, and that is the wrong choice on AMD Zen 4, which splits
//! every 512-bit FMA in two (measured 10–21 % slower there, BENCHMARKS.md), while on Intel cores
//! with full-width AVX-512 units it is the right one. The crate's packing, blocking and
//! micro-kernels are public, so this module drives the same `gemm_basic_generic` with the
//! micro-kernel set that [`crate::ops::isa`] names: one binary, the fast path on each CPU, and
//! `CLIPGUIDE_ISA` forcing either one so both are tested on one machine.

use gemm_common::simd::MixedSimd;

/// Which micro-kernels run: 16-wide AVX-512, 8-wide AVX2 + FMA, or scalar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kernels {
    Avx512,
    Avx2,
    Scalar,
}

impl Kernels {
    /// The set [`crate::ops::isa`] chose for this process.
    pub(crate) fn chosen() -> Self {
        match crate::ops::isa() {
            "avx512" => Kernels::Avx512,
            "avx2" => Kernels::Avx2,
            _ => Kernels::Scalar,
        }
    }

    /// Whether this CPU has every instruction the set's micro-kernels use (the `gemm` crate's
    /// own test: AVX-512 F/BW/CD/DQ/VL for the first, AVX2, FMA and the rest of x86-64-v3 for the
    /// second), so a forced path never reaches a CPU that lacks part of it.
    pub(crate) fn runs_here(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernels::Avx512 => {
                <gemm_common::simd::V4 as MixedSimd<f32, f32, f32, f32>>::try_new().is_some()
            }
            #[cfg(target_arch = "x86_64")]
            Kernels::Avx2 => {
                <gemm_common::simd::V3 as MixedSimd<f32, f32, f32, f32>>::try_new().is_some()
            }
            #[cfg(not(target_arch = "x86_64"))]
            Kernels::Avx512 | Kernels::Avx2 => false,
            Kernels::Scalar => true,
        }
    }
}

/// A strided f32 matrix operand: element (i, j) at `ptr + i·rs + j·cs`.
#[derive(Clone, Copy)]
pub(crate) struct View {
    pub ptr: *const f32,
    pub rs: isize,
    pub cs: isize,
}

impl View {
    /// Row-major rows of `row_stride`, from `base + offset`.
    pub(crate) fn rows(base: &[f32], offset: usize, row_stride: usize) -> Self {
        Self {
            ptr: base[offset..].as_ptr(),
            rs: row_stride as isize,
            cs: 1,
        }
    }

    /// The transpose: the same elements, rows and columns swapped.
    pub(crate) fn t(self) -> Self {
        Self {
            ptr: self.ptr,
            rs: self.cs,
            cs: self.rs,
        }
    }
}

/// `dst = beta·lhs·rhs` (or `dst + beta·lhs·rhs` with `accumulate`) for `dst` [m, n], `lhs`
/// [m, k], `rhs` [k, n], with the process's micro-kernels (`gemm::gemm`'s `alpha = 1`).
///
/// # Safety
/// Every element the strides address must lie inside live allocations; `dst` must not alias
/// `lhs` or `rhs`, and no other thread may touch the part of `dst` written here.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn sgemm(
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    dst_rs: isize,
    dst_cs: isize,
    accumulate: bool,
    lhs: View,
    rhs: View,
    beta: f32,
    parallelism: gemm::Parallelism,
) {
    sgemm_with(
        Kernels::chosen(),
        (m, n, k),
        dst,
        dst_rs,
        dst_cs,
        accumulate,
        lhs,
        rhs,
        beta,
        parallelism,
    )
}

/// [`sgemm`] with the micro-kernel set named (tests run each set in one process).
///
/// # Safety
/// As [`sgemm`]; and the CPU must have the instructions of `kernels`.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn sgemm_with(
    kernels: Kernels,
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    dst_rs: isize,
    dst_cs: isize,
    accumulate: bool,
    lhs: View,
    rhs: View,
    beta: f32,
    parallelism: gemm::Parallelism,
) {
    debug_assert!(
        dst_rs > 0 && dst_cs > 0 && lhs.rs >= 0 && lhs.cs >= 0 && rhs.rs >= 0 && rhs.cs >= 0,
        "sgemm takes positive strides (gemm::gemm's flips of negative ones are not repeated here)"
    );
    // Off x86_64 there is no choice to make: the `gemm` crate's own dispatch (NEON, simd128)
    // is the right one.
    #[cfg(not(target_arch = "x86_64"))]
    if kernels == Kernels::Scalar {
        return gemm::gemm(
            m,
            n,
            k,
            dst,
            dst_cs,
            dst_rs,
            accumulate,
            lhs.ptr,
            lhs.cs,
            lhs.rs,
            rhs.ptr,
            rhs.cs,
            rhs.rs,
            1.0,
            beta,
            false,
            false,
            false,
            parallelism,
        );
    }
    // The micro-kernels prefer a column-major destination: compute dstᵀ = rhsᵀ·lhsᵀ instead
    // when dst is row-major (as `gemm::gemm` does).
    let (m, n, dst_rs, dst_cs, lhs, rhs) = if dst_cs.abs() < dst_rs.abs() {
        (n, m, dst_cs, dst_rs, rhs.t(), lhs.t())
    } else {
        (m, n, dst_rs, dst_cs, lhs, rhs)
    };
    macro_rules! run {
        ($simd:ty, $ukr:path, $n:expr) => {{
            use $ukr as u;
            gemm_common::gemm::gemm_basic_generic::<
                _,
                f32,
                { $n },
                { u::MR_DIV_N * $n },
                { u::NR },
                { u::MR_DIV_N },
                { u::H_M },
                { u::H_N },
            >(
                <$simd as MixedSimd<f32, f32, f32, f32>>::try_new()
                    .expect("the CPU lacks the micro-kernels' instructions"),
                m,
                n,
                k,
                dst,
                dst_cs,
                dst_rs,
                accumulate,
                lhs.ptr,
                lhs.cs,
                lhs.rs,
                rhs.ptr,
                rhs.cs,
                rhs.rs,
                1.0,
                beta,
                false,
                false,
                false,
                |a, b, c| a * b + c,
                &u::UKR,
                &u::H_UKR,
                false,
                parallelism,
            )
        }};
    }
    match kernels {
        #[cfg(target_arch = "x86_64")]
        Kernels::Avx512 => run!(
            gemm_common::simd::V4,
            gemm_f32::microkernel::avx512f::f32,
            16
        ),
        #[cfg(target_arch = "x86_64")]
        Kernels::Avx2 => run!(gemm_common::simd::V3, gemm_f32::microkernel::fma::f32, 8),
        _ => run!(
            gemm_common::simd::Scalar,
            gemm_f32::microkernel::scalar::f32,
            1
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], b: &[f32], (m, n, k): (usize, usize, usize)) -> Vec<f32> {
        let mut c = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = 0f64;
                for kk in 0..k {
                    s += a[i * k + kk] as f64 * b[kk * n + j] as f64;
                }
                c[i * n + j] = s as f32;
            }
        }
        c
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        let mut x = seed.wrapping_mul(2654435761).wrapping_add(1);
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    /// Every micro-kernel set this CPU has, on ragged shapes, row- and column-major destinations,
    /// a transposed right operand and accumulation, against a float64 product.
    #[test]
    fn each_kernel_set_matches_a_naive_product() {
        let sets = [Kernels::Avx512, Kernels::Avx2, Kernels::Scalar];
        let mut ran = Vec::new();
        for kernels in sets.into_iter().filter(|k| k.runs_here()) {
            ran.push(kernels);
            for &(m, n, k) in &[
                (1, 1, 1),
                (7, 33, 5),
                (50, 64, 64),
                (129, 97, 300),
                (16, 1, 3),
            ] {
                let a = values(m * k, 1);
                let b = values(k * n, 2);
                let want = naive(&a, &b, (m, n, k));
                let tol = 1e-5 * k as f32;
                // Row-major dst, row-major operands.
                let mut c = vec![0f32; m * n];
                let (lhs, rhs) = (
                    View {
                        ptr: a.as_ptr(),
                        rs: k as isize,
                        cs: 1,
                    },
                    View {
                        ptr: b.as_ptr(),
                        rs: n as isize,
                        cs: 1,
                    },
                );
                unsafe {
                    sgemm_with(
                        kernels,
                        (m, n, k),
                        c.as_mut_ptr(),
                        n as isize,
                        1,
                        false,
                        lhs,
                        rhs,
                        1.0,
                        gemm::Parallelism::None,
                    )
                };
                for (g, w) in c.iter().zip(&want) {
                    assert!((g - w).abs() <= tol, "{kernels:?} {m}x{n}x{k}: {g} vs {w}");
                }
                // Column-major dst, rhs given as its transpose [n, k], accumulating 2·product
                // onto the first result (so dst ends at 3× the product).
                let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
                let mut ct = vec![0f32; m * n];
                for i in 0..m {
                    for j in 0..n {
                        ct[j * m + i] = c[i * n + j];
                    }
                }
                let rhs_t = View {
                    ptr: bt.as_ptr(),
                    rs: 1,
                    cs: k as isize,
                };
                unsafe {
                    sgemm_with(
                        kernels,
                        (m, n, k),
                        ct.as_mut_ptr(),
                        1,
                        m as isize,
                        true,
                        lhs,
                        rhs_t,
                        2.0,
                        gemm::Parallelism::Rayon(2),
                    )
                };
                for i in 0..m {
                    for j in 0..n {
                        let (g, w) = (ct[j * m + i], 3.0 * want[i * n + j]);
                        assert!(
                            (g - w).abs() <= 3.0 * tol,
                            "{kernels:?} col-major {m}x{n}x{k}: {g} vs {w}"
                        );
                    }
                }
            }
        }
        assert!(ran.contains(&Kernels::Scalar));
        if crate::ops::isa() != "baseline" {
            let chosen = Kernels::chosen();
            assert!(
                ran.contains(&chosen),
                "the process's kernel set {chosen:?} was not tested"
            );
        }
    }
}
