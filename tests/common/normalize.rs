//! Blanks the parts of a command's output that legitimately differ between two clusters
//! (chorus and etcd, or two runs), so the rest can be compared exactly. Nothing is blanked
//! unless asked: each option names what a test chooses to ignore.

use std::path::Path;

use regex::{Captures, Regex};

/// Rules applied in a fixed order: paths, IDs, then the pattern options.
#[derive(Debug, Clone, Default)]
pub struct Normalizer {
    /// (text, placeholder), applied longest text first.
    literals: Vec<(String, String)>,
    /// (id, placeholder): decimal and hex forms, whole words only.
    ids: Vec<(u64, String)>,
    revisions: bool,
    raft_terms: bool,
    raft_indexes: bool,
    ports: bool,
    durations: bool,
    db_sizes: bool,
    client_logs: bool,
    tables: bool,
}

/// Separators between the `IS LEADER, IS LEARNER, RAFT TERM, RAFT INDEX, RAFT APPLIED
/// INDEX` columns of `endpoint status`, in its simple (`, `) and table (` | `) forms.
const STATUS_COLUMNS: &str = r"\b(true|false)(,\s+|\s+\|\s+)(true|false)(,\s+|\s+\|\s+)(\d+)(,\s+|\s+\|\s+)(\d+)(,\s+|\s+\|\s+)(\d+)\b";

