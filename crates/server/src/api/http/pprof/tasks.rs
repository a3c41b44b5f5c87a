//! `goroutine`: the tokio-task equivalent of Go's goroutine profile. tokio's task dump
//! (`Handle::dump`, built with `--cfg tokio_unstable` and tokio's `taskdump` feature)
//! pauses the runtime's workers, polls every task once in tracing mode and records the
//! stack from the task's root future down to each tokio leaf future it waits on (a
//! channel, a lock, a timer, a socket). A task waiting on several futures at once
//! (`select!`, `join!`) has one stack per leaf.
//!
//! Go's three forms: the default is a pprof protobuf with one sample per stack and the
//! task id as a label; `?debug=1` counts the tasks per distinct stack; `?debug=2` lists
//! every task's stacks.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use axum::http::StatusCode;

use super::encode::{Frame, Label, ProfileBuilder};

/// How long the runtime's workers get to pause for a dump. tokio's dump never finishes
/// while a worker thread is blocked (in a system call, or a loop that never yields).
pub const DUMP_TIMEOUT: Duration = Duration::from_secs(10);

/// One task and the stacks of the leaf futures it waits on, innermost frame first.
#[derive(Debug, Clone)]
pub struct TaskStacks {
    pub id: String,
    pub stacks: Vec<Vec<Frame>>,
}

/// Why no task dump could be taken.
#[derive(Debug, thiserror::Error)]
pub enum TasksError {
    #[error(
        "this chorus was built without --cfg tokio_unstable (.cargo/config.toml sets it; a \
         RUSTFLAGS environment variable replaces it), so tokio cannot dump its tasks"
    )]
    #[cfg_attr(tokio_unstable, allow(dead_code))]
    NotBuilt,
    #[error(
        "the task dump did not finish within {}s: a runtime worker thread is blocked (in a \
         system call or a loop that does not yield); /debug/pprof/profile shows where the \
         threads spend their time",
        DUMP_TIMEOUT.as_secs()
    )]
    Timeout,
    #[error("Could not write the task dump: {0}")]
    Encode(#[from] std::io::Error),
}

