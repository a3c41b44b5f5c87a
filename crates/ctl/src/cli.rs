//! Command-line parsing the way etcdctl's cobra/pflag do it: a tree of commands found by
//! name (or unique prefix), flags anywhere after the command path, `--` ends the flags,
//! persistent flags inherited by subcommands, and pflag's error messages and usage text.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::time::Duration;

use crate::exit::{self, ExitCode};
use crate::gofmt;

/// The type of a flag's value, as pflag names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Str,
    Int,
    Duration,
    Slice,
}

#[derive(Debug, Clone)]
pub struct Flag {
    pub name: &'static str,
    pub short: Option<char>,
    pub kind: Kind,
    pub default: &'static str,
    pub usage: &'static str,
    /// Accepted but left out of the help (cobra's `MarkHidden`): flags of later etcdctl
    /// releases, so that the help stays etcdctl 3.4's.
    pub hidden: bool,
}

pub const fn flag(
    name: &'static str,
    kind: Kind,
    default: &'static str,
    usage: &'static str,
) -> Flag {
    Flag {
        name,
        short: None,
        kind,
        default,
        usage,
        hidden: false,
    }
}

/// `f`, accepted but left out of the help.
pub const fn hidden(mut f: Flag) -> Flag {
    f.hidden = true;
    f
}

pub const fn short(
    name: &'static str,
    s: char,
    kind: Kind,
    default: &'static str,
    usage: &'static str,
) -> Flag {
    Flag {
        name,
        short: Some(s),
        kind,
        default,
        usage,
        hidden: false,
    }
}

/// One command of the tree.
#[derive(Debug, Clone, Default)]
pub struct Command {
    pub name: &'static str,
    pub use_line: &'static str,
    pub short: &'static str,
    pub long: &'static str,
    pub flags: Vec<Flag>,
    pub persistent: Vec<Flag>,
    pub subs: Vec<Command>,
    pub runnable: bool,
}

impl Command {
    pub fn new(use_line: &'static str, short: &'static str) -> Command {
        Command {
            name: use_line.split(' ').next().unwrap_or(use_line),
            use_line,
            short,
            runnable: true,
            ..Default::default()
        }
    }

    pub fn group(use_line: &'static str, short: &'static str, subs: Vec<Command>) -> Command {
        Command {
            subs,
            runnable: false,
            ..Command::new(use_line, short)
        }
    }

    pub fn long(mut self, long: &'static str) -> Command {
        self.long = long;
        self
    }

    pub fn flags(mut self, flags: Vec<Flag>) -> Command {
        self.flags.extend(flags);
        self
    }

    pub fn persistent(mut self, flags: Vec<Flag>) -> Command {
        self.persistent.extend(flags);
        self
    }

    fn find_sub(&self, name: &str) -> Option<&Command> {
        if let Some(c) = self.subs.iter().find(|c| c.name == name) {
            return Some(c);
        }
        // cobra.EnablePrefixMatching: a unique prefix names a command.
        let matches: Vec<&Command> = self
            .subs
            .iter()
            .filter(|c| c.name.starts_with(name))
            .collect();
        (matches.len() == 1 && !name.is_empty()).then(|| matches[0])
    }
}

/// Parsed flag values of one command (its own and the inherited ones).
#[derive(Debug, Clone, Default)]
pub struct Flags {
    specs: Vec<(Flag, bool)>,
    values: HashMap<&'static str, String>,
    slices: HashMap<&'static str, Vec<String>>,
    changed: HashSet<&'static str>,
}

impl Flags {
    fn new(local: &[Flag], inherited: &[Flag]) -> Flags {
        let mut flags = Flags::default();
        for (f, inh) in local
            .iter()
            .map(|f| (f, false))
            .chain(inherited.iter().map(|f| (f, true)))
        {
            if flags.specs.iter().any(|(s, _)| s.name == f.name) {
                continue;
            }
            flags.specs.push((f.clone(), inh));
            flags.values.insert(f.name, f.default.to_owned());
            if f.kind == Kind::Slice {
                flags.slices.insert(f.name, parse_slice_default(f.default));
            }
        }
        flags
    }

