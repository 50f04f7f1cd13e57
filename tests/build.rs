//! Links the test kernel with the kernel's linker script.

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rustc-link-arg-bins=-T{dir}/../kernel/linker.ld");
    println!("cargo:rerun-if-changed=../kernel/linker.ld");
}
