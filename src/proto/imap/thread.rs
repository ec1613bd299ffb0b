//! THREAD (RFC 5256): ORDEREDSUBJECT and REFERENCES over the values the
//! helpers read for each match (see `keys`), written as `* THREAD`.

use std::collections::HashMap;

use super::args::{Args, Bad};
use super::sort::{SortKey, Value};

/// A threading algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// Group by base subject, each group under its oldest message.
    OrderedSubject,
    /// Message-ID / References / In-Reply-To links, then subjects.
    References,
}

/// Reads the algorithm name.
pub fn parse_algorithm(a: &mut Args<'_>) -> Result<Algorithm, Bad> {
    match a.name().to_ascii_uppercase().as_slice() {
        b"ORDEREDSUBJECT" => Ok(Algorithm::OrderedSubject),
        b"REFERENCES" => Ok(Algorithm::References),
        _ => Err(Bad("unknown threading algorithm")),
    }
}

/// What the helpers read of each message for threading, in this order.
pub fn keys() -> Vec<(SortKey, bool)> {
    [
        SortKey::Date,
        SortKey::Subject,
        SortKey::Reply,
        SortKey::MessageId,
        SortKey::Parents,
    ]
    .into_iter()
    .map(|k| (k, false))
    .collect()
}

/// One message's facts, from the values of `keys()`.
struct Msg<'a> {
    /// What the answer names it by (sequence number or UID).
    number: u32,
    seq: u32,
    date: i64,
    base: &'a str,
    reply: bool,
    id: &'a str,
    parents: Vec<&'a str>,
}

fn facts(number: u32, seq: u32, v: &[Value]) -> Msg<'_> {
    let text = |i: usize| match v.get(i) {
        Some(Value::Text(t)) => t.as_str(),
        _ => "",
    };
    let number_at = |i: usize| match v.get(i) {
        Some(Value::Number(n)) => *n,
        _ => 0,
    };
    Msg {
        number,
        seq,
        date: number_at(0),
        base: text(1),
        reply: number_at(2) != 0,
        id: text(3),
        parents: text(4).split_whitespace().collect(),
    }
}

/// A container: a message, or a dummy standing for one we do not have.
#[derive(Default, Clone)]
struct Node {
    msg: Option<usize>,
    parent: Option<usize>,
    children: Vec<usize>,
}

struct Tree<'a> {
    msgs: Vec<Msg<'a>>,
    nodes: Vec<Node>,
    /// Parent steps `within` may still walk in this THREAD: a folder
    /// built to make loop checks expensive gets fewer links, not hours.
    walk_budget: usize,
}

/// Parent steps one THREAD may walk checking for loops.
const WALK_BUDGET: usize = 4_000_000;

