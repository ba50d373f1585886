//! Ordering, walking and capping, on hand-built facts so that each rule is tested alone
//! (the integration tests run the same rules through the real extractors).

use super::*;
use crate::{CallRef, FileFacts, Function, Hook, Language, ModuleRef};

fn ev(feature: Feature, file: &str, line: u32) -> Step {
    Step::Event(Event::new(feature, file, line, "", ""))
}

fn call(module: Option<(&str, u32)>, function: &str) -> Step {
    Step::Call(CallRef {
        module: module.map(|(spec, level)| ModuleRef {
            spec: spec.to_owned(),
            level,
        }),
        function: function.to_owned(),
        line: 1,
    })
}

fn import(spec: &str, level: u32) -> Step {
    Step::Import(ModuleRef {
        spec: spec.to_owned(),
        level,
    })
}

fn file(path: &str, top_level: Vec<Step>, functions: Vec<(&str, Vec<Step>)>) -> FileFacts {
    FileFacts {
        path: path.to_owned(),
        language: Language::of(path).unwrap(),
        top_level,
        functions: functions
            .into_iter()
            .map(|(name, steps)| Function {
                name: name.to_owned(),
                line: 1,
                steps,
            })
            .collect(),
    }
}

fn facts(mut files: Vec<FileFacts>) -> PackageFacts {
    files.sort_by(|a, b| a.path.cmp(&b.path));
    PackageFacts {
        files,
        ..PackageFacts::default()
    }
}

fn tokens(seq: &Sequence) -> String {
    seq.token_strs().join(" ")
}

#[test]
fn phases_run_install_then_import_then_rest() {
    use Feature::*;
    let f = facts(vec![
        file("pkg/util.py", vec![ev(R4, "pkg/util.py", 1)], vec![]),
        file(
            "pkg/__init__.py",
            vec![ev(R1, "pkg/__init__.py", 1)],
            vec![],
        ),
        file("setup.py", vec![ev(P3, "setup.py", 1)], vec![]),
    ]);
    let seq = build(&f, DEFAULT_MAX_TOKENS);
    assert_eq!(tokens(&seq), "[INSTALL] P3 [IMPORT] R1 [RUN] R4");
    assert_eq!(seq.events[0].phase, Phase::Install);
    assert_eq!(seq.events[0].event.file, "setup.py");
}

#[test]
fn calls_descend_once_depth_first_and_uncalled_functions_come_last() {
    use Feature::*;
    let f = facts(vec![file(
        "setup.py",
        vec![
            ev(R1, "setup.py", 1),
            call(None, "steal"),
            ev(D1, "setup.py", 9),
            call(None, "steal"),
        ],
        vec![
            ("steal", vec![ev(R5, "setup.py", 3), call(None, "send")]),
            ("send", vec![ev(D2, "setup.py", 6)]),
            ("unused", vec![ev(E2, "setup.py", 7)]),
        ],
    )]);
    let seq = build(&f, DEFAULT_MAX_TOKENS);
    assert_eq!(tokens(&seq), "[INSTALL] R1 R5 D2 D1 [RUN] E2");
}

#[test]
fn recursion_in_the_package_does_not_loop() {
    use Feature::*;
    let f = facts(vec![file(
        "a.py",
        vec![call(None, "f")],
        vec![
            ("f", vec![ev(R2, "a.py", 1), call(None, "g")]),
            ("g", vec![ev(D2, "a.py", 2), call(None, "f")]),
        ],
    )]);
    assert_eq!(tokens(&build(&f, 100)), "[RUN] R2 D2");
}

#[test]
fn python_imports_resolve_relative_and_under_a_source_root() {
    use Feature::*;
    let f = facts(vec![
        file(
            "src/pkg/__init__.py",
            vec![
                import("helpers", 1),
                call(Some(("helpers", 1)), "grab"),
                call(Some(("pkg", 0)), "net.send"),
            ],
            vec![],
        ),
        file(
            "src/pkg/helpers.py",
            vec![ev(E1, "src/pkg/helpers.py", 1)],
            vec![("grab", vec![ev(R5, "src/pkg/helpers.py", 2)])],
        ),
        file(
            "src/pkg/net.py",
            vec![],
            vec![("send", vec![ev(D2, "src/pkg/net.py", 2)])],
        ),
    ]);
    let seq = build(&f, DEFAULT_MAX_TOKENS);
    assert_eq!(tokens(&seq), "[IMPORT] E1 R5 D2");
}

