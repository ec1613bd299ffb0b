//! From the parser's commands to a [`Script`]: every command and test
//! is checked against what it takes (RFC 5228 and the extensions in
//! [`EXTENSIONS`]), an extension's commands, tests and tags only where
//! it was required, as Pigeonhole's `sievec` checks them. Errors name
//! the line, for ManageSieve's PUTSCRIPT.

use super::lexer::Error;
use super::parser::{self, Arg, Command};
use super::script::*;
use super::strings;

/// Compiles a script's text.
pub fn compile(text: &str) -> Result<Script, Error> {
    let commands = parser::parse(text)?;
    let mut c = Compiler {
        required: Vec::new(),
        size: text.len(),
    };
    let commands = c.block(&commands, true)?;
    Ok(Script {
        commands,
        variables: c.has("variables"),
        body: c.has("body"),
        size: c.size + std::mem::size_of::<Script>(),
    })
}

struct Compiler {
    required: Vec<&'static str>,
    size: usize,
}

/// What a tag takes after it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Takes {
    Nothing,
    Text,
    List,
    Number,
}

/// A command's or test's arguments, tags sorted out.
struct Args {
    tags: Vec<(String, Option<Arg>)>,
    positional: Vec<Arg>,
    line: usize,
    what: String,
}

impl Args {
    fn tag(&self, name: &str) -> bool {
        self.tags.iter().any(|(t, _)| t == name)
    }

    fn value(&self, name: &str) -> Option<&Arg> {
        self.tags
            .iter()
            .find(|(t, _)| t == name)
            .and_then(|(_, v)| v.as_ref())
    }

    fn err(&self, what: impl std::fmt::Display) -> Error {
        Error::new(self.line, format!("{}: {what}", self.what))
    }

    /// Exactly these positional kinds, in order.
    fn expect(&self, kinds: &[Takes]) -> Result<(), Error> {
        if self.positional.len() != kinds.len() {
            return Err(self.err(format!(
                "takes {} positional argument(s), got {}",
                kinds.len(),
                self.positional.len()
            )));
        }
        for (arg, kind) in self.positional.iter().zip(kinds) {
            let fits = matches!(
                (arg, kind),
                (Arg::String(_), Takes::Text | Takes::List)
                    | (Arg::Strings(_), Takes::List)
                    | (Arg::Number(_), Takes::Number)
            );
            if !fits {
                return Err(self.err("an argument is of the wrong type"));
            }
        }
        Ok(())
    }

    fn text(&self, i: usize) -> String {
        match &self.positional[i] {
            Arg::String(s) => s.clone(),
            _ => String::new(),
        }
    }

    fn list(&self, i: usize) -> Vec<String> {
        list_of(&self.positional[i])
    }
}

fn list_of(arg: &Arg) -> Vec<String> {
    match arg {
        Arg::String(s) => vec![s.clone()],
        Arg::Strings(v) => v.clone(),
        _ => Vec::new(),
    }
}

fn text_of(arg: Option<&Arg>) -> Option<String> {
    match arg {
        Some(Arg::String(s)) => Some(s.clone()),
        _ => None,
    }
}

const MATCH_TAGS: [&str; 3] = ["is", "contains", "matches"];
const PART_TAGS: [&str; 5] = ["all", "localpart", "domain", "user", "detail"];

/// What the tags of a test that compares take: the match types and
/// comparator, and `extra`.
fn match_spec(
    extra: &'static [(&'static str, Takes)],
) -> impl Fn(&str) -> Option<Takes> {
    move |tag: &str| -> Option<Takes> {
        if MATCH_TAGS.contains(&tag) {
            return Some(Takes::Nothing);
        }
        match tag {
            "comparator" | "count" | "value" => Some(Takes::Text),
            _ => extra.iter().find(|(n, _)| *n == tag).map(|(_, k)| *k),
        }
    }
}

const PARTS: [(&str, Takes); 5] = [
    ("all", Takes::Nothing),
    ("localpart", Takes::Nothing),
    ("domain", Takes::Nothing),
    ("user", Takes::Nothing),
    ("detail", Takes::Nothing),
];
const INDEX: [(&str, Takes); 2] =
    [("index", Takes::Number), ("last", Takes::Nothing)];