impl Normalizer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Member IDs: `ids[i]` becomes `<member-i>`, in decimal (`-w json`, `-w fields`) and
    /// hex (`member list`, `endpoint status`) forms.
    pub fn member_ids(mut self, ids: &[u64]) -> Self {
        for (i, &id) in ids.iter().enumerate() {
            self.ids.push((id, format!("<member-{i}>")));
        }
        self
    }

    /// The cluster ID becomes `<cluster-id>` (decimal and hex).
    pub fn cluster_id(mut self, id: u64) -> Self {
        self.ids.push((id, "<cluster-id>".to_owned()));
        self
    }

    /// Any other ID (a lease, say) becomes `placeholder` (decimal and hex).
    pub fn id(mut self, id: u64, placeholder: &str) -> Self {
        self.ids.push((id, placeholder.to_owned()));
        self
    }

    /// Every occurrence of `path` (a data dir, the cluster's temp dir) becomes `placeholder`.
    pub fn path(self, path: &Path, placeholder: &str) -> Self {
        self.text(&path.display().to_string(), placeholder)
    }

    /// Every occurrence of `text` becomes `placeholder`.
    pub fn text(mut self, text: &str, placeholder: &str) -> Self {
        self.literals
            .push((text.to_owned(), placeholder.to_owned()));
        self
    }

    /// Revision fields: `"revision":N`, `"mod_revision"`, `"create_revision"`,
    /// `"compact_revision"` (JSON), `"Revision" : N` and friends (`-w fields`), and
    /// `compacted revision N`.
    pub fn revisions(mut self) -> Self {
        self.revisions = true;
        self
    }

    /// Raft terms: `"raft_term"`, `"raftTerm"`, `"RaftTerm"` fields and the RAFT TERM column
    /// of `endpoint status`.
    pub fn raft_terms(mut self) -> Self {
        self.raft_terms = true;
        self
    }

    /// Raft indexes: `"raftIndex"`, `"raftAppliedIndex"` (and `-w fields` forms) and the
    /// RAFT INDEX / RAFT APPLIED INDEX columns of `endpoint status`.
    pub fn raft_indexes(mut self) -> Self {
        self.raft_indexes = true;
        self
    }

    /// `127.0.0.1:N`, `localhost:N` and `[::1]:N` become `...:<port>`.
    pub fn ports(mut self) -> Self {
        self.ports = true;
        self
    }

    /// Go durations (`1.4ms`, `2.1s`, `1m3s`; `took = ...`, `"took":"..."`) become
    /// `<duration>`.
    pub fn durations(mut self) -> Self {
        self.durations = true;
        self
    }

    /// DB sizes: human forms (`20 kB`, `1.2 MB`) and `dbSize`/`dbSizeInUse`/`DBSize`
    /// fields become `<size>`.
    pub fn db_sizes(mut self) -> Self {
        self.db_sizes = true;
        self
    }

    /// Drops the JSON log lines etcdctl's client library writes to stderr
    /// (`{"level":"warn",...,"msg":"retrying of unary invoker failed",...}`).
    pub fn client_logs(mut self) -> Self {
        self.client_logs = true;
        self
    }

    /// Table layout (`-w table`): cell padding and border widths follow the widest value,
    /// which differs when values do (a member ID is printed with `%x`, so without leading
    /// zeros). Cells are trimmed to `| a | b |` and border runs of `-` shortened to one.
    /// Applied last, after the placeholders.
    pub fn tables(mut self) -> Self {
        self.tables = true;
        self
    }

    pub fn apply(&self, text: &str) -> String {
        let mut out = text.to_owned();
        if self.client_logs {
            out = out
                .lines()
                .filter(|line| !line.starts_with("{\"level\":"))
                .map(|line| format!("{line}\n"))
                .collect();
        }
        let mut literals = self.literals.clone();
        literals.sort_by_key(|(text, _)| std::cmp::Reverse(text.len()));
        for (text, placeholder) in &literals {
            out = out.replace(text.as_str(), placeholder);
        }
        for (id, placeholder) in &self.ids {
            let forms = [format!("{id}"), format!("{id:x}"), format!("{id:016x}")];
            let alternation = forms
                .iter()
                .map(|f| regex::escape(f))
                .collect::<Vec<_>>()
                .join("|");
            let re = Regex::new(&format!(r"\b(?:{alternation})\b")).expect("id regex");
            out = re.replace_all(&out, placeholder.as_str()).into_owned();
        }
        if self.ports {
            let re = Regex::new(r"\b(127\.0\.0\.1|localhost|\[::1\]):\d+").expect("port regex");
            out = re.replace_all(&out, "$1:<port>").into_owned();
        }
        if self.revisions {
            out = field(
                &out,
                "revision|mod_revision|create_revision|compact_revision",
                "<rev>",
            );
            out = field(
                &out,
                "Revision|ModRevision|CreateRevision|CompactRevision",
                "<rev>",
            );
            let re = Regex::new(r"compacted revision \d+").expect("regex");
            out = re
                .replace_all(&out, "compacted revision <rev>")
                .into_owned();
        }
        if self.raft_terms {
            out = field(&out, "raft_term|raftTerm|RaftTerm", "<term>");
        }
        if self.raft_indexes {
            out = field(
                &out,
                "raftIndex|raftAppliedIndex|raft_index|raft_applied_index|RaftIndex|RaftAppliedIndex",
                "<index>",
            );
        }
        if self.raft_terms || self.raft_indexes {
            let re = Regex::new(STATUS_COLUMNS).expect("status regex");
            out = re
                .replace_all(&out, |c: &Captures| {
                    let term = if self.raft_terms { "<term>" } else { &c[5] };
                    let (index, applied) = if self.raft_indexes {
                        ("<index>", "<index>")
                    } else {
                        (&c[7], &c[9])
                    };
                    format!(
                        "{}{}{}{}{term}{}{index}{}{applied}",
                        &c[1], &c[2], &c[3], &c[4], &c[6], &c[8]
                    )
                })
                .into_owned();
        }
        if self.durations {
            let re = Regex::new(r"\b(?:\d+(?:\.\d+)?(?:ns|µs|us|ms|s|m|h))+\b").expect("regex");
            out = re.replace_all(&out, "<duration>").into_owned();
        }
        if self.db_sizes {
            let re = Regex::new(r"\b\d+(?:\.\d+)? (?:B|kB|MB|GB|TB)\b").expect("regex");
            out = re.replace_all(&out, "<size>").into_owned();
            out = field(
                &out,
                "dbSize|dbSizeInUse|db_size|db_size_in_use|DBSize|DBSizeInUse",
                "<size>",
            );
        }
        if self.tables {
            out = compact_tables(&out);
        }
        out
    }
}

/// Replaces the number in `"name":N` / `"name" : N` for the given field names.
fn field(text: &str, names: &str, placeholder: &str) -> String {
    let re = Regex::new(&format!(r#"("(?:{names})"\s*:\s*)\d+"#)).expect("field regex");
    re.replace_all(text, format!("${{1}}{placeholder}").as_str())
        .into_owned()
}

/// Trims table cells and shortens table borders (see `Normalizer::tables`).
fn compact_tables(text: &str) -> String {
    let border = Regex::new(r"-+").expect("regex");
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let (body, newline) = match line.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (line, ""),
        };
        if body.starts_with('+') && body.chars().all(|c| c == '+' || c == '-') {
            out += &border.replace_all(body, "-");
        } else if body.starts_with('|') && body.ends_with('|') && body.len() > 1 {
            let cells: Vec<&str> = body[1..body.len() - 1].split('|').map(str::trim).collect();
            out += &format!("| {} |", cells.join(" | "));
        } else {
            out += body;
        }
        out += newline;
    }
    out
}
