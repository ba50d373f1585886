//! The detector's network: a small BERT encoder over behaviour token ids, with a masked-token
//! head for pre-training and a classification head on `[CLS]`. Math only: no I/O, no
//! tokenizer (the shape of candle-transformers' `models/bert.rs`).
//!
//! Differences from the original BERT, all for training from scratch on a small CPU:
//! - pre-LayerNorm blocks (`x + f(LN(x))`) with a final LayerNorm, which train stably without
//!   a long warm-up;
//! - no token-type embeddings (a sequence is one segment);
//! - the query, key and value projections are one matrix;
//! - the masked-token decoder is tied to the word embeddings.
//!
//! Every op used in [`Mode::Train`] has a backward pass: candle's own, and for LayerNorm and
//! softmax (whose candle-nn kernels have none) the fused ops of [`super::ops`], checked
//! against the same functions composed from basic ops. [`Mode::Eval`] uses candle-nn's
//! kernels, which compute the same functions.

use std::cell::Cell;

use candle_core::quantized::QMatMul;
use candle_core::{DType, Module, Result, Tensor};
use candle_nn::VarBuilder;

/// Sizes of the network.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub intermediate_size: usize,
    /// Longest input, `[CLS]` and `[SEP]` included.
    pub max_position: usize,
    /// Dropout probability while training.
    pub dropout: f32,
    pub layer_norm_eps: f64,
}

/// Number of logits of the classification head: benign, malicious.
pub const NUM_CLASSES: usize = 2;

impl Config {
    /// A configuration with the usual defaults for the given sizes.
    pub fn new(
        vocab_size: usize,
        hidden_size: usize,
        num_layers: usize,
        num_heads: usize,
        intermediate_size: usize,
    ) -> Config {
        Config {
            vocab_size,
            hidden_size,
            num_layers,
            num_heads,
            intermediate_size,
            max_position: 512,
            dropout: 0.1,
            layer_norm_eps: 1e-12,
        }
    }

    /// Checks that the sizes fit together.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.vocab_size == 0 || self.hidden_size == 0 || self.num_heads == 0 {
            return Err("vocabulary, hidden size and heads must not be zero".into());
        }
        if !self.hidden_size.is_multiple_of(self.num_heads) {
            return Err(format!(
                "hidden size {} is not a multiple of the {} heads",
                self.hidden_size, self.num_heads
            ));
        }
        if self.max_position < 2 {
            return Err("max position must leave room for [CLS] and [SEP]".into());
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(format!("dropout {} is not in [0, 1)", self.dropout));
        }
        Ok(())
    }

    fn head_dim(&self) -> usize {
        self.hidden_size / self.num_heads
    }
}

/// Where a network's tensors come from: a `VarBuilder` (training, safetensors) or a GGUF file
/// (see `super::quantized`).
pub trait Weights {
    /// A tensor used as is (embeddings, norms, biases).
    fn tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor>;
    /// The weight of a linear layer, `(out, in)`, possibly quantized.
    fn matrix(&self, name: &str, out: usize, inp: usize) -> Result<QMatMul>;
}

impl Weights for VarBuilder<'_> {
    fn tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        self.get(shape, name)
    }

    fn matrix(&self, name: &str, out: usize, inp: usize) -> Result<QMatMul> {
        Ok(QMatMul::Tensor(self.get((out, inp), name)?))
    }
}

/// Whether a forward pass trains (differentiable ops, dropout) or only evaluates.
#[derive(Clone, Copy)]
pub enum Mode<'a> {
    Train(&'a Dropout),
    Eval,
}

/// Dropout with its own seeded generator, so training runs repeat exactly (candle's CPU
/// random numbers cannot be seeded).
#[derive(Debug)]
pub struct Dropout {
    p: f32,
    state: Cell<u64>,
}

impl Dropout {
    pub fn new(p: f32, seed: u64) -> Dropout {
        Dropout {
            p,
            state: Cell::new(seed ^ 0x9E37_79B9_7F4A_7C15),
        }
    }

