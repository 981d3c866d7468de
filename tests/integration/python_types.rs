//! Typed Python classes for llm-bench's JSON documents, generated from the committed JSON
//! Schemas (`docs/schema/`) into the Python package's `_schema.py`.
//!
//! The generator is a test so it needs no build step of its own and runs with every test run:
//! `committed_python_types_are_fresh` fails when the committed module no longer matches the
//! schemas, and `UPDATE_PYTHON_TYPES=1` (or `cargo xtask codegen`) rewrites it.
//!
//! Each object schema becomes a frozen dataclass with `from_dict`/`to_dict`; string constants
//! become `Literal` aliases; a `oneOf` of objects becomes a `Union` alias with a parser that
//! picks the variant by its tag (or, untagged, by its required keys). Anything the generator
//! does not know fails it with the schema path, rather than degrading to `Any`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Map, Value};

use crate::llm_bench;

/// The schemas the module covers; each root is named by its `title`.
const SCHEMAS: [&str; 3] = [
    "report.schema.json",
    "progress-event.schema.json",
    "autotuner.schema.json",
];

/// Black's line length, so the module reads like hand-formatted Python.
const WIDTH: usize = 88;

fn schema_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/schema")
}

fn module_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/bench-python/python/llm_bench/_schema.py")
}

/// The committed module must match the schemas. `UPDATE_PYTHON_TYPES=1 cargo test` (or
/// `cargo xtask codegen`) rewrites it.
#[test]
fn committed_python_types_are_fresh() {
    let path = module_path();
    let text = generate();
    if std::env::var_os("UPDATE_PYTHON_TYPES").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
    } else {
        assert!(
            std::fs::read_to_string(&path).ok().as_deref() == Some(text.as_str()),
            "stale Python types in crates/bench-python/python/llm_bench/_schema.py; run `cargo xtask codegen` and commit them"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Reading the schemas

/// Every named schema: each file's `$defs` and its root, named by its `title`. A name defined
/// by several files must have one schema there: two would need two classes of one name, which
/// the generator refuses rather than pick one.
fn definitions(schemas: &[(&str, String)]) -> BTreeMap<String, Value> {
    let mut defs: BTreeMap<String, (Value, &str)> = BTreeMap::new();
    for (file, text) in schemas {
        let Ok(Value::Object(mut root)) = serde_json::from_str(text) else {
            panic!("{file}: not a JSON object");
        };
        let own = match root.remove("$defs") {
            Some(Value::Object(own)) => own,
            None => Map::new(),
            Some(_) => panic!("{file}: `$defs` is not an object"),
        };
        let Some(Value::String(title)) = root.remove("title") else {
            panic!("{file}: the root has no `title` to name its class");
        };
        root.remove("$schema");
        for (name, schema) in own.into_iter().chain([(title, Value::Object(root))]) {
            match defs.get(&name) {
                Some((other, other_file)) if *other != schema => panic!(
                    "`{name}` has different schemas in {other_file} and {file}; one Python class \
                     cannot stand for both: rename one of the Rust types"
                ),
                Some(_) => {}
                None => {
                    defs.insert(name, (schema, file));
                }
            }
        }
    }
    defs.into_iter()
        .map(|(name, (schema, _))| (name, schema))
        .collect()
}

fn committed_schemas() -> Vec<(&'static str, String)> {
    SCHEMAS
        .iter()
        .map(|&file| {
            let path = schema_dir().join(file);
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            (file, text)
        })
        .collect()
}

/// Two files defining one name differently fail the generator.
#[test]
#[should_panic(expected = "`Warning` has different schemas in a.json and b.json")]
fn a_name_with_two_schemas_is_refused() {
    let schema = |description: &str| {
        let warning = serde_json::json!({ "type": "object", "description": description });
        serde_json::json!({ "title": "Root", "type": "object", "$defs": { "Warning": warning } })
            .to_string()
    };
    definitions(&[("a.json", schema("one")), ("b.json", schema("two"))]);
}

/// What a named schema becomes in Python.
enum Shape<'a> {
    /// An object with properties: a dataclass.
    Class(&'a Map<String, Value>),
    /// String constants: a `Literal` alias. Each value comes with its description.
    Literal(Vec<(String, Option<String>)>),
    /// One of several objects: a `Union` alias and a parser choosing the variant.
    Union(&'a [Value]),
    /// Any other type: an alias of it (`Timestamp = str`).
    Alias,
}

fn shape(schema: &Value) -> Shape<'_> {
    let Some(map) = schema.as_object() else {
        return Shape::Alias;
    };
    if map.contains_key("properties") {
        return Shape::Class(map);
    }
    if let Some(values) = literal_values(map) {
        return Shape::Literal(values);
    }
    match branches(map) {
        Some(branches) if nullable_branch(branches).is_none() => Shape::Union(branches),
        _ => Shape::Alias,
    }
}

/// The branches of a `oneOf` or `anyOf`.
fn branches(map: &Map<String, Value>) -> Option<&[Value]> {
    map.get("oneOf")
        .or_else(|| map.get("anyOf"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
}

/// `X` of the `[X, null]` that schemars writes for an `Option<X>` field.
fn nullable_branch(branches: &[Value]) -> Option<&Value> {
    let null = serde_json::json!({ "type": "null" });
    match branches {
        [x, n] | [n, x] if *n == null => Some(x),
        _ => None,
    }
}

/// The values of a schema that allows only string constants (`const`, `enum`, or a `oneOf` of
/// constants, which is how schemars writes a documented unit enum).
fn literal_values(map: &Map<String, Value>) -> Option<Vec<(String, Option<String>)>> {
    if let Some(value) = map.get("const") {
        return Some(vec![(value.as_str()?.to_owned(), None)]);
    }
    if let Some(Value::Array(values)) = map.get("enum") {
        return values
            .iter()
            .map(|v| Some((v.as_str()?.to_owned(), None)))
            .collect();
    }
    let branches = branches(map)?;
    branches
        .iter()
        .map(|b| Some((b.get("const")?.as_str()?.to_owned(), description(b))))
        .collect()
}

fn description(schema: &Value) -> Option<String> {
    schema
        .get("description")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The name a local `$ref` (`#/$defs/Name`) points to.
fn reference_name<'a>(reference: &'a Value, at: &str) -> &'a str {
    reference
        .as_str()
        .and_then(|r| r.strip_prefix("#/$defs/"))
        .unwrap_or_else(|| panic!("{at}: unsupported $ref {reference}"))
}

// ---------------------------------------------------------------------------------------------
// The Python model

/// A Python type: its annotation and a converter, an expression for a `(value, path) -> T`
/// callable of the runtime below that checks a JSON value and builds the type from it.
#[derive(Clone)]
struct PyType {
    annotation: String,
    converter: String,
    /// JSON `null` is allowed too.
    nullable: bool,
    /// The generated classes the annotation names.
    classes: BTreeSet<String>,
}

impl PyType {
    fn new(annotation: impl Into<String>, converter: impl Into<String>) -> Self {
        Self {
            annotation: annotation.into(),
            converter: converter.into(),
            nullable: false,
            classes: BTreeSet::new(),
        }
    }

    /// A type built from `inner` (a list of it, ...), naming the classes it names.
    fn wrapping(inner: &Self, annotation: String, converter: String) -> Self {
        Self {
            classes: inner.classes.clone(),
            ..Self::new(annotation, converter)
        }
    }

    fn any() -> Self {
        Self::new("Any", "_any")
    }

    fn nullable(self) -> Self {
        Self {
            nullable: true,
            ..self
        }
    }

    fn literal(values: &[(String, Option<String>)]) -> Self {
        let values: Vec<String> = values.iter().map(|(v, _)| py_str(v)).collect();
        let annotation = format!("Literal[{}]", values.join(", "));
        Self::new(annotation.clone(), format!("_literal_of({annotation})"))
    }

    fn full_annotation(&self) -> String {
        if self.nullable {
            format!("Optional[{}]", self.annotation)
        } else {
            self.annotation.clone()
        }
    }

    fn full_converter(&self) -> String {
        if self.nullable {
            format!("_nullable_of({})", self.converter)
        } else {
            self.converter.clone()
        }
    }
}

/// One dataclass field, read from the JSON key `key`.
struct Field {
    key: String,
    attribute: String,
    ty: PyType,
    required: bool,
    description: Option<String>,
}

struct Class {
    name: String,
    description: Option<String>,
    fields: Vec<Field>,
}

/// How a union's parser recognises one variant.
enum Selector {
    /// The tag property holds this value.
    Tag(String),
    /// These keys, the variant's required ones, are all present.
    Keys(Vec<String>),
}

struct Union {
    name: String,
    description: Option<String>,
    /// The property whose constant names the variant, if every variant has one.
    tag: Option<String>,
    variants: Vec<(String, Selector)>,
}

/// A `Literal` alias, or a plain alias such as `Timestamp = str`.
struct Alias {
    name: String,
    description: Option<String>,
    /// The values of a `Literal`, each with its description.
    values: Vec<(String, Option<String>)>,
    ty: PyType,
}

/// Everything the module defines.
#[derive(Default)]
struct Module {
    aliases: Vec<Alias>,
    classes: BTreeMap<String, Class>,
    unions: Vec<Union>,
}

struct Generator {
    defs: BTreeMap<String, Value>,
}

impl Generator {
    fn module(&self) -> Module {
        let mut module = Module::default();
        for (name, schema) in &self.defs {
            match shape(schema) {
                Shape::Class(map) => self.add_class(&mut module, self.class(name, map, name)),
                Shape::Literal(values) => module.aliases.push(Alias {
                    name: name.clone(),
                    description: description(schema),
                    ty: PyType::literal(&values),
                    values,
                }),
                Shape::Union(branches) => {
                    let union = self.union(&mut module, name, schema, branches);
                    module.unions.push(union);
                }
                Shape::Alias => module.aliases.push(Alias {
                    name: name.clone(),
                    description: description(schema),
                    values: Vec::new(),
                    ty: self.py_type(schema, name),
                }),
            }
        }
        module
    }

    fn add_class(&self, module: &mut Module, class: Class) {
        let name = class.name.clone();
        let taken = module.classes.contains_key(&name)
            || (self.defs.contains_key(&name)
                && !matches!(shape(&self.defs[&name]), Shape::Class(_)));
        assert!(!taken, "two Python definitions would be named `{name}`");
        module.classes.insert(name, class);
    }

    /// The type of a property (or list item, or map value) schema.
    fn py_type(&self, schema: &Value, at: &str) -> PyType {
        let map = match schema {
            Value::Bool(true) => return PyType::any(),
            Value::Object(map) => map,
            _ => panic!("{at}: unsupported schema {schema}"),
        };
        if let Some(reference) = map.get("$ref") {
            assert!(
                !map.contains_key("properties"),
                "{at}: an inline object extending a $ref; name it in $defs"
            );
            return self.named(reference_name(reference, at), at);
        }
        if let Some(values) = literal_values(map) {
            return PyType::literal(&values);
        }
        if let Some(branches) = branches(map) {
            let inner = nullable_branch(branches)
                .unwrap_or_else(|| panic!("{at}: an inline union; name it in $defs"));
            return self.py_type(inner, at).nullable();
        }
        match map.get("type") {
            None => {
                assert!(
                    !map.contains_key("properties") && !map.contains_key("items"),
                    "{at}: a schema without `type`"
                );
                PyType::any()
            }
            Some(Value::String(ty)) => self.typed(ty, map, at),
            // `["integer", "null"]`: an `Option` field.
            Some(Value::Array(types)) => {
                match types.iter().map(Value::as_str).collect::<Vec<_>>()[..] {
                    [Some(ty), Some("null")] | [Some("null"), Some(ty)] => {
                        self.typed(ty, map, at).nullable()
                    }
                    _ => panic!("{at}: unsupported type list {types:?}"),
                }
            }
            Some(other) => panic!("{at}: unsupported type {other}"),
        }
    }

    fn typed(&self, ty: &str, map: &Map<String, Value>, at: &str) -> PyType {
        match ty {
            "string" => PyType::new("str", "_str"),
            "integer" => PyType::new("int", "_int"),
            "number" => PyType::new("float", "_float"),
            "boolean" => PyType::new("bool", "_bool"),
            "array" => {
                let item = match map.get("items") {
                    Some(items) => self.py_type(items, &format!("{at}[]")),
                    None => PyType::any(),
                };
                PyType::wrapping(
                    &item,
                    format!("List[{}]", item.full_annotation()),
                    format!("_list_of({})", item.full_converter()),
                )
            }
            "object" => {
                assert!(
                    !map.contains_key("properties"),
                    "{at}: an inline object; name it in $defs"
                );
                let value = match map.get("additionalProperties") {
                    None | Some(Value::Bool(true)) => PyType::any(),
                    Some(schema @ Value::Object(_)) => self.py_type(schema, &format!("{at}.*")),
                    Some(other) => panic!("{at}: unsupported additionalProperties {other}"),
                };
                PyType::wrapping(
                    &value,
                    format!("Dict[str, {}]", value.full_annotation()),
                    format!("_dict_of({})", value.full_converter()),
                )
            }
            _ => panic!("{at}: unsupported type `{ty}`"),
        }
    }

    /// The type a `$ref` names: the Python definition of that name.
    fn named(&self, name: &str, at: &str) -> PyType {
        let schema = self
            .defs
            .get(name)
            .unwrap_or_else(|| panic!("{at}: $ref to an unknown `{name}`"));
        let converter = match shape(schema) {
            Shape::Class(_) => {
                let mut ty = PyType::new(name, format!("{name}._parse"));
                ty.classes.insert(name.to_owned());
                return ty;
            }
            Shape::Literal(_) => format!("_literal_of({name})"),
            Shape::Union(_) => format!("_parse_{}", snake(name)),
            Shape::Alias => self.py_type(schema, name).full_converter(),
        };
        PyType::new(name, converter)
    }

    /// An object's properties and required keys, with those of the object its `$ref` names
    /// merged in: a union variant can extend a named object (the `update` progress event).
    fn object_parts(
        &self,
        map: &Map<String, Value>,
        at: &str,
    ) -> (Map<String, Value>, Vec<String>) {
        let (mut properties, mut required) = match map.get("$ref") {
            Some(reference) => {
                let name = reference_name(reference, at);
                match self.defs.get(name).map(shape) {
                    Some(Shape::Class(base)) => self.object_parts(base, name),
                    _ => panic!("{at}: extends `{name}`, which is not an object"),
                }
            }
            None => (Map::new(), Vec::new()),
        };
        if let Some(Value::Object(own)) = map.get("properties") {
            properties.extend(own.clone());
        }
        let own: Vec<String> = match map.get("required") {
            Some(Value::Array(keys)) => keys
                .iter()
                .map(|k| k.as_str().unwrap().to_owned())
                .collect(),
            _ => Vec::new(),
        };
        // The variant's own keys (its tag) first.
        required.retain(|k| !own.contains(k));
        (properties, own.into_iter().chain(required).collect())
    }

    /// A dataclass: required fields first (a dataclass needs them before those with a default),
    /// in the schema's `required` order, which is the Rust field order.
    fn class(&self, name: &str, map: &Map<String, Value>, at: &str) -> Class {
        let (properties, required) = self.object_parts(map, at);
        let mut fields = Vec::new();
        for key in required
            .iter()
            .chain(properties.keys().filter(|k| !required.contains(k)))
        {
            let schema = properties
                .get(key)
                .unwrap_or_else(|| panic!("{at}: required `{key}` has no schema"));
            fields.push(Field {
                key: key.clone(),
                attribute: attribute(key, at),
                ty: self.py_type(schema, &format!("{at}.{key}")),
                required: required.contains(key),
                description: description(schema).or_else(|| {
                    let value = schema.get("const")?;
                    Some(format!("Always ``{value}``."))
                }),
            });
        }
        let mut attributes = BTreeSet::new();
        for f in &fields {
            assert!(
                attributes.insert(&f.attribute),
                "{at}: two properties would be the attribute `{}`",
                f.attribute
            );
        }
        Class {
            name: name.to_owned(),
            description: map
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_owned),
            fields,
        }
    }

    /// A union of objects: each branch a named class (a bare `$ref`) or an inline object,
    /// which gets a class of its own (see `variant_name`).
    fn union(&self, module: &mut Module, name: &str, schema: &Value, branches: &[Value]) -> Union {
        let branches: Vec<Branch<'_>> = branches
            .iter()
            .enumerate()
            .map(|(i, branch)| {
                let at = format!("{name}.oneOf[{i}]");
                let schema = branch
                    .as_object()
                    .unwrap_or_else(|| panic!("{at}: not an object schema"));
                let bare_ref = schema
                    .get("$ref")
                    .filter(|_| !schema.contains_key("properties"));
                let (properties, required) = self.object_parts(schema, &at);
                Branch {
                    named: bare_ref.map(|r| reference_name(r, &at).to_owned()),
                    schema,
                    properties,
                    required,
                    at,
                }
            })
            .collect();
        let tag = tag_property(&branches);
        let mut variants = Vec::new();
        for branch in &branches {
            let selector = match tag {
                Some(tag) => {
                    Selector::Tag(branch.properties[tag]["const"].as_str().unwrap().to_owned())
                }
                None => Selector::Keys(branch.required.clone()),
            };
            let class = match &branch.named {
                Some(class) => class.clone(),
                None => {
                    let class_name = variant_name(name, branch, tag, &selector);
                    let class = self.class(&class_name, branch.schema, &branch.at);
                    self.add_class(module, class);
                    class_name
                }
            };
            variants.push((class, selector));
        }
        check_selectors(name, &variants);
        Union {
            name: name.to_owned(),
            description: description(schema),
            tag: tag.map(str::to_owned),
            variants,
        }
    }
}

/// One branch of a union.
struct Branch<'a> {
    schema: &'a Map<String, Value>,
    /// The class a bare `$ref` names; `None` for an inline object.
    named: Option<String>,
    properties: Map<String, Value>,
    required: Vec<String>,
    /// Where it is, for messages.
    at: String,
}

/// The property whose string constant names the variant, when every branch requires one.
fn tag_property<'a>(branches: &'a [Branch<'_>]) -> Option<&'a str> {
    let first = branches.first()?;
    first.properties.keys().map(String::as_str).find(|key| {
        branches.iter().all(|b| {
            b.required.iter().any(|r| r == key)
                && b.properties
                    .get(*key)
                    .and_then(|p| p.get("const"))
                    .is_some_and(Value::is_string)
        })
    })
}

/// The class of an inline variant: after its tag value and the tag property
/// (`benchmark_started` + `event` = `BenchmarkStartedEvent`), or, untagged, after the union and
/// the variant's only property (`TransientSeconds`).
fn variant_name(
    union: &str,
    branch: &Branch<'_>,
    tag: Option<&str>,
    selector: &Selector,
) -> String {
    match (selector, tag) {
        (Selector::Tag(value), Some(tag)) => format!("{}{}", pascal(value), pascal(tag)),
        _ if branch.properties.len() == 1 => {
            let only = branch.properties.keys().next().unwrap();
            format!("{union}{}", pascal(only))
        }
        _ => panic!(
            "{}: an untagged variant of several properties; cannot name its class",
            branch.at
        ),
    }
}

/// Every variant of an untagged union must be told apart by its required keys alone.
fn check_selectors(union: &str, variants: &[(String, Selector)]) {
    let keys: Vec<(&String, BTreeSet<&String>)> = variants
        .iter()
        .filter_map(|(class, selector)| match selector {
            Selector::Keys(keys) => Some((class, keys.iter().collect())),
            Selector::Tag(_) => None,
        })
        .collect();
    for (class, own) in &keys {
        assert!(
            !own.is_empty(),
            "{union}: variant {class} has no required key to recognise it by"
        );
        for (other, theirs) in &keys {
            assert!(
                class == other || !own.is_subset(theirs),
                "{union}: variants {class} and {other} cannot be told apart by their required keys"
            );
        }
    }
}

const PYTHON_KEYWORDS: [&str; 35] = [
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield",
];

/// Names a class body uses at run time or in annotations: a field of one of these names
/// would shadow it there (mypy resolves annotations in the class scope first).
const RESERVED: [&str; 14] = [
    "field",
    "classmethod",
    "from_dict",
    "to_dict",
    "int",
    "float",
    "str",
    "bool",
    "Any",
    "Dict",
    "List",
    "Literal",
    "Mapping",
    "Optional",
];

/// The Python attribute of a JSON property: keywords get a trailing underscore (`from_`).
fn attribute(key: &str, at: &str) -> String {
    let identifier = key.starts_with(|c: char| c.is_ascii_alphabetic())
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    assert!(
        identifier,
        "{at}: property `{key}` is not a public Python identifier"
    );
    assert!(
        !RESERVED.contains(&key) && !key.starts_with(|c: char| c.is_ascii_uppercase()),
        "{at}: property `{key}` would shadow a name the class body uses"
    );
    if PYTHON_KEYWORDS.contains(&key) {
        format!("{key}_")
    } else {
        key.to_owned()
    }
}

fn pascal(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|part| !part.is_empty())
        .map(|part| part[..1].to_ascii_uppercase() + &part[1..])
        .collect()
}

fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// A Python string literal; JSON's escapes are all valid Python.
fn py_str(text: &str) -> String {
    serde_json::to_string(text).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Writing the module

/// The generated module's text.
fn generate() -> String {
    let module = Generator {
        defs: definitions(&committed_schemas()),
    }
    .module();
    let mut out = String::from(HEADER);
    let mut exported: Vec<String> = module.aliases.iter().map(|a| a.name.clone()).collect();
    exported.extend(module.classes.keys().cloned());
    for union in &module.unions {
        exported.push(union.name.clone());
        exported.push(format!("{}_from_dict", snake(&union.name)));
    }
    exported.sort();
    out.push_str("__all__ = [\n");
    for name in &exported {
        writeln!(out, "    {},", py_str(name)).unwrap();
    }
    out.push_str("]\n");
    out.push_str(RUNTIME);
    // Aliases first: class annotations use them. Unions last: their aliases are run-time
    // expressions over the classes.
    for alias in &module.aliases {
        out.push_str("\n\n");
        render_alias(&mut out, alias);
    }
    for class in dependency_order(&module.classes) {
        out.push_str("\n\n");
        render_class(&mut out, class);
        render_percentile_shortcuts(&mut out, class, &module.classes);
    }
    for union in &module.unions {
        out.push_str("\n\n");
        render_union(&mut out, union);
    }
    out
}

/// The classes, each after the classes its fields name (ties in name order). Not simply in
/// name order: mypy reads a name used before its definition as the builtin of that name, if
/// there is one, and the schema has a `Warning`.
fn dependency_order(classes: &BTreeMap<String, Class>) -> Vec<&Class> {
    fn visit<'a>(
        name: &str,
        classes: &'a BTreeMap<String, Class>,
        seen: &mut BTreeSet<String>,
        order: &mut Vec<&'a Class>,
    ) {
        let Some(class) = classes.get(name) else {
            return;
        };
        if !seen.insert(name.to_owned()) {
            return;
        }
        for used in class.fields.iter().flat_map(|f| &f.ty.classes) {
            visit(used, classes, seen, order);
        }
        order.push(class);
    }
    let (mut seen, mut order) = (BTreeSet::new(), Vec::new());
    for name in classes.keys() {
        visit(name, classes, &mut seen, &mut order);
    }
    order
}

const HEADER: &str = r#"# Generated by `cargo xtask codegen` from docs/schema/ (the JSON Schemas of llm-bench's
# documents); do not edit. Regenerate after changing the schemas.
"""Typed, read-only views of llm-bench's JSON documents.

Roots: ``Report.from_dict(d)`` (a report, ``llm-bench run --output r.json``),
``AutotunerMetrics.from_dict(d)`` (``format = "autotuner"``) and
``progress_event_from_dict(d)`` (one line of ``--progress-json``).

Every class is a frozen dataclass built by its ``from_dict`` from a JSON object (a
mapping): nested objects become their classes, so ``report.benchmarks[0].metrics`` has
attributes all the way down. Keys the schema does not know are ignored, so a newer
document still loads; absent or null optional keys are None. A missing required key or a
value of the wrong type raises ValueError naming its dotted path and the class.
``to_dict()`` returns a deep copy of the mapping the object was built from, unknown keys
included.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import (
    Any,
    Callable,
    Dict,
    List,
    Literal,
    Mapping,
    Optional,
    TypeVar,
    Union,
    get_args,
)

"#;

/// The converters every generated parser uses.
const RUNTIME: &str = r#"
_T = TypeVar("_T")


class _WrongType(Exception):
    """A value of the wrong type, raised by the converters; the field that read it
    re-raises it as a ValueError that also names its class."""

    def __init__(self, path: str, expected: str, value: Any) -> None:
        super().__init__(path, expected, value)
        self.path = path
        self.expected = expected
        self.value = value


def _describe(value: Any) -> str:
    """A value, shortly, for an error message."""
    if value is None or isinstance(value, (bool, int, float, str)):
        text = repr(value)
        return text if len(text) <= 60 else text[:57] + "..."
    return "a " + type(value).__name__


def _root(data: Any, name: str) -> Dict[str, Any]:
    """A deep copy of a document's top object, apart from later changes to `data`."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{name}: expected an object, got {_describe(data)}")
    return copy.deepcopy(dict(data))


def _object(value: Any, path: str) -> Dict[str, Any]:
    if not isinstance(value, Mapping):
        raise _WrongType(path, "an object", value)
    return value if isinstance(value, dict) else dict(value)


def _convert(
    value: Any, path: str, owner: str, convert: Callable[[Any, str], _T]
) -> _T:
    try:
        return convert(value, path)
    except _WrongType as wrong:
        raise ValueError(
            f"{wrong.path}: expected {wrong.expected} in {owner}, "
            f"got {_describe(wrong.value)}"
        ) from None


def _required(
    data: Dict[str, Any],
    key: str,
    path: str,
    owner: str,
    convert: Callable[[Any, str], _T],
) -> _T:
    if key not in data:
        raise ValueError(f"{path}.{key}: required key {key!r} of {owner} is missing")
    return _convert(data[key], f"{path}.{key}", owner, convert)


def _optional(
    data: Dict[str, Any],
    key: str,
    path: str,
    owner: str,
    convert: Callable[[Any, str], _T],
) -> Optional[_T]:
    value = data.get(key)
    if value is None:
        return None
    return _convert(value, f"{path}.{key}", owner, convert)


def _copy_of(raw: Optional[Dict[str, Any]], owner: str) -> Dict[str, Any]:
    if raw is None:
        raise ValueError(f"this {owner} was not built by from_dict: it has no mapping")
    return copy.deepcopy(raw)


def _str(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise _WrongType(path, "a string", value)
    return value


def _int(value: Any, path: str) -> int:
    # bool is an int in Python, but true is not a number in JSON.
    if isinstance(value, bool) or not isinstance(value, int):
        raise _WrongType(path, "an integer", value)
    return value


def _float(value: Any, path: str) -> float:
    # JSON has one kind of number: a whole one may be written without a fraction.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _WrongType(path, "a number", value)
    return float(value)


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise _WrongType(path, "a boolean", value)
    return value


def _any(value: Any, path: str) -> Any:
    return value


def _list_of(item: Callable[[Any, str], _T]) -> Callable[[Any, str], List[_T]]:
    def convert(value: Any, path: str) -> List[_T]:
        if not isinstance(value, list):
            raise _WrongType(path, "an array", value)
        return [item(v, f"{path}[{i}]") for i, v in enumerate(value)]

    return convert


def _dict_of(item: Callable[[Any, str], _T]) -> Callable[[Any, str], Dict[str, _T]]:
    def convert(value: Any, path: str) -> Dict[str, _T]:
        return {k: item(v, f"{path}.{k}") for k, v in _object(value, path).items()}

    return convert


def _nullable_of(item: Callable[[Any, str], _T]) -> Callable[[Any, str], Optional[_T]]:
    def convert(value: Any, path: str) -> Optional[_T]:
        return None if value is None else item(value, path)

    return convert


def _no_tag(path: str, union: str, tag: Any, tags: List[str]) -> ValueError:
    expected = ", ".join(repr(t) for t in tags)
    return ValueError(
        f"{path}: expected one of {expected} to select a class of {union}, "
        f"got {_describe(tag)}"
    )


def _no_keys(
    path: str, union: str, data: Dict[str, Any], keys: List[str]
) -> ValueError:
    return ValueError(
        f"{path}: the keys {sorted(data)} select no class of {union}; "
        f"expected those of one of: {'; '.join(keys)}"
    )


def _literal_of(alias: Any) -> Callable[[Any, str], Any]:
    allowed = get_args(alias)

    def convert(value: Any, path: str) -> Any:
        if not isinstance(value, str) or value not in allowed:
            expected = "one of " + ", ".join(repr(a) for a in allowed)
            raise _WrongType(path, expected, value)
        return value

    return convert
"#;

/// `#:` comment lines (Sphinx's marker for a module attribute's documentation).
fn render_comment(out: &mut String, text: &str) {
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            out.push_str("#:\n");
        } else {
            writeln!(out, "#: {line}").unwrap();
        }
    }
}