const ADDRESS: [(&str, Takes); 7] = [
    ("all", Takes::Nothing),
    ("localpart", Takes::Nothing),
    ("domain", Takes::Nothing),
    ("user", Takes::Nothing),
    ("detail", Takes::Nothing),
    ("index", Takes::Number),
    ("last", Takes::Nothing),
];
const DATE: [(&str, Takes); 4] = [
    ("zone", Takes::Text),
    ("originalzone", Takes::Nothing),
    ("index", Takes::Number),
    ("last", Takes::Nothing),
];

impl Compiler {
    fn has(&self, ext: &str) -> bool {
        self.required.contains(&ext)
    }

    fn need(&self, ext: &str, args: &Args) -> Result<(), Error> {
        match self.has(ext) {
            true => Ok(()),
            false => Err(args.err(format!("needs require \"{ext}\""))),
        }
    }

    /// Sorts tags from positional arguments: `spec` says what a tag
    /// takes (None: no such tag here).
    fn args(
        &mut self,
        what: &str,
        line: usize,
        raw: &[Arg],
        spec: &dyn Fn(&str) -> Option<Takes>,
    ) -> Result<Args, Error> {
        let mut out = Args {
            tags: Vec::new(),
            positional: Vec::new(),
            line,
            what: what.to_string(),
        };
        let mut it = raw.iter().peekable();
        while let Some(arg) = it.next() {
            let Arg::Tag(tag) = arg else {
                out.positional.push(self.decoded(arg, line)?);
                continue;
            };
            if !out.positional.is_empty() {
                return Err(
                    out.err(format!(":{tag} after positional arguments"))
                );
            }
            let takes = spec(tag)
                .ok_or_else(|| out.err(format!("unknown tag :{tag}")))?;
            if out.tag(tag) {
                return Err(out.err(format!(":{tag} given twice")));
            }
            let value = match takes {
                Takes::Nothing => None,
                _ => {
                    let v = it.next().ok_or_else(|| {
                        out.err(format!(":{tag} wants a value"))
                    })?;
                    let ok = matches!(
                        (v, takes),
                        (Arg::String(_), Takes::Text | Takes::List)
                            | (Arg::Strings(_), Takes::List)
                            | (Arg::Number(_), Takes::Number)
                    );
                    if !ok {
                        return Err(
                            out.err(format!(":{tag} wants another type"))
                        );
                    }
                    Some(self.decoded(v, line)?)
                }
            };
            out.tags.push((tag.clone(), value));
        }
        Ok(out)
    }

    /// An argument with `encoded-character` undone, where required.
    fn decoded(&mut self, arg: &Arg, line: usize) -> Result<Arg, Error> {
        let each = |s: &String| -> Result<String, String> {
            match self.has("encoded-character") {
                true => strings::decode_encoded(s),
                false => Ok(s.clone()),
            }
        };
        let arg = match arg {
            Arg::String(s) => {
                Arg::String(each(s).map_err(|e| Error::new(line, e))?)
            }
            Arg::Strings(v) => Arg::Strings(
                v.iter()
                    .map(each)
                    .collect::<Result<_, _>>()
                    .map_err(|e| Error::new(line, e))?,
            ),
            other => other.clone(),
        };
        if let Arg::String(s) = &arg {
            self.size += s.len() + 24;
        }
        if let Arg::Strings(v) = &arg {
            self.size += v.iter().map(|s| s.len() + 24).sum::<usize>();
        }
        Ok(arg)
    }