    fn spec(&self, name: &str) -> Option<&Flag> {
        self.specs.iter().map(|(f, _)| f).find(|f| f.name == name)
    }

    fn spec_short(&self, c: char) -> Option<&Flag> {
        self.specs
            .iter()
            .map(|(f, _)| f)
            .find(|f| f.short == Some(c))
    }

    /// Sets a flag from its text, as pflag's `Set`: an error is `invalid argument ...`'s cause.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        let spec = self
            .spec(name)
            .ok_or_else(|| format!("no such flag -{name}"))?
            .clone();
        match spec.kind {
            Kind::Bool => {
                parse_bool(value)?;
            }
            Kind::Int => {
                gofmt::parse_int(value)?;
            }
            Kind::Duration => {
                gofmt::parse_duration(value)?;
            }
            Kind::Str => {}
            Kind::Slice => {
                let items = parse_csv(value);
                let list = self.slices.entry(spec.name).or_default();
                if self.changed.contains(spec.name) {
                    list.extend(items);
                } else {
                    *list = items;
                }
            }
        }
        self.values.insert(spec.name, value.to_owned());
        self.changed.insert(spec.name);
        Ok(())
    }

    pub fn changed(&self, name: &str) -> bool {
        self.changed.contains(name)
    }

    pub fn str(&self, name: &str) -> String {
        self.values.get(name).cloned().unwrap_or_default()
    }

    pub fn bool(&self, name: &str) -> bool {
        self.values
            .get(name)
            .is_some_and(|v| parse_bool(v).unwrap_or(false))
    }

    pub fn int(&self, name: &str) -> i64 {
        self.values
            .get(name)
            .and_then(|v| gofmt::parse_int(v).ok())
            .unwrap_or(0)
    }

    pub fn duration(&self, name: &str) -> Duration {
        self.values
            .get(name)
            .and_then(|v| gofmt::parse_duration(v).ok())
            .unwrap_or_default()
    }

    pub fn slice(&self, name: &str) -> Vec<String> {
        self.slices.get(name).cloned().unwrap_or_default()
    }

    /// The inherited (global and parent-persistent) flags' names, in name order.
    pub fn inherited(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = self
            .specs
            .iter()
            .filter(|(_, inh)| *inh)
            .map(|(f, _)| f.name)
            .collect();
        names.sort_unstable();
        names
    }

    /// The value as `%v` prints it (`--debug` dumps them).
    pub fn display(&self, name: &str) -> String {
        match self.spec(name).map(|f| f.kind) {
            Some(Kind::Slice) => format!("[{}]", self.slice(name).join(",")),
            Some(Kind::Duration) => gofmt::duration(self.duration(name)),
            _ => self.str(name),
        }
    }
}

fn parse_bool(v: &str) -> Result<bool, String> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!(
            "strconv.ParseBool: parsing {}: invalid syntax",
            gofmt::quote(v)
        )),
    }
}

/// pflag's string slices are CSV records.
fn parse_csv(v: &str) -> Vec<String> {
    if v.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = v.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn parse_slice_default(v: &str) -> Vec<String> {
    let inner = v.trim_start_matches('[').trim_end_matches(']');
    parse_csv(inner)
}

/// The result of parsing a command line.
pub struct Parsed<'a> {
    /// Names from the root's child down, e.g. `["lease", "grant"]`.
    pub path: Vec<&'static str>,
    /// The command found (kept for callers that print its usage).
    #[allow(dead_code)]
    pub cmd: &'a Command,
    pub args: Vec<String>,
    pub flags: Flags,
}

