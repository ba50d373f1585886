//! The model file: a GGUF holding the encoder and its classification head, the big matrices
//! quantized to Q8_0 and the rest (embeddings, LayerNorms, biases, the 2-row output layer)
//! as f32, with the [`Config`], the decision threshold and the input form in the metadata.
//!
//! The same network code ([`super::bert`]) runs on it: a quantized matrix multiplies through
//! candle's `QMatMul` (Q8_0 × Q8_0 dot products on the CPU), an f32 one as a plain matmul.
//! Writing the file with `quantize: false` keeps every tensor f32, which is the f32 side of
//! the f32-vs-quantized comparison.
//!
//! For scoring, [`Engine`] runs the same file with hand-written kernels (`super::ops::infer`)
//! and no per-op tensors: the same results, several times faster on the short sequences
//! packages have.

use std::io::Cursor;

use candle_core::quantized::{gguf_file, GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Result as CResult, Tensor};

use cerebro_archive::PerEcosystem;

#[cfg(feature = "training")]
use super::bert::is_pretraining_only;
use super::bert::{BertClassifier, Config, Weights};
use super::ModelError;

/// `general.architecture` of a Cerebro model file.
pub const ARCHITECTURE: &str = "cerebro-bert";
/// Version of the layout of a file holding one network; a reader refuses versions it does not
/// know.
pub const FORMAT_VERSION: u32 = 1;
/// Version of the layout of a file holding an ensemble: several networks (`members`) whose
/// probabilities are averaged, under one pair of thresholds. Member `i`'s sizes are the
/// `cerebro.member.{i}.*` keys and its tensors are named `member.{i}.…`.
pub const ENSEMBLE_FORMAT_VERSION: u32 = 2;
/// Most networks an ensemble file may hold.
pub const MAX_MEMBERS: usize = 16;

/// Everything about a model that is not a tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    pub config: Config,
    /// Probability at or above which a package is called malicious, per ecosystem: one
    /// network serves both, but their benign code differs (npm packages use the network and
    /// the environment far more), so the same score does not mean the same in each.
    pub thresholds: PerEcosystem<f32>,
    /// Probability at or above which one *unit* of a package (one file's behaviour,
    /// `sequence::units`) makes the package malicious, per ecosystem: a payload of ten lines
    /// in a library of thousands of files is judged on its own. `None` in files written
    /// before units were judged: those judge whole packages only.
    pub unit_thresholds: Option<PerEcosystem<f32>>,
    /// How many of an ensemble's networks, the last ones, are *unit networks*: trained on
    /// units, they score units only, and the others score whole packages only. 0: every
    /// network scores both (files written before unit networks).
    pub unit_networks: usize,
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
        && shape[1].is_multiple_of(32)
        && shape[0] >= 32
}

/// Writes the model file (training only, so not in the product). `tensors` are the trained tensors by name (every tensor of the
/// encoder and the classification head; pre-training ones are left out).
#[cfg(feature = "training")]
pub fn write_gguf(
    tensors: &[(String, Tensor)],
    info: &ModelInfo,
    quantize: bool,
) -> Result<Vec<u8>, ModelError> {
    let mut metadata = common_metadata(FORMAT_VERSION, info);
    metadata.extend(config_metadata("cerebro.", &info.config));
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
    let tensor_refs: Vec<(&str, &QTensor)> = q.iter().map(|(n, t)| (*n, t)).collect();
    write_file(&metadata, &tensor_refs)
}

/// Writes an ensemble file from model files (as [`write_gguf`] or this function writes them):
/// their tensors are copied as stored (no second quantization), each network under its own
/// member prefix, and `thresholds` apply to the mean probability of all the networks. A member
/// that is itself an ensemble gives each of its networks as a member (so a shipped ensemble
/// can be extended by a new run). The networks must read the same vocabulary and the same
/// input length, and read it the same way (sequence or bag).
#[cfg(feature = "training")]
pub fn write_ensemble(
    members: &[&[u8]],
    thresholds: PerEcosystem<f32>,
    description: &str,
) -> Result<Vec<u8>, ModelError> {
    write_ensemble_with_units(members, &[], thresholds, None, description)
}