    fn block(
        &mut self,
        cmds: &[Command],
        top: bool,
    ) -> Result<Vec<Cmd>, Error> {
        let mut out = Vec::new();
        let mut requires_allowed = top;
        let mut i = 0;
        while i < cmds.len() {
            let c = &cmds[i];
            self.size += std::mem::size_of::<Cmd>();
            if c.name == "require" {
                if !requires_allowed {
                    return Err(Error::new(
                        c.line,
                        "require: only at the start of a script",
                    ));
                }
                self.require(c)?;
                i += 1;
                continue;
            }
            requires_allowed = false;
            if c.name == "if" {
                let (cmd, used) = self.if_chain(&cmds[i..])?;
                out.push(cmd);
                i += used;
                continue;
            }
            if c.name == "elsif" || c.name == "else" {
                return Err(Error::new(
                    c.line,
                    format!("{}: without an if before it", c.name),
                ));
            }
            if c.block.is_some() {
                return Err(Error::new(
                    c.line,
                    format!("{}: takes no block", c.name),
                ));
            }
            if !c.tests.is_empty() {
                return Err(Error::new(
                    c.line,
                    format!("{}: takes no test", c.name),
                ));
            }
            out.push(self.command(c)?);
            i += 1;
        }
        Ok(out)
    }

    fn require(&mut self, c: &Command) -> Result<(), Error> {
        let args = self.args("require", c.line, &c.args, &|_| None)?;
        args.expect(&[Takes::List])?;
        if c.block.is_some() || !c.tests.is_empty() {
            return Err(args.err("takes a list of names only"));
        }
        for name in args.list(0) {
            let Some(ext) = EXTENSIONS.iter().find(|e| **e == name) else {
                return Err(args.err(format!(
                    "unknown extension \"{}\"",
                    strings::shown(&name)
                )));
            };
            let implied: &[&'static str] = match *ext {
                "vacation-seconds" => &["vacation"],
                "spamtestplus" => &["spamtest"],
                _ => &[],
            };
            for e in std::iter::once(ext).chain(implied) {
                if !self.required.contains(e) {
                    self.required.push(e);
                }
            }
        }
        Ok(())
    }

    /// `if` and the `elsif`s and `else` after it; how many it used.
    fn if_chain(&mut self, cmds: &[Command]) -> Result<(Cmd, usize), Error> {
        let mut arms = Vec::new();
        let mut otherwise = None;
        let mut used = 0;
        for c in cmds {
            let first = used == 0;
            match c.name.as_str() {
                "if" if first => {}
                "elsif" if !first => {}
                "else" if !first => {}
                _ => break,
            }
            used += 1;
            let Some(block) = &c.block else {
                return Err(Error::new(
                    c.line,
                    format!("{}: wants a block", c.name),
                ));
            };
            if !c.args.is_empty() {
                return Err(Error::new(
                    c.line,
                    format!("{}: takes no arguments", c.name),
                ));
            }
            let inner = self.block(block, false)?;
            if c.name == "else" {
                if !c.tests.is_empty() {
                    return Err(Error::new(c.line, "else: takes no test"));
                }
                otherwise = Some(inner);
                break;
            }
            if c.tests.len() != 1 {
                return Err(Error::new(
                    c.line,
                    format!("{}: wants one test", c.name),
                ));
            }
            arms.push((self.test(&c.tests[0])?, inner));
        }
        Ok((Cmd::If(arms, otherwise), used))
    }

