//! The detector model: tokenizer, network shapes, that training learns, the model file, and
//! the shipped model's behaviour.

use candle_core::{DType, Device};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};

use cerebro_archive::PerEcosystem;
use cerebro_model::bert::{BertClassifier, Config, Dropout, MlmHead, Mode};
use cerebro_model::quantized::{quantizes, write_gguf, GgufWeights, ModelInfo};
use cerebro_model::tokenizer::{self, build_tokenizer, encode, CLS_ID, SEP_ID};
use cerebro_model::{pad_batch, Classifier, Model};
use cerebro_train::train::trainer::{frame, init_params, named_tensors, weighted_cross_entropy};
use cerebro_train::train::Rng;

fn tiny(
    hidden: usize,
    layers: usize,
    heads: usize,
    inter: usize,
) -> (VarMap, BertClassifier, Config) {
    let mut cfg = Config::new(tokenizer::vocab_size(), hidden, layers, heads, inter);
    cfg.max_position = 64;
    let map = VarMap::new();
    let vb = VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu);
    let net = BertClassifier::load(&vb, &cfg).unwrap();
    MlmHead::load(&vb, &cfg, net.bert.word_embeddings()).unwrap();
    init_params(&map, &cfg, 5).unwrap();
    (map, net, cfg)
}

#[test]
fn committed_tokenizer_is_the_one_the_code_builds() {
    let committed = include_str!("../../../models/tokenizer.json");
    assert_eq!(committed, tokenizer::tokenizer_json().unwrap());
    let t = tokenizer::tokenizer_from_bytes(committed.as_bytes()).unwrap();
    assert_eq!(t.get_vocab_size(true), tokenizer::vocab_size());
}

#[test]
fn tokenizer_round_trip() {
    let t = build_tokenizer().unwrap();
    let tokens = ["[INSTALL]", "H1", "R5", "D2", "[GAP]", "[RUN]", "A1"];
    let ids = encode(&t, &tokens).unwrap();
    assert_eq!(ids.first(), Some(&CLS_ID));
    assert_eq!(ids.last(), Some(&SEP_ID));
    assert_eq!(ids.len(), tokens.len() + 2);
    let back = t.decode(&ids, true).unwrap();
    assert_eq!(back, tokens.join(" "));
    for (i, w) in tokenizer::vocab().iter().enumerate() {
        assert_eq!(t.token_to_id(w), Some(i as u32));
    }
}

#[test]
fn forward_shapes_and_padding_mask() {
    let (_, net, cfg) = tiny(32, 2, 4, 64);
    let batch = vec![frame(&[5, 26, 13]), frame(&[6, 11, 12, 9, 10, 20, 21])];
    let (ids, mask) = pad_batch(&batch, cfg.max_position, &Device::Cpu).unwrap();
    assert_eq!(ids.dims(), &[2, 9]);
    let hidden = net.bert.forward(&ids, &mask, Mode::Eval).unwrap();
    assert_eq!(hidden.dims(), &[2, 9, 32]);
    let logits = net.logits(&ids, &mask, Mode::Eval).unwrap();
    assert_eq!(logits.dims(), &[2, 2]);
    // Padding does not change a sequence's result.
    let (ids1, mask1) = pad_batch(&batch[..1], cfg.max_position, &Device::Cpu).unwrap();
    let alone: Vec<f32> = net.probabilities(&ids1, &mask1).unwrap().to_vec1().unwrap();
    let padded: Vec<f32> = net.probabilities(&ids, &mask).unwrap().to_vec1().unwrap();
    assert!((alone[0] - padded[0]).abs() < 1e-5, "{alone:?} {padded:?}");
    // The training path (differentiable ops, no dropout) computes the same function.
    let d = Dropout::new(0.0, 1);
    let train: Vec<f32> =
        candle_nn::ops::softmax(&net.logits(&ids, &mask, Mode::Train(&d)).unwrap(), 1)
            .unwrap()
            .narrow(1, 1, 1)
            .unwrap()
            .squeeze(1)
            .unwrap()
            .to_vec1()
            .unwrap();
    for (a, b) in train.iter().zip(&padded) {
        assert!((a - b).abs() < 1e-4);
    }
}

