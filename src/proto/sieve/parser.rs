//! Sieve's grammar (RFC 5228 §8.2) over the lexer's tokens: commands
//! with their arguments, tests and blocks. Recursive descent, with the
//! nesting capped (a stranger's upload through ManageSieve must not
//! reach the stack's end) and every token looked at once. What the
//! commands mean, and whether they exist, is for the next step.

use super::lexer::{self, Error, Spanned, Token};

/// Blocks and tests nest at most this deep.
pub const MAX_DEPTH: usize = 32;
/// Tokens in one script at most.
pub const MAX_TOKENS: usize = 100_000;

/// An argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// A lone string.
    String(String),
    /// A bracketed list of strings.
    Strings(Vec<String>),
    Number(u64),
    /// A tag, lower case, without its colon.
    Tag(String),
}

/// A test: its name, arguments and the tests inside it (`anyof`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Test {
    pub name: String,
    pub args: Vec<Arg>,
    pub tests: Vec<Test>,
    pub line: usize,
}

/// A command: its name, arguments, tests and block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub name: String,
    pub args: Vec<Arg>,
    pub tests: Vec<Test>,
    /// `{ ... }` after it (`if`, `elsif`, `else`).
    pub block: Option<Vec<Command>>,
    pub line: usize,
}

/// Parses a whole script.
pub fn parse(script: &str) -> Result<Vec<Command>, Error> {
    let toks = lexer::tokens(script)?;
    if toks.len() > MAX_TOKENS {
        return Err(Error::new(1, "script too long"));
    }
    let mut p = Parser { toks, at: 0 };
    let commands = p.commands(0)?;
    match p.peek() {
        None => Ok(commands),
        Some(t) => Err(Error::new(
            t.line,
            format!("unexpected {}", shown(&t.token)),
        )),
    }
}

struct Parser {
    toks: Vec<Spanned>,
    at: usize,
}

fn shown(t: &Token) -> String {
    match t {
        Token::Identifier(s) => format!("'{s}'"),
        Token::Tag(s) => format!("':{s}'"),
        Token::Number(n) => format!("number {n}"),
        Token::Str(_) => "a string".into(),
        Token::Punct(c) => format!("'{c}'"),
    }
}

impl Parser {
    fn peek(&self) -> Option<&Spanned> {
        self.toks.get(self.at)
    }

    fn line(&self) -> usize {
        self.peek()
            .map(|t| t.line)
            .or_else(|| self.toks.last().map(|t| t.line))
            .unwrap_or(1)
    }

    fn is(&self, c: char) -> bool {
        matches!(self.peek(), Some(Spanned { token: Token::Punct(p), .. }) if *p == c)
    }

    fn expect(&mut self, c: char) -> Result<(), Error> {
        if self.is(c) {
            self.at += 1;
            return Ok(());
        }
        let found = self
            .peek()
            .map_or("the end".to_string(), |t| shown(&t.token));
        Err(Error::new(
            self.line(),
            format!("expected '{c}', found {found}"),
        ))
    }

    /// Commands up to a `}` or the end.
    fn commands(&mut self, depth: usize) -> Result<Vec<Command>, Error> {
        let mut out = Vec::new();
        while let Some(t) = self.peek() {
            if matches!(t.token, Token::Punct('}')) {
                break;
            }
            out.push(self.command(depth)?);
        }
        Ok(out)
    }

    fn command(&mut self, depth: usize) -> Result<Command, Error> {
        let line = self.line();
        let name = match self.peek().map(|t| &t.token) {
            Some(Token::Identifier(n)) => n.clone(),
            Some(t) => {
                return Err(Error::new(
                    line,
                    format!("expected a command, found {}", shown(t)),
                ));
            }
            None => return Err(Error::new(line, "expected a command")),
        };
        self.at += 1;
        let (args, tests) = self.arguments(depth)?;
        let block = match self.is('{') {
            true => {
                if depth + 1 > MAX_DEPTH {
                    return Err(Error::new(line, "blocks nested too deep"));
                }
                self.at += 1;
                let inner = self.commands(depth + 1)?;
                self.expect('}')?;
                Some(inner)
            }
            false => {
                self.expect(';')?;
                None
            }
        };
        Ok(Command {
            name,
            args,
            tests,
            block,
            line,
        })
    }

    /// Arguments, then a test or a test list.
    fn arguments(
        &mut self,
        depth: usize,
    ) -> Result<(Vec<Arg>, Vec<Test>), Error> {
        let mut args = Vec::new();
        while let Some(t) = self.peek() {
            let arg = match &t.token {
                Token::Str(s) => Arg::String(s.clone()),
                Token::Number(n) => Arg::Number(*n),
                Token::Tag(s) => Arg::Tag(s.clone()),
                Token::Punct('[') => {
                    args.push(Arg::Strings(self.string_list()?));
                    continue;
                }
                _ => break,
            };
            self.at += 1;
            args.push(arg);
        }
        let tests = match self.peek().map(|t| &t.token) {
            Some(Token::Identifier(_)) => vec![self.test(depth + 1)?],
            Some(Token::Punct('(')) => self.test_list(depth + 1)?,
            _ => Vec::new(),
        };
        Ok((args, tests))
    }

