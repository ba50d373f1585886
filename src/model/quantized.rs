//! The model file: a GGUF holding the encoder and its classification head, the big matrices
//! quantized to Q8_0 and the rest (embeddings, LayerNorms, biases, the 2-row output layer)
//! as f32, with the [`Config`], the decision threshold and the input form in the metadata.
//!
//! The same network code ([`super::bert`]) runs on it: a quantized matrix multiplies through
//! candle's `QMatMul` (Q8_0 × Q8_0 dot products on the CPU), an f32 one as a plain matmul.
//! Writing the file with `quantize: false` keeps every tensor f32, which is the f32 side of
//! the f32-vs-quantized comparison.

use std::io::Cursor;

use candle_core::quantized::{gguf_file, GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Result as CResult, Tensor};

use super::bert::{is_pretraining_only, BertClassifier, Config, Weights};
use super::ModelError;

/// `general.architecture` of a Cerebro model file.
pub const ARCHITECTURE: &str = "cerebro-bert";
/// Version of the file layout; a reader refuses other versions.
pub const FORMAT_VERSION: u32 = 1;

/// Everything about a model that is not a tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    pub config: Config,
    /// Probability at or above which a sequence is called malicious.
    pub threshold: f32,
    /// Whether the model reads its input as a bag (tokens sorted, so order carries nothing):
    /// the ablation of sequential order.
    pub bag: bool,
    /// Free text: how the model was trained.
    pub description: String,
}

/// Whether a tensor is stored as Q8_0 in a quantized file: the weight matrices of linear
/// layers whose rows are a whole number of 32-value blocks, and not tiny.
pub fn quantizes(name: &str, shape: &[usize]) -> bool {
    shape.len() == 2
        && name.ends_with(".weight")
        && !name.starts_with("embeddings.")
        && shape[1] % 32 == 0
        && shape[0] >= 32
}

/// Writes the model file. `tensors` are the trained tensors by name (every tensor of the
/// encoder and the classification head; pre-training ones are left out).
pub fn write_gguf(
    tensors: &[(String, Tensor)],
    info: &ModelInfo,
    quantize: bool,
) -> Result<Vec<u8>, ModelError> {
    use gguf_file::Value;
    let c = &info.config;
    let u = |v: usize| Value::U32(v as u32);
    let metadata: Vec<(&str, Value)> = vec![
        ("general.architecture", Value::String(ARCHITECTURE.into())),
        ("cerebro.format_version", Value::U32(FORMAT_VERSION)),
        ("cerebro.vocab_size", u(c.vocab_size)),
        ("cerebro.hidden_size", u(c.hidden_size)),
        ("cerebro.num_layers", u(c.num_layers)),
        ("cerebro.num_heads", u(c.num_heads)),
        ("cerebro.intermediate_size", u(c.intermediate_size)),
        ("cerebro.max_position", u(c.max_position)),
        ("cerebro.layer_norm_eps", Value::F64(c.layer_norm_eps)),
        ("cerebro.threshold", Value::F32(info.threshold)),
        ("cerebro.bag", Value::Bool(info.bag)),
        (
            "cerebro.description",
            Value::String(info.description.clone()),
        ),
    ];
    let mut q = Vec::new();
    for (name, t) in tensors {
        if is_pretraining_only(name) {
            continue;
        }
        let dtype = if quantize && quantizes(name, t.dims()) {
            GgmlDType::Q8_0
        } else {
            GgmlDType::F32
        };
        q.push((name.as_str(), QTensor::quantize(t, dtype)?));
    }
    let meta_refs: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
    let tensor_refs: Vec<(&str, &QTensor)> = q.iter().map(|(n, t)| (*n, t)).collect();
    let mut out = Cursor::new(Vec::new());
    gguf_file::write(&mut out, &meta_refs, &tensor_refs)?;
    Ok(out.into_inner())
}

/// Tensors read from a GGUF buffer.
pub struct GgufWeights<'a> {
    content: gguf_file::Content,
    bytes: &'a [u8],
    device: Device,
}

