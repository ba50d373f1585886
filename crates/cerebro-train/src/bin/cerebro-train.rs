//! `cerebro-train`: trains the detector model from `cerebro-dataset sequences` output. The
//! procedure is `cerebro_train::train`; this file is the command line and the printing.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};

#[path = "../term.rs"]
mod term;

use cerebro_model::quantized::GgufWeights;
use cerebro_model::{tokenizer, EMBEDDED_MODEL};
use cerebro_train::train::baseline::{self, BaselineOptions};
use cerebro_train::train::ensemble::{self, EnsembleOptions};
use cerebro_train::train::eval::{self, EvalOptions};
use cerebro_train::train::metrics::FpBudget;
use cerebro_train::train::{self, TrainOptions};
use term::{print_error, status};

const AFTER_HELP: &str = "\
Examples:
  cerebro-train                                  # the shipped model -> models/cerebro.gguf
  cerebro-train --no-pretrain --model target/ablation/no-pretrain.gguf --out-dir target/ablation/no-pretrain
  cerebro-train --bag --model target/ablation/bag.gguf --out-dir target/ablation/bag
  cerebro-train --no-npm-malware --model target/eval/cross/cerebro.gguf --out-dir target/eval/cross
  cerebro-train --write-tokenizer models/tokenizer.json
  cerebro-train eval                             # the embedded model on the test part
  cerebro-train eval --model target/eval/cross/cerebro.gguf --all-npm-malware --json
  cerebro-train baseline --bigrams               # logistic regression on feature counts
  cerebro-train ensemble --member target/r7a/cerebro.gguf --member target/r7b/cerebro.gguf \
      --data target/dataset/sequences.jsonl --model models/cerebro.gguf

Writes the quantized model (--model), and in --out-dir the f32 weights (safetensors), an f32
model file and metrics.json (split sizes, threshold, validation and test metrics). The split
and the threshold are described in docs/MODEL.md, the evaluation in docs/EVALUATION.md.

Exit codes: 0 done, 1 training failed, 2 wrong usage";