    fn next_unit(&self) -> f32 {
        // SplitMix64.
        let mut z = self.state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        self.state.set(z);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 40) as f32 / (1u64 << 24) as f32
    }

    pub fn apply(&self, xs: &Tensor) -> Result<Tensor> {
        if self.p <= 0.0 {
            return Ok(xs.clone());
        }
        let scale = 1.0 / (1.0 - self.p);
        let keep: Vec<f32> = (0..xs.elem_count())
            .map(|_| {
                if self.next_unit() < self.p {
                    0.0
                } else {
                    scale
                }
            })
            .collect();
        xs.mul(&Tensor::from_vec(keep, xs.shape(), xs.device())?)
    }
}

fn dropout(xs: Tensor, mode: Mode) -> Result<Tensor> {
    match mode {
        Mode::Train(d) => d.apply(&xs),
        Mode::Eval => Ok(xs),
    }
}

/// A linear layer `x W^T + b` over the last dimension of any input.
#[derive(Debug, Clone)]
pub struct Linear {
    weight: QMatMul,
    bias: Tensor,
    out: usize,
}

impl Linear {
    pub fn load(w: &dyn Weights, name: &str, inp: usize, out: usize) -> Result<Linear> {
        Ok(Linear {
            weight: w.matrix(&format!("{name}.weight"), out, inp)?,
            bias: w.tensor(&format!("{name}.bias"), &[out])?,
            out,
        })
    }

    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let dims = xs.dims().to_vec();
        let inp = dims[dims.len() - 1];
        let flat = xs.reshape(((), inp))?;
        let ys = match &self.weight {
            // One 2-D product (the gradient flows through `t()` and `matmul`).
            QMatMul::Tensor(w) => flat.matmul(&w.t()?)?,
            q => q.forward(&flat)?,
        };
        let ys = ys.broadcast_add(&self.bias)?;
        let mut out_dims = dims;
        let last = out_dims.len() - 1;
        out_dims[last] = self.out;
        ys.reshape(out_dims)
    }
}

/// LayerNorm over the last dimension.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    pub fn new(weight: Tensor, bias: Tensor, eps: f64) -> LayerNorm {
        LayerNorm { weight, bias, eps }
    }

    pub fn load(w: &dyn Weights, name: &str, size: usize, eps: f64) -> Result<LayerNorm> {
        Ok(LayerNorm {
            weight: w.tensor(&format!("{name}.weight"), &[size])?,
            bias: w.tensor(&format!("{name}.bias"), &[size])?,
            eps,
        })
    }

    pub fn forward(&self, xs: &Tensor, mode: Mode) -> Result<Tensor> {
        if matches!(mode, Mode::Eval) {
            let xs = xs.contiguous()?;
            return candle_nn::ops::layer_norm(&xs, &self.weight, &self.bias, self.eps as f32);
        }
        // The fused normalisation with its own backward pass, then the affine part.
        super::ops::normalize(xs, self.eps)?
            .broadcast_mul(&self.weight)?
            .broadcast_add(&self.bias)
    }
}

fn softmax_last(xs: &Tensor, mode: Mode) -> Result<Tensor> {
    match mode {
        Mode::Train(_) => super::ops::softmax_last_dim(xs),
        Mode::Eval => candle_nn::ops::softmax_last_dim(&xs.contiguous()?),
    }
}

/// Multi-head self-attention.
#[derive(Debug, Clone)]
pub struct SelfAttention {
    qkv: Linear,
    out: Linear,
    heads: usize,
    head_dim: usize,
}

impl SelfAttention {
    pub fn load(w: &dyn Weights, name: &str, cfg: &Config) -> Result<SelfAttention> {
        let h = cfg.hidden_size;
        Ok(SelfAttention {
            qkv: Linear::load(w, &format!("{name}.qkv"), h, 3 * h)?,
            out: Linear::load(w, &format!("{name}.out"), h, h)?,
            heads: cfg.num_heads,
            head_dim: cfg.head_dim(),
        })
    }

    /// `xs`: `(batch, len, hidden)`; `bias`: `(batch, 1, 1, len)`, 0 for tokens and a large
    /// negative number for padding.
    pub fn forward(&self, xs: &Tensor, bias: &Tensor, mode: Mode) -> Result<Tensor> {
        let (b, l, h) = xs.dims3()?;
        let qkv = self
            .qkv
            .forward(xs)?
            .reshape((b, l, 3, self.heads, self.head_dim))?;
        let part = |i: usize| -> Result<Tensor> {
            qkv.narrow(2, i, 1)?
                .squeeze(2)?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = (part(0)? * (1.0 / (self.head_dim as f64).sqrt()))?;
        let k = part(1)?;
        let v = part(2)?;
        let scores = q.matmul(&k.t()?)?.broadcast_add(bias)?;
        let probs = dropout(softmax_last(&scores, mode)?, mode)?;
        let ctx = probs
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b, l, h))?;
        self.out.forward(&ctx)
    }
}