/// Sequences of random behaviour tokens; malicious iff they contain `P4`.
fn toy_data(n: usize, rng: &mut Rng) -> Vec<(Vec<u32>, bool)> {
    let p4 = tokenizer::token_id("P4");
    (0..n)
        .map(|i| {
            let len = 3 + rng.below(8);
            let mut ids: Vec<u32> = (0..len)
                .map(|_| loop {
                    let t = 5 + rng.below(tokenizer::vocab_size() - 5) as u32;
                    if t != p4 {
                        break t;
                    }
                })
                .collect();
            let malicious = i % 2 == 0;
            if malicious {
                let at = rng.below(len);
                ids[at] = p4;
            }
            (ids, malicious)
        })
        .collect()
}

#[test]
fn a_tiny_model_learns_a_separable_task() {
    let (map, net, cfg) = tiny(32, 1, 2, 64);
    let mut rng = Rng::new(42);
    let train = toy_data(256, &mut rng);
    let test = toy_data(128, &mut rng);
    let mut opt = AdamW::new(
        map.all_vars(),
        ParamsAdamW {
            lr: 3e-3,
            ..Default::default()
        },
    )
    .unwrap();
    let dropout = Dropout::new(0.0, 1);
    for step in 0..120 {
        let start = (step * 32) % train.len();
        let rows = &train[start..start + 32];
        let framed: Vec<Vec<u32>> = rows.iter().map(|(ids, _)| frame(ids)).collect();
        let (ids, mask) = pad_batch(&framed, cfg.max_position, &Device::Cpu).unwrap();
        let logits = net.logits(&ids, &mask, Mode::Train(&dropout)).unwrap();
        let labels: Vec<u32> = rows.iter().map(|(_, m)| *m as u32).collect();
        let loss = weighted_cross_entropy(&logits, &labels, &[1.0; 32], &Device::Cpu).unwrap();
        opt.backward_step(&loss).unwrap();
    }
    let info = ModelInfo {
        unit_thresholds: None,
        unit_networks: 0,
        config: cfg,
        thresholds: PerEcosystem::both(0.5),
        bag: false,
        description: String::new(),
    };
    let model = Model::new(net, info);
    let batch: Vec<Vec<u32>> = test.iter().map(|(ids, _)| frame(ids)).collect();
    let p = model.probabilities(&batch).unwrap();
    let correct = p
        .iter()
        .zip(&test)
        .filter(|(p, (_, m))| (**p >= 0.5) == *m)
        .count();
    let acc = correct as f64 / test.len() as f64;
    assert!(acc >= 0.95, "accuracy {acc}");
}

