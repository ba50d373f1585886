//! Fused CPU ops with a backward pass, for training: softmax over the last dimension and the
//! normalising part of LayerNorm. candle-nn's fused versions have no backward; composing
//! them from basic ops works but makes many passes over the attention scores, which is most
//! of a training step's time outside the matrix products on a small CPU.

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