impl Tree<'_> {
    fn add(&mut self, msg: Option<usize>) -> usize {
        self.nodes.push(Node {
            msg,
            ..Node::default()
        });
        self.nodes.len() - 1
    }

    /// Whether `node` is `of` or lies below it. Out of budget, the
    /// answer is yes: the link it guards is not made, so no loop can be.
    fn within(&mut self, mut node: usize, of: usize) -> bool {
        if self.nodes[of].children.is_empty() {
            return node == of;
        }
        loop {
            if node == of {
                return true;
            }
            let Some(p) = self.nodes[node].parent else {
                return false;
            };
            if self.walk_budget == 0 {
                return true;
            }
            self.walk_budget -= 1;
            node = p;
        }
    }

    fn link(&mut self, child: usize, parent: usize) {
        self.nodes[child].parent = Some(parent);
        self.nodes[parent].children.push(child);
    }

    /// Takes a child from its parent. The parent's list keeps a stale
    /// entry until `settle` (a popular parent's list is not rewritten
    /// once per child that leaves it).
    fn unlink(&mut self, child: usize) {
        self.nodes[child].parent = None;
    }

    /// Drops the stale entries `unlink` left: a node is its parent's
    /// child once, and only while its parent pointer says so.
    fn settle(&mut self) {
        for n in 0..self.nodes.len() {
            let mut kids = std::mem::take(&mut self.nodes[n].children);
            kids.retain(|&c| self.nodes[c].parent == Some(n));
            kids.sort_unstable();
            kids.dedup();
            self.nodes[n].children = kids;
        }
    }

    /// The message a container stands for: its own, or a dummy's first
    /// child's (children already sorted), followed down.
    fn first_msg_index(&self, mut node: usize) -> Option<usize> {
        for _ in 0..=self.nodes.len() {
            match self.nodes[node].msg {
                Some(m) => return Some(m),
                None => node = *self.nodes[node].children.first()?,
            }
        }
        None
    }

    /// The date and sequence number a container sorts by.
    fn key(&self, node: usize) -> (i64, u32) {
        self.first_msg_index(node)
            .map_or((i64::MAX, u32::MAX), |m| {
                (self.msgs[m].date, self.msgs[m].seq)
            })
    }

    /// The message a container stands for when looking at subjects.
    fn first_msg(&self, node: usize) -> Option<&Msg<'_>> {
        self.first_msg_index(node).map(|m| &self.msgs[m])
    }

    /// Every node under `list`, parents before their children.
    fn preorder(&self, list: &[usize]) -> Vec<usize> {
        let mut order = Vec::new();
        let mut stack: Vec<usize> = list.to_vec();
        while let Some(n) = stack.pop() {
            order.push(n);
            stack.extend_from_slice(&self.nodes[n].children);
        }
        order
    }

    /// Sorts `list` and every child list under it, children first (a
    /// dummy sorts by its first child).
    fn sort(&mut self, list: &mut [usize]) {
        for n in self.preorder(list).into_iter().rev() {
            let mut kids = std::mem::take(&mut self.nodes[n].children);
            kids.sort_by_key(|&c| self.key(c));
            self.nodes[n].children = kids;
        }
        list.sort_by_key(|&n| self.key(n));
    }

    /// RFC 5256 step 3: drops empty dummies and lifts a dummy's children
    /// into its place, except a root dummy with several children. Works
    /// from the leaves up without recursion; order within a list is
    /// left to `sort`.
    fn prune(&mut self, roots: Vec<usize>) -> Vec<usize> {
        // A dummy below the roots stands for its pruned children: its
        // own list is handed up, merged smaller into larger.
        for n in self.preorder(&roots).into_iter().rev() {
            let old = std::mem::take(&mut self.nodes[n].children);
            let mut new: Vec<usize> = Vec::new();
            for c in old {
                if self.nodes[c].msg.is_some() {
                    new.push(c);
                    continue;
                }
                let mut lifted = std::mem::take(&mut self.nodes[c].children);
                if lifted.len() > new.len() {
                    std::mem::swap(&mut lifted, &mut new);
                }
                new.append(&mut lifted);
            }
            self.nodes[n].children = new;
        }
        let mut out = Vec::with_capacity(roots.len());
        for n in roots {
            let kids = self.nodes[n].children.len();
            if self.nodes[n].msg.is_some() || kids > 1 {
                out.push(n);
            } else if kids == 1 {
                out.push(self.nodes[n].children.pop().unwrap_or(n));
            }
        }
        for &r in &out {
            self.nodes[r].parent = None;
        }
        for n in self.preorder(&out) {
            for i in 0..self.nodes[n].children.len() {
                let c = self.nodes[n].children[i];
                self.nodes[c].parent = Some(n);
            }
        }
        out
    }

    /// Writes a thread without recursion: a chain is written flat, a
    /// node with several children puts each in parentheses.
    fn write(&self, root: usize, out: &mut String) {
        enum Step {
            Node(usize),
            Text(&'static str),
        }
        let mut stack = vec![Step::Node(root)];
        while let Some(step) = stack.pop() {
            let node = match step {
                Step::Text(t) => {
                    out.push_str(t);
                    continue;
                }
                Step::Node(n) => &self.nodes[n],
            };
            if let Some(m) = node.msg {
                out.push_str(&self.msgs[m].number.to_string());
                if !node.children.is_empty() {
                    out.push(' ');
                }
            }
            match node.children.as_slice() {
                [] => {}
                [only] => stack.push(Step::Node(*only)),
                many => {
                    for &c in many.iter().rev() {
                        stack.push(Step::Text(")"));
                        stack.push(Step::Node(c));
                        stack.push(Step::Text("("));
                    }
                }
            }
        }
    }

    fn answer(&self, roots: &[usize]) -> String {
        let mut out = String::from("* THREAD ");
        for &r in roots {
            out.push('(');
            self.write(r, &mut out);
            out.push(')');
        }
        out.truncate(out.trim_end().len());
        out
    }
}

/// The `* THREAD` line for matches given as (number, sequence number,
/// values of `keys()`).
pub fn thread(alg: Algorithm, found: &[(u32, u32, Vec<Value>)]) -> String {
    let mut msgs: Vec<Msg<'_>> =
        found.iter().map(|(n, s, v)| facts(*n, *s, v)).collect();
    msgs.sort_by_key(|m| m.seq);
    let mut tree = Tree {
        msgs,
        nodes: Vec::new(),
        walk_budget: WALK_BUDGET,
    };
    let roots = match alg {
        Algorithm::OrderedSubject => ordered_subject(&mut tree),
        Algorithm::References => references(&mut tree),
    };
    tree.answer(&roots)
}

