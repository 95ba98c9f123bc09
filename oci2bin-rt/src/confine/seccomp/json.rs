//! Reading a [`Profile`] from JSON: serde_json parses into a small tree (one generic
//! visitor), which is then walked field by field.
//!
//! Not `#[derive(Deserialize)]`: the derived visitors of the five types cost 18 KB of every
//! runtime binary, this about a quarter of it, and the walk can say where a wrong value is
//! (`syscalls[3].args[0].op`) where serde only gives a line and column. serde_json still
//! does the JSON itself (escapes, numbers, syntax errors with line and column).
//!
//! As Go's decoder (which docker and podman use): unknown fields are ignored (`comment`,
//! `archMap`, `architectures`, `listenerMetadata`), `null` is an empty list, object or
//! absent value, and of a key given twice the last wins. Unlike Go, keys are case-sensitive.

use super::profile::{Action, Arg, CmpOp, Filter, Profile, SyscallRule};
use super::SeccompError;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// A JSON value, as far as profiles need one.
enum Json {
    Null,
    Bool,
    /// A non-negative integer.
    Num(u64),
    /// A negative or fractional number.
    OtherNum,
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Json, D::Error> {
        d.deserialize_any(TreeVisitor)
    }
}

struct TreeVisitor;

impl<'de> Visitor<'de> for TreeVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Json, E> {
        Ok(Json::Bool)
    }
    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Num(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(u64::try_from(v).map_or(Json::OtherNum, Json::Num))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Json, E> {
        Ok(Json::OtherNum)
    }
    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Arr(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(Json::Obj(entries))
    }
}

/// Parses `bytes` as a profile; errors name `origin` ("the seccomp profile FILE").
pub(crate) fn parse(bytes: &[u8], origin: &str) -> Result<Profile, SeccompError> {
    let tree: Json = serde_json::from_slice(bytes).map_err(|source| SeccompError::Parse {
        origin: origin.to_owned(),
        source,
    })?;
    profile(tree).map_err(|bad| {
        let mut field = String::new();
        for step in bad.path.iter().rev() {
            match step {
                Step::Key(key) if field.is_empty() => field.push_str(key),
                Step::Key(key) => {
                    field.push('.');
                    field.push_str(key);
                }
                Step::Index(i) => field.push_str(&format!("[{i}]")),
            }
        }
        SeccompError::Invalid {
            origin: origin.to_owned(),
            field: if field.is_empty() {
                "the top level".into()
            } else {
                field
            },
            problem: bad.problem,
        }
    })
}

/// One step of the path to a wrong value.
enum Step {
    Key(&'static str),
    Index(usize),
}

/// A wrong value: its path (innermost step first) and what is wrong.
struct Bad {
    path: Vec<Step>,
    problem: String,
}

type Walk<T> = Result<T, Bad>;

fn bad<T>(problem: impl Into<String>) -> Walk<T> {
    Err(Bad {
        path: Vec::new(),
        problem: problem.into(),
    })
}

/// Adds `step` to the path of an error from inside it.
fn at<T>(step: Step, walk: Walk<T>) -> Walk<T> {
    walk.map_err(|mut b| {
        b.path.push(step);
        b
    })
}

fn kind(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool => "a boolean",
        Json::Num(_) => "a number",
        Json::OtherNum => "a negative or fractional number",
        Json::Str(_) => "a string",
        Json::Arr(_) => "a list",
        Json::Obj(_) => "an object",
    }
}

fn object(value: Json) -> Walk<Vec<(String, Json)>> {
    match value {
        Json::Obj(entries) => Ok(entries),
        Json::Null => Ok(Vec::new()),
        other => bad(format!("expected an object, got {}", kind(&other))),
    }
}

fn list<T>(value: Json, item: fn(Json) -> Walk<T>) -> Walk<Vec<T>> {
    match value {
        Json::Arr(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| at(Step::Index(i), item(v)))
            .collect(),
        Json::Null => Ok(Vec::new()),
        other => bad(format!("expected a list, got {}", kind(&other))),
    }
}

fn optional<T>(value: Json, some: fn(Json) -> Walk<T>) -> Walk<Option<T>> {
    match value {
        Json::Null => Ok(None),
        value => some(value).map(Some),
    }
}

fn string(value: Json) -> Walk<String> {
    match value {
        Json::Str(s) => Ok(s),
        other => bad(format!("expected a string, got {}", kind(&other))),
    }
}

fn number(value: Json) -> Walk<u64> {
    match value {
        Json::Num(n) => Ok(n),
        other => bad(format!(
            "expected a non-negative integer, got {}",
            kind(&other)
        )),
    }
}