/// Parses `args` (without the program name) against `root`. Errors and `--help` print as
/// cobra does and exit.
pub fn parse<'a>(root: &'a Command, args: &[String]) -> Parsed<'a> {
    // Find the command: the non-flag words, skipping the values of flags that take one.
    let mut chain: Vec<&Command> = vec![root];
    let mut inherited: Vec<Flag> = Vec::new();
    let mut used_words: Vec<usize> = Vec::new();
    {
        let mut i = 0;
        while i < args.len() {
            let cur = *chain.last().expect("root");
            let all: Vec<Flag> = cur
                .flags
                .iter()
                .chain(&cur.persistent)
                .chain(&inherited)
                .cloned()
                .collect();
            let s = &args[i];
            i += 1;
            if s == "--" {
                break;
            }
            if let Some(name) = s.strip_prefix("--") {
                if !s.contains('=') && !is_bool(&all, name, None) {
                    i += 1;
                }
                continue;
            }
            if s.starts_with('-') && s.len() > 1 {
                let c = s[1..].chars().next().unwrap_or('-');
                if !s.contains('=') && s.chars().count() == 2 && !is_bool(&all, "", Some(c)) {
                    i += 1;
                }
                continue;
            }
            if cur.subs.is_empty() {
                // Positional arguments from here on.
                break;
            }
            match cur.find_sub(s) {
                Some(sub) => {
                    inherited.extend(cur.persistent.iter().cloned());
                    chain.push(sub);
                    used_words.push(i - 1);
                }
                None => {
                    if chain.len() == 1 {
                        unknown_command(root, s);
                    }
                    break;
                }
            }
        }
    }
    let cmd = *chain.last().expect("root");
    if chain.len() > 1 {
        // Persistent flags of the command itself are local to it.
    }
    let mut local = cmd.flags.clone();
    local.extend(cmd.persistent.iter().cloned());
    local.push(short("help", 'h', Kind::Bool, "false", ""));
    let mut flags = Flags::new(&local, &inherited);
    let rest: Vec<String> = args
        .iter()
        .enumerate()
        .filter(|(i, _)| !used_words.contains(i))
        .map(|(_, a)| a.clone())
        .collect();
    let path: Vec<&'static str> = chain[1..].iter().map(|c| c.name).collect();
    let positional = match parse_flags(&mut flags, &rest) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("Error: {e}");
            print_usage(root, &chain, &flags);
            eprintln!();
            exit::fail(ExitCode::Error, &e);
        }
    };
    if flags.bool("help") || !cmd.runnable {
        print_usage(root, &chain, &flags);
        exit::exit(ExitCode::Success);
    }
    Parsed {
        path,
        cmd,
        args: positional,
        flags,
    }
}

fn is_bool(all: &[Flag], name: &str, c: Option<char>) -> bool {
    all.iter()
        .find(|f| match c {
            Some(c) => f.short == Some(c),
            None => f.name == name,
        })
        .is_some_and(|f| f.kind == Kind::Bool)
}

fn unknown_command(root: &Command, word: &str) -> ! {
    let mut msg = format!("unknown command {} for \"etcdctl\"", gofmt::quote(word));
    let lower = word.to_lowercase();
    let suggestions: Vec<&str> = root
        .subs
        .iter()
        .filter(|c| {
            gofmt::levenshtein(&lower, &c.name.to_lowercase()) <= 2
                || c.name.to_lowercase().starts_with(&lower)
        })
        .map(|c| c.name)
        .collect();
    if !suggestions.is_empty() {
        msg += "\n\nDid you mean this?\n";
        for s in suggestions {
            msg += &format!("\t{s}\n");
        }
    }
    eprintln!("Error: {msg}");
    eprintln!("Run 'etcdctl --help' for usage.");
    exit::fail(ExitCode::Error, &msg);
}