fn render_alias(out: &mut String, alias: &Alias) {
    let mut about = alias.description.clone().unwrap_or_default();
    if alias.values.iter().any(|(_, d)| d.is_some()) {
        about.push('\n');
        for (value, description) in &alias.values {
            let description = description.as_deref().unwrap_or("").replace('\n', "\n  ");
            write!(about, "\n- ``{}``: {description}", py_str(value)).unwrap();
        }
    }
    render_comment(out, &about);
    let line = format!("{} = {}", alias.name, alias.ty.full_annotation());
    if line.len() <= WIDTH || alias.values.is_empty() {
        writeln!(out, "{line}").unwrap();
    } else {
        writeln!(out, "{} = Literal[", alias.name).unwrap();
        for (value, _) in &alias.values {
            writeln!(out, "    {},", py_str(value)).unwrap();
        }
        out.push_str("]\n");
    }
}

/// A docstring at `indent`: the text, then a Google-style `Attributes:` section.
fn render_docstring(out: &mut String, indent: &str, text: &str, attributes: &[(&str, &str)]) {
    let mut lines: Vec<String> = text.lines().map(|l| l.trim_end().to_owned()).collect();
    if !attributes.is_empty() {
        lines.extend([String::new(), "Attributes:".to_owned()]);
        for (name, about) in attributes {
            let mut about = about.lines().map(str::trim_end);
            lines.push(format!("    {name}: {}", about.next().unwrap_or("")));
            lines.extend(about.map(|l| format!("        {l}")));
        }
    }
    // A `"""` inside, or a `"` just before the closing one, would end the string early.
    let mut body = lines
        .iter()
        .map(|l| {
            let l = l.replace('\\', "\\\\").replace("\"\"\"", "\\\"\\\"\\\"");
            if l.is_empty() {
                l
            } else {
                format!("{indent}{l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    body = body.trim_start().to_owned();
    if lines.len() == 1 {
        if body.ends_with('"') {
            body.pop();
            body.push_str("\\\"");
        }
        writeln!(out, "{indent}\"\"\"{body}\"\"\"").unwrap();
    } else {
        writeln!(out, "{indent}\"\"\"{body}\n{indent}\"\"\"").unwrap();
    }
}

fn render_class(out: &mut String, class: &Class) {
    let name = &class.name;
    writeln!(out, "@dataclass(frozen=True)\nclass {name}:").unwrap();
    let attributes: Vec<(&str, &str)> = class
        .fields
        .iter()
        .filter_map(|f| Some((f.attribute.as_str(), f.description.as_deref()?)))
        .collect();
    render_docstring(
        out,
        "    ",
        class.description.as_deref().unwrap_or(name),
        &attributes,
    );
    out.push('\n');
    for f in &class.fields {
        let annotation = f.ty.full_annotation();
        if f.required {
            writeln!(out, "    {}: {annotation}", f.attribute).unwrap();
        } else if f.ty.nullable {
            writeln!(out, "    {}: {annotation} = None", f.attribute).unwrap();
        } else {
            writeln!(out, "    {}: Optional[{annotation}] = None", f.attribute).unwrap();
        }
    }
    out.push_str(
        "    _raw: Optional[Dict[str, Any]] = field(default=None, repr=False, compare=False)\n",
    );
    write!(
        out,
        r#"
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> {name}:
        """Builds an instance from its JSON object (a mapping), ignoring unknown keys.

        Raises ValueError naming the dotted path and the class of a missing required
        key or a value of the wrong type.
        """
        return cls._parse(_root(data, cls.__name__), cls.__name__)

    def to_dict(self) -> Dict[str, Any]:
        """A deep copy of the JSON object this was built from, unknown keys included."""
        return _copy_of(self._raw, type(self).__name__)

    @classmethod
    def _parse(cls, value: Any, path: str) -> {name}:
        data = _object(value, path)
        return cls(
"#
    )
    .unwrap();
    for f in &class.fields {
        // Optional fields take None from an absent key as from null, so their converter
        // handles the value only.
        let (getter, converter) = if f.required {
            ("_required", f.ty.full_converter())
        } else {
            ("_optional", f.ty.converter.clone())
        };
        let arguments = [
            "data".to_owned(),
            py_str(&f.key),
            "path".to_owned(),
            py_str(name),
            converter,
        ];
        render_call(
            out,
            3,
            &format!("{}={getter}", f.attribute),
            &arguments,
            ",",
        );
    }
    out.push_str("            _raw=data,\n        )\n");
}

/// A class with a `percentiles` field of class `Percentiles` (a distribution) also reads its
/// percentiles directly: `ttft_ms.successful.p50` as well as `.percentiles.p50`.
fn render_percentile_shortcuts(out: &mut String, class: &Class, classes: &BTreeMap<String, Class>) {
    let holds = class
        .fields
        .iter()
        .any(|f| f.key == "percentiles" && f.required && f.ty.annotation == "Percentiles");
    let Some(percentiles) = classes.get("Percentiles").filter(|_| holds) else {
        return;
    };
    for f in percentiles.fields.iter().filter(|f| f.required) {
        let annotation = f.ty.full_annotation();
        write!(
            out,
            "\n    @property\n    def {name}(self) -> {annotation}:\n        \"\"\"`percentiles.{name}`.\"\"\"\n        return self.percentiles.{name}\n",
            name = f.attribute
        )
        .unwrap();
    }
}

/// `callee(arguments)` at `depth` levels of indentation, wrapped as black would: on one line,
/// else the arguments on one line of their own, else one a line.
fn render_call(out: &mut String, depth: usize, callee: &str, arguments: &[String], end: &str) {
    let (indent, inner) = ("    ".repeat(depth), "    ".repeat(depth + 1));
    let joined = arguments.join(", ");
    if indent.len() + callee.len() + joined.len() + 2 + end.len() <= WIDTH {
        writeln!(out, "{indent}{callee}({joined}){end}").unwrap();
    } else if inner.len() + joined.len() <= WIDTH {
        writeln!(out, "{indent}{callee}(\n{inner}{joined}\n{indent}){end}").unwrap();
    } else {
        writeln!(out, "{indent}{callee}(").unwrap();
        for argument in arguments {
            writeln!(out, "{inner}{argument},").unwrap();
        }
        writeln!(out, "{indent}){end}").unwrap();
    }
}

/// `    name = [...]`, a list of strings, exploded as black would when too long.
fn render_list(out: &mut String, name: &str, items: &[String]) {
    let items: Vec<String> = items.iter().map(|i| py_str(i)).collect();
    let line = format!("    {name} = [{}]", items.join(", "));
    if line.len() <= WIDTH {
        writeln!(out, "{line}").unwrap();
    } else {
        writeln!(out, "    {name} = [").unwrap();
        for item in &items {
            writeln!(out, "        {item},").unwrap();
        }
        out.push_str("    ]\n");
    }
}

fn render_union(out: &mut String, union: &Union) {
    let name = &union.name;
    let function = snake(name);
    let classes: Vec<&str> = union.variants.iter().map(|(c, _)| c.as_str()).collect();
    let mut about = union.description.clone().unwrap_or_default();
    let (selects, how) = match &union.tag {
        Some(tag) => {
            let key = format!("its ``{}`` key", py_str(tag));
            let how = format!("\n\nThe class is the one {key} names:\n");
            (format!("class of {name} that {key} names"), how)
        }
        None => {
            let how = "\n\nThe class is the first whose required keys are all present:\n";
            let selects = format!("first class of {name} whose required keys are all present");
            (selects, how.to_owned())
        }
    };
    about.push_str(&how);
    for (class, selector) in &union.variants {
        match selector {
            Selector::Tag(value) => write!(about, "\n- ``{}``: {class}", py_str(value)),
            Selector::Keys(keys) => write!(about, "\n- {class}: {}", keys.join(", ")),
        }
        .unwrap();
    }
    render_comment(out, &about);
    let line = format!("{name} = Union[{}]", classes.join(", "));
    if line.len() <= WIDTH {
        writeln!(out, "{line}").unwrap();
    } else {
        writeln!(out, "{name} = Union[").unwrap();
        for class in &classes {
            writeln!(out, "    {class},").unwrap();
        }
        out.push_str("]\n");
    }
    write!(
        out,
        r#"

def {function}_from_dict(data: Mapping[str, Any]) -> {name}:
    """Builds the {selects}.

    Unknown keys are ignored. Raises ValueError naming the dotted path and the class of
    an unknown variant, a missing required key or a value of the wrong type.
    """
    return _parse_{function}(_root(data, "{name}"), "{name}")


def _parse_{function}(value: Any, path: str) -> {name}:
    data = _object(value, path)
"#
    )
    .unwrap();
    match &union.tag {
        Some(tag) => render_tag_dispatch(out, union, tag),
        None => render_keys_dispatch(out, union),
    }
}

fn render_tag_dispatch(out: &mut String, union: &Union, tag: &str) {
    let name = &union.name;
    let key = py_str(tag);
    writeln!(out, "    if {key} not in data:").unwrap();
    let message = format!("f\"{{path}}.{tag}: required key '{tag}' of {name} is missing\"");
    render_call(out, 2, "raise ValueError", &[message], "");
    writeln!(out, "    tag = data[{key}]").unwrap();
    let mut tags = Vec::new();
    for (class, selector) in &union.variants {
        if let Selector::Tag(value) = selector {
            writeln!(out, "    if tag == {}:", py_str(value)).unwrap();
            writeln!(out, "        return {class}._parse(data, path)").unwrap();
            tags.push(value.clone());
        }
    }
    render_list(out, "tags", &tags);
    let arguments = [
        format!("f\"{{path}}.{tag}\""),
        py_str(name),
        "tag".to_owned(),
        "tags".to_owned(),
    ];
    render_call(out, 1, "raise _no_tag", &arguments, "");
}

fn render_keys_dispatch(out: &mut String, union: &Union) {
    let mut expected = Vec::new();
    for (class, selector) in &union.variants {
        if let Selector::Keys(keys) = selector {
            let test: Vec<String> = keys
                .iter()
                .map(|k| format!("{} in data", py_str(k)))
                .collect();
            writeln!(out, "    if {}:", test.join(" and ")).unwrap();
            writeln!(out, "        return {class}._parse(data, path)").unwrap();
            expected.push(format!("{class} ({})", keys.join(", ")));
        }
    }
    render_list(out, "expected", &expected);
    let arguments = [
        "path".to_owned(),
        py_str(&union.name),
        "data".to_owned(),
        "expected".to_owned(),
    ];
    render_call(out, 1, "raise _no_keys", &arguments, "");
}

// ---------------------------------------------------------------------------------------------
// Against real documents

/// Loads the documents with the committed module (by path: the package need not be built)
/// and checks the round trip, attribute access, forward compatibility and the errors.
const CHECK: &str = r#"
import copy, importlib.util, json, sys

spec = importlib.util.spec_from_file_location("_schema", sys.argv[1])
m = importlib.util.module_from_spec(spec)
sys.modules["_schema"] = m  # dataclasses look their module up
spec.loader.exec_module(m)

for path in sys.argv[2:4]:
    doc = json.load(open(path))
    report = m.Report.from_dict(doc)
    assert report.to_dict() == doc, path
    p50 = report.benchmarks[0].metrics.ttft_ms.successful.percentiles.p50
    assert type(p50) is float, p50

doc = json.load(open(sys.argv[2]))
report = m.Report.from_dict(doc)
assert isinstance(report.config.warmup, m.TransientRequests), report.config.warmup
assert report.benchmarks[0].strategy.kind == "concurrent"
assert report.benchmarks[0].goodput is not None

# A whole number where a float belongs is still a float.
whole = copy.deepcopy(doc)
whole["benchmarks"][0]["metrics"]["ttft_ms"]["successful"]["percentiles"]["p50"] = 7
p50 = m.Report.from_dict(whole).benchmarks[0].metrics.ttft_ms.successful.percentiles.p50
assert type(p50) is float and p50 == 7.0

# A newer document with added keys still loads, and round-trips them.
newer = copy.deepcopy(doc)
newer["added_later"] = {"x": 1}
newer["benchmarks"][0]["metrics"]["added_later"] = [1]
assert m.Report.from_dict(newer).to_dict() == newer

def error(d):
    try:
        m.Report.from_dict(d)
    except ValueError as e:
        return str(e)
    raise AssertionError("no error")

missing = copy.deepcopy(doc)
del missing["benchmarks"][0]["metrics"]["rates"]
e = error(missing)
assert "Report.benchmarks[0].metrics.rates" in e and "Metrics" in e, e
wrong = copy.deepcopy(doc)
wrong["benchmarks"][0]["index"] = "0"
e = error(wrong)
assert "Report.benchmarks[0].index" in e and "Benchmark" in e, e

events = [json.loads(line) for line in open(sys.argv[4])]
kinds = []
for event in events:
    parsed = m.progress_event_from_dict(event)
    assert parsed.to_dict() == event
    kinds.append(type(parsed).__name__)
assert set(kinds) == {"BenchmarkStartedEvent", "UpdateEvent", "BenchmarkFinishedEvent"}, kinds
finished = [e for e in map(m.progress_event_from_dict, events) if e.event == "benchmark_finished"]
assert type(finished[0].benchmark.metrics.ttft_ms.successful.percentiles.p50) is float

autotuner = json.load(open(sys.argv[5]))
metrics = m.AutotunerMetrics.from_dict(autotuner)
assert metrics.to_dict() == autotuner
assert type(metrics.raw_results[0].stats.ttft.p50) is float
print("python types ok")
"#;

/// The generated module loads a real report (and the committed sweep fixture), the progress
/// events and the autotuner object of a real run, and gives them back unchanged. The
/// benchmark lasts 1.5 s: the native engine sends its first `update` after a second.
#[test]
fn the_python_types_load_a_real_report_and_its_progress_events() {
    let Some(python) = crate::python_from_env() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (report, autotuner, events) = (
        dir.path().join("report.json"),
        dir.path().join("autotuner.json"),
        dir.path().join("progress.jsonl"),
    );
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "[target.mock]\nttft_ms = 2\nitl_ms = 0.5\n\
             [profile]\nkind = \"concurrent\"\nstreams = [2]\n\
             [constraints]\nmax_seconds = 1.5\n[warmup]\nrequests = 2\n\
             [data]\nkind = \"synthetic\"\nprompt_tokens = 8\noutput_tokens = 8\napproximate = true\n\
             [slo]\nttft_ms = 100\n\
             [[output]]\npath = {:?}\n[[output]]\npath = {:?}\nformat = \"autotuner\"\n",
            report.display().to_string(),
            autotuner.display().to_string()
        ),
    )
    .unwrap();
    let out = llm_bench([
        "run".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        "--no-progress".as_ref(),
        "--progress-json".as_ref(),
        events.as_os_str(),
    ]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let sweep = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/bench-report/fixtures/report-sweep.json");
    let output = Command::new(&python)
        .arg("-c")
        .arg(CHECK)
        .arg(module_path())
        .args([&report, &sweep, &events, &autotuner])
        .output()
        .unwrap_or_else(|e| panic!("cannot run LLM_BENCH_PYTHON={python}: {e}"));
    assert!(
        output.status.success()
            && String::from_utf8_lossy(&output.stdout).contains("python types ok"),
        "{python} cannot use the generated module on real documents:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
