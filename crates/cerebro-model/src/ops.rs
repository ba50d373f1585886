//! Fused CPU ops with a backward pass, for training: softmax over the last dimension and the
//! normalising part of LayerNorm. candle-nn's fused versions have no backward; composing
//! them from basic ops works but makes many passes over the attention scores, which is most
//! of a training step's time outside the matrix products on a small CPU.
//!
//! And [`infer`]: the kernels that run the shipped (quantized) model for inference.

use candle_core::{bail, CpuStorage, CustomOp1, Layout, Result, Shape, Tensor, D};

fn rows<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<(&'a [f32], usize)> {
    let CpuStorage::F32(data) = storage else {
        bail!("{op}: only f32 is supported")
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        bail!("{op}: the input must be contiguous")
    };
    let dims = layout.dims();
    let d = dims.last().copied().unwrap_or(1).max(1);
    Ok((&data[start..end], d))
}

struct SoftmaxLastDim;

impl CustomOp1 for SoftmaxLastDim {
    fn name(&self) -> &'static str {
        "cerebro-softmax-last-dim"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (data, d) = rows(storage, layout, self.name())?;
        let mut out = data.to_vec();
        for row in out.chunks_mut(d) {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0f32;
            for v in row.iter_mut() {
                *v = (*v - max).exp();
                sum += *v;
            }
            let inv = 1.0 / sum;
            for v in row.iter_mut() {
                *v *= inv;
            }
        }
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        // dx = y ⊙ (g − Σ g ⊙ y)
        let gy = (grad * res)?;
        let s = gy.sum_keepdim(D::Minus1)?;
        Ok(Some((gy - res.broadcast_mul(&s)?)?))
    }
}

/// Softmax over the last dimension, with a backward pass.
pub fn softmax_last_dim(xs: &Tensor) -> Result<Tensor> {
    xs.contiguous()?.apply_op1(SoftmaxLastDim)
}

struct Normalize {
    eps: f32,
}

impl CustomOp1 for Normalize {
    fn name(&self) -> &'static str {
        "cerebro-normalize"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (data, d) = rows(storage, layout, self.name())?;
        let mut out = data.to_vec();
        for row in out.chunks_mut(d) {
            let mean = row.iter().sum::<f32>() / d as f32;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / d as f32;
            let inv = 1.0 / (var + self.eps).sqrt();
            for v in row.iter_mut() {
                *v = (*v - mean) * inv;
            }
        }
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        // With x̂ = (x − μ)/σ: dx = (g − mean(g) − x̂ ⊙ mean(g ⊙ x̂)) / σ.
        let arg = arg.detach();
        let centred = arg.broadcast_sub(&arg.mean_keepdim(D::Minus1)?)?;
        let sigma = (centred.sqr()?.mean_keepdim(D::Minus1)? + self.eps as f64)?.sqrt()?;
        let mean_g = grad.mean_keepdim(D::Minus1)?;
        let mean_gx = (grad * res)?.mean_keepdim(D::Minus1)?;
        let dx = grad
            .broadcast_sub(&mean_g)?
            .sub(&res.broadcast_mul(&mean_gx)?)?
            .broadcast_div(&sigma)?;
        Ok(Some(dx))
    }
}

/// `(x − mean) / sqrt(var + eps)` over the last dimension, with a backward pass.
pub fn normalize(xs: &Tensor, eps: f64) -> Result<Tensor> {
    xs.contiguous()?.apply_op1(Normalize { eps: eps as f32 })
}

/// Inference kernels for the quantized model on x86-64 CPUs with AVX2, FMA and F16C (see
/// `super::quantized::Engine`), one sequence at a time on the calling thread.
///
/// They compute what candle computes for the same model, to the bit: the Q8_0 products
/// quantize their input exactly as candle does on this CPU (Q8_0 blocks, or Q8_K
/// super-blocks where candle's x86 repacked kernels take over: `k` a multiple of 256 and `n`
/// of 16 on AVX-VNNI and AVX512-VNNI CPUs) and accumulate the integer block sums in candle's
/// order, so a product's result is the same `f32`; the f32 attention products are fused
/// multiply-add chains in `gemm`'s order (its horizontal kernel's for small score matrices).
/// Where a kernel mirrors a candle or `gemm` kernel, its comment names it: a candle upgrade
/// that changes those must be checked with `examples/bench_model.rs --check`.
#[cfg(target_arch = "x86_64")]
pub mod infer {
    use std::arch::x86_64::*;
    use std::ops::Range;

    /// Values per Q8_0 block.
    pub const QK8_0: usize = 32;
    /// Values per Q8_K super-block.
    pub const QK_K: usize = 256;

    /// Proof that this CPU has AVX2, FMA and F16C: every kernel takes one. With AVX512-BW
    /// and AVX512-VNNI as well, the products run 512 bits wide (same results).
    #[derive(Debug, Clone, Copy)]
    pub struct Cpu {
        avx512: bool,
    }

    impl Cpu {
        /// The kernels' CPU, or `None` where they cannot run.
        pub fn detect() -> Option<Cpu> {
            (is_x86_feature_detected!("avx2")
                && is_x86_feature_detected!("fma")
                && is_x86_feature_detected!("f16c"))
            .then(|| Cpu {
                avx512: is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw")
                    && is_x86_feature_detected!("avx512vnni"),
            })
        }

        /// The same CPU with the 512-bit kernels off (to test the 256-bit ones).
        pub fn without_avx512(self) -> Cpu {
            Cpu { avx512: false }
        }

        /// How candle quantizes the input of a Q8_0 product of `n` outputs over `k` values on
        /// this CPU (candle-core 0.11's `repack_x86::select` and `level`, environment
        /// overrides included): Q8_K where its AVX-VNNI / AVX512-VNNI repacked kernels apply,
        /// Q8_0 everywhere else.
        pub fn act_format(self, n: usize, k: usize) -> ActFormat {
            if candle_uses_vnni() && k.is_multiple_of(QK_K) && k > 0 && n.is_multiple_of(16) {
                ActFormat::Q8K
            } else {
                ActFormat::Q8_0
            }
        }
    }

    fn candle_uses_vnni() -> bool {
        use std::sync::OnceLock;
        static VNNI: OnceLock<bool> = OnceLock::new();
        *VNNI.get_or_init(|| {
            let env = |k: &str| std::env::var(k).as_deref() == Ok("1");
            let (force_avx2, force_vnni) =
                (env("MISTRALRS_FORCE_AVX2"), env("MISTRALRS_FORCE_AVXVNNI"));
            if !force_avx2
                && !force_vnni
                && is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512vnni")
            {
                return true;
            }
            !force_avx2
                && (force_vnni || is_x86_feature_detected!("avxvnni"))
                && is_x86_feature_detected!("avx2")
        })
    }

