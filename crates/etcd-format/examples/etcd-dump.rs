//! Prints what chorus-etcd-format reads from an etcd backend file (`member/snap/db` or a
//! snapshot file): `cargo run -p chorus-etcd-format --example etcd-dump -- PATH`.

use chorus_etcd_format::backend::Backend;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: etcd-dump PATH")?;
    let b = Backend::open(&path)?;
    let db = b.db();
    println!("meta page {} {:?}", db.meta_page(), db.meta());
    println!("sha256 trailer ok: {:?}", db.verify_sha256_trailer()?);
    for name in db.bucket_names()? {
        let bucket = db.bucket(&name)?.expect("listed");
        let n = bucket.iter().count();
        println!(
            "bucket {:?}: {n} keys, header {:?}",
            String::from_utf8_lossy(&name),
            bucket.header()
        );
    }
    for r in b.revisions()?.take(20) {
        println!("{:?}", r?);
    }
    println!("meta {:?}", b.meta()?);
    println!("leases {:?}", b.leases()?);
    println!("members {:?}", b.members()?);
    println!("cluster {:?}", b.cluster()?);
    println!("auth {:?}", b.auth()?);
    println!("alarms {:?}", b.alarms()?);
    Ok(())
}
