//! The detector's tokenizer: one id per behaviour token, fixed by the code.
//!
//! The vocabulary is not learnt: it is `[PAD]`, `[UNK]`, `[CLS]`, `[SEP]`, `[MASK]`, the four
//! sequence markers (`[INSTALL]`, `[IMPORT]`, `[RUN]`, `[GAP]`), then every feature id in
//! [`FEATURES`] order, then every rich token (`D3.ip`) in [`RICH`] order. A sequence is written as its tokens separated by spaces, split on
//! whitespace, looked up word by word, and framed as `[CLS] … [SEP]`. The same tokenizer is
//! saved as `models/tokenizer.json` (a test checks that the file and the code agree), so the
//! model file and any other reader of it see the same ids.

use tokenizers::models::wordlevel::WordLevel;
use tokenizers::pre_tokenizers::whitespace::WhitespaceSplit;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, Tokenizer};

use super::ModelError;
use cerebro_features::rich::RICH;
use cerebro_features::FEATURES;

pub const PAD: &str = "[PAD]";
pub const UNK: &str = "[UNK]";
pub const CLS: &str = "[CLS]";
pub const SEP: &str = "[SEP]";
pub const MASK: &str = "[MASK]";

pub const PAD_ID: u32 = 0;
pub const UNK_ID: u32 = 1;
pub const CLS_ID: u32 = 2;
pub const SEP_ID: u32 = 3;
pub const MASK_ID: u32 = 4;
/// Ids below this are the tokenizer's own, never part of a behaviour sequence.
pub const FIRST_BEHAVIOUR_ID: u32 = 5;

/// Special tokens, in id order from 0.
pub const SPECIAL: [&str; 5] = [PAD, UNK, CLS, SEP, MASK];
/// Sequence markers (see `cerebro_features::sequence::Token`), in id order after [`SPECIAL`].
pub const MARKERS: [&str; 4] = ["[INSTALL]", "[IMPORT]", "[RUN]", "[GAP]"];

/// The vocabulary, in id order.
pub fn vocab() -> Vec<&'static str> {
    SPECIAL
        .iter()
        .chain(MARKERS.iter())
        .copied()
        .chain(FEATURES.iter().map(|f| f.id))
        .chain(RICH.iter().map(|r| r.id))
        .collect()
}

/// Number of ids.
pub fn vocab_size() -> usize {
    SPECIAL.len() + MARKERS.len() + FEATURES.len() + RICH.len()
}

/// Number of ids of the twenty-feature vocabulary, before rich tokens: networks trained on
/// it read rich sequences once widened ([`base_id`]).
pub fn plain_vocab_size() -> usize {
    SPECIAL.len() + MARKERS.len() + FEATURES.len()
}

/// The id of the plain token a rich token refines (`D3.ip` → `D3`); every other id is its
/// own. A network trained on the twenty features, with each rich token's embedding set to
/// its base's, reads a rich sequence exactly as the plain one.
pub fn base_id(id: u32) -> u32 {
    let plain = plain_vocab_size();
    match (id as usize).checked_sub(plain).and_then(|i| RICH.get(i)) {
        Some(r) => token_id(r.feature.id()),
        None => id,
    }
}

/// The id of one behaviour token's text, without going through the tokenizer (same table).
pub fn token_id(token: &str) -> u32 {
    let fixed = SPECIAL.len() + MARKERS.len();
    SPECIAL
        .iter()
        .chain(MARKERS.iter())
        .position(|t| *t == token)
        .or_else(|| {
            FEATURES
                .iter()
                .position(|f| f.id == token)
                .map(|i| fixed + i)
        })
        .or_else(|| {
            RICH.iter()
                .position(|r| r.id == token)
                .map(|i| fixed + FEATURES.len() + i)
        })
        .map_or(UNK_ID, |i| i as u32)
}

