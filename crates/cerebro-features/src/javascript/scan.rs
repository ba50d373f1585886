//! The scan of a file's top level: which statements define named functions (and under which
//! name the package's other files call them), and which are code that runs on import.

use std::borrow::Cow;

use tree_sitter::Node;

use super::{
    fields, first_named, has_token, is_function, is_function_kind, is_relative, is_require, line,
    unwrap, Body, CallRef, Def, Extractor, Kinded, ModuleRef, Target, ThisIs,
};

impl<'a> Extractor<'a> {
    pub(super) fn top_statement(
        &mut self,
        node: Node<'a>,
        items: &mut Vec<Node<'a>>,
        defs: &mut Vec<Def<'a>>,
    ) {
        let f = fields();
        match node.k() {
            "function_declaration" | "generator_function_declaration" => {
                match node.child_by_field_id(f.name) {
                    Some(name) => {
                        let name = self.text(name);
                        self.file_bind(name, Target::LocalFn(name.to_owned()));
                        self.add_def(name.to_owned(), node, ThisIs::Nothing, defs);
                    }
                    None => items.push(node),
                }
            }
            "class_declaration" => match node.child_by_field_id(f.name) {
                Some(name) => {
                    let name = self.text(name);
                    self.class_def(name, Some(name), node, items, defs);
                }
                None => items.push(node),
            },
            "lexical_declaration" | "variable_declaration" => {
                for declarator in self.named_children(node) {
                    if !self.top_declarator(declarator, items, defs) {
                        items.push(declarator);
                    }
                }
            }
            "export_statement" => self.top_export(node, items, defs),
            "expression_statement" => {
                let handled = first_named(node).is_some_and(|e| {
                    e.k() == "assignment_expression" && self.top_assignment(node, e, items, defs)
                });
                if !handled {
                    items.push(node);
                }
            }
            _ => items.push(node),
        }
    }

    /// `const f = () => …` or `const C = class {…}` at the top level; false when the
    /// declarator is ordinary code.
    fn top_declarator(
        &mut self,
        node: Node<'a>,
        items: &mut Vec<Node<'a>>,
        defs: &mut Vec<Def<'a>>,
    ) -> bool {
        let f = fields();
        if node.k() != "variable_declarator" {
            return false;
        }
        let (Some(name), Some(value)) = (
            node.child_by_field_id(f.name),
            node.child_by_field_id(f.value),
        ) else {
            return false;
        };
        if name.k() != "identifier" {
            return false;
        }
        let name = self.text(name);
        let value = unwrap(value);
        if is_function(value) {
            self.file_bind(name, Target::LocalFn(name.to_owned()));
            self.add_def(name.to_owned(), value, ThisIs::Nothing, defs);
            true
        } else if value.k() == "class" {
            self.class_def(name, Some(name), value, items, defs);
            true
        } else {
            false
        }
    }

    /// `module.exports = …`, `exports.f = …`, `C.prototype.m = …` at the top level; false
    /// when the statement is ordinary code.
    fn top_assignment(
        &mut self,
        statement: Node<'a>,
        assignment: Node<'a>,
        items: &mut Vec<Node<'a>>,
        defs: &mut Vec<Def<'a>>,
    ) -> bool {
        let f = fields();
        let (Some(left), Some(right)) = (
            assignment.child_by_field_id(f.left),
            assignment.child_by_field_id(f.right),
        ) else {
            return false;
        };
        let mut parts: [&str; 4] = [""; 4];
        let Some(count) = self.member_names(left, &mut parts) else {
            return false;
        };
        match &parts[..count] {
            ["module", "exports"] => self.export_value("default", right, statement, items, defs),
            ["module", "exports", name] | ["exports", name] => {
                self.export_value(name, right, statement, items, defs)
            }
            [class, "prototype", method] if is_function(unwrap(right)) => {
                self.add_def(
                    format!("{class}.{method}"),
                    unwrap(right),
                    ThisIs::Class((*class).to_owned()),
                    defs,
                );
                true
            }
            _ => false,
        }
    }