#[test]
fn javascript_requires_resolve_like_node() {
    use Feature::*;
    let f = facts(vec![
        file(
            "index.js",
            vec![import("./lib", 0), call(Some(("./lib", 0)), "run")],
            vec![],
        ),
        file(
            "lib/index.js",
            vec![ev(P1, "lib/index.js", 1)],
            vec![("run", vec![ev(P2, "lib/index.js", 3)])],
        ),
        // A bare specifier is another package, never a file of this one.
        file("other.js", vec![import("lib", 0)], vec![]),
    ]);
    let mut f = f;
    f.entries = vec!["index.js".into()];
    assert_eq!(tokens(&build(&f, DEFAULT_MAX_TOKENS)), "[IMPORT] P1 P2");
}

#[test]
fn npm_hooks_run_their_scripts_at_install_time() {
    use Feature::*;
    let mut f = facts(vec![
        file(
            "scripts/post.js",
            vec![ev(D2, "scripts/post.js", 1)],
            vec![],
        ),
        file("index.js", vec![ev(R4, "index.js", 1)], vec![]),
    ]);
    f.hooks = vec![Hook {
        name: "postinstall".into(),
        command: "node scripts/post.js".into(),
        steps: vec![ev(H1, "package.json", 4)],
        runs: vec!["scripts/post.js".into()],
    }];
    f.entries = vec!["index.js".into()];
    assert_eq!(
        tokens(&build(&f, DEFAULT_MAX_TOKENS)),
        "[INSTALL] H1 D2 [IMPORT] R4"
    );
}

#[test]
fn repeats_collapse_but_events_are_all_kept() {
    use Feature::*;
    let f = facts(vec![file(
        "a.js",
        vec![
            ev(R4, "a.js", 1),
            ev(R4, "a.js", 2),
            ev(R4, "a.js", 3),
            ev(D2, "a.js", 4),
            ev(R4, "a.js", 5),
        ],
        vec![],
    )]);
    let seq = build(&f, DEFAULT_MAX_TOKENS);
    assert_eq!(tokens(&seq), "[RUN] R4 D2 R4");
    assert_eq!(seq.events.len(), 5);
}

#[test]
fn cap_keeps_heads_and_strong_windows_in_order() {
    use Feature::*;
    // A long, dull run phase with one payload buried in the middle.
    let mut raw = vec![Token::Phase(Phase::Run)];
    for i in 0..2000 {
        raw.push(Token::Feature(if i % 2 == 0 { R4 } else { R3 }));
    }
    raw[1000] = Token::Feature(R5);
    raw[1001] = Token::Feature(E2);
    raw[1002] = Token::Feature(P4);
    let out = cap(&raw, 64);
    assert!(out.len() <= 64);
    assert_eq!(out[0], Token::Phase(Phase::Run));
    // The head of the phase is kept as it was.
    assert_eq!(&out[1..=HEAD], &raw[1..=HEAD]);
    // The payload is kept, with its order and a gap before it.
    let text: Vec<_> = out.iter().map(|t| t.as_str()).collect();
    let joined = text.join(" ");
    assert!(joined.contains("R5 E2 P4"), "{joined}");
    assert!(joined.contains("[GAP]"));
}

#[test]
fn cap_is_identity_when_short_and_bounded_when_long() {
    let raw: Vec<Token> = (0..100)
        .map(|i| Token::Feature(FEATURES_CYCLE[i % FEATURES_CYCLE.len()]))
        .collect();
    assert_eq!(cap(&raw, 510), raw);
    for max in [16, 17, 50, 99] {
        assert!(cap(&raw, max).len() <= max);
    }
    assert_eq!(cap(&raw, 5).len(), 5);
}

const FEATURES_CYCLE: [Feature; 5] = [
    Feature::R1,
    Feature::P4,
    Feature::R4,
    Feature::D2,
    Feature::E1,
];

#[test]
fn tokens_round_trip_through_text() {
    for token in [
        Token::Phase(Phase::Install),
        Token::Phase(Phase::Import),
        Token::Phase(Phase::Run),
        Token::Gap,
        Token::Feature(Feature::D4),
    ] {
        assert_eq!(Token::parse(token.as_str()), Some(token));
    }
    assert_eq!(Token::parse("nope"), None);
}
