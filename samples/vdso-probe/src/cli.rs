// SPDX-License-Identifier: GPL-2.0
//! The one command-line convention of the `vdso-*` tools, in the manner of binutils and
//! util-linux. Every binary is `fn main() -> ExitCode { TOOL.main(run) }` over a [`Tool`]:
//!
//! * **Errors**: one line on stderr, `prog: message`, the error's context chain joined with
//!   `: ` (anyhow's `{:#}`), never a backtrace (whatever `RUST_BACKTRACE` says) and never Rust
//!   `Debug` syntax. Usage errors from clap are folded into the same one line; a panic (a bug)
//!   prints `prog: internal error: ...`.
//! * **Exit status** ([`Status`]): 0 ok; 1 a problem found (a disagreement, a value outside
//!   its bracket, a mismatch: [`problem`]); 2 could not run (bad usage, module or debugfs
//!   missing, unreadable input, a panic). `--help` ends with each tool's own EXIT STATUS.
//! * **`--version`**: `prog VERSION`, the program's own name and the workspace version.
//! * **`--help`**: the first line says what the tool does (the doc comment of its `Args`);
//!   then options, EXAMPLES and EXIT STATUS.
//! * **Closed output pipe** (`prog | head -1`): not an error, exit 0. Rust ignores SIGPIPE,
//!   so a write to a closed pipe fails with `EPIPE`; the tools write stdout only through
//!   [`outln!`](crate::outln)/[`out!`](crate::out)/[`write_stdout`], which exit 0 quietly on
//!   it. Any other write error (`> /dev/full`) is `prog: write error: ...`, exit 2.
//! * **JSON** ([`print_json`]): one document per invocation, `{"tool": "prog", "version":
//!   "0.1.0", "<plural key>": [ ... ]}` (util-linux's `lsblk -J` shape): addresses are hex
//!   strings (`"0x7ffd..."`, [`json::hex`]), counts and nanoseconds are JSON numbers, absent
//!   values are `null`.

use std::fmt::{self, Display};
use std::io::{self, Write};
use std::panic::{self, AssertUnwindSafe};
use std::process::ExitCode;
use std::sync::OnceLock;

use anyhow::Result;
use clap::{error::ErrorKind, CommandFactory, FromArgMatches};
use serde::ser::{Serialize, SerializeMap, Serializer};

/// The workspace version every tool reports (`--version`, the JSON `version`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// How a tool ended; the process exit status is the discriminant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// 0: ran, found nothing wrong.
    Ok = 0,
    /// 1: ran, and found a problem (a disagreement, a value outside a bracket, a mismatch).
    Problem = 1,
    /// 2: could not run (bad usage, module or debugfs missing, unreadable input).
    CannotRun = 2,
}

impl Status {
    /// The worse of two statuses (for tools that go on after a failure, e.g. several pids).
    #[must_use]
    pub fn worst(self, other: Status) -> Status {
        self.max(other)
    }
}

impl From<Status> for ExitCode {
    fn from(s: Status) -> ExitCode {
        ExitCode::from(s as u8)
    }
}

/// An error that means "a problem was found" (exit 1) rather than "could not run" (exit 2).
#[derive(Debug)]
pub struct Problem(String);

impl Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Problem {}

/// A "problem found" error: the tool prints `prog: msg` and exits 1.
pub fn problem(msg: impl Display) -> anyhow::Error {
    anyhow::Error::new(Problem(msg.to_string()))
}

/// The exit status an error stands for: [`Status::Problem`] if it is (or wraps) a
/// [`problem`], else [`Status::CannotRun`].
pub fn status_of(e: &anyhow::Error) -> Status {
    if e.downcast_ref::<Problem>().is_some() {
        Status::Problem
    } else {
        Status::CannotRun
    }
}

static PROG: OnceLock<&'static str> = OnceLock::new();

/// The running tool's name (set by [`Tool::main`]; `vdso-probe` before that).
pub fn prog() -> &'static str {
    PROG.get().copied().unwrap_or("vdso-probe")
}

/// One line of text: the lines of `s` joined with `; `, and the ` (os error N)` that Rust
/// appends to I/O errors removed (`No such file or directory`, as strerror says it).
pub fn one_line(s: &str) -> String {
    let mut out = s
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    while let Some(start) = out.find(" (os error ") {
        match out[start..].find(')') {
            Some(len) => out.replace_range(start..start + len + 1, ""),
            None => break,
        }
    }
    out
}

/// The one-line form of an error: its context chain joined with `: `.
pub fn error_line(e: &anyhow::Error) -> String {
    one_line(&format!("{e:#}"))
}

/// Prints `prog: msg` on stderr (one line). For tools that report an error and go on.
pub fn error(msg: impl Display) {
    let _ = writeln!(
        io::stderr().lock(),
        "{}: {}",
        prog(),
        one_line(&msg.to_string())
    );
}