/// Builds the tokenizer from the code.
pub fn build_tokenizer() -> Result<Tokenizer, ModelError> {
    let words = vocab();
    let model = WordLevel::builder()
        .vocab(
            words
                .iter()
                .enumerate()
                .map(|(i, w)| (w.to_string(), i as u32))
                .collect(),
        )
        .unk_token(UNK.to_owned())
        .build()
        .map_err(ModelError::tokenizer)?;
    let post = TemplateProcessing::builder()
        .try_single(format!("{CLS} $0 {SEP}"))
        .map_err(ModelError::tokenizer)?
        .try_pair(format!("{CLS} $A {SEP} $B:1 {SEP}:1"))
        .map_err(ModelError::tokenizer)?
        .special_tokens(vec![(CLS, CLS_ID), (SEP, SEP_ID)])
        .build()
        .map_err(ModelError::tokenizer)?;
    let mut tokenizer = Tokenizer::new(model);
    tokenizer.with_pre_tokenizer(Some(WhitespaceSplit));
    tokenizer.with_post_processor(Some(post));
    tokenizer
        .add_special_tokens(SPECIAL.map(|s| AddedToken::from(s, true)))
        .map_err(ModelError::tokenizer)?;
    Ok(tokenizer)
}

/// The tokenizer as the JSON written to `models/tokenizer.json`.
pub fn tokenizer_json() -> Result<String, ModelError> {
    let mut json = build_tokenizer()?
        .to_string(true)
        .map_err(ModelError::tokenizer)?;
    json.push('\n');
    Ok(json)
}

/// Reads a tokenizer written by [`tokenizer_json`], checking that its vocabulary is this
/// code's (a model trained on other ids would read garbage).
pub fn tokenizer_from_bytes(bytes: &[u8]) -> Result<Tokenizer, ModelError> {
    let tokenizer = Tokenizer::from_bytes(bytes).map_err(ModelError::tokenizer)?;
    for (i, word) in vocab().iter().enumerate() {
        if tokenizer.token_to_id(word) != Some(i as u32) {
            return Err(ModelError::Tokenizer(format!(
                "the tokenizer's vocabulary does not match this version of Cerebro \
                 ({word:?} is not id {i})"
            )));
        }
    }
    Ok(tokenizer)
}

/// Token ids of a sequence given as token texts, framed as `[CLS] … [SEP]`.
pub fn encode(tokenizer: &Tokenizer, tokens: &[&str]) -> Result<Vec<u32>, ModelError> {
    if tokens.is_empty() {
        return Ok(vec![CLS_ID, SEP_ID]);
    }
    let text = tokens.join(" ");
    let encoding = tokenizer
        .encode(text.as_str(), true)
        .map_err(ModelError::tokenizer)?;
    Ok(encoding.get_ids().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabulary_is_fixed() {
        let v = vocab();
        assert_eq!(v.len(), vocab_size());
        assert_eq!(
            &v[..9],
            &[
                PAD,
                UNK,
                CLS,
                SEP,
                MASK,
                "[INSTALL]",
                "[IMPORT]",
                "[RUN]",
                "[GAP]"
            ]
        );
        assert_eq!(v[9], "R1");
        assert_eq!(v[plain_vocab_size() - 1], FEATURES.last().unwrap().id);
        assert_eq!(*v.last().unwrap(), RICH.last().unwrap().id);
        assert_eq!(token_id("[MASK]"), MASK_ID);
        assert_eq!(token_id("P4"), 9 + cerebro_features::Feature::P4 as u32);
        // Rich tokens come after the features, and widen to them.
        assert_eq!(token_id(RICH[0].id) as usize, plain_vocab_size());
        for r in RICH {
            assert_eq!(
                base_id(token_id(r.id)),
                token_id(r.feature.id()),
                "{}",
                r.id
            );
        }
        assert_eq!(base_id(token_id("P4")), token_id("P4"));
        assert_eq!(token_id("nonsense"), UNK_ID);
    }

    #[test]
    fn encodes_with_cls_and_sep() {
        let t = build_tokenizer().unwrap();
        let ids = encode(&t, &["[INSTALL]", "H1", "R5", "bogus"]).unwrap();
        assert_eq!(
            ids,
            vec![CLS_ID, 5, token_id("H1"), token_id("R5"), UNK_ID, SEP_ID]
        );
        assert_eq!(encode(&t, &[]).unwrap(), vec![CLS_ID, SEP_ID]);
    }
}
