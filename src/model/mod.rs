//! Model stage: scores a behaviour sequence with a small BERT, the probability that the
//! package is malicious.
//!
//! - [`tokenizer`]: the fixed word-level vocabulary (`models/tokenizer.json`);
//! - [`bert`]: the network, math only, the same code for training and inference;
//! - [`ops`]: fused training ops with a backward pass (softmax, LayerNorm);
//! - [`quantized`]: the model file (GGUF, Q8_0 matrices), reading it back, and the
//!   [`quantized::Engine`] that scores with it on the CPU.
//!
//! The seam is the [`Classifier`] trait: token ids in, probabilities out, never text. A
//! [`Detector`] puts the tokenizer in front of a classifier; [`Detector::embedded`] is the
//! model compiled into the binary. See `docs/MODEL.md` for how it is trained and how well it
//! does.

pub mod bert;
pub mod ops;
pub mod quantized;
pub mod tokenizer;

use std::sync::Arc;

use candle_core::{DType, Device, Tensor};

use crate::archive::PerEcosystem;
use crate::features::{Feature, FEATURES};
use crate::sequence::{self, Phase, Token};
use bert::BertClassifier;
use quantized::Engine;
pub use quantized::ModelInfo;
pub use tokenizers::Tokenizer;

/// Why a model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("model file: {0}")]
    Format(String),
}

impl ModelError {
    fn tokenizer(e: impl std::fmt::Display) -> ModelError {
        ModelError::Tokenizer(e.to_string())
    }
}

/// A sequence classifier over token ids (each sequence framed as `[CLS] … [SEP]`).
pub trait Classifier: Send + Sync {
    /// Longest sequence read, in ids; longer ones are cut to it.
    fn max_len(&self) -> usize;
    /// Probability that each sequence is malicious, in `[0, 1]`.
    fn probabilities(&self, batch: &[Vec<u32>]) -> Result<Vec<f32>, ModelError>;
}

/// The network (or the networks of an ensemble) with its metadata, ready to score.
#[derive(Debug, Clone)]
pub struct Model {
    members: Vec<Member>,
    info: ModelInfo,
}

/// One network of a [`Model`].
#[derive(Debug, Clone)]
struct Member {
    net: BertClassifier,
    /// The same network on hand-written kernels, when read from a file on a CPU they run on;
    /// [`Classifier::probabilities`] then uses it instead of candle.
    engine: Option<Arc<Engine>>,
}

impl Model {
    /// A model run on candle (training and its evaluation build these).
    pub fn new(net: BertClassifier, info: ModelInfo) -> Model {
        Model {
            members: vec![Member { net, engine: None }],
            info,
        }
    }

    /// Reads a model file (see [`quantized`]): one network, or an ensemble whose score is its
    /// members' mean probability. Each network runs on the [`Engine`] where the CPU allows and
    /// the environment variable `CEREBRO_MODEL_ENGINE` is not `off` (which runs candle alone,
    /// to compare or to rule the engine out).
    pub fn from_gguf(bytes: &[u8]) -> Result<Model, ModelError> {
        let engine = std::env::var("CEREBRO_MODEL_ENGINE").as_deref() != Ok("off");
        let (members, info) = quantized::read_members(bytes, engine)?;
        Ok(Model {
            members: members
                .into_iter()
                .map(|(net, engine)| Member {
                    net,
                    engine: engine.map(Arc::new),
                })
                .collect(),
            info,
        })
    }

    /// The same model scored by candle alone: the reference the engine is checked against.
    pub fn without_engine(self) -> Model {
        Model {
            members: self
                .members
                .into_iter()
                .map(|m| Member { engine: None, ..m })
                .collect(),
            ..self
        }
    }

