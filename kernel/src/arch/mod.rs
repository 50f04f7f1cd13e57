//! Architecture code. Only x86_64 today; the layout follows Linux's
//! `arch/x86/` so its files are easy to find.

pub mod x86_64;
