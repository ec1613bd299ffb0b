//! The aliases file: `source: target, target ...`, where a source is
//! `local@domain` or `@domain` (catch-all). Every alias is expanded to
//! user mailboxes at load, so loops and dangling targets are found then,
//! never while mail waits.

use std::collections::HashMap;
use std::path::Path;

use super::lexer::{self, Problem};
use super::users::Users;

/// How deep aliases may nest (Postfix's default expansion limit is 1000
/// addresses; 20 levels is far past any real setup).
pub const MAX_DEPTH: usize = 20;

/// Aliases, each already expanded to the user addresses it delivers to.
#[derive(Debug, Clone, Default)]
pub struct Aliases {
    expanded: HashMap<String, Vec<String>>,
}

impl Aliases {
    /// Loads and expands the aliases file against `users`.
    pub fn load(
        file: &Path,
        domains: &[String],
        users: &Users,
    ) -> Result<Aliases, Vec<Problem>> {
        let text = lexer::read(file).map_err(|p| vec![p])?;
        let mut raw: HashMap<String, (usize, Vec<String>)> = HashMap::new();
        let mut problems = Vec::new();
        for (n, line) in lexer::lines(&text) {
            match parse_line(line, domains) {
                Ok((source, _)) if raw.contains_key(&source) => {
                    let msg = format!("duplicate alias {source}");
                    problems.push(Problem::new(file, n, msg));
                }
                Ok((source, targets)) => {
                    raw.insert(source, (n, targets));
                }
                Err(msg) => problems.push(Problem::new(file, n, msg)),
            }
        }
        let mut expanded = HashMap::new();
        for (source, (n, _)) in &raw {
            let mut stack = vec![source.clone()];
            match expand(source, &raw, users, domains, &mut stack) {
                Ok(boxes) => {
                    expanded.insert(source.clone(), boxes);
                }
                Err(msg) => problems.push(Problem::new(file, *n, msg)),
            }
        }
        problems.sort_by_key(|p| p.line);
        if problems.is_empty() {
            Ok(Aliases { expanded })
        } else {
            Err(problems)
        }
    }

    /// The mailboxes an alias source (`local@domain` or `@domain`)
    /// delivers to.
    pub fn get(&self, source: &str) -> Option<&[String]> {
        self.expanded.get(source).map(Vec::as_slice)
    }
}

type Raw = HashMap<String, (usize, Vec<String>)>;

