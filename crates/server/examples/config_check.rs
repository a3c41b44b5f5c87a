//! Parse a command line exactly as `chorus` will and report the outcome the
//! way etcd would: errors on stderr with etcd's exit status; on success the
//! resolved configuration and bootstrap identity on stdout.
//!
//! `cargo run -p chorus-server --example config_check -- --name n1 ...`

use chorus_config::{
    flags_text, format_id, usage_text, version_text, Command, Config, NoticeLevel,
};

fn main() {
    let mut notices = Vec::new();
    let result = Config::from_process(&mut notices);
    for n in &notices {
        let level = match n.level {
            NoticeLevel::Info => "I",
            NoticeLevel::Warn => "W",
        };
        eprintln!("{level} | {}", n.message);
    }
    match result {
        Err(e) => {
            eprintln!("{}", e.report());
            std::process::exit(e.exit_code());
        }
        Ok(Command::PrintVersion) => print!("{}", version_text()),
        Ok(Command::PrintHelp) => {
            eprint!("{}", usage_text());
            print!("{}", flags_text());
        }
        Ok(Command::Run(cfg)) => {
            println!("{cfg:#?}");
            match cfg.bootstrap_cluster() {
                Ok(bc) => {
                    println!("cluster-id {}", format_id(bc.cluster_id));
                    println!("local-member-id {}", format_id(bc.local_id));
                    for m in &bc.members {
                        println!(
                            "member {} {} {}",
                            format_id(m.id),
                            m.name,
                            m.peer_urls.join(",")
                        );
                    }
                }
                Err(e) => {
                    eprintln!("{}", e.report());
                    std::process::exit(e.exit_code());
                }
            }
        }
    }
}