    fn command(&mut self, c: &Command) -> Result<Cmd, Error> {
        let name = c.name.as_str();
        let line = c.line;
        let plain = |s: &mut Self| s.args(name, line, &c.args, &|_| None);
        Ok(match name {
            "stop" | "discard" => {
                plain(self)?.expect(&[])?;
                match name {
                    "stop" => Cmd::Stop,
                    _ => Cmd::Discard,
                }
            }
            "keep" => {
                let a = self.args(name, line, &c.args, &|t| {
                    (t == "flags").then_some(Takes::List)
                })?;
                a.expect(&[])?;
                if a.tag("flags") {
                    self.need("imap4flags", &a)?;
                }
                Cmd::Keep {
                    flags: a.value("flags").map(list_of),
                }
            }
            "fileinto" => {
                let a = self.args(name, line, &c.args, &|t| match t {
                    "copy" | "create" => Some(Takes::Nothing),
                    "flags" => Some(Takes::List),
                    _ => None,
                })?;
                self.need("fileinto", &a)?;
                a.expect(&[Takes::Text])?;
                for (tag, ext) in [
                    ("copy", "copy"),
                    ("create", "mailbox"),
                    ("flags", "imap4flags"),
                ] {
                    if a.tag(tag) {
                        self.need(ext, &a)?;
                    }
                }
                Cmd::FileInto {
                    folder: a.text(0),
                    copy: a.tag("copy"),
                    create: a.tag("create"),
                    flags: a.value("flags").map(list_of),
                }
            }
            "redirect" => {
                let a = self.args(name, line, &c.args, &|t| {
                    (t == "copy").then_some(Takes::Nothing)
                })?;
                a.expect(&[Takes::Text])?;
                if a.tag("copy") {
                    self.need("copy", &a)?;
                }
                let to = a.text(0);
                if !strings::has_variables(&to, self.has("variables"))
                    && !strings::valid_address(&to)
                {
                    return Err(a.err(format!(
                        "\"{}\" is not an address",
                        strings::shown(&to)
                    )));
                }
                Cmd::Redirect {
                    to,
                    copy: a.tag("copy"),
                }
            }
            "reject" | "ereject" => {
                let a = plain(self)?;
                self.need(name, &a)?;
                a.expect(&[Takes::Text])?;
                Cmd::Reject {
                    reason: a.text(0),
                    extended: name == "ereject",
                }
            }
            "vacation" => self.vacation(c)?,
            "setflag" | "addflag" | "removeflag" => {
                let a = plain(self)?;
                self.need("imap4flags", &a)?;
                let variable = match a.positional.len() {
                    2 => {
                        a.expect(&[Takes::Text, Takes::List])?;
                        let v = a.text(0);
                        self.need("variables", &a)?;
                        if !strings::valid_name(&v) {
                            return Err(a.err(format!(
                                "bad variable name \"{}\"",
                                strings::shown(&v)
                            )));
                        }
                        Some(v)
                    }
                    _ => {
                        a.expect(&[Takes::List])?;
                        None
                    }
                };
                let op = match name {
                    "setflag" => FlagOp::Set,
                    "addflag" => FlagOp::Add,
                    _ => FlagOp::Remove,
                };
                Cmd::Flags {
                    op,
                    variable,
                    flags: a.list(a.positional.len() - 1),
                }
            }
            "set" => self.set_command(c)?,
            _ => {
                return Err(Error::new(
                    line,
                    format!("unknown command '{}'", strings::shown(name)),
                ));
            }
        })
    }

    fn set_command(&mut self, c: &Command) -> Result<Cmd, Error> {
        let (name, line) = (c.name.as_str(), c.line);
        Ok({
            let a = self.args(name, line, &c.args, &|t| {
                strings::modifier(t).map(|_| Takes::Nothing)
            })?;
            self.need("variables", &a)?;
            a.expect(&[Takes::Text, Takes::Text])?;
            let name = a.text(0);
            if !strings::valid_name(&name) || name.contains('.') {
                return Err(a.err(format!(
                    "bad variable name \"{}\"",
                    strings::shown(&name)
                )));
            }
            let mut modifiers: Vec<Modifier> = a
                .tags
                .iter()
                .filter_map(|(t, _)| strings::modifier(t))
                .collect();
            modifiers.sort();
            // Two of one precedence (RFC 5229 §4.1) cannot be both.
            for pair in [
                [Modifier::Lower, Modifier::Upper],
                [Modifier::LowerFirst, Modifier::UpperFirst],
            ] {
                if pair.iter().all(|m| modifiers.contains(m)) {
                    return Err(a.err("two modifiers of one precedence"));
                }
            }
            Cmd::Set {
                name: name.to_ascii_lowercase(),
                value: a.text(1),
                modifiers,
            }
        })
    }