    /// Whether scores come from the [`Engine`] rather than candle (for every network).
    pub fn has_engine(&self) -> bool {
        self.members.iter().all(|m| m.engine.is_some())
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// How many networks score: more than one for an ensemble.
    pub fn members(&self) -> usize {
        self.members.len()
    }

    /// The (first) network.
    pub fn net(&self) -> &BertClassifier {
        &self.members[0].net
    }
}

impl Member {
    fn probabilities(&self, batch: &[Vec<u32>], max: usize) -> Result<Vec<f32>, ModelError> {
        if let Some(engine) = &self.engine {
            // One sequence at a time, unpadded (padding changes nothing: padded positions
            // weigh exactly 0), cut as `pad_batch` cuts.
            let scores: Option<Vec<f32>> = batch
                .iter()
                .map(|seq| {
                    if seq.len() <= max {
                        engine.probability(seq)
                    } else {
                        let mut cut = seq[..max].to_vec();
                        if let (Some(last), Some(end)) = (seq.last(), cut.last_mut()) {
                            *end = *last;
                        }
                        engine.probability(&cut)
                    }
                })
                .collect();
            if let Some(scores) = scores {
                return Ok(scores);
            }
            // Input the engine does not take (an empty sequence, an id outside the
            // vocabulary): candle scores it or reports the error.
        }
        let (ids, mask) = pad_batch(batch, max, &Device::Cpu)?;
        let p = self.net.probabilities(&ids, &mask)?;
        Ok(p.to_dtype(DType::F32)?.to_vec1()?)
    }
}

/// Pads a batch of id sequences into `(ids, mask)` tensors, cutting each to `max_len` (the
/// last id, `[SEP]`, kept).
pub fn pad_batch(
    batch: &[Vec<u32>],
    max_len: usize,
    device: &Device,
) -> candle_core::Result<(Tensor, Tensor)> {
    let len = batch
        .iter()
        .map(|s| s.len().min(max_len))
        .max()
        .unwrap_or(0)
        .max(1);
    let mut ids = vec![tokenizer::PAD_ID; batch.len() * len];
    let mut mask = vec![0f32; batch.len() * len];
    for (row, seq) in batch.iter().enumerate() {
        let take = seq.len().min(max_len);
        let base = row * len;
        ids[base..base + take].copy_from_slice(&seq[..take]);
        if seq.len() > take && take > 0 {
            ids[base + take - 1] = *seq.last().unwrap_or(&tokenizer::SEP_ID);
        }
        mask[base..base + take].iter_mut().for_each(|m| *m = 1.0);
    }
    Ok((
        Tensor::from_vec(ids, (batch.len(), len), device)?,
        Tensor::from_vec(mask, (batch.len(), len), device)?,
    ))
}

impl Classifier for Model {
    fn max_len(&self) -> usize {
        self.info.config.max_position
    }

    fn probabilities(&self, batch: &[Vec<u32>]) -> Result<Vec<f32>, ModelError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let max = self.max_len();
        let (first, rest) = self
            .members
            .split_first()
            .ok_or_else(|| ModelError::Format("a model without a network".into()))?;
        let mut sum = first.probabilities(batch, max)?;
        if rest.is_empty() {
            return Ok(sum);
        }
        for m in rest {
            for (s, p) in sum.iter_mut().zip(m.probabilities(batch, max)?) {
                *s += p;
            }
        }
        let n = self.members.len() as f32;
        Ok(sum.into_iter().map(|s| s / n).collect())
    }
}

/// Reads a model file and its tokenizer.
pub fn load(gguf: &[u8], tokenizer_json: &[u8]) -> Result<(Model, Tokenizer), ModelError> {
    let model = Model::from_gguf(gguf)?;
    let tokenizer = tokenizer::tokenizer_from_bytes(tokenizer_json)?;
    if model.info.config.vocab_size != tokenizer::vocab_size() {
        return Err(ModelError::Format(format!(
            "the model reads {} token ids, the tokenizer has {}",
            model.info.config.vocab_size,
            tokenizer::vocab_size()
        )));
    }
    Ok((model, tokenizer))
}

/// The model file compiled into the binary (`models/cerebro.gguf`).
pub const EMBEDDED_MODEL: &[u8] = include_bytes!("../../models/cerebro.gguf");
/// Its tokenizer (`models/tokenizer.json`).
pub const EMBEDDED_TOKENIZER: &[u8] = include_bytes!("../../models/tokenizer.json");

/// A classifier with its tokenizer: behaviour tokens in, probability out.
pub struct Detector {
    model: Box<dyn Classifier>,
    info: ModelInfo,
    tokenizer: Tokenizer,
    /// Id of each feature's token, by `Feature as usize`, and of `[INSTALL]`, `[IMPORT]`,
    /// `[RUN]`, `[GAP]`: the tokenizer's table, read once.
    feature_ids: Vec<u32>,
    marker_ids: [u32; 4],
}

impl Detector {
    /// The detector from a model file and its tokenizer.
    pub fn from_bytes(gguf: &[u8], tokenizer_json: &[u8]) -> Result<Detector, ModelError> {
        let (model, tokenizer) = load(gguf, tokenizer_json)?;
        Detector::new(model, tokenizer)
    }

    /// The detector from a model and its tokenizer, as [`load`] gives them.
    pub fn new(model: Model, tokenizer: Tokenizer) -> Result<Detector, ModelError> {
        if model.info.config.vocab_size != tokenizer::vocab_size() {
            return Err(ModelError::Format(format!(
                "the model reads {} token ids, the tokenizer has {}",
                model.info.config.vocab_size,
                tokenizer::vocab_size()
            )));
        }
        let info = model.info.clone();
        let id = |t: &str| tokenizer.token_to_id(t).unwrap_or(tokenizer::UNK_ID);
        let mut feature_ids = vec![tokenizer::UNK_ID; FEATURES.len()];
        for f in FEATURES.iter().filter_map(|i| Feature::from_id(i.id)) {
            if let Some(slot) = feature_ids.get_mut(f as usize) {
                *slot = id(f.id());
            }
        }
        let marker_ids = [
            Token::Phase(Phase::Install),
            Token::Phase(Phase::Import),
            Token::Phase(Phase::Run),
            Token::Gap,
        ]
        .map(|t| id(t.as_str()));
        Ok(Detector {
            model: Box::new(model),
            info,
            tokenizer,
            feature_ids,
            marker_ids,
        })
    }

