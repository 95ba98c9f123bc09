//! Reading a [`Profile`] from JSON: a small pull parser walked field by field.
//!
//! Not serde: the derived visitors of the five types cost 18 KB of every runtime binary and
//! a tree built with serde_json about 16 KB, where this parser and walk are about 10 KB
//! (measured), allocate only what the profile keeps, and say where a wrong value is
//! (`syscalls[3].args[0].op`, with line and column). It is strict JSON (RFC 8259: escapes
//! with surrogate pairs, no trailing commas, no comments, UTF-8); tests compare what it
//! accepts with serde_json.
//!
//! As Go's decoder (which docker and podman use): unknown fields are ignored (`comment`,
//! `archMap`, `architectures`, `listenerMetadata`), `null` is an empty list or object or an
//! absent value, and of a key given twice the last wins. Unlike Go, keys are case-sensitive.

use super::compile::SyscallTable;
use super::profile::{Action, Arg, CmpOp, Filter, Profile, SyscallRule};
use super::SeccompError;
use std::borrow::Cow;

/// Where the parser is: its path from the top (for messages).
enum Step {
    /// An object's key, as the range of its text in the input.
    Key(usize, usize),
    /// A list's index.
    Index(usize),
}

/// A failure, at the parser's position and path.
struct Fail(String);

type Parsed<T> = Result<T, Fail>;

/// Nesting deeper than this (in skipped values) is refused rather than recursed into.
const MAX_DEPTH: usize = 64;

struct Parser<'a> {
    text: &'a str,
    pos: usize,
    path: Vec<Step>,
}

/// Parses `bytes` as a profile; errors name `origin` ("the seccomp profile FILE").
pub(crate) fn parse(bytes: &[u8], origin: &str) -> Result<Profile, SeccompError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let before = &bytes[..e.valid_up_to()];
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        SeccompError::Parse {
            origin: origin.to_owned(),
            line: 1 + before.iter().filter(|&&b| b == b'\n').count(),
            column: 1 + before.len() - line_start,
            field: "the text".to_owned(),
            problem: "it is not UTF-8".to_owned(),
        }
    })?;
    let mut p = Parser {
        text,
        pos: 0,
        path: Vec::new(),
    };
    let parsed = profile(&mut p).and_then(|profile| {
        p.ws();
        match p.pos == text.len() {
            true => Ok(profile),
            false => p.fail("unexpected text after the profile"),
        }
    });
    parsed.map_err(|Fail(problem)| {
        let before = &text[..p.pos.min(text.len())];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        SeccompError::Parse {
            origin: origin.to_owned(),
            line: 1 + before.matches('\n').count(),
            column: 1 + before[line_start..].chars().count(),
            field: p.path_text(),
            problem,
        }
    })
}

impl<'a> Parser<'a> {
    fn fail<T>(&self, problem: impl Into<String>) -> Parsed<T> {
        Err(Fail(problem.into()))
    }

    /// `syscalls[3].args[0].op`, or "the top level".
    fn path_text(&self) -> String {
        let mut out = String::new();
        for step in &self.path {
            match *step {
                Step::Key(start, end) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(&self.text[start..end]);
                }
                Step::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        if out.is_empty() {
            out.push_str("the top level");
        }
        out
    }

    fn ws(&mut self) {
        let rest = &self.text.as_bytes()[self.pos..];
        self.pos += rest
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
            .count();
    }

    /// The next byte after whitespace, not consumed.
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.text.as_bytes().get(self.pos).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        self.pos += usize::from(found);
        found
    }

    fn literal(&mut self, word: &str) -> bool {
        self.ws();
        let found = self.text[self.pos..].starts_with(word);
        if found {
            self.pos += word.len();
        }
        found
    }

