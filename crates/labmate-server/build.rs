//! The dashboard's files are embedded at build time (`include_dir!`): a
//! change under assets/ must rebuild the crate.

fn main() {
    println!("cargo:rerun-if-changed=assets");
}