    /// How a product's input rows are quantized.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum ActFormat {
        /// Blocks of 32 values with an `f16` scale each (ggml's Q8_0).
        Q8_0,
        /// Super-blocks of 256 values with one `f32` scale (ggml's Q8_K).
        Q8K,
    }

    /// Rows of values quantized for a product: 8-bit values, and a scale for each block of
    /// 32 (a Q8_K super-block's scale repeated for its 8 blocks).
    #[derive(Debug, Default)]
    pub struct QRows {
        qs: Vec<i8>,
        d: Vec<f32>,
        k: usize,
    }

    impl QRows {
        /// Quantizes the rows of `x`, `k` values each (`k` a multiple of 32, or of 256 for
        /// Q8_K), reusing this buffer.
        pub fn quantize(&mut self, cpu: Cpu, x: &[f32], k: usize, format: ActFormat) {
            let _ = cpu;
            assert!(k > 0 && k.is_multiple_of(QK8_0) && x.len().is_multiple_of(k));
            self.k = k;
            self.qs.resize(x.len(), 0);
            self.d.resize(x.len() / QK8_0, 0.0);
            match format {
                // SAFETY: `cpu` proves AVX2, FMA and F16C; the lengths match (set above).
                ActFormat::Q8_0 => unsafe { quantize_q8_0(x, &mut self.qs, &mut self.d) },
                ActFormat::Q8K => {
                    assert!(k.is_multiple_of(QK_K));
                    // SAFETY: as above.
                    unsafe { quantize_q8k(x, &mut self.qs, &mut self.d) }
                }
            }
        }

        /// Number of rows.
        pub fn rows(&self) -> usize {
            self.qs.len().checked_div(self.k).unwrap_or(0)
        }
    }

    /// A Q8_0 weight matrix `(n, k)`, row `c` the weights of output `c`.
    #[derive(Debug, Clone)]
    pub struct Q8Matrix {
        n: usize,
        k: usize,
        qs: Vec<i8>,
        /// Scale of block `b` of row `c` at `c * kb + b`.
        d: Vec<f32>,
        /// The same scales block-major: `b * n + c`.
        d_t: Vec<f32>,
        /// For the 512-bit kernels, the weights laid out again (empty without AVX-512).
        wide: Wide,
    }

    /// Weights laid out for the 512-bit kernels.
    #[derive(Debug, Clone, Default)]
    struct Wide {
        /// Outputs `2p` and `2p + 1`, block `b`, at `(p * kb + b) * 64`: their 4-byte groups
        /// interleaved (`c0[0..4] c1[0..4] c0[4..8] …`).
        pairs: Vec<i8>,
        /// `[d(2p, b), d(2p + 1, b)]` at `(p * kb + b) * 2`.
        pair_d: Vec<f32>,
        /// Outputs `16t..16t + 16`, block `b`, 4-byte group `g`, output `i` at
        /// `((t * kb + b) * 8 + g) * 64 + i * 4`, as `w + 128` (candle's repacked tiles).
        tiles: Vec<u8>,
    }

    impl Q8Matrix {
        /// Reads ggml Q8_0 data (34-byte blocks: an `f16` scale, 32 `i8`), row-major `(n, k)`,
        /// laid out for `cpu`'s kernels.
        pub fn from_q8_0(cpu: Cpu, bytes: &[u8], n: usize, k: usize) -> Option<Q8Matrix> {
            if k == 0 || !k.is_multiple_of(QK8_0) || bytes.len() != n * k / QK8_0 * 34 {
                return None;
            }
            let kb = k / QK8_0;
            let mut qs = Vec::with_capacity(n * k);
            let mut d = Vec::with_capacity(n * kb);
            for block in bytes.chunks_exact(34) {
                d.push(f16_to_f32(u16::from_le_bytes([block[0], block[1]])));
                qs.extend(block[2..].iter().map(|&b| b as i8));
            }
            let mut d_t = vec![0f32; n * kb];
            for c in 0..n {
                for b in 0..kb {
                    d_t[b * n + c] = d[c * kb + b];
                }
            }
            let mut m = Q8Matrix {
                n,
                k,
                qs,
                d,
                d_t,
                wide: Wide::default(),
            };
            if cpu.avx512 {
                m.wide = m.wide_layout();
            }
            Some(m)
        }

        fn wide_layout(&self) -> Wide {
            let (n, kb) = (self.n, self.k / QK8_0);
            let mut w = Wide::default();
            for p in 0..n / 2 {
                for b in 0..kb {
                    let c0 = &self.qs[(2 * p * kb + b) * QK8_0..][..QK8_0];
                    let c1 = &self.qs[((2 * p + 1) * kb + b) * QK8_0..][..QK8_0];
                    for g in 0..QK8_0 / 4 {
                        w.pairs.extend_from_slice(&c0[g * 4..g * 4 + 4]);
                        w.pairs.extend_from_slice(&c1[g * 4..g * 4 + 4]);
                    }
                    w.pair_d.push(self.d[2 * p * kb + b]);
                    w.pair_d.push(self.d[(2 * p + 1) * kb + b]);
                }
            }
            for t in 0..n / 16 {
                for b in 0..kb {
                    for g in 0..QK8_0 / 4 {
                        for i in 0..16 {
                            let q = &self.qs[((16 * t + i) * kb + b) * QK8_0 + g * 4..][..4];
                            w.tiles.extend(q.iter().map(|&v| (v as i16 + 128) as u8));
                        }
                    }
                }
            }
            w
        }

        pub fn outputs(&self) -> usize {
            self.n
        }

        pub fn inputs(&self) -> usize {
            self.k
        }

        /// `out[r * stride + (c - cols.start)] = a_r · w_c` for every row `r` of `a` and
        /// output `c` in `cols`, summed the way candle sums for `format` (the format `a` was
        /// quantized with).
        pub fn matmul(
            &self,
            cpu: Cpu,
            a: &QRows,
            format: ActFormat,
            cols: Range<usize>,
            out: &mut [f32],
            stride: usize,
        ) {
            let _ = cpu;
            let rows = a.rows();
            assert!(a.k == self.k && cols.end <= self.n && cols.start <= cols.end);
            assert!(rows == 0 || out.len() >= (rows - 1) * stride + cols.len());
            assert!(cols.len() <= stride || rows <= 1);
            let kb = self.k / QK8_0;
            let wide = cpu.avx512 && !self.wide.pairs.is_empty() && kb <= MAX_WIDE_BLOCKS;
            // SAFETY: `cpu` proves the CPU features (AVX-512 ones for the wide kernels, whose
            // layout exists only then); the asserts bound every access.
            unsafe {
                match format {
                    ActFormat::Q8_0 if wide => {
                        let mut c = cols.start;
                        if c % 2 == 1 && c < cols.end {
                            self.matmul_q8_0(a, c..c + 1, out, stride);
                            c += 1;
                        }
                        let end = c + (cols.end - c) / 2 * 2;
                        self.matmul_q8_0_wide(a, c..end, &mut out[c - cols.start..], stride);
                        if end < cols.end {
                            self.matmul_q8_0(
                                a,
                                end..cols.end,
                                &mut out[end - cols.start..],
                                stride,
                            );
                        }
                    }
                    ActFormat::Q8K
                        if wide
                            && cols.start.is_multiple_of(16)
                            && cols.len().is_multiple_of(16) =>
                    {
                        self.matmul_q8k_wide(a, cols, out, stride)
                    }
                    ActFormat::Q8_0 => self.matmul_q8_0(a, cols, out, stride),
                    ActFormat::Q8K => self.matmul_q8k(a, cols, out, stride),
                }
            }
        }

        /// [`Q8Matrix::matmul_q8_0`] two outputs per register: output `2p` in the even lanes,
        /// `2p + 1` in the odd ones, each lane the same sum as candle's lane; the block sums
        /// from VNNI's `vpdpbusd` (`|a|` times `w` with `a`'s sign), the same integers.
        #[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma")]
        unsafe fn matmul_q8_0_wide(
            &self,
            a: &QRows,
            cols: Range<usize>,
            out: &mut [f32],
            stride: usize,
        ) {
            let (k, kb) = (self.k, self.k / QK8_0);
            let dup = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
            let zero = _mm512_setzero_si512();
            let mut ua = [zero; MAX_WIDE_BLOCKS];
            let mut neg = [0u64; MAX_WIDE_BLOCKS];
            let mut da = [_mm512_setzero_ps(); MAX_WIDE_BLOCKS];
            let pairs = self.wide.pairs.as_ptr();
            let pair_d = self.wide.pair_d.as_ptr();
            for r in 0..a.rows() {
                for b in 0..kb {
                    let v = _mm256_loadu_si256(a.qs.as_ptr().add(r * k + b * QK8_0) as *const _);
                    let v = _mm512_permutexvar_epi32(dup, _mm512_castsi256_si512(v));
                    ua[b] = _mm512_abs_epi8(v);
                    neg[b] = _mm512_movepi8_mask(v);
                    da[b] = _mm512_set1_ps(a.d[r * kb + b]);
                }
                let o = &mut out[r * stride..];
                let mut c = cols.start;
                while c + 4 <= cols.end {
                    let (p0, p1) = (c / 2, c / 2 + 1);
                    let mut acc0 = _mm512_setzero_ps();
                    let mut acc1 = _mm512_setzero_ps();
                    for b in 0..kb {
                        let w0 = _mm512_loadu_si512(pairs.add((p0 * kb + b) * 64) as *const _);
                        let w1 = _mm512_loadu_si512(pairs.add((p1 * kb + b) * 64) as *const _);
                        let w0 = _mm512_mask_sub_epi8(w0, neg[b], zero, w0);
                        let w1 = _mm512_mask_sub_epi8(w1, neg[b], zero, w1);
                        let f0 = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(zero, ua[b], w0));
                        let f1 = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(zero, ua[b], w1));
                        let d0 = _mm512_mul_ps(pair_scales(pair_d.add((p0 * kb + b) * 2)), da[b]);
                        let d1 = _mm512_mul_ps(pair_scales(pair_d.add((p1 * kb + b) * 2)), da[b]);
                        acc0 = _mm512_fmadd_ps(d0, f0, acc0);
                        acc1 = _mm512_fmadd_ps(d1, f1, acc1);
                    }
                    finish_pairs(acc0, acc1, &mut o[c - cols.start..c + 4 - cols.start]);
                    c += 4;
                }
                while c + 2 <= cols.end {
                    let p = c / 2;
                    let mut acc = _mm512_setzero_ps();
                    for b in 0..kb {
                        let w = _mm512_loadu_si512(pairs.add((p * kb + b) * 64) as *const _);
                        let w = _mm512_mask_sub_epi8(w, neg[b], zero, w);
                        let f = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(zero, ua[b], w));
                        let d = _mm512_mul_ps(pair_scales(pair_d.add((p * kb + b) * 2)), da[b]);
                        acc = _mm512_fmadd_ps(d, f, acc);
                    }
                    let mut two = [0f32; 4];
                    finish_pairs(acc, _mm512_setzero_ps(), &mut two);
                    o[c - cols.start..c + 2 - cols.start].copy_from_slice(&two[..2]);
                    c += 2;
                }
            }
        }

        /// candle's AVX512-VNNI repacked Q8_0 kernel, sixteen outputs per register: per block
        /// `vpdpbusd` of `w + 128` with the values, less `128 · Σ values`, then
        /// `acc = fma(sum, d_w · d_a, acc)`.
        #[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma")]
        unsafe fn matmul_q8k_wide(
            &self,
            a: &QRows,
            cols: Range<usize>,
            out: &mut [f32],
            stride: usize,
        ) {
            let (n, k, kb) = (self.n, self.k, self.k / QK8_0);
            let tiles = self.wide.tiles.as_ptr();
            let mut bsum = [0f32; MAX_WIDE_BLOCKS];
            for r in 0..a.rows() {
                let aq = a.qs.as_ptr().add(r * k);
                for (b, s) in bsum.iter_mut().enumerate().take(kb) {
                    let v = std::slice::from_raw_parts(aq.add(b * QK8_0), QK8_0);
                    *s = 128.0 * v.iter().map(|&q| q as i32).sum::<i32>() as f32;
                }
                let o = &mut out[r * stride..];
                for t in cols.start / 16..cols.end / 16 {
                    let mut acc = _mm512_setzero_ps();
                    for (b, &bsum) in bsum.iter().enumerate().take(kb) {
                        let mut isum = _mm512_setzero_si512();
                        let tile = tiles.add((t * kb + b) * 8 * 64);
                        for g in 0..8 {
                            let w = _mm512_loadu_si512(tile.add(g * 64) as *const _);
                            let group = (aq.add(b * QK8_0 + g * 4) as *const i32).read_unaligned();
                            isum = _mm512_dpbusd_epi32(isum, w, _mm512_set1_epi32(group));
                        }
                        let f = _mm512_sub_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(bsum));
                        let dw = _mm512_loadu_ps(self.d_t.as_ptr().add(b * n + t * 16));
                        let s = _mm512_mul_ps(dw, _mm512_set1_ps(a.d[r * kb + b]));
                        acc = _mm512_fmadd_ps(f, s, acc);
                    }
                    _mm512_storeu_ps(o.as_mut_ptr().add(t * 16 - cols.start), acc);
                }
            }
        }

        /// candle's `vec_dot_q8_0_q8_0` (AVX2) for each output: per block, eight lanes of
        /// integer sums scaled and accumulated in `f32`, then candle's horizontal sum.
        #[target_feature(enable = "avx2,fma")]
        unsafe fn matmul_q8_0(
            &self,
            a: &QRows,
            cols: Range<usize>,
            out: &mut [f32],
            stride: usize,
        ) {
            let (k, kb) = (self.k, self.k / QK8_0);
            let ones = _mm256_set1_epi16(1);
            for r in 0..a.rows() {
                let aq = a.qs.as_ptr().add(r * k);
                let ad = &a.d[r * kb..(r + 1) * kb];
                let o = &mut out[r * stride..];
                let mut c = cols.start;
                while c + 4 <= cols.end {
                    let mut acc = [_mm256_setzero_ps(); 4];
                    for (b, &da) in ad.iter().enumerate() {
                        let by = _mm256_loadu_si256(aq.add(b * QK8_0) as *const __m256i);
                        for (j, acc) in acc.iter_mut().enumerate() {
                            let row = (c + j) * kb + b;
                            let bx = _mm256_loadu_si256(
                                self.qs.as_ptr().add(row * QK8_0) as *const __m256i
                            );
                            let d = _mm256_set1_ps(*self.d.get_unchecked(row) * da);
                            let q = mul_sum_i8_pairs_float(bx, by, ones);
                            *acc = _mm256_fmadd_ps(d, q, *acc);
                        }
                    }
                    for (j, acc) in acc.iter().enumerate() {
                        o[c - cols.start + j] = hsum_float_8(*acc);
                    }
                    c += 4;
                }
                while c < cols.end {
                    let mut acc = _mm256_setzero_ps();
                    for (b, &da) in ad.iter().enumerate() {
                        let row = c * kb + b;
                        let by = _mm256_loadu_si256(aq.add(b * QK8_0) as *const __m256i);
                        let bx =
                            _mm256_loadu_si256(self.qs.as_ptr().add(row * QK8_0) as *const __m256i);
                        let d = _mm256_set1_ps(*self.d.get_unchecked(row) * da);
                        acc = _mm256_fmadd_ps(d, mul_sum_i8_pairs_float(bx, by, ones), acc);
                    }
                    o[c - cols.start] = hsum_float_8(acc);
                    c += 1;
                }
            }
        }

        /// candle's repacked VNNI kernels for each output: per block the exact integer sum,
        /// `acc = fma(sum, d_w * d_a, acc)` over the blocks in order.
        #[target_feature(enable = "avx2,fma")]
        unsafe fn matmul_q8k(&self, a: &QRows, cols: Range<usize>, out: &mut [f32], stride: usize) {
            let (n, k, kb) = (self.n, self.k, self.k / QK8_0);
            let ones = _mm256_set1_epi16(1);
            for r in 0..a.rows() {
                let aq = a.qs.as_ptr().add(r * k);
                let ad = &a.d[r * kb..(r + 1) * kb];
                let o = &mut out[r * stride..];
                let mut c = cols.start;
                while c + 8 <= cols.end {
                    let mut acc = _mm256_setzero_ps();
                    for (b, &da) in ad.iter().enumerate() {
                        let by = _mm256_loadu_si256(aq.add(b * QK8_0) as *const __m256i);
                        let mut p = [_mm256_setzero_si256(); 8];
                        for (j, p) in p.iter_mut().enumerate() {
                            let bx = _mm256_loadu_si256(
                                self.qs.as_ptr().add(((c + j) * kb + b) * QK8_0) as *const __m256i,
                            );
                            *p = mul_sum_i8_pairs(bx, by, ones);
                        }
                        let isum = hsum_8x8_i32(&p);
                        let s = _mm256_mul_ps(
                            _mm256_loadu_ps(self.d_t.as_ptr().add(b * n + c)),
                            _mm256_set1_ps(da),
                        );
                        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), s, acc);
                    }
                    _mm256_storeu_ps(o.as_mut_ptr().add(c - cols.start), acc);
                    c += 8;
                }
                while c < cols.end {
                    let mut acc = 0f32;
                    for (b, &da) in ad.iter().enumerate() {
                        let by = _mm256_loadu_si256(aq.add(b * QK8_0) as *const __m256i);
                        let bx = _mm256_loadu_si256(
                            self.qs.as_ptr().add((c * kb + b) * QK8_0) as *const __m256i
                        );
                        let isum = hsum_i32_8(mul_sum_i8_pairs(bx, by, ones));
                        acc = (isum as f32).mul_add(self.d_t[b * n + c] * da, acc);
                    }
                    o[c - cols.start] = acc;
                    c += 1;
                }
            }
        }
    }

    /// An `f32` weight matrix `(n, k)` (layers too small to quantize, and unquantized files).
    #[derive(Debug, Clone)]
    pub struct F32Matrix {
        n: usize,
        k: usize,
        w: Vec<f32>,
    }

    impl F32Matrix {
        pub fn new(w: Vec<f32>, n: usize, k: usize) -> Option<F32Matrix> {
            (w.len() == n * k).then_some(F32Matrix { n, k, w })
        }

        pub fn outputs(&self) -> usize {
            self.n
        }

        pub fn inputs(&self) -> usize {
            self.k
        }

        /// `out[r * stride + (c - cols.start)] = x_r · w_c` for the rows of `x` (`k` values
        /// each).
        pub fn matmul(
            &self,
            cpu: Cpu,
            x: &[f32],
            cols: Range<usize>,
            out: &mut [f32],
            stride: usize,
        ) {
            let _ = cpu;
            let k = self.k;
            assert!(k > 0 && x.len().is_multiple_of(k));
            assert!(cols.end <= self.n && cols.start <= cols.end);
            let rows = x.len() / k;
            assert!(rows == 0 || out.len() >= (rows - 1) * stride + cols.len());
            for r in 0..rows {
                let xr = &x[r * k..(r + 1) * k];
                for c in cols.clone() {
                    // SAFETY: `cpu` proves AVX2 and FMA; both slices hold `k` values.
                    out[r * stride + c - cols.start] =
                        unsafe { dot_f32(xr, &self.w[c * k..(c + 1) * k]) };
                }
            }
        }
    }

    /// Scores of one query against keys stored transposed: `out[j] = Σ_d q[d] · kt[d][j]`
    /// for `j < out.len()`, with `kt` rows `stride` apart (`stride` ≥ `out.len()` rounded up
    /// to 8, the padding zero). Each score is one fused multiply-add chain over `d` in order.
    pub fn attention_scores(cpu: Cpu, q: &[f32], kt: &[f32], stride: usize, out: &mut [f32]) {
        let _ = cpu;
        let n8 = out.len().div_ceil(8) * 8;
        assert!(stride >= n8 && kt.len() >= q.len() * stride && stride.is_multiple_of(8));
        // SAFETY: `cpu` proves AVX2 and FMA; the assert bounds every load.
        unsafe { scores_avx(q, kt, stride, out) }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn scores_avx(q: &[f32], kt: &[f32], stride: usize, out: &mut [f32]) {
        let n = out.len();
        let mut tmp = [0f32; 32];
        let mut j = 0;
        while j < n {
            let mut acc = [_mm256_setzero_ps(); 4];
            let width = (n8_of(n) - j).min(32) / 8;
            for (d, &qd) in q.iter().enumerate() {
                let qv = _mm256_set1_ps(qd);
                let row = kt.as_ptr().add(d * stride + j);
                for (u, acc) in acc.iter_mut().enumerate().take(width) {
                    *acc = _mm256_fmadd_ps(qv, _mm256_loadu_ps(row.add(u * 8)), *acc);
                }
            }
            for (u, acc) in acc.iter().enumerate().take(width) {
                _mm256_storeu_ps(tmp.as_mut_ptr().add(u * 8), *acc);
            }
            let take = (n - j).min(32);
            out[j..j + take].copy_from_slice(&tmp[..take]);
            j += 32;
        }
    }

    /// Scores of one query against keys stored by rows (`keys[j * stride..][..q.len()]`),
    /// summed the way `gemm`'s horizontal kernel sums them (what candle runs when the score
    /// matrix has at most 256 entries): eight lanes of fused multiply-adds over `d`, then
    /// candle's horizontal sum.
    pub fn attention_scores_by_rows(
        cpu: Cpu,
        q: &[f32],
        keys: &[f32],
        stride: usize,
        out: &mut [f32],
    ) {
        let _ = cpu;
        let hd = q.len();
        assert!(out.is_empty() || keys.len() >= (out.len() - 1) * stride + hd);
        // SAFETY: `cpu` proves AVX2 and FMA; the assert bounds every load.
        unsafe { scores_by_rows_avx(q, keys, stride, out) }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn scores_by_rows_avx(q: &[f32], keys: &[f32], stride: usize, out: &mut [f32]) {
        let hd = q.len();
        let full = hd / 8 * 8;
        let mut q_tail = [0f32; 8];
        q_tail[..hd - full].copy_from_slice(&q[full..]);
        let mut k_tail = [0f32; 8];
        for (j, o) in out.iter_mut().enumerate() {
            let key = &keys[j * stride..j * stride + hd];
            let mut acc = _mm256_setzero_ps();
            let mut d = 0;
            while d < full {
                acc = _mm256_fmadd_ps(
                    _mm256_loadu_ps(q.as_ptr().add(d)),
                    _mm256_loadu_ps(key.as_ptr().add(d)),
                    acc,
                );
                d += 8;
            }
            if full < hd {
                k_tail[..hd - full].copy_from_slice(&key[full..]);
                acc = _mm256_fmadd_ps(
                    _mm256_loadu_ps(q_tail.as_ptr()),
                    _mm256_loadu_ps(k_tail.as_ptr()),
                    acc,
                );
            }
            *o = hsum_float_8(acc);
        }
    }

    fn n8_of(n: usize) -> usize {
        n.div_ceil(8) * 8
    }

    /// `out[d] = Σ_j p[j] · v_j[d]`, `v_j` the `out.len()` values at `v[j * stride..]`: a
    /// fused multiply-add chain over `j` in order for each `d`.
    pub fn attention_context(cpu: Cpu, p: &[f32], v: &[f32], stride: usize, out: &mut [f32]) {
        let _ = cpu;
        let hd = out.len();
        assert!(p.is_empty() || v.len() >= (p.len() - 1) * stride + hd);
        // SAFETY: `cpu` proves AVX2 and FMA; the assert bounds every load.
        unsafe { context_avx(p, v, stride, out) }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn context_avx(p: &[f32], v: &[f32], stride: usize, out: &mut [f32]) {
        let hd = out.len();
        let mut d0 = 0;
        while d0 + 32 <= hd {
            let mut acc = [_mm256_setzero_ps(); 4];
            for (j, &pj) in p.iter().enumerate() {
                let pv = _mm256_set1_ps(pj);
                let row = v.as_ptr().add(j * stride + d0);
                for (u, acc) in acc.iter_mut().enumerate() {
                    *acc = _mm256_fmadd_ps(pv, _mm256_loadu_ps(row.add(u * 8)), *acc);
                }
            }
            for (u, acc) in acc.iter().enumerate() {
                _mm256_storeu_ps(out.as_mut_ptr().add(d0 + u * 8), *acc);
            }
            d0 += 32;
        }
        while d0 + 8 <= hd {
            let mut acc = _mm256_setzero_ps();
            for (j, &pj) in p.iter().enumerate() {
                let row = v.as_ptr().add(j * stride + d0);
                acc = _mm256_fmadd_ps(_mm256_set1_ps(pj), _mm256_loadu_ps(row), acc);
            }
            _mm256_storeu_ps(out.as_mut_ptr().add(d0), acc);
            d0 += 8;
        }
        for (d, o) in out.iter_mut().enumerate().skip(d0) {
            let mut acc = 0f32;
            for (j, &pj) in p.iter().enumerate() {
                acc = pj.mul_add(*v.get_unchecked(j * stride + d), acc);
            }
            *o = acc;
        }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let mut acc = _mm256_setzero_ps();
        let mut i = 0;
        while i + 8 <= n {
            acc = _mm256_fmadd_ps(
                _mm256_loadu_ps(a.as_ptr().add(i)),
                _mm256_loadu_ps(b.as_ptr().add(i)),
                acc,
            );
            i += 8;
        }
        let mut s = hsum_float_8(acc);
        while i < n {
            s = a[i].mul_add(b[i], s);
            i += 1;
        }
        s
    }

    /// Most blocks per row the 512-bit kernels take (`k` up to 2048).
    const MAX_WIDE_BLOCKS: usize = 64;

    /// Writes the outputs of two pair registers (each: one output in the even lanes, the
    /// next in the odd ones) to `o[0..4]`, each the sum of its eight lanes in candle's order
    /// (`hsum_float_8`: `(l0 + l4) + (l2 + l6)` plus `(l1 + l5) + (l3 + l7)`), four at once.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn finish_pairs(a: __m512, b: __m512, o: &mut [f32]) {
        // Lanes i and i + 4 of each output: the low and high 256 bits.
        let lo = _mm512_shuffle_f32x4::<0x44>(a, b);
        let hi = _mm512_shuffle_f32x4::<0xEE>(a, b);
        let s = _mm512_add_ps(hi, lo);
        // Then (0 + 2) and (1 + 3): the low and high 128 bits of each half.
        let lo = _mm512_shuffle_f32x4::<0x88>(s, s);
        let hi = _mm512_shuffle_f32x4::<0xDD>(s, s);
        let t = _mm512_add_ps(lo, hi);
        // Then the two: lanes 0, 1 plus lanes 2, 3 of each 128 bits.
        let r = _mm512_add_ps(t, _mm512_permute_ps::<0xEE>(t));
        let r = _mm512_permutexvar_ps(
            _mm512_setr_epi32(0, 1, 4, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
            r,
        );
        let o = &mut o[..4];
        // SAFETY: `o` holds four values.
        unsafe { _mm_storeu_ps(o.as_mut_ptr(), _mm512_castps512_ps128(r)) };
    }

    /// `[d0, d1]` at `p` repeated over the sixteen lanes.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn pair_scales(p: *const f32) -> __m512 {
        let bits = (p as *const f64).read_unaligned();
        _mm512_castpd_ps(_mm512_set1_pd(bits))
    }

    /// candle's `mul_sum_i8_pairs_float` without the conversion: eight lanes, each the sum
    /// of four consecutive products `x_i · y_i`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn mul_sum_i8_pairs(x: __m256i, y: __m256i, ones: __m256i) -> __m256i {
        let ax = _mm256_sign_epi8(x, x);
        let sy = _mm256_sign_epi8(y, x);
        _mm256_madd_epi16(ones, _mm256_maddubs_epi16(ax, sy))
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    fn mul_sum_i8_pairs_float(x: __m256i, y: __m256i, ones: __m256i) -> __m256 {
        _mm256_cvtepi32_ps(mul_sum_i8_pairs(x, y, ones))
    }

    /// candle's `hsum_float_8`, in its order.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn hsum_float_8(x: __m256) -> f32 {
        let res = _mm256_extractf128_ps(x, 1);
        let res = _mm_add_ps(res, _mm256_castps256_ps128(x));
        let res = _mm_add_ps(res, _mm_movehl_ps(res, res));
        let res = _mm_add_ss(res, _mm_movehdup_ps(res));
        _mm_cvtss_f32(res)
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    fn hsum_i32_8(x: __m256i) -> i32 {
        let s = _mm_add_epi32(_mm256_castsi256_si128(x), _mm256_extracti128_si256(x, 1));
        let s = _mm_hadd_epi32(s, s);
        let s = _mm_hadd_epi32(s, s);
        _mm_cvtsi128_si32(s)
    }

    /// The lane sums of eight vectors, as one vector (lane `j` the sum of `p[j]`).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn hsum_8x8_i32(p: &[__m256i; 8]) -> __m256i {
        let s01 = _mm256_hadd_epi32(p[0], p[1]);
        let s23 = _mm256_hadd_epi32(p[2], p[3]);
        let s45 = _mm256_hadd_epi32(p[4], p[5]);
        let s67 = _mm256_hadd_epi32(p[6], p[7]);
        let s0123 = _mm256_hadd_epi32(s01, s23);
        let s4567 = _mm256_hadd_epi32(s45, s67);
        _mm256_add_epi32(
            _mm256_permute2x128_si256(s0123, s4567, 0x20),
            _mm256_permute2x128_si256(s0123, s4567, 0x31),
        )
    }

    /// `f32::round(v)` (halves away from zero) for values of magnitude below 2^23.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn round_half_away(v: __m256) -> __m256 {
        let t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
        let frac = _mm256_sub_ps(v, t);
        let sign = _mm256_and_ps(v, _mm256_set1_ps(-0.0));
        let abs_frac = _mm256_andnot_ps(_mm256_set1_ps(-0.0), frac);
        let away = _mm256_cmp_ps(abs_frac, _mm256_set1_ps(0.5), _CMP_GE_OQ);
        let one = _mm256_or_ps(_mm256_set1_ps(1.0), sign);
        _mm256_add_ps(t, _mm256_and_ps(away, one))
    }

    /// Stores 32 values (rounded to integers already) as saturated `i8`, in order.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn store_i8_32(v: [__m256; 4], out: *mut i8) {
        let i0 = _mm256_cvtps_epi32(v[0]);
        let i1 = _mm256_cvtps_epi32(v[1]);
        let i2 = _mm256_cvtps_epi32(v[2]);
        let i3 = _mm256_cvtps_epi32(v[3]);
        let a = _mm256_packs_epi32(i0, i1);
        let b = _mm256_packs_epi32(i2, i3);
        let x = _mm256_packs_epi16(a, b);
        let x = _mm256_permutevar8x32_epi32(x, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256(out as *mut __m256i, x);
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    fn hmax_8(x: __m256) -> f32 {
        let m = _mm_max_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
        let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        let m = _mm_max_ss(m, _mm_movehdup_ps(m));
        _mm_cvtss_f32(m)
    }

    /// candle's `BlockQ8_0::from_float`: per block of 32, `d = amax / 127` (stored as `f16`),
    /// values `round(x / d)`.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn quantize_q8_0(x: &[f32], qs: &mut [i8], d: &mut [f32]) {
        let abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
        for (b, (xb, db)) in x.chunks_exact(QK8_0).zip(d.iter_mut()).enumerate() {
            let p = xb.as_ptr();
            let v = [
                _mm256_loadu_ps(p),
                _mm256_loadu_ps(p.add(8)),
                _mm256_loadu_ps(p.add(16)),
                _mm256_loadu_ps(p.add(24)),
            ];
            let m = _mm256_max_ps(
                _mm256_max_ps(_mm256_and_ps(v[0], abs_mask), _mm256_and_ps(v[1], abs_mask)),
                _mm256_max_ps(_mm256_and_ps(v[2], abs_mask), _mm256_and_ps(v[3], abs_mask)),
            );
            let amax = hmax_8(m);
            let scale = amax / 127.0;
            let inv = if scale != 0.0 { 1.0 / scale } else { 0.0 };
            *db = f16_round_trip(scale);
            let iv = _mm256_set1_ps(inv);
            let r = [
                round_half_away(_mm256_mul_ps(v[0], iv)),
                round_half_away(_mm256_mul_ps(v[1], iv)),
                round_half_away(_mm256_mul_ps(v[2], iv)),
                round_half_away(_mm256_mul_ps(v[3], iv)),
            ];
            store_i8_32(r, qs.as_mut_ptr().add(b * QK8_0));
        }
    }

    /// candle's `BlockQ8K::from_float`: per super-block of 256, `max` the first value of
    /// largest magnitude, values `round(-127 / max · x)`, scale `1 / (-127 / max)`.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn quantize_q8k(x: &[f32], qs: &mut [i8], d: &mut [f32]) {
        for (s, (xs, ds)) in x
            .chunks_exact(QK_K)
            .zip(d.chunks_exact_mut(QK_K / QK8_0))
            .enumerate()
        {
            // The first value of largest magnitude (candle keeps the first on ties).
            let amax = max_abs(xs);
            let max = xs.iter().copied().find(|v| v.abs() == amax).unwrap_or(0.0);
            let out = qs.as_mut_ptr().add(s * QK_K);
            if amax == 0.0 {
                std::ptr::write_bytes(out, 0, QK_K);
                ds.fill(0.0);
                continue;
            }
            let iscale = -127f32 / max;
            let iv = _mm256_set1_ps(iscale);
            for (b, xb) in xs.chunks_exact(QK8_0).enumerate() {
                let p = xb.as_ptr();
                let v = [
                    _mm256_loadu_ps(p),
                    _mm256_loadu_ps(p.add(8)),
                    _mm256_loadu_ps(p.add(16)),
                    _mm256_loadu_ps(p.add(24)),
                ];
                let r = [
                    round_half_away(_mm256_mul_ps(iv, v[0])),
                    round_half_away(_mm256_mul_ps(iv, v[1])),
                    round_half_away(_mm256_mul_ps(iv, v[2])),
                    round_half_away(_mm256_mul_ps(iv, v[3])),
                ];
                store_i8_32(r, out.add(b * QK8_0));
            }
            ds.fill(1.0 / iscale);
        }
    }

    /// Largest magnitude in `xs` (0 for none; NaN ignored).
    #[target_feature(enable = "avx2")]
    fn max_abs(xs: &[f32]) -> f32 {
        let abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
        let mut m = _mm256_setzero_ps();
        let chunks = xs.chunks_exact(8);
        let rest = chunks.remainder();
        for c in chunks {
            // SAFETY: `c` holds 8 values.
            let v = unsafe { _mm256_loadu_ps(c.as_ptr()) };
            m = _mm256_max_ps(_mm256_and_ps(v, abs_mask), m);
        }
        rest.iter().fold(hmax_8(m), |m, v| m.max(v.abs()))
    }

    /// Largest value of a non-empty row (as `f32::max` folds it; NaN ignored, so for the
    /// finite values of a score row the same value).
    pub fn max(cpu: Cpu, xs: &[f32]) -> f32 {
        let _ = cpu;
        // SAFETY: `cpu` proves AVX2.
        unsafe { max_avx(xs) }
    }

    #[target_feature(enable = "avx2")]
    unsafe fn max_avx(xs: &[f32]) -> f32 {
        let mut m = _mm256_set1_ps(f32::NEG_INFINITY);
        let chunks = xs.chunks_exact(8);
        let rest = chunks.remainder();
        for c in chunks {
            m = _mm256_max_ps(_mm256_loadu_ps(c.as_ptr()), m);
        }
        rest.iter().fold(hmax_8(m), |m, &v| m.max(v))
    }

    /// `x` rounded to the nearest `f16` (ties to even) and back.
    #[inline]
    #[target_feature(enable = "f16c")]
    fn f16_round_trip(x: f32) -> f32 {
        let h = _mm_cvtps_ph(_mm_set_ss(x), _MM_FROUND_TO_NEAREST_INT);
        _mm_cvtss_f32(_mm_cvtph_ps(h))
    }

    /// An IEEE half's bits as `f32` (exact).
    pub fn f16_to_f32(h: u16) -> f32 {
        let negative = h & 0x8000 != 0;
        let sign = ((h as u32) & 0x8000) << 16;
        let exp = ((h >> 10) & 0x1f) as u32;
        let man = (h & 0x3ff) as u32;
        match (exp, man) {
            // Zero and subnormals: man · 2^-24, exact in f32.
            (0, _) => {
                let v = man as f32 * f32::powi(2.0, -24);
                if negative {
                    -v
                } else {
                    v
                }
            }
            (0x1f, 0) => f32::from_bits(sign | 0x7f80_0000),
            (0x1f, _) => f32::from_bits(sign | 0x7fc0_0000 | (man << 13)),
            _ => f32::from_bits(sign | ((exp + 127 - 15) << 23) | (man << 13)),
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn cpu() -> Option<Cpu> {
            Cpu::detect()
        }

        #[test]
        fn f16_bits_convert_exactly() {
            assert_eq!(f16_to_f32(0x3c00), 1.0);
            assert_eq!(f16_to_f32(0xc000), -2.0);
            assert_eq!(f16_to_f32(0x0001), f32::powi(2.0, -24));
            assert_eq!(f16_to_f32(0x8001), -f32::powi(2.0, -24));
            assert_eq!(f16_to_f32(0x7bff), 65504.0);
            assert!(f16_to_f32(0x7c00).is_infinite());
            if cpu().is_some() {
                for h in (0u16..0x7c00).step_by(7).chain([0x03ff, 0x0400, 0x8400]) {
                    let f = f16_to_f32(h);
                    // SAFETY: F16C is there (checked).
                    assert_eq!(unsafe { f16_round_trip(f) }, f, "{h:#x}");
                }
            }
        }

        #[test]
        fn rounding_is_halves_away_from_zero() {
            let Some(_) = cpu() else { return };
            let xs = [
                0.5f32,
                1.5,
                2.5,
                -0.5,
                -1.5,
                -2.5,
                0.49999997,
                -0.49999997,
                126.5,
                -126.5,
                3.2,
                -3.7,
                0.0,
                -0.0,
                127.0,
                1e-8,
            ];
            let mut got = [0f32; 16];
            // SAFETY: AVX2 is there (checked).
            unsafe {
                for (i, chunk) in xs.chunks(8).enumerate() {
                    let r = round_half_away(_mm256_loadu_ps(chunk.as_ptr()));
                    _mm256_storeu_ps(got.as_mut_ptr().add(i * 8), r);
                }
            }
            for (x, g) in xs.iter().zip(got) {
                assert_eq!(x.round(), g, "{x}");
            }
        }

        /// The reference: candle's scalar quantization and dot products.
        fn reference_q8_0(x: &[f32]) -> (Vec<i8>, Vec<f32>) {
            let mut qs = Vec::new();
            let mut d = Vec::new();
            for b in x.chunks(QK8_0) {
                let amax = b.iter().fold(0f32, |m, v| m.max(v.abs()));
                let s = amax / 127.0;
                let id = if s != 0.0 { 1.0 / s } else { 0.0 };
                // SAFETY: F16C is there (the callers check).
                d.push(unsafe { f16_round_trip(s) });
                qs.extend(b.iter().map(|v| (v * id).round() as i8));
            }
            (qs, d)
        }

        fn values(n: usize, seed: u32) -> Vec<f32> {
            let mut s = seed.wrapping_mul(2_654_435_761).max(1);
            (0..n)
                .map(|i| {
                    s ^= s << 13;
                    s ^= s >> 17;
                    s ^= s << 5;
                    let v = (s % 20_001) as f32 / 10_000.0 - 1.0;
                    if i % 97 == 0 {
                        v * 40.0
                    } else {
                        v * 3.0
                    }
                })
                .collect()
        }

        #[test]
        fn q8_0_quantization_matches_candles() {
            let Some(cpu) = cpu() else { return };
            let mut x = values(256 * 3, 1);
            x[32..64].fill(0.0);
            let mut q = QRows::default();
            q.quantize(cpu, &x, 256, ActFormat::Q8_0);
            let (qs, d) = reference_q8_0(&x);
            assert_eq!(q.qs, qs);
            assert_eq!(q.d, d);
            assert_eq!(q.rows(), 3);
        }

        #[test]
        fn q8k_quantization_matches_candles() {
            let Some(cpu) = cpu() else { return };
            let mut x = values(512, 2);
            x[300] = -50.0;
            x[400] = 50.0;
            let mut q = QRows::default();
            q.quantize(cpu, &x, 512, ActFormat::Q8K);
            for (s, xs) in x.chunks(QK_K).enumerate() {
                let (mut amax, mut max) = (0f32, 0f32);
                for &v in xs {
                    if amax < v.abs() {
                        amax = v.abs();
                        max = v;
                    }
                }
                let iscale = -127f32 / max;
                for (j, &v) in xs.iter().enumerate() {
                    let e = (iscale * v).round().clamp(-128.0, 127.0) as i8;
                    assert_eq!(q.qs[s * QK_K + j], e);
                }
                assert!(q.d[s * 8..s * 8 + 8].iter().all(|&d| d == 1.0 / iscale));
            }
        }

        fn matrix(n: usize, k: usize, seed: u32) -> (Q8Matrix, Vec<i8>, Vec<f32>) {
            let w = values(n * k, seed);
            let (qs, d) = reference_q8_0(&w);
            let mut bytes = Vec::new();
            for (b, &s) in d.iter().enumerate() {
                // SAFETY: F16C is there (the callers check).
                let h = unsafe { _mm_extract_epi16(_mm_cvtps_ph(_mm_set_ss(s), 0), 0) } as u16;
                bytes.extend(h.to_le_bytes());
                bytes.extend(qs[b * 32..b * 32 + 32].iter().map(|&q| q as u8));
            }
            let cpu = Cpu::detect().unwrap();
            (Q8Matrix::from_q8_0(cpu, &bytes, n, k).unwrap(), qs, d)
        }

        #[test]
        fn q8_0_products_sum_like_candles_vec_dot() {
            let Some(cpu) = cpu() else { return };
            let (n, k, rows) = (11, 128, 3);
            let (m, wq, wd) = matrix(n, k, 3);
            let x = values(rows * k, 4);
            let mut a = QRows::default();
            a.quantize(cpu, &x, k, ActFormat::Q8_0);
            let mut out = vec![0f32; rows * 9];
            m.matmul(cpu, &a, ActFormat::Q8_0, 2..11, &mut out, 9);
            let kb = k / 32;
            for r in 0..rows {
                for c in 2..11 {
                    // candle's generic dot: exact integer block sums, so it agrees with the
                    // AVX2 one to rounding.
                    let mut e = 0f64;
                    for b in 0..kb {
                        let s: i32 = (0..32)
                            .map(|i| {
                                wq[(c * kb + b) * 32 + i] as i32
                                    * a.qs[(r * kb + b) * 32 + i] as i32
                            })
                            .sum();
                        e += s as f64 * wd[c * kb + b] as f64 * a.d[r * kb + b] as f64;
                    }
                    let g = out[r * 9 + c - 2] as f64;
                    assert!((g - e).abs() <= 1e-5 * e.abs().max(1.0), "{g} vs {e}");
                }
            }
        }

        #[test]
        fn q8k_products_are_fma_chains_over_exact_block_sums() {
            let Some(cpu) = cpu() else { return };
            let (n, k) = (19, 512);
            let (m, wq, wd) = matrix(n, k, 5);
            let x = values(2 * k, 6);
            let mut a = QRows::default();
            a.quantize(cpu, &x, k, ActFormat::Q8K);
            let mut out = vec![0f32; 2 * n];
            m.matmul(cpu, &a, ActFormat::Q8K, 0..n, &mut out, n);
            let kb = k / 32;
            for r in 0..2 {
                for c in 0..n {
                    let mut acc = 0f32;
                    for b in 0..kb {
                        let s: i32 = (0..32)
                            .map(|i| {
                                wq[(c * kb + b) * 32 + i] as i32
                                    * a.qs[(r * kb + b) * 32 + i] as i32
                            })
                            .sum();
                        acc = (s as f32).mul_add(wd[c * kb + b] * a.d[r * kb + b], acc);
                    }
                    assert_eq!(out[r * n + c], acc, "row {r} output {c}");
                }
            }
        }

        #[test]
        fn wide_kernels_give_the_same_bits() {
            let Some(cpu) = cpu() else { return };
            if !cpu.avx512 {
                return;
            }
            for (n, k, format) in [
                (34, 128, ActFormat::Q8_0),
                (7, 64, ActFormat::Q8_0),
                (48, 512, ActFormat::Q8K),
            ] {
                let (m, _, _) = matrix(n, k, 11);
                let x = values(5 * k, 12);
                let mut a = QRows::default();
                a.quantize(cpu, &x, k, format);
                for cols in [0..n, 1..n, 16..32, 3..6, 0..0] {
                    let q8k_tiles = cols.start.is_multiple_of(16) && cols.len().is_multiple_of(16);
                    if cols.end > n || (format == ActFormat::Q8K && !q8k_tiles) {
                        continue;
                    }
                    let stride = n;
                    let mut wide = vec![0f32; 5 * stride];
                    let mut narrow = vec![0f32; 5 * stride];
                    m.matmul(cpu, &a, format, cols.clone(), &mut wide, stride);
                    m.matmul(
                        cpu.without_avx512(),
                        &a,
                        format,
                        cols.clone(),
                        &mut narrow,
                        stride,
                    );
                    assert_eq!(wide, narrow, "{n}x{k} {format:?} {cols:?}");
                }
            }
        }

        #[test]
        fn attention_helpers() {
            let Some(cpu) = cpu() else { return };
            let (hd, n) = (16, 37);
            let q = values(hd, 7);
            let keys = values(n * hd, 8);
            let stride = n.div_ceil(8) * 8;
            let mut kt = vec![0f32; hd * stride];
            for j in 0..n {
                for d in 0..hd {
                    kt[d * stride + j] = keys[j * hd + d];
                }
            }
            let mut s = vec![0f32; n];
            attention_scores(cpu, &q, &kt, stride, &mut s);
            for j in 0..n {
                let e = (0..hd).fold(0f32, |acc, d| q[d].mul_add(keys[j * hd + d], acc));
                assert_eq!(s[j], e);
            }
            for hd in [16, 13, 5] {
                attention_scores_by_rows(cpu, &q[..hd], &keys, 16, &mut s);
                for j in 0..n {
                    let mut lanes = [0f32; 8];
                    for d in 0..hd {
                        lanes[d % 8] = q[d].mul_add(keys[j * 16 + d], lanes[d % 8]);
                    }
                    let x: Vec<f32> = (0..4).map(|i| lanes[i + 4] + lanes[i]).collect();
                    let e = (x[0] + x[2]) + (x[1] + x[3]);
                    assert_eq!(s[j], e, "width {hd}, key {j}");
                }
            }
            let p = values(n, 9);
            let stride = 41;
            let v = values(n * stride, 10);
            for hd in [3, 8, 13, 32, 40, 41] {
                let mut out = vec![0f32; hd];
                attention_context(cpu, &p, &v, stride, &mut out);
                for (d, &o) in out.iter().enumerate() {
                    let e = (0..n).fold(0f32, |acc, j| p[j].mul_add(v[j * stride + d], acc));
                    assert_eq!(o, e, "width {hd}, value {d}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn close(a: &Tensor, b: &Tensor, tol: f32) {
        let d = (a - b).unwrap().abs().unwrap().max_all().unwrap();
        let d = d.to_scalar::<f32>().unwrap();
        assert!(d < tol, "differ by {d}");
    }

    fn input() -> Var {
        let v: Vec<f32> = (0..24).map(|i| ((i * 7 % 11) as f32 - 5.0) * 0.3).collect();
        Var::from_tensor(&Tensor::from_vec(v, (2, 3, 4), &Device::Cpu).unwrap()).unwrap()
    }

    #[test]
    fn softmax_matches_the_composed_one_forward_and_backward() {
        let x = input();
        let w = Tensor::new(&[1f32, -2., 0.5, 3.], &Device::Cpu).unwrap();
        let a = softmax_last_dim(x.as_tensor()).unwrap();
        let b = candle_nn::ops::softmax(x.as_tensor(), D::Minus1).unwrap();
        close(&a, &b, 1e-6);
        let ga = a
            .broadcast_mul(&w)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let gb = b
            .broadcast_mul(&w)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        close(ga.get(&x).unwrap(), gb.get(&x).unwrap(), 1e-5);
    }

    #[test]
    fn normalize_matches_the_composed_one_forward_and_backward() {
        let x = input();
        let w = Tensor::new(&[1f32, -2., 0.5, 3.], &Device::Cpu).unwrap();
        let eps = 1e-5;
        let a = normalize(x.as_tensor(), eps).unwrap();
        let t = x.as_tensor();
        let c = t
            .broadcast_sub(&t.mean_keepdim(D::Minus1).unwrap())
            .unwrap();
        let var = c.sqr().unwrap().mean_keepdim(D::Minus1).unwrap();
        let b = c
            .broadcast_div(&(var + eps).unwrap().sqrt().unwrap())
            .unwrap();
        close(&a, &b, 1e-5);
        let ga = a
            .broadcast_mul(&w)
            .unwrap()
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let gb = b
            .broadcast_mul(&w)
            .unwrap()
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        close(ga.get(&x).unwrap(), gb.get(&x).unwrap(), 1e-4);
    }
}