impl<'a> GgufWeights<'a> {
    pub fn new(bytes: &'a [u8]) -> Result<GgufWeights<'a>, ModelError> {
        let content = gguf_file::Content::read(&mut Cursor::new(bytes))
            .map_err(|e| ModelError::Format(format!("not a GGUF model file: {e}")))?;
        Ok(GgufWeights {
            content,
            bytes,
            device: Device::Cpu,
        })
    }

    fn qtensor(&self, name: &str, shape: &[usize]) -> CResult<QTensor> {
        let t = self
            .content
            .tensor(&mut Cursor::new(self.bytes), name, &self.device)?;
        if t.shape().dims() != shape {
            candle_core::bail!(
                "tensor {name} has shape {:?}, expected {shape:?}",
                t.shape().dims()
            );
        }
        Ok(t)
    }

    /// The metadata as a [`ModelInfo`].
    pub fn info(&self) -> Result<ModelInfo, ModelError> {
        let md = &self.content.metadata;
        let get = |k: &str| {
            md.get(k)
                .ok_or_else(|| ModelError::Format(format!("model file lacks metadata {k}")))
        };
        fn bad(k: &str) -> impl Fn(candle_core::Error) -> ModelError + '_ {
            move |e| ModelError::Format(format!("{k}: {e}"))
        }
        let arch = get("general.architecture")?
            .to_string()
            .map_err(bad("general.architecture"))?;
        if arch != ARCHITECTURE {
            return Err(ModelError::Format(format!(
                "model file is a {arch:?}, not a {ARCHITECTURE:?}"
            )));
        }
        let version = get("cerebro.format_version")?
            .to_u32()
            .map_err(bad("cerebro.format_version"))?;
        if version != FORMAT_VERSION {
            return Err(ModelError::Format(format!(
                "model file format {version} is not the supported {FORMAT_VERSION}"
            )));
        }
        let n = |k: &str| -> Result<usize, ModelError> {
            Ok(get(k)?.to_u32().map_err(bad(k))? as usize)
        };
        let config = Config {
            vocab_size: n("cerebro.vocab_size")?,
            hidden_size: n("cerebro.hidden_size")?,
            num_layers: n("cerebro.num_layers")?,
            num_heads: n("cerebro.num_heads")?,
            intermediate_size: n("cerebro.intermediate_size")?,
            max_position: n("cerebro.max_position")?,
            dropout: 0.0,
            layer_norm_eps: get("cerebro.layer_norm_eps")?
                .to_f64()
                .map_err(bad("cerebro.layer_norm_eps"))?,
        };
        config.validate().map_err(ModelError::Format)?;
        Ok(ModelInfo {
            config,
            threshold: get("cerebro.threshold")?
                .to_f32()
                .map_err(bad("cerebro.threshold"))?,
            bag: get("cerebro.bag")?.to_bool().map_err(bad("cerebro.bag"))?,
            description: md
                .get("cerebro.description")
                .and_then(|v| v.to_string().ok().cloned())
                .unwrap_or_default(),
        })
    }

    /// Names and storage types of the tensors, sorted by name.
    pub fn tensor_types(&self) -> Vec<(String, GgmlDType)> {
        let mut v: Vec<(String, GgmlDType)> = self
            .content
            .tensor_infos
            .iter()
            .map(|(k, i)| (k.clone(), i.ggml_dtype))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

impl Weights for GgufWeights<'_> {
    fn tensor(&self, name: &str, shape: &[usize]) -> CResult<Tensor> {
        self.qtensor(name, shape)?.dequantize(&self.device)
    }

    fn matrix(&self, name: &str, out: usize, inp: usize) -> CResult<QMatMul> {
        QMatMul::from_qtensor(self.qtensor(name, &[out, inp])?)
    }
}

/// Reads a model file into the network and its metadata.
pub fn read_gguf(bytes: &[u8]) -> Result<(BertClassifier, ModelInfo), ModelError> {
    let weights = GgufWeights::new(bytes)?;
    let info = weights.info()?;
    let net = BertClassifier::load(&weights, &info.config)?;
    Ok((net, info))
}