    /// The plain names of a member chain (`module.exports.f` → 3 names), at most four.
    fn member_names(&self, node: Node<'a>, out: &mut [&'a str; 4]) -> Option<usize> {
        let f = fields();
        let mut names: [&str; 4] = [""; 4];
        let mut count = 0;
        let mut current = node;
        loop {
            match current.k() {
                "identifier" => {
                    if count == 4 {
                        return None;
                    }
                    names[count] = self.text(current);
                    count += 1;
                    break;
                }
                "member_expression" => {
                    if count == 4 {
                        return None;
                    }
                    names[count] = self.text(current.child_by_field_id(f.property)?);
                    count += 1;
                    current = current.child_by_field_id(f.object)?;
                }
                _ => return None,
            }
        }
        for (i, name) in names[..count].iter().rev().enumerate() {
            out[i] = name;
        }
        Some(count)
    }

    /// An exported value named `name`: functions become named functions, local names become
    /// forwarding functions, an exported object's methods become functions of their own.
    fn export_value(
        &mut self,
        name: &str,
        value: Node<'a>,
        statement: Node<'a>,
        items: &mut Vec<Node<'a>>,
        defs: &mut Vec<Def<'a>>,
    ) -> bool {
        let f = fields();
        let value = unwrap(value);
        match value.k() {
            kind if is_function_kind(kind) => {
                if let Some(own) = value.child_by_field_id(f.name) {
                    self.file_bind(self.text(own), Target::LocalFn(name.to_owned()));
                }
                self.add_def(name.to_owned(), value, ThisIs::Nothing, defs);
                true
            }
            "class" => {
                let own = value.child_by_field_id(f.name).map(|n| self.text(n));
                let class = own.unwrap_or(name);
                self.class_def(class, own, value, items, defs);
                if class != name {
                    self.alias_def(
                        format!("{name}.constructor"),
                        value,
                        Body::Call(CallRef {
                            module: None,
                            function: format!("{class}.constructor"),
                            line: line(value),
                        }),
                        defs,
                    );
                }
                true
            }
            "identifier" => {
                let local = self.text(value);
                self.alias_def(name.to_owned(), value, Body::Alias(local), defs);
                true
            }
            "object" if name == "default" => {
                for member in self.named_children(value) {
                    self.export_member(member, items, defs);
                }
                true
            }
            "call_expression" if name == "default" => {
                // `module.exports = require('./lib')`: the module runs here, and calls to this
                // module's default go on to that one's.
                items.push(statement);
                if let Some(spec) = self.relative_require(value) {
                    self.alias_def(
                        "default".to_owned(),
                        value,
                        Body::Call(CallRef {
                            module: Some(ModuleRef { spec, level: 0 }),
                            function: "default".to_owned(),
                            line: line(value),
                        }),
                        defs,
                    );
                }
                true
            }
            _ => false,
        }
    }

    /// One member of `module.exports = {…}`.
    fn export_member(
        &mut self,
        member: Node<'a>,
        items: &mut Vec<Node<'a>>,
        defs: &mut Vec<Def<'a>>,
    ) {
        let f = fields();
        match member.k() {
            "pair" => {
                let key = member
                    .child_by_field_id(f.key)
                    .and_then(|k| self.property_name(k));
                let value = member.child_by_field_id(f.value).map(unwrap);
                match (key, value) {
                    (Some(key), Some(value)) if is_function(value) => {
                        self.add_def(key, value, ThisIs::Exports, defs);
                    }
                    (Some(key), Some(value)) if value.k() == "identifier" => {
                        let local = self.text(value);
                        self.alias_def(key, value, Body::Alias(local), defs);
                    }
                    _ => items.push(member),
                }
            }
            "method_definition" => {
                match member
                    .child_by_field_id(f.name)
                    .and_then(|k| self.property_name(k))
                {
                    Some(name) => self.add_def(name, member, ThisIs::Exports, defs),
                    None => items.push(member),
                }
            }
            "shorthand_property_identifier" => {
                let local = self.text(member);
                self.alias_def(local.to_owned(), member, Body::Alias(local), defs);
            }
            _ => items.push(member),
        }
    }

    /// A class of this file: each method becomes `Class.method`; what runs when the class is
    /// defined (heritage, static blocks, field initialisers) stays at the top level.
    fn class_def(
        &mut self,
        class: &str,
        local: Option<&'a str>,
        node: Node<'a>,
        items: &mut Vec<Node<'a>>,
        defs: &mut Vec<Def<'a>>,
    ) {
        if let Some(local) = local {
            self.file_bind(local, Target::LocalClass(class.to_owned()));
        }
        for child in self.named_children(node) {
            match child.k() {
                "class_heritage" | "decorator" => items.push(child),
                "class_body" => {
                    for member in self.named_children(child) {
                        self.class_member(class, member, items, defs);
                    }
                }
                _ => {}
            }
        }
    }

    fn class_member(
        &mut self,
        class: &str,
        member: Node<'a>,
        items: &mut Vec<Node<'a>>,
        defs: &mut Vec<Def<'a>>,
    ) {
        let f = fields();
        let this = || ThisIs::Class(class.to_owned());
        match member.k() {
            "method_definition" => match member
                .child_by_field_id(f.name)
                .and_then(|n| self.property_name(n))
            {
                Some(name) => self.add_def(format!("{class}.{name}"), member, this(), defs),
                None => items.push(member),
            },
            "field_definition" => {
                let name = member
                    .child_by_field_id(f.property)
                    .and_then(|n| self.property_name(n));
                match (name, member.child_by_field_id(f.value).map(unwrap)) {
                    (Some(name), Some(value)) if is_function(value) => {
                        self.add_def(format!("{class}.{name}"), value, this(), defs);
                    }
                    (_, Some(_)) => items.push(member),
                    _ => {}
                }
            }
            "class_static_block" => items.push(member),
            _ => {}
        }
    }

    fn top_export(&mut self, node: Node<'a>, items: &mut Vec<Node<'a>>, defs: &mut Vec<Def<'a>>) {
        let f = fields();
        if let Some(source) = node.child_by_field_id(f.source) {
            // `export … from '…'`: the module runs here; named re-exports forward calls.
            items.push(node);
            let Some(spec) = self.const_string(source, 0).map(Cow::into_owned) else {
                return;
            };
            let spec = spec.strip_prefix("node:").unwrap_or(&spec).to_owned();
            if !is_relative(&spec) {
                return;
            }
            for clause in self.named_children(node) {
                if clause.k() != "export_clause" {
                    continue;
                }
                for specifier in self.named_children(clause) {
                    let Some(name) = specifier
                        .child_by_field_id(f.name)
                        .and_then(|n| self.property_name(n))
                    else {
                        continue;
                    };
                    let alias = specifier
                        .child_by_field_id(f.alias)
                        .and_then(|n| self.property_name(n))
                        .unwrap_or_else(|| name.clone());
                    let call = CallRef {
                        module: Some(ModuleRef {
                            spec: spec.clone(),
                            level: 0,
                        }),
                        function: name,
                        line: line(specifier),
                    };
                    self.alias_def(alias, specifier, Body::Call(call), defs);
                }
            }
            return;
        }
        let is_default = has_token(node, "default");
        if let Some(declaration) = node.child_by_field_id(f.declaration) {
            let named = declaration.child_by_field_id(f.name).map(|n| self.text(n));
            match (is_default, declaration.k(), named) {
                (true, "function_declaration" | "generator_function_declaration", Some(own)) => {
                    self.file_bind(own, Target::LocalFn("default".to_owned()));
                    self.add_def("default".to_owned(), declaration, ThisIs::Nothing, defs);
                }
                (true, "class_declaration", Some(own)) => {
                    self.class_def(own, Some(own), declaration, items, defs);
                    self.alias_def(
                        "default.constructor".to_owned(),
                        declaration,
                        Body::Call(CallRef {
                            module: None,
                            function: format!("{own}.constructor"),
                            line: line(declaration),
                        }),
                        defs,
                    );
                }
                _ => self.top_statement(declaration, items, defs),
            }
            return;
        }
        if let Some(value) = node.child_by_field_id(f.value) {
            if !self.export_value("default", value, node, items, defs) {
                items.push(value);
            }
            return;
        }
        // `export { a as b }`: forwarding functions for local names exported under others.
        for clause in self.named_children(node) {
            if clause.k() != "export_clause" {
                continue;
            }
            for specifier in self.named_children(clause) {
                let Some(local) = specifier.child_by_field_id(f.name) else {
                    continue;
                };
                if local.k() != "identifier" {
                    continue;
                }
                let exported = specifier
                    .child_by_field_id(f.alias)
                    .and_then(|n| self.property_name(n))
                    .unwrap_or_else(|| self.text(local).to_owned());
                self.alias_def(exported, specifier, Body::Alias(self.text(local)), defs);
            }
        }
    }

    fn add_def(&mut self, name: String, node: Node<'a>, this: ThisIs, defs: &mut Vec<Def<'a>>) {
        self.fn_names.insert(name.clone());
        defs.push(Def {
            name,
            line: line(node),
            body: Body::Code(node),
            this,
        });
    }

    fn alias_def(&mut self, name: String, node: Node<'a>, body: Body<'a>, defs: &mut Vec<Def<'a>>) {
        self.fn_names.insert(name.clone());
        defs.push(Def {
            name,
            line: line(node),
            body,
            this: ThisIs::Nothing,
        });
    }

    /// The specifier of `require('./x')` when relative.
    fn relative_require(&self, call: Node<'a>) -> Option<String> {
        let f = fields();
        let callee = unwrap(call.child_by_field_id(f.function)?);
        if !is_require(&self.resolve(callee, 0)?) {
            return None;
        }
        let spec = self.first_arg_string(call.child_by_field_id(f.arguments)?)?;
        is_relative(&spec).then_some(spec)
    }
}
