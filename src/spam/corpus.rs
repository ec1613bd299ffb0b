//! Messages to learn from, as a user already keeps them: a Maildir
//! folder (its `cur/` and `new/`), an mbox file (it starts with a
//! `From ` line), a folder of message files (one message each, as MH
//! and corpora keep them), or one message file.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

/// A message is read this far; the tokenizer reads less anyway.
pub const MAX_MESSAGE: usize = 4 * 1024 * 1024;

/// Calls `each` with every message under `path`; returns how many.
pub fn for_each(
    path: &Path,
    each: &mut dyn FnMut(&[u8]),
) -> io::Result<usize> {
    let meta = std::fs::metadata(path)?;
    if meta.is_file() {
        let mut file = File::open(path)?;
        let mut start = [0u8; 5];
        let n = file.read(&mut start)?;
        if &start[..n] == b"From " {
            return mbox(File::open(path)?, each);
        }
        let mut msg = start[..n].to_vec();
        file.take(MAX_MESSAGE as u64).read_to_end(&mut msg)?;
        each(&msg);
        return Ok(1);
    }
    let maildir = ["cur", "new"].iter().any(|d| path.join(d).is_dir());
    let folders: Vec<std::path::PathBuf> = match maildir {
        true => vec![path.join("cur"), path.join("new")],
        false => vec![path.to_path_buf()],
    };
    let mut n = 0;
    for folder in folders {
        let Ok(list) = std::fs::read_dir(&folder) else {
            continue;
        };
        let mut names: Vec<_> = list
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .map(|e| e.path())
            .collect();
        names.sort();
        for name in names {
            let mut msg = Vec::new();
            File::open(&name)?
                .take(MAX_MESSAGE as u64)
                .read_to_end(&mut msg)?;
            each(&msg);
            n += 1;
        }
    }
    Ok(n)
}

/// Each message of an mbox: from one `From ` line to the next, with
/// `>From ` quoting left as it is (it changes no token).
fn mbox(file: File, each: &mut dyn FnMut(&[u8])) -> io::Result<usize> {
    let mut reader = BufReader::new(file);
    let mut msg: Vec<u8> = Vec::new();
    let mut line = Vec::new();
    let mut n = 0;
    let mut started = false;
    loop {
        line.clear();
        // A line is read whole only up to the message cap.
        let got = (&mut reader)
            .take(MAX_MESSAGE as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if got == 0 {
            break;
        }
        // A From_ line follows an empty line (or starts the file); in a
        // body, one right after a line of text is text (mboxo).
        let separator = line.starts_with(b"From ")
            && (!started || msg.is_empty() || msg.ends_with(b"\n\n"));
        if separator {
            if started {
                each(&msg);
                n += 1;
            }
            msg.clear();
            started = true;
            continue;
        }
        if started && msg.len() + line.len() <= MAX_MESSAGE {
            msg.extend_from_slice(&line);
        }
    }
    if started {
        each(&msg);
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(path: &Path) -> Vec<Vec<u8>> {
        let mut all = Vec::new();
        let n = for_each(path, &mut |m| all.push(m.to_vec())).unwrap();
        assert_eq!(n, all.len());
        all
    }

    #[test]
    fn maildir_mbox_and_plain_folders() {
        let dir = std::env::temp_dir()
            .join(format!("postling-corpus-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let md = dir.join("Maildir");
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(md.join(sub)).unwrap();
        }
        std::fs::write(md.join("cur/1:2,S"), b"Subject: a\n\none\n").unwrap();
        std::fs::write(md.join("new/2"), b"Subject: b\n\ntwo\n").unwrap();
        std::fs::write(md.join("tmp/3"), b"Subject: half written\n").unwrap();
        assert_eq!(collect(&md).len(), 2);

        let plain = dir.join("plain");
        std::fs::create_dir_all(&plain).unwrap();
        std::fs::write(plain.join("00001.txt"), b"Subject: c\n\nthree\n")
            .unwrap();
        std::fs::write(plain.join(".hidden"), b"x").unwrap();
        assert_eq!(collect(&plain), [b"Subject: c\n\nthree\n".to_vec()]);

        let mbox = dir.join("mbox");
        std::fs::write(
            &mbox,
            b"From a@b Mon Jan  1 00:00:00 2024\nSubject: x\n\nHello,\nFrom here on, text.\n\n\
              From c@d Mon Jan  1 00:00:01 2024\nSubject: y\n\nbody\n",
        )
        .unwrap();
        let msgs = collect(&mbox);
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0], b"Subject: x\n\nHello,\nFrom here on, text.\n\n");
        assert_eq!(msgs[1], b"Subject: y\n\nbody\n");
        let one = dir.join("one.eml");
        std::fs::write(&one, b"Subject: z\n\nFrom me.\n").unwrap();
        assert_eq!(collect(&one), [b"Subject: z\n\nFrom me.\n".to_vec()]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