/// Trains Cerebro's behaviour-sequence BERT on the CPU: masked-token pre-training on the
/// training sequences, then fine-tuning with a classification head.
#[derive(Debug, Parser)]
#[command(
    name = "cerebro-train",
    version,
    after_help = AFTER_HELP,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Sequences file written by `cerebro-dataset sequences`.
    #[arg(long, default_value = "target/dataset/sequences.jsonl")]
    data: PathBuf,
    /// Where the quantized model goes.
    #[arg(long, default_value = "models/cerebro.gguf")]
    model: PathBuf,
    /// Folder for the f32 weights, the f32 model file and metrics.json.
    #[arg(long, default_value = "target/train")]
    out_dir: PathBuf,
    #[arg(long, default_value_t = 256)]
    hidden: usize,
    #[arg(long, default_value_t = 4)]
    layers: usize,
    #[arg(long, default_value_t = 4)]
    heads: usize,
    #[arg(long, default_value_t = 1024)]
    intermediate: usize,
    #[arg(long, default_value_t = 0.1)]
    dropout: f32,
    /// Masked-token pre-training epochs.
    #[arg(long, default_value_t = 3)]
    pretrain_epochs: usize,
    #[arg(long, default_value_t = 5e-4)]
    pretrain_lr: f64,
    /// Skip pre-training (ablation: fine-tune from random weights).
    #[arg(long)]
    no_pretrain: bool,
    /// Fine-tuning epochs (at most; early stopping on validation).
    #[arg(long, default_value_t = 6)]
    epochs: usize,
    #[arg(long, default_value_t = 2e-4)]
    lr: f64,
    #[arg(long, default_value_t = 0.01)]
    weight_decay: f64,
    /// Epochs without a better validation score before stopping.
    #[arg(long, default_value_t = 3)]
    patience: usize,
    /// Most padded tokens in a batch.
    #[arg(long, default_value_t = 8192)]
    batch_tokens: usize,
    /// Most sequences in a batch.
    #[arg(long, default_value_t = 64)]
    max_batch: usize,
    /// Read sequences as bags: tokens sorted, so order carries nothing (ablation).
    #[arg(long)]
    bag: bool,
    #[command(flatten)]
    budget: BudgetArgs,
    /// Exponent of the ecosystem×label balancing weights (0 none, 1 full).
    #[arg(long, default_value_t = 0.5)]
    balance: f64,
    /// Keep duplicate training sequences (same tokens, label and ecosystem).
    #[arg(long)]
    keep_duplicates: bool,
    /// Weight of a distinct training sequence: (number of copies)^POWER.
    #[arg(long, default_value_t = 0.5, value_name = "POWER")]
    dup_power: f64,
    /// Choose the epoch by validation F1 at the threshold (default: by validation loss).
    #[arg(long)]
    select_by_f1: bool,
    /// Decay of the moving average of the weights kept while fine-tuning (0: off).
    #[arg(long, default_value_t = 0.0)]
    ema: f64,
    #[arg(long, default_value_t = 17)]
    seed: u64,
    /// Use only this many packages (quick trials).
    #[arg(long, default_value_t = 0)]
    limit: usize,
    /// Leave all npm malware out of training and validation (the cross-ecosystem test).
    #[arg(long)]
    no_npm_malware: bool,
    /// Train on units (one file's behaviour each) and judge validation and test packages by
    /// their most malicious unit, instead of whole packages (the unit networks of issue 12).
    #[arg(long)]
    units: bool,
    /// With --units: of a malicious package with several units, train only on those this
    /// model file scores highest (`embedded`: the model compiled in); default: all of them.
    #[arg(long, value_name = "MODEL", requires = "units")]
    unit_selector: Option<PathBuf>,
    /// With --units: also teach every install-time unit as an import-time one (a payload
    /// moved from `setup.py` to `__init__.py`, as in a compromised wheel, reads alike).
    #[arg(long, requires = "units")]
    phase_augment: bool,
    /// Write the tokenizer to this file and exit.
    #[arg(long, value_name = "PATH")]
    write_tokenizer: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Evaluate a model file on the test part: per-ecosystem precision, recall, F1 and
    /// false-positive rate at its threshold, false positives by name, missed npm malware,
    /// and the scores of the smallest benign packages.
    Eval(EvalArgs),
    /// Fit and evaluate the baseline: logistic regression on feature counts, same split,
    /// same example weights, same threshold rule.
    Baseline(BaselineArgs),
    /// Join trained model files into one ensemble file (the mean of their probabilities),
    /// its thresholds chosen on the validation part by the training rule.
    Ensemble(EnsembleArgs),
    /// Choose a model file's unit thresholds on the validation part and write the file with
    /// them: a package is then also flagged when one of its units (one file's behaviour)
    /// reaches its ecosystem's unit threshold. The package thresholds stay as they are.
    Units(UnitsArgs),
    /// Widen a model file trained on the twenty features to the rich vocabulary: each rich
    /// token (`D3.ip`) reads as its base feature (`D3`), so the network scores rich sequences
    /// exactly as it scored plain ones and can join an ensemble with rich networks.
    Widen(WidenArgs),
}

#[derive(Debug, Args)]
struct WidenArgs {
    /// The model file to widen (one network or an ensemble).
    #[arg(long, value_name = "GGUF")]
    model: PathBuf,
    /// Where the widened file goes.
    #[arg(long, value_name = "GGUF")]
    out: PathBuf,
}

#[derive(Debug, Args)]
struct UnitsArgs {
    /// The model file to start from [default: the one compiled into the binary].
    #[arg(long, value_name = "GGUF")]
    model: Option<PathBuf>,
    /// Where the model file with unit thresholds goes.
    #[arg(long, value_name = "GGUF")]
    out: PathBuf,
    /// Sequences file (with units) whose validation part chooses the thresholds.
    #[arg(long, default_value = "target/dataset/sequences.jsonl")]
    data: PathBuf,
    #[command(flatten)]
    budget: BudgetArgs,
}

#[derive(Debug, Args)]
struct EnsembleArgs {
    /// A member: a model file written by `cerebro-train` (two or more make an ensemble; one
    /// re-chooses that model's thresholds under this budget).
    #[arg(long = "member", value_name = "GGUF", required = true)]
    members: Vec<PathBuf>,
    /// A unit network: a model file `cerebro-train --units` wrote. Unit networks score each
    /// unit of a package (one file's behaviour), the members score whole packages, and both
    /// thresholds are chosen together on the validation part.
    #[arg(long = "unit-member", value_name = "GGUF")]
    unit_members: Vec<PathBuf>,
    /// Where the ensemble file goes.
    #[arg(long, value_name = "GGUF")]
    model: PathBuf,
    /// Sequences file whose validation part chooses the thresholds.
    #[arg(long, default_value = "target/dataset/sequences.jsonl")]
    data: PathBuf,
    #[command(flatten)]
    budget: BudgetArgs,
}