    /// What the next value is, for "expected X, got Y".
    fn kind(&mut self) -> &'static str {
        let rest = &self.text[self.pos.min(self.text.len())..];
        match self.peek() {
            Some(b'"') => "a string",
            Some(b'{') => "an object",
            Some(b'[') => "a list",
            _ if rest.trim_start().starts_with("true")
                || rest.trim_start().starts_with("false") =>
            {
                "a boolean"
            }
            _ if rest.trim_start().starts_with("null") => "null",
            Some(b'-' | b'0'..=b'9') => "a number",
            Some(b'}') => "'}'",
            Some(b']') => "']'",
            Some(b',') => "','",
            Some(_) => "something that is not JSON",
            None => "the end of the text",
        }
    }

    fn expected<T>(&mut self, what: &str) -> Parsed<T> {
        let got = self.kind();
        self.fail(format!("expected {what}, got {got}"))
    }

    /// `null`, consumed; for the fields Go leaves at their zero value.
    fn null(&mut self) -> bool {
        self.literal("null")
    }

    /// A string; its text borrowed unless it has escapes. Also returns its raw range.
    fn string(&mut self) -> Parsed<(Cow<'a, str>, usize, usize)> {
        if !self.eat(b'"') {
            return self.expected("a string");
        }
        let start = self.pos;
        let bytes = self.text.as_bytes();
        let mut owned: Option<String> = None;
        let mut run = start;
        loop {
            let Some(&b) = bytes.get(self.pos) else {
                return self.fail("the string does not end");
            };
            match b {
                b'"' => {
                    let end = self.pos;
                    self.pos += 1;
                    let value = match owned {
                        None => Cow::Borrowed(&self.text[start..end]),
                        Some(mut s) => {
                            s.push_str(&self.text[run..end]);
                            Cow::Owned(s)
                        }
                    };
                    return Ok((value, start, end));
                }
                b'\\' => {
                    let s = owned.get_or_insert_with(String::new);
                    s.push_str(&self.text[run..self.pos]);
                    let escape = bytes.get(self.pos + 1).copied();
                    self.pos += 2;
                    let c = match escape {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => self.unicode_escape()?,
                        _ => {
                            self.pos -= 2;
                            return self.fail("invalid escape in a string");
                        }
                    };
                    s.push(c);
                    run = self.pos;
                }
                0..=0x1f => return self.fail("control character in a string (escape it)"),
                _ => self.pos += 1,
            }
        }
    }

    /// The `XXXX` of `\uXXXX` (at `pos`), and a low surrogate's `\uXXXX` after a high one.
    fn unicode_escape(&mut self) -> Parsed<char> {
        let hex = |p: &mut Self| -> Parsed<u32> {
            let digits = p
                .text
                .get(p.pos..p.pos + 4)
                .filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()));
            match digits {
                Some(d) => {
                    p.pos += 4;
                    Ok(u32::from_str_radix(d, 16).unwrap_or(0))
                }
                None => p.fail("\\u needs four hex digits"),
            }
        };
        let first = hex(self)?;
        let code = match first {
            0xd800..=0xdbff => {
                if !self.text[self.pos..].starts_with("\\u") {
                    return self.fail("a high surrogate escape without its low surrogate");
                }
                self.pos += 2;
                let second = hex(self)?;
                if !(0xdc00..=0xdfff).contains(&second) {
                    return self.fail("a high surrogate escape without its low surrogate");
                }
                0x10000 + ((first - 0xd800) << 10) + (second - 0xdc00)
            }
            0xdc00..=0xdfff => {
                return self.fail("a low surrogate escape without its high surrogate")
            }
            c => c,
        };
        char::from_u32(code).map_or_else(|| self.fail("invalid \\u escape"), Ok)
    }

    /// A number, validated as JSON; `Some` if it is a non-negative integer that fits u64.
    fn number(&mut self) -> Parsed<Option<u64>> {
        self.ws();
        let bytes = self.text.as_bytes();
        let start = self.pos;
        let digits = |p: &mut Self| {
            let n = bytes[p.pos..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            p.pos += n;
            n
        };
        let negative = bytes.get(self.pos) == Some(&b'-');
        self.pos += usize::from(negative);
        let int_start = self.pos;
        let int_len = digits(self);
        if int_len == 0 || (int_len > 1 && bytes[int_start] == b'0') {
            self.pos = start;
            return self.fail("invalid number");
        }
        let mut plain = !negative;
        if bytes.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            plain = false;
            if digits(self) == 0 {
                return self.fail("invalid number");
            }
        }
        if matches!(bytes.get(self.pos), Some(b'e' | b'E')) {
            self.pos += 1;
            plain = false;
            if matches!(bytes.get(self.pos), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if digits(self) == 0 {
                return self.fail("invalid number");
            }
        }
        Ok(match plain {
            true => self.text[int_start..self.pos].parse().ok(),
            false => None,
        })
    }

    /// Any value, skipped (an unknown field).
    fn skip(&mut self, depth: usize) -> Parsed<()> {
        if depth > MAX_DEPTH {
            return self.fail("nested too deeply");
        }
        match self.peek() {
            Some(b'"') => self.string().map(drop),
            Some(b'{') => self.object(&mut |p, _| p.skip(depth + 1)),
            Some(b'[') => self.list(&mut |p| p.skip(depth + 1)),
            Some(b'-' | b'0'..=b'9') => self.number().map(drop),
            _ if self.literal("true") || self.literal("false") || self.null() => Ok(()),
            _ => self.expected("a JSON value"),
        }
    }

    /// An object (or `null`): `field` is called with each key, positioned at its value,
    /// which it must consume.
    fn object(&mut self, field: &mut dyn FnMut(&mut Self, &str) -> Parsed<()>) -> Parsed<()> {
        if self.null() {
            return Ok(());
        }
        if !self.eat(b'{') {
            return self.expected("an object");
        }
        if self.eat(b'}') {
            return Ok(());
        }
        loop {
            let (key, start, end) = self.string()?;
            if !self.eat(b':') {
                return self.fail("expected ':' after the key");
            }
            self.path.push(Step::Key(start, end));
            field(self, &key)?;
            self.path.pop();
            if self.eat(b'}') {
                return Ok(());
            }
            if !self.eat(b',') {
                return self.fail("expected ',' or '}'");
            }
        }
    }

    /// A list (or `null`): `item` is called positioned at each value.
    fn list(&mut self, item: &mut dyn FnMut(&mut Self) -> Parsed<()>) -> Parsed<()> {
        if self.null() {
            return Ok(());
        }
        if !self.eat(b'[') {
            return self.expected("a list");
        }
        if self.eat(b']') {
            return Ok(());
        }
        for i in 0.. {
            self.path.push(Step::Index(i));
            item(self)?;
            self.path.pop();
            if self.eat(b']') {
                break;
            }
            if !self.eat(b',') {
                return self.fail("expected ',' or ']'");
            }
        }
        Ok(())
    }

    fn owned_string(&mut self) -> Parsed<String> {
        Ok(self.string()?.0.into_owned())
    }

    /// A string or `null` (absent).
    fn optional_string(&mut self) -> Parsed<Option<String>> {
        match self.null() {
            true => Ok(None),
            false => self.owned_string().map(Some),
        }
    }

    /// A list of syscall names (`null`: none), each borrowed from the syscall table when it
    /// has it.
    fn syscall_names(&mut self) -> Parsed<Vec<Cow<'static, str>>> {
        let table = SyscallTable::host();
        let mut out = Vec::with_capacity(self.items());
        self.list(&mut |p| {
            let (name, _, _) = p.string()?;
            out.push(match table.and_then(|t| t.interned(&name)) {
                Some(known) => Cow::Borrowed(known),
                None => Cow::Owned(name.into_owned()),
            });
            Ok(())
        })?;
        Ok(out)
    }

    /// How many items the list here has, at most (its commas, plus one), for one allocation
    /// instead of a vector growing through musl's size classes.
    fn items(&mut self) -> usize {
        self.ws();
        let bytes = &self.text.as_bytes()[self.pos..];
        let (mut depth, mut count, mut in_string, mut escaped) = (0usize, 1, false, false);
        for &b in bytes {
            match b {
                _ if escaped => escaped = false,
                b'\\' if in_string => escaped = true,
                b'"' => in_string = !in_string,
                _ if in_string => {}
                b'[' | b'{' => depth += 1,
                b']' | b'}' if depth <= 1 => break,
                b']' | b'}' => depth -= 1,
                b',' if depth == 1 => count += 1,
                _ => {}
            }
        }
        count.min(4096)
    }

    /// A list of strings (`null`: none).
    fn strings(&mut self) -> Parsed<Vec<String>> {
        let mut out = Vec::new();
        self.list(&mut |p| {
            out.push(p.owned_string()?);
            Ok(())
        })?;
        Ok(out)
    }

    /// A non-negative integer up to `max`, or `null` (absent).
    fn integer(&mut self, max: u64) -> Parsed<Option<u64>> {
        if self.null() {
            return Ok(None);
        }
        if !matches!(self.peek(), Some(b'-' | b'0'..=b'9')) {
            return self.expected("a non-negative integer");
        }
        let start = self.pos;
        match self.number()? {
            Some(n) if n <= max => Ok(Some(n)),
            _ => {
                let text = &self.text[start..self.pos];
                self.pos = start;
                self.fail(format!("{text} is not an integer from 0 to {max}"))
            }
        }
    }

    /// One of `names` (by position), or `null` (absent).
    fn name_of(&mut self, names: &[&str], what: &str) -> Parsed<Option<usize>> {
        if self.null() {
            return Ok(None);
        }
        let start = self.pos;
        let (name, _, _) = self.string()?;
        match names.iter().position(|n| *n == name) {
            Some(i) => Ok(Some(i)),
            None => {
                self.pos = start;
                self.fail(format!(
                    "unknown {what} {name:?}; use one of {}",
                    names.join(", ")
                ))
            }
        }
    }

    fn action(&mut self) -> Parsed<Option<Action>> {
        let names = Action::NAMES.map(|(n, _)| n);
        Ok(self.name_of(&names, "action")?.map(|i| Action::NAMES[i].1))
    }

    /// A field that must be there; `key` says which.
    fn required<T>(&self, value: Option<T>, key: &str) -> Parsed<T> {
        value.map_or_else(|| self.fail(format!("\"{key}\" is missing")), Ok)
    }
}

