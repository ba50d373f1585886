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
//!
//! The `training` feature adds what only training needs (the masked-language-model head, the
//! model file writers); `cerebro-train` turns it on and the product leaves it off. The fused
//! ops' backward passes are still compiled in either way.

pub mod bert;
pub mod ops;
pub mod quantized;
pub mod tokenizer;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Tensor};

use bert::BertClassifier;
use cerebro_archive::PerEcosystem;
use cerebro_features::sequence::{self, Phase, Token};
use cerebro_features::{Feature, FEATURES};
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
    /// The same for units (one file's behaviour each): the unit networks where the model has
    /// them ([`ModelInfo::unit_networks`]), else the same networks as whole packages.
    fn unit_probabilities(&self, batch: &[Vec<u32>]) -> Result<Vec<f32>, ModelError> {
        self.probabilities(batch)
    }
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
        let engine = std::env::var(cerebro_settings::ENV_MODEL_ENGINE).as_deref() != Ok("off");
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

    /// Its networks, in the file's order (one unless an ensemble).
    pub fn networks(&self) -> impl Iterator<Item = &BertClassifier> {
        self.members.iter().map(|m| &m.net)
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
        let split = self.members.len() - self.info.unit_networks.min(self.members.len());
        mean_probabilities(&self.members[..split], batch, self.max_len())
    }

    fn unit_probabilities(&self, batch: &[Vec<u32>]) -> Result<Vec<f32>, ModelError> {
        let units = self.info.unit_networks.min(self.members.len());
        let members = if units == 0 {
            &self.members[..]
        } else {
            &self.members[self.members.len() - units..]
        };
        mean_probabilities(members, batch, self.max_len())
    }
}

/// The mean probability of `members` for each sequence of `batch`.
fn mean_probabilities(
    members: &[Member],
    batch: &[Vec<u32>],
    max: usize,
) -> Result<Vec<f32>, ModelError> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let (first, rest) = members
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
    let n = members.len() as f32;
    Ok(sum.into_iter().map(|s| s / n).collect())
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
pub const EMBEDDED_MODEL: &[u8] = include_bytes!("../../../models/cerebro.gguf");
/// Its tokenizer (`models/tokenizer.json`).
pub const EMBEDDED_TOKENIZER: &[u8] = include_bytes!("../../../models/tokenizer.json");

/// A classifier with its tokenizer: behaviour tokens in, probability out.
pub struct Detector {
    model: Box<dyn Classifier>,
    info: ModelInfo,
    tokenizer: Tokenizer,
    /// Id of each feature's token, by `Feature as usize`, and of `[INSTALL]`, `[IMPORT]`,
    /// `[RUN]`, `[GAP]`: the tokenizer's table, read once.
    feature_ids: Vec<u32>,
    /// Id of each rich token, by its row of `rich::RICH`.
    rich_ids: Vec<u32>,
    marker_ids: [u32; 4],
    /// `None` when switched off ([`Detector::without_memo`]).
    memo: Option<Memo>,
    /// The same for units, which unit networks score differently.
    unit_memo: Option<Memo>,
}

/// Scores already computed, by the ids scored. A score depends on the ids alone, and the same
/// sequence comes back often: copies of one malware sample (11,080 malicious sequences of
/// the corpus are 1,415 distinct ones), the occlusion variants of a common shape, many
/// versions of one package in a lockfile. Bounded by the ids it holds; emptied when full.
#[derive(Default)]
struct Memo {
    inner: Mutex<MemoInner>,
}

#[derive(Default)]
struct MemoInner {
    scores: HashMap<Vec<u32>, f32>,
    ids: usize,
}

/// Most ids the memo holds (4 bytes each, plus the map's own): 16 MiB of ids.
const MEMO_MAX_IDS: usize = 1 << 22;