/// pflag's `Parse` with interspersed flags: returns the positional arguments.
pub fn parse_flags(flags: &mut Flags, args: &[String]) -> Result<Vec<String>, String> {
    let mut positional = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let s = &args[i];
        i += 1;
        if s == "--" {
            positional.extend(args[i..].iter().cloned());
            break;
        }
        if let Some(body) = s.strip_prefix("--") {
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (body, None),
            };
            let Some(spec) = flags.spec(name).cloned() else {
                return Err(format!("unknown flag: --{name}"));
            };
            let value = match value {
                Some(v) => v,
                None if spec.kind == Kind::Bool => "true".to_owned(),
                None if i < args.len() => {
                    i += 1;
                    args[i - 1].clone()
                }
                None => return Err(format!("flag needs an argument: {s}")),
            };
            flags.set(spec.name, &value).map_err(|e| {
                format!(
                    "invalid argument {} for {} flag: {e}",
                    gofmt::quote(&value),
                    gofmt::quote(&flag_label(&spec))
                )
            })?;
        } else if s.starts_with('-') && s.len() > 1 {
            let mut shorts = &s[1..];
            while !shorts.is_empty() {
                let c = shorts.chars().next().expect("non-empty");
                let after = &shorts[c.len_utf8()..];
                let Some(spec) = flags.spec_short(c).cloned() else {
                    return Err(format!("unknown shorthand flag: '{c}' in {s}"));
                };
                let value;
                if let Some(v) = after.strip_prefix('=') {
                    value = v.to_owned();
                    shorts = "";
                } else if spec.kind == Kind::Bool {
                    value = "true".to_owned();
                    shorts = after;
                } else if !after.is_empty() {
                    value = after.to_owned();
                    shorts = "";
                } else if i < args.len() {
                    value = args[i].clone();
                    i += 1;
                    shorts = "";
                } else {
                    return Err(format!("flag needs an argument: '{c}' in {s}"));
                }
                flags.set(spec.name, &value).map_err(|e| {
                    format!(
                        "invalid argument {} for {} flag: {e}",
                        gofmt::quote(&value),
                        gofmt::quote(&flag_label(&spec))
                    )
                })?;
            }
        } else {
            positional.push(s.clone());
        }
    }
    Ok(positional)
}

fn flag_label(f: &Flag) -> String {
    match f.short {
        Some(c) => format!("-{c}, --{}", f.name),
        None => format!("--{}", f.name),
    }
}

/// etcdctl's usage template, through Go's tabwriter, on standard output.
pub fn print_usage(root: &Command, chain: &[&Command], flags: &Flags) {
    let cmd = *chain.last().expect("root");
    let mut out = String::new();
    let is_root = chain.len() == 1;
    let cmdname = chain[1..]
        .iter()
        .map(|c| c.name)
        .collect::<Vec<_>>()
        .join(" ");
    out += "NAME:\n";
    if is_root {
        out += &format!("\t{} - {}\n\n", cmd.name, cmd.short);
    } else {
        out += &format!("\t{} - {}\n\n", cmdname, cmd.short);
    }
    out += "USAGE:\n";
    let parents: Vec<&str> = chain[..chain.len() - 1].iter().map(|c| c.name).collect();
    let mut use_line = if parents.is_empty() {
        cmd.use_line.to_owned()
    } else {
        format!("{} {}", parents.join(" "), cmd.use_line)
    };
    if !use_line.contains("[flags]") {
        use_line += " [flags]";
    }
    out += &format!("\t{use_line}\n\n");
    if is_root {
        out += &format!("VERSION:\n\t{}\n\n", crate::ETCD_VERSION);
    }
    if !cmd.subs.is_empty() {
        out += &format!("API VERSION:\n\t{}\n\n\n", crate::API_VERSION);
        out += "COMMANDS:\n";
        let mut all: Vec<(String, String)> = Vec::new();
        let mut subs = Vec::new();
        collect_subs(cmd, "", &mut subs);
        for (name, c) in subs {
            if c.runnable {
                all.push((name, c.short.to_owned()));
            }
        }
        if is_root {
            // cobra's own commands.
            for (name, short) in [
                (
                    "completion bash",
                    "Generate the autocompletion script for bash",
                ),
                (
                    "completion fish",
                    "Generate the autocompletion script for fish",
                ),
                (
                    "completion powershell",
                    "Generate the autocompletion script for powershell",
                ),
                (
                    "completion zsh",
                    "Generate the autocompletion script for zsh",
                ),
                ("help", "Help about any command"),
            ] {
                all.push((name.to_owned(), short.to_owned()));
            }
            all.sort();
        }
        for (name, short) in all {
            out += &format!("\t{name}\t{short}\n");
        }
        out += "\n";
    }
    if !cmd.long.is_empty() {
        out += "DESCRIPTION:\n";
        for line in cmd
            .long
            .trim_matches(|c| c == '\n' || c == '\t' || c == ' ')
            .split('\n')
        {
            out += &format!("\t{line}\n");
        }
        out += "\n";
    }
    let mut local: Vec<&Flag> = flags
        .specs
        .iter()
        .filter(|(f, inh)| !inh && !f.hidden)
        .map(|(f, _)| f)
        .collect();
    local.sort_by_key(|f| f.name);
    let help_line = format!("help for {}", cmd.name);
    if !local.is_empty() {
        out += "OPTIONS:\n";
        for f in local {
            out += &flag_usage(
                f,
                if f.name == "help" {
                    &help_line
                } else {
                    f.usage
                },
            );
        }
        out += "\n";
    }
    let _ = root;
    let mut inherited: Vec<&Flag> = flags
        .specs
        .iter()
        .filter(|(_, inh)| *inh)
        .map(|(f, _)| f)
        .collect();
    inherited.sort_by_key(|f| f.name);
    if !inherited.is_empty() {
        out += "GLOBAL OPTIONS:\n";
        for f in inherited {
            out += &flag_usage(f, f.usage);
        }
        out += "\n";
    }
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(tabwriter(&out).as_bytes());
    let _ = stdout.flush();
}

