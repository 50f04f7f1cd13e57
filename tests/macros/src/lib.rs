//! `#[ktest]`: registers a function as an in-kernel test.
//!
//! ```text
//! #[ktest]
//! fn int3_is_handled() { ... }
//!
//! #[ktest(should_panic = "on the #DF IST stack", timeout = 30)]
//! fn stack_overflow_reaches_double_fault_handler() { ... }
//!
//! #[ktest(mem = 256, cpus = 2, disk = 8, fresh_boot)]
//! fn needs_its_own_machine() { ... }
//!
//! #[ktest(disk = 8, disk_eio = 2048)]
//! fn sees_an_injected_error() { ... }
//!
//! #[ktest(disk = 8, disk_tree = "basic", disk_eio_file = "/big")]
//! fn reads_a_prepared_disk_whose_file_fails() { ... }
//!
//! #[ktest(disk = 16, disk_eio = 2048, disk_eio_op = "write", disk_eio_pages = 4)]
//! fn writes_to_four_pages_fail() { ... }
//!
//! #[ktest(disk = 16, disks = 2)]
//! fn uses_two_blank_disks() { ... }
//! ```
//!
//! Arguments (all optional):
//! - `should_panic = "text"`: passes only by panicking with a message
//!   containing `text`;
//! - `timeout = SECS`: hang timeout (default set by xtask);
//! - `mem = MIB`, `cpus = N`, `disk = MIB`: QEMU configuration (a blank
//!   virtio-blk scratch disk of `disk` MiB);
//! - `disks = N`: N scratch disks of `disk` MiB (`vda`, `vdb`, ...; the
//!   ones after the first are blank); needs `disk`;
//! - `disk_tree = "NAME"`: the scratch disk holds an ext2 file system
//!   (4 KiB blocks) of the tree tests/disks/NAME, made by xtask with the
//!   host's mke2fs for each boot; needs `disk`, the image's size;
//! - `disk_eio = SECTOR`: the scratch disk fails every read and write
//!   that covers sector `SECTOR` with EIO (QEMU's blkdebug driver);
//! - `disk_eio_op = "read"` or `"write"`: with `disk_eio`, only that kind
//!   of request fails (by default both);
//! - `disk_eio_pages = N`: with `disk_eio`, the requests covering any of
//!   the N 4 KiB pages from `SECTOR` on fail (one blkdebug rule per page:
//!   sectors `SECTOR`, `SECTOR + 8`, ...; a swap slot is such a page);
//! - `disk_eio_file = "PATH"`: as `disk_eio`, at the first data block of
//!   the file `PATH` (absolute, in the tree's file system; xtask finds the
//!   block with `debugfs -R "bmap PATH 0"`); needs `disk_tree`;
//! - `fresh_boot`: run in a boot of its own;
//! - `opt_in`: run only when selected by name or suite (harness self-tests).
//!
//! The function must take no arguments and return `()`. The attribute emits a
//! `kernel::ktest::KTest` static in the `.ktest_array` link section.
//!
//! `#[kbench]` registers a benchmark the same way (`kernel::kbench`).

use proc_macro::TokenStream;
use quote::{format_ident, quote};
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, ItemFn, Lit, Meta, ReturnType, Token, parse_macro_input};