#[test]
fn model_file_round_trip_and_quantization_error() {
    let (map, net, cfg) = tiny(64, 2, 4, 128);
    let info = ModelInfo {
        unit_thresholds: None,
        unit_networks: 0,
        config: Config {
            dropout: 0.0,
            ..cfg
        },
        thresholds: PerEcosystem {
            pypi: 0.73,
            npm: 0.61,
        },
        bag: true,
        description: "test".into(),
    };
    let t = named_tensors(&map);
    let f32_file = write_gguf(&t, &info, false).unwrap();
    let q_file = write_gguf(&t, &info, true).unwrap();
    assert!(q_file.len() < f32_file.len());

    let w = GgufWeights::new(&q_file).unwrap();
    assert_eq!(w.info().unwrap(), info);
    for (name, dtype) in w.tensor_types() {
        assert!(!name.starts_with("mlm."), "{name} is pre-training only");
        let shape = t
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap()
            .1
            .dims()
            .to_vec();
        let q = quantizes(&name, &shape);
        assert_eq!(
            dtype == candle_core::quantized::GgmlDType::Q8_0,
            q,
            "{name}"
        );
    }
    assert!(w.tensor_types().iter().any(
        |(n, d)| n == "layers.0.ffn.up.weight" && *d == candle_core::quantized::GgmlDType::Q8_0
    ));

    let mut rng = Rng::new(9);
    let batch: Vec<Vec<u32>> = toy_data(16, &mut rng)
        .into_iter()
        .map(|(ids, _)| frame(&ids))
        .collect();
    let reference = Model::new(net, info.clone()).probabilities(&batch).unwrap();
    let from_f32 = Model::from_gguf(&f32_file)
        .unwrap()
        .probabilities(&batch)
        .unwrap();
    let from_q = Model::from_gguf(&q_file)
        .unwrap()
        .probabilities(&batch)
        .unwrap();
    for i in 0..batch.len() {
        assert!((reference[i] - from_f32[i]).abs() < 1e-5);
        assert!(
            (reference[i] - from_q[i]).abs() < 0.01,
            "{} vs {}",
            reference[i],
            from_q[i]
        );
    }
    // The encoder's states, not only the (near 0.5, untrained) probabilities, stay close.
    let (ids, mask) = pad_batch(&batch, cfg.max_position, &Device::Cpu).unwrap();
    let a = Model::from_gguf(&f32_file)
        .unwrap()
        .networks()
        .next()
        .unwrap()
        .bert
        .forward(&ids, &mask, Mode::Eval)
        .unwrap();
    let b = Model::from_gguf(&q_file)
        .unwrap()
        .networks()
        .next()
        .unwrap()
        .bert
        .forward(&ids, &mask, Mode::Eval)
        .unwrap();
    let err = (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(err < 0.05, "largest hidden-state error {err}");
    assert!(Model::from_gguf(b"not a model").is_err());
}

#[test]
fn the_embedded_model_loads_and_ranks_malice_above_routine() {
    use cerebro_features::sequence::Token;
    use cerebro_model::Detector;
    let d = Detector::embedded().unwrap();
    let info = d.info();
    for t in [info.thresholds.pypi, info.thresholds.npm] {
        assert!(t > 0.0 && t < 1.0, "threshold {t}");
    }
    assert!(!info.bag, "the shipped model reads order");
    assert!(cerebro_model::EMBEDDED_MODEL.len() <= 10 * 1024 * 1024);
    let evil = d
        .score_strs(&["[INSTALL]", "H1", "R5", "D2", "D4"])
        .unwrap();
    let plain = d.score_strs(&["[IMPORT]", "R3", "R4"]).unwrap();
    assert!((0.0..=1.0).contains(&evil) && (0.0..=1.0).contains(&plain));
    assert!(
        evil > plain,
        "malicious-looking {evil} vs benign-looking {plain}"
    );
    let t = d.thresholds();
    assert!(
        evil >= t.pypi.max(t.npm),
        "{evil} below a threshold of {t:?}"
    );
    assert!(
        plain < t.pypi.min(t.npm),
        "{plain} above a threshold of {t:?}"
    );
    // Tokens and their text score the same; an over-long sequence is cut, not refused.
    let tokens: Vec<Token> = ["[INSTALL]", "H1", "R5", "D2", "D4"]
        .iter()
        .map(|t| Token::parse(t).unwrap())
        .collect();
    assert_eq!(d.score(&tokens).unwrap(), evil);
    let long: Vec<&str> = std::iter::once("[RUN]")
        .chain(std::iter::repeat_n(["R3", "R4"], 600).flatten())
        .collect();
    assert!(d.ids(&long).unwrap().len() <= info.config.max_position);
    let batch = d.score_many(&[&["[IMPORT]", "R3", "R4"], &long]).unwrap();
    assert!((batch[0] - plain).abs() < 1e-4);
}

/// A quantized model file of a tiny untrained network (`seed` varies its weights).
fn tiny_file(hidden: usize, layers: usize, max_position: usize, seed: u64) -> Vec<u8> {
    tiny_file_of(tokenizer::vocab_size(), hidden, layers, max_position, seed)
}

fn tiny_file_of(
    vocab: usize,
    hidden: usize,
    layers: usize,
    max_position: usize,
    seed: u64,
) -> Vec<u8> {
    let mut cfg = Config::new(vocab, hidden, layers, 4, hidden * 2);
    cfg.max_position = max_position;
    cfg.dropout = 0.0;
    let map = VarMap::new();
    let vb = VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu);
    let net = BertClassifier::load(&vb, &cfg).unwrap();
    MlmHead::load(&vb, &cfg, net.bert.word_embeddings()).unwrap();
    init_params(&map, &cfg, seed).unwrap();
    let info = ModelInfo {
        unit_thresholds: None,
        unit_networks: 0,
        config: cfg,
        thresholds: PerEcosystem::both(0.5),
        bag: false,
        description: format!("member {seed}"),
    };
    write_gguf(&named_tensors(&map), &info, true).unwrap()
}

