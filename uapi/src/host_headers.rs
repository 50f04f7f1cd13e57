//! Host-test helper: reads the `#define`s of the host's installed Linux uapi
//! headers, so the tables in this crate can be compared with the real ones.
//! A host without the headers skips those comparisons with a message.

/// The object-like `#define NAME VALUE` lines of the header at `path`, as
/// (name, first token of the value) pairs, or `None` if the header is absent.
pub fn defines(path: &str) -> Option<Vec<(String, String)>> {
    let Ok(text) = std::fs::read_to_string(path) else {
        println!("skipped: {path} is not installed on this host");
        return None;
    };
    let defines = text
        .lines()
        .filter_map(|line| {
            let mut words = line.strip_prefix("#define")?.split_whitespace();
            let name = words.next()?;
            let value = words.next()?;
            let function_like = name.contains('(');
            (!function_like).then(|| (name.to_owned(), value.to_owned()))
        })
        .collect();
    Some(defines)
}
