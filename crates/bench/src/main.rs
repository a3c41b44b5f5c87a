use std::process::ExitCode;

use chorus_bench::cli::{Cli, WriteOut};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("chorus-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(chorus_bench::cmd::run(&cli)) {
        Ok((output, info)) => {
            match cli.global.write_out {
                WriteOut::Simple => print!("{}", output.text(cli.global.precise)),
                WriteOut::Json => println!("{}", output.json(&info)),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("chorus-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