fn ordered_subject(tree: &mut Tree<'_>) -> Vec<usize> {
    let mut order: Vec<usize> = (0..tree.msgs.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (&tree.msgs[a], &tree.msgs[b]);
        (a.base, a.date, a.seq).cmp(&(b.base, b.date, b.seq))
    });
    let mut roots: Vec<usize> = Vec::new();
    let mut last: Option<(&str, usize)> = None;
    for m in order {
        let node = tree.add(Some(m));
        let base = tree.msgs[m].base;
        match last {
            Some((b, root)) if b == base => tree.link(node, root),
            _ => {
                roots.push(node);
                last = Some((base, node));
            }
        }
    }
    roots.sort_by_key(|&n| tree.key(n));
    roots
}

fn references(tree: &mut Tree<'_>) -> Vec<usize> {
    // Step 1: containers by Message-ID, linked along References.
    let mut ids: HashMap<&str, usize> = HashMap::new();
    for m in 0..tree.msgs.len() {
        let (id, parents) = (tree.msgs[m].id, tree.msgs[m].parents.clone());
        // A missing or repeated Message-ID gets a container of its own.
        let own = match ids.get(id) {
            Some(&c) if !id.is_empty() && tree.nodes[c].msg.is_none() => {
                tree.nodes[c].msg = Some(m);
                c
            }
            Some(_) => tree.add(Some(m)),
            None => {
                let c = tree.add(Some(m));
                if !id.is_empty() {
                    ids.insert(id, c);
                }
                c
            }
        };
        let mut chain = Vec::with_capacity(parents.len());
        for p in parents {
            let c = match ids.get(p) {
                Some(&c) => c,
                None => {
                    let c = tree.add(None);
                    ids.insert(p, c);
                    c
                }
            };
            chain.push(c);
        }
        for pair in chain.windows(2) {
            let (parent, child) = (pair[0], pair[1]);
            if tree.nodes[child].parent.is_none()
                && !tree.within(parent, child)
            {
                tree.link(child, parent);
            }
        }
        tree.unlink(own);
        if let Some(&parent) = chain.last()
            && !tree.within(parent, own)
        {
            tree.link(own, parent);
        }
    }
    tree.settle();
    // Steps 2-4: the roots, pruned and sorted.
    let roots: Vec<usize> = (0..tree.nodes.len())
        .filter(|&n| tree.nodes[n].parent.is_none())
        .collect();
    let mut roots = tree.prune(roots);
    tree.sort(&mut roots);
    // Step 5: roots with the same base subject come together.
    let mut roots = merge_subjects(tree, roots);
    // Step 6.
    tree.sort(&mut roots);
    roots
}