/// [`write_ensemble`] with unit networks: `unit_members` (networks trained on units, a
/// file's behaviour each) follow the package networks and score units only, at
/// `unit_thresholds`; the package networks then score whole packages only.
#[cfg(feature = "training")]
pub fn write_ensemble_with_units(
    package_members: &[&[u8]],
    unit_members: &[&[u8]],
    thresholds: PerEcosystem<f32>,
    unit_thresholds: Option<PerEcosystem<f32>>,
    description: &str,
) -> Result<Vec<u8>, ModelError> {
    if !unit_members.is_empty() && (package_members.is_empty() || unit_thresholds.is_none()) {
        return Err(ModelError::Format(
            "unit networks need package networks beside them and unit thresholds".into(),
        ));
    }
    let members: Vec<&[u8]> = package_members
        .iter()
        .chain(unit_members)
        .copied()
        .collect();
    let members = members.as_slice();
    let mut unit_networks = 0usize;
    for bytes in unit_members {
        unit_networks += GgufWeights::new(bytes)?.members()?;
    }
    let count_error = || {
        ModelError::Format(format!(
            "an ensemble holds 1 to {MAX_MEMBERS} model files, not {}",
            members.len()
        ))
    };
    let first_file = members.first().ok_or_else(count_error)?;
    if members.len() > MAX_MEMBERS {
        return Err(count_error());
    }
    let first = GgufWeights::new(first_file)?.info()?;
    let mut metadata = Vec::new();
    let mut tensors: Vec<(String, QTensor)> = Vec::new();
    let mut networks = 0usize;
    for (i, bytes) in members.iter().enumerate() {
        let w = GgufWeights::new(bytes)?;
        let info = w.info()?;
        let f = &first;
        if (f.config.vocab_size, f.config.max_position, f.bag)
            != (info.config.vocab_size, info.config.max_position, info.bag)
        {
            return Err(ModelError::Format(format!(
                "member {i} reads {} ids of {} tokens{}, member 0 {} ids of {} tokens{}",
                info.config.max_position,
                info.config.vocab_size,
                if info.bag { " as a bag" } else { "" },
                f.config.max_position,
                f.config.vocab_size,
                if f.bag { " as a bag" } else { "" },
            )));
        }
        if info.unit_networks > 0 {
            return Err(ModelError::Format(format!(
                "member {i} has unit networks: give its files, not the ensemble"
            )));
        }
        let inner = w.members()?;
        for j in 0..inner {
            let k = networks;
            networks += 1;
            if networks > MAX_MEMBERS {
                return Err(count_error());
            }
            metadata.extend(config_metadata(
                &format!("cerebro.member.{k}."),
                &w.member_config(j)?,
            ));
            // A single network's tensors have no prefix; an ensemble's carry `member.{j}.`.
            let prefix = if inner == 1 {
                String::new()
            } else {
                format!("member.{j}.")
            };
            for (name, _) in w.tensor_types() {
                let Some(rest) = name.strip_prefix(&prefix) else {
                    continue;
                };
                let t = w
                    .content
                    .tensor(&mut Cursor::new(w.bytes), &name, &w.device)?;
                tensors.push((format!("member.{k}.{rest}"), t));
            }
        }
    }
    let info = ModelInfo {
        thresholds,
        unit_thresholds: if unit_networks > 0 {
            unit_thresholds
        } else {
            unit_thresholds.or(first.unit_thresholds)
        },
        unit_networks,
        description: description.to_owned(),
        ..first
    };
    let mut all = common_metadata(ENSEMBLE_FORMAT_VERSION, &info);
    all.push((
        "cerebro.members".into(),
        gguf_file::Value::U32(networks as u32),
    ));
    // The shared sizes at the top as well, so a reader finds the input format in one place.
    all.extend(config_metadata("cerebro.", &info.config));
    all.extend(metadata);
    let tensor_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    write_file(&all, &tensor_refs)
}

/// The keys every model file has: what it is, its layout version, thresholds, input format and
/// description.
#[cfg(feature = "training")]
fn common_metadata(version: u32, info: &ModelInfo) -> Vec<(String, gguf_file::Value)> {
    use gguf_file::Value;
    vec![
        (
            "general.architecture".into(),
            Value::String(ARCHITECTURE.into()),
        ),
        ("cerebro.format_version".into(), Value::U32(version)),
        (
            "cerebro.threshold.pypi".into(),
            Value::F32(info.thresholds.pypi),
        ),
        (
            "cerebro.threshold.npm".into(),
            Value::F32(info.thresholds.npm),
        ),
        ("cerebro.bag".into(), Value::Bool(info.bag)),
        (
            "cerebro.description".into(),
            Value::String(info.description.clone()),
        ),
    ]
    .into_iter()
    .chain(info.unit_thresholds.into_iter().flat_map(|t| {
        [
            ("cerebro.unit_threshold.pypi".into(), Value::F32(t.pypi)),
            ("cerebro.unit_threshold.npm".into(), Value::F32(t.npm)),
        ]
    }))
    .chain((info.unit_networks > 0).then(|| {
        (
            "cerebro.unit_networks".into(),
            Value::U32(info.unit_networks as u32),
        )
    }))
    .collect()
}

/// The model file `bytes` with its unit thresholds set (added, or replaced), every tensor and
/// every other key as it was: units are judged with thresholds chosen on validation data
/// after training, without retraining or re-quantizing.
#[cfg(feature = "training")]
pub fn with_unit_thresholds(
    bytes: &[u8],
    thresholds: PerEcosystem<f32>,
) -> Result<Vec<u8>, ModelError> {
    for t in [thresholds.pypi, thresholds.npm] {
        if !(t.is_finite() && (0.0..=1.0).contains(&t)) {
            return Err(ModelError::Format(format!(
                "a unit threshold is {t}, not a probability"
            )));
        }
    }
    let w = GgufWeights::new(bytes)?;
    w.info()?;
    let mut metadata: Vec<(String, gguf_file::Value)> = w
        .content
        .metadata
        .iter()
        .filter(|(k, _)| !k.starts_with("cerebro.unit_threshold."))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // A stable order, so the same inputs give the same bytes.
    metadata.sort_by(|a, b| a.0.cmp(&b.0));
    metadata.push((
        "cerebro.unit_threshold.pypi".into(),
        gguf_file::Value::F32(thresholds.pypi),
    ));
    metadata.push((
        "cerebro.unit_threshold.npm".into(),
        gguf_file::Value::F32(thresholds.npm),
    ));
    let tensors = w.tensors_by_name()?;
    let refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    write_file(&metadata, &refs)
}

