fn main() {
    eprintln!("chorus: server not wired yet");
    std::process::exit(1);
}