/// RFC 5256 REFERENCES step 5.
fn merge_subjects(tree: &mut Tree<'_>, roots: Vec<usize>) -> Vec<usize> {
    let subject = |tree: &Tree<'_>, n: usize| {
        tree.first_msg(n)
            .map(|m| m.base.to_string())
            .unwrap_or_default()
    };
    let is_reply = |tree: &Tree<'_>, n: usize| {
        tree.nodes[n].msg.is_some_and(|m| tree.msgs[m].reply)
    };
    let dummy = |tree: &Tree<'_>, n: usize| tree.nodes[n].msg.is_none();
    let mut table: HashMap<String, usize> = HashMap::new();
    for &r in &roots {
        let s = subject(tree, r);
        if s.is_empty() {
            continue;
        }
        match table.get(&s) {
            None => {
                table.insert(s, r);
            }
            Some(&old) => {
                let better = (dummy(tree, r) && !dummy(tree, old))
                    || (is_reply(tree, old)
                        && !dummy(tree, r)
                        && !is_reply(tree, r));
                if better {
                    table.insert(s, r);
                }
            }
        }
    }
    let mut kept = Vec::with_capacity(roots.len());
    for r in roots {
        if tree.nodes[r].parent.is_some() {
            continue; // merged under a new dummy already
        }
        let s = subject(tree, r);
        let Some(&other) = table.get(&s).filter(|_| !s.is_empty()) else {
            kept.push(r);
            continue;
        };
        if other == r {
            kept.push(r);
            continue;
        }
        match (dummy(tree, other), dummy(tree, r)) {
            (true, true) => {
                for c in std::mem::take(&mut tree.nodes[r].children) {
                    tree.nodes[c].parent = None;
                    tree.link(c, other);
                }
            }
            (true, false) => tree.link(r, other),
            (false, true) => {
                // The table's message joins this dummy, which takes its
                // place among the roots.
                kept.retain(|&k| k != other);
                tree.link(other, r);
                table.insert(s, r);
                kept.push(r);
            }
            (false, false) if !is_reply(tree, other) && is_reply(tree, r) => {
                tree.link(r, other);
            }
            (false, false) => {
                let d = tree.add(None);
                kept.retain(|&k| k != other);
                tree.link(other, d);
                tree.link(r, d);
                table.insert(s, d);
                kept.push(d);
            }
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(
        seq: u32,
        date: i64,
        subject: &str,
        id: &str,
        refs: &str,
    ) -> (u32, u32, Vec<Value>) {
        let base = super::super::sort::base_subject(subject);
        let reply = super::super::sort::is_reply(subject);
        (
            seq,
            seq,
            vec![
                Value::Number(date),
                Value::Text(base),
                Value::Number(reply as i64),
                Value::Text(id.into()),
                Value::Text(refs.into()),
            ],
        )
    }

    #[test]
    fn references_rfc_shapes() {
        let found = vec![
            msg(1, 0, "", "<1@b>", ""),
            msg(2, 0, "", "<2@b>", "<1@b>"),
            msg(3, 0, "", "<3@b>", "<1@b>"),
            msg(4, 0, "", "<4@b>", "<2@b>"),
        ];
        assert_eq!(
            thread(Algorithm::References, &found),
            "* THREAD (1 (2 4)(3))"
        );
        // Two replies to a message we do not have: a dummy root.
        let found =
            vec![msg(1, 0, "", "", "<a@b>"), msg(2, 1, "", "", "<a@b>")];
        assert_eq!(thread(Algorithm::References, &found), "* THREAD ((1)(2))");
    }

    #[test]
    fn references_breaks_loops_and_merges_subjects() {
        // b says a > c > b; c says b > c: c keeps b, a stands alone.
        let found = vec![
            msg(1, 2, "", "<a@b>", ""),
            msg(2, 0, "", "<b@b>", "<a@b> <c@b>"),
            msg(3, 1, "", "<c@b>", "<b@b>"),
        ];
        assert_eq!(thread(Algorithm::References, &found), "* THREAD (3 2)(1)");
        let found = vec![
            msg(1, 0, "foo", "<a@b>", ""),
            msg(2, 1, "Re: foo", "<a@b>", ""),
        ];
        assert_eq!(thread(Algorithm::References, &found), "* THREAD (1 2)");
        assert_eq!(thread(Algorithm::References, &[]), "* THREAD");
    }

    /// A thread as deep as a big folder, and one message naming as many
    /// parents as a hostile one can: no recursion, no quadratic walk.
    #[test]
    fn deep_chains() {
        let n = 200_000u32;
        let found: Vec<_> = (1..=n)
            .map(|i| {
                let refs = if i == 1 {
                    String::new()
                } else {
                    format!("<{}@x>", i - 1)
                };
                msg(i, i as i64, "", &format!("<{i}@x>"), &refs)
            })
            .collect();
        let answer = thread(Algorithm::References, &found);
        assert!(
            answer.starts_with("* THREAD (1 2 3 4 "),
            "{}",
            &answer[..40]
        );
        assert!(answer.ends_with(&format!(" {n})")));
        let refs: Vec<String> =
            (0..80_000).map(|i| format!("<r{i}@x>")).collect();
        let found = vec![msg(1, 0, "", "<m@x>", &refs.join(" "))];
        assert_eq!(thread(Algorithm::References, &found), "* THREAD (1)");
        // Every message names all before it: loop checks stay in budget.
        let found: Vec<_> = (1..=2_000u32)
            .map(|i| {
                let refs: Vec<String> =
                    (1..i).rev().map(|k| format!("<{k}@x>")).collect();
                msg(i, i as i64, "", &format!("<{i}@x>"), &refs.join(" "))
            })
            .collect();
        let answer = thread(Algorithm::References, &found);
        assert!(answer.starts_with("* THREAD (1 "), "{}", &answer[..40]);
    }

    #[test]
    fn ordered_subject() {
        let found = vec![
            msg(1, 3, "a", "", ""),
            msg(2, 2, "b", "", ""),
            msg(3, 1, "Re: a", "", ""),
            msg(4, 0, "b", "", ""),
            msg(5, 9, "c", "", ""),
            msg(6, 9, "re: c", "", ""),
        ];
        assert_eq!(
            thread(Algorithm::OrderedSubject, &found),
            "* THREAD (4 2)(3 1)(5 6)"
        );
    }
}