    /// The detector compiled into the binary: needs no file beside it.
    pub fn embedded() -> Result<Detector, ModelError> {
        Detector::from_bytes(EMBEDDED_MODEL, EMBEDDED_TOKENIZER)
    }

    /// Threshold and sizes of the model.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Probabilities at or above which a package is called malicious, per ecosystem.
    pub fn thresholds(&self) -> PerEcosystem<f32> {
        self.info.thresholds
    }

    /// The ids the model reads for a sequence: cut to the model's length, as a bag when the
    /// model was trained on bags, framed as `[CLS] … [SEP]`.
    pub fn ids(&self, tokens: &[&str]) -> Result<Vec<u32>, ModelError> {
        let parsed: Option<Vec<Token>> = tokens.iter().map(|t| Token::parse(t)).collect();
        if let Some(parsed) = parsed {
            return Ok(self.token_ids(&parsed));
        }
        // Text that is not all behaviour tokens goes through the tokenizer.
        let max = self.model.max_len().saturating_sub(2);
        let mut text: Vec<&str> = tokens.iter().take(max).copied().collect();
        if self.info.bag {
            text.sort_unstable();
        }
        tokenizer::encode(&self.tokenizer, &text)
    }

    /// [`Detector::ids`] for behaviour tokens, looked up directly (the tokenizer's ids: every
    /// behaviour token is one word of its vocabulary).
    pub fn token_ids(&self, tokens: &[Token]) -> Vec<u32> {
        let max = self.model.max_len().saturating_sub(2);
        let capped;
        let mut tokens = tokens;
        if tokens.len() > max {
            capped = sequence::cap(tokens, max);
            tokens = &capped;
        }
        let sorted;
        if self.info.bag {
            let mut s = tokens.to_vec();
            s.sort_unstable_by_key(|t| t.as_str());
            sorted = s;
            tokens = &sorted;
        }
        let mut ids = Vec::with_capacity(tokens.len() + 2);
        ids.push(tokenizer::CLS_ID);
        ids.extend(tokens.iter().map(|&t| self.token_id(t)));
        ids.push(tokenizer::SEP_ID);
        ids
    }

    fn token_id(&self, token: Token) -> u32 {
        match token {
            Token::Phase(Phase::Install) => self.marker_ids[0],
            Token::Phase(Phase::Import) => self.marker_ids[1],
            Token::Phase(Phase::Run) => self.marker_ids[2],
            Token::Gap => self.marker_ids[3],
            Token::Feature(f) => self
                .feature_ids
                .get(f as usize)
                .copied()
                .unwrap_or(tokenizer::UNK_ID),
        }
    }

    /// Probability that a package with this behaviour sequence is malicious.
    pub fn score(&self, tokens: &[Token]) -> Result<f32, ModelError> {
        Ok(self.score_tokens_many(&[tokens])?[0])
    }

    /// [`Detector::score`] for many sequences in one call.
    pub fn score_tokens_many(&self, sequences: &[&[Token]]) -> Result<Vec<f32>, ModelError> {
        let batch: Vec<Vec<u32>> = sequences.iter().map(|s| self.token_ids(s)).collect();
        self.model.probabilities(&batch)
    }

    /// [`Detector::score`] for tokens given as text (`"[INSTALL]"`, `"P3"`).
    pub fn score_strs(&self, tokens: &[&str]) -> Result<f32, ModelError> {
        Ok(self.score_many(&[tokens])?[0])
    }

    /// Scores many sequences in one batch.
    pub fn score_many(&self, sequences: &[&[&str]]) -> Result<Vec<f32>, ModelError> {
        let batch = sequences
            .iter()
            .map(|s| self.ids(s))
            .collect::<Result<Vec<_>, _>>()?;
        self.model.probabilities(&batch)
    }
}

/// Makes candle run its kernels on the calling thread, unless the user chose otherwise
/// (`CANDLE_NUM_THREADS`, `RAYON_NUM_THREADS`). Cerebro scores one package per thread, and
/// candle's default pool of busy-waiting workers then spends most of the time spinning against
/// those threads (measured: 56% of a scan's time in its barrier on 2 cores). Call it first
/// thing in `main`, before any thread exists: it sets environment variables.
pub fn single_threaded_kernels() {
    for var in ["CANDLE_NUM_THREADS", "RAYON_NUM_THREADS"] {
        if std::env::var_os(var).is_none() {
            std::env::set_var(var, "1");
        }
    }
}