fn profile(p: &mut Parser) -> Parsed<Profile> {
    if p.peek() != Some(b'{') {
        return p.expected(
            "an object (docker's seccomp profile format: {\"defaultAction\": \"SCMP_ACT_...\", \
             \"syscalls\": [{\"names\": [...], \"action\": \"SCMP_ACT_...\"}]})",
        );
    }
    let mut action = None;
    let mut profile = Profile {
        default_action: Action::Allow,
        default_errno_ret: None,
        default_errno: None,
        flags: Vec::new(),
        listener_path: None,
        syscalls: Vec::new(),
    };
    p.object(&mut |p, key| {
        match key {
            "defaultAction" => action = p.action()?,
            "defaultErrnoRet" => {
                profile.default_errno_ret = p.integer(u32::MAX.into())?.map(|n| n as u32)
            }
            "defaultErrno" => profile.default_errno = p.optional_string()?,
            "flags" => profile.flags = p.strings()?,
            "listenerPath" => profile.listener_path = p.optional_string()?,
            "syscalls" => {
                profile.syscalls.clear();
                p.list(&mut |p| {
                    profile.syscalls.push(rule(p)?);
                    Ok(())
                })?
            }
            _ => p.skip(0)?,
        }
        Ok(())
    })?;
    if action.is_none() {
        p.pos = 0;
    }
    profile.default_action = p.required(action, "defaultAction")?;
    Ok(profile)
}