    fn vacation(&mut self, c: &Command) -> Result<Cmd, Error> {
        let a = self.args("vacation", c.line, &c.args, &|t| match t {
            "days" | "seconds" => Some(Takes::Number),
            "subject" | "from" | "handle" => Some(Takes::Text),
            "addresses" => Some(Takes::List),
            "mime" => Some(Takes::Nothing),
            _ => None,
        })?;
        self.need("vacation", &a)?;
        a.expect(&[Takes::Text])?;
        if a.tag("seconds") {
            self.need("vacation-seconds", &a)?;
        }
        if a.tag("days") && a.tag("seconds") {
            return Err(a.err(":days and :seconds together"));
        }
        let number = |t: &str| match a.value(t) {
            Some(Arg::Number(n)) => Some(*n),
            _ => None,
        };
        let period = number("days")
            .map(|d| d.saturating_mul(86_400))
            .or_else(|| number("seconds"));
        let from = text_of(a.value("from"));
        if let Some(f) = &from
            && !strings::has_variables(f, self.has("variables"))
            && !strings::valid_from(f)
        {
            return Err(a.err(format!(
                ":from \"{}\" is not an address",
                strings::shown(f)
            )));
        }
        Ok(Cmd::Vacation(Box::new(Vacation {
            period,
            subject: text_of(a.value("subject")),
            from,
            addresses: a.value("addresses").map(list_of).unwrap_or_default(),
            mime: a.tag("mime"),
            handle: text_of(a.value("handle")),
            reason: a.text(0),
        })))
    }

    /// The comparator and match type a test's tags give.
    fn matching(&self, a: &Args) -> Result<Match, Error> {
        let mut how = Match::default();
        let kinds: Vec<&String> = a
            .tags
            .iter()
            .map(|(t, _)| t)
            .filter(|t| {
                MATCH_TAGS.contains(&t.as_str())
                    || *t == "count"
                    || *t == "value"
            })
            .collect();
        if kinds.len() > 1 {
            return Err(a.err("more than one match type"));
        }
        if let Some(kind) = kinds.first() {
            how.kind = match kind.as_str() {
                "is" => MatchKind::Is,
                "contains" => MatchKind::Contains,
                "matches" => MatchKind::Matches,
                rel => {
                    self.need("relational", a)?;
                    let name = text_of(a.value(rel)).unwrap_or_default();
                    let r = Relation::of(&name).ok_or_else(|| {
                        a.err(format!(
                            "unknown relation \"{}\"",
                            strings::shown(&name)
                        ))
                    })?;
                    match rel {
                        "count" => MatchKind::Count(r),
                        _ => MatchKind::Value(r),
                    }
                }
            };
        }
        if let Some(name) = a.value("comparator") {
            let name = text_of(Some(name)).unwrap_or_default();
            how.comparator = match name.as_str() {
                "i;octet" => Comparator::Octet,
                "i;ascii-casemap" => Comparator::AsciiCasemap,
                "i;ascii-numeric" => {
                    self.need("comparator-i;ascii-numeric", a)?;
                    Comparator::AsciiNumeric
                }
                other => {
                    return Err(a.err(format!(
                        "unknown comparator \"{}\"",
                        strings::shown(other)
                    )));
                }
            };
        }
        if how.comparator == Comparator::AsciiNumeric
            && matches!(how.kind, MatchKind::Contains | MatchKind::Matches)
        {
            return Err(a.err("i;ascii-numeric compares whole values only"));
        }
        Ok(how)
    }

    fn part(&self, a: &Args) -> Result<Part, Error> {
        let parts: Vec<&str> = a
            .tags
            .iter()
            .map(|(t, _)| t.as_str())
            .filter(|t| PART_TAGS.contains(t))
            .collect();
        if parts.len() > 1 {
            return Err(a.err("more than one address part"));
        }
        Ok(match parts.first().copied() {
            None | Some("all") => Part::All,
            Some("localpart") => Part::LocalPart,
            Some("domain") => Part::Domain,
            Some(p) => {
                self.need("subaddress", a)?;
                match p {
                    "user" => Part::User,
                    _ => Part::Detail,
                }
            }
        })
    }

    fn index(&self, a: &Args) -> Result<Option<Index>, Error> {
        if a.tag("last") && !a.tag("index") {
            return Err(a.err(":last without :index"));
        }
        match a.value("index") {
            Some(Arg::Number(n)) => {
                self.need("index", a)?;
                if *n == 0 {
                    return Err(a.err(":index counts from 1"));
                }
                Ok(Some(Index {
                    n: *n,
                    last: a.tag("last"),
                }))
            }
            _ => Ok(None),
        }
    }

