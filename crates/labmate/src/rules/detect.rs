//! Reading a crashed program's last output: its Python traceback or error
//! lines, signs of running out of memory, and the last error line.

/// Lines that say a process ran out of memory.
const OOM_SIGNS: [&str; 6] = [
    "CUDA out of memory",
    "OutOfMemoryError",
    "MemoryError",
    "out of memory",
    "Cannot allocate memory",
    "std::bad_alloc",
];

/// The lines that explain a crash: the last Python traceback when there is
/// one, else the last lines that look like errors, else the last lines.
pub fn crash_lines(tail: &str, max: usize) -> Vec<String> {
    let lines: Vec<&str> = tail.lines().collect();
    if let Some(start) = lines.iter().rposition(|l| l.starts_with("Traceback (most recent call last):")) {
        // The block runs through its indented frames to the first unindented
        // line after them: the exception itself.
        let mut end = start + 1;
        while end < lines.len() && (lines[end].starts_with(' ') || lines[end].starts_with('\t')) {
            end += 1;
        }
        let end = (end + 1).min(lines.len());
        let block = &lines[start..end];
        let skip = block.len().saturating_sub(max);
        let mut out: Vec<String> = block[skip..].iter().map(|l| l.to_string()).collect();
        if skip > 0 {
            out[0] = format!("... ({skip} lines cut) ...");
        }
        return out;
    }
    let errors: Vec<&str> = lines.iter().copied().filter(|l| looks_like_error(l)).collect();
    let pick =
        if errors.is_empty() { lines.iter().copied().filter(|l| !l.trim().is_empty()).collect() } else { errors };
    pick[pick.len().saturating_sub(max.min(10))..].iter().map(|l| l.to_string()).collect()
}

/// The output lines that say the process ran out of memory.
pub fn oom_lines(tail: &str) -> Vec<String> {
    tail.lines()
        .filter(|l| OOM_SIGNS.iter().any(|s| l.contains(s)) || l.trim() == "Killed")
        .map(|l| l.to_string())
        .collect()
}

/// The last line of the output that reads like an error.
pub fn last_error_line(tail: &str) -> Option<String> {
    tail.lines().rev().find(|l| looks_like_error(l)).map(|l| l.trim().to_string())
}

fn looks_like_error(line: &str) -> bool {
    let l = line.trim_start();
    if l.is_empty() {
        return false;
    }
    let lower = l.to_ascii_lowercase();
    // `ValueError: ...`, `torch.OutOfMemoryError: ...`, `error: ...`, `fatal ...`
    let first = l.split([':', ' ']).next().unwrap_or("");
    first.ends_with("Error")
        || first.ends_with("Exception")
        || lower.starts_with("error")
        || lower.starts_with("fatal")
        || lower.contains("panicked at")
        || l.trim() == "Killed"
}

#[cfg(test)]
mod tests {
    use super::*;

    const TB: &str = "step 1\nstep 2\nTraceback (most recent call last):\n  File \"train.py\", line 3, in <module>\n    main()\n  File \"train.py\", line 2, in main\n    raise ValueError(\"bad lr\")\nValueError: bad lr\n";

    #[test]
    fn python_tracebacks_are_one_block() {
        let lines = crash_lines(TB, 40);
        assert_eq!(lines.first().unwrap(), "Traceback (most recent call last):");
        assert_eq!(lines.last().unwrap(), "ValueError: bad lr");
        assert_eq!(lines.len(), 6);
        assert_eq!(last_error_line(TB).unwrap(), "ValueError: bad lr");
        assert_eq!(crash_lines(TB, 3)[0], "... (3 lines cut) ...");
    }

    #[test]
    fn other_crashes_give_their_error_lines() {
        let tail = "loading\nerror: cannot open data.bin\nbye\n";
        assert_eq!(crash_lines(tail, 40), vec!["error: cannot open data.bin"]);
        assert_eq!(crash_lines("a\n\nb\n", 40), vec!["a", "b"]);
    }

    #[test]
    fn out_of_memory_is_recognised() {
        let tail = "x\ntorch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\n";
        assert_eq!(oom_lines(tail).len(), 1);
        assert_eq!(oom_lines("ok\nKilled\n"), vec!["Killed"]);
        assert!(oom_lines("all good\n").is_empty());
    }
}