#[test]
fn a_widened_network_reads_rich_tokens_as_their_base_features() {
    use cerebro_features::sequence::Token;
    use cerebro_model::quantized::widened;
    use cerebro_model::Detector;
    // A network of the twenty-feature vocabulary (as every model before rich tokens).
    let plain = tiny_file_of(tokenizer::plain_vocab_size(), 32, 2, 64, 7);
    assert!(
        Detector::new(
            Model::from_gguf(&plain).unwrap(),
            build_tokenizer().unwrap()
        )
        .is_err(),
        "a network of another vocabulary is refused, not read with wrong ids"
    );
    let wide = widened(&plain, tokenizer::vocab_size(), tokenizer::base_id).unwrap();
    assert_eq!(
        GgufWeights::new(&wide)
            .unwrap()
            .info()
            .unwrap()
            .config
            .vocab_size,
        tokenizer::vocab_size()
    );
    let d = Detector::new(Model::from_gguf(&wide).unwrap(), build_tokenizer().unwrap())
        .unwrap()
        .without_memo();
    let rich = [
        "[IMPORT]",
        "R2.id",
        "D2.send",
        "D3.ip",
        "[RUN]",
        "R5.key",
        "P2.fetched",
    ];
    let base = ["[IMPORT]", "R2", "D2", "D3", "[RUN]", "R5", "P2"];
    let parsed: Vec<Token> = rich.iter().map(|t| Token::parse(t).unwrap()).collect();
    assert!(parsed
        .iter()
        .all(|t| t.base() != *t || t.feature().is_none()));
    let scores = d.score_many(&[&rich, &base]).unwrap();
    assert_eq!(scores[0], scores[1], "a rich token weighs as its feature");
    // And as the plain network scored the plain sequence, before widening.
    let ids: Vec<u32> = base.iter().map(|t| tokenizer::token_id(t)).collect();
    let before = Model::from_gguf(&plain)
        .unwrap()
        .probabilities(&[frame(&ids)])
        .unwrap();
    assert!(
        (before[0] - scores[0]).abs() < 1e-6,
        "{before:?} {scores:?}"
    );
    assert!(widened(&wide, tokenizer::plain_vocab_size(), tokenizer::base_id).is_err());
}

