//! `get`, `put`, `del`, `txn`, `compaction`.

use std::io::{BufRead, Read};

use chorus_api::etcdserverpb::{
    compare::{CompareResult, CompareTarget, TargetUnion},
    range_request::{SortOrder, SortTarget},
    request_op, Compare, DeleteRangeRequest, PutRequest, RangeRequest, RangeResponse, RequestOp,
    TxnRequest,
};
use chorus_client::prefix_range_end;

use crate::cli::{self, Flags};
use crate::ctl::Ctl;
use crate::exit::{self, ExitCode};
use crate::gofmt;

pub const PUT_LONG: &str = "
Puts the given key into the store.

When <value> begins with '-', <value> is interpreted as a flag.
Insert '--' for workaround:

$ put <key> -- <value>
$ put -- <key> <value>

If <value> isn't given as a command line argument and '--ignore-value' is not specified,
this command tries to read the value from standard input.

If <lease> isn't given as a command line argument and '--ignore-lease' is not specified,
this command tries to read the value from standard input.

For example,
$ cat file | put <key>
will store the content of the file to <key>.
";

fn bad_args(msg: &str) -> ! {
    exit::fail(ExitCode::BadArgs, msg)
}

/// `getGetOp`.
pub fn get_op(flags: &Flags, args: &[String]) -> RangeRequest {
    if args.is_empty() {
        bad_args("get command needs one argument as key and an optional argument as range_end");
    }
    let prefix = flags.bool("prefix");
    let from_key = flags.bool("from-key");
    if prefix && from_key {
        bad_args("`--prefix` and `--from-key` cannot be set at the same time, choose one");
    }
    let mut req = RangeRequest::default();
    match flags.str("consistency").as_str() {
        "s" => req.serializable = true,
        "l" => {}
        other => exit::fail(
            ExitCode::BadFeature,
            &format!("unknown consistency flag {}", gofmt::quote(other)),
        ),
    }
    let mut key = args[0].as_bytes().to_vec();
    if args.len() > 1 {
        if prefix || from_key {
            bad_args("too many arguments, only accept one argument when `--prefix` or `--from-key` is set");
        }
        req.range_end = args[1].as_bytes().to_vec();
    }
    req.limit = flags.int("limit");
    let rev = flags.int("rev");
    if rev > 0 {
        req.revision = rev;
    }
    let order = flags.str("order");
    let sort_order = match order.to_uppercase().as_str() {
        "ASCEND" => SortOrder::Ascend,
        "DESCEND" => SortOrder::Descend,
        "" => SortOrder::None,
        _ => exit::fail(ExitCode::BadFeature, &format!("bad sort order {order}")),
    };
    let target = flags.str("sort-by");
    let sort_target = match target.to_uppercase().as_str() {
        "CREATE" => SortTarget::Create,
        "KEY" | "" => SortTarget::Key,
        "MODIFY" => SortTarget::Mod,
        "VALUE" => SortTarget::Value,
        "VERSION" => SortTarget::Version,
        _ => exit::fail(ExitCode::BadFeature, &format!("bad sort target {target}")),
    };
    // clientv3.WithSort: ascending by key is the server's order anyway.
    let sort_order = if sort_target == SortTarget::Key && sort_order == SortOrder::Ascend {
        SortOrder::None
    } else {
        sort_order
    };
    req.sort_order = sort_order as i32;
    req.sort_target = sort_target as i32;
    if prefix {
        if key.is_empty() {
            key = vec![0];
            req.range_end = vec![0];
        } else {
            req.range_end = prefix_range_end(&key);
        }
    }
    if from_key {
        if key.is_empty() {
            key = vec![0];
        }
        req.range_end = vec![0];
    }
    req.keys_only = flags.bool("keys-only");
    req.key = key;
    req
}

