//! The README names no command or flag that does not exist, and every link in it (and in
//! docs/) resolves inside the repository.

use std::collections::BTreeMap;
use std::path::Path;

use assert_cmd::Command;

/// `mpwatch ...` invocations of the README: lines of its `sh` blocks, and the command
/// column of its tables.
fn invocations(readme: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut in_sh = false;
    for line in readme.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            in_sh = trimmed == "```sh";
            continue;
        }
        if in_sh {
            // Drop comments and trailing `&`.
            let code = trimmed.split(" #").next().unwrap_or("").trim().trim_end_matches('&').trim();
            if let Some(rest) = code.strip_prefix("cargo run --release -- ") {
                found.push(format!("mpwatch {rest}"));
            } else if code.starts_with("mpwatch ") {
                found.push(code.to_string());
            }
        } else if let Some((command, _)) = trimmed.strip_prefix("| `mpwatch ").and_then(|cell| cell.split_once("` |")) {
            found.push(format!("mpwatch {command}"));
        }
    }
    found
}

/// The subcommand path and the long flags of one invocation.
fn shape(invocation: &str) -> (Vec<String>, Vec<String>) {
    let mut path = Vec::new();
    let mut flags = Vec::new();
    let mut words = invocation.split_whitespace().skip(1).peekable();
    let mut past_path = false;
    while let Some(word) = words.next() {
        let word = word.trim_matches(|c| c == '[' || c == ']' || c == '(' || c == ')');
        if let Some(flag) = word.strip_prefix("--") {
            let name: String = flag.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
            if !name.is_empty() {
                flags.push(format!("--{name}"));
            }
            // A global flag's value (`--config FILE`) comes before the subcommand.
            if !past_path && path.is_empty() && matches!(name.as_str(), "config" | "db" | "log-format") {
                words.next();
            }
            continue;
        }
        if !past_path && word.chars().all(|c| c.is_ascii_lowercase() || c == '-') && !word.is_empty() {
            path.push(word.to_string());
        } else {
            past_path = true;
        }
    }
    (path, flags)
}

fn help(path: &[String]) -> Option<String> {
    let output = Command::cargo_bin("mpwatch").unwrap().args(path).arg("--help").output().unwrap();
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

#[test]
fn every_command_and_flag_in_the_readme_exists() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let invocations = invocations(&readme);
    assert!(invocations.len() > 30, "found only {} invocations", invocations.len());
    let mut helps: BTreeMap<Vec<String>, String> = BTreeMap::new();
    let mut problems = Vec::new();
    for invocation in &invocations {
        let (mut path, flags) = shape(invocation);
        // The longest prefix of the words that is a command (the rest are arguments).
        let text = loop {
            if let Some(text) = helps.get(&path) {
                break text.clone();
            }
            if let Some(text) = help(&path) {
                helps.insert(path.clone(), text.clone());
                break text;
            }
            if path.pop().is_none() {
                panic!("`mpwatch --help` fails");
            }
        };
        if path.is_empty() && !invocation.trim_start_matches("mpwatch ").starts_with('-') {
            problems.push(format!("{invocation}: no such command"));
            continue;
        }
        for flag in flags {
            if !text.contains(&flag) {
                problems.push(format!("{invocation}: `mpwatch {}` has no {flag}", path.join(" ")));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_link_resolves_inside_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md"), root.join("ARCHITECTURE.md"), root.join("deploy/README.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    let mut broken = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let mut rest = text.as_str();
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            let Some(end) = rest.find(')') else { break };
            let target = &rest[..end];
            let target = target.split('#').next().unwrap_or("");
            if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let resolved = file.parent().unwrap().join(target);
            if !resolved.exists() {
                broken.push(format!("{}: {target}", file.strip_prefix(root).unwrap().display()));
            }
        }
    }
    assert!(broken.is_empty(), "links that resolve to nothing:\n{}", broken.join("\n"));
}