    fn test(&mut self, t: &parser::Test) -> Result<Test, Error> {
        self.size += std::mem::size_of::<Test>();
        let name = t.name.as_str();
        if !matches!(name, "not" | "allof" | "anyof") && !t.tests.is_empty() {
            return Err(Error::new(t.line, format!("{name}: takes no test")));
        }
        Ok(match name {
            "true" | "false" => {
                self.args(name, t.line, &t.args, &|_| None)?.expect(&[])?;
                match name {
                    "true" => Test::True,
                    _ => Test::False,
                }
            }
            "not" => {
                self.args(name, t.line, &t.args, &|_| None)?.expect(&[])?;
                if t.tests.len() != 1 {
                    return Err(Error::new(t.line, "not: wants one test"));
                }
                Test::Not(Box::new(self.test(&t.tests[0])?))
            }
            "allof" | "anyof" => {
                self.args(name, t.line, &t.args, &|_| None)?.expect(&[])?;
                if t.tests.is_empty() {
                    return Err(Error::new(
                        t.line,
                        format!("{name}: wants a list of tests"),
                    ));
                }
                let tests = t
                    .tests
                    .iter()
                    .map(|x| self.test(x))
                    .collect::<Result<_, _>>()?;
                match name {
                    "allof" => Test::AllOf(tests),
                    _ => Test::AnyOf(tests),
                }
            }
            "exists" => {
                let a = self.args(name, t.line, &t.args, &|_| None)?;
                a.expect(&[Takes::List])?;
                Test::Exists(a.list(0))
            }
            "size" => {
                let a = self.args(name, t.line, &t.args, &|t| {
                    matches!(t, "over" | "under").then_some(Takes::Nothing)
                })?;
                a.expect(&[Takes::Number])?;
                if a.tags.len() != 1 {
                    return Err(a.err("wants :over or :under"));
                }
                let limit = match a.positional[0] {
                    Arg::Number(n) => n,
                    _ => 0, // expect() saw a number
                };
                Test::Size {
                    over: a.tag("over"),
                    limit,
                }
            }
            "header" => {
                let a =
                    self.args(name, t.line, &t.args, &match_spec(&INDEX))?;
                a.expect(&[Takes::List, Takes::List])?;
                Test::Header {
                    how: self.matching(&a)?,
                    index: self.index(&a)?,
                    names: a.list(0),
                    keys: a.list(1),
                }
            }
            "address" => {
                let a =
                    self.args(name, t.line, &t.args, &match_spec(&ADDRESS))?;
                a.expect(&[Takes::List, Takes::List])?;
                Test::Address {
                    how: self.matching(&a)?,
                    part: self.part(&a)?,
                    index: self.index(&a)?,
                    names: a.list(0),
                    keys: a.list(1),
                }
            }
            "envelope" => self.envelope_test(t)?,
            "string" => {
                let a = self.args(name, t.line, &t.args, &match_spec(&[]))?;
                self.need("variables", &a)?;
                a.expect(&[Takes::List, Takes::List])?;
                Test::String {
                    how: self.matching(&a)?,
                    sources: a.list(0),
                    keys: a.list(1),
                }
            }
            "hasflag" => self.hasflag_test(t)?,
            "body" => self.body(t)?,
            "date" | "currentdate" => self.date_test(t)?,
            "mailboxexists" => {
                let a = self.args(name, t.line, &t.args, &|_| None)?;
                self.need("mailbox", &a)?;
                a.expect(&[Takes::List])?;
                Test::MailboxExists(a.list(0))
            }
            "duplicate" => self.duplicate_test(t)?,
            "spamtest" => self.spamtest_test(t)?,
            _ => {
                return Err(Error::new(
                    t.line,
                    format!("unknown test '{}'", strings::shown(name)),
                ));
            }
        })
    }