/// Quotes untrusted text for a message: `'text'`, with control characters, quotes and
/// backslashes escaped C-style (`\n`, `\x1b`), not in Rust's `Debug` syntax.
pub fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('\'');
    for c in s.chars() {
        match c {
            '\n' => q.push_str("\\n"),
            '\t' => q.push_str("\\t"),
            '\r' => q.push_str("\\r"),
            '\'' => q.push_str("\\'"),
            '\\' => q.push_str("\\\\"),
            c if c.is_control() => q.push_str(&format!("\\x{:02x}", u32::from(c))),
            c => q.push(c),
        }
    }
    q.push('\'');
    q
}

fn is_broken_pipe(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::BrokenPipe
}

/// What a failed write to stdout does: a closed pipe ends the tool with status 0 (its reader
/// has what it wanted); any other error ends it with `prog: write error: ...` and status 2.
fn stdout_failed(e: &io::Error) -> ! {
    if !is_broken_pipe(e) {
        error(format_args!("write error: {e}"));
        std::process::exit(Status::CannotRun as i32);
    }
    std::process::exit(Status::Ok as i32)
}

/// Writes to stdout (the [`out!`](crate::out) and [`outln!`](crate::outln) macros call this);
/// see [`stdout_failed`] for what a failed write does.
pub fn write_stdout_fmt(args: fmt::Arguments<'_>) {
    if let Err(e) = io::stdout().lock().write_fmt(args) {
        stdout_failed(&e);
    }
}

/// Writes bytes to stdout and flushes (e.g. an image with `vdso-dump -o -`).
pub fn write_stdout(bytes: &[u8]) {
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
        stdout_failed(&e);
    }
}

/// `print!` for the tools: see [`write_stdout_fmt`].
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::write_stdout_fmt(format_args!($($arg)*))
    };
}

/// `println!` for the tools: see [`write_stdout_fmt`].
#[macro_export]
macro_rules! outln {
    () => {
        $crate::cli::write_stdout_fmt(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::write_stdout_fmt(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `text` after `lead`, wrapped at 100 columns, continuation lines indented like the text.
fn wrap(lead: &str, text: &str) -> String {
    let indent = " ".repeat(lead.len());
    let mut out = String::new();
    let mut line = lead.to_string();
    for word in text.split_whitespace() {
        if line.len() > lead.len() && line.len() + 1 + word.len() > 100 {
            out += &line;
            out.push('\n');
            line = indent.clone();
        } else if line.len() > lead.len() {
            line.push(' ');
        }
        line += word;
    }
    out += &line;
    out.push('\n');
    out
}

/// A tool's name and the parts of its `--help` that clap does not generate.
#[derive(Debug)]
pub struct Tool {
    /// The program name (`env!("CARGO_BIN_NAME")`).
    pub name: &'static str,
    /// `(command line, what it does)` pairs for EXAMPLES.
    pub examples: &'static [(&'static str, &'static str)],
    /// What exit status 1 means for this tool; `None`: it never exits 1.
    pub problem: Option<&'static str>,
    /// What "could not run" (exit status 2) covers besides bad usage.
    pub cannot_run: &'static str,
}

impl Tool {
    /// The EXAMPLES and EXIT STATUS sections that end `--help`.
    pub fn after_help(&self) -> String {
        let mut s = String::from("EXAMPLES:\n");
        let width = self
            .examples
            .iter()
            .map(|(c, _)| c.len())
            .max()
            .unwrap_or(0);
        for (cmd, what) in self.examples {
            s += &format!("  {cmd:<width$}  {what}\n");
        }
        s += "\nEXIT STATUS:\n";
        s += &wrap(
            "  0  ",
            "success (also when the reader of the output went away, e.g. | head)",
        );
        if let Some(p) = self.problem {
            s += &wrap("  1  ", p);
        }
        s += &wrap(
            "  2  ",
            &format!("could not run: bad usage, {}", self.cannot_run),
        );
        s
    }

    /// The clap command of `A` with this tool's name, version and help sections.
    pub fn command<A: CommandFactory>(&self) -> clap::Command {
        A::command()
            .name(self.name)
            .bin_name(self.name)
            .version(VERSION)
            .after_help(self.after_help())
    }

    /// Parses the command line into `A`: `--help` and `--version` print and exit 0; a usage
    /// error prints one `prog: ...` line and exits 2.
    pub fn parse<A: CommandFactory + FromArgMatches>(&self) -> A {
        let parsed = self
            .command::<A>()
            .try_get_matches()
            .and_then(|m| A::from_arg_matches(&m));
        match parsed {
            Ok(args) => args,
            Err(e) => self.clap_exit(&e),
        }
    }

    fn clap_exit(&self, e: &clap::Error) -> ! {
        if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
            // To stdout; a closed pipe is fine here too.
            let _ = e.print();
            let _ = io::stdout().flush();
            std::process::exit(Status::Ok as i32);
        }
        // clap's rendering: `error: MESSAGE`, blank, `  tip: ...`, usage, `For more ...`.
        let text = e.render().to_string();
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        let mut msg = lines
            .next()
            .map(|l| l.strip_prefix("error: ").unwrap_or(l).to_string())
            .unwrap_or_else(|| "bad usage".to_string());
        for tip in lines.filter(|l| l.starts_with("tip: ")) {
            msg += "; ";
            msg += tip;
        }
        error(format_args!("{msg}; try '{} --help'", self.name));
        std::process::exit(Status::CannotRun as i32)
    }

    /// Runs the tool: parses `A`, runs `run`, and turns the outcome into the exit status,
    /// printing an error as one `prog: ...` line.
    pub fn main<A: CommandFactory + FromArgMatches>(
        &'static self,
        run: impl FnOnce(A) -> Result<Status>,
    ) -> ExitCode {
        let _ = PROG.set(self.name);
        panic::set_hook(Box::new(|info| {
            let payload = info.payload();
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".to_string());
            let at = info
                .location()
                .map(|l| format!(" (at {}:{})", l.file(), l.line()))
                .unwrap_or_default();
            error(format_args!("internal error: {msg}{at}"));
        }));
        let args = self.parse::<A>();
        let status = match panic::catch_unwind(AssertUnwindSafe(|| run(args))) {
            Ok(Ok(status)) => status,
            Ok(Err(e)) => {
                let broken_pipe = e
                    .chain()
                    .filter_map(|c| c.downcast_ref::<io::Error>())
                    .any(is_broken_pipe);
                if broken_pipe {
                    return Status::Ok.into();
                }
                error(error_line(&e));
                status_of(&e)
            }
            Err(_) => Status::CannotRun, // the hook printed the one line
        };
        if let Err(e) = io::stdout().flush() {
            stdout_failed(&e);
        }
        status.into()
    }
}

/// The JSON document of one invocation: `{"tool", "version", key: items}`, in that order.
pub struct Document<'a, T> {
    /// The program name.
    pub tool: &'a str,
    /// The plural key of the array (`reports`, `samples`, `runs`).
    pub key: &'a str,
    /// The elements.
    pub items: &'a [T],
}

impl<T: Serialize> Serialize for Document<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("tool", self.tool)?;
        m.serialize_entry("version", VERSION)?;
        m.serialize_entry(self.key, self.items)?;
        m.end()
    }
}

