//! The length cap: what a sequence keeps when it is longer than the model reads.
//!
//! Policy, in order of priority:
//! 1. every phase marker;
//! 2. the head of each phase ([`HEAD`] tokens): install-time and import-time code comes first
//!    and is the most telling, and the start of each phase shows how the package begins;
//! 3. windows of ±[`WINDOW`] tokens around the strongest features (by the weight in
//!    [`crate::FEATURES`]), strongest first and, at equal weight, earliest first,
//!    so a payload deep in a large package keeps its context (`R5 E2 D2`, not `D2` alone);
//! 4. nothing else. Kept tokens stay in their order; each run of dropped tokens becomes one
//!    [`Token::Gap`], counted in the cap.

use super::Token;

/// The model reads 512 tokens, two of which are its own `[CLS]` and `[SEP]`.
pub const DEFAULT_MAX_TOKENS: usize = 510;
/// Tokens kept at the start of each phase.
pub const HEAD: usize = 32;
/// Tokens kept on each side of a strong feature.
pub const WINDOW: usize = 3;

/// Applies the policy above to `tokens`, returning at most `max` tokens (for `max` of at
/// least 16; a smaller cap simply truncates).
pub fn cap(tokens: &[Token], max: usize) -> Vec<Token> {
    if tokens.len() <= max {
        return tokens.to_vec();
    }
    if max < 16 {
        return tokens[..max].to_vec();
    }
    let n = tokens.len();
    let mut keep = vec![false; n];
    let mut kept = 0usize;
    // Each head or window adds at most one run of dropped tokens after it; one more may lead.
    let mut gaps_bound = 1usize;

    let mark = |keep: &mut Vec<bool>, kept: &mut usize, lo: usize, hi: usize| {
        for k in keep.iter_mut().take(hi).skip(lo) {
            if !*k {
                *k = true;
                *kept += 1;
            }
        }
    };

    let phase_starts: Vec<usize> = (0..n)
        .filter(|&i| matches!(tokens[i], Token::Phase(_)))
        .collect();
    for &start in &phase_starts {
        mark(&mut keep, &mut kept, start, start + 1);
    }
    for &start in &phase_starts {
        let end = (start + 1 + HEAD).min(n);
        let fresh = (start + 1..end).filter(|&i| !keep[i]).count();
        if kept + fresh + gaps_bound + 1 > max {
            break;
        }
        mark(&mut keep, &mut kept, start + 1, end);
        gaps_bound += 1;
    }

    let mut strong: Vec<usize> = (0..n)
        .filter(|&i| weight(tokens[i]) > 0 && !keep[i])
        .collect();
    strong.sort_by_key(|&i| (std::cmp::Reverse(weight(tokens[i])), i));
    for i in strong {
        if keep[i] {
            continue;
        }
        let (lo, hi) = (i.saturating_sub(WINDOW), (i + WINDOW + 1).min(n));
        let fresh = (lo..hi).filter(|&j| !keep[j]).count();
        if kept + fresh + gaps_bound + 1 > max {
            // A narrower window may still fit: keep the token alone.
            if kept + 1 + gaps_bound + 1 > max {
                break;
            }
            mark(&mut keep, &mut kept, i, i + 1);
        } else {
            mark(&mut keep, &mut kept, lo, hi);
        }
        gaps_bound += 1;
    }

    let mut out = Vec::with_capacity(max);
    let mut dropping = false;
    for (token, kept) in tokens.iter().zip(&keep) {
        if *kept {
            out.push(*token);
            dropping = false;
        } else if !dropping {
            out.push(Token::Gap);
            dropping = true;
        }
    }
    out.truncate(max);
    out
}

fn weight(token: Token) -> u8 {
    match token {
        Token::Feature(f) | Token::Qualified(f, _) => f.weight(),
        _ => 0,
    }
}