impl TasksError {
    pub fn status(&self) -> StatusCode {
        match self {
            TasksError::NotBuilt => StatusCode::NOT_IMPLEMENTED,
            TasksError::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            TasksError::Encode(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// Every task of the current runtime, with its stacks symbolized.
#[cfg(tokio_unstable)]
pub async fn snapshot() -> Result<Vec<TaskStacks>, TasksError> {
    let handle = tokio::runtime::Handle::current();
    let dump = tokio::time::timeout(DUMP_TIMEOUT, handle.dump())
        .await
        .map_err(|_| TasksError::Timeout)?;
    // Symbolizing reads the binary's debug info: not on a runtime worker.
    tokio::task::spawn_blocking(move || dump.tasks().iter().map(symbolize).collect())
        .await
        .map_err(|e| TasksError::Encode(std::io::Error::other(e)))
}

#[cfg(not(tokio_unstable))]
pub async fn snapshot() -> Result<Vec<TaskStacks>, TasksError> {
    Err(TasksError::NotBuilt)
}

#[cfg(tokio_unstable)]
fn symbolize(task: &tokio::runtime::dump::Task) -> TaskStacks {
    let stacks = task
        .trace()
        .resolve_backtraces()
        .iter()
        .map(|bt| {
            bt.frames()
                .flat_map(|f| f.symbols())
                .map(|s| Frame {
                    function: s
                        .name_demangled()
                        .map_or_else(|| "??".to_string(), |n| without_hash(n).to_string()),
                    file: s
                        .filename()
                        .map_or_else(String::new, |p| p.display().to_string()),
                    line: s.lineno().unwrap_or(0),
                })
                .collect()
        })
        .collect();
    TaskStacks {
        id: task.id().to_string(),
        stacks,
    }
}

/// `a::b::h0123456789abcdef` → `a::b` (the hash rustc's legacy mangling appends).
#[cfg_attr(not(tokio_unstable), allow(dead_code))]
fn without_hash(name: &str) -> &str {
    match name.rsplit_once("::h") {
        Some((head, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            head
        }
        _ => name,
    }
}

/// The stacks a task is counted under; a task whose poll reached no tokio leaf (it waits
/// on a future from outside tokio) gets one placeholder frame.
fn stacks_of(task: &TaskStacks) -> Vec<Vec<Frame>> {
    let placeholder = || {
        vec![Frame {
            function: "(no tokio await point: waiting on a future from outside tokio)".into(),
            file: String::new(),
            line: 0,
        }]
    };
    if task.stacks.is_empty() {
        return vec![placeholder()];
    }
    task.stacks
        .iter()
        .map(|s| {
            if s.is_empty() {
                placeholder()
            } else {
                s.clone()
            }
        })
        .collect()
}

/// The default form: one sample per stack, value 1, labelled with the task id.
pub fn pprof(tasks: &[TaskStacks]) -> std::io::Result<Vec<u8>> {
    let mut b = ProfileBuilder::new(&[("goroutine", "count")], ("goroutine", "count"), 1);
    for task in tasks {
        for stack in stacks_of(task) {
            let label = [Label {
                key: "task",
                value: task.id.clone(),
            }];
            b.add(&stack, vec![1], &label);
        }
    }
    b.finish()
}

/// `?debug=1`: how many tasks wait at each distinct stack, most first.
pub fn counts_text(tasks: &[TaskStacks]) -> String {
    let mut by_stack: BTreeMap<Vec<Frame>, usize> = BTreeMap::new();
    for task in tasks {
        for stack in stacks_of(task) {
            *by_stack.entry(stack).or_default() += 1;
        }
    }
    let mut groups: Vec<_> = by_stack.into_iter().collect();
    groups.sort_by_key(|g| std::cmp::Reverse(g.1));
    let mut out = format!("goroutine profile: total {}\n", tasks.len());
    for (stack, n) in groups {
        let _ = writeln!(out, "{n} @");
        for f in &stack {
            let _ = writeln!(out, "#\t{}\t{}:{}", f.function, f.file, f.line);
        }
        out.push('\n');
    }
    out
}

/// `?debug=2`: every task and its stacks, as Go lists every goroutine.
pub fn each_text(tasks: &[TaskStacks]) -> String {
    let mut out = String::new();
    for task in tasks {
        let stacks = stacks_of(task);
        let _ = writeln!(
            out,
            "task {} [{} await point{}]:",
            task.id,
            stacks.len(),
            if stacks.len() == 1 { "" } else { "s" }
        );
        for (i, stack) in stacks.iter().enumerate() {
            if i > 0 {
                out.push_str("...and, concurrently:\n");
            }
            for f in stack {
                let _ = writeln!(out, "{}\n\t{}:{}", f.function, f.file, f.line);
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(f: &str) -> Frame {
        Frame {
            function: f.into(),
            file: "src/x.rs".into(),
            line: 1,
        }
    }

    fn tasks() -> Vec<TaskStacks> {
        let wait = vec![frame("Notified::poll"), frame("apply_loop")];
        vec![
            TaskStacks {
                id: "1".into(),
                stacks: vec![wait.clone()],
            },
            TaskStacks {
                id: "2".into(),
                stacks: vec![wait, vec![frame("Sleep::poll"), frame("ticker")]],
            },
            TaskStacks {
                id: "3".into(),
                stacks: vec![],
            },
        ]
    }

    #[test]
    fn debug1_counts_tasks_per_stack_most_first() {
        let text = counts_text(&tasks());
        assert!(text.starts_with("goroutine profile: total 3\n2 @\n#\tNotified::poll\tsrc/x.rs:1\n#\tapply_loop\tsrc/x.rs:1\n\n"), "{text}");
        assert!(text.contains("1 @\n#\tSleep::poll"), "{text}");
        assert!(text.contains("1 @\n#\t(no tokio await point"), "{text}");
    }

    #[test]
    fn debug2_lists_every_task() {
        let text = each_text(&tasks());
        assert!(text.starts_with("task 1 [1 await point]:\nNotified::poll\n\tsrc/x.rs:1\napply_loop\n\tsrc/x.rs:1\n\n"), "{text}");
        assert!(
            text.contains("task 2 [2 await points]:\nNotified::poll"),
            "{text}"
        );
        assert!(
            text.contains("...and, concurrently:\nSleep::poll"),
            "{text}"
        );
        assert!(
            text.contains("task 3 [1 await point]:\n(no tokio"),
            "{text}"
        );
    }

    #[cfg(tokio_unstable)]
    #[inline(never)]
    async fn waits_for_the_test(n: std::sync::Arc<tokio::sync::Notify>) {
        n.notified().await
    }

    /// A real dump: the task parked on a `Notify` shows the async fn it waits in (by file:
    /// an async fn's body is named `{async_fn#0}` in the debug info).
    #[cfg(tokio_unstable)]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_dump_shows_where_a_task_waits() {
        let notify = std::sync::Arc::new(tokio::sync::Notify::new());
        let task = tokio::spawn(waits_for_the_test(notify.clone()));
        let tasks = snapshot().await.unwrap();
        let waiting = tasks.iter().find(|t| {
            t.stacks
                .iter()
                .flatten()
                .any(|f| f.file.ends_with("pprof/tasks.rs"))
        });
        let waiting = waiting.unwrap_or_else(|| panic!("{}", each_text(&tasks)));
        let frames: Vec<&str> = waiting.stacks[0]
            .iter()
            .map(|f| f.function.as_str())
            .collect();
        assert!(
            frames
                .iter()
                .any(|f| f.starts_with("tokio::sync::notify::")),
            "{frames:?}"
        );
        notify.notify_one();
        task.await.unwrap();
    }

    #[test]
    fn hashes_are_stripped_from_symbol_names() {
        assert_eq!(without_hash("a::b::h0123456789abcdef"), "a::b");
        assert_eq!(without_hash("a::hello"), "a::hello");
        assert_eq!(without_hash("a::b::{{closure}}"), "a::b::{{closure}}");
    }
}