    fn string_list(&mut self) -> Result<Vec<String>, Error> {
        self.expect('[')?;
        let mut out = Vec::new();
        loop {
            match self.peek().map(|t| &t.token) {
                Some(Token::Str(s)) => {
                    out.push(s.clone());
                    self.at += 1;
                }
                _ => {
                    return Err(Error::new(
                        self.line(),
                        "expected a string in the list",
                    ));
                }
            }
            if self.is(',') {
                self.at += 1;
                continue;
            }
            self.expect(']')?;
            return Ok(out);
        }
    }

    fn test(&mut self, depth: usize) -> Result<Test, Error> {
        let line = self.line();
        if depth > MAX_DEPTH {
            return Err(Error::new(line, "tests nested too deep"));
        }
        let name = match self.peek().map(|t| &t.token) {
            Some(Token::Identifier(n)) => n.clone(),
            _ => return Err(Error::new(line, "expected a test")),
        };
        self.at += 1;
        let (args, tests) = self.arguments(depth)?;
        Ok(Test {
            name,
            args,
            tests,
            line,
        })
    }

    fn test_list(&mut self, depth: usize) -> Result<Vec<Test>, Error> {
        self.expect('(')?;
        let mut out = vec![self.test(depth)?];
        while self.is(',') {
            self.at += 1;
            out.push(self.test(depth)?);
        }
        self.expect(')')?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Arg {
        Arg::Strings(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn rfc5228_example() {
        // RFC 5228 §9, shortened.
        let script = r#"
            require ["fileinto", "reject"];
            if header :is "Sender" "owner-ietf-mtg@ietf.org" {
                fileinto "ietf"; # a comment
            } elsif address :DOMAIN :is ["From", "To"] "example.com" {
                keep;
            } elsif anyof (not address :all :contains ["To", "Cc"] "me@example.com",
                           header :matches "subject" ["*make*money*fast*", "*university*dipl*mas*"]) {
                fileinto "spam";
            } else {
                fileinto "personal";
            }
        "#;
        let c = parse(script).unwrap();
        // elsif and else are commands of their own, as the grammar has it.
        let names: Vec<&str> = c.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["require", "if", "elsif", "elsif", "else"]);
        assert_eq!(c[0].name, "require");
        assert_eq!(c[0].args, [strings(&["fileinto", "reject"])]);
        assert_eq!(c[1].name, "if");
        assert_eq!(c[1].tests[0].name, "header");
        assert_eq!(
            c[1].tests[0].args,
            [
                Arg::Tag("is".into()),
                Arg::String("Sender".into()),
                Arg::String("owner-ietf-mtg@ietf.org".into())
            ]
        );
        let body = c[1].block.as_ref().unwrap();
        assert_eq!(body[0].name, "fileinto");
        assert_eq!(body[0].line, 4);
        let anyof = &c[3].tests[0];
        assert_eq!(anyof.name, "anyof");
        assert_eq!(anyof.tests.len(), 2);
        assert_eq!(anyof.tests[0].name, "not");
        assert_eq!(anyof.tests[0].tests[0].name, "address");
        assert_eq!(
            anyof.tests[1].args[2],
            strings(&["*make*money*fast*", "*university*dipl*mas*"])
        );
    }

    #[test]
    fn bad_scripts_say_where() {
        for (script, line) in [
            ("keep", 1),
            ("if true { keep; ", 1),
            ("fileinto [\"a\" \"b\"];", 1),
            ("keep;\nif anyof (true, ) { }", 2),
            ("}", 1),
            ("require [];", 1),
        ] {
            let e = parse(script).unwrap_err();
            assert_eq!(e.line, line, "{script}: {e}");
        }
    }

    #[test]
    fn nesting_is_capped() {
        let deep_blocks =
            "if true {".repeat(MAX_DEPTH + 1) + &"}".repeat(MAX_DEPTH + 1);
        assert!(parse(&deep_blocks).unwrap_err().what.contains("too deep"));
        let deep_tests =
            format!("if {} true{} {{}}", "not ".repeat(10_000), "");
        assert!(parse(&deep_tests).unwrap_err().what.contains("too deep"));
        let lists = format!(
            "if {}true{} {{}}",
            "anyof(".repeat(10_000),
            ")".repeat(10_000)
        );
        assert!(parse(&lists).is_err());
        let fine = "if true {".repeat(MAX_DEPTH) + &"}".repeat(MAX_DEPTH);
        assert!(parse(&fine).is_ok());
    }
}