/// One pre-LayerNorm transformer block.
#[derive(Debug, Clone)]
pub struct Layer {
    attn_norm: LayerNorm,
    attn: SelfAttention,
    ffn_norm: LayerNorm,
    up: Linear,
    down: Linear,
}

impl Layer {
    pub fn load(w: &dyn Weights, name: &str, cfg: &Config) -> Result<Layer> {
        let (h, i, eps) = (cfg.hidden_size, cfg.intermediate_size, cfg.layer_norm_eps);
        Ok(Layer {
            attn_norm: LayerNorm::load(w, &format!("{name}.attn_norm"), h, eps)?,
            attn: SelfAttention::load(w, &format!("{name}.attn"), cfg)?,
            ffn_norm: LayerNorm::load(w, &format!("{name}.ffn_norm"), h, eps)?,
            up: Linear::load(w, &format!("{name}.ffn.up"), h, i)?,
            down: Linear::load(w, &format!("{name}.ffn.down"), i, h)?,
        })
    }

    pub fn forward(&self, xs: &Tensor, bias: &Tensor, mode: Mode) -> Result<Tensor> {
        let a = self
            .attn
            .forward(&self.attn_norm.forward(xs, mode)?, bias, mode)?;
        let xs = (xs + dropout(a, mode)?)?;
        let f = self.down.forward(
            &self
                .up
                .forward(&self.ffn_norm.forward(&xs, mode)?)?
                .gelu_erf()?,
        )?;
        xs + dropout(f, mode)?
    }
}

/// The encoder: embeddings, blocks, final LayerNorm.
#[derive(Debug, Clone)]
pub struct Bert {
    word: Tensor,
    position: Tensor,
    emb_norm: LayerNorm,
    layers: Vec<Layer>,
    final_norm: LayerNorm,
    config: Config,
}