/// The model file `bytes` widened to a vocabulary of `vocab_size` ids: each network's word
/// embeddings get a row for every new id, a copy of the row of `base(id)`, and every
/// `vocab_size` key follows; every other tensor and key is copied as stored. A network
/// trained on the twenty features then reads a sequence of rich tokens exactly as it read the
/// plain sequence (the rich token of `D3` weighs as `D3`), so it can join an ensemble with
/// networks trained on rich tokens. Embeddings are f32, so the copy is exact.
#[cfg(feature = "training")]
pub fn widened(
    bytes: &[u8],
    vocab_size: usize,
    base: impl Fn(u32) -> u32,
) -> Result<Vec<u8>, ModelError> {
    let w = GgufWeights::new(bytes)?;
    let info = w.info()?;
    let old = info.config.vocab_size;
    if vocab_size < old {
        return Err(ModelError::Format(format!(
            "the model reads {old} ids, more than the {vocab_size} to widen to"
        )));
    }
    let mut metadata: Vec<(String, gguf_file::Value)> = w
        .content
        .metadata
        .iter()
        .map(|(k, v)| {
            let v = if k.ends_with("vocab_size") {
                gguf_file::Value::U32(vocab_size as u32)
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect();
    metadata.sort_by(|a, b| a.0.cmp(&b.0));
    let mut tensors = Vec::new();
    for (name, t) in w.tensors_by_name()? {
        let t = if name.ends_with("embeddings.word.weight") {
            let table = t.dequantize(&w.device)?;
            let rows = table.dim(0)?;
            if rows != old {
                return Err(ModelError::Format(format!(
                    "{name} has {rows} rows, the model reads {old} ids"
                )));
            }
            let mut parts = vec![table.clone()];
            for id in old..vocab_size {
                let from = base(id as u32) as usize;
                if from >= old {
                    return Err(ModelError::Format(format!(
                        "id {id} widens from id {from}, which the model does not read"
                    )));
                }
                parts.push(table.narrow(0, from, 1)?);
            }
            QTensor::quantize(&Tensor::cat(&parts, 0)?, GgmlDType::F32)?
        } else {
            t
        };
        tensors.push((name, t));
    }
    let refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    write_file(&metadata, &refs)
}

/// A network's sizes under `prefix` (`cerebro.` for a single network).
#[cfg(feature = "training")]
fn config_metadata(prefix: &str, c: &Config) -> Vec<(String, gguf_file::Value)> {
    use gguf_file::Value;
    let u = |v: usize| Value::U32(v as u32);
    vec![
        (format!("{prefix}vocab_size"), u(c.vocab_size)),
        (format!("{prefix}hidden_size"), u(c.hidden_size)),
        (format!("{prefix}num_layers"), u(c.num_layers)),
        (format!("{prefix}num_heads"), u(c.num_heads)),
        (format!("{prefix}intermediate_size"), u(c.intermediate_size)),
        (format!("{prefix}max_position"), u(c.max_position)),
        (
            format!("{prefix}layer_norm_eps"),
            Value::F64(c.layer_norm_eps),
        ),
    ]
}

#[cfg(feature = "training")]
fn write_file(
    metadata: &[(String, gguf_file::Value)],
    tensors: &[(&str, &QTensor)],
) -> Result<Vec<u8>, ModelError> {
    let meta_refs: Vec<(&str, &gguf_file::Value)> =
        metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut out = Cursor::new(Vec::new());
    gguf_file::write(&mut out, &meta_refs, tensors)?;
    Ok(out.into_inner())
}

fn bad(k: &str) -> impl Fn(candle_core::Error) -> ModelError + '_ {
    move |e| ModelError::Format(format!("{k}: {e}"))
}

/// Tensors read from a GGUF buffer.
pub struct GgufWeights<'a> {
    content: gguf_file::Content,
    bytes: &'a [u8],
    device: Device,
    /// Prepended to every tensor name: `member.{i}.` for a member of an ensemble.
    prefix: String,
}

impl<'a> GgufWeights<'a> {
    pub fn new(bytes: &'a [u8]) -> Result<GgufWeights<'a>, ModelError> {
        let content = gguf_file::Content::read(&mut Cursor::new(bytes)).map_err(|e| {
            // The first line only: candle appends a backtrace when RUST_BACKTRACE is set.
            let e = e.to_string();
            let first = e.lines().next().unwrap_or_default();
            ModelError::Format(format!("not a GGUF model file: {first}"))
        })?;
        Ok(GgufWeights {
            content,
            bytes,
            device: Device::Cpu,
            prefix: String::new(),
        })
    }

    /// Every tensor of the file as stored, in name order (a stable order, so that rewriting a
    /// file gives the same bytes for the same inputs).
    #[cfg(feature = "training")]
    fn tensors_by_name(&self) -> Result<Vec<(String, QTensor)>, ModelError> {
        let mut names: Vec<&String> = self.content.tensor_infos.keys().collect();
        names.sort();
        names
            .into_iter()
            .map(|name| {
                let t = self
                    .content
                    .tensor(&mut Cursor::new(self.bytes), name, &self.device)?;
                Ok((name.clone(), t))
            })
            .collect()
    }

    fn qtensor(&self, name: &str, shape: &[usize]) -> CResult<QTensor> {
        let name = format!("{}{name}", self.prefix);
        let t = self
            .content
            .tensor(&mut Cursor::new(self.bytes), &name, &self.device)?;
        if t.shape().dims() != shape {
            candle_core::bail!(
                "tensor {name} has shape {:?}, expected {shape:?}",
                t.shape().dims()
            );
        }
        Ok(t)
    }

    fn get(&self, k: &str) -> Result<&gguf_file::Value, ModelError> {
        self.content
            .metadata
            .get(k)
            .ok_or_else(|| ModelError::Format(format!("model file lacks metadata {k}")))
    }

    fn u32(&self, k: &str) -> Result<u32, ModelError> {
        self.get(k)?.to_u32().map_err(bad(k))
    }

    /// The layout version, checked to be one this reader knows.
    fn version(&self) -> Result<u32, ModelError> {
        let arch = self
            .get("general.architecture")?
            .to_string()
            .map_err(bad("general.architecture"))?;
        if arch != ARCHITECTURE {
            return Err(ModelError::Format(format!(
                "model file is a {arch:?}, not a {ARCHITECTURE:?}"
            )));
        }
        let version = self.u32("cerebro.format_version")?;
        if version != FORMAT_VERSION && version != ENSEMBLE_FORMAT_VERSION {
            return Err(ModelError::Format(format!(
                "model file format {version} is not one of the supported {FORMAT_VERSION} \
                 and {ENSEMBLE_FORMAT_VERSION}"
            )));
        }
        Ok(version)
    }

    /// How many networks the file holds: 1, or an ensemble's members.
    pub fn members(&self) -> Result<usize, ModelError> {
        if self.version()? == FORMAT_VERSION {
            return Ok(1);
        }
        let n = self.u32("cerebro.members")? as usize;
        if n == 0 || n > MAX_MEMBERS {
            return Err(ModelError::Format(format!(
                "cerebro.members is {n}, not 1 to {MAX_MEMBERS}"
            )));
        }
        Ok(n)
    }

    /// The sizes of network `i` (0 for a single-network file).
    pub fn member_config(&self, i: usize) -> Result<Config, ModelError> {
        if self.version()? == FORMAT_VERSION {
            return self.config("cerebro.");
        }
        let c = self.config(&format!("cerebro.member.{i}."))?;
        let top = self.config("cerebro.")?;
        if (c.vocab_size, c.max_position) != (top.vocab_size, top.max_position) {
            return Err(ModelError::Format(format!(
                "member {i} reads {} ids of {} tokens, the file {} of {}",
                c.max_position, c.vocab_size, top.max_position, top.vocab_size
            )));
        }
        Ok(c)
    }

    fn config(&self, prefix: &str) -> Result<Config, ModelError> {
        let n = |k: &str| -> Result<usize, ModelError> {
            Ok(self.u32(&format!("{prefix}{k}"))? as usize)
        };
        let eps = format!("{prefix}layer_norm_eps");
        let config = Config {
            vocab_size: n("vocab_size")?,
            hidden_size: n("hidden_size")?,
            num_layers: n("num_layers")?,
            num_heads: n("num_heads")?,
            intermediate_size: n("intermediate_size")?,
            max_position: n("max_position")?,
            dropout: 0.0,
            layer_norm_eps: self.get(&eps)?.to_f64().map_err(bad(&eps))?,
        };
        config.validate().map_err(ModelError::Format)?;
        Ok(config)
    }

    /// The metadata as a [`ModelInfo`]; for an ensemble, `config` is its first member's (all
    /// members share the vocabulary and the input length).
    pub fn info(&self) -> Result<ModelInfo, ModelError> {
        self.version()?;
        let md = &self.content.metadata;
        let threshold = |k: &str| -> Result<f32, ModelError> {
            let t = self.get(k)?.to_f32().map_err(bad(k))?;
            if t.is_finite() && (0.0..=1.0).contains(&t) {
                Ok(t)
            } else {
                Err(ModelError::Format(format!("{k} is {t}, not a probability")))
            }
        };
        // Files written before thresholds were chosen per ecosystem hold one for both.
        let thresholds = if md.contains_key("cerebro.threshold.pypi") {
            PerEcosystem {
                pypi: threshold("cerebro.threshold.pypi")?,
                npm: threshold("cerebro.threshold.npm")?,
            }
        } else {
            PerEcosystem::both(threshold("cerebro.threshold")?)
        };
        let unit_thresholds = if md.contains_key("cerebro.unit_threshold.pypi") {
            Some(PerEcosystem {
                pypi: threshold("cerebro.unit_threshold.pypi")?,
                npm: threshold("cerebro.unit_threshold.npm")?,
            })
        } else {
            None
        };
        let unit_networks = match md.get("cerebro.unit_networks") {
            None => 0,
            Some(v) => v.to_u32().map_err(bad("cerebro.unit_networks"))? as usize,
        };
        if unit_networks > 0 {
            let members = self.members()?;
            if unit_networks >= members || unit_thresholds.is_none() {
                return Err(ModelError::Format(format!(
                    "cerebro.unit_networks is {unit_networks} of {members} networks{}",
                    if unit_thresholds.is_none() {
                        ", without unit thresholds"
                    } else {
                        ""
                    }
                )));
            }
        }
        Ok(ModelInfo {
            config: self.member_config(0)?,
            thresholds,
            unit_thresholds,
            unit_networks,
            bag: self
                .get("cerebro.bag")?
                .to_bool()
                .map_err(bad("cerebro.bag"))?,
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

/// Reads a single-network model file into the network and its metadata.
pub fn read_gguf(bytes: &[u8]) -> Result<(BertClassifier, ModelInfo), ModelError> {
    let (mut members, info) = read_members(bytes, false)?;
    if members.len() != 1 {
        return Err(ModelError::Format(format!(
            "the file is an ensemble of {} networks, not one",
            members.len()
        )));
    }
    let (net, _) = members.remove(0);
    Ok((net, info))
}

/// One network read from a file, with its [`Engine`] when there is one.
pub type Network = (BertClassifier, Option<Engine>);

/// Reads a model file into its networks (one, or an ensemble's members), each with the
/// [`Engine`] that runs it faster when `engine` is asked for and the CPU and the file allow
/// it, and the file's metadata.
pub fn read_members(bytes: &[u8], engine: bool) -> Result<(Vec<Network>, ModelInfo), ModelError> {
    let mut weights = GgufWeights::new(bytes)?;
    let info = weights.info()?;
    let n = weights.members()?;
    let single = weights.version()? == FORMAT_VERSION;
    let mut members = Vec::with_capacity(n);
    for i in 0..n {
        let config = weights.member_config(i)?;
        // Member i's tensors, named as in a single-network file.
        if !single {
            weights.prefix = format!("member.{i}.");
        }
        let net = BertClassifier::load(&weights, &config)?;
        let engine = if engine {
            Engine::load(&weights, &config)
        } else {
            None
        };
        members.push((net, engine));
    }
    Ok((members, info))
}

/// The model file run by the hand-written kernels of [`super::ops::infer`] instead of
/// candle's tensor ops: one sequence at a time, no padding, no tensor or allocation per op
/// (buffers are kept per thread), and in the last layer only what the `[CLS]` state needs
/// (keys and values of every position, everything else of `[CLS]` alone). It computes what
/// [`BertClassifier::probabilities`] computes for the same file, operation for operation:
/// the Q8_0 products with the same input quantization and summation, the attention's f32
/// products summed as candle's `gemm` sums them, LayerNorm, GELU, softmax and tanh with
/// candle's formulas and functions. Its scores are candle's to the bit on every sequence of
/// the data set and every occluded variant (`examples/bench_model.rs --check`: 13,505 of
/// 13,505); a unit test holds it to candle within 1e-6. x86-64 with AVX2, FMA and F16C only;
/// elsewhere [`Engine::load`] gives `None` and the model runs on candle.
#[derive(Debug)]
pub struct Engine {
    #[cfg(target_arch = "x86_64")]
    inner: engine::Net,
}

impl Engine {
    /// The engine for a model file, or `None` where the CPU or a tensor's storage type is not
    /// supported (the caller then runs candle).
    pub fn load(weights: &GgufWeights, config: &Config) -> Option<Engine> {
        #[cfg(target_arch = "x86_64")]
        {
            engine::Net::load(weights, config).map(|inner| Engine { inner })
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (weights, config);
            None
        }
    }

    /// Probability that the sequence of ids (framed, at most `max_position` long, every id in
    /// the vocabulary) is malicious; `None` for input the engine does not take (the caller
    /// then runs candle, which reports the error).
    pub fn probability(&self, ids: &[u32]) -> Option<f32> {
        #[cfg(target_arch = "x86_64")]
        {
            self.inner.probability(ids)
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = ids;
            None
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod engine {
    use std::cell::RefCell;

    use candle_core::quantized::GgmlDType;

    use super::super::ops::infer::{
        attention_context, attention_scores, attention_scores_by_rows, ActFormat, Cpu,
    };
    use super::super::ops::infer::{F32Matrix, Q8Matrix, QRows};
    use super::{Config, GgufWeights};

    #[derive(Debug)]
    struct Norm {
        weight: Vec<f32>,
        bias: Vec<f32>,
        eps: f32,
    }

    impl Norm {
        fn load(w: &GgufWeights, name: &str, size: usize, eps: f64) -> Option<Norm> {
            Some(Norm {
                weight: vector(w, &format!("{name}.weight"), &[size])?,
                bias: vector(w, &format!("{name}.bias"), &[size])?,
                eps: eps as f32,
            })
        }

        /// candle-nn's `layer_norm` (CPU) on each row of `x`, into `out`.
        fn apply(&self, x: &[f32], out: &mut [f32]) {
            let d = self.weight.len();
            for (src, dst) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
                let mut sum = 0f32;
                let mut sum2 = 0f32;
                for &v in src {
                    sum += v;
                    sum2 += v * v;
                }
                let mean = sum / d as f32;
                let var = sum2 / d as f32 - mean * mean;
                let inv_std = (var + self.eps).sqrt().recip();
                for (((o, &s), &a), &b) in dst.iter_mut().zip(src).zip(&self.weight).zip(&self.bias)
                {
                    *o = (s - mean) * inv_std * a + b;
                }
            }
        }
    }

    #[derive(Debug)]
    enum Matrix {
        Q8(Q8Matrix, ActFormat),
        F32(F32Matrix),
    }

    /// A linear layer `x W^T + b`.
    #[derive(Debug)]
    struct Dense {
        matrix: Matrix,
        bias: Vec<f32>,
    }

    impl Dense {
        fn load(cpu: Cpu, w: &GgufWeights, name: &str, inp: usize, out: usize) -> Option<Dense> {
            let t = w.qtensor(&format!("{name}.weight"), &[out, inp]).ok()?;
            let matrix = match t.dtype() {
                GgmlDType::Q8_0 => Matrix::Q8(
                    Q8Matrix::from_q8_0(cpu, &t.data().ok()?, out, inp)?,
                    cpu.act_format(out, inp),
                ),
                GgmlDType::F32 => Matrix::F32(F32Matrix::new(
                    t.dequantize(&candle_core::Device::Cpu)
                        .ok()?
                        .flatten_all()
                        .ok()?
                        .to_vec1()
                        .ok()?,
                    out,
                    inp,
                )?),
                _ => return None,
            };
            Some(Dense {
                matrix,
                bias: vector(w, &format!("{name}.bias"), &[out])?,
            })
        }

        fn inputs(&self) -> usize {
            match &self.matrix {
                Matrix::Q8(m, _) => m.inputs(),
                Matrix::F32(m) => m.inputs(),
            }
        }

        /// Outputs `cols` of every row of `x`, bias added, at `out[r * stride + c - start]`.
        fn forward(
            &self,
            cpu: Cpu,
            q: &mut QRows,
            x: &[f32],
            cols: std::ops::Range<usize>,
            out: &mut [f32],
            stride: usize,
        ) {
            match &self.matrix {
                Matrix::Q8(m, format) => {
                    q.quantize(cpu, x, m.inputs(), *format);
                    m.matmul(cpu, q, *format, cols.clone(), out, stride);
                }
                Matrix::F32(m) => m.matmul(cpu, x, cols.clone(), out, stride),
            }
            let rows = x.len() / self.inputs();
            for r in 0..rows {
                let o = &mut out[r * stride..r * stride + cols.len()];
                for (o, &b) in o.iter_mut().zip(&self.bias[cols.clone()]) {
                    *o += b;
                }
            }
        }
    }

    #[derive(Debug)]
    struct Layer {
        attn_norm: Norm,
        qkv: Dense,
        out: Dense,
        ffn_norm: Norm,
        up: Dense,
        down: Dense,
    }

    #[derive(Debug)]
    pub struct Net {
        cpu: Cpu,
        config: Config,
        word: Vec<f32>,
        position: Vec<f32>,
        emb_norm: Norm,
        layers: Vec<Layer>,
        final_norm: Norm,
        dense: Dense,
        out: Dense,
    }

    fn vector(w: &GgufWeights, name: &str, shape: &[usize]) -> Option<Vec<f32>> {
        let t = w.qtensor(name, shape).ok()?;
        if t.dtype() != GgmlDType::F32 {
            return None;
        }
        t.dequantize(&candle_core::Device::Cpu)
            .ok()?
            .flatten_all()
            .ok()?
            .to_vec1()
            .ok()
    }

    /// Buffers of one forward pass, kept per thread.
    #[derive(Default)]
    struct Scratch {
        x: Vec<f32>,
        h: Vec<f32>,
        qkv: Vec<f32>,
        kt: Vec<f32>,
        scores: Vec<f32>,
        ctx: Vec<f32>,
        a: Vec<f32>,
        ffn: Vec<f32>,
        q: QRows,
    }

    thread_local! {
        static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
    }

    impl Net {
        pub fn load(w: &GgufWeights, c: &Config) -> Option<Net> {
            let cpu = Cpu::detect()?;
            let (h, i, eps) = (c.hidden_size, c.intermediate_size, c.layer_norm_eps);
            if c.num_layers == 0 || c.num_heads == 0 || h % c.num_heads != 0 {
                return None;
            }
            let layers = (0..c.num_layers)
                .map(|l| {
                    let n = |s: &str| format!("layers.{l}.{s}");
                    Some(Layer {
                        attn_norm: Norm::load(w, &n("attn_norm"), h, eps)?,
                        qkv: Dense::load(cpu, w, &n("attn.qkv"), h, 3 * h)?,
                        out: Dense::load(cpu, w, &n("attn.out"), h, h)?,
                        ffn_norm: Norm::load(w, &n("ffn_norm"), h, eps)?,
                        up: Dense::load(cpu, w, &n("ffn.up"), h, i)?,
                        down: Dense::load(cpu, w, &n("ffn.down"), i, h)?,
                    })
                })
                .collect::<Option<Vec<_>>>()?;
            Some(Net {
                cpu,
                config: *c,
                word: vector(w, "embeddings.word.weight", &[c.vocab_size, h])?,
                position: vector(w, "embeddings.position.weight", &[c.max_position, h])?,
                emb_norm: Norm::load(w, "embeddings.norm", h, eps)?,
                layers,
                final_norm: Norm::load(w, "final_norm", h, eps)?,
                dense: Dense::load(cpu, w, "cls.dense", h, h)?,
                out: Dense::load(cpu, w, "cls.out", h, super::super::bert::NUM_CLASSES)?,
            })
        }

        pub fn probability(&self, ids: &[u32]) -> Option<f32> {
            let c = &self.config;
            if ids.is_empty()
                || ids.len() > c.max_position
                || ids.iter().any(|&id| id as usize >= c.vocab_size)
            {
                return None;
            }
            Some(SCRATCH.with(|s| self.forward(ids, &mut s.borrow_mut())))
        }

        fn forward(&self, ids: &[u32], s: &mut Scratch) -> f32 {
            let cpu = self.cpu;
            let c = &self.config;
            let (h, inter, heads) = (c.hidden_size, c.intermediate_size, c.num_heads);
            let hd = h / heads;
            let l = ids.len();
            let scale = (1.0 / (hd as f64).sqrt()) as f32;

            // Embeddings.
            s.x.resize(l * h, 0.0);
            for (t, &id) in ids.iter().enumerate() {
                let word = &self.word[id as usize * h..(id as usize + 1) * h];
                let pos = &self.position[t * h..(t + 1) * h];
                for ((x, &w), &p) in s.x[t * h..(t + 1) * h].iter_mut().zip(word).zip(pos) {
                    *x = w + p;
                }
            }
            s.h.resize(l * h, 0.0);
            self.emb_norm.apply(&s.x, &mut s.h);
            std::mem::swap(&mut s.x, &mut s.h);

            let last_layer = self.layers.len() - 1;
            for (li, layer) in self.layers.iter().enumerate() {
                let last = li == last_layer;
                // Rows whose output is needed: every row, or in the last layer `[CLS]` only
                // (the other rows still give their keys and values).
                let rows = if last { 1 } else { l };

                // Attention.
                s.h.resize(l * h, 0.0);
                layer.attn_norm.apply(&s.x, &mut s.h);
                s.qkv.resize(l * 3 * h, 0.0);
                if last {
                    layer
                        .qkv
                        .forward(cpu, &mut s.q, &s.h[..h], 0..3 * h, &mut s.qkv, 3 * h);
                    if l > 1 {
                        layer.qkv.forward(
                            cpu,
                            &mut s.q,
                            &s.h[h..],
                            h..3 * h,
                            &mut s.qkv[4 * h..],
                            3 * h,
                        );
                    }
                } else {
                    layer
                        .qkv
                        .forward(cpu, &mut s.q, &s.h, 0..3 * h, &mut s.qkv, 3 * h);
                }
                for r in 0..rows {
                    for q in &mut s.qkv[r * 3 * h..r * 3 * h + h] {
                        *q *= scale;
                    }
                }
                // candle's `gemm` sums a score matrix of at most 256 entries with its
                // horizontal kernel, a bigger one with fused multiply-add chains.
                let by_rows = l * l <= 256;
                let stride = l.div_ceil(8) * 8;
                s.kt.resize(hd * stride, 0.0);
                s.scores.resize(l, 0.0);
                s.ctx.resize(rows * h, 0.0);
                for head in 0..heads {
                    let base = head * hd;
                    if !by_rows {
                        for j in 0..l {
                            let key = &s.qkv[j * 3 * h + h + base..j * 3 * h + h + base + hd];
                            for (d, &k) in key.iter().enumerate() {
                                s.kt[d * stride + j] = k;
                            }
                        }
                        for d in 0..hd {
                            s.kt[d * stride + l..(d + 1) * stride].fill(0.0);
                        }
                    }
                    for i in 0..rows {
                        let q = &s.qkv[i * 3 * h + base..i * 3 * h + base + hd];
                        if by_rows {
                            let keys = &s.qkv[h + base..];
                            attention_scores_by_rows(cpu, q, keys, 3 * h, &mut s.scores);
                        } else {
                            attention_scores(cpu, q, &s.kt, stride, &mut s.scores);
                        }
                        softmax(cpu, &mut s.scores);
                        attention_context(
                            cpu,
                            &s.scores,
                            &s.qkv[2 * h + base..],
                            3 * h,
                            &mut s.ctx[i * h + base..i * h + base + hd],
                        );
                    }
                }
                s.a.resize(rows * h, 0.0);
                layer.out.forward(cpu, &mut s.q, &s.ctx, 0..h, &mut s.a, h);
                s.x.truncate(rows * h);
                for (x, &a) in s.x.iter_mut().zip(&s.a) {
                    *x += a;
                }

                // Feed-forward.
                s.h.resize(rows * h, 0.0);
                layer.ffn_norm.apply(&s.x, &mut s.h[..rows * h]);
                s.ffn.resize(rows * inter, 0.0);
                layer
                    .up
                    .forward(cpu, &mut s.q, &s.h[..rows * h], 0..inter, &mut s.ffn, inter);
                for v in &mut s.ffn {
                    *v = gelu_erf(*v);
                }
                layer.down.forward(cpu, &mut s.q, &s.ffn, 0..h, &mut s.a, h);
                for (x, &f) in s.x.iter_mut().zip(&s.a) {
                    *x += f;
                }
            }

            // Classification head on `[CLS]`.
            let (cls, dense) = (&mut s.h[..h], &mut s.a[..h]);
            self.final_norm.apply(&s.x[..h], cls);
            self.dense.forward(cpu, &mut s.q, cls, 0..h, dense, h);
            for v in dense.iter_mut() {
                *v = v.tanh();
            }
            let mut logits = [0f32; super::super::bert::NUM_CLASSES];
            self.out
                .forward(cpu, &mut s.q, dense, 0..logits.len(), &mut logits, 2);
            softmax(cpu, &mut logits);
            logits[1]
        }
    }

    /// candle's unary `gelu_erf` on `f32`.
    fn gelu_erf(v: f32) -> f32 {
        (candle_core::cpu::erf::erf_f32(v * std::f32::consts::FRAC_1_SQRT_2) + 1.) * 0.5 * v
    }

    /// candle-nn's `softmax_last_dim` (CPU) on one row, in place.
    fn softmax(cpu: Cpu, row: &mut [f32]) {
        use candle_core::cpu::kernels::VecOps;
        let max = super::super::ops::infer::max(cpu, row);
        for v in row.iter_mut() {
            *v = (*v - max).exp();
        }
        let mut sum = 0f32;
        // SAFETY: `row` holds `row.len()` values, and `sum` is a valid place to write.
        unsafe { f32::vec_reduce_sum(row.as_ptr(), &mut sum, row.len()) };
        for v in row.iter_mut() {
            *v /= sum;
        }
    }
}

#[cfg(test)]
mod tests {
    use candle_core::DType;
    use candle_nn::{VarBuilder, VarMap};

    use super::*;
    use crate::bert::MlmHead;
    use crate::{tokenizer, Classifier, Model, EMBEDDED_MODEL};

    /// Framed id sequences of many lengths (the short ones take candle's horizontal `gemm`
    /// kernel, the long ones its blocked one), ids drawn from the behaviour tokens.
    fn batch(max: usize) -> Vec<Vec<u32>> {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let vocab = tokenizer::vocab_size() as u64 - tokenizer::FIRST_BEHAVIOUR_ID as u64;
        [
            0,
            1,
            2,
            5,
            6,
            14,
            15,
            16,
            30,
            64,
            129,
            300,
            max - 2,
            max + 40,
        ]
        .iter()
        .map(|&n| {
            let mut ids = vec![tokenizer::CLS_ID];
            ids.extend((0..n).map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                tokenizer::FIRST_BEHAVIOUR_ID + (state % vocab) as u32
            }));
            ids.push(tokenizer::SEP_ID);
            ids
        })
        .collect()
    }

    fn same_as_candle(file: &[u8]) {
        let model = Model::from_gguf(file).unwrap();
        if !model.has_engine() {
            return; // a CPU the engine does not run on: candle scores, nothing to compare
        }
        let reference = model.clone().without_engine();
        assert!(!reference.has_engine());
        let max = model.max_len();
        for seq in batch(max) {
            let fast = model.probabilities(std::slice::from_ref(&seq)).unwrap()[0];
            let slow = reference.probabilities(std::slice::from_ref(&seq)).unwrap()[0];
            assert!(
                (fast - slow).abs() <= 1e-6,
                "{} ids: engine {fast}, candle {slow}",
                seq.len()
            );
            let one = std::slice::from_ref(&seq);
            let (fast, slow) = (
                model.unit_probabilities(one).unwrap()[0],
                reference.unit_probabilities(one).unwrap()[0],
            );
            assert!(
                (fast - slow).abs() <= 1e-6,
                "unit: engine {fast}, candle {slow}"
            );
        }
        // A batch scores each sequence as alone.
        let all = batch(max);
        let together = model.probabilities(&all).unwrap();
        for (seq, p) in all.iter().zip(together) {
            assert_eq!(
                p,
                model.probabilities(std::slice::from_ref(seq)).unwrap()[0]
            );
        }
    }

    #[test]
    #[cfg(feature = "training")]
    fn unit_thresholds_are_added_and_replaced_and_nothing_else_changes() {
        let before = GgufWeights::new(EMBEDDED_MODEL).unwrap().info().unwrap();
        let t = PerEcosystem {
            pypi: 0.99,
            npm: 0.97,
        };
        let file = with_unit_thresholds(EMBEDDED_MODEL, t).unwrap();
        let w = GgufWeights::new(&file).unwrap();
        let info = w.info().unwrap();
        assert_eq!(info.unit_thresholds, Some(t));
        assert_ne!(before.unit_thresholds, Some(t));
        assert_eq!(info.unit_networks, before.unit_networks);
        assert_eq!(info.thresholds, before.thresholds);
        assert_eq!(info.description, before.description);
        let original = GgufWeights::new(EMBEDDED_MODEL).unwrap();
        assert_eq!(w.tensor_types(), original.tensor_types());
        // Replaced, not added twice; a probability is required.
        let again = with_unit_thresholds(&file, PerEcosystem::both(0.5)).unwrap();
        let info = GgufWeights::new(&again).unwrap().info().unwrap();
        assert_eq!(info.unit_thresholds, Some(PerEcosystem::both(0.5)));
        assert!(with_unit_thresholds(EMBEDDED_MODEL, PerEcosystem::both(1.5)).is_err());
        // The networks score as before.
        let a = crate::Model::from_gguf(EMBEDDED_MODEL).unwrap();
        let b = crate::Model::from_gguf(&again).unwrap();
        let ids = vec![vec![2u32, 5, 9, 12, 3]];
        assert_eq!(
            a.probabilities(&ids).unwrap(),
            b.probabilities(&ids).unwrap()
        );
    }

    #[test]
    fn engine_scores_the_shipped_model_as_candle_does() {
        same_as_candle(EMBEDDED_MODEL);
    }

    #[test]
    fn the_shipped_model_judges_units_with_networks_of_their_own() {
        let info = GgufWeights::new(EMBEDDED_MODEL).unwrap().info().unwrap();
        assert!(info.unit_networks > 0 && info.unit_thresholds.is_some());
        let model = Model::from_gguf(EMBEDDED_MODEL).unwrap();
        let ids = vec![vec![2u32, 5, 9, 12, 3]];
        assert_ne!(
            model.probabilities(&ids).unwrap(),
            model.unit_probabilities(&ids).unwrap(),
            "units are scored by other networks than packages"
        );
    }

    /// Deterministic weights for a test network, of BERT's initial scales (the trainer's own
    /// initialiser lives in `cerebro-train`, which this crate must not depend on), by name.
    fn init_params(map: &VarMap, cfg: &Config) -> Vec<(String, Tensor)> {
        let data = map.data().lock().unwrap();
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for (name, shape) in crate::bert::tensor_shapes(cfg) {
            let Some(var) = data.get(&name) else { continue };
            let n: usize = shape.iter().product();
            let values: Vec<f32> = match crate::bert::init_value(&name) {
                crate::bert::Init::Zeros => vec![0.0; n],
                crate::bert::Init::Ones => vec![1.0; n],
                crate::bert::Init::Normal(std) => (0..n)
                    .map(|_| {
                        state = state
                            .wrapping_mul(6_364_136_223_846_793_005)
                            .wrapping_add(1_442_695_040_888_963_407);
                        ((state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * std * 1.7
                    })
                    .collect(),
            };
            var.set(&Tensor::from_vec(values, shape.as_slice(), &Device::Cpu).unwrap())
                .unwrap();
        }
        let mut tensors: Vec<(String, Tensor)> = data
            .iter()
            .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
            .collect();
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        tensors
    }

    #[test]
    fn engine_scores_other_sizes_and_f32_files_as_candle_does() {
        // Hidden 64 in 4 heads of 16, a 2-row output layer left f32, 3 layers.
        let mut cfg = Config::new(tokenizer::vocab_size(), 64, 3, 4, 256);
        cfg.max_position = 96;
        cfg.dropout = 0.0;
        let map = VarMap::new();
        let vb = VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu);
        let net = BertClassifier::load(&vb, &cfg).unwrap();
        MlmHead::load(&vb, &cfg, net.bert.word_embeddings()).unwrap();
        let tensors = init_params(&map, &cfg);
        let info = ModelInfo {
            config: cfg,
            thresholds: PerEcosystem::both(0.5),
            unit_thresholds: None,
            unit_networks: 0,
            bag: false,
            description: "test".into(),
        };
        same_as_candle(&write_gguf(&tensors, &info, true).unwrap());
        same_as_candle(&write_gguf(&tensors, &info, false).unwrap());
    }
}
