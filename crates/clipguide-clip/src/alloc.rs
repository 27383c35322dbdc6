//! Process tuning for tensor workloads: the allocator, and candle's elementwise thread pool.
//!
//! Each forward/backward pass allocates and frees hundreds of multi-megabyte buffers. glibc
//! serves blocks above its (dynamic) mmap threshold with fresh `mmap`s and returns them with
//! `munmap`, so every pass pays page faults, page zeroing and, with two threads, TLB-shootdown
//! IPIs. Keeping such blocks in the heap and not trimming it made the ViT-B/32 forward+backward
//! benchmark 21 % faster here (1.59 s → 1.26 s, 2 threads) for 3 % more peak RSS.

/// Sets glibc's malloc to keep large blocks for reuse. Process-wide: binaries call it once at
/// start (the CLI, the benchmarks); a library user may skip it and lose only speed. A no-op on
/// other C libraries. `CLIPGUIDE_DEFAULT_MALLOC=1` leaves glibc's defaults (for before/after
/// measurements).
pub fn tune_allocator() {
    if std::env::var_os("CLIPGUIDE_DEFAULT_MALLOC").is_some_and(|v| !v.is_empty() && v != "0") {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is safe to call at any time.
    unsafe {
        // 32 MiB is the largest mmap threshold glibc accepts on 64-bit targets.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
}

/// Process-wide settings for tensor work, for binaries to call first thing in `main`:
/// [`tune_allocator`], and candle's elementwise ops kept on the calling thread.
///
/// Why the second: candle runs large elementwise ops on a pool of its own whose workers spin
/// (25,000 rounds) before sleeping, beside rayon's pool that runs every GEMM here. On a machine
/// with as many cores as rayon threads the spinning workers take cycles from the GEMM threads;
/// the ops they would split are memory-bound and take about a millisecond on one thread. A
/// `CANDLE_NUM_THREADS` the user set is left alone (it also reaches child processes). Results
/// are the same bits either way: the ops it affects are elementwise.
///
/// # Safety
/// It sets an environment variable, so no other thread may be running (or reading the
/// environment): call it before anything spawns threads.
pub unsafe fn tune_process() {
    tune_allocator();
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // Read once by candle when its pool starts, which is after this (nothing tensor-shaped
        // has run yet).
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
}