/// The false-positive budget of the threshold rule, shared by training, the baseline and
/// ensembles.
#[derive(Debug, Args)]
struct BudgetArgs {
    /// False-positive budget on benign validation packages when choosing the thresholds
    /// (0.005 is 0.5%).
    #[arg(long, default_value_t = 0.005)]
    max_fpr: f64,
    /// Confidence with which the budget must hold: the rate's Clopper-Pearson upper bound,
    /// not the rate measured on validation, must be within it (0: the measured rate).
    #[arg(long, default_value_t = 0.9)]
    fp_confidence: f64,
}

impl BudgetArgs {
    /// The budget, checked.
    fn budget(&self) -> anyhow::Result<FpBudget> {
        let (rate, confidence) = (self.max_fpr, self.fp_confidence);
        if !(0.0..1.0).contains(&rate) {
            anyhow::bail!("--max-fpr {rate} is not a fraction below 1 (0.005 is 0.5%)");
        }
        if !(0.0..1.0).contains(&confidence) {
            anyhow::bail!("--fp-confidence {confidence} is not in [0, 1)");
        }
        Ok(FpBudget { rate, confidence })
    }
}

#[derive(Debug, Args)]
struct Common {
    /// Sequences file written by `cerebro-dataset sequences`.
    #[arg(long, default_value = "target/dataset/sequences.jsonl")]
    data: PathBuf,
    /// Also score every malicious npm package of the training and validation parts (for a
    /// model trained with --no-npm-malware, all of them are unseen).
    #[arg(long)]
    all_npm_malware: bool,
    /// How many of the smallest benign test packages to list.
    #[arg(long, default_value_t = 20)]
    smallest: usize,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
    /// Write every scored package (validation and evaluated parts) to this file, one JSON
    /// object a line.
    #[arg(long, value_name = "PATH")]
    predictions: Option<PathBuf>,
}

/// Writes to stdout; a closed pipe (`| head`) is not an error.
fn out(text: &str) -> anyhow::Result<()> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

fn write_predictions(path: &Option<PathBuf>, r: &eval::EvalReport) -> anyhow::Result<()> {
    if let Some(p) = path {
        std::fs::write(p, eval::predictions_jsonl(r))
            .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
    }
    Ok(())
}

#[derive(Debug, Args)]
struct EvalArgs {
    /// Model file (GGUF, quantized or f32); default: the one compiled into the binary.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Judge both ecosystems at this threshold instead of the model file's own.
    #[arg(long)]
    threshold: Option<f32>,
    /// Also score each package's units (one file's behaviour each, when the sequences file
    /// has them) and write the highest to `--predictions` as `unit_max` / `unit_file`.
    #[arg(long)]
    units: bool,
    /// Score every package of the file whatever its part (for files that are all test
    /// data, such as `cerebro-dataset needles`).
    #[arg(long)]
    every_part: bool,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Args)]
struct BaselineArgs {
    /// Add counts of consecutive token pairs (a linear model's view of order).
    #[arg(long)]
    bigrams: bool,
    /// Leave all npm malware out of training and validation.
    #[arg(long)]
    no_npm_malware: bool,
    #[command(flatten)]
    budget: BudgetArgs,
    /// Exponent of the ecosystem×label balancing weights (as for the BERT).
    #[arg(long, default_value_t = 0.5)]
    balance: f64,
    #[command(flatten)]
    common: Common,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            print_error(&e);
            ExitCode::from(1)
        }
    }
}