impl Memo {
    /// Probabilities of `batch`, from the memo where it has them and from `model` (in one
    /// batch) for the rest.
    fn probabilities(
        &self,
        model: &dyn Classifier,
        mut batch: Vec<Vec<u32>>,
        units: bool,
    ) -> Result<Vec<f32>, ModelError> {
        let mut out: Vec<Option<f32>> = {
            let memo = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            batch
                .iter()
                .map(|ids| memo.scores.get(ids).copied())
                .collect()
        };
        // Each distinct missing sequence is scored once: `slots` maps a position of the
        // batch to its sequence in `todo` (copies of one sample often come together).
        let mut slots: Vec<(usize, usize)> = Vec::new();
        let mut distinct: Vec<usize> = Vec::new();
        {
            let mut index: HashMap<&[u32], usize> = HashMap::new();
            for i in (0..batch.len()).filter(|&i| out[i].is_none()) {
                let k = *index.entry(&batch[i]).or_insert_with(|| {
                    distinct.push(i);
                    distinct.len() - 1
                });
                slots.push((i, k));
            }
        }
        if !distinct.is_empty() {
            let todo: Vec<Vec<u32>> = distinct
                .iter()
                .map(|&i| std::mem::take(&mut batch[i]))
                .collect();
            let scores = if units {
                model.unit_probabilities(&todo)?
            } else {
                model.probabilities(&todo)?
            };
            if scores.len() != todo.len() {
                return Err(ModelError::Format(format!(
                    "the model gave {} scores for {} sequences",
                    scores.len(),
                    todo.len()
                )));
            }
            for &(i, k) in &slots {
                out[i] = Some(scores[k]);
            }
            let mut memo = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            for (ids, p) in todo.into_iter().zip(scores) {
                if memo.ids + ids.len() > MEMO_MAX_IDS {
                    memo.scores.clear();
                    memo.ids = 0;
                }
                memo.ids += ids.len();
                memo.scores.insert(ids, p);
            }
        }
        out.into_iter()
            .collect::<Option<Vec<f32>>>()
            .ok_or_else(|| ModelError::Format("a sequence left unscored".into()))
    }
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
        let rich_ids = cerebro_features::rich::RICH
            .iter()
            .map(|r| id(r.id))
            .collect();
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
            rich_ids,
            marker_ids,
            memo: Some(Memo::default()),
            unit_memo: Some(Memo::default()),
        })
    }

    /// The detector compiled into the binary: needs no file beside it.
    pub fn embedded() -> Result<Detector, ModelError> {
        Detector::from_bytes(EMBEDDED_MODEL, EMBEDDED_TOKENIZER)
    }

    /// The same detector scoring every sequence afresh: for benchmarks of the model's cost
    /// per package.
    pub fn without_memo(self) -> Detector {
        Detector {
            memo: None,
            unit_memo: None,
            ..self
        }
    }

    fn probabilities(&self, batch: Vec<Vec<u32>>) -> Result<Vec<f32>, ModelError> {
        match &self.memo {
            Some(memo) => memo.probabilities(self.model.as_ref(), batch, false),
            None => self.model.probabilities(&batch),
        }
    }

    /// Scores units (one file's behaviour each, `sequence::units`) in one batch: with the
    /// model's unit networks where it has them.
    pub fn score_units_many(&self, units: &[&[Token]]) -> Result<Vec<f32>, ModelError> {
        let batch: Vec<Vec<u32>> = units.iter().map(|s| self.token_ids(s)).collect();
        match &self.unit_memo {
            Some(memo) => memo.probabilities(self.model.as_ref(), batch, true),
            None => self.model.unit_probabilities(&batch),
        }
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
            Token::Qualified(f, q) => cerebro_features::rich::RICH
                .iter()
                .position(|r| r.feature == f && r.qualifier == q)
                .and_then(|i| self.rich_ids.get(i).copied())
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
        self.probabilities(batch)
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
        self.probabilities(batch)
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A test double: the score is a function of the ids; counts the sequences it scores.
    struct Counting {
        scored: AtomicUsize,
        short: bool,
    }

    impl Classifier for Counting {
        fn max_len(&self) -> usize {
            512
        }
        fn probabilities(&self, batch: &[Vec<u32>]) -> Result<Vec<f32>, ModelError> {
            self.scored.fetch_add(batch.len(), Ordering::SeqCst);
            let n = if self.short {
                batch.len() - 1
            } else {
                batch.len()
            };
            Ok(batch[..n]
                .iter()
                .map(|ids| ids.iter().sum::<u32>() as f32 / 1000.0)
                .collect())
        }
    }

    fn counting(short: bool) -> Counting {
        Counting {
            scored: AtomicUsize::new(0),
            short,
        }
    }

    #[test]
    fn memo_scores_each_sequence_once_and_gives_the_same_numbers() {
        let model = counting(false);
        let memo = Memo::default();
        let a = vec![2, 9, 10, 3];
        let b = vec![2, 11, 3];
        let first = memo
            .probabilities(&model, vec![a.clone(), b.clone(), a.clone()], false)
            .unwrap();
        assert_eq!(first, vec![0.024, 0.016, 0.024]);
        // The duplicate in the first batch is scored once; the second batch only scores `c`.
        assert_eq!(model.scored.load(Ordering::SeqCst), 2);
        let c = vec![2, 12, 3];
        let second = memo.probabilities(&model, vec![b, c, a], false).unwrap();
        assert_eq!(second, vec![0.016, 0.017, 0.024]);
        assert_eq!(model.scored.load(Ordering::SeqCst), 3);
        assert_eq!(
            memo.inner.lock().unwrap().ids,
            4 + 3 + 3,
            "each sequence counted once"
        );
    }

    #[test]
    fn memo_empties_when_full_and_refuses_missing_scores() {
        let model = counting(false);
        let memo = Memo::default();
        let big = vec![1u32; MEMO_MAX_IDS / 2 + 1];
        memo.probabilities(&model, vec![big.clone()], false)
            .unwrap();
        memo.probabilities(&model, vec![vec![7u32; MEMO_MAX_IDS / 2 + 1]], false)
            .unwrap();
        let inner = memo.inner.lock().unwrap();
        assert_eq!(inner.scores.len(), 1, "emptied before the second went in");
        assert!(inner.ids <= MEMO_MAX_IDS);
        drop(inner);
        // A classifier that returns too few scores is an error, never a made-up score.
        let short = counting(true);
        assert!(memo
            .probabilities(&short, vec![vec![3], vec![4]], false)
            .is_err());
    }
}
