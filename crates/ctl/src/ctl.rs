//! The global flags of a v3 command (with their `ETCDCTL_*` variables), the client built
//! from them, and unary calls with etcdctl's command timeout and error reporting.

use std::future::Future;
use std::time::{Duration, Instant};

use chorus_client::{
    messages, Client, ConnectOptions, Credentials, Error as ClientError, TlsOptions,
};

use crate::tls::TlsFiles;

use crate::cli::{Flags, Parsed};
use crate::exit::{self, ExitCode};
use crate::printer::{Format, Printer};

/// Everything a v3 command needs: its arguments, flags and the connection settings.
pub struct Ctl {
    pub path: Vec<&'static str>,
    pub args: Vec<String>,
    pub flags: Flags,
    pub printer: Printer,
    pub command_timeout: Duration,
    client: Option<Client>,
    /// `--user`/`--password`, read (and asked for) once: `Some(None)` without `--user`.
    credentials: Option<Option<Credentials>>,
}

/// `ETCDCTL_<NAME>` for a flag name.
pub fn flag_to_env(name: &str) -> String {
    format!("ETCDCTL_{}", name.to_uppercase().replace('-', "_"))
}

impl Ctl {
    pub fn new(parsed: Parsed<'_>) -> Ctl {
        let printer = printer_from(&parsed.flags);
        let command_timeout = parsed.flags.duration("command-timeout");
        Ctl {
            path: parsed.path,
            args: parsed.args,
            flags: parsed.flags,
            printer,
            command_timeout,
            client: None,
            credentials: None,
        }
    }

    /// etcd's `SetPflagsFromEnv` on the inherited flags (what `clientConfigFromCmd` does
    /// first): a variable fills a flag not given on the command line; both given is fatal.
    pub fn apply_env(&mut self) {
        let names = self.flags.inherited();
        let mut known: Vec<String> = names.iter().map(|n| flag_to_env(n)).collect();
        if self.path.first() == Some(&"watch") {
            known.push("ETCDCTL_WATCH_KEY".to_owned());
            known.push("ETCDCTL_WATCH_RANGE_END".to_owned());
        }
        for name in &names {
            let var = flag_to_env(name);
            let Ok(value) = std::env::var(&var) else {
                continue;
            };
            if self.flags.changed(name) {
                eprintln!(
                    "{} C | pkg/flags: conflicting environment variable {} is shadowed by corresponding command-line flag (either unset environment variable or disable flag)",
                    crate::gofmt::capnslog_timestamp(),
                    crate::gofmt::quote(&var)
                );
                exit::exit(ExitCode::Error);
            }
            // etcdctl ignores the error of a bad value (the flag keeps its default).
            let _ = self.flags.set(name, &value);
        }
        let mut vars: Vec<(String, String)> = std::env::vars()
            .filter(|(k, _)| k.starts_with("ETCDCTL_") && k != "ETCDCTL_API")
            .collect();
        vars.sort();
        for (k, v) in vars {
            if !known.contains(&k) {
                eprintln!(
                    "{} W | pkg/flags: unrecognized environment variable {k}={v}",
                    crate::gofmt::capnslog_timestamp()
                );
            }
        }
        self.printer = printer_from(&self.flags);
        self.command_timeout = self.flags.duration("command-timeout");
        if self.flags.bool("debug") {
            for name in &names {
                let value = redact_secret(name, &self.flags.display(name));
                eprintln!("{}={value}", flag_to_env(name));
            }
        }
    }

    /// `initDisplayFromCmd`: an unknown `-w` is fatal.
    pub fn check_format(&self) {
        let w = self.flags.str("write-out");
        if !matches!(
            w.as_str(),
            "simple" | "json" | "protobuf" | "fields" | "table"
        ) {
            exit::fail(ExitCode::BadFeature, "unsupported output format");
        }
    }