fn number_u32(value: Json) -> Walk<u32> {
    let n = number(value)?;
    u32::try_from(n).or_else(|_| bad(format!("{n} is too large")))
}

/// One of `names`' values, by its name.
fn named<T: Copy>(value: Json, names: &[(&'static str, T)], what: &str) -> Walk<T> {
    let name = string(value)?;
    match names.iter().find(|(n, _)| *n == name) {
        Some((_, v)) => Ok(*v),
        None => {
            let known: Vec<&str> = names.iter().map(|(n, _)| *n).collect();
            bad(format!(
                "unknown {what} {name:?}; use one of {}",
                known.join(", ")
            ))
        }
    }
}

fn action(value: Json) -> Walk<Action> {
    named(value, &Action::NAMES, "action")
}

fn required<T>(value: Option<T>, key: &'static str) -> Walk<T> {
    match value {
        Some(v) => Ok(v),
        None => bad(format!("\"{key}\" is missing")),
    }
}

fn profile(value: Json) -> Walk<Profile> {
    let mut default_action = None;
    let mut profile = Profile {
        default_action: Action::Allow,
        default_errno_ret: None,
        default_errno: None,
        flags: Vec::new(),
        listener_path: None,
        syscalls: Vec::new(),
    };
    for (key, value) in object(value)? {
        match key.as_str() {
            "defaultAction" => {
                default_action = at(Step::Key("defaultAction"), optional(value, action))?
            }
            "defaultErrnoRet" => {
                profile.default_errno_ret =
                    at(Step::Key("defaultErrnoRet"), optional(value, number_u32))?
            }
            "defaultErrno" => {
                profile.default_errno = at(Step::Key("defaultErrno"), optional(value, string))?
            }
            "flags" => profile.flags = at(Step::Key("flags"), list(value, string))?,
            "listenerPath" => {
                profile.listener_path = at(Step::Key("listenerPath"), optional(value, string))?
            }
            "syscalls" => profile.syscalls = at(Step::Key("syscalls"), list(value, rule))?,
            _ => {}
        }
    }
    profile.default_action = required(default_action, "defaultAction")?;
    Ok(profile)
}

fn rule(value: Json) -> Walk<SyscallRule> {
    let mut action = None;
    let mut rule = SyscallRule {
        names: Vec::new(),
        name: None,
        action: Action::Allow,
        errno_ret: None,
        errno: None,
        args: Vec::new(),
        includes: Filter::default(),
        excludes: Filter::default(),
    };
    for (key, value) in object(value)? {
        match key.as_str() {
            "names" => rule.names = at(Step::Key("names"), list(value, string))?,
            "name" => rule.name = at(Step::Key("name"), optional(value, string))?,
            "action" => action = at(Step::Key("action"), optional(value, self::action))?,
            "errnoRet" => rule.errno_ret = at(Step::Key("errnoRet"), optional(value, number_u32))?,
            "errno" => rule.errno = at(Step::Key("errno"), optional(value, string))?,
            "args" => rule.args = at(Step::Key("args"), list(value, arg))?,
            "includes" => rule.includes = at(Step::Key("includes"), filter(value))?,
            "excludes" => rule.excludes = at(Step::Key("excludes"), filter(value))?,
            _ => {}
        }
    }
    rule.action = required(action, "action")?;
    Ok(rule)
}

fn arg(value: Json) -> Walk<Arg> {
    let (mut index, mut arg_value, mut value_two, mut op) = (None, None, 0, None);
    for (key, value) in object(value)? {
        match key.as_str() {
            "index" => index = at(Step::Key("index"), optional(value, number_u32))?,
            "value" => arg_value = at(Step::Key("value"), optional(value, number))?,
            "valueTwo" => {
                value_two = at(Step::Key("valueTwo"), optional(value, number))?.unwrap_or(0)
            }
            "op" => {
                let op_of = |v| named(v, &CmpOp::NAMES, "operator");
                op = at(Step::Key("op"), optional(value, op_of))?
            }
            _ => {}
        }
    }
    Ok(Arg {
        // Go's zero values, as docker reads them.
        index: index.unwrap_or(0),
        value: arg_value.unwrap_or(0),
        value_two,
        op: required(op, "op")?,
    })
}

fn filter(value: Json) -> Walk<Filter> {
    let mut filter = Filter::default();
    for (key, value) in object(value)? {
        match key.as_str() {
            "caps" => filter.caps = at(Step::Key("caps"), list(value, string))?,
            "arches" => filter.arches = at(Step::Key("arches"), list(value, string))?,
            "minKernel" => filter.min_kernel = at(Step::Key("minKernel"), optional(value, string))?,
            _ => {}
        }
    }
    Ok(filter)
}