#[test]
fn an_ensemble_file_scores_the_mean_of_its_members() {
    use cerebro_model::quantized::{read_gguf, write_ensemble};
    let a = tiny_file(32, 2, 64, 1);
    let b = tiny_file(64, 1, 64, 2);
    let thresholds = PerEcosystem {
        pypi: 0.7,
        npm: 0.6,
    };
    let file = write_ensemble(&[&a, &b], thresholds, "two").unwrap();
    let w = GgufWeights::new(&file).unwrap();
    assert_eq!(w.members().unwrap(), 2);
    let info = w.info().unwrap();
    assert_eq!(info.thresholds, thresholds);
    assert_eq!(info.description, "two");
    assert_eq!(info.config.hidden_size, 32, "the first member's sizes");
    let second = w.member_config(1).unwrap();
    assert_eq!((second.hidden_size, second.num_layers), (64, 1));
    assert!(w.member_config(2).is_err());

    let mut rng = Rng::new(3);
    let batch: Vec<Vec<u32>> = toy_data(12, &mut rng)
        .into_iter()
        .map(|(ids, _)| frame(&ids))
        .collect();
    let pa = Model::from_gguf(&a).unwrap().probabilities(&batch).unwrap();
    let pb = Model::from_gguf(&b).unwrap().probabilities(&batch).unwrap();
    let ens = Model::from_gguf(&file).unwrap();
    assert_eq!(ens.networks().count(), 2);
    let pe = ens.probabilities(&batch).unwrap();
    let candle = ens.clone().without_engine().probabilities(&batch).unwrap();
    for i in 0..batch.len() {
        // The members' tensors are copied as stored: the same numbers, averaged.
        assert!((pe[i] - (pa[i] + pb[i]) / 2.0).abs() < 1e-6, "{i}");
        assert!((pe[i] - candle[i]).abs() < 1e-5, "{i}");
        assert_ne!(
            pa[i], pb[i],
            "the members must differ for the test to mean anything"
        );
    }

    // What the reader and the writer refuse.
    assert!(read_gguf(&file).is_err(), "an ensemble is not one network");
    // An ensemble given as a member gives its networks: three networks, the mean of all.
    let c = tiny_file(32, 1, 64, 5);
    let nested = write_ensemble(&[&file, &c], thresholds, "nested").unwrap();
    let w = GgufWeights::new(&nested).unwrap();
    assert_eq!(w.members().unwrap(), 3);
    assert_eq!(w.member_config(1).unwrap().hidden_size, 64);
    let pc = Model::from_gguf(&c).unwrap().probabilities(&batch).unwrap();
    let pn = Model::from_gguf(&nested)
        .unwrap()
        .probabilities(&batch)
        .unwrap();
    for i in 0..batch.len() {
        assert!((pn[i] - (pa[i] + pb[i] + pc[i]) / 3.0).abs() < 1e-6, "{i}");
    }
    assert!(write_ensemble(&[], thresholds, "none").is_err());
    let other_length = tiny_file(32, 1, 32, 4);
    let err = write_ensemble(&[&a, &other_length], thresholds, "x").unwrap_err();
    assert!(err.to_string().contains("member 1"), "{err}");
}

#[test]
fn unit_networks_score_units_and_package_networks_score_packages() {
    use cerebro_model::quantized::{write_ensemble, write_ensemble_with_units};
    let a = tiny_file(32, 2, 64, 1);
    let b = tiny_file(32, 1, 64, 2);
    let u = tiny_file(32, 1, 64, 7);
    let t = PerEcosystem::both(0.6);
    let ut = PerEcosystem {
        pypi: 0.9,
        npm: 0.8,
    };
    let file = write_ensemble_with_units(&[&a, &b], &[&u], t, Some(ut), "units").unwrap();
    let info = GgufWeights::new(&file).unwrap().info().unwrap();
    assert_eq!(info.unit_networks, 1);
    assert_eq!(info.unit_thresholds, Some(ut));
    assert_eq!(info.thresholds, t);

    let mut rng = Rng::new(5);
    let batch: Vec<Vec<u32>> = toy_data(10, &mut rng)
        .into_iter()
        .map(|(ids, _)| frame(&ids))
        .collect();
    let score = |f: &[u8]| Model::from_gguf(f).unwrap().probabilities(&batch).unwrap();
    let (pa, pb, pu) = (score(&a), score(&b), score(&u));
    let model = Model::from_gguf(&file).unwrap();
    let packages = model.probabilities(&batch).unwrap();
    let units = model.unit_probabilities(&batch).unwrap();
    for i in 0..batch.len() {
        assert!((packages[i] - (pa[i] + pb[i]) / 2.0).abs() < 1e-6, "{i}");
        assert!((units[i] - pu[i]).abs() < 1e-6, "{i}");
        assert_ne!(pu[i], (pa[i] + pb[i]) / 2.0, "the networks must differ");
    }
    // Without unit networks, units are scored by the package networks (files before them).
    let plain = Model::from_gguf(&write_ensemble(&[&a, &b], t, "plain").unwrap()).unwrap();
    assert_eq!(
        plain.unit_probabilities(&batch).unwrap(),
        plain.probabilities(&batch).unwrap()
    );
    // Refused: unit networks alone, without unit thresholds, or a member that has some.
    assert!(write_ensemble_with_units(&[], &[&u], t, Some(ut), "x").is_err());
    assert!(write_ensemble_with_units(&[&a], &[&u], t, None, "x").is_err());
    let err = write_ensemble(&[&file, &a], t, "x").unwrap_err();
    assert!(err.to_string().contains("unit networks"), "{err}");
}