    fn date_test(&mut self, t: &parser::Test) -> Result<Test, Error> {
        let name = t.name.as_str();
        Ok({
            let a = self.args(name, t.line, &t.args, &match_spec(&DATE))?;
            self.need("date", &a)?;
            let current = name == "currentdate";
            if current && (a.tag("originalzone") || a.tag("index")) {
                return Err(a.err("takes no :originalzone or :index"));
            }
            if a.tag("zone") && a.tag("originalzone") {
                return Err(a.err(":zone and :originalzone together"));
            }
            let zone = match text_of(a.value("zone")) {
                Some(z) => {
                    Zone::Fixed(strings::zone(&z).ok_or_else(|| {
                        a.err(format!("bad zone \"{}\"", strings::shown(&z)))
                    })?)
                }
                None if a.tag("originalzone") => Zone::Original,
                None => Zone::Local,
            };
            let fixed = match current {
                true => 2,
                false => 3,
            };
            let kinds = [Takes::Text, Takes::Text, Takes::List];
            a.expect(&kinds[3 - fixed..])?;
            let part = a.text(fixed - 2);
            if !strings::has_variables(&part, self.has("variables"))
                && !strings::date_part(&part)
            {
                return Err(a.err(format!(
                    "unknown date part \"{}\"",
                    strings::shown(&part)
                )));
            }
            let how = self.matching(&a)?;
            let keys = a.list(fixed - 1);
            match current {
                true => Test::CurrentDate {
                    how,
                    zone,
                    part,
                    keys,
                },
                false => Test::Date {
                    how,
                    zone,
                    header: a.text(0),
                    part,
                    keys,
                    index: self.index(&a)?,
                },
            }
        })
    }

    fn duplicate_test(&mut self, t: &parser::Test) -> Result<Test, Error> {
        let name = t.name.as_str();
        Ok({
            let a = self.args(name, t.line, &t.args, &|t| match t {
                "handle" | "header" | "uniqueid" => Some(Takes::Text),
                "seconds" => Some(Takes::Number),
                "last" => Some(Takes::Nothing),
                _ => None,
            })?;
            self.need("duplicate", &a)?;
            a.expect(&[])?;
            if a.tag("header") && a.tag("uniqueid") {
                return Err(a.err(":header and :uniqueid together"));
            }
            let by = match (
                text_of(a.value("header")),
                text_of(a.value("uniqueid")),
            ) {
                (_, Some(id)) => DuplicateBy::UniqueId(id),
                (Some(h), None) => DuplicateBy::Header(h),
                (None, None) => DuplicateBy::Header("Message-ID".into()),
            };
            let seconds = match a.value("seconds") {
                Some(Arg::Number(n)) => Some(*n),
                _ => None,
            };
            Test::Duplicate(Box::new(Duplicate {
                handle: text_of(a.value("handle")).unwrap_or_default(),
                by,
                seconds,
                last: a.tag("last"),
            }))
        })
    }

    fn hasflag_test(&mut self, t: &parser::Test) -> Result<Test, Error> {
        let name = t.name.as_str();
        Ok({
            let a = self.args(name, t.line, &t.args, &match_spec(&[]))?;
            self.need("imap4flags", &a)?;
            let variables = match a.positional.len() {
                2 => {
                    a.expect(&[Takes::List, Takes::List])?;
                    self.need("variables", &a)?;
                    a.list(0)
                }
                _ => {
                    a.expect(&[Takes::List])?;
                    Vec::new()
                }
            };
            Test::HasFlag {
                how: self.matching(&a)?,
                variables,
                keys: a.list(a.positional.len() - 1),
            }
        })
    }

    fn envelope_test(&mut self, t: &parser::Test) -> Result<Test, Error> {
        let name = t.name.as_str();
        Ok({
            let a = self.args(name, t.line, &t.args, &match_spec(&PARTS))?;
            self.need("envelope", &a)?;
            a.expect(&[Takes::List, Takes::List])?;
            let names = a.list(0);
            for n in &names {
                let known =
                    ["from", "to"].iter().any(|k| k.eq_ignore_ascii_case(n));
                if !known && !strings::has_variables(n, self.has("variables"))
                {
                    return Err(a.err(format!(
                        "unknown envelope part \"{}\"",
                        strings::shown(n)
                    )));
                }
            }
            Test::Envelope {
                how: self.matching(&a)?,
                part: self.part(&a)?,
                names,
                keys: a.list(1),
            }
        })
    }