fn run_eval(a: EvalArgs) -> anyhow::Result<()> {
    let bytes = match &a.model {
        Some(p) => std::fs::read(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?,
        None => EMBEDDED_MODEL.to_vec(),
    };
    let started = Instant::now();
    let opts = EvalOptions {
        data: a.common.data,
        threshold: a.threshold,
        all_npm_malware: a.common.all_npm_malware,
        smallest: a.common.smallest,
        units: a.units,
        every_part: a.every_part,
        ..EvalOptions::default()
    };
    let report = eval::evaluate_model(&bytes, &opts).map_err(anyhow::Error::msg)?;
    write_predictions(&a.common.predictions, &report)?;
    if a.common.json {
        out(&format!("{}\n", serde_json::to_string(&report)?))?;
    } else {
        out(&eval::render(&report))?;
        status(
            "Evaluated",
            &format!(
                "{} in {:.1}s",
                a.model
                    .as_ref()
                    .map_or("the embedded model".to_owned(), |p| p.display().to_string()),
                started.elapsed().as_secs_f64()
            ),
        );
    }
    Ok(())
}

fn run_units(a: UnitsArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let bytes = match &a.model {
        Some(p) => std::fs::read(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?,
        None => EMBEDDED_MODEL.to_vec(),
    };
    let budget = a.budget.budget()?;
    let model = cerebro_model::Model::from_gguf(&bytes)?;
    let info = model.info().clone();
    let ds = cerebro_train::train::eval::Dataset::load(&a.data, info.bag, &Default::default())
        .map_err(anyhow::Error::msg)?;
    let choice =
        cerebro_train::train::units::choose_unit_thresholds(&model, &ds, info.thresholds, budget)
            .map_err(anyhow::Error::msg)?;
    let file = cerebro_model::quantized::with_unit_thresholds(&bytes, choice.thresholds)?;
    std::fs::write(&a.out, &file).map_err(|e| anyhow::anyhow!("{}: {e}", a.out.display()))?;
    for (name, b, u, t, p) in [
        (
            "PyPI",
            choice.before.pypi,
            choice.after.pypi,
            choice.thresholds.pypi,
            info.thresholds.pypi,
        ),
        (
            "npm",
            choice.before.npm,
            choice.after.npm,
            choice.thresholds.npm,
            info.thresholds.npm,
        ),
    ] {
        status(
            "Validation",
            &format!(
                "{name}: package {p:.4} F1 {:.4} (tp {} fp {}); with units at {t:.4} F1 {:.4} (tp {} fp {})",
                b.f1(), b.tp, b.fp, u.f1(), u.tp, u.fp
            ),
        );
    }
    status(
        "Wrote",
        &format!(
            "{} in {:.1}s",
            a.out.display(),
            started.elapsed().as_secs_f64()
        ),
    );
    Ok(())
}

fn run_widen(a: WidenArgs) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(&a.model).map_err(|e| anyhow::anyhow!("{}: {e}", a.model.display()))?;
    let out =
        cerebro_model::quantized::widened(&bytes, tokenizer::vocab_size(), tokenizer::base_id)
            .map_err(|e| anyhow::anyhow!("{}: {e}", a.model.display()))?;
    std::fs::write(&a.out, out).map_err(|e| anyhow::anyhow!("{}: {e}", a.out.display()))?;
    status("Wrote", &a.out.display().to_string());
    Ok(())
}

fn run_ensemble(a: EnsembleArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let budget = a.budget.budget()?;
    let read = |paths: &[PathBuf]| {
        paths
            .iter()
            .map(|p| {
                let bytes =
                    std::fs::read(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
                // Name the file whose content is wrong, before the members are joined.
                GgufWeights::new(&bytes)
                    .and_then(|w| w.info())
                    .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
                Ok(bytes)
            })
            .collect::<anyhow::Result<Vec<_>>>()
    };
    let files = read(&a.members)?;
    let unit_files = read(&a.unit_members)?;
    let refs: Vec<&[u8]> = files.iter().map(Vec::as_slice).collect();
    let unit_refs: Vec<&[u8]> = unit_files.iter().map(Vec::as_slice).collect();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = EnsembleOptions {
        data: a.data,
        split: Default::default(),
        budget,
        description: format!("cerebro-train {}", args.join(" ")),
    };
    let e = ensemble::build_ensemble_with_units(&refs, &unit_refs, &opts)
        .map_err(anyhow::Error::msg)?;
    std::fs::write(&a.model, &e.file)
        .map_err(|err| anyhow::anyhow!("{}: {err}", a.model.display()))?;
    status(
        "Joined",
        &format!(
            "{} models in {:.1}s: thresholds PyPI {:.4} npm {:.4}{} (on {} validation packages), {} ({} bytes)",
            refs.len() + unit_refs.len(),
            started.elapsed().as_secs_f64(),
            e.thresholds.pypi,
            e.thresholds.npm,
            e.unit_thresholds.map_or(String::new(), |u| format!(
                ", units PyPI {:.4} npm {:.4}",
                u.pypi, u.npm
            )),
            e.validation,
            a.model.display(),
            e.file.len()
        ),
    );
    if let Some(v) = e.unit_validation {
        for (name, c) in [("PyPI", v.pypi), ("npm", v.npm)] {
            status(
                "Validation",
                &format!(
                    "{name}: F1 {:.4} (tp {} fp {} fn {} tn {})",
                    c.f1(),
                    c.tp,
                    c.fp,
                    c.fn_,
                    c.tn
                ),
            );
        }
    }
    Ok(())
}

fn run_baseline(a: BaselineArgs) -> anyhow::Result<()> {
    let opts = BaselineOptions {
        data: a.common.data,
        bigrams: a.bigrams,
        no_npm_malware: a.no_npm_malware,
        all_npm_malware: a.common.all_npm_malware,
        smallest: a.common.smallest,
        budget: a.budget.budget()?,
        balance: a.balance,
        ..BaselineOptions::default()
    };
    let log = |line: &str| eprintln!("{line}");
    let report = baseline::run(&opts, &log).map_err(anyhow::Error::msg)?;
    write_predictions(&a.common.predictions, &report.eval)?;
    if a.common.json {
        out(&format!("{}\n", serde_json::to_string(&report)?))?;
    } else {
        let mut text = eval::render(&report.eval);
        text.push_str("largest weights:\n");
        for (name, w) in &report.top_weights {
            text.push_str(&format!("  {w:>+8.3}  {name}\n"));
        }
        out(&text)?;
        status(
            "Fitted",
            &format!("{} inputs in {:.1}s", report.inputs, report.seconds),
        );
    }
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(Command::Eval(a)) => return run_eval(a),
        Some(Command::Baseline(a)) => return run_baseline(a),
        Some(Command::Ensemble(a)) => return run_ensemble(a),
        Some(Command::Units(a)) => return run_units(a),
        Some(Command::Widen(a)) => return run_widen(a),
        None => {}
    }
    if let Some(path) = cli.write_tokenizer {
        std::fs::write(&path, tokenizer::tokenizer_json()?)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        status("Wrote", &path.display().to_string());
        return Ok(());
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = TrainOptions {
        data: cli.data,
        model_out: cli.model,
        out_dir: cli.out_dir,
        hidden: cli.hidden,
        layers: cli.layers,
        heads: cli.heads,
        intermediate: cli.intermediate,
        dropout: cli.dropout,
        seed: cli.seed,
        pretrain: !cli.no_pretrain,
        pretrain_epochs: cli.pretrain_epochs,
        pretrain_lr: cli.pretrain_lr,
        epochs: cli.epochs,
        lr: cli.lr,
        weight_decay: cli.weight_decay,
        batch_tokens: cli.batch_tokens,
        max_batch: cli.max_batch,
        patience: cli.patience,
        bag: cli.bag,
        budget: cli.budget.budget()?,
        balance: cli.balance,
        dedupe: !cli.keep_duplicates,
        dup_power: cli.dup_power,
        select_by_f1: cli.select_by_f1,
        ema: cli.ema,
        limit: cli.limit,
        no_npm_malware: cli.no_npm_malware,
        units: match (cli.units, &cli.unit_selector) {
            (false, _) => train::trainer::UnitTraining::Off,
            (true, None) => train::trainer::UnitTraining::On,
            (true, Some(_)) => train::trainer::UnitTraining::Selected,
        },
        unit_selector: match &cli.unit_selector {
            Some(p) if p.as_os_str() == "embedded" => EMBEDDED_MODEL.to_vec(),
            Some(p) => std::fs::read(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?,
            None => Vec::new(),
        },
        phase_augment: cli.phase_augment,
        description: format!("cerebro-train {}", args.join(" ")),
        ..TrainOptions::default()
    };
    let started = Instant::now();
    let log = |line: &str| {
        let secs = started.elapsed().as_secs();
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "[{:>2}:{:02}:{:02}] {line}",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        );
    };
    let report = train::train(&opts, &log)?;
    status(
        "Trained",
        &format!(
            "in {:.0}s: thresholds PyPI {:.4} npm {:.4}, {} ({} bytes)",
            started.elapsed().as_secs_f64(),
            report.thresholds.pypi,
            report.thresholds.npm,
            opts.model_out.display(),
            report.model_bytes
        ),
    );
    Ok(())
}