/// Registers an in-kernel test. See the crate documentation.
#[proc_macro_attribute]
pub fn ktest(attr: TokenStream, item: TokenStream) -> TokenStream {
    let args = parse_macro_input!(attr with Punctuated::<Meta, Token![,]>::parse_terminated);
    let func = parse_macro_input!(item as ItemFn);
    match expand(args, func) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// The parsed attribute arguments.
#[derive(Debug, Default, PartialEq)]
struct Options {
    should_panic: Option<String>,
    timeout: u32,
    mem: u32,
    cpus: u32,
    disk: u32,
    disks: u32,
    disk_tree: Option<String>,
    disk_eio: Option<u32>,
    disk_eio_op: Option<String>,
    disk_eio_pages: u32,
    disk_eio_file: Option<String>,
    fresh_boot: bool,
    opt_in: bool,
}

fn lit_u32(meta: &Meta, expr: &Expr) -> syn::Result<u32> {
    match expr {
        Expr::Lit(ExprLit { lit: Lit::Int(i), .. }) => i.base10_parse(),
        _ => Err(syn::Error::new_spanned(meta, "expected an integer literal")),
    }
}

/// A string literal that `valid` accepts; `what` says what was expected.
fn lit_str(meta: &Meta, expr: &Expr, valid: impl Fn(&str) -> bool, what: &str) -> syn::Result<String> {
    match expr {
        Expr::Lit(ExprLit { lit: Lit::Str(s), .. }) if valid(&s.value()) => Ok(s.value()),
        _ => Err(syn::Error::new_spanned(meta, what)),
    }
}

/// A tree's name: a directory directly in tests/disks/, which also goes
/// into a suite name.
fn is_tree_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// A path in the tree's file system as the `ktest-list:` line carries it
/// (one word) and `debugfs` takes it.
fn is_fs_path(path: &str) -> bool {
    path.len() > 1 && path.starts_with('/') && !path.chars().any(|c| c.is_whitespace() || c == '"')
}

fn parse_options(args: &Punctuated<Meta, Token![,]>) -> syn::Result<Options> {
    let mut o = Options::default();
    for meta in args {
        let key = meta.path().get_ident().map(ToString::to_string).unwrap_or_default();
        match (key.as_str(), meta) {
            ("fresh_boot", Meta::Path(_)) => o.fresh_boot = true,
            ("opt_in", Meta::Path(_)) => o.opt_in = true,
            ("should_panic", Meta::NameValue(nv)) => match &nv.value {
                Expr::Lit(ExprLit { lit: Lit::Str(s), .. }) if !s.value().is_empty() => {
                    o.should_panic = Some(s.value())
                }
                _ => return Err(syn::Error::new_spanned(meta, "should_panic needs a non-empty string")),
            },
            ("timeout", Meta::NameValue(nv)) => o.timeout = lit_u32(meta, &nv.value)?,
            ("mem", Meta::NameValue(nv)) => o.mem = lit_u32(meta, &nv.value)?,
            ("cpus", Meta::NameValue(nv)) => o.cpus = lit_u32(meta, &nv.value)?,
            ("disk", Meta::NameValue(nv)) => o.disk = lit_u32(meta, &nv.value)?,
            ("disks", Meta::NameValue(nv)) => o.disks = lit_u32(meta, &nv.value)?,
            ("disk_eio", Meta::NameValue(nv)) => o.disk_eio = Some(lit_u32(meta, &nv.value)?),
            ("disk_eio_op", Meta::NameValue(nv)) => {
                let what = "disk_eio_op needs \"read\" or \"write\"";
                o.disk_eio_op = Some(lit_str(meta, &nv.value, |op| matches!(op, "read" | "write"), what)?);
            }
            ("disk_eio_pages", Meta::NameValue(nv)) => o.disk_eio_pages = lit_u32(meta, &nv.value)?,
            ("disk_tree", Meta::NameValue(nv)) => {
                let what = "disk_tree needs the name of a directory in tests/disks (letters, digits, _ - .)";
                o.disk_tree = Some(lit_str(meta, &nv.value, is_tree_name, what)?);
            }
            ("disk_eio_file", Meta::NameValue(nv)) => {
                let what = "disk_eio_file needs an absolute path in the tree, without spaces or quotes";
                o.disk_eio_file = Some(lit_str(meta, &nv.value, is_fs_path, what)?);
            }
            _ => {
                return Err(syn::Error::new_spanned(
                    meta,
                    "unknown ktest argument; expected should_panic = \"..\", timeout = N, mem = N, \
                     cpus = N, disk = N, disks = N, disk_tree = \"NAME\", disk_eio = SECTOR, \
                     disk_eio_op = \"read|write\", disk_eio_pages = N, disk_eio_file = \"PATH\", fresh_boot or opt_in",
                ));
            }
        }
    }
    let refuse = |when: bool, what: &str| if when { Err(syn::Error::new_spanned(args, what)) } else { Ok(()) };
    refuse(o.disk == 0 && o.disk_eio.is_some(), "disk_eio needs a scratch disk: add disk = MIB")?;
    refuse(o.disk == 0 && o.disks > 0, "disks needs their size: add disk = MIB")?;
    refuse(o.disk == 0 && o.disk_tree.is_some(), "disk_tree needs the disk's size: add disk = MIB")?;
    refuse(o.disk_tree.is_none() && o.disk_eio_file.is_some(), "disk_eio_file needs a tree: add disk_tree = \"NAME\"")?;
    refuse(o.disk_eio.is_some() && o.disk_eio_file.is_some(), "give disk_eio or disk_eio_file, not both")?;
    refuse(
        o.disk_eio.is_none() && (o.disk_eio_op.is_some() || o.disk_eio_pages > 0),
        "disk_eio_op and disk_eio_pages need disk_eio = SECTOR",
    )?;
    Ok(o)
}

/// `Some(value)` or `None` as an expression.
fn option(value: Option<impl quote::ToTokens>) -> proc_macro2::TokenStream {
    match value {
        Some(v) => quote!(::core::option::Option::Some(#v)),
        None => quote!(::core::option::Option::None),
    }
}

fn expand(args: Punctuated<Meta, Token![,]>, func: ItemFn) -> syn::Result<proc_macro2::TokenStream> {
    let o = parse_options(&args)?;
    let sig = &func.sig;
    if !sig.inputs.is_empty() || !sig.generics.params.is_empty() || sig.asyncness.is_some() {
        return Err(syn::Error::new_spanned(sig, "a ktest takes no arguments and is not generic or async"));
    }
    if !matches!(sig.output, ReturnType::Default) {
        return Err(syn::Error::new_spanned(&sig.output, "a ktest returns (); it fails by panicking"));
    }
    let name = &sig.ident;
    let desc = format_ident!("__KTEST_{}", name.to_string().to_uppercase());
    let should_panic = match &o.should_panic {
        Some(s) => quote!(::core::option::Option::Some(#s)),
        None => quote!(::core::option::Option::None),
    };
    let disk_eio = option(o.disk_eio);
    let disk_tree = option(o.disk_tree.as_deref());
    let disk_eio_file = option(o.disk_eio_file.as_deref());
    let disk_eio_op = option(o.disk_eio_op.as_deref());
    let Options { timeout, mem, cpus, disk, disks, disk_eio_pages, fresh_boot, opt_in, .. } = o;
    Ok(quote! {
        #func

        #[used]
        #[unsafe(link_section = ".ktest_array")]
        static #desc: ::kernel::ktest::KTest = ::kernel::ktest::KTest {
            name: ::core::stringify!(#name),
            module: ::core::module_path!(),
            func: #name,
            should_panic: #should_panic,
            timeout_secs: #timeout,
            mem_mib: #mem,
            cpus: #cpus,
            disk_mib: #disk,
            disk_count: #disks,
            disk_tree: #disk_tree,
            disk_eio_sector: #disk_eio,
            disk_eio_op: #disk_eio_op,
            disk_eio_pages: #disk_eio_pages,
            disk_eio_file: #disk_eio_file,
            fresh_boot: #fresh_boot,
            opt_in: #opt_in,
        };
    })
}

/// Registers an in-kernel benchmark: `#[kbench] fn name(b: &mut Bencher)`,
/// which calls `b.iter(|| operation())`. Run by `cargo xtask bench`.
#[proc_macro_attribute]
pub fn kbench(attr: TokenStream, item: TokenStream) -> TokenStream {
    let func = parse_macro_input!(item as ItemFn);
    match expand_bench(attr.into(), func) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn expand_bench(attr: proc_macro2::TokenStream, func: ItemFn) -> syn::Result<proc_macro2::TokenStream> {
    if !attr.is_empty() {
        return Err(syn::Error::new_spanned(attr, "kbench takes no arguments"));
    }
    let sig = &func.sig;
    if sig.inputs.len() != 1 || !sig.generics.params.is_empty() || sig.asyncness.is_some() {
        return Err(syn::Error::new_spanned(sig, "a kbench takes one argument, `b: &mut Bencher`"));
    }
    let name = &sig.ident;
    let desc = format_ident!("__KBENCH_{}", name.to_string().to_uppercase());
    Ok(quote! {
        #func

        #[used]
        #[unsafe(link_section = ".kbench_array")]
        static #desc: ::kernel::kbench::KBench = ::kernel::kbench::KBench {
            name: ::core::stringify!(#name),
            module: ::core::module_path!(),
            func: #name,
        };
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse::Parser;

    fn parse(src: &str) -> syn::Result<Options> {
        let args = Punctuated::<Meta, Token![,]>::parse_terminated.parse_str(src)?;
        parse_options(&args)
    }

    #[test]
    fn empty_arguments_give_defaults() {
        assert_eq!(parse("").map_err(|e| e.to_string()), Ok(Options::default()));
    }

    #[test]
    fn all_arguments_are_parsed() {
        let o = parse(
            r#"should_panic = "boom", timeout = 7, mem = 256, cpus = 2, disk = 8, disk_eio = 99, fresh_boot, opt_in"#,
        )
        .map_err(|e| e.to_string());
        let expected = Options {
            should_panic: Some("boom".into()),
            timeout: 7,
            mem: 256,
            cpus: 2,
            disk: 8,
            disks: 0,
            disk_tree: None,
            disk_eio: Some(99),
            disk_eio_op: None,
            disk_eio_pages: 0,
            disk_eio_file: None,
            fresh_boot: true,
            opt_in: true,
        };
        assert_eq!(o, Ok(expected));
    }

    #[test]
    fn a_prepared_tree_and_its_failing_file_are_parsed() {
        let o = parse(r#"disk = 8, disk_tree = "basic", disk_eio_file = "/dir/big""#).map_err(|e| e.to_string());
        let expected = Options {
            disk: 8,
            disk_tree: Some("basic".into()),
            disk_eio_file: Some("/dir/big".into()),
            ..Options::default()
        };
        assert_eq!(o, Ok(expected));
    }

    #[test]
    fn disk_arguments_that_cannot_work_are_compile_errors() {
        let err = |src: &str| parse(src).map(|_| ()).map_err(|e| e.to_string());
        assert!(err(r#"disk_tree = "basic""#).is_err_and(|e| e.contains("add disk = MIB")));
        assert!(err("disk_eio = 7").is_err_and(|e| e.contains("add disk = MIB")));
        assert!(err("disks = 2").is_err_and(|e| e.contains("add disk = MIB")));
        let eio = parse(r#"disk = 16, disk_eio = 2048, disk_eio_op = "read", disk_eio_pages = 4"#)
            .map(|o| (o.disk_eio, o.disk_eio_op, o.disk_eio_pages))
            .map_err(|e| e.to_string());
        assert_eq!(eio, Ok((Some(2048), Some("read".into()), 4)));
        assert!(err(r#"disk = 16, disk_eio_op = "read""#).is_err_and(|e| e.contains("need disk_eio")));
        assert!(err("disk = 16, disk_eio_pages = 2").is_err_and(|e| e.contains("need disk_eio")));
        assert!(err(r#"disk = 16, disk_eio = 8, disk_eio_op = "flush""#).is_err());
        assert_eq!(parse("disk = 16, disks = 2").map(|o| (o.disk, o.disks)).map_err(|e| e.to_string()), Ok((16, 2)));
        assert!(err(r#"disk = 8, disk_eio_file = "/big""#).is_err_and(|e| e.contains("needs a tree")));
        assert!(err(r#"disk = 8, disk_tree = "basic", disk_eio = 7, disk_eio_file = "/big""#).is_err());
        assert!(err(r#"disk = 8, disk_tree = "../etc""#).is_err(), "a name, not a path");
        assert!(err(r#"disk = 8, disk_tree = "basic", disk_eio_file = "big""#).is_err(), "not absolute");
        assert!(err(r#"disk = 8, disk_tree = "basic", disk_eio_file = "/a b""#).is_err(), "a space");
        assert!(err("disk = 8, disk_tree = 3").is_err());
    }

    #[test]
    fn unknown_or_mistyped_arguments_are_compile_errors() {
        assert!(parse("memory = 4").is_err());
        assert!(parse("mem = \"big\"").is_err());
        assert!(parse("should_panic = \"\"").is_err());
        assert!(parse("fresh_boot = 1").is_err());
    }

    #[test]
    fn kbench_needs_exactly_a_bencher_argument_and_no_options() {
        let ok: ItemFn = syn::parse_quote!(
            fn b(b: &mut Bencher) {}
        );
        let out = expand_bench(proc_macro2::TokenStream::new(), ok).map(|t| t.to_string()).unwrap_or_default();
        assert!(out.contains(".kbench_array"), "{out}");
        let none: ItemFn = syn::parse_quote!(
            fn b() {}
        );
        assert!(expand_bench(proc_macro2::TokenStream::new(), none).is_err());
        let ok_again: ItemFn = syn::parse_quote!(
            fn b(b: &mut Bencher) {}
        );
        assert!(expand_bench(quote!(rounds = 3), ok_again).is_err());
    }

    #[test]
    fn functions_with_arguments_or_results_are_rejected() {
        let with_arg: ItemFn = syn::parse_quote!(
            fn t(x: u8) {}
        );
        assert!(expand(Punctuated::new(), with_arg).is_err());
        let with_result: ItemFn = syn::parse_quote!(
            fn t() -> Result<(), ()> {
                Ok(())
            }
        );
        assert!(expand(Punctuated::new(), with_result).is_err());
        let plain: ItemFn = syn::parse_quote!(
            fn t() {}
        );
        let out = expand(Punctuated::new(), plain).map(|t| t.to_string()).unwrap_or_default();
        assert!(out.contains(".ktest_array"), "{out}");
        assert!(out.contains("__KTEST_T"), "{out}");
    }
}