#[test]
fn an_ensemble_gets_its_thresholds_from_the_validation_part() {
    use cerebro_train::train::data::Ecosystem;
    use cerebro_train::train::ensemble::{build_ensemble, EnsembleOptions};
    use cerebro_train::train::eval::{score_examples, Dataset};
    use cerebro_train::train::metrics::{choose_thresholds, FpBudget};
    use cerebro_train::train::split::{Part, SplitOptions};

    // Enough benign and malicious packages of both ecosystems for every part to get some.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("sequences.jsonl");
    let mut lines = String::new();
    let seqs = [
        r#"["[INSTALL]","H1","R5","D2","D4"]"#,
        r#"["[IMPORT]","R3","R4"]"#,
        r#"["[RUN]","P1","P2","E2"]"#,
        r#"["[IMPORT]","D1","D2","R1"]"#,
    ];
    for i in 0..400 {
        let (label, source) = if i % 3 == 0 {
            ("malicious", ["pypi-malregistry", "spiderscan"][i % 2])
        } else {
            ("benign", ["top-pypi", "top-npm"][i % 2])
        };
        let eco = ["pypi", "npm"][i % 2];
        lines.push_str(&format!(
            r#"{{"label":"{label}","ecosystem":"{eco}","source":"{source}","name":"pkg{i}x","version":"1","added":"2023-01-{:02}","sequence":{},"error":null}}"#,
            1 + i % 28,
            seqs[i % 4]
        ));
        lines.push('\n');
    }
    std::fs::write(&data, lines).unwrap();
    let generous = FpBudget {
        rate: 0.6,
        confidence: 0.0,
    };
    let opts = EnsembleOptions {
        data: data.clone(),
        split: SplitOptions::default(),
        // Not the default, so that the test fails if the options' budget is not the one used.
        budget: generous,
        description: "test".into(),
    };
    let ds = Dataset::load(&data, false, &SplitOptions::default()).unwrap();
    let valid = ds.part(Part::Valid, false);
    assert!(valid
        .iter()
        .any(|x| x.ecosystem == Ecosystem::Npm && x.malicious));
    let mal: Vec<bool> = valid.iter().map(|x| x.malicious).collect();
    let eco: Vec<Ecosystem> = valid.iter().map(|x| x.ecosystem).collect();
    // Random tiny networks: the first pair whose scores make the two budgets choose
    // differently (which pair does depends on the vocabulary's size), so that the check
    // below can tell which budget was used.
    let mut meaningful = false;
    for seed in (7..40).step_by(2) {
        let a = tiny_file(32, 1, 64, seed);
        let b = tiny_file(32, 1, 64, seed + 1);
        let e = build_ensemble(&[&a, &b], &opts).unwrap();
        let model = Model::from_gguf(&e.file).unwrap();
        assert_eq!(model.info().thresholds, e.thresholds);
        assert_eq!(valid.len(), e.validation);
        // The same thresholds as the rule gives on the validation part scored by the ensemble.
        let scores = score_examples(&model, &valid).unwrap();
        assert_eq!(
            choose_thresholds(&scores, &mal, &eco, generous),
            e.thresholds
        );
        if choose_thresholds(&scores, &mal, &eco, FpBudget::DEFAULT) != e.thresholds {
            meaningful = true;
            break;
        }
    }
    assert!(
        meaningful,
        "no pair of tiny networks made the two budgets choose differently"
    );
    // No validation part, no thresholds.
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let err = build_ensemble(
        &[&tiny_file(32, 1, 64, 7)],
        &EnsembleOptions {
            data: empty,
            ..opts
        },
    )
    .unwrap_err();
    assert!(err.contains("no validation packages"), "{err}");
}
