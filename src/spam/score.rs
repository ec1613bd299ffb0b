//! Robinson–Fisher scoring, as SpamBayes and bogofilter do it: each
//! known token's spam probability, pulled towards ½ while the evidence
//! is thin (Robinson), the most telling ones combined by Fisher's
//! chi-square method into a spam and a ham indication, and the score
//! ½(1 + S − H): near 1 spam, near 0 ham, near ½ unsure.

use super::words::Words;

/// Each kind must have been learnt this often before the filter speaks.
pub const MIN_TRAINED: u32 = 50;
/// At or above this score a message is spam. SpamBayes says 0.90; a
/// little higher here, as a ham in Junk costs the user more than a
/// spam in the inbox.
pub const SPAM_CUTOFF: f64 = 0.95;
/// Robinson's strength of the prior (SpamBayes' unknown_word_strength).
const STRENGTH: f64 = 0.45;
/// The prior for a token never seen.
const PRIOR: f64 = 0.5;
/// Tokens nearer ½ than this say nothing and are left out.
const MIN_DEVIATION: f64 = 0.1;
/// The most telling tokens used at most.
const MAX_DISCRIMINATORS: usize = 150;

/// What the filter says of a message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// Too little learnt yet: no opinion.
    Abstain,
    /// A score in [0, 1]: spam at or above [`SPAM_CUTOFF`].
    Score(f64),
}

impl Verdict {
    /// True for a score at or above the cutoff.
    pub fn is_spam(self) -> bool {
        matches!(self, Verdict::Score(s) if s >= SPAM_CUTOFF)
    }
}

/// Scores a message's tokens against a user's words.
pub fn score(words: &Words, hashes: &[u32]) -> Verdict {
    if words.spam < MIN_TRAINED || words.ham < MIN_TRAINED {
        return Verdict::Abstain;
    }
    let (nspam, nham) = (f64::from(words.spam), f64::from(words.ham));
    let mut probs: Vec<f64> = hashes
        .iter()
        .filter_map(|h| words.get(*h))
        .map(|e| {
            // Counts can outgrow the message counts after untraining.
            let b = (f64::from(e.spam) / nspam).min(1.0);
            let g = (f64::from(e.ham) / nham).min(1.0);
            let p = if b + g > 0.0 { b / (b + g) } else { PRIOR };
            let n = f64::from(e.spam) + f64::from(e.ham);
            (STRENGTH * PRIOR + n * p) / (STRENGTH + n)
        })
        .filter(|f| (f - 0.5).abs() >= MIN_DEVIATION)
        .collect();
    if probs.is_empty() {
        return Verdict::Score(0.5);
    }
    if probs.len() > MAX_DISCRIMINATORS {
        probs.sort_unstable_by(|a, b| {
            (b - 0.5).abs().total_cmp(&(a - 0.5).abs())
        });
        probs.truncate(MAX_DISCRIMINATORS);
    }
    let n = probs.len();
    // Logs of the products, not products: thousands of small factors
    // would underflow.
    let ln_of_spamprobs: f64 = probs.iter().map(|f| f.ln()).sum();
    let ln_of_hamprobs: f64 = probs.iter().map(|f| (1.0 - f).ln()).sum();
    // Fisher: how unlikely the tokens are if they were no evidence of
    // ham (S), or of spam (H).
    let s = 1.0 - chi2_q(-2.0 * ln_of_hamprobs, 2 * n);
    let h = 1.0 - chi2_q(-2.0 * ln_of_spamprobs, 2 * n);
    Verdict::Score(((1.0 + s - h) / 2.0).clamp(0.0, 1.0))
}

/// The chance that chi-square with `dof` (even) degrees of freedom is
/// at least `x2`.
fn chi2_q(x2: f64, dof: usize) -> f64 {
    let m = x2 / 2.0;
    let mut term = (-m).exp();
    let mut sum = term;
    for i in 1..dof / 2 {
        term *= m / i as f64;
        sum += term;
    }
    sum.min(1.0)
}

#[cfg(test)]
mod tests {
    use super::super::words::Lesson;
    use super::*;

    fn trained() -> Words {
        let mut w = Words::default();
        for i in 0..MIN_TRAINED {
            // Spam says 1..=20, ham 101..=120; both say 500 and a word
            // of their own each time.
            let spam: Vec<u32> = (1..=20).chain([500, 1000 + i]).collect();
            let ham: Vec<u32> = (101..=120).chain([500, 2000 + i]).collect();
            w.learn(&spam, Lesson::Spam);
            w.learn(&ham, Lesson::Ham);
        }
        w
    }

    #[test]
    fn abstains_until_both_kinds_are_learnt() {
        let mut w = Words::default();
        for _ in 0..MIN_TRAINED {
            w.learn(&[1], Lesson::Spam);
        }
        for _ in 0..MIN_TRAINED - 1 {
            w.learn(&[2], Lesson::Ham);
        }
        assert_eq!(score(&w, &[1]), Verdict::Abstain);
        w.learn(&[2], Lesson::Ham);
        assert!(score(&w, &[1]).is_spam());
    }

    #[test]
    fn spam_ham_and_unsure() {
        let w = trained();
        let spammy: Vec<u32> = (1..=15).collect();
        let hammy: Vec<u32> = (101..=115).collect();
        let Verdict::Score(s) = score(&w, &spammy) else {
            panic!()
        };
        let Verdict::Score(h) = score(&w, &hammy) else {
            panic!()
        };
        assert!(s > 0.99 && h < 0.01, "{s} {h}");
        let mixed: Vec<u32> = (1..=10).chain(101..=110).collect();
        let Verdict::Score(m) = score(&w, &mixed) else {
            panic!()
        };
        assert!((0.2..0.8).contains(&m), "evidence both ways is unsure: {m}");
        assert_eq!(
            score(&w, &[500, 9999]),
            Verdict::Score(0.5),
            "neutral and unknown say nothing"
        );
        assert!(!score(&w, &[]).is_spam());
    }

    #[test]
    fn many_tokens_do_not_underflow() {
        let w = trained();
        let many: Vec<u32> = (1..=20).cycle().take(5000).collect();
        let Verdict::Score(s) = score(&w, &many) else {
            panic!()
        };
        assert!(s.is_finite() && s > 0.99);
    }
}