/// Prints the running tool's JSON document (pretty, one document, newline-terminated).
pub fn print_json<T: Serialize>(key: &str, items: &[T]) -> Result<()> {
    let doc = Document {
        tool: prog(),
        key,
        items,
    };
    let mut text = serde_json::to_string_pretty(&doc)?;
    text.push('\n');
    write_stdout(text.as_bytes());
    Ok(())
}

/// `serialize_with` helpers for the JSON convention.
pub mod json {
    use serde::Serializer;
    use std::fmt::LowerHex;

    /// An address (or bit mask) as a hex string, `"0x7ffd5e3f1000"`.
    pub fn hex<T: LowerHex, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{v:#x}"))
    }

    /// An optional address: a hex string or `null`.
    pub fn hex_opt<T: LowerHex, S: Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => hex(v, s),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_joins_and_drops_os_error() {
        assert_eq!(
            one_line("reading x: No such file or directory (os error 2)"),
            "reading x: No such file or directory"
        );
        assert_eq!(one_line("a\n\n  b\n"), "a; b");
        assert_eq!(one_line("odd (os error 5"), "odd (os error 5");
    }

    #[test]
    fn quote_escapes_c_style() {
        assert_eq!(quote("ab"), "'ab'");
        assert_eq!(quote("a\nb\x1b'\\"), "'a\\nb\\x1b\\'\\\\'");
    }

    #[test]
    fn problem_status() {
        assert_eq!(status_of(&problem("x")), Status::Problem);
        assert_eq!(
            status_of(&problem("x").context("while checking")),
            Status::Problem
        );
        assert_eq!(status_of(&anyhow::anyhow!("x")), Status::CannotRun);
        assert_eq!(Status::Problem.worst(Status::Ok), Status::Problem);
        assert_eq!(Status::Problem.worst(Status::CannotRun), Status::CannotRun);
    }

    #[test]
    fn document_shape_and_order() {
        #[derive(serde::Serialize)]
        struct Item {
            #[serde(serialize_with = "json::hex")]
            addr: u64,
            #[serde(serialize_with = "json::hex_opt")]
            none: Option<usize>,
            n: i128,
        }
        let doc = Document {
            tool: "t",
            key: "items",
            items: &[Item {
                addr: 0x7fff_0000,
                none: None,
                n: -5,
            }],
        };
        assert_eq!(
            serde_json::to_string(&doc).unwrap(),
            format!(
                r#"{{"tool":"t","version":"{VERSION}","items":[{{"addr":"0x7fff0000","none":null,"n":-5}}]}}"#
            )
        );
    }
}
