//! Rewrites an etcd backend file through chorus-etcd-format's typed reader and writer:
//! `cargo run -p chorus-etcd-format --example etcd-rewrite -- SRC DST [--trailer]`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (src, dst) = (
        args.get(1).ok_or("usage: SRC DST")?,
        args.get(2).ok_or("usage: SRC DST")?,
    );
    let b = chorus_etcd_format::backend::Backend::open(src)?;
    let summary = chorus_etcd_format::backend::rewrite(&b, dst)?;
    if args.iter().any(|a| a == "--trailer") {
        chorus_etcd_format::backend::append_sha256_trailer(dst)?;
    }
    println!("{summary:?}");
    Ok(())
}