    /// etcdctl's `endpointsFromCmd`: the endpoints `--discovery-srv` finds, else the
    /// `--endpoints` list (trimmed).
    pub fn endpoints(&self) -> Vec<String> {
        let domain = self.flags.str("discovery-srv");
        if !domain.is_empty() {
            let name = self.flags.str("discovery-srv-name");
            let insecure = self.flags.bool("insecure-discovery");
            let found = tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current()
                    .block_on(crate::srv::endpoints(&domain, &name, insecure))
            });
            match found {
                Ok(eps) if !eps.is_empty() => return eps,
                Ok(_) => {}
                Err(e) => exit::fail(ExitCode::Error, &e),
            }
        }
        self.flags
            .slice("endpoints")
            .iter()
            .map(|e| e.trim().to_owned())
            .collect()
    }

    /// `secureCfgFromCmd`'s checks: `--cert`, `--key`, `--cacert` given empty.
    fn check_tls_flags(&self) {
        for name in ["cert", "key", "cacert"] {
            if self.flags.changed(name) && self.flags.str(name).is_empty() {
                exit::fail(
                    ExitCode::BadArgs,
                    &format!("empty string is passed to --{name} option"),
                );
            }
        }
    }

    /// `authCfgFromCmd`: the credentials of `--user`/`--password`, asking for the password
    /// on the terminal when `--user` has none (once per command).
    pub fn credentials(&mut self) -> Option<Credentials> {
        if let Some(c) = &self.credentials {
            return c.clone();
        }
        let c = credentials_from_flags(
            &self.flags.str("user"),
            &self.flags.str("password"),
            chorus_client::prompt::ask_password,
        )
        .unwrap_or_else(|e| exit::fail(ExitCode::Error, &e));
        self.credentials = Some(c.clone());
        c
    }

    /// Connection settings from the global flags (credentials as read by `credentials`).
    pub fn connect_options(&self) -> ConnectOptions {
        self.check_tls_flags();
        let files = TlsFiles {
            ca: self.flags.str("cacert"),
            cert: self.flags.str("cert"),
            key: self.flags.str("key"),
        };
        let tls = client_tls(
            &files,
            self.flags.bool("insecure-transport"),
            self.flags.bool("insecure-skip-tls-verify"),
        )
        .unwrap_or_else(|e| exit::fail(ExitCode::BadArgs, &e));
        let tls = tls.map(|mut t| {
            // etcdctl's `secureCfgFromCmd`: with --insecure-discovery=false the discovered
            // servers must hold certificates for the --discovery-srv domain.
            let domain = self.flags.str("discovery-srv");
            if !domain.is_empty() && !self.flags.bool("insecure-discovery") {
                t.server_name = Some(domain);
            }
            t
        });
        let keepalive = self.flags.duration("keepalive-time");
        ConnectOptions {
            dial_timeout: self.flags.duration("dial-timeout"),
            keep_alive_interval: (!keepalive.is_zero())
                .then_some(keepalive.max(Duration::from_secs(10))),
            keep_alive_timeout: self.flags.duration("keepalive-timeout"),
            request_timeout: None,
            tls,
            credentials: self.credentials.clone().flatten(),
            ..ConnectOptions::default()
        }
    }

    /// The TLS of HTTP/1 requests (`/metrics`) from the same flags as the client's.
    pub fn http_tls(&self) -> crate::http::Tls {
        self.connect_options().tls.map(|t| {
            crate::tls::config(&t, true).unwrap_or_else(|e| exit::fail(ExitCode::BadArgs, &e))
        })
    }

    /// A client over `endpoints` with the global settings (exit 2 if it cannot be built).
    pub async fn client_for(&self, endpoints: &[String]) -> Client {
        self.try_client_for(endpoints)
            .await
            .unwrap_or_else(|e| exit::fail(ExitCode::BadConnection, &e))
    }

    /// `clientv3.New`: the client, authenticated (within `--dial-timeout`, with
    /// clientv3's warning lines) when there are credentials. `Err`: etcdctl's text.
    pub async fn try_client_for(&self, endpoints: &[String]) -> Result<Client, String> {
        let opts = self.connect_options();
        let dial_timeout = opts.dial_timeout;
        let client = Client::connect_lazy(endpoints, opts).map_err(|e| client_error_text(&e))?;
        if client.user().is_some() {
            let deadline = Instant::now() + dial_timeout;
            match unary_until(&client, deadline, || client.authenticate()).await {
                Err(e) if e != messages::AUTH_NOT_ENABLED => return Err(e),
                _ => {}
            }
        }
        Ok(client)
    }

    /// `clientConfigFromCmd` (environment, TLS flags, credentials, output format) before
    /// the clients of commands that make their own (`endpoint health`, `snapshot save`).
    pub fn prepare(&mut self) {
        self.apply_env();
        self.check_tls_flags();
        self.credentials();
        self.check_format();
    }

    /// `mustClientFromCmd`: environment, output format, then the client.
    pub async fn client(&mut self) -> Client {
        if let Some(c) = &self.client {
            return c.clone();
        }
        self.apply_env();
        let endpoints = self.endpoints();
        self.check_tls_flags();
        self.credentials();
        self.check_format();
        let client = self.client_for(&endpoints).await;
        self.client = Some(client.clone());
        client
    }

    pub fn deadline(&self) -> Instant {
        Instant::now() + self.command_timeout
    }

    /// A unary call under the command timeout; on failure the clientv3 warning is logged
    /// and `Err` carries etcdctl's text of the error.
    pub async fn unary<T, F, Fut>(&self, client: &Client, f: F) -> Result<T, String>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = chorus_client::Result<T>>,
    {
        unary_until(client, self.deadline(), f).await
    }
}

