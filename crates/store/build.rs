//! Rebuilds the crate when a migration is added: `sqlx::migrate!` embeds the files it finds at
//! compile time, and on stable Rust nothing tells cargo to look at that directory again (a
//! binary built before a new migration file would silently lack it).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
