//! `chorus`: an etcd-compatible key-value store member. Takes etcd's flags, `ETCD_*`
//! environment variables and config file; see `chorus --help`.

use chorus_config::{self as config, Command, NoticeLevel};
use chorus_server::api::http::pprof::heap;

/// mimalloc (2.x) instead of glibc's malloc: a request allocates and frees many small
/// objects across the runtime's threads (h2 frames, tonic messages, futures, index
/// entries), and glibc's malloc/free took about a fifth of the CPU of a put 100/1000 run
/// (docs/PERFORMANCE.md). mimalloc 3.x used about as little CPU but kept ~60% more RSS.
/// Wrapped in the heap profiler's sampler, which samples only under `--enable-pprof`
/// (docs/adr/0011-heap-profiling.md).
#[global_allocator]
static GLOBAL: heap::Sampled<mimalloc::MiMalloc> = heap::Sampled(mimalloc::MiMalloc);

fn main() {
    // `chorus grpc-proxy ...` and `chorus gateway ...` run etcd's proxies, with flags of
    // their own (parsed in chorus-proxy).
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if let Some((sub, rest)) = config::proxy_subcommand(&args) {
        let rest = rest.to_vec();
        std::process::exit(match sub {
            config::ProxySubcommand::GrpcProxy => chorus_proxy::main_grpc_proxy(rest),
            config::ProxySubcommand::Gateway => chorus_proxy::main_gateway(rest),
        });
    }
    let mut notices = Vec::new();
    let cfg = match config::Config::from_process(&mut notices) {
        Ok(Command::Run(cfg)) => cfg,
        Ok(Command::PrintVersion) => {
            print!("{}", config::version_text());
            return;
        }
        Ok(Command::PrintHelp) => {
            eprint!("{}", config::usage_text());
            print!("{}", config::flags_text());
            return;
        }
        Err(e) => {
            eprint!("{}", e.report());
            std::process::exit(e.exit_code());
        }
    };
    // `/debug/pprof/heap` reports live allocations: sample from the start.
    if chorus_server::serves_pprof(&cfg) {
        heap::start();
    }
    // etcd checks its log outputs (files, the journal) while verifying flags.
    if let Err(e) = chorus_server::init_logging(&cfg) {
        eprintln!("error verifying flags, {e}. See 'chorus --help'.");
        std::process::exit(1);
    }
    for n in notices {
        match n.level {
            NoticeLevel::Info => tracing::info!("{}", n.message),
            NoticeLevel::Warn => tracing::warn!("{}", n.message),
        }
    }
    // Robustness builds: `FAILPOINTS=name=actions;...` arms crash points; a failpoint's
    // `panic` action ends the process at once, as a crash there would.
    #[cfg(feature = "failpoints")]
    let _failpoints = {
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            default_hook(info);
            if info.to_string().contains("failpoint") {
                std::process::abort();
            }
        }));
        fail::FailScenario::setup()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("chorus")
        .build()
        .expect("start the tokio runtime");
    // etcd 3.4/3.5's v2 proxy (`--proxy`, or a data dir that holds `proxy/`).
    if chorus_proxy::v2::should_run(&cfg) {
        if let Err(e) = runtime.block_on(chorus_proxy::v2::run(*cfg)) {
            tracing::error!("{e}");
            eprintln!("chorus: {e}");
            std::process::exit(1);
        }
        return;
    }
    if let Err(e) = runtime.block_on(chorus_server::run(*cfg)) {
        tracing::error!("{e}");
        eprintln!("chorus: {e}");
        std::process::exit(1);
    }
}