impl Bert {
    pub fn load(w: &dyn Weights, cfg: &Config) -> Result<Bert> {
        let (h, eps) = (cfg.hidden_size, cfg.layer_norm_eps);
        Ok(Bert {
            word: w.tensor("embeddings.word.weight", &[cfg.vocab_size, h])?,
            position: w.tensor("embeddings.position.weight", &[cfg.max_position, h])?,
            emb_norm: LayerNorm::load(w, "embeddings.norm", h, eps)?,
            layers: (0..cfg.num_layers)
                .map(|i| Layer::load(w, &format!("layers.{i}"), cfg))
                .collect::<Result<_>>()?,
            final_norm: LayerNorm::load(w, "final_norm", h, eps)?,
            config: *cfg,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The word embeddings (the masked-token decoder is tied to them).
    pub fn word_embeddings(&self) -> &Tensor {
        &self.word
    }

    /// `ids`: `(batch, len)` u32; `mask`: `(batch, len)` f32, 1 for tokens and 0 for padding.
    /// Returns the hidden states `(batch, len, hidden)`.
    pub fn forward(&self, ids: &Tensor, mask: &Tensor, mode: Mode) -> Result<Tensor> {
        let (b, l) = ids.dims2()?;
        if l > self.config.max_position {
            candle_core::bail!(
                "sequence of {l} ids is longer than the model reads ({})",
                self.config.max_position
            );
        }
        let h = self.config.hidden_size;
        let words = self
            .word
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((b, l, h))?;
        let positions = self.position.narrow(0, 0, l)?;
        let xs = words.broadcast_add(&positions)?;
        let mut xs = dropout(self.emb_norm.forward(&xs, mode)?, mode)?;
        let bias = ((mask.to_dtype(DType::F32)? - 1.0)? * 1e4)?.reshape((b, 1, 1, l))?;
        for layer in &self.layers {
            xs = layer.forward(&xs, &bias, mode)?;
        }
        self.final_norm.forward(&xs, mode)
    }
}

/// Predicts masked tokens from hidden states (pre-training only, so not in the product).
#[cfg(feature = "training")]
#[derive(Debug, Clone)]
pub struct MlmHead {
    dense: Linear,
    norm: LayerNorm,
    decoder: Tensor,
    bias: Tensor,
}

#[cfg(feature = "training")]
impl MlmHead {
    /// `decoder`: the word embeddings `(vocab, hidden)`, tied.
    pub fn load(w: &dyn Weights, cfg: &Config, decoder: &Tensor) -> Result<MlmHead> {
        let h = cfg.hidden_size;
        Ok(MlmHead {
            dense: Linear::load(w, "mlm.dense", h, h)?,
            norm: LayerNorm::load(w, "mlm.norm", h, cfg.layer_norm_eps)?,
            decoder: decoder.clone(),
            bias: w.tensor("mlm.bias", &[cfg.vocab_size])?,
        })
    }

    /// `hidden`: `(n, hidden)` states at masked positions → `(n, vocab)` logits.
    pub fn forward(&self, hidden: &Tensor, mode: Mode) -> Result<Tensor> {
        let xs = self.dense.forward(hidden)?.gelu_erf()?;
        let xs = self.norm.forward(&xs, mode)?;
        xs.matmul(&self.decoder.t()?)?.broadcast_add(&self.bias)
    }
}

/// Classifies a sequence from the `[CLS]` state: dense + tanh, then two logits
/// (benign, malicious).
#[derive(Debug, Clone)]
pub struct ClassificationHead {
    dense: Linear,
    out: Linear,
}

impl ClassificationHead {
    pub fn load(w: &dyn Weights, cfg: &Config) -> Result<ClassificationHead> {
        let h = cfg.hidden_size;
        Ok(ClassificationHead {
            dense: Linear::load(w, "cls.dense", h, h)?,
            out: Linear::load(w, "cls.out", h, NUM_CLASSES)?,
        })
    }

    /// `hidden`: `(batch, len, hidden)` → `(batch, 2)` logits.
    pub fn forward(&self, hidden: &Tensor, mode: Mode) -> Result<Tensor> {
        let cls = hidden.narrow(1, 0, 1)?.squeeze(1)?;
        let xs = dropout(self.dense.forward(&cls)?.tanh()?, mode)?;
        self.out.forward(&xs)
    }
}

/// The encoder with its classification head: what the detector runs.
#[derive(Debug, Clone)]
pub struct BertClassifier {
    pub bert: Bert,
    pub head: ClassificationHead,
}

impl BertClassifier {
    pub fn load(w: &dyn Weights, cfg: &Config) -> Result<BertClassifier> {
        Ok(BertClassifier {
            bert: Bert::load(w, cfg)?,
            head: ClassificationHead::load(w, cfg)?,
        })
    }

    /// `(batch, 2)` logits.
    pub fn logits(&self, ids: &Tensor, mask: &Tensor, mode: Mode) -> Result<Tensor> {
        let hidden = self.bert.forward(ids, mask, mode)?;
        self.head.forward(&hidden, mode)
    }

    /// Probability that each sequence is malicious, `(batch,)`.
    pub fn probabilities(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let logits = self.logits(ids, mask, Mode::Eval)?;
        candle_nn::ops::softmax_last_dim(&logits)?
            .narrow(1, 1, 1)?
            .squeeze(1)
    }
}

/// Names of every tensor of a network with both heads, with their shapes, in a stable order.
pub fn tensor_shapes(cfg: &Config) -> Vec<(String, Vec<usize>)> {
    let (v, h, i, p) = (
        cfg.vocab_size,
        cfg.hidden_size,
        cfg.intermediate_size,
        cfg.max_position,
    );
    let mut out: Vec<(String, Vec<usize>)> = Vec::new();
    let mut push = |name: String, shape: &[usize]| out.push((name, shape.to_vec()));
    push("embeddings.word.weight".into(), &[v, h]);
    push("embeddings.position.weight".into(), &[p, h]);
    push("embeddings.norm.weight".into(), &[h]);
    push("embeddings.norm.bias".into(), &[h]);
    for l in 0..cfg.num_layers {
        let n = |s: &str| format!("layers.{l}.{s}");
        push(n("attn_norm.weight"), &[h]);
        push(n("attn_norm.bias"), &[h]);
        push(n("attn.qkv.weight"), &[3 * h, h]);
        push(n("attn.qkv.bias"), &[3 * h]);
        push(n("attn.out.weight"), &[h, h]);
        push(n("attn.out.bias"), &[h]);
        push(n("ffn_norm.weight"), &[h]);
        push(n("ffn_norm.bias"), &[h]);
        push(n("ffn.up.weight"), &[i, h]);
        push(n("ffn.up.bias"), &[i]);
        push(n("ffn.down.weight"), &[h, i]);
        push(n("ffn.down.bias"), &[h]);
    }
    push("final_norm.weight".into(), &[h]);
    push("final_norm.bias".into(), &[h]);
    push("cls.dense.weight".into(), &[h, h]);
    push("cls.dense.bias".into(), &[h]);
    push("cls.out.weight".into(), &[NUM_CLASSES, h]);
    push("cls.out.bias".into(), &[NUM_CLASSES]);
    push("mlm.dense.weight".into(), &[h, h]);
    push("mlm.dense.bias".into(), &[h]);
    push("mlm.norm.weight".into(), &[h]);
    push("mlm.norm.bias".into(), &[h]);
    push("mlm.bias".into(), &[v]);
    out
}

/// Whether a tensor belongs to the pre-training head only (not shipped).
pub fn is_pretraining_only(name: &str) -> bool {
    name.starts_with("mlm.")
}

/// How a tensor is initialised: LayerNorm weights 1, biases 0, everything else N(0, 0.02)
/// (BERT's).
pub fn init_value(name: &str) -> Init {
    let norm = name.contains("norm.");
    if name.ends_with(".bias") || name == "mlm.bias" {
        Init::Zeros
    } else if norm {
        Init::Ones
    } else {
        Init::Normal(0.02)
    }
}

/// Initial value of a tensor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    Zeros,
    Ones,
    Normal(f32),
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn every_loaded_tensor_is_listed() {
        let cfg = Config::new(29, 32, 2, 4, 64);
        let map = candle_nn::VarMap::new();
        let vb = VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu);
        let model = BertClassifier::load(&vb, &cfg).unwrap();
        MlmHead::load(&vb, &cfg, model.bert.word_embeddings()).unwrap();
        let mut loaded: Vec<String> = map.data().lock().unwrap().keys().cloned().collect();
        loaded.sort();
        let mut listed: Vec<String> = tensor_shapes(&cfg).into_iter().map(|(n, _)| n).collect();
        listed.sort();
        assert_eq!(loaded, listed);
    }

    #[test]
    fn layer_norm_train_and_eval_agree() {
        let dev = Device::Cpu;
        let xs = Tensor::new(&[[1f32, 2., 3., 4.], [-1., 0., 5., 0.5]], &dev).unwrap();
        let ln = LayerNorm::new(
            Tensor::new(&[1f32, 2., 1., 0.5], &dev).unwrap(),
            Tensor::new(&[0f32, 0.1, 0., -1.], &dev).unwrap(),
            1e-5,
        );
        let d = Dropout::new(0.0, 1);
        let a = ln.forward(&xs, Mode::Train(&d)).unwrap();
        let b = ln.forward(&xs, Mode::Eval).unwrap();
        let diff = (a - b).unwrap().abs().unwrap().max_all().unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-5);
        // Row 0: mean 2.5, var 1.25.
        let row: Vec<f32> = ln
            .forward(&xs, Mode::Eval)
            .unwrap()
            .get(0)
            .unwrap()
            .to_vec1()
            .unwrap();
        let expected = [-1.3416408f32, -0.8944272 + 0.1, 0.4472136, 0.6708204 - 1.];
        for (r, e) in row.iter().zip(expected) {
            assert!((r - e).abs() < 1e-4, "{row:?}");
        }
    }

    #[test]
    fn dropout_is_seeded_and_scales() {
        let dev = Device::Cpu;
        let xs = Tensor::ones((1000,), DType::F32, &dev).unwrap();
        let a: Vec<f32> = Dropout::new(0.5, 7).apply(&xs).unwrap().to_vec1().unwrap();
        let b: Vec<f32> = Dropout::new(0.5, 7).apply(&xs).unwrap().to_vec1().unwrap();
        assert_eq!(a, b);
        let zeros = a.iter().filter(|&&v| v == 0.0).count();
        assert!((400..600).contains(&zeros), "{zeros}");
        assert!(a.iter().all(|&v| v == 0.0 || v == 2.0));
    }
}