/// `argOrStdin`: argument `i`, else all of standard input (which must not be empty).
fn arg_or_stdin(args: &[String], i: usize) -> Result<String, ()> {
    if let Some(a) = args.get(i) {
        return Ok(a.clone());
    }
    let mut buf = Vec::new();
    if std::io::stdin().read_to_end(&mut buf).is_err() || buf.is_empty() {
        return Err(());
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// `getPutOp`.
pub fn put_op(flags: &Flags, args: &[String]) -> PutRequest {
    if args.is_empty() {
        bad_args("put command needs 1 argument and input from stdin or 2 arguments");
    }
    let ignore_value = flags.bool("ignore-value");
    if ignore_value && args.len() > 1 {
        bad_args("put command needs only 1 argument when 'ignore-value' is set");
    }
    let mut value = String::new();
    if !ignore_value {
        value = arg_or_stdin(args, 1).unwrap_or_else(|()| {
            bad_args("put command needs 1 argument and input from stdin or 2 arguments")
        });
    }
    let lease = gofmt::parse_int_base(&flags.str("lease"), 16)
        .unwrap_or_else(|e| bad_args(&format!("bad lease ID ({e}), expecting ID in Hex")));
    PutRequest {
        key: args[0].as_bytes().to_vec(),
        value: value.into_bytes(),
        lease,
        prev_kv: flags.bool("prev-kv"),
        ignore_value,
        ignore_lease: flags.bool("ignore-lease"),
    }
}

/// `getDelOp`.
pub fn del_op(flags: &Flags, args: &[String]) -> DeleteRangeRequest {
    if args.is_empty() || args.len() > 2 {
        bad_args("del command needs one argument as key and an optional argument as range_end");
    }
    let prefix = flags.bool("prefix");
    let from_key = flags.bool("from-key");
    if prefix && from_key {
        bad_args("`--prefix` and `--from-key` cannot be set at the same time, choose one");
    }
    let mut req = DeleteRangeRequest::default();
    let mut key = args[0].as_bytes().to_vec();
    if args.len() > 1 {
        if prefix || from_key {
            bad_args("too many arguments, only accept one argument when `--prefix` or `--from-key` is set");
        }
        req.range_end = args[1].as_bytes().to_vec();
    }
    if prefix {
        if key.is_empty() {
            key = vec![0];
            req.range_end = vec![0];
        } else {
            req.range_end = prefix_range_end(&key);
        }
    }
    req.prev_kv = flags.bool("prev-kv");
    if from_key {
        if key.is_empty() {
            key = vec![0];
        }
        req.range_end = vec![0];
    }
    req.key = key;
    req
}

pub async fn get(ctl: &mut Ctl) {
    let req = get_op(&ctl.flags, &ctl.args);
    let stream = ctl.flags.bool("stream");
    let client = ctl.client().await;
    let resp = ctl
        .unary(&client, || {
            let req = req.clone();
            let mut kv = client.kv_client();
            async move {
                if !stream {
                    return Ok(kv.range(req).await?.into_inner());
                }
                let mut chunks = kv.range_stream(req).await?.into_inner();
                let mut all = RangeResponse::default();
                while let Some(chunk) = chunks.message().await? {
                    merge_chunk(&mut all, chunk.range_response.unwrap_or_default());
                }
                Ok(all)
            }
        })
        .await
        .unwrap_or_else(|e| exit::fail(ExitCode::Error, &e));
    if ctl.flags.bool("print-value-only") {
        if ctl.printer.format != crate::printer::Format::Simple {
            bad_args("print-value-only is only for `--write-out=simple`");
        }
        ctl.printer.value_only = true;
    }
    ctl.printer.get(&resp);
}

/// etcd 3.7's `GetStreamToGetResponse` (a `proto.Merge` of every chunk): the keys one
/// after the other, and the header, `more` and `count` of the chunk that has them (the
/// last).
fn merge_chunk(all: &mut RangeResponse, chunk: RangeResponse) {
    all.kvs.extend(chunk.kvs);
    if chunk.header.is_some() {
        all.header = chunk.header;
    }
    all.more |= chunk.more;
    if chunk.count != 0 {
        all.count = chunk.count;
    }
}

pub async fn put(ctl: &mut Ctl) {
    let req = put_op(&ctl.flags, &ctl.args);
    let client = ctl.client().await;
    let resp = ctl
        .unary(&client, || {
            let req = req.clone();
            let mut kv = client.kv_client();
            async move { Ok(kv.put(req).await?.into_inner()) }
        })
        .await
        .unwrap_or_else(|e| exit::fail(ExitCode::Error, &e));
    ctl.printer.put(&resp);
}

pub async fn del(ctl: &mut Ctl) {
    let req = del_op(&ctl.flags, &ctl.args);
    let client = ctl.client().await;
    let resp = ctl
        .unary(&client, || {
            let req = req.clone();
            let mut kv = client.kv_client();
            async move { Ok(kv.delete_range(req).await?.into_inner()) }
        })
        .await
        .unwrap_or_else(|e| exit::fail(ExitCode::Error, &e));
    ctl.printer.del(&resp);
}

pub async fn compaction(ctl: &mut Ctl) {
    if ctl.args.len() != 1 {
        bad_args("compaction command needs 1 argument");
    }
    let rev =
        gofmt::parse_int_base(&ctl.args[0], 10).unwrap_or_else(|e| exit::fail(ExitCode::Error, &e));
    let physical = ctl.flags.bool("physical");
    let client = ctl.client().await;
    ctl.unary(&client, || client.compact(rev, physical))
        .await
        .unwrap_or_else(|e| exit::fail(ExitCode::Error, &e));
    println!("compacted revision {rev}");
}

// ---------------------------------------------------------------------------------------
// txn

pub async fn txn(ctl: &mut Ctl) {
    if !ctl.args.is_empty() {
        bad_args("txn command does not accept argument");
    }
    let interactive = ctl.flags.bool("interactive");
    let client = ctl.client().await;
    let stdin = std::io::stdin();
    let mut reader = stdin.lock();
    let prompt = |s: &str| {
        if interactive {
            println!("{s}");
        }
    };
    prompt("compares:");
    let compare = read_compares(&mut reader);
    prompt("success requests (get, put, del):");
    let success = read_ops(&mut reader);
    prompt("failure requests (get, put, del):");
    let failure = read_ops(&mut reader);
    let req = TxnRequest {
        compare,
        success,
        failure,
    };
    // clientv3's Txn.Commit has no timeout: context.Background().
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3600);
    let resp = crate::ctl::unary_until(&client, deadline, || {
        let req = req.clone();
        let mut kv = client.kv_client();
        async move { Ok(kv.txn(req).await?.into_inner()) }
    })
    .await
    .unwrap_or_else(|e| exit::fail(ExitCode::Error, &e));
    ctl.printer.txn(&resp);
}

fn read_line(r: &mut impl BufRead) -> String {
    let mut line = String::new();
    match r.read_line(&mut line) {
        Ok(0) => exit::fail(ExitCode::InvalidInput, "EOF"),
        Ok(_) if !line.ends_with('\n') => exit::fail(ExitCode::InvalidInput, "EOF"),
        Ok(_) => line,
        Err(e) => exit::fail(ExitCode::InvalidInput, &e.to_string()),
    }
}

fn read_compares(r: &mut impl BufRead) -> Vec<Compare> {
    let mut cmps = Vec::new();
    loop {
        let line = read_line(r);
        let line = line.trim();
        if line.is_empty() {
            return cmps;
        }
        match parse_compare(line) {
            Ok(c) => cmps.push(c),
            Err(e) => exit::fail(ExitCode::InvalidInput, &e),
        }
    }
}

fn read_ops(r: &mut impl BufRead) -> Vec<RequestOp> {
    let mut ops = Vec::new();
    loop {
        let line = read_line(r);
        let line = line.trim();
        if line.is_empty() {
            return ops;
        }
        match parse_request(line) {
            Ok(op) => ops.push(op),
            Err(e) => exit::fail(ExitCode::InvalidInput, &e),
        }
    }
}

/// `argify`: splits a line into words with etcdctl's regexp
/// `"(?:[^"\\]|\\.)*"|'[^']*'|[^'"\s]\S*[^'"\s]?`; double-quoted words are Go-unquoted,
/// single-quoted ones sliced as etcdctl 3.4 slices them (by the number of words).
pub fn argify(s: &str) -> Vec<String> {
    let b = s.as_bytes();
    let mut words: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'"' {
            let mut j = i + 1;
            let mut end = None;
            while j < b.len() {
                match b[j] {
                    b'\\' if j + 1 < b.len() => j += 2,
                    b'"' => {
                        end = Some(j);
                        break;
                    }
                    _ => j += 1,
                }
            }
            if let Some(j) = end {
                words.push(&s[i..=j]);
                i = j + 1;
                continue;
            }
        } else if c == b'\'' {
            if let Some(off) = b[i + 1..].iter().position(|&x| x == b'\'') {
                words.push(&s[i..i + 2 + off]);
                i += 2 + off;
                continue;
            }
        } else if !c.is_ascii_whitespace() {
            let mut j = i + 1;
            while j < b.len() && !b[j].is_ascii_whitespace() {
                j += 1;
            }
            words.push(&s[i..j]);
            i = j;
            continue;
        }
        i += 1;
    }
    let n = words.len();
    words
        .iter()
        .map(|w| {
            if w.starts_with('\'') {
                if n < 2 || n - 1 > w.len() {
                    eprintln!("panic: runtime error: slice bounds out of range");
                    exit::exit_raw(2);
                }
                String::from_utf8_lossy(&w.as_bytes()[1..n - 1]).into_owned()
            } else if w.starts_with('"') {
                unquote_go(w)
                    .unwrap_or_else(|| exit::fail(ExitCode::InvalidInput, "invalid syntax"))
            } else {
                (*w).to_owned()
            }
        })
        .collect()
}