fn collect_subs<'a>(cmd: &'a Command, prefix: &str, out: &mut Vec<(String, &'a Command)>) {
    let mut subs: Vec<&Command> = cmd.subs.iter().collect();
    subs.sort_by_key(|c| c.name);
    for c in subs {
        let name = if prefix.is_empty() {
            c.name.to_owned()
        } else {
            format!("{prefix} {}", c.name)
        };
        out.push((name.clone(), c));
        collect_subs(c, &name, out);
    }
}

fn flag_usage(f: &Flag, usage: &str) -> String {
    let mut s = match f.short {
        Some(c) => format!("  -{c}, --{}", f.name),
        None => format!("      --{}", f.name),
    };
    let value = if f.kind == Kind::Str {
        gofmt::quote(f.default)
    } else {
        f.default.to_owned()
    };
    if f.kind == Kind::Bool {
        s += &format!("[={value}]");
    } else {
        s += &format!("={value}");
    }
    format!("{s}\t{usage}\n")
}

/// Go's `text/tabwriter` with minwidth 0, tabwidth 8, padding 1, padchar '\t'.
pub fn tabwriter(text: &str) -> String {
    let lines: Vec<Vec<&str>> = text
        .strip_suffix('\n')
        .unwrap_or(text)
        .split('\n')
        .map(|l| l.split('\t').collect())
        .collect();
    let mut out = String::new();
    let mut widths = Vec::new();
    format_block(&lines, 0, lines.len(), &mut widths, &mut out);
    if !text.ends_with('\n') {
        out.pop();
    }
    out
}

fn format_block(
    lines: &[Vec<&str>],
    mut line0: usize,
    line1: usize,
    widths: &mut Vec<usize>,
    out: &mut String,
) {
    let column = widths.len();
    let mut this = line0;
    while this < line1 {
        if column + 1 >= lines[this].len() {
            this += 1;
            continue;
        }
        write_lines(lines, line0, this, widths, out);
        line0 = this;
        let mut width = 0;
        while this < line1 && column + 1 < lines[this].len() {
            width = width.max(lines[this][column].chars().count() + 1);
            this += 1;
        }
        widths.push(width);
        format_block(lines, line0, this, widths, out);
        widths.pop();
        line0 = this;
    }
    write_lines(lines, line0, line1, widths, out);
}

fn write_lines(lines: &[Vec<&str>], from: usize, to: usize, widths: &[usize], out: &mut String) {
    for line in &lines[from..to] {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if j < widths.len() && j + 1 < line.len() {
                let cellw = widths[j].div_ceil(8) * 8;
                let n = cellw - cell.chars().count();
                for _ in 0..n.div_ceil(8) {
                    out.push('\t');
                }
            }
        }
        out.push('\n');
    }
}

impl Flags {
    /// The flags of `cmd` alone (no inherited ones), as `txn` parses its request lines.
    pub fn for_command(cmd: &Command) -> Flags {
        let mut local = cmd.flags.clone();
        local.push(short("help", 'h', Kind::Bool, "false", ""));
        Flags::new(&local, &[])
    }
}