fn parse_line(
    line: &str,
    domains: &[String],
) -> Result<(String, Vec<String>), String> {
    let (source, targets) =
        line.split_once(':').ok_or("expected source: target, ...")?;
    let source = source.trim().to_lowercase();
    let domain = source.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
    if !source.contains('@') || !domains.iter().any(|d| d == domain) {
        return Err(format!("{source}: source must be in a local domain"));
    }
    let targets: Vec<String> = targets
        .split(',')
        .map(|t| t.trim().to_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    if targets.is_empty() {
        return Err(format!("{source}: no targets"));
    }
    for t in &targets {
        let Some((local, domain)) = t.rsplit_once('@') else {
            return Err(format!("{t}: target must be local@domain"));
        };
        if local.is_empty() {
            return Err(format!("{t}: target must be local@domain"));
        }
        // A target elsewhere is forwarded there (with SRS).
        if !domains.iter().any(|d| d == domain) && !super::is_domain(domain) {
            return Err(format!("{t}: bad domain"));
        }
    }
    Ok((source, targets))
}

/// Expands `address` to user mailboxes and remote addresses, depth-first; `stack` holds the
/// aliases being expanded, which finds loops.
fn expand(
    address: &str,
    raw: &Raw,
    users: &Users,
    domains: &[String],
    stack: &mut Vec<String>,
) -> Result<Vec<String>, String> {
    let Some((_, targets)) = raw.get(address) else {
        return Err(format!("{address}: unknown"));
    };
    let mut boxes: Vec<String> = Vec::new();
    for t in targets {
        // An address that is a user is the user's mailbox, even if an
        // alias of the same name exists: that is how `a: a, b` keeps a
        // copy.
        let remote = t
            .rsplit_once('@')
            .is_some_and(|(_, d)| !domains.iter().any(|x| x == d));
        let found = if users.get(t).is_some() || remote {
            vec![t.clone()]
        } else if stack.iter().any(|s| s == t) {
            return Err(format!("alias loop: {} -> {t}", stack.join(" -> ")));
        } else if stack.len() >= MAX_DEPTH {
            return Err(format!("{address}: aliases nest too deep"));
        } else if raw.contains_key(t) {
            stack.push(t.clone());
            let r = expand(t, raw, users, domains, stack);
            stack.pop();
            r?
        } else {
            return Err(format!("{t}: no such user or alias"));
        };
        for b in found {
            if !boxes.contains(&b) {
                boxes.push(b);
            }
        }
    }
    Ok(boxes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(users: &str, aliases: &str) -> Result<Aliases, Vec<Problem>> {
        let dir = std::env::temp_dir().join(format!(
            "postling-aliases-{}-{}",
            std::process::id(),
            aliases.len()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("users"), users).unwrap();
        std::fs::write(dir.join("aliases"), aliases).unwrap();
        let domains = vec!["a.test".to_string(), "b.test".to_string()];
        let u = Users::load(&dir.join("users"), &domains).unwrap();
        let r = Aliases::load(&dir.join("aliases"), &domains, &u);
        std::fs::remove_dir_all(&dir).unwrap();
        r
    }

    #[test]
    fn nested_and_catch_all() {
        let a = load(
            "x@a.test\ny@a.test\n",
            "team@a.test: x@a.test, list@a.test\nlist@a.test: y@a.test, \
             x@a.test\n@b.test: team@a.test\n",
        )
        .unwrap();
        assert_eq!(a.get("team@a.test").unwrap(), ["x@a.test", "y@a.test"]);
        assert_eq!(a.get("@b.test").unwrap(), ["x@a.test", "y@a.test"]);
    }

    #[test]
    fn loops_are_found() {
        let e = load("x@a.test\n", "p@a.test: q@a.test\nq@a.test: p@a.test\n")
            .unwrap_err();
        assert!(e[0].message.contains("alias loop"), "{e:?}");
    }

    #[test]
    fn nesting_is_limited() {
        let chain: String = (0..=MAX_DEPTH)
            .map(|i| format!("a{i}@a.test: a{}@a.test\n", i + 1))
            .collect::<String>()
            + &format!("a{}@a.test: x@a.test\n", MAX_DEPTH + 1);
        let e = load("x@a.test\n", &chain).unwrap_err();
        assert!(
            e.iter().any(|p| p.message.contains("nest too deep")),
            "{e:?}"
        );
        let short: String = (0..5)
            .map(|i| format!("b{i}@a.test: b{}@a.test\n", i + 1))
            .collect::<String>()
            + "b5@a.test: x@a.test\n";
        assert_eq!(
            load("x@a.test\n", &short)
                .unwrap()
                .get("b0@a.test")
                .unwrap(),
            ["x@a.test"]
        );
    }

    #[test]
    fn bad_targets() {
        // A remote target is forwarded, nested or not.
        let a = load(
            "x@a.test\n",
            "p@a.test: x@a.test, Someone@Remote.test\nq@a.test: p@a.test\n",
        )
        .unwrap();
        assert_eq!(
            a.get("q@a.test").unwrap(),
            ["x@a.test", "someone@remote.test"]
        );
        let e =
            load("x@a.test\n", "p@a.test: someone@bad_domain\n").unwrap_err();
        assert!(e[0].message.contains("bad domain"));
        let e = load("x@a.test\n", "p@a.test: nobody@a.test\n").unwrap_err();
        assert!(e[0].message.contains("no such user"));
        let e = load("x@a.test\n", "p@c.test: x@a.test\n").unwrap_err();
        assert!(e[0].message.contains("local domain"));
    }
}