/// `fmt.Sscanf("%q")`-style unquoting of a Go double-quoted string.
fn unquote_go(s: &str) -> Option<String> {
    let inner = s.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = Vec::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next()? {
            'n' => out.push(b'\n'),
            't' => out.push(b'\t'),
            'r' => out.push(b'\r'),
            'a' => out.push(7),
            'b' => out.push(8),
            'f' => out.push(12),
            'v' => out.push(11),
            '\\' => out.push(b'\\'),
            '"' => out.push(b'"'),
            '\'' => out.push(b'\''),
            'x' => {
                let h: String = [chars.next()?, chars.next()?].iter().collect();
                out.push(u8::from_str_radix(&h, 16).ok()?);
            }
            'u' => {
                let h: String = (0..4).map(|_| chars.next()).collect::<Option<String>>()?;
                let c = char::from_u32(u32::from_str_radix(&h, 16).ok()?)?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            d @ '0'..='7' => {
                let h: String = [d, chars.next()?, chars.next()?].iter().collect();
                out.push(u8::from_str_radix(&h, 8).ok()?);
            }
            _ => return None,
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

fn parse_request(line: &str) -> Result<RequestOp, String> {
    let args = argify(line);
    if args.len() < 2 {
        return Err(format!("invalid txn compare request: {line}"));
    }
    let invalid = || format!("invalid txn request: {line}");
    let tree = crate::v3_tree();
    let Some(cmd) = tree.subs.iter().find(|c| {
        matches!(c.name, "get" | "put" | "del")
            && (c.name == args[0] || c.name.starts_with(args[0].as_str()))
    }) else {
        return Err(invalid());
    };
    let mut flags = cli_flags(cmd);
    let positional = cli::parse_flags(&mut flags, &args[1..]).map_err(|_| invalid())?;
    let request = match cmd.name {
        "get" => request_op::Request::RequestRange(get_op(&flags, &positional)),
        "put" => request_op::Request::RequestPut(put_op(&flags, &positional)),
        _ => request_op::Request::RequestDeleteRange(del_op(&flags, &positional)),
    };
    Ok(RequestOp {
        request: Some(request),
    })
}

fn cli_flags(cmd: &cli::Command) -> Flags {
    cli::Flags::for_command(cmd)
}

/// A Go `%q` verb in `Sscanf`: a double-quoted or back-quoted string at the start of `s`;
/// returns it and the rest.
fn scan_quoted(s: &str) -> Option<(String, &str)> {
    let s = s.trim_start();
    if let Some(rest) = s.strip_prefix('`') {
        let end = rest.find('`')?;
        return Some((rest[..end].to_owned(), &rest[end + 1..]));
    }
    if !s.starts_with('"') {
        return None;
    }
    let bytes = s.as_bytes();
    let mut j = 1;
    while j < bytes.len() {
        match bytes[j] {
            b'\\' => j += 2,
            b'"' => {
                let word = &s[..=j];
                return Some((unquote_go(word)?, &s[j + 1..]));
            }
            _ => j += 1,
        }
    }
    None
}

/// `parseCompare`: `<target>("<key>") <op> "<value>"`.
pub fn parse_compare(line: &str) -> Result<Compare, String> {
    let Some((target, rest)) = line.split_once('(') else {
        return Err(format!("malformed comparison: {line}"));
    };
    // fmt.Sscanf(rest, "%q) %s %q", &key, &op, &val)
    let mut key = String::new();
    let mut op = String::new();
    let mut val = String::new();
    let mut n = 0;
    let mut err: Option<String> = None;
    'scan: {
        let Some((k, r)) = scan_quoted(rest) else {
            err = Some("bad quoted string".to_owned());
            break 'scan;
        };
        key = k;
        n += 1;
        let Some(r) = r.strip_prefix(')') else {
            err = Some("input does not match format".to_owned());
            break 'scan;
        };
        let r = r.trim_start();
        let end = r.find(char::is_whitespace).unwrap_or(r.len());
        if end == 0 {
            err = Some("unexpected EOF".to_owned());
            break 'scan;
        }
        op = r[..end].to_owned();
        n += 1;
        match scan_quoted(&r[end..]) {
            Some((v, _)) => {
                val = v;
                n += 1;
            }
            None => err = Some("bad quoted string".to_owned()),
        }
    }
    if n != 3 {
        return Err(format!(
            "malformed comparison: {line}; got {target}({}) {op} {}",
            gofmt::quote(&key),
            gofmt::quote(&val)
        ));
    }
    if let Some(e) = err {
        return Err(format!("malformed comparison: {line} ({e})"));
    }
    let result = match op.as_str() {
        "=" => CompareResult::Equal,
        "!=" => CompareResult::NotEqual,
        "<" => CompareResult::Less,
        ">" => CompareResult::Greater,
        _ => {
            // clientv3.Compare panics on an unknown operator.
            eprintln!("panic: Unknown result op");
            exit::exit_raw(2);
        }
    };
    let int = |v: &str| {
        gofmt::parse_int_base(v, 10).map_err(|_| format!("invalid txn compare request: {line}"))
    };
    let (target, union) = match target {
        "ver" | "version" => (CompareTarget::Version, TargetUnion::Version(int(&val)?)),
        "c" | "create" => (
            CompareTarget::Create,
            TargetUnion::CreateRevision(int(&val)?),
        ),
        "m" | "mod" => (CompareTarget::Mod, TargetUnion::ModRevision(int(&val)?)),
        "val" | "value" => (CompareTarget::Value, TargetUnion::Value(val.into_bytes())),
        "lease" => {
            // etcdctl 3.4 hands the value to clientv3.Compare as a string, which panics.
            eprintln!("panic: bad value");
            exit::exit_raw(2);
        }
        other => {
            return Err(format!(
                "malformed comparison: {line} (unknown target {other})"
            ))
        }
    };
    Ok(Compare {
        result: result as i32,
        target: target as i32,
        key: key.into_bytes(),
        range_end: Vec::new(),
        target_union: Some(union),
    })
}