/// Runs `f` until it answers or `deadline` passes; while no member can be reached it keeps
/// trying, as gRPC does until the command's context ends. A refused token is replaced and
/// the call made once more, as clientv3's retry interceptor does (with its warning line).
pub async fn unary_until<T, F, Fut>(
    client: &Client,
    deadline: Instant,
    mut f: F,
) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = chorus_client::Result<T>>,
{
    // Bounded: each round is one pass over the endpoints, and the deadline ends the loop;
    // a new token is fetched at most once.
    let mut failures = 0usize;
    let mut reauthenticated = false;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let target = client.current_endpoint().to_owned();
        match tokio::time::timeout(remaining, f()).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) if e.is_connect_error() || e.is_transport_error() => {
                if Instant::now() + Duration::from_millis(100) >= deadline {
                    let msg = match exit::passthrough() {
                        Some(ep) => balancer_error(&e, &ep),
                        None => {
                            "latest balancer error: all SubConns are in TransientFailure".to_owned()
                        }
                    };
                    exit::log_retry(&target, tonic::Code::DeadlineExceeded, &msg);
                    return Err("context deadline exceeded".to_owned());
                }
                // Another member may answer; after a whole round, wait a little.
                client.advance();
                failures += 1;
                if failures % client.endpoints().len() == 0 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            Ok(Err(e)) if !reauthenticated && client.is_token_error(&e) => {
                reauthenticated = true;
                log_failure(&target, &e);
                reauthenticate(client, &target).await?;
            }
            Ok(Err(e)) => {
                log_failure(&target, &e);
                return Err(exit::error_text(&e));
            }
            Err(_) => {
                exit::log_retry(
                    &target,
                    tonic::Code::DeadlineExceeded,
                    "context deadline exceeded",
                );
                return Err("context deadline exceeded".to_owned());
            }
        }
    }
}

fn log_failure(target: &str, e: &ClientError) {
    if let Some(status) = e.status() {
        exit::log_retry(target, status.code(), status.message());
    }
}

/// clientv3's `refreshToken` after a refused token; on failure its warning lines and the
/// authentication's error.
async fn reauthenticate(client: &Client, target: &str) -> Result<(), String> {
    match client.authenticate().await {
        Ok(()) => Ok(()),
        Err(e) => {
            log_failure(target, &e);
            let text = exit::error_text(&e);
            exit::log_token_refresh_failed(target, &text);
            Err(text)
        }
    }
}