fn rule(p: &mut Parser) -> Parsed<SyscallRule> {
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
    let start = p.pos;
    p.object(&mut |p, key| {
        match key {
            "names" => rule.names = p.syscall_names()?,
            "name" => rule.name = p.optional_string()?.map(Cow::Owned),
            "action" => action = p.action()?,
            "errnoRet" => rule.errno_ret = p.integer(u32::MAX.into())?.map(|n| n as u32),
            "errno" => rule.errno = p.optional_string()?,
            "args" => {
                rule.args.clear();
                p.list(&mut |p| {
                    rule.args.push(arg(p)?);
                    Ok(())
                })?
            }
            "includes" => rule.includes = filter(p)?,
            "excludes" => rule.excludes = filter(p)?,
            _ => p.skip(0)?,
        }
        Ok(())
    })?;
    if action.is_none() {
        p.pos = start;
    }
    rule.action = p.required(action, "action")?;
    Ok(rule)
}

fn arg(p: &mut Parser) -> Parsed<Arg> {
    let (mut index, mut value, mut value_two, mut op) = (None, None, None, None);
    let start = p.pos;
    p.object(&mut |p, key| {
        match key {
            "index" => index = p.integer(u32::MAX.into())?,
            "value" => value = p.integer(u64::MAX)?,
            "valueTwo" => value_two = p.integer(u64::MAX)?,
            "op" => {
                let names = CmpOp::NAMES.map(|(n, _)| n);
                op = p.name_of(&names, "operator")?.map(|i| CmpOp::NAMES[i].1);
            }
            _ => p.skip(0)?,
        }
        Ok(())
    })?;
    if op.is_none() {
        p.pos = start;
    }
    Ok(Arg {
        // Go's zero values, as docker reads them.
        index: index.unwrap_or(0) as u32,
        value: value.unwrap_or(0),
        value_two: value_two.unwrap_or(0),
        op: p.required(op, "op")?,
    })
}

fn filter(p: &mut Parser) -> Parsed<Filter> {
    let mut filter = Filter::default();
    p.object(&mut |p, key| {
        match key {
            "caps" => filter.caps = p.strings()?,
            "arches" => filter.arches = p.strings()?,
            "minKernel" => filter.min_kernel = p.optional_string()?,
            _ => p.skip(0)?,
        }
        Ok(())
    })?;
    Ok(filter)
}
