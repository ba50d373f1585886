//! Resolves the imports and calls an extractor recorded to files and functions of the same
//! package. What does not resolve (the standard library, other packages) is simply not walked.

use std::collections::HashMap;

use crate::paths;
use crate::{CallRef, Language, ModuleRef, PackageFacts};

/// Indexes of a package's files and functions, built once per package.
pub(super) struct Resolver<'a> {
    facts: &'a PackageFacts,
    by_path: HashMap<&'a str, usize>,
    /// Python module paths (`pkg/utils` for `src/pkg/utils.py` and every shorter suffix that
    /// starts at a folder boundary, so `import pkg.utils` finds it under any source root).
    /// The shortest full path wins when several files match.
    python_modules: HashMap<&'a str, usize>,
    /// Per file, function name → index.
    functions: Vec<HashMap<&'a str, usize>>,
}

impl<'a> Resolver<'a> {
    pub(super) fn new(facts: &'a PackageFacts) -> Resolver<'a> {
        let mut by_path = HashMap::with_capacity(facts.files.len());
        let mut python_modules: HashMap<&str, usize> = HashMap::new();
        let mut functions = Vec::with_capacity(facts.files.len());
        for (i, file) in facts.files.iter().enumerate() {
            by_path.insert(file.path.as_str(), i);
            if file.language == Language::Python {
                if let Some(module) = python_module_path(&file.path) {
                    for (start, _) in std::iter::once((0, ""))
                        .chain(module.match_indices('/').map(|(j, s)| (j + 1, s)))
                    {
                        let key = &module[start..];
                        if key.is_empty() {
                            continue;
                        }
                        python_modules
                            .entry(key)
                            .and_modify(|old| {
                                if facts.files[*old].path.len() > file.path.len() {
                                    *old = i;
                                }
                            })
                            .or_insert(i);
                    }
                }
            }
            let mut names = HashMap::with_capacity(file.functions.len());
            for (j, f) in file.functions.iter().enumerate() {
                // The first definition wins, as a later one would only replace it at run time.
                names.entry(f.name.as_str()).or_insert(j);
            }
            functions.push(names);
        }
        Resolver {
            facts,
            by_path,
            python_modules,
            functions,
        }
    }

    /// The index of the file at `path`.
    pub(super) fn file_index(&self, path: &str) -> Option<usize> {
        self.by_path.get(path).copied()
    }

    /// The file a module reference made from file `from` names, if it is in the package.
    pub(super) fn module(&self, from: usize, module: &ModuleRef) -> Option<usize> {
        let file = &self.facts.files[from];
        match file.language {
            Language::JavaScript => {
                let spec = module.spec.as_str();
                if !(spec.starts_with("./") || spec.starts_with("../") || spec.starts_with('/')) {
                    return None;
                }
                let path = paths::join(paths::parent(&file.path), spec)?;
                paths::js_candidates(&path)
                    .iter()
                    .find_map(|c| self.file_index(c))
            }
            Language::Python => {
                let dotted = module.spec.replace('.', "/");
                if module.level == 0 {
                    if dotted.is_empty() {
                        return None;
                    }
                    return self.python_modules.get(dotted.as_str()).copied();
                }
                let mut dir = paths::parent(&file.path);
                for _ in 1..module.level {
                    if dir.is_empty() {
                        return None;
                    }
                    dir = paths::parent(dir);
                }
                let base = paths::join(dir, &dotted)?;
                let init = if base.is_empty() {
                    "__init__.py".to_owned()
                } else {
                    format!("{base}/__init__.py")
                };
                self.file_index(&format!("{base}.py"))
                    .or_else(|| self.file_index(&init))
            }
        }
    }

    /// The function a call made from file `from` reaches, if it is in the package: first as
    /// written, then (Python) moving leading parts of a dotted callee into the module, since
    /// `from pkg import utils; utils.go()` names module `pkg.utils`.
    pub(super) fn call(&self, from: usize, call: &CallRef) -> Option<(usize, usize)> {
        let Some(module) = &call.module else {
            return self.function(from, &call.function).map(|f| (from, f));
        };
        let mut module = module.clone();
        let mut function = call.function.as_str();
        loop {
            if let Some(target) = self.module(from, &module) {
                if let Some(f) = self.function(target, function) {
                    return Some((target, f));
                }
            }
            let (head, rest) = function.split_once('.')?;
            if self.facts.files[from].language != Language::Python {
                return None;
            }
            module.spec = if module.spec.is_empty() {
                head.to_owned()
            } else {
                format!("{}.{head}", module.spec)
            };
            function = rest;
        }
    }

    fn function(&self, file: usize, name: &str) -> Option<usize> {
        self.functions[file].get(name).copied()
    }
}

/// `src/pkg/utils.py` → `src/pkg/utils`, `pkg/__init__.py` → `pkg`; `None` for a top-level
/// `__init__.py` and for `.pth` files, which are not importable.
fn python_module_path(path: &str) -> Option<&str> {
    if let Some(dir) = path.strip_suffix("/__init__.py") {
        return Some(dir);
    }
    path.strip_suffix(".py")
        .filter(|m| !m.is_empty() && *m != "__init__")
}