/// grpc-go's "latest balancer error" of a connection to one endpoint (`passthrough`) that
/// failed: refused, the server's certificate refused here, or the connection closed by the
/// server (it refused this client's certificate).
fn balancer_error(e: &ClientError, endpoint: &str) -> String {
    let Some(status) = e.status() else {
        return "latest balancer error: connection closed".to_owned();
    };
    let err = status as &(dyn std::error::Error + 'static);
    match crate::tls::rustls_cause(err) {
        Some(tls @ rustls::Error::InvalidCertificate(_)) => format!(
            "latest balancer error: connection error: desc = \"transport: authentication handshake failed: {}\"",
            crate::tls::go_text(tls)
        ),
        None if crate::tls::is_refused(err) => format!(
            "latest balancer error: connection error: desc = \"transport: Error while dialing dial tcp {}: connect: connection refused\"",
            exit::strip_scheme(endpoint)
        ),
        _ => "latest balancer error: connection closed".to_owned(),
    }
}

/// `--debug` prints every global flag as etcdctl does, except passwords.
fn redact_secret(flag: &str, value: &str) -> String {
    match flag {
        "password" if !value.is_empty() => "<redacted>".to_owned(),
        "user" => match value.split_once(':') {
            Some((user, _)) => format!("{user}:<redacted>"),
            None => value.to_owned(),
        },
        _ => value.to_owned(),
    }
}

/// etcdctl's `authCfgFromCmd`: no `--user`, no credentials; `--password` given, `--user`
/// is the whole user name (colons and all); else `--user` is `name:password`, split at
/// the first colon, or a name alone, whose password is asked for (`ask("Password: ")`).
/// An empty password means no authentication at all (clientv3's rule), not an error.
pub fn credentials_from_flags(
    user: &str,
    password: &str,
    ask: impl FnOnce(&str) -> Result<String, String>,
) -> Result<Option<Credentials>, String> {
    if user.is_empty() {
        return Ok(None);
    }
    if !password.is_empty() {
        return Ok(Some(Credentials::new(user, password)));
    }
    match user.split_once(':') {
        Some((name, password)) => Ok(Some(Credentials::new(name, password))),
        None => Ok(Some(Credentials::new(user, ask("Password: ")?))),
    }
}

pub fn client_error_text(e: &ClientError) -> String {
    match e {
        ClientError::Tls(text) => text.clone(),
        other => exit::error_text(other),
    }
}

/// etcdctl's `newClientCfg`: a TLS configuration when any file is given, or an empty
/// one (system CAs) with `--insecure-transport=false`; `--insecure-skip-tls-verify`
/// applies to either. `None`: plain text, except for `https://` endpoints (clientv3
/// decides by scheme). `Err` is etcd's message (exit code 128).
pub fn client_tls(
    files: &TlsFiles,
    insecure_transport: bool,
    insecure_skip_verify: bool,
) -> Result<Option<TlsOptions>, String> {
    let mut tls = if files.any() {
        Some(files.options()?)
    } else if !insecure_transport {
        Some(TlsOptions::default())
    } else {
        None
    };
    if let Some(t) = &mut tls {
        t.insecure_skip_verify = insecure_skip_verify;
        crate::tls::config(t, false)?;
    }
    Ok(tls)
}

pub fn io_text(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => e.to_string(),
    }
}

fn printer_from(flags: &Flags) -> Printer {
    let format = match flags.str("write-out").as_str() {
        "json" => Format::Json,
        "protobuf" => Format::Protobuf,
        "fields" => Format::Fields,
        "table" => Format::Table,
        _ => Format::Simple,
    };
    Printer {
        format,
        hex: flags.bool("hex"),
        value_only: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never(_: &str) -> Result<String, String> {
        panic!("no prompt expected")
    }

    fn creds(user: &str, password: &str) -> Option<(String, String)> {
        credentials_from_flags(user, password, never)
            .unwrap()
            .map(|c| (c.user().to_owned(), c.password().to_owned()))
    }

    #[test]
    fn user_flag_forms_as_etcdctl_reads_them() {
        let pair = |u: &str, p: &str| Some((u.to_owned(), p.to_owned()));
        assert_eq!(creds("", ""), None);
        assert_eq!(creds("", "pw"), None, "--password alone means nothing");
        assert_eq!(creds("root:pw", ""), pair("root", "pw"));
        assert_eq!(
            creds("root:p:w", ""),
            pair("root", "p:w"),
            "split at the first colon"
        );
        assert_eq!(
            creds("root:", ""),
            pair("root", ""),
            "no auth later (clientv3)"
        );
        assert_eq!(creds("root", "p:w"), pair("root", "p:w"));
        // etcdctl 3.4 and 3.5 alike: with --password, --user is the whole name.
        assert_eq!(creds("root:pw", "pw"), pair("root:pw", "pw"));
    }

    #[test]
    fn a_user_without_password_is_asked_for_one() {
        let mut asked = Vec::new();
        let c = credentials_from_flags("root", "", |prompt| {
            asked.push(prompt.to_owned());
            Ok("typed".to_owned())
        })
        .unwrap()
        .unwrap();
        assert_eq!((c.user(), c.password()), ("root", "typed"));
        assert_eq!(asked, ["Password: "]);
        let failed =
            credentials_from_flags(
                "root",
                "",
                |_| Err("failed during password entry: x".into()),
            );
        assert_eq!(failed.unwrap_err(), "failed during password entry: x");
    }

    #[test]
    fn debug_lines_hide_passwords() {
        assert_eq!(redact_secret("user", "root:pw"), "root:<redacted>");
        assert_eq!(redact_secret("user", "root"), "root");
        assert_eq!(redact_secret("password", "pw"), "<redacted>");
        assert_eq!(redact_secret("password", ""), "");
        assert_eq!(redact_secret("endpoints", "[a:1]"), "[a:1]");
    }
}