    fn spamtest_test(&mut self, t: &parser::Test) -> Result<Test, Error> {
        let name = t.name.as_str();
        Ok({
            let a = self.args(
                name,
                t.line,
                &t.args,
                &match_spec(&[("percent", Takes::Nothing)]),
            )?;
            self.need("spamtest", &a)?;
            if a.tag("percent") {
                self.need("spamtestplus", &a)?;
            }
            a.expect(&[Takes::Text])?;
            Test::SpamTest {
                how: self.matching(&a)?,
                percent: a.tag("percent"),
                value: a.text(0),
            }
        })
    }

    fn body(&mut self, t: &parser::Test) -> Result<Test, Error> {
        let spec = |tag: &str| match tag {
            "is" | "contains" | "matches" | "raw" | "text" => {
                Some(Takes::Nothing)
            }
            "comparator" | "count" | "value" => Some(Takes::Text),
            "content" => Some(Takes::List),
            _ => None,
        };
        let a = self.args("body", t.line, &t.args, &spec)?;
        self.need("body", &a)?;
        a.expect(&[Takes::List])?;
        let transforms = ["raw", "text", "content"]
            .iter()
            .filter(|x| a.tag(x))
            .count();
        if transforms > 1 {
            return Err(a.err("more than one transform"));
        }
        let transform = match a.value("content") {
            Some(v) => Transform::Content(list_of(v)),
            None if a.tag("raw") => Transform::Raw,
            None => Transform::Text,
        };
        Ok(Test::Body {
            how: self.matching(&a)?,
            transform,
            keys: a.list(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_scripts_compile() {
        for ok in [
            "",
            "keep;",
            "require [\"fileinto\", \"copy\"]; fileinto :copy \"a\";",
            "if true { stop; } elsif false { discard; } else { keep; }",
            "require \"vacation-seconds\"; vacation :seconds 60 \"x\";",
            "require [\"relational\", \"comparator-i;ascii-numeric\"]; if header :count \"ge\" :comparator \"i;ascii-numeric\" \"to\" \"2\" { keep; }",
            "require [\"variables\"]; set :lower :upperfirst \"a\" \"B\";",
            "require [\"date\", \"index\"]; if date :index 1 :last :zone \"+0100\" \"date\" \"year\" \"2026\" { keep; }",
        ] {
            compile(ok).unwrap_or_else(|e| panic!("{ok}: {e:?}"));
        }
    }

    #[test]
    fn invalid_scripts_say_where() {
        for (bad, line) in [
            ("keep;\nfrobnicate;", 2),
            ("fileinto \"x\";", 1),
            ("keep;\nrequire \"fileinto\";", 2),
            (
                "require \"vacation\"; vacation :days 1 :seconds 2 \"x\";",
                1,
            ),
            ("require \"variables\"; set :lower :upper \"a\" \"b\";", 1),
            ("require \"variables\"; set \"1a\" \"b\";", 1),
            ("if header :is \"a\" [\"b\"] keep;", 1),
            (
                "require \"date\"; if currentdate :originalzone \"year\" \"1\" { }",
                1,
            ),
            (
                "require \"encoded-character\"; keep :flags \"${unicode:D800}\";",
                1,
            ),
            ("not true;", 1),
            ("if not (true, false) { }", 1),
        ] {
            let e = compile(bad).expect_err(bad);
            assert_eq!(e.line, line, "{bad}: {e:?}");
        }
    }

    #[test]
    fn if_chains_join() {
        let s = compile(
            "if false { } elsif true { keep; } else { discard; } keep;",
        )
        .unwrap();
        assert_eq!(s.commands.len(), 2);
        match &s.commands[0] {
            Cmd::If(arms, Some(otherwise)) => {
                assert_eq!(arms.len(), 2);
                assert_eq!(otherwise, &vec![Cmd::Discard]);
            }
            other => panic!("{other:?}"),
        }
    }
}
