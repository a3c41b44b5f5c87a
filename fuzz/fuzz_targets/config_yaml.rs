//! The YAML config file (`--config-file`), loaded as etcd loads it. Contract: no panic, a
//! typed error for anything that is not a valid config.
#![no_main]

use chorus_config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut file = tempfile::NamedTempFile::new().expect("tempfile");
    std::io::Write::write_all(&mut file, data).expect("write config");
    let mut notices = Vec::new();
    let _ = Config::from_file(file.path(), &mut notices);
});
